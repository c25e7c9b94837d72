//! Shapes of the event type catalog.

use octohooks_db::models;
use octohooks_domain::schema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{millis, present};

/// Whether an event type's latest schema gates its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SchemaValidation {
    /// Schemas document the payload only (the default).
    #[default]
    Off,
    /// A message whose payload does not match the latest schema is refused with 422
    /// `schema_violation`, and nothing is stored.
    Enforce,
}

impl From<SchemaValidation> for schema::SchemaValidation {
    fn from(mode: SchemaValidation) -> Self {
        match mode {
            SchemaValidation::Off => Self::Off,
            SchemaValidation::Enforce => Self::Enforce,
        }
    }
}

impl From<schema::SchemaValidation> for SchemaValidation {
    fn from(mode: schema::SchemaValidation) -> Self {
        match mode {
            schema::SchemaValidation::Off => Self::Off,
            schema::SchemaValidation::Enforce => Self::Enforce,
        }
    }
}

/// `POST /api/v1/event-types`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventTypeIn {
    /// The name, e.g. `invoice.paid`.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Archived types are hidden from pickers but still accepted.
    #[serde(default)]
    pub archived: Option<bool>,
    /// Deprecated types are still accepted; catalogs mark them so that consumers move on.
    #[serde(default)]
    pub deprecated: Option<bool>,
    /// Groups types in catalogs, e.g. `billing`.
    #[serde(default)]
    pub group_name: Option<String>,
    /// Version number → JSON Schema of the payload (`{"1": {…}}`); the highest version is the
    /// latest, and `examples[0]` of version 1 is the type's example.
    #[serde(default)]
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>, example = json!({"1": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}, "examples": [{"id": "inv_1"}]}}))]
    pub schemas: Option<serde_json::Value>,
    /// `enforce` refuses messages whose payload does not match the latest schema.
    #[serde(default)]
    pub schema_validation: Option<SchemaValidation>,
}

/// `PUT /api/v1/event-types/{name}`: fields left out keep their value, `null` clears an
/// optional one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventTypeUpdate {
    /// New description.
    #[serde(default)]
    pub description: Option<String>,
    /// New archived flag.
    #[serde(default)]
    pub archived: Option<bool>,
    /// New deprecated flag.
    #[serde(default)]
    pub deprecated: Option<bool>,
    /// New group; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub group_name: Option<Option<String>>,
    /// New schemas (the whole map); `null` removes them.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>, nullable)]
    pub schemas: Option<Option<serde_json::Value>>,
    /// New validation mode.
    #[serde(default)]
    pub schema_validation: Option<SchemaValidation>,
}

/// An event type.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeOut {
    /// The name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Archived or not.
    pub archived: bool,
    /// Deprecated or not.
    pub deprecated: bool,
    /// The catalog group, if any.
    pub group_name: Option<String>,
    /// Version number → JSON Schema; `null` when the type has none.
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    pub schemas: Option<serde_json::Value>,
    /// Whether the latest schema gates messages.
    pub schema_validation: SchemaValidation,
    /// Creation time (epoch ms).
    pub created: i64,
    /// Last change (epoch ms).
    pub updated: i64,
}

impl From<models::EventType> for EventTypeOut {
    fn from(row: models::EventType) -> Self {
        Self {
            name: row.name,
            description: row.description,
            archived: row.archived,
            deprecated: row.deprecated,
            group_name: row.group_name,
            schemas: row.schemas,
            schema_validation: row.schema_validation.into(),
            created: millis(row.created),
            updated: millis(row.updated),
        }
    }
}

/// `POST /api/v1/event-types/import-openapi`: the document, as JSON or as JSON text.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportOpenApiIn {
    /// The OpenAPI 3.1 document.
    #[serde(default)]
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    pub spec: Option<serde_json::Value>,
    /// The same as JSON text (YAML is not read: convert it first).
    #[serde(default)]
    pub spec_raw: Option<String>,
}

impl ImportOpenApiIn {
    /// The document given one way or the other (exactly one).
    pub fn document(
        self,
    ) -> Result<serde_json::Value, octohooks_domain::validate::ValidationError> {
        use octohooks_domain::validate::ValidationError;
        match (self.spec, self.spec_raw) {
            (Some(spec), None) => Ok(spec),
            (None, Some(raw)) => serde_json::from_str(&raw).map_err(|err| {
                ValidationError::new("specRaw", format!("is not a JSON document: {err}"))
            }),
            _ => Err(ValidationError::new(
                "spec",
                "give the document as spec (JSON) or specRaw (text), not both",
            )),
        }
    }
}

/// The event types an import created or updated.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportOpenApiOut {
    /// Every event type of the document, as now stored, in name order.
    pub modified: Vec<EventTypeOut>,
}
