//! Input types that can only hold valid values. Each `parse` names the offending field in its
//! error, so the API can answer 422 with a precise `detail` without any extra bookkeeping.

use std::collections::BTreeMap;

/// Why a value was refused: the JSON field at fault and a human sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The request field, in the API's camelCase spelling.
    pub field: String,
    /// What is wrong with it, safe to show to the client.
    pub message: String,
}

impl ValidationError {
    /// Builds an error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Longest uid, name, event type or channel we store; keeps indexes and logs bounded.
pub const MAX_IDENTIFIER_LEN: usize = 256;
/// Longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// Most channels on a message or an endpoint, and most event types on an endpoint.
pub const MAX_LIST_LEN: usize = 64;
/// Most custom headers on an endpoint.
pub const MAX_HEADERS: usize = 32;
/// Longest custom header value.
pub const MAX_HEADER_VALUE_LEN: usize = 4096;

fn is_identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn parse_identifier(field: &str, value: &str) -> Result<String, ValidationError> {
    if value.is_empty() || value.len() > MAX_IDENTIFIER_LEN {
        return Err(ValidationError::new(
            field,
            format!("must be 1 to {MAX_IDENTIFIER_LEN} characters long"),
        ));
    }
    if !value.chars().all(is_identifier_char) {
        return Err(ValidationError::new(
            field,
            "may only contain letters, digits, '_', '.' and '-'",
        ));
    }
    Ok(value.to_owned())
}

/// A user-chosen identifier (seed "IDs and UIDs"): 1–256 characters of `[a-zA-Z0-9_.-]`.
/// It may look like a UUID (the seed quickstart uses one for a message); lookups then prefer
/// the entity whose id it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uid(String);

impl Uid {
    /// Validates `value` as the uid of `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, ValidationError> {
        parse_identifier(field, value).map(Self)
    }

    /// The validated text.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// An event type name such as `invoice.paid`; also used for channel names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTypeName(String);

impl EventTypeName {
    /// Validates `value` as an event type (or channel) name of `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, ValidationError> {
        parse_identifier(field, value).map(Self)
    }

