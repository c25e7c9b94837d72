//! `PATCH` with a JSON Merge Patch (RFC 7396): the patch is applied to the object's current
//! updatable fields, and the result goes through the same update as a `PUT`, so a `PATCH` can
//! never store what a `PUT` would refuse. Objects (such as `headers`) merge key by key, a `null`
//! member removes that key; other values, arrays included, replace. A top-level `null` clears
//! the field to what the resource says ([`OnNull`]), or is refused for a field that cannot be
//! empty (a URL, a name, a flag).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// What a top-level `null` does to one field.
#[derive(Debug, Clone, Copy)]
pub enum OnNull {
    /// The field is cleared: the update receives an explicit `null` (an optional field).
    Clears,
    /// The field is emptied: `""`, `[]` or `{}`.
    Empties(Empty),
    /// The field cannot be cleared: the patch is refused.
    Refused,
}

/// The empty value of a field that is never absent.
#[derive(Debug, Clone, Copy)]
pub enum Empty {
    /// `""`.
    Text,
    /// `[]`.
    List,
    /// `{}`.
    Map,
}

/// The update body (`U`, the resource's `PUT` shape) that `patch` makes of `current` (the
/// object's updatable fields in that shape); `fields` says what `null` means per field.
pub fn apply<U: DeserializeOwned>(
    current: Value,
    patch: Value,
    fields: &[(&str, OnNull)],
) -> Result<U, ApiError> {
    let Value::Object(current) = current else {
        return Err(ApiError::Internal(
            "current fields are not an object".into(),
        ));
    };
    let Value::Object(patch) = patch else {
        return Err(ApiError::invalid(
            "body",
            "a merge patch must be a JSON object of the fields to change",
        ));
    };
    let mut merged = current;
    for (name, change) in patch {
        if change.is_null() {
            let on_null = fields
                .iter()
                .find(|(field, _)| *field == name)
                .map_or(OnNull::Refused, |(_, on_null)| *on_null);
            let cleared = match on_null {
                OnNull::Clears => Value::Null,
                OnNull::Empties(Empty::Text) => Value::String(String::new()),
                OnNull::Empties(Empty::List) => Value::Array(Vec::new()),
                OnNull::Empties(Empty::Map) => Value::Object(Map::new()),
                OnNull::Refused => return Err(ApiError::invalid(&name, "cannot be null")),
            };
            merged.insert(name, cleared);
            continue;
        }
        match merged.get_mut(&name) {
            Some(target) => merge(target, change),
            None => {
                merged.insert(name, without_nulls(change));
            }
        }
    }
    serde_path_to_error::deserialize(Value::Object(merged)).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::invalid(&field, err.into_inner().to_string())
    })
}

/// RFC 7396 `MergePatch(target, patch)`, in place.
fn merge(target: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *target = patch;
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(fields) = target {
        for (name, change) in patch {
            if change.is_null() {
                fields.remove(&name);
            } else {
                merge(fields.entry(name).or_insert(Value::Null), change);
            }
        }
    }
}

fn without_nulls(value: Value) -> Value {
    let mut target = Value::Null;
    merge(&mut target, value);
    target
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Update {
        url: String,
        description: Option<String>,
        headers: Option<BTreeMap<String, String>>,
        #[serde(default, deserialize_with = "crate::dto::present")]
        rate_limit: Option<Option<i64>>,
        event_types: Option<Vec<String>>,
    }

    const FIELDS: &[(&str, OnNull)] = &[
        ("description", OnNull::Empties(Empty::Text)),
        ("headers", OnNull::Empties(Empty::Map)),
        ("eventTypes", OnNull::Empties(Empty::List)),
        ("rateLimit", OnNull::Clears),
        ("url", OnNull::Refused),
    ];

    fn current() -> Value {
        json!({"url": "https://a.example/", "description": "d", "rateLimit": 5,
               "headers": {"X-A": "1", "X-B": "2"}, "eventTypes": ["a", "b"]})
    }

    #[test]
    fn objects_merge_key_by_key_and_everything_else_replaces() {
        let update: Update = apply(
            current(),
            json!({"headers": {"X-B": null, "X-C": "3"}, "eventTypes": ["c"]}),
            FIELDS,
        )
        .unwrap();
        let headers = update.headers.unwrap();
        assert_eq!(
            headers.keys().collect::<Vec<_>>(),
            ["X-A", "X-C"],
            "X-B removed, X-C added, X-A kept"
        );
        assert_eq!(update.event_types.unwrap(), ["c"]);
        assert_eq!(update.url, "https://a.example/");
        assert_eq!(update.rate_limit, Some(Some(5)), "left out: kept");
    }

    #[test]
    fn null_clears_empties_or_is_refused() {
        let update: Update = apply(
            current(),
            json!({"rateLimit": null, "description": null, "headers": null, "eventTypes": null}),
            FIELDS,
        )
        .unwrap();
        assert_eq!(update.rate_limit, Some(None));
        assert_eq!(update.description.as_deref(), Some(""));
        assert!(update.headers.unwrap().is_empty());
        assert!(update.event_types.unwrap().is_empty());
        let err = apply::<Update>(current(), json!({"url": null}), FIELDS).unwrap_err();
        assert!(err.to_string().contains("url"), "{err}");
    }

    #[test]
    fn what_the_update_refuses_is_refused_naming_the_field() {
        let err = apply::<Update>(current(), json!({"id": "x"}), FIELDS).unwrap_err();
        assert!(err.to_string().contains("unknown field `id`"), "{err}");
        let err = apply::<Update>(current(), json!({"headers": {"X-A": 7}}), FIELDS).unwrap_err();
        assert!(err.to_string().starts_with("headers.X-A"), "{err}");
        let err = apply::<Update>(current(), json!(["not", "an", "object"]), FIELDS).unwrap_err();
        assert!(err.to_string().starts_with("body"), "{err}");
    }
}
