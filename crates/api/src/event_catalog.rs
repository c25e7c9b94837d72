//! The rules of the event type catalog, without HTTP: what a new event type or a change to one
//! becomes, and when it is refused. One rule joins the fields: `enforce` needs a schema to
//! enforce.

use chrono::{DateTime, Utc};
use octohooks_db::models::EventType;
use octohooks_domain::openapi_import;
use octohooks_domain::schema::{EventSchemas, SchemaValidation};
use octohooks_domain::validate::{parse_description, EventTypeName, ValidationError};
use uuid::Uuid;

use crate::dto::{EventTypeIn, EventTypeUpdate};

/// Longest group name.
const MAX_GROUP_NAME_CHARS: usize = 256;

/// The event type that `body` creates in the environment.
pub fn new_event_type(
    environment_id: Uuid,
    body: EventTypeIn,
    now: DateTime<Utc>,
) -> Result<EventType, ValidationError> {
    let row = EventType {
        environment_id,
        name: EventTypeName::parse("name", &body.name)?.into_inner(),
        description: parse_description("description", body.description.as_deref().unwrap_or(""))?,
        archived: body.archived.unwrap_or(false),
        created: now,
        updated: now,
        deprecated: body.deprecated.unwrap_or(false),
        group_name: body
            .group_name
            .as_deref()
            .map(parse_group_name)
            .transpose()?,
        schemas: body.schemas.as_ref().map(parse_schemas).transpose()?,
        schema_validation: body.schema_validation.unwrap_or_default().into(),
    };
    check_enforceable(&row)?;
    Ok(row)
}

/// `current` with the fields of `update` applied: left out keeps, `null` clears.
pub fn updated_event_type(
    current: EventType,
    update: EventTypeUpdate,
) -> Result<EventType, ValidationError> {
    let mut row = current;
    if let Some(description) = update.description {
        row.description = parse_description("description", &description)?;
    }
    if let Some(archived) = update.archived {
        row.archived = archived;
    }
    if let Some(deprecated) = update.deprecated {
        row.deprecated = deprecated;
    }
    if let Some(group_name) = update.group_name {
        row.group_name = group_name.as_deref().map(parse_group_name).transpose()?;
    }
    if let Some(schemas) = update.schemas {
        row.schemas = schemas.as_ref().map(parse_schemas).transpose()?;
    }
    if let Some(mode) = update.schema_validation {
        row.schema_validation = mode.into();
    }
    check_enforceable(&row)?;
    Ok(row)
}

/// The event types an OpenAPI document's `webhooks` describe, checked like any other (each
/// schema must be valid and self-contained), ready to be created or updated.
pub fn imported_event_types(
    environment_id: Uuid,
    document: &serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Vec<EventType>, ValidationError> {
    openapi_import::event_types(document)?
        .into_iter()
        .map(|found| {
            let field = format!("spec.webhooks.{}", found.name);
            let schemas = found
                .schema
                .map(|schema| serde_json::json!({ "1": schema }))
                .map(|schemas| {
                    EventSchemas::parse(&format!("{field}.schemas"), &schemas)
                        .map(|checked| checked.to_value())
                })
                .transpose()?;
            Ok(EventType {
                environment_id,
                description: parse_description(
                    &format!("{field}.description"),
                    &found.description,
                )?,
                name: found.name,
                archived: false,
                created: now,
                updated: now,
                deprecated: false,
                group_name: None,
                schemas,
                schema_validation: SchemaValidation::Off,
            })
        })
        .collect()
}

fn parse_schemas(value: &serde_json::Value) -> Result<serde_json::Value, ValidationError> {
    EventSchemas::parse("schemas", value).map(|schemas| schemas.to_value())
}

fn parse_group_name(value: &str) -> Result<String, ValidationError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_GROUP_NAME_CHARS {
        return Err(ValidationError::new(
            "groupName",
            format!("must be 1 to {MAX_GROUP_NAME_CHARS} characters long (or null for none)"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "groupName",
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

fn check_enforceable(row: &EventType) -> Result<(), ValidationError> {
    let has_schema = row
        .schemas
        .as_ref()
        .and_then(serde_json::Value::as_object)
        .is_some_and(|versions| !versions.is_empty());
    if row.schema_validation == SchemaValidation::Enforce && !has_schema {
        return Err(ValidationError::new(
            "schemaValidation",
            "enforce needs at least one schema in schemas",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::dto::SchemaValidation as Mode;

    fn body(name: &str) -> EventTypeIn {
        serde_json::from_value(json!({ "name": name })).unwrap()
    }

    #[test]
    fn a_new_type_defaults_to_no_schema_and_no_check() {
        let row = new_event_type(Uuid::nil(), body("invoice.paid"), Utc::now()).unwrap();
        assert_eq!(row.schema_validation, SchemaValidation::Off);
        assert!(!row.deprecated);
        assert_eq!((row.group_name, row.schemas), (None, None));
    }

    #[test]
    fn enforce_needs_a_schema_on_create_and_on_update() {
        let mut input = body("invoice.paid");
        input.schema_validation = Some(Mode::Enforce);
        let err = new_event_type(Uuid::nil(), input, Utc::now()).unwrap_err();
        assert_eq!(err.field, "schemaValidation");

        let mut input = body("invoice.paid");
        input.schemas = Some(json!({"1": {"type": "object"}}));
        input.schema_validation = Some(Mode::Enforce);
        let row = new_event_type(Uuid::nil(), input, Utc::now()).unwrap();
        // Removing the schema of an enforced type is refused; switching off first is fine.
        let clear: EventTypeUpdate = serde_json::from_value(json!({"schemas": null})).unwrap();
        assert_eq!(
            updated_event_type(row.clone(), clear).unwrap_err().field,
            "schemaValidation"
        );
        let clear_and_off: EventTypeUpdate =
            serde_json::from_value(json!({"schemas": null, "schemaValidation": "off"})).unwrap();
        let row = updated_event_type(row, clear_and_off).unwrap();
        assert_eq!(row.schemas, None);
    }

    #[test]
    fn update_keeps_left_out_fields_and_clears_nulls() {
        let mut input = body("invoice.paid");
        input.group_name = Some("  billing ".into());
        input.description = Some("paid".into());
        let row = new_event_type(Uuid::nil(), input, Utc::now()).unwrap();
        assert_eq!(row.group_name.as_deref(), Some("billing"));
        let update: EventTypeUpdate = serde_json::from_value(json!({"deprecated": true})).unwrap();
        let row = updated_event_type(row, update).unwrap();
        assert!(row.deprecated);
        assert_eq!(
            (row.group_name.as_deref(), row.description.as_str()),
            (Some("billing"), "paid")
        );
        let update: EventTypeUpdate = serde_json::from_value(json!({"groupName": null})).unwrap();
        assert_eq!(updated_event_type(row, update).unwrap().group_name, None);
    }

    #[test]
    fn bad_group_names_and_schemas_name_their_field() {
        let mut input = body("a");
        input.group_name = Some(" ".into());
        assert_eq!(
            new_event_type(Uuid::nil(), input, Utc::now())
                .unwrap_err()
                .field,
            "groupName"
        );
        let mut input = body("a");
        input.schemas = Some(json!({"1": {"minimum": "zero"}}));
        assert_eq!(
            new_event_type(Uuid::nil(), input, Utc::now())
                .unwrap_err()
                .field,
            "schemas.1"
        );
    }
}
