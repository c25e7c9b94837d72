//! The OpenAPI 3.1 document, generated from the handlers' annotations. `octohooks-api openapi`
//! prints it; `proto-docs/openapi.json` is a checked-in copy that a test keeps in step.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{admin, applications, attempts, endpoints, event_types, health, messages};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Octohooks API", description = "Send webhooks: applications, endpoints, messages, attempts."),
    paths(
        health::live, health::ready,
        admin::create_environment, admin::list_environments, admin::delete_environment,
        admin::create_api_key, admin::revoke_api_key,
        applications::list_applications, applications::create_application,
        applications::get_application, applications::update_application,
        applications::delete_application,
        endpoints::list_endpoints, endpoints::create_endpoint, endpoints::get_endpoint,
        endpoints::update_endpoint, endpoints::delete_endpoint, endpoints::get_secret,
        endpoints::rotate_secret,
        event_types::list_event_types, event_types::create_event_type,
        event_types::get_event_type, event_types::update_event_type,
        event_types::delete_event_type,
        messages::create_message, messages::list_messages, messages::get_message,
        attempts::list_message_attempts, attempts::list_endpoint_attempts,
        attempts::get_attempt, attempts::list_destinations, attempts::resend,
    ),
    modifiers(&Security)
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

/// The document as pretty JSON.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"))
}
