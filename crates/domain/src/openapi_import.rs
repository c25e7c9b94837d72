//! Event types read from the `webhooks` section of an OpenAPI 3.1 document (or the older
//! `x-webhooks` extension): one event type per webhook, named by its key, described by its
//! operation, with the JSON request body's schema as version 1 and its example.
//!
//! The schema of a body often points into `components/schemas`. An event type's schema must be
//! self-contained (nothing is fetched, see [`crate::schema`]), so every component it reaches,
//! directly or through other components, is copied under its `$defs` and the references are
//! rewritten to point there; recursive components stay recursive.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::validate::{EventTypeName, ValidationError};

/// Most webhooks one import may hold.
pub const MAX_IMPORTED: usize = 250;

const COMPONENT_PREFIX: &str = "#/components/schemas/";

/// One event type found in the document.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedEventType {
    /// The webhook's key.
    pub name: String,
    /// The operation's `description`, else its `summary` (else the path item's); may be empty.
    pub description: String,
    /// The body's schema, self-contained, with the example under `examples` when the document
    /// gives one; `None` when the webhook declares no JSON body.
    pub schema: Option<Value>,
}

/// Every webhook of `document` as an event type, in name order.
pub fn event_types(document: &Value) -> Result<Vec<ImportedEventType>, ValidationError> {
    let webhooks = document
        .get("webhooks")
        .or_else(|| document.get("x-webhooks"))
        .and_then(Value::as_object)
        .ok_or_else(|| {
            ValidationError::new(
                "spec",
                "has no webhooks section (OpenAPI 3.1 `webhooks`, or `x-webhooks`)",
            )
        })?;
    if webhooks.len() > MAX_IMPORTED {
        return Err(ValidationError::new(
            "spec.webhooks",
            format!("at most {MAX_IMPORTED} webhooks per import"),
        ));
    }
    let components = document
        .pointer("/components/schemas")
        .and_then(Value::as_object);
    webhooks
        .iter()
        .map(|(name, item)| {
            let field = format!("spec.webhooks.{name}");
            let name = EventTypeName::parse(&field, name)?.into_inner();
            imported(name, item, components).map_err(|message| ValidationError::new(field, message))
        })
        .collect()
}

fn imported(
    name: String,
    item: &Value,
    components: Option<&Map<String, Value>>,
) -> Result<ImportedEventType, String> {
    let operation = ["post", "put", "patch"]
        .iter()
        .find_map(|method| item.get(method))
        .unwrap_or(item);
    let text = |key: &str| {
        [operation, item]
            .iter()
            .find_map(|source| source.get(key).and_then(Value::as_str))
            .map(str::to_owned)
    };
    let description = text("description")
        .or_else(|| text("summary"))
        .unwrap_or_default();
    let media = operation
        .pointer("/requestBody/content")
        .and_then(|content| {
            content
                .get("application/json")
                .or_else(|| content.as_object()?.values().next())
        });
    let schema = match media.and_then(|media| media.get("schema")) {
        None => None,
        Some(schema) => {
            let mut schema = self_contained(schema, components)?;
            if let Some(example) = media.and_then(example_of) {
                if let Value::Object(fields) = &mut schema {
                    fields
                        .entry("examples")
                        .or_insert_with(|| Value::Array(vec![example]));
                }
            }
            Some(schema)
        }
    };
    Ok(ImportedEventType {
        name,
        description,
        schema,
    })
}

/// `example`, else the value of the first of `examples` (OpenAPI's named examples).
fn example_of(media: &Value) -> Option<Value> {
    media.get("example").cloned().or_else(|| {
        media
            .get("examples")?
            .as_object()?
            .values()
            .find_map(|example| example.get("value").cloned())
    })
}

/// `schema` with the components it reaches copied under `$defs` and its references rewritten.
fn self_contained(
    schema: &Value,
    components: Option<&Map<String, Value>>,
) -> Result<Value, String> {
    let mut needed = BTreeSet::new();
    let mut pending = referenced(schema)?;
    let mut defs = BTreeMap::new();
    while let Some(component) = pending.pop() {
        if !needed.insert(component.clone()) {
            continue;
        }
        let found = components
            .and_then(|components| components.get(&component))
            .ok_or_else(|| {
                format!("refers to {COMPONENT_PREFIX}{component}, which is not in the document")
            })?;
        pending.extend(referenced(found)?);
        defs.insert(component, rewritten(found));
    }
    let mut schema = rewritten(schema);
    if !defs.is_empty() {
        let Value::Object(fields) = &mut schema else {
            return Err("a schema with references must be an object".into());
        };
        let existing = fields
            .entry("$defs")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(existing) = existing else {
            return Err("$defs must be an object".into());
        };
        for (component, definition) in defs {
            existing.entry(component).or_insert(definition);
        }
    }
    Ok(schema)
}

