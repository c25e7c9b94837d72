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

wire_enum!(
    /// Where a background task stands.
    TaskStatus = status::TaskStatus {
        /// Queued or under way.
        Running,
        /// Every message of its window was examined.
        Finished,
        /// Stopped by an error (see `failure`).
        Failed,
    }
);

/// What a background task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum TaskKind {
    /// `POST …/endpoints/{endpoint}/recover`.
    #[serde(rename = "endpoint.recover")]
    Recover,
    /// `POST …/endpoints/{endpoint}/replay-missing`.
    #[serde(rename = "endpoint.replay")]
    Replay,
}

impl From<status::TaskKind> for TaskKind {
    fn from(kind: status::TaskKind) -> Self {
        match kind {
            status::TaskKind::Recover => Self::Recover,
            status::TaskKind::Replay => Self::Replay,
        }
    }
}

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

    /// Each state's wire spelling beside its stored one.
    fn spellings<D: Copy, W: Serialize + From<D>>(
        states: &[D],
        stored: fn(D) -> &'static str,
    ) -> Vec<(String, &'static str)> {
        states
            .iter()
            .map(|state| {
                let wire = serde_json::to_value(W::from(*state)).unwrap();
                (wire.as_str().unwrap().to_owned(), stored(*state))
            })
            .collect()
    }

    /// The wire spelling, the stored spelling and the OpenAPI document's values agree.
    #[test]
    fn stored_enums_serialize_as_stored_and_as_documented() {
        use status::{AttemptStatus as A, DestinationStatus as D, TaskKind as K, TaskStatus as S};
        let document = crate::openapi::document();
        let schemas: serde_json::Value = serde_json::from_str(&document).unwrap();
        let cases = [
            (
                "AttemptStatus",
                spellings::<_, AttemptStatus>(&[A::Success, A::Failed], A::as_str),
            ),
            (
                "TriggerType",
                spellings::<_, TriggerType>(
                    &[job::TriggerType::Scheduled, job::TriggerType::Manual],
                    job::TriggerType::as_str,
                ),
            ),
            (
                "DestinationStatus",
                spellings::<_, DestinationStatus>(&[D::Pending, D::Success, D::Failed], D::as_str),
            ),
            (
                "TaskStatus",
                spellings::<_, TaskStatus>(&[S::Running, S::Finished, S::Failed], S::as_str),
            ),
            (
                "TaskKind",
                spellings::<_, TaskKind>(&[K::Recover, K::Replay], K::as_str),
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
