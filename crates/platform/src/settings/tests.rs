//! Loading settings from the environment: defaults, overrides, refusals, and the encryption key
//! the API requires.

use super::*;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_are_the_documented_ones() {
    let settings = Settings::load_from(HashMap::new()).unwrap();
    assert_eq!(
        settings.database_url,
        "postgres://postgres@127.0.0.1:5432/octohooks"
    );
    assert_eq!(settings.amqp_url, "amqp://guest:guest@127.0.0.1:5672/%2f");
    assert_eq!(settings.listen_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(
        settings.dispatcher_listen_addr.to_string(),
        "127.0.0.1:8081"
    );
    assert!(settings.admin_token.is_none());
    assert_eq!(settings.retry_schedule.max_attempts(), 8);
    assert!(!settings.destination_policy.allow_private);
    assert_eq!(settings.delivery_timeout, Duration::from_secs(15));
    assert_eq!(
        settings.endpoint_max_in_flight, 8,
        "one endpoint's attempts are capped unless an operator turns the cap off"
    );
    assert!(
        settings.express_lane,
        "first attempts go by the express lane"
    );
}

#[test]
fn environment_overrides_defaults() {
    let settings = Settings::load_from(vars(&[
        ("OCTOHOOKS_DATABASE_URL", "postgres://x@db/y"),
        ("OCTOHOOKS_LISTEN_ADDR", "0.0.0.0:9000"),
        ("OCTOHOOKS_ADMIN_TOKEN", "0123456789abcdef0123456789abcdef"),
        ("OCTOHOOKS_RETRY_SCHEDULE", "1s,1s,1s"),
        ("OCTOHOOKS_ALLOW_PRIVATE_DESTINATIONS", "true"),
        ("OCTOHOOKS_DISPATCHER_LISTEN_ADDR", "127.0.0.1:0"),
    ]))
    .unwrap();
    assert_eq!(settings.database_url, "postgres://x@db/y");
    assert_eq!(settings.listen_addr.port(), 9000);
    assert_eq!(
        settings.admin_token.as_deref(),
        Some("0123456789abcdef0123456789abcdef"),
        "kept as text"
    );
    assert_eq!(settings.retry_schedule.max_attempts(), 4);
    assert!(settings.destination_policy.allow_private);
    assert!(!format!("{settings:?}").contains("abcdef"));
}

#[test]
fn bad_values_name_the_variable() {
    for (key, value, expected) in [
        ("OCTOHOOKS_LISTEN_ADDR", "nope", "OCTOHOOKS_LISTEN_ADDR"),
        (
            "OCTOHOOKS_RETRY_SCHEDULE",
            "5 parsecs",
            "OCTOHOOKS_RETRY_SCHEDULE",
        ),
        (
            "OCTOHOOKS_DELIVERY_TIMEOUT",
            "soon",
            "OCTOHOOKS_DELIVERY_TIMEOUT",
        ),
        (
            "OCTOHOOKS_ALLOWED_DESTINATION_CIDRS",
            "10.0.0.0/99",
            "OCTOHOOKS_ALLOWED_DESTINATION_CIDRS",
        ),
        (
            "OCTOHOOKS_ADMIN_TOKEN",
            "0123456789abcdef0123456789abcde",
            "at least 32 characters",
        ),
    ] {
        let err = Settings::load_from(vars(&[(key, value)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{err}");
    }
    let err = Settings::load_from(vars(&[("OCTOHOOKS_ALLOW_PRIVATE_DESTINATIONS", "maybe")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("allow_private_destinations"), "{err}");
}

#[test]
fn the_api_needs_an_encryption_key_or_an_explicit_opt_out() {
    let without = Settings::load_from(HashMap::new()).unwrap();
    let err = without.require_secret_encryption().unwrap_err().to_string();
    assert!(err.contains("OCTOHOOKS_SECRET_ENCRYPTION_KEY"), "{err}");
    assert!(err.contains("OCTOHOOKS_ALLOW_PLAINTEXT_SECRETS"), "{err}");
    let opted_out =
        Settings::load_from(vars(&[("OCTOHOOKS_ALLOW_PLAINTEXT_SECRETS", "true")])).unwrap();
    assert!(opted_out.require_secret_encryption().is_ok());
    let keyed = Settings::load_from(vars(&[(
        "OCTOHOOKS_SECRET_ENCRYPTION_KEY",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    )]))
    .unwrap();
    assert!(keyed.require_secret_encryption().is_ok());
}