    /// The validated text.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Validates a list of event type or channel names, refusing duplicates silently by removing them.
pub fn parse_name_list(field: &str, values: &[String]) -> Result<Vec<String>, ValidationError> {
    if values.len() > MAX_LIST_LEN {
        return Err(ValidationError::new(
            field,
            format!("must hold at most {MAX_LIST_LEN} items"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for (index, value) in values.iter().enumerate() {
        let name = EventTypeName::parse(&format!("{field}[{index}]"), value)?.into_inner();
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// A display name: not blank, at most 256 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// Validates `value` as the name of `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, ValidationError> {
        if value.trim().is_empty() {
            return Err(ValidationError::new(field, "must not be empty"));
        }
        if value.chars().count() > MAX_IDENTIFIER_LEN {
            return Err(ValidationError::new(
                field,
                format!("must be at most {MAX_IDENTIFIER_LEN} characters long"),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(ValidationError::new(
                field,
                "must not contain control characters",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// The validated text.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A free-text description: at most 4096 characters.
pub fn parse_description(field: &str, value: &str) -> Result<String, ValidationError> {
    if value.chars().count() > 4096 {
        return Err(ValidationError::new(
            field,
            "must be at most 4096 characters long",
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// Highest `rateLimit` an endpoint may have, in messages per second.
pub const MAX_RATE_LIMIT: i64 = 65_535;

/// An endpoint's `rateLimit`: messages per second, from 1 to [`MAX_RATE_LIMIT`].
pub fn parse_rate_limit(field: &str, value: i64) -> Result<i32, ValidationError> {
    if !(1..=MAX_RATE_LIMIT).contains(&value) {
        return Err(ValidationError::new(
            field,
            format!("must be between 1 and {MAX_RATE_LIMIT} messages per second"),
        ));
    }
    i32::try_from(value).map_err(|_| ValidationError::new(field, "is out of range"))
}

/// An absolute `http` or `https` URL with a host and no credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(String);

impl EndpointUrl {
    /// Validates `value` as the endpoint URL of `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, ValidationError> {
        if value.len() > MAX_URL_LEN {
            return Err(ValidationError::new(
                field,
                format!("must be at most {MAX_URL_LEN} characters long"),
            ));
        }
        let url = url::Url::parse(value)
            .map_err(|_| ValidationError::new(field, "must be an absolute http or https URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(ValidationError::new(
                field,
                "must be an absolute http or https URL",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ValidationError::new(
                field,
                "must not carry credentials; use endpoint headers instead",
            ));
        }
        Ok(Self(url.to_string()))
    }

    /// The normalised URL text.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Headers the dispatcher sets itself or that describe the connection: an endpoint may not set them.
const RESERVED_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "content-type",
    "content-encoding",
    "expect",
    "host",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
];

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Validates the custom headers of an endpoint: RFC 9110 token names, visible values without
/// CR/LF, none of the hop-by-hop or reserved names and no `webhook-*` header.
pub fn parse_headers(
    field: &str,
    headers: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ValidationError> {
    if headers.len() > MAX_HEADERS {
        return Err(ValidationError::new(
            field,
            format!("must hold at most {MAX_HEADERS} headers"),
        ));
    }
    let mut out = BTreeMap::new();
    for (name, value) in headers {
        let at = format!("{field}.{name}");
        if name.is_empty() || name.len() > 256 || !name.chars().all(is_token_char) {
            return Err(ValidationError::new(at, "is not a valid header name"));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("webhook-") {
            return Err(ValidationError::new(
                at,
                "is set by Octohooks and cannot be overridden",
            ));
        }
        if value.len() > MAX_HEADER_VALUE_LEN
            || value
                .chars()
                .any(|c| (c.is_control() && c != '\t') || !c.is_ascii())
        {
            return Err(ValidationError::new(
                at,
                "value must be printable ASCII without CR or LF, at most 4096 bytes",
            ));
        }
        if out.insert(lower, value.clone()).is_some() {
            return Err(ValidationError::new(at, "is given twice"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_accepts_the_documented_alphabet() {
        assert!(Uid::parse("uid", "my-app_1.2").is_ok());
        assert!(Uid::parse("uid", &"a".repeat(256)).is_ok());
    }

    #[test]
    fn uid_refuses_empty_long_and_odd_values() {
        for bad in ["", "has space", "ünï", "a/b"] {
            assert_eq!(Uid::parse("uid", bad).unwrap_err().field, "uid");
        }
        assert!(Uid::parse("uid", &"a".repeat(257)).is_err());
        assert!(Uid::parse("uid", "774fa91a-510b-4a35-9799-6c233f6af790").is_ok());
    }

    #[test]
    fn names_must_not_be_blank_or_hold_control_characters() {
        assert!(DisplayName::parse("name", "My App ✓").is_ok());
        assert!(DisplayName::parse("name", "   ").is_err());
        assert!(DisplayName::parse("name", "a\nb").is_err());
        assert!(DisplayName::parse("name", &"é".repeat(257)).is_err());
    }

    #[test]
    fn urls_must_be_absolute_http_without_credentials() {
        assert!(EndpointUrl::parse("url", "https://example.com/hook").is_ok());
        assert!(EndpointUrl::parse("url", "http://127.0.0.1:9000/").is_ok());
        for bad in [
            "ftp://example.com",
            "/relative",
            "example.com",
            "https://user:pw@example.com",
            "",
        ] {
            assert!(EndpointUrl::parse("url", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn name_lists_are_validated_and_deduplicated() {
        let list = vec!["a.b".to_owned(), "a.b".to_owned(), "c".to_owned()];
        assert_eq!(
            parse_name_list("eventTypes", &list).unwrap(),
            vec!["a.b", "c"]
        );
        let err = parse_name_list("channels", &["ok".into(), "not ok".into()]).unwrap_err();
        assert_eq!(err.field, "channels[1]");
    }

    #[test]
    fn headers_refuse_injection_and_reserved_names() {
        let ok = BTreeMap::from([("X-Api-Key".to_owned(), "v 1".to_owned())]);
        assert_eq!(
            parse_headers("headers", &ok).unwrap(),
            BTreeMap::from([("x-api-key".to_owned(), "v 1".to_owned())])
        );
        for (name, value) in [
            ("X-Evil", "a\r\nInjected: yes"),
            ("Bad Name", "v"),
            ("Content-Type", "text/plain"),
            ("Transfer-Encoding", "chunked"),
            ("webhook-signature", "v1,forged"),
            ("Host", "other"),
        ] {
            let headers = BTreeMap::from([(name.to_owned(), value.to_owned())]);
            assert!(parse_headers("headers", &headers).is_err(), "{name}");
        }
    }
}

/// Deepest JSON nesting accepted anywhere in a request body.
pub const MAX_JSON_DEPTH: usize = 64;

/// True when `json` nests arrays or objects deeper than `max`. A linear scan that runs before
/// parsing, so that a hostile body costs neither stack nor memory.
pub fn json_nesting_exceeds(json: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in json {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod depth_tests {
    use super::*;

    #[test]
    fn counts_nesting_outside_strings_only() {
        assert!(!json_nesting_exceeds(br#"{"a":[[1]]}"#, 3));
        assert!(json_nesting_exceeds(br#"{"a":[[[1]]]}"#, 3));
        assert!(!json_nesting_exceeds(br#"{"a":"[[[[[[\"[[["}"#, 1));
        assert!(json_nesting_exceeds(
            "[".repeat(10_000).as_bytes(),
            MAX_JSON_DEPTH
        ));
    }
}