/// The components `value` refers to; any other reference outside the schema is refused.
fn referenced(value: &Value) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(fields) => {
                if let Some(Value::String(reference)) = fields.get("$ref") {
                    if let Some(component) = reference.strip_prefix(COMPONENT_PREFIX) {
                        found.push(component.to_owned());
                    } else if !reference.starts_with('#') {
                        return Err(format!(
                            "refers to {reference}: only references inside the document are imported"
                        ));
                    }
                }
                stack.extend(fields.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    Ok(found)
}

fn rewritten(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => (
                        key.clone(),
                        Value::String(match reference.strip_prefix(COMPONENT_PREFIX) {
                            Some(component) => format!("#/$defs/{component}"),
                            None => reference.clone(),
                        }),
                    ),
                    _ => (key.clone(), rewritten(value)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(rewritten).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::{EventSchemas, PayloadSchema};

    fn document() -> Value {
        json!({
            "openapi": "3.1.0",
            "info": {"title": "Shop", "version": "1"},
            "webhooks": {
                "invoice.paid": {"post": {
                    "summary": "An invoice was paid",
                    "requestBody": {"content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Invoice"},
                        "example": {"id": "inv_1", "lines": [{"sku": "a", "children": []}]}
                    }}}
                }},
                "user.created": {"post": {
                    "description": "A user signed up",
                    "requestBody": {"content": {"application/json": {
                        "schema": {"type": "object", "required": ["id"]},
                        "examples": {"basic": {"value": {"id": "u1"}}}
                    }}}
                }},
                "ping": {"post": {}}
            },
            "components": {"schemas": {
                "Invoice": {"type": "object", "required": ["id"], "properties": {
                    "id": {"type": "string"},
                    "lines": {"type": "array", "items": {"$ref": "#/components/schemas/Line"}}
                }},
                "Line": {"type": "object", "properties": {
                    "sku": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/components/schemas/Line"}}
                }},
                "Unused": {"type": "null"}
            }}
        })
    }

    #[test]
    fn webhooks_become_event_types_with_self_contained_schemas() {
        let found = event_types(&document()).unwrap();
        let names: Vec<&str> = found.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["invoice.paid", "ping", "user.created"]);
        let invoice = &found[0];
        assert_eq!(invoice.description, "An invoice was paid");
        let schema = invoice.schema.clone().unwrap();
        assert_eq!(schema["$ref"], "#/$defs/Invoice");
        assert_eq!(
            schema["$defs"]["Line"]["properties"]["children"]["items"]["$ref"],
            "#/$defs/Line"
        );
        assert!(schema["$defs"].get("Unused").is_none());
        // It compiles on its own and checks recursively.
        let stored = EventSchemas::parse("schemas", &json!({ "1": schema })).unwrap();
        let compiled = PayloadSchema::compile("schemas.1", 1, stored.latest().unwrap().1).unwrap();
        assert!(compiled
            .violations(&json!({"id": "x", "lines": [{"children": [{"sku": 1}]}]}))
            .iter()
            .any(|v| v.pointer == "/lines/0/children/0/sku"));
        assert_eq!(
            stored.example(),
            Some(&json!({"id": "inv_1", "lines": [{"sku": "a", "children": []}]}))
        );
        assert_eq!(found[1].schema, None);
        assert_eq!(found[2].description, "A user signed up");
        assert_eq!(
            found[2].schema.as_ref().unwrap()["examples"],
            json!([{"id": "u1"}])
        );
    }

    #[test]
    fn what_cannot_be_imported_is_named() {
        let err = event_types(&json!({"openapi": "3.1.0", "paths": {}})).unwrap_err();
        assert_eq!(err.field, "spec");
        let err = event_types(&json!({"webhooks": {"bad name": {}}})).unwrap_err();
        assert_eq!(err.field, "spec.webhooks.bad name");
        let missing = json!({"webhooks": {"a": {"post": {"requestBody": {"content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Nope"}}}}}}}});
        let err = event_types(&missing).unwrap_err();
        assert!(err.message.contains("Nope"), "{err}");
        let remote = json!({"webhooks": {"a": {"post": {"requestBody": {"content": {
            "application/json": {"schema": {"$ref": "https://127.0.0.1:9/x.json"}}}}}}}});
        assert!(event_types(&remote)
            .unwrap_err()
            .message
            .contains("inside the document"));
        let legacy = json!({"x-webhooks": {"a": {}}});
        assert_eq!(event_types(&legacy).unwrap().len(), 1);
    }
}
