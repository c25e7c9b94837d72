//! Operational webhooks: the events an environment's operators are told about when their
//! customers' endpoints change or fail. The events are stored and queued by the database in
//! the transaction of the change (see migration 000019 and `octohooks_db::operational`); this
//! module names them and checks an operational endpoint's event type filter.

use crate::status::stored_state;
use crate::validate::ValidationError;

stored_state!(
    /// An operational event, by the `type` its body carries.
    OperationalEventType {
        /// An endpoint was created.
        EndpointCreated = "endpoint.created",
        /// An endpoint's settings changed (other than being enabled or disabled).
        EndpointUpdated = "endpoint.updated",
        /// An endpoint was deleted, by itself or with its application.
        EndpointDeleted = "endpoint.deleted",
        /// A disabled endpoint was enabled.
        EndpointEnabled = "endpoint.enabled",
        /// An endpoint was disabled: by hand (`trigger: manual`) or because it kept failing
        /// or answered 410 Gone (`trigger: automatic`).
        EndpointDisabled = "endpoint.disabled",
        /// A message failed [`FAILING_AFTER_ATTEMPTS`] scheduled attempts in a row to one endpoint.
        MessageAttemptFailing = "message.attempt.failing",
        /// A message's last scheduled attempt to one endpoint failed: no more retries.
        MessageAttemptExhausted = "message.attempt.exhausted",
        /// A message was delivered after `message.attempt.failing` was raised for it.
        MessageAttemptRecovered = "message.attempt.recovered",
    }
);

/// Consecutive failed scheduled attempts of one message to one endpoint that raise
/// `message.attempt.failing` (the recording statement in `octohooks_db::deliveries` spells it
/// out in SQL; a test holds the two together).
pub const FAILING_AFTER_ATTEMPTS: i32 = 4;

/// Checks an operational endpoint's event type filter: only operational event types, since
/// nothing else is ever sent to it.
pub fn check_filter(field: &'static str, event_types: &[String]) -> Result<(), ValidationError> {
    match event_types
        .iter()
        .find(|name| OperationalEventType::parse(name).is_err())
    {
        None => Ok(()),
        Some(unknown) => Err(ValidationError::new(
            field,
            format!(
                "{unknown:?} is not an operational event type (one of {})",
                OperationalEventType::ALL
                    .iter()
                    .map(|kind| kind.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_reads_back_and_only_those_pass_the_filter() {
        for &kind in OperationalEventType::ALL {
            assert_eq!(OperationalEventType::parse(kind.as_str()), Ok(kind));
        }
        let known = vec![
            "endpoint.disabled".to_owned(),
            "message.attempt.failing".to_owned(),
        ];
        assert!(check_filter("eventTypes", &known).is_ok());
        let err = check_filter("eventTypes", &["invoice.paid".to_owned()]).unwrap_err();
        assert!(err.to_string().contains("invoice.paid"), "{err}");
    }
}
