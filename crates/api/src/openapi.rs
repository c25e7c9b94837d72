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
        messages::get_message_payload, messages::expunge_message_content,
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
    modifiers(&Security, &Problems, &Links)
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

/// OpenAPI links from each create (a `POST` answering 201 or 202 with the new object) to every
/// operation on that object, so that stateful testing (`make fuzz`) reaches the item routes with
/// ids the API really made: `POST /x` links to the operations under `/x/{param}`, `param` taken
/// from the answer's `id` (its `name` for event types) and the other path parameters from the
/// request's own path. An operation needing a parameter from elsewhere gets no link.
struct Links;

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::link::LinkBuilder;
        use utoipa::openapi::RefOr;
        let operations: Vec<(String, String)> = openapi
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| {
                [
                    item.get.as_ref(),
                    item.put.as_ref(),
                    item.patch.as_ref(),
                    item.delete.as_ref(),
                    item.post.as_ref(),
                ]
                .into_iter()
                .flatten()
                .filter_map(|operation| operation.operation_id.clone())
                .map(|id| (path.clone(), id))
                .collect::<Vec<_>>()
            })
            .collect();
        for (source, item) in openapi.paths.paths.iter_mut() {
            let Some(create) = item.post.as_mut() else {
                continue;
            };
            let responses = &mut create.responses.responses;
            let Some(RefOr::T(created)) = responses
                .iter_mut()
                .find(|(status, _)| *status == "201" || *status == "202")
                .map(|(_, response)| response)
            else {
                continue;
            };
            let prefix = format!("{source}/{{");
            for (target, operation_id) in &operations {
                let Some(rest) = target.strip_prefix(&prefix) else {
                    continue;
                };
                let Some(new_param) = rest.split('}').next() else {
                    continue;
                };
                let field = if new_param == "name" { "name" } else { "id" };
                let mut link = LinkBuilder::new().operation_id(operation_id.clone());
                let mut resolvable = true;
                for param in path_parameters(target) {
                    if param == new_param {
                        link = link.parameter(param, format!("$response.body#/{field}"));
                    } else if path_parameters(source).any(|own| own == param) {
                        link = link.parameter(param, format!("$request.path.{param}"));
                    } else {
                        resolvable = false;
                    }
                }
                if resolvable {
                    created
                        .links
                        .insert(operation_id.clone(), RefOr::T(link.build()));
                }
            }
        }
    }
}

/// The `{name}`s of a path template, in order.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('{')
        .skip(1)
        .filter_map(|part| part.split('}').next())
}

/// The document as pretty JSON.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        // utoipa 5 writes a link's `operationId` in snake case; nothing else in the document
        // has that key.
        .map(|json| json.replace("\"operation_id\":", "\"operationId\":"))
        .unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"))
}
