//! The OpenAPI 3.1 document, generated from the handlers' annotations. `octohooks-api openapi`
//! prints it; `proto-docs/openapi.json` is a checked-in copy that a test keeps in step.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    admin, applications, attempts, client_certificates, endpoints, event_types, examples, health,
    messages, operational, portal, recovery, secrets,
};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Octohooks API", description = "Send webhooks: applications, endpoints, messages, attempts."),
    paths(
        health::live, health::ready,
        admin::create_environment, admin::list_environments, admin::delete_environment,
        admin::create_api_key, admin::list_api_keys, admin::revoke_api_key,
        applications::list_applications, applications::create_application,
        applications::get_application, applications::update_application,
        applications::patch_application,
        applications::delete_application,
        endpoints::list_endpoints, endpoints::create_endpoint, endpoints::get_endpoint,
        endpoints::update_endpoint, endpoints::patch_endpoint, endpoints::delete_endpoint, secrets::get_secret,
        secrets::rotate_secret, examples::send_example,
        client_certificates::get_client_certificate,
        client_certificates::set_client_certificate,
        client_certificates::delete_client_certificate,
        recovery::recover, recovery::replay_missing, recovery::endpoint_stats,
        recovery::list_tasks, recovery::get_task,
        event_types::list_event_types, event_types::create_event_type,
        event_types::get_event_type, event_types::update_event_type,
        event_types::patch_event_type,
        event_types::delete_event_type, event_types::import_openapi,
        messages::create_message, messages::list_messages, messages::get_message,
        messages::get_message_payload,
        attempts::list_message_attempts, attempts::list_endpoint_attempts,
        attempts::get_attempt, attempts::list_destinations, attempts::resend,
        portal::create_portal_access, portal::expire_all,
        operational::list_operational_endpoints, operational::create_operational_endpoint,
        operational::get_operational_endpoint, operational::update_operational_endpoint,
        operational::patch_operational_endpoint, operational::delete_operational_endpoint,
        operational::get_operational_endpoint_secret,
        operational::rotate_operational_endpoint_secret,
        operational::list_operational_endpoint_attempts,
    ),
    components(schemas(crate::dto::OperationalEvent)),
    modifiers(&Security, &Problems)
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in ["apiKey", "adminToken"] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// Every error answer is an RFC 9457 problem document; these statuses can come from any API
/// route (malformed body, credentials, validation, size, rate limit, dependencies).
struct Problems;

const COMMON_PROBLEMS: &[(&str, &str)] = &[
    ("400", "Malformed request (invalid JSON, nesting too deep)"),
    ("401", "Missing, unknown or revoked credentials"),
    (
        "403",
        "Valid credentials whose scope does not reach this (a portal token)",
    ),
    ("404", "No such object in this environment"),
    ("413", "Body or payload too large"),
    ("422", "Invalid value; `detail` names the field"),
    ("429", "Rate limit exceeded; see Retry-After"),
    ("500", "Internal error (nothing internal is shown)"),
    ("503", "A dependency is unavailable; see Retry-After"),
];

impl Modify for Problems {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let problem = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/problem+json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Problem")))
                            .build(),
                    )
                    .build(),
            )
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/") {
                continue;
            }
            let operations = [
                item.get.as_mut(),
                item.post.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                for (status, response) in responses.iter_mut() {
                    if status.starts_with('4') || status.starts_with('5') {
                        let description = match response {
                            RefOr::T(response) => response.description.clone(),
                            RefOr::Ref(_) => String::new(),
                        };
                        *response = problem(&description);
                    }
                }
                for (status, description) in COMMON_PROBLEMS {
                    responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| problem(description));
                }
                let idempotent = operation.parameters.iter().flatten().any(|parameter| {
                    parameter
                        .name
                        .eq_ignore_ascii_case(crate::idempotency::HEADER)
                });
                if idempotent {
                    responses.entry("409".to_owned()).or_insert_with(|| {
                        problem("Idempotency-Key still in use, or used for another request")
                    });
                }
            }
        }
    }
}

/// The document as pretty JSON.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"))
}
