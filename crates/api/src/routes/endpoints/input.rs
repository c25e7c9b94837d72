//! Endpoint bodies checked and turned into what is stored, with no HTTP in sight: creation,
//! full update, and the document a merge patch applies to.

use std::collections::BTreeMap;

use chrono::Utc;
use octohooks_db::endpoints::EndpointChanges;
use octohooks_db::models;
use octohooks_domain::signing::{EndpointSecret, SecretKind};
use octohooks_domain::validate::{
    parse_description, parse_headers, parse_name_list, parse_rate_limit, DisplayName, EndpointUrl,
    Uid, ValidationError,
};

use super::generate;
use crate::dto::{EndpointIn, EndpointUpdate};
use crate::error::ApiError;

/// An optional text field through its parser; absent stays absent.
fn parse_optional<T>(
    value: Option<&str>,
    parse: impl Fn(&str) -> Result<T, octohooks_domain::validate::ValidationError>,
) -> Result<Option<T>, ApiError> {
    Ok(value.map(parse).transpose()?)
}

/// Custom headers as stored: a JSON object of strings.
fn headers_json(headers: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::Value::Object(
        headers
            .iter()
            .map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone())))
            .collect(),
    )
}

/// The endpoint a `POST` creates, with its first secret (given, or generated of the kind asked).
pub(super) fn parse_new_endpoint(
    body: &EndpointIn,
) -> Result<(models::Endpoint, EndpointSecret), ApiError> {
    let now = Utc::now();
    let secret_text = body.secret.as_deref().or_else(|| {
        body.secrets
            .as_ref()
            .and_then(|list| list.first())
            .map(String::as_str)
    });
    let secret = match secret_text {
        Some(text) => EndpointSecret::parse("secret", text)?,
        None => generate(body.secret_kind.map_or(SecretKind::Hmac, Into::into))?,
    };
    let endpoint = models::Endpoint {
        id: octohooks_domain::new_id(),
        application_id: uuid::Uuid::nil(),
        uid: parse_optional(body.uid.as_deref(), |v| {
            Uid::parse("uid", v).map(Uid::into_inner)
        })?,
        name: parse_optional(body.name.as_deref(), |v| {
            DisplayName::parse("name", v).map(DisplayName::into_inner)
        })?
        .unwrap_or_default(),
        description: parse_optional(body.description.as_deref(), |v| {
            parse_description("description", v)
        })?
        .unwrap_or_default(),
        url: EndpointUrl::parse("url", &body.url)?.into_inner(),
        enabled: body.enabled.unwrap_or(true),
        disabled_reason: None,
        channels: parse_name_list("channels", body.channels.as_deref().unwrap_or_default())?,
        event_types: parse_name_list(
            "eventTypes",
            body.event_types.as_deref().unwrap_or_default(),
        )?,
        headers: headers_json(&parse_headers(
            "headers",
            body.headers.as_ref().unwrap_or(&BTreeMap::new()),
        )?),
        created: now,
        updated: now,
        failing_since: None,
        rate_limit: body
            .rate_limit
            .map(|limit| parse_rate_limit("rateLimit", limit))
            .transpose()?,
    };
    Ok((endpoint, secret))
}

/// The endpoint a full update (`PUT`) makes of `current`: every field given replaces its value.
fn parse_changes(
    body: &EndpointUpdate,
    current: models::Endpoint,
) -> Result<EndpointChanges, ApiError> {
    let enabled = body.enabled.unwrap_or(current.enabled);
    Ok(EndpointChanges {
        uid: match &body.uid {
            None => current.uid,
            Some(uid) => parse_optional(uid.as_deref(), |v| {
                Uid::parse("uid", v).map(Uid::into_inner)
            })?,
        },
        name: parse_optional(body.name.as_deref(), |v| {
            DisplayName::parse("name", v).map(DisplayName::into_inner)
        })?
        .unwrap_or(current.name),
        description: parse_optional(body.description.as_deref(), |v| {
            parse_description("description", v)
        })?
        .unwrap_or(current.description),
        url: EndpointUrl::parse("url", &body.url)?.into_inner(),
        enabled,
        disabled_reason: if enabled {
            None
        } else {
            current.disabled_reason
        },
        failing_since: if enabled && !current.enabled {
            None
        } else {
            current.failing_since
        },
        channels: match &body.channels {
            Some(list) => parse_name_list("channels", list)?,
            None => current.channels,
        },
        event_types: match &body.event_types {
            Some(list) => parse_name_list("eventTypes", list)?,
            None => current.event_types,
        },
        headers: match &body.headers {
            Some(headers) => headers_json(&parse_headers("headers", headers)?),
            None => current.headers,
        },
        rate_limit: match body.rate_limit {
            Some(limit) => limit
                .map(|limit| parse_rate_limit("rateLimit", limit))
                .transpose()?,
            None => current.rate_limit,
        },
        updated: Utc::now(),
    })
}

/// An operational endpoint receives operational events only, which have no channels: its
/// filter names operational event types, and a channel filter would let nothing through.
pub(super) fn check_operational(
    event_types: &[String],
    channels: &[String],
) -> Result<(), ApiError> {
    octohooks_domain::operational::check_filter("eventTypes", event_types)?;
    if !channels.is_empty() {
        return Err(ValidationError::new(
            "channels",
            "operational events have no channels: leave the filter empty",
        )
        .into());
    }
    Ok(())
}

/// The endpoint as the JSON document a merge patch applies to.
pub(super) fn patch_target(endpoint: &models::Endpoint) -> serde_json::Value {
    let mut current = serde_json::json!({
        "url": endpoint.url,
        "uid": endpoint.uid,
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "eventTypes": endpoint.event_types,
        "channels": endpoint.channels,
        "headers": endpoint.headers,
        "rateLimit": endpoint.rate_limit,
    });
    // An endpoint created without a name has an empty one, which an update may not set: left
    // out, the update keeps it.
    if !endpoint.name.is_empty() {
        current["name"] = endpoint.name.clone().into();
    }
    current
}

/// The change `body` makes of the endpoint as `stored`; operational endpoints take only
/// operational event types.
pub(super) fn endpoint_changes(
    body: &EndpointUpdate,
    stored: models::Endpoint,
    operational: bool,
) -> Result<EndpointChanges, ApiError> {
    let changes = parse_changes(body, stored)?;
    if operational {
        check_operational(&changes.event_types, &changes.channels)?;
    }
    Ok(changes)
}
