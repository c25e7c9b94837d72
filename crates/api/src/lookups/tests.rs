//! The lookup caches: bypassed until invalidation is live, loads racing a change, unknown keys,
//! unenforced event types asked once, and the bound on concurrent key loads.

use super::*;

fn cache() -> Arc<Lookups> {
    let results =
        IntCounterVec::new(prometheus::Opts::new("lookups", "lookups"), &["result"]).unwrap();
    Lookups::new(results, KEY_LOADS)
}

const KEY_LOADS: usize = 2;

async fn load(id: Uuid, calls: &std::sync::atomic::AtomicUsize) -> Result<Option<Uuid>, ()> {
    calls.fetch_add(1, Ordering::SeqCst);
    Ok(Some(id))
}

#[tokio::test]
async fn bypassed_until_live_then_cached_until_forgotten() {
    let lookups = cache();
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let env = Uuid::new_v4();
    for _ in 0..2 {
        lookups.environment(b"k", load(env, &calls)).await.unwrap();
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "not live: every lookup goes to the database"
    );

    lookups.apply(Event::Forget);
    lookups.apply(Event::Live);
    for _ in 0..3 {
        assert_eq!(
            lookups.environment(b"k", load(env, &calls)).await,
            Ok(KeyLookup::Found(env))
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "live: loaded once, then served from the cache"
    );

    lookups.apply(Event::Forget);
    lookups.environment(b"k", load(env, &calls)).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "a change forgets the entry"
    );

    lookups.apply(Event::Lost);
    lookups.environment(b"k", load(env, &calls)).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        5,
        "lost listener: cache bypassed"
    );
}

#[tokio::test]
async fn a_load_racing_with_a_change_is_not_cached() {
    let lookups = cache();
    lookups.apply(Event::Live);
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let app = Uuid::new_v4();
    let load_revoked = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<_, ()>(Some(7))
    };
    let racing = async {
        calls.fetch_add(1, Ordering::SeqCst);
        // The change commits and its notice arrives while this lookup is in flight.
        lookups.apply(Event::Forget);
        Ok::<_, ()>(Some(7))
    };
    assert_eq!(
        lookups.portal_revoked_before(app, racing).await,
        Ok(Some(7))
    );
    lookups
        .portal_revoked_before(app, load_revoked())
        .await
        .unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the raced result was not kept"
    );
}

#[tokio::test]
async fn unknown_keys_are_remembered_until_a_change() {
    let lookups = cache();
    lookups.apply(Event::Live);
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let missing = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<_, ()>(None)
    };
    for _ in 0..3 {
        assert_eq!(
            lookups.environment(b"made-up", missing()).await,
            Ok(KeyLookup::Unknown)
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "asked once");
    // A key created meanwhile (its notice clears the maps) is found at once.
    lookups.apply(Event::Forget);
    let env = Uuid::new_v4();
    assert_eq!(
        lookups.environment(b"made-up", load(env, &calls)).await,
        Ok(KeyLookup::Found(env))
    );
}

#[tokio::test]
async fn an_unenforced_event_type_is_asked_once_until_a_change() {
    let lookups = cache();
    lookups.apply(Event::Live);
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let not_enforced = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Ok::<_, ()>(None)
    };
    let env = Uuid::new_v4();
    for _ in 0..3 {
        let found = lookups.payload_schema(env, "a", not_enforced()).await;
        assert!(found.unwrap().is_none());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the negative is cached");
    lookups
        .payload_schema(env, "b", not_enforced())
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2, "per event type");
    lookups.apply(Event::Forget);
    lookups
        .payload_schema(env, "a", not_enforced())
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3, "a change forgets it");
}

#[tokio::test]
async fn key_loads_beyond_the_bound_are_answered_busy() {
    let lookups = cache();
    lookups.apply(Event::Live);
    let never = || std::future::pending::<Result<Option<Uuid>, ()>>();
    let stuck: Vec<_> = (0..KEY_LOADS)
        .map(|i| {
            let lookups = lookups.clone();
            tokio::spawn(async move {
                let key = format!("stuck{i}");
                lookups.environment(key.as_bytes(), never()).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let answered = lookups.environment(b"one more", never()).await;
    assert_eq!(answered, Ok(KeyLookup::Busy), "after KEY_LOAD_WAIT");
    for task in stuck {
        task.abort();
    }
}
