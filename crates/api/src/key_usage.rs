//! When each API key was last used, for the console's key list, without a write per request:
//! a use is noted in memory at most once a minute per key, and a task writes the noted uses in
//! one statement every few seconds. The column is outside what the lookup caches read, so the
//! write does not make any process forget its cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use octohooks_db::{environments, pool, DbPool};
use tokio_util::sync::CancellationToken;

/// A key's use is written again only after this long.
const RESOLUTION: Duration = Duration::from_secs(60);
/// How often noted uses are written.
const FLUSH_EVERY: Duration = Duration::from_secs(5);
/// Keys remembered at most; a full map is cleared (a few extra writes follow).
const CAPACITY: usize = 10_000;

#[derive(Default)]
struct Noted {
    last_noted: HashMap<Vec<u8>, Instant>,
    pending: Vec<Vec<u8>>,
}

/// The uses of API keys, noted per process.
#[derive(Default)]
pub struct KeyUsage {
    noted: Mutex<Noted>,
}

impl KeyUsage {
    /// Notes that the key with this hash was just used.
    pub fn note(&self, key_hash: &[u8]) {
        let mut noted = self.noted.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if noted
            .last_noted
            .get(key_hash)
            .is_some_and(|at| now.duration_since(*at) < RESOLUTION)
        {
            return;
        }
        if noted.last_noted.len() >= CAPACITY {
            noted.last_noted.clear();
        }
        noted.last_noted.insert(key_hash.to_vec(), now);
        if noted.pending.len() < CAPACITY {
            noted.pending.push(key_hash.to_vec());
        }
    }

    fn take_pending(&self) -> Vec<Vec<u8>> {
        let mut noted = self.noted.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut noted.pending)
    }

    /// Writes the noted uses every few seconds until `stop` (and once more then).
    pub async fn write_until(self: Arc<Self>, db: DbPool, stop: CancellationToken) {
        loop {
            let stopping = tokio::select! {
                () = stop.cancelled() => true,
                () = tokio::time::sleep(FLUSH_EVERY) => false,
            };
            let pending = self.take_pending();
            if !pending.is_empty() {
                let written = match pool::connection(&db).await {
                    Ok(mut conn) => {
                        environments::record_key_use(&mut conn, &pending, chrono::Utc::now()).await
                    }
                    Err(err) => Err(err),
                };
                if let Err(err) = written {
                    tracing::debug!(error = %err, "could not record API key use");
                }
            }
            if stopping {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_noted_once_per_minute() {
        let usage = KeyUsage::default();
        usage.note(b"a");
        usage.note(b"a");
        usage.note(b"b");
        assert_eq!(usage.take_pending(), vec![b"a".to_vec(), b"b".to_vec()]);
        usage.note(b"a");
        assert!(usage.take_pending().is_empty());
    }
}
