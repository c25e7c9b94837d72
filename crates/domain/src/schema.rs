//! Event type schemas: the `schemas` map of an event type (version → JSON Schema, the highest
//! version is the latest), checked when it is stored, and the compiled latest schema that
//! payloads are checked against when the event type enforces it.
//!
//! Schemas are self-contained: references to other documents are never fetched (the crate is
//! built without its network and file resolvers), so a `$ref` to a URL is refused when the
//! schema is stored rather than failing at ingest. `format` is asserted, not only annotated: a
//! schema that says `"format": "email"` refuses a payload whose value is not one.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::status::stored_state;
use crate::validate::ValidationError;

/// Most versions an event type keeps.
pub const MAX_SCHEMA_VERSIONS: usize = 16;
/// Largest `schemas` map, as JSON text: schemas describe a payload (at most 350 KiB), they are
/// not one.
pub const MAX_SCHEMAS_BYTES: usize = 64 * 1024;
/// Most violations a refused payload reports: enough to fix the first mistakes, never a
/// response as large as the payload.
pub const MAX_REPORTED_VIOLATIONS: usize = 5;

stored_state!(
    /// Whether an event type's latest schema gates the messages of that type.
    SchemaValidation {
        /// Schemas are documentation only.
        Off = "off",
        /// A message whose payload does not match the latest schema is refused.
        Enforce = "enforce",
    }
);

/// A checked `schemas` map: every version is a valid JSON Schema that compiles.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSchemas {
    versions: BTreeMap<u32, Value>,
}

impl EventSchemas {
    /// Checks a `schemas` value as sent by a client (`field` names it in errors): an object
    /// of at most [`MAX_SCHEMA_VERSIONS`] entries, keyed by positive version numbers, each a
    /// JSON Schema that is valid against its meta-schema and compiles.
    pub fn parse(field: &str, value: &Value) -> Result<Self, ValidationError> {
        let Value::Object(entries) = value else {
            return Err(ValidationError::new(
                field,
                "must be an object of version numbers to JSON Schemas, e.g. {\"1\": {…}}",
            ));
        };
        if entries.len() > MAX_SCHEMA_VERSIONS {
            return Err(ValidationError::new(
                field,
                format!("at most {MAX_SCHEMA_VERSIONS} versions"),
            ));
        }
        if value.to_string().len() > MAX_SCHEMAS_BYTES {
            return Err(ValidationError::new(
                field,
                format!("at most {MAX_SCHEMAS_BYTES} bytes of JSON"),
            ));
        }
        let mut versions = BTreeMap::new();
        for (key, schema) in entries {
            let version = key
                .parse::<u32>()
                .ok()
                .filter(|version| *version > 0 && version.to_string() == *key)
                .ok_or_else(|| {
                    ValidationError::new(
                        field,
                        format!("{key:?} is not a version: keys are positive integers (\"1\", \"2\", …)"),
                    )
                })?;
            PayloadSchema::compile(&format!("{field}.{key}"), version, schema)?;
            versions.insert(version, schema.clone());
        }
        Ok(Self { versions })
    }

    /// Reads back a map that [`EventSchemas::parse`] accepted when it was stored.
    pub fn from_stored(value: &Value) -> Result<Self, ValidationError> {
        Self::parse("schemas", value)
    }

    /// The latest (highest) version and its schema; `None` for an empty map.
    pub fn latest(&self) -> Option<(u32, &Value)> {
        self.versions
            .iter()
            .next_back()
            .map(|(version, schema)| (*version, schema))
    }

    /// The latest schema, compiled; `None` for an empty map.
    pub fn compile_latest(&self) -> Result<Option<PayloadSchema>, ValidationError> {
        self.latest()
            .map(|(version, schema)| {
                PayloadSchema::compile(&format!("schemas.{version}"), version, schema)
            })
            .transpose()
    }

    /// The event type's example: `examples[0]` of version 1, else of the latest version.
    pub fn example(&self) -> Option<&Value> {
        fn first_example(schema: &Value) -> Option<&Value> {
            schema.get("examples")?.get(0)
        }
        self.versions
            .get(&1)
            .and_then(first_example)
            .or_else(|| self.latest().and_then(|(_, schema)| first_example(schema)))
    }

    /// The map as stored and returned: `{"1": {…}, …}`.
    pub fn to_value(&self) -> Value {
        Value::Object(
            self.versions
                .iter()
                .map(|(version, schema)| (version.to_string(), schema.clone()))
                .collect(),
        )
    }
}

/// One reason a payload does not match its schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// JSON Pointer (RFC 6901) to the offending value of the payload; empty for the whole.
    pub pointer: String,
    /// What is wrong there, without repeating the value.
    pub reason: String,
}

/// A compiled schema that payloads are checked against.
#[derive(Debug)]
pub struct PayloadSchema {
    version: u32,
    validator: jsonschema::Validator,
}

impl PayloadSchema {
    /// Compiles `schema`, the event type's `version`, after checking it against its
    /// meta-schema (the draft its `$schema` names, 2020-12 by default); `field` names it in
    /// errors.
    pub fn compile(field: &str, version: u32, schema: &Value) -> Result<Self, ValidationError> {
        if !schema.is_object() && !schema.is_boolean() {
            return Err(ValidationError::new(
                field,
                "must be a JSON Schema (an object or a boolean)",
            ));
        }
        jsonschema::meta::validate(schema).map_err(|err| {
            ValidationError::new(field, format!("is not a valid JSON Schema: {err}"))
        })?;
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(schema)
            .map_err(|err| ValidationError::new(field, format!("cannot be used: {err}")))?;
        Ok(Self { version, validator })
    }

