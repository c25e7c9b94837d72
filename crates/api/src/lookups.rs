//! Per-process cache of the lookups every `POST …/messages` makes before its write: which
//! environment an API key belongs to, which application a path names, and whether the message's
//! event type enforces a schema (compiled once here). They would be statements Postgres runs per
//! message. Correctness over hit rate:
//! - entries are only used while the invalidation listener is live
//!   ([`octohooks_db::invalidation`]); any change to keys, environments, applications or event
//!   types clears every process's cache when it commits, so a revoked key stops working at once;
//! - a lookup that raced with a change is not cached: each fill carries the generation it
//!   started in and is dropped if a clearing happened meanwhile;
//! - hits are cached, and so are API keys found to be unknown (a missing application is always
//!   asked again); the maps are bounded, unknown keys in a map of their own so that a flood of
//!   made-up keys never evicts a real one;
//! - keys that are in neither map are looked up at most a quarter of the pool at once: a flood
//!   of distinct made-up keys holds that many database connections, not the whole pool, and
//!   waits beyond [`KEY_LOAD_WAIT`] are answered as busy.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use octohooks_db::invalidation::{self, Event};
use octohooks_db::scope::AppScope;
use octohooks_domain::schema::PayloadSchema;
use prometheus::IntCounterVec;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Entries per map at most; a full map is cleared (cheap, rare, and refilled in a moment).
const CAPACITY: usize = 10_000;
/// Longest wait for one of them; then the request is answered as busy (503), not queued.
pub const KEY_LOAD_WAIT: Duration = Duration::from_secs(2);

/// What an API key's hash resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLookup {
    /// The key's environment.
    Found(Uuid),
    /// No such key (or revoked).
    Unknown,
    /// Too many keys are being looked up at once to check this one now.
    Busy,
}

#[derive(Default)]
struct Maps {
    keys: HashMap<Vec<u8>, Uuid>,
    unknown_keys: HashSet<Vec<u8>>,
    apps: HashMap<(Uuid, String), AppScope>,
    /// Per application: portal tokens issued before this (epoch ms) are revoked.
    portal_revoked_before: HashMap<Uuid, i64>,
    /// Per environment and event type name: the compiled latest schema when the type enforces
    /// one, `None` when it does not (or does not exist), which is the common, cheap answer.
    payload_schemas: HashMap<(Uuid, String), Option<Arc<PayloadSchema>>>,
}

/// The cache, shared by every worker of the process.
pub struct Lookups {
    live: AtomicBool,
    generation: AtomicU64,
    maps: Mutex<Maps>,
    key_loads: Semaphore,
    /// Counts lookups by result (`hit`, `miss`, `bypass`, `unknown_hit`, `busy`) and clearings
    /// (`forget`).
    results: IntCounterVec,
}

impl Lookups {
    /// A cache that stays bypassed until [`Lookups::listen`] connects; `results` counts
    /// lookups by result (a metric with one label); at most `key_loads` API-key lookups
    /// (at least one) use the database at once.
    pub fn new(results: IntCounterVec, key_loads: usize) -> Arc<Self> {
        Arc::new(Self {
            live: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            maps: Mutex::default(),
            key_loads: Semaphore::new(key_loads.max(1)),
            results,
        })
    }

    fn count(&self, result: &str) {
        self.results.with_label_values(&[result]).inc();
    }

    /// Keeps the cache in step with the database until `stop`.
    pub fn listen(self: &Arc<Self>, database_url: String, stop: CancellationToken) {
        let lookups = self.clone();
        let on_event = Arc::new(move |event| lookups.apply(event));
        tokio::spawn(invalidation::listen(database_url, on_event, stop));
    }

    fn apply(&self, event: Event) {
        match event {
            Event::Forget => self.forget(),
            Event::Live => self.live.store(true, Ordering::SeqCst),
            Event::Lost => self.live.store(false, Ordering::SeqCst),
        }
    }

