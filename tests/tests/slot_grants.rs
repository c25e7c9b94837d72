//! Endpoint slot grants against the real Postgres: many endpoints asked for in one statement,
//! answered in the order asked, never more than the cap between holders, and no deadlock when
//! two dispatchers ask for the same endpoints at once in opposite orders.

use octohooks_db::fairness::{grant_slots, Grant, SlotAsk};
use octohooks_db::pool;
use octohooks_tests::database;
use uuid::Uuid;

const CAP: u32 = 8;
const TTL_MS: u32 = 5_000;

fn ask(endpoint: Uuid, wanted: u32, pace_ms: Option<u32>) -> SlotAsk {
    SlotAsk {
        endpoint,
        wanted,
        keep: 0,
        pace_ms,
    }
}

#[tokio::test]
async fn one_statement_grants_many_endpoints_within_the_cap_in_the_order_asked() {
    let (name, url) = database::fresh().await;
    let db = pool::build_pool(&url, &pool::PoolOptions::default()).unwrap();
    let mut conn = pool::connection(&db).await.unwrap();
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    let mut endpoints: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    endpoints.sort();
    endpoints.reverse(); // asked against the order in which the statement takes them
    let (busy, small, other) = (endpoints[0], endpoints[1], endpoints[2]);

    let granted = grant_slots(
        &mut conn,
        first,
        CAP,
        TTL_MS,
        &[
            ask(busy, 8, Some(40)),
            ask(small, 2, None),
            ask(other, 4, Some(3)),
        ],
    )
    .await
    .unwrap();
    let slots: Vec<u32> = granted.iter().map(|grant| grant.slots).collect();
    assert_eq!(slots, [8, 2, 4], "each answer in the place of its ask");
    assert!(granted.iter().all(|grant| grant.others_pace_ms.is_none()));

    let granted = grant_slots(
        &mut conn,
        second,
        CAP,
        TTL_MS,
        &[ask(small, 8, None), ask(busy, 4, None)],
    )
    .await
    .unwrap();
    assert_eq!(
        granted,
        [
            Grant {
                slots: 6,
                others_pace_ms: None
            },
            Grant {
                slots: 0,
                others_pace_ms: Some(40)
            },
        ],
        "what the first holder leaves, and its pace where it leaves nothing"
    );
    let over_cap = database::count(
        &url,
        &format!(
            "SELECT count(*) FROM (SELECT endpoint_id FROM endpoint_slot_grants \
             GROUP BY endpoint_id HAVING sum(slots) > {CAP}) o"
        ),
    )
    .await;
    assert_eq!(over_cap, 0);

    drop(conn);
    database::drop_database(&name).await;
}

#[tokio::test]
async fn two_holders_asking_for_the_same_endpoints_in_opposite_orders_do_not_deadlock() {
    let (name, url) = database::fresh().await;
    let db = pool::build_pool(&url, &pool::PoolOptions::default()).unwrap();
    let endpoints: Vec<Uuid> = (0..40).map(|_| Uuid::new_v4()).collect();
    let rounds = |holder: Uuid, reversed: bool| {
        let db = db.clone();
        let mut asks: Vec<SlotAsk> = endpoints.iter().map(|e| ask(*e, 3, None)).collect();
        if reversed {
            asks.reverse();
        }
        tokio::spawn(async move {
            for _ in 0..30 {
                let mut conn = pool::connection(&db).await.unwrap();
                grant_slots(&mut conn, holder, CAP, TTL_MS, &asks).await?;
            }
            Ok::<_, octohooks_db::DbError>(())
        })
    };
    let (a, b) = (rounds(Uuid::new_v4(), false), rounds(Uuid::new_v4(), true));
    a.await.unwrap().expect("first holder's asks");
    b.await.unwrap().expect("second holder's asks");
    let per_endpoint = database::text(
        &url,
        "SELECT string_agg(DISTINCT total::text, ',') FROM \
         (SELECT sum(slots) AS total FROM endpoint_slot_grants GROUP BY endpoint_id) t",
    )
    .await;
    assert_eq!(per_endpoint, "6", "both holders got 3 of each endpoint");

    database::drop_database(&name).await;
}
