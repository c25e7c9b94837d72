//! The ingest check of payloads against their event type's enforced schema. An environment
//! without enforced types pays one map lookup per message: the answer "not enforced" is cached
//! per event type like the other lookups ([`crate::lookups`]), and schemas are compiled once
//! per change, on a blocking thread.

use std::sync::Arc;

use actix_web::web;
use octohooks_db::{event_types, pool};
use octohooks_domain::schema::{EventSchemas, PayloadSchema};
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// Payloads larger than this are checked on a blocking thread instead of the worker's: parsing
/// and checking a few hundred KiB takes milliseconds that other requests would wait.
const CHECK_INLINE_BELOW: usize = 32 * 1024;

/// Refuses `payload` with [`ApiError::SchemaViolation`] when `event_type` enforces a schema of
/// the environment that the payload does not match.
pub async fn check(
    state: &AppState,
    environment_id: Uuid,
    event_type: &str,
    payload: &str,
) -> Result<(), ApiError> {
    let load = load(state, environment_id, event_type);
    let Some(schema) = state
        .lookups
        .payload_schema(environment_id, event_type, load)
        .await?
    else {
        return Ok(());
    };
    let violations = if payload.len() < CHECK_INLINE_BELOW {
        violations(&schema, payload)
    } else {
        let payload = payload.to_owned();
        let schema = schema.clone();
        web::block(move || violations(&schema, &payload))
            .await
            .map_err(|err| ApiError::Internal(format!("schema check did not finish: {err}")))?
    };
    if violations.is_empty() {
        return Ok(());
    }
    Err(ApiError::SchemaViolation {
        event_type: event_type.to_owned(),
        version: schema.version(),
        errors: violations,
    })
}

fn violations(schema: &PayloadSchema, payload: &str) -> Vec<octohooks_domain::schema::Violation> {
    match serde_json::from_str::<Value>(payload) {
        Ok(value) => schema.violations(&value),
        // The body parser accepted it as JSON already; this is only reachable for numbers out
        // of serde_json's range, which no schema check can judge.
        Err(err) => vec![octohooks_domain::schema::Violation {
            pointer: String::new(),
            reason: format!("cannot be read for the schema check: {err}"),
        }],
    }
}

/// Reads the type's stored schemas when it enforces them and compiles the latest.
async fn load(
    state: &AppState,
    environment_id: Uuid,
    event_type: &str,
) -> Result<Option<Arc<PayloadSchema>>, ApiError> {
    let mut conn = pool::connection(&state.db).await?;
    let Some(stored) = event_types::enforced_schemas(&mut conn, environment_id, event_type).await?
    else {
        return Ok(None);
    };
    drop(conn);
    let compiled = web::block(move || EventSchemas::from_stored(&stored)?.compile_latest())
        .await
        .map_err(|err| ApiError::Internal(format!("schema compilation did not finish: {err}")))?;
    compiled
        .map(|schema| schema.map(Arc::new))
        .map_err(|err| ApiError::Internal(format!("stored schema of {event_type}: {err}")))
}
