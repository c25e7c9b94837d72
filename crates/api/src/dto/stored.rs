//! The API's faces of the states the pipeline stores ([`octohooks_domain::status`] and the
//! trigger type): the same variants, listed in the OpenAPI document and spelled on the wire as
//! they are stored.

use octohooks_domain::{job, status};
use serde::Serialize;
use utoipa::ToSchema;

/// Declares the API's face of a domain state: same variants, serialised in lower case (which
/// is how the domain stores them; a test holds the two together).
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident = $domain:path { $($(#[$vdoc:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
        #[serde(rename_all = "lowercase")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl From<$domain> for $name {
            fn from(state: $domain) -> Self {
                match state {
                    $(<$domain>::$variant => Self::$variant,)+
                }
            }
        }
    };
}

wire_enum!(
    /// How one attempt ended.
    AttemptStatus = status::AttemptStatus {
        /// The receiver answered 2xx.
        Success,
        /// Any other answer, or none.
        Failed,
    }
);

wire_enum!(
    /// What made an attempt.
    TriggerType = job::TriggerType {
        /// The delivery schedule (first attempt or retry).
        Scheduled,
        /// A resend.
        Manual,
    }
);

wire_enum!(
    /// Where the delivery of a message to one endpoint stands.
    DestinationStatus = status::DestinationStatus {
        /// The next attempt is due at `nextAttempt`.
        Pending,
        /// Delivered.
        Success,
        /// Failed for good.
        Failed,
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
        let wire = |value: serde_json::Value| value.as_str().unwrap().to_owned();
        let cases: [(&str, Vec<(String, &str)>); 3] = [
            (
                "AttemptStatus",
                [
                    status::AttemptStatus::Success,
                    status::AttemptStatus::Failed,
                ]
                .map(|s| {
                    (
                        wire(serde_json::to_value(AttemptStatus::from(s)).unwrap()),
                        s.as_str(),
                    )
                })
                .to_vec(),
            ),
            (
                "TriggerType",
                [job::TriggerType::Scheduled, job::TriggerType::Manual]
                    .map(|s| {
                        (
                            wire(serde_json::to_value(TriggerType::from(s)).unwrap()),
                            s.as_str(),
                        )
                    })
                    .to_vec(),
            ),
            (
                "DestinationStatus",
                [
                    status::DestinationStatus::Pending,
                    status::DestinationStatus::Success,
                    status::DestinationStatus::Failed,
                ]
                .map(|s| {
                    (
                        wire(serde_json::to_value(DestinationStatus::from(s)).unwrap()),
                        s.as_str(),
                    )
                })
                .to_vec(),
            ),
        ];
        for (name, pairs) in cases {
            for (on_the_wire, stored) in &pairs {
                assert_eq!(on_the_wire, stored, "{name} on the wire");
            }
            let documented: Vec<serde_json::Value> =
                pairs.iter().map(|(_, stored)| (*stored).into()).collect();
            assert_eq!(
                schemas["components"]["schemas"][name]["enum"],
                serde_json::Value::Array(documented),
                "{name} in the OpenAPI document"
            );
        }
    }
}