    /// Forgets everything: on a change's notice, and right after this process itself committed
    /// a change, so that its own next request already sees it (other processes follow when the
    /// notice reaches them, typically within a millisecond).
    pub fn forget(&self) {
        self.count("forget");
        let mut maps = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        maps.keys.clear();
        maps.unknown_keys.clear();
        maps.apps.clear();
        maps.portal_revoked_before.clear();
        maps.payload_schemas.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Maps> {
        self.maps
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The environment of the API key with this hash, from the cache or from `load`, which
    /// runs only with one of the key-load permits.
    pub async fn environment<E, F>(&self, key_hash: &[u8], load: F) -> Result<KeyLookup, E>
    where
        F: Future<Output = Result<Option<Uuid>, E>>,
    {
        if self.live.load(Ordering::SeqCst) && self.lock().unknown_keys.contains(key_hash) {
            self.count("unknown_hit");
            return Ok(KeyLookup::Unknown);
        }
        let started_in = self.generation.load(Ordering::SeqCst);
        let busy = AtomicBool::new(false);
        let bounded = async {
            match tokio::time::timeout(KEY_LOAD_WAIT, self.key_loads.acquire()).await {
                Ok(Ok(_permit)) => load.await,
                _ => {
                    busy.store(true, Ordering::SeqCst);
                    Ok(None)
                }
            }
        };
        let found = self
            .cached(
                |maps| maps.keys.get(key_hash).copied(),
                |maps, id| insert_bounded(&mut maps.keys, key_hash.to_vec(), id),
                bounded,
            )
            .await?;
        if busy.load(Ordering::SeqCst) {
            self.count("busy");
            return Ok(KeyLookup::Busy);
        }
        let Some(environment_id) = found else {
            let mut maps = self.lock();
            if self.live.load(Ordering::SeqCst)
                && self.generation.load(Ordering::SeqCst) == started_in
            {
                if maps.unknown_keys.len() >= CAPACITY {
                    maps.unknown_keys.clear();
                }
                maps.unknown_keys.insert(key_hash.to_vec());
            }
            return Ok(KeyLookup::Unknown);
        };
        Ok(KeyLookup::Found(environment_id))
    }

    /// The scope of the environment's application named `path` (id or uid), cached or loaded.
    pub async fn application<E, F>(
        &self,
        environment_id: Uuid,
        path: &str,
        load: F,
    ) -> Result<Option<AppScope>, E>
    where
        F: Future<Output = Result<Option<AppScope>, E>>,
    {
        let key = (environment_id, path.to_owned());
        self.cached(
            |maps| maps.apps.get(&key).copied(),
            |maps, id| insert_bounded(&mut maps.apps, key.clone(), id),
            load,
        )
        .await
    }

    /// Before when (epoch ms, `i64::MIN` for never) the application's portal tokens were
    /// revoked, cached or loaded; `None` when the application does not exist.
    pub async fn portal_revoked_before<E, F>(
        &self,
        application_id: Uuid,
        load: F,
    ) -> Result<Option<i64>, E>
    where
        F: Future<Output = Result<Option<i64>, E>>,
    {
        self.cached(
            |maps| maps.portal_revoked_before.get(&application_id).copied(),
            |maps, at| insert_bounded(&mut maps.portal_revoked_before, application_id, at),
            load,
        )
        .await
    }

    /// The compiled schema that messages of `event_type` must match in the environment
    /// (`None`: no check), cached or loaded.
    pub async fn payload_schema<E, F>(
        &self,
        environment_id: Uuid,
        event_type: &str,
        load: F,
    ) -> Result<Option<Arc<PayloadSchema>>, E>
    where
        F: Future<Output = Result<Option<Arc<PayloadSchema>>, E>>,
    {
        let key = (environment_id, event_type.to_owned());
        let found = self
            .cached(
                |maps| maps.payload_schemas.get(&key).cloned(),
                |maps, schema| insert_bounded(&mut maps.payload_schemas, key.clone(), schema),
                async { load.await.map(Some) },
            )
            .await?;
        Ok(found.flatten())
    }

    async fn cached<V: Clone, E, F>(
        &self,
        get: impl FnOnce(&Maps) -> Option<V>,
        put: impl FnOnce(&mut Maps, V),
        load: F,
    ) -> Result<Option<V>, E>
    where
        F: Future<Output = Result<Option<V>, E>>,
    {
        if !self.live.load(Ordering::SeqCst) {
            self.count("bypass");
            return load.await;
        }
        if let Some(hit) = get(&self.lock()) {
            self.count("hit");
            return Ok(Some(hit));
        }
        self.count("miss");
        let started_in = self.generation.load(Ordering::SeqCst);
        let loaded = load.await?;
        if let Some(id) = &loaded {
            let mut maps = self.lock();
            // Cleared while loading: what was loaded may predate the change.
            if self.live.load(Ordering::SeqCst)
                && self.generation.load(Ordering::SeqCst) == started_in
            {
                put(&mut maps, id.clone());
            }
        }
        Ok(loaded)
    }
}

fn insert_bounded<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, id: V) {
    if map.len() >= CAPACITY {
        map.clear();
    }
    map.insert(key, id);
}

#[cfg(test)]
mod tests;
