//! The timing rules that keep a job from being published twice while its first publication may
//! still be confirmed, checked when the crate compiles:
//!
//! confirm timeout < the accepting API's claim on its jobs < a relay's claim on the jobs it
//! publishes.
//!
//! The API that accepts a message publishes its jobs at once, under a claim of
//! [`ACCEPT_CLAIM_SECS`]; a relay takes jobs whose claim lapsed and holds them for
//! [`RELAY_CLAIM_SECS`]. A publisher gives up on a confirmation after [`CONFIRM_TIMEOUT`]: if
//! that were longer than a claim, a relay could take and publish the jobs again while the first
//! publication was still waiting for its confirmation.

use std::time::Duration;

pub use octohooks_db::messages::ACCEPT_CLAIM_SECS;

/// Longest wait for the broker to confirm a batch of publishes.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a relay's claim on the jobs it publishes lasts before another relay may take them.
pub const RELAY_CLAIM_SECS: i32 = 30;

const _: () = {
    assert!(
        CONFIRM_TIMEOUT.as_secs() < ACCEPT_CLAIM_SECS as u64,
        "a confirmation must be given up before the accepting API's claim lapses"
    );
    assert!(
        CONFIRM_TIMEOUT.as_secs() < RELAY_CLAIM_SECS as u64,
        "a confirmation must be given up before a relay's claim lapses"
    );
    assert!(
        ACCEPT_CLAIM_SECS < RELAY_CLAIM_SECS as i64,
        "a relay holds jobs longer than the API that accepted them"
    );
};
