//! The states the pipeline stores as text, as types: where a delivery stands and how an attempt
//! ended (what made an attempt is [`crate::job::TriggerType`]). Every layer passes these
//! enums; the spelling in the database is written and read here only.

/// A stored value that names no known state (written by hand, or by a newer version).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stored value {0:?}")]
pub struct UnknownState(pub String);

/// Declares a stored enum: its variants with their stored spelling, `as_str`, and the
/// conversions the storage layer uses (`String` in, `String` out).
macro_rules! stored_state {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every state, for checks that the storage knows each of them.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The stored spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// Reads a stored spelling back.
            pub fn parse(text: &str) -> Result<Self, $crate::status::UnknownState> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    other => Err($crate::status::UnknownState(other.to_owned())),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::status::UnknownState;
            fn try_from(text: String) -> Result<Self, $crate::status::UnknownState> {
                Self::parse(&text)
            }
        }

        impl From<$name> for String {
            fn from(state: $name) -> String {
                state.as_str().to_owned()
            }
        }
    };
}
pub(crate) use stored_state;

stored_state!(
    /// Where the delivery of a message to one endpoint stands.
    DestinationStatus {
        /// The next attempt is due at its `next_attempt`.
        Pending = "pending",
        /// Delivered.
        Success = "success",
        /// Failed for good.
        Failed = "failed",
    }
);

stored_state!(
    /// How one attempt ended.
    AttemptStatus {
        /// The receiver answered 2xx.
        Success = "success",
        /// Any other answer, or none.
        Failed = "failed",
    }
);

stored_state!(
    /// What a background task does.
    TaskKind {
        /// Resend the messages whose delivery to the endpoint failed in a window.
        Recover = "endpoint.recover",
        /// Send the messages of a window that the endpoint never got.
        Replay = "endpoint.replay",
    }
);

stored_state!(
    /// Where a background task stands.
    TaskStatus {
        /// Queued or under way; a runner takes it in batches.
        Running = "running",
        /// Every message of its window was examined.
        Finished = "finished",
        /// Stopped by an error it cannot get past (its `failure` says which).
        Failed = "failed",
    }
);

impl AttemptStatus {
    /// Success for a 2xx answer, failure otherwise.
    pub fn of(success: bool) -> Self {
        if success {
            Self::Success
        } else {
            Self::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_spellings_read_back_and_nothing_else_does() {
        for status in [
            DestinationStatus::Pending,
            DestinationStatus::Success,
            DestinationStatus::Failed,
        ] {
            assert_eq!(
                DestinationStatus::try_from(String::from(status)),
                Ok(status)
            );
        }
        assert_eq!(AttemptStatus::parse("success"), Ok(AttemptStatus::Success));
        assert_eq!(
            AttemptStatus::parse("Success"),
            Err(UnknownState("Success".into()))
        );
        assert!(DestinationStatus::parse("delivered").is_err());
    }
}
