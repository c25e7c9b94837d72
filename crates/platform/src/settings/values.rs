//! Parsing and deriving single configuration values: addresses, durations, retention
//! periods, the public URL and the portal's signing key. Each refusal names its setting.

use std::net::SocketAddr;
use std::time::Duration;

use octohooks_domain::retry::RetrySchedule;

use super::SettingsError;

/// A refusal of the value of setting `key`.
pub(super) fn invalid(key: &'static str, message: String) -> SettingsError {
    SettingsError::Invalid { key, message }
}

/// The portal key: configured, or derived from the encryption key, or random (ephemeral).
pub(super) fn portal_key(
    configured: &str,
    encryption_key: &str,
) -> Result<(Vec<u8>, bool), SettingsError> {
    use base64::Engine as _;
    let decode = |text: &str| base64::engine::general_purpose::STANDARD.decode(text.trim());
    if !configured.trim().is_empty() {
        let key = decode(configured)
            .ok()
            .filter(|key| key.len() >= 32)
            .ok_or_else(|| {
                invalid(
                    "portal_signing_key",
                    "must be base64 of at least 32 bytes".into(),
                )
            })?;
        return Ok((key, false));
    }
    if let Ok(secret) = decode(encryption_key).map_err(|_| ()).and_then(|key| {
        if key.is_empty() {
            Err(())
        } else {
            Ok(key)
        }
    }) {
        let derived = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret),
            b"octohooks portal tokens v1",
        );
        return Ok((derived.as_ref().to_vec(), false));
    }
    let random = octohooks_domain::signing::random_bytes(32)
        .map_err(|err| invalid("portal_signing_key", err.to_string()))?;
    Ok((random, true))
}

/// The public base URL of the API, if set: absolute http(s), without a trailing slash.
pub(super) fn public_url(configured: &str) -> Result<Option<String>, SettingsError> {
    let text = configured.trim().trim_end_matches('/');
    if text.is_empty() {
        return Ok(None);
    }
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
            Ok(Some(text.to_owned()))
        }
        _ => Err(invalid(
            "public_url",
            "must be an absolute http(s) URL such as https://hooks.example.com".into(),
        )),
    }
}

/// A listen address such as `127.0.0.1:8080`.
pub(super) fn parse_addr(text: &str) -> Option<SocketAddr> {
    text.trim().parse().ok()
}

/// A retention period: a duration such as `90d`, or `off` to keep everything.
pub(super) fn parse_period(
    name: &'static str,
    text: &str,
) -> Result<Option<Duration>, SettingsError> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    parse_duration(text)
        .filter(|period| !period.is_zero())
        .map(Some)
        .ok_or_else(|| SettingsError::Invalid {
            key: name,
            message: "must be a duration such as 90d, or off".into(),
        })
}

/// Parses one duration like `15s` or `500ms` (a schedule of one delay).
pub(super) fn parse_duration(text: &str) -> Option<Duration> {
    RetrySchedule::parse(text)
        .ok()
        .and_then(|schedule| schedule.delay_after(1))
        .filter(|_| !text.contains(','))
}
