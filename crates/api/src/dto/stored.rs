//! String enums of the API whose values are stored as text: listed in the OpenAPI document,
//! checked when read back.

use serde::Serialize;
use utoipa::ToSchema;

/// A stored status the API does not know (written by hand, or by a newer version).
#[derive(Debug, thiserror::Error)]
#[error("unknown stored value {0:?}")]
pub struct UnknownValue(pub String);

/// Declares a string enum of the API with its stored spelling (the variant's name in lower
/// case), so that the OpenAPI document lists its values and stored text is checked when read.
macro_rules! stored_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// The value stored as `text`.
            pub fn parse(text: &str) -> Result<Self, UnknownValue> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    other => Err(UnknownValue(other.to_owned())),
                }
            }
        }
    };
}

stored_enum!(
    /// How one attempt ended.
    AttemptStatus {
        /// The receiver answered 2xx.
        Success = "success",
        /// Any other answer, or none.
        Failed = "failed",
    }
);

stored_enum!(
    /// What made an attempt.
    TriggerType {
        /// The delivery schedule (first attempt or retry).
        Scheduled = "scheduled",
        /// A resend.
        Manual = "manual",
    }
);

stored_enum!(
    /// Where the delivery of a message to one endpoint stands.
    DestinationStatus {
        /// The next attempt is due at `nextAttempt`.
        Pending = "pending",
        /// Delivered.
        Success = "success",
        /// Failed for good.
        Failed = "failed",
    }
);

/// Health of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Fit to serve.
    Ok,
    /// A dependency is missing.
    Unavailable,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire spelling, the stored spelling and the OpenAPI document's values agree.
    #[test]
    fn stored_enums_serialize_as_stored_and_as_documented() {
        let document = crate::openapi::document();
        let schemas: serde_json::Value = serde_json::from_str(&document).unwrap();
        let cases: [(&str, Vec<serde_json::Value>, &[&str]); 3] = [
            (
                "AttemptStatus",
                ["success", "failed"]
                    .map(|text| serde_json::to_value(AttemptStatus::parse(text).unwrap()).unwrap())
                    .to_vec(),
                &["success", "failed"],
            ),
            (
                "TriggerType",
                ["scheduled", "manual"]
                    .map(|text| serde_json::to_value(TriggerType::parse(text).unwrap()).unwrap())
                    .to_vec(),
                &["scheduled", "manual"],
            ),
            (
                "DestinationStatus",
                ["pending", "success", "failed"]
                    .map(|text| {
                        serde_json::to_value(DestinationStatus::parse(text).unwrap()).unwrap()
                    })
                    .to_vec(),
                &["pending", "success", "failed"],
            ),
        ];
        for (name, serialized, stored) in cases {
            let expected: Vec<serde_json::Value> = stored.iter().map(|s| (*s).into()).collect();
            assert_eq!(serialized, expected, "{name} on the wire");
            assert_eq!(
                schemas["components"]["schemas"][name]["enum"],
                serde_json::Value::Array(expected),
                "{name} in the OpenAPI document"
            );
        }
        assert!(AttemptStatus::parse("Success").is_err());
    }
}
