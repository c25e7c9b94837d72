//! The bodies of `PATCH` (JSON Merge Patch, RFC 7396), as the OpenAPI document shows them: every
//! field optional, `null` clearing what may be cleared. The server applies a patch to the
//! object's current fields and checks the result as the `PUT` body
//! ([`crate::merge_patch`]); these types only describe it.

use std::collections::BTreeMap;

use utoipa::ToSchema;

use super::SchemaValidation;

/// `PATCH /api/v1/applications/{app}`.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationPatch {
    /// New display name (never `null`).
    pub name: Option<String>,
    /// New uid; `null` removes it.
    #[schema(nullable)]
    pub uid: Option<String>,
}

/// `PATCH /api/v1/applications/{app}/endpoints/{endpoint}`.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPatch {
    /// New URL (never `null`).
    pub url: Option<String>,
    /// New display name (never `null`).
    pub name: Option<String>,
    /// New uid; `null` removes it.
    #[schema(nullable)]
    pub uid: Option<String>,
    /// New description; `null` empties it.
    #[schema(nullable)]
    pub description: Option<String>,
    /// Enable or disable (never `null`).
    pub enabled: Option<bool>,
    /// New event type filter (replaces the list); `null` or `[]` for every event type.
    #[schema(nullable)]
    pub event_types: Option<Vec<String>>,
    /// New channel filter (replaces the list); `null` or `[]` for every channel.
    #[schema(nullable)]
    pub channels: Option<Vec<String>>,
    /// Headers to set, merged key by key: a header set to `null` is removed, others are kept;
    /// `null` for the whole removes them all.
    #[schema(value_type = Option<BTreeMap<String, Option<String>>>, nullable)]
    pub headers: Option<BTreeMap<String, Option<String>>>,
    /// New rate limit (messages per second); `null` removes it.
    #[schema(nullable, minimum = 1, maximum = 65535)]
    pub rate_limit: Option<i64>,
}

/// `PATCH /api/v1/event-types/{name}`.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypePatch {
    /// New description; `null` empties it.
    #[schema(nullable)]
    pub description: Option<String>,
    /// New archived flag (never `null`).
    pub archived: Option<bool>,
    /// New deprecated flag (never `null`).
    pub deprecated: Option<bool>,
    /// New group; `null` removes it.
    #[schema(nullable)]
    pub group_name: Option<String>,
    /// Versions to set, merged by version: `{"3": {…}}` adds or replaces version 3 (a schema
    /// given is merged into the stored one, as RFC 7396 merges objects), `{"1": null}` removes
    /// version 1; `null` removes every schema.
    #[schema(value_type = Option<BTreeMap<String, serde_json::Value>>, nullable)]
    pub schemas: Option<BTreeMap<String, serde_json::Value>>,
    /// New validation mode (never `null`).
    pub schema_validation: Option<SchemaValidation>,
}