    /// The version of the event type's schemas this is.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The first [`MAX_REPORTED_VIOLATIONS`] reasons why `payload` does not match; empty when
    /// it does.
    pub fn violations(&self, payload: &Value) -> Vec<Violation> {
        self.validator
            .iter_errors(payload)
            .take(MAX_REPORTED_VIOLATIONS)
            .map(|error| Violation {
                pointer: error.instance_path().to_string(),
                reason: error.masked().to_string(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn versions_are_positive_integers_and_the_highest_is_the_latest() {
        let schemas = EventSchemas::parse(
            "schemas",
            &json!({"2": {"type": "object"}, "10": {"type": "array"}, "1": true}),
        )
        .unwrap();
        assert_eq!(schemas.latest(), Some((10, &json!({"type": "array"}))));
        for bad in ["0", "-1", "01", "v1", "1.5", ""] {
            let err = EventSchemas::parse("schemas", &json!({ bad: {} })).unwrap_err();
            assert!(err.message.contains("not a version"), "{bad}: {err}");
        }
        assert!(EventSchemas::parse("schemas", &json!([{}])).is_err());
        assert_eq!(
            EventSchemas::parse("schemas", &json!({})).unwrap().latest(),
            None
        );
    }

    #[test]
    fn an_invalid_schema_is_refused_naming_its_version() {
        let err = EventSchemas::parse("schemas", &json!({"1": {"type": "strnig"}})).unwrap_err();
        assert_eq!(err.field, "schemas.1");
        assert!(err.message.contains("not a valid JSON Schema"), "{err}");
        let err =
            EventSchemas::parse("schemas", &json!({"1": {"pattern": "(unclosed"}})).unwrap_err();
        assert_eq!(err.field, "schemas.1");
        let err = EventSchemas::parse("schemas", &json!({"1": "string"})).unwrap_err();
        assert!(err.message.contains("object or a boolean"), "{err}");
    }

    #[test]
    fn remote_references_are_refused_not_fetched() {
        let err = EventSchemas::parse(
            "schemas",
            &json!({"1": {"$ref": "http://127.0.0.1:9/never-fetched.json"}}),
        )
        .unwrap_err();
        assert_eq!(err.field, "schemas.1");
        // A local reference is fine.
        EventSchemas::parse(
            "schemas",
            &json!({"1": {"$defs": {"id": {"type": "string"}}, "$ref": "#/$defs/id"}}),
        )
        .unwrap();
    }

    #[test]
    fn limits_on_count_and_size() {
        let many: serde_json::Map<String, Value> = (1..=MAX_SCHEMA_VERSIONS + 1)
            .map(|v| (v.to_string(), json!({})))
            .collect();
        assert!(EventSchemas::parse("schemas", &Value::Object(many)).is_err());
        let huge = json!({"1": {"description": "x".repeat(MAX_SCHEMAS_BYTES)}});
        assert!(EventSchemas::parse("schemas", &huge).is_err());
    }

    #[test]
    fn the_example_is_examples_0_of_version_1() {
        let schemas = EventSchemas::parse(
            "schemas",
            &json!({"1": {"examples": [{"id": 1}, {"id": 2}]}, "2": {"examples": [{"id": 3}]}}),
        )
        .unwrap();
        assert_eq!(schemas.example(), Some(&json!({"id": 1})));
        let later_only =
            EventSchemas::parse("schemas", &json!({"3": {"examples": ["late"]}})).unwrap();
        assert_eq!(later_only.example(), Some(&json!("late")));
        let none = EventSchemas::parse("schemas", &json!({"1": {}})).unwrap();
        assert_eq!(none.example(), None);
    }

    #[test]
    fn violations_name_the_pointer_and_the_reason_without_the_value() {
        let schema = PayloadSchema::compile(
            "schemas.1",
            1,
            &json!({
                "type": "object",
                "required": ["id", "amount"],
                "properties": {
                    "id": {"type": "string"},
                    "amount": {"type": "integer", "minimum": 0},
                    "email": {"type": "string", "format": "email"},
                    "items": {"type": "array", "items": {"type": "string"}}
                }
            }),
        )
        .unwrap();
        assert!(schema
            .violations(&json!({"id": "a", "amount": 3, "email": "a@example.com"}))
            .is_empty());
        let found = schema.violations(&json!({
            "amount": -1, "email": "secret-not-an-email", "items": ["ok", 7]
        }));
        let pointers: Vec<&str> = found.iter().map(|v| v.pointer.as_str()).collect();
        for expected in ["", "/amount", "/email", "/items/1"] {
            assert!(pointers.contains(&expected), "{expected} in {found:?}");
        }
        assert!(
            found
                .iter()
                .all(|v| !v.reason.contains("secret-not-an-email")),
            "{found:?}"
        );
        let many: Vec<Value> = (0..20).map(|_| json!(1)).collect();
        let schema = PayloadSchema::compile(
            "s",
            1,
            &json!({"type": "array", "items": {"type": "string"}}),
        )
        .unwrap();
        assert_eq!(
            schema.violations(&Value::Array(many)).len(),
            MAX_REPORTED_VIOLATIONS
        );
    }

    #[test]
    fn stored_spelling_of_the_mode() {
        assert_eq!(
            SchemaValidation::parse("enforce"),
            Ok(SchemaValidation::Enforce)
        );
        assert_eq!(SchemaValidation::Off.as_str(), "off");
    }
}
