//! Endpoint shapes: creation, update (`PUT`), the stored endpoint, and its signing secret.

use std::collections::BTreeMap;

use octohooks_db::models;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{millis, present};

/// `POST /api/v1/applications/{app}/endpoints`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointIn {
    /// Absolute http(s) URL that receives the webhooks.
    pub url: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Optional unique identifier within the application.
    #[serde(default)]
    pub uid: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Disabled endpoints receive nothing (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Only messages of these event types; empty for all (default).
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// Only messages sharing one of these channels; empty for all (default).
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// Extra headers sent with every delivery.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Signing secret (`whsec_…`, or an ed25519 `whsk_…`); generated when absent.
    #[serde(default)]
    pub secret: Option<String>,
    /// Without `secret`: the kind of secret generated (default `hmac`).
    #[serde(default)]
    pub secret_kind: Option<SecretKind>,
    /// Alternative to `secret`: its first element becomes the signing secret.
    #[serde(default)]
    pub secrets: Option<Vec<String>>,
    /// Messages per second this endpoint may receive (1 to 65535); none when absent. Enforced
    /// across all dispatchers; messages over it wait, none is dropped.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 65535)]
    pub rate_limit: Option<i64>,
}

/// `PUT /api/v1/applications/{app}/endpoints/{endpoint}`: fields left out keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointUpdate {
    /// New URL.
    pub url: String,
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New uid; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub uid: Option<Option<String>>,
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// Enable or disable.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// New event type filter.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// New channel filter.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// New custom headers.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
    /// Accepted for symmetry with responses and ignored: rotate secrets through
    /// `…/secret/rotate`.
    #[serde(default)]
    pub secrets: Option<Vec<String>>,
    /// New rate limit in messages per second; `null` removes it, absent keeps it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, nullable, minimum = 1, maximum = 65535)]
    pub rate_limit: Option<Option<i64>>,
}

/// An endpoint. `secrets` is always empty: secrets are read through `…/secret`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOut {
    /// Channel filter.
    pub channels: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Event type filter.
    pub event_types: Vec<String>,
    /// Display name.
    pub name: String,
    /// Never filled; see `GET …/secret`.
    pub secrets: Vec<String>,
    /// Your identifier, if set.
    #[schema(required = true)]
    pub uid: Option<String>,
    /// Destination URL.
    pub url: String,
    /// Free text.
    pub description: String,
    /// Custom headers.
    pub headers: BTreeMap<String, String>,
    /// Why the endpoint was disabled automatically, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Messages per second this endpoint may receive; `null`: no limit.
    #[schema(required = true)]
    pub rate_limit: Option<i32>,
    /// Identifier.
    pub id: Uuid,
    /// Creation time (epoch ms).
    pub created: i64,
    /// Last change (epoch ms).
    pub updated: i64,
}

impl From<models::Endpoint> for EndpointOut {
    fn from(row: models::Endpoint) -> Self {
        Self {
            channels: row.channels,
            enabled: row.enabled,
            event_types: row.event_types,
            name: row.name,
            secrets: Vec::new(),
            uid: row.uid,
            url: row.url,
            description: row.description,
            headers: serde_json::from_value(row.headers).unwrap_or_default(),
            disabled_reason: row.disabled_reason,
            rate_limit: row.rate_limit,
            id: row.id,
            created: millis(row.created),
            updated: millis(row.updated),
        }
    }
}

/// The current signing secret of an endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretOut {
    /// `whsec_…` (HMAC, `v1` signatures) or `whsk_…` (ed25519 private key, `v1a` signatures).
    pub key: String,
    /// With a `whsk_` key: `whpk_…`, the public key receivers verify `v1a` signatures with;
    /// `null` otherwise.
    #[schema(required = true)]
    pub public_key: Option<String>,
}

/// The kind of signing secret to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SecretKind {
    /// A shared HMAC-SHA256 secret (`whsec_`), the Standard Webhooks default.
    Hmac,
    /// An ed25519 key pair (`whsk_` private, `whpk_` public): receivers can verify webhooks
    /// but cannot forge them.
    Ed25519,
}

impl From<SecretKind> for octohooks_domain::signing::SecretKind {
    fn from(kind: SecretKind) -> Self {
        match kind {
            SecretKind::Hmac => Self::Hmac,
            SecretKind::Ed25519 => Self::Ed25519,
        }
    }
}

/// `POST …/secret/rotate`: the new secret, generated when absent.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateIn {
    /// The new secret (`whsec_…` or `whsk_…`).
    #[serde(default)]
    pub key: Option<String>,
    /// Without `key`: the kind of secret generated (default: the kind of the current one).
    #[serde(default)]
    pub kind: Option<SecretKind>,
}
