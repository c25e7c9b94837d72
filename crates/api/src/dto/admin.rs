//! Shapes of the admin routes (environments and their API keys) and of portal links.

use octohooks_db::models;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::millis;

/// `POST /api/v1/environments`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentIn {
    /// Display name, e.g. `Production`.
    pub name: String,
}

/// An environment; `apiKey` is present only in the creation response.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentOut {
    /// Identifier.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// The first API key, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Creation time (epoch ms).
    pub created: i64,
}

impl EnvironmentOut {
    /// Shape of a stored environment.
    pub fn from_row(row: models::Environment, api_key: Option<String>) -> Self {
        Self {
            id: row.id,
            name: row.name,
            api_key,
            created: millis(row.created),
        }
    }
}

/// A new or revoked API key; `apiKey` only in the creation response.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyOut {
    /// Key identifier (used to revoke it).
    pub id: Uuid,
    /// The environment it opens.
    pub environment_id: Uuid,
    /// The key, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Creation time (epoch ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
}

/// An API key as listed: never the key itself.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyInfoOut {
    /// Key identifier (used to revoke it).
    pub id: Uuid,
    /// The environment it opens.
    pub environment_id: Uuid,
    /// The key's first characters (`ohk_` and four more), to recognise it by; null for keys
    /// made before prefixes were kept.
    #[schema(required = true)]
    pub prefix: Option<String>,
    /// Creation time (epoch ms).
    pub created: i64,
    /// When it was last used (epoch ms, to the minute); null if never.
    #[schema(required = true)]
    pub last_used: Option<i64>,
}

impl From<models::ApiKeyInfo> for ApiKeyInfoOut {
    fn from(row: models::ApiKeyInfo) -> Self {
        Self {
            id: row.id,
            environment_id: row.environment_id,
            prefix: row.prefix,
            created: millis(row.created),
            last_used: row.last_used.map(millis),
        }
    }
}

/// `POST /api/v1/applications/{app}/portal-access`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortalAccessIn {
    /// Lifetime of the token in seconds, 60 to 604800 (default 3600).
    #[serde(default)]
    pub expiry: Option<i64>,
    /// A read-only portal: no changes to endpoints, no resends (default false).
    #[serde(default)]
    pub read_only: Option<bool>,
}

/// A consumer portal link.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortalAccessOut {
    /// The portal's address with the token in its fragment (`…/portal/#token=…`), which
    /// browsers never send to a server.
    pub url: String,
    /// The bearer token itself, for an embedding of your own.
    pub token: String,
    /// When the token stops working (epoch ms).
    pub expires_at: i64,
}
