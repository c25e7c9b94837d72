//! The group commit, driven directly: a message that an earlier try already stored (its commit
//! went through although its answer was lost) is accepted when offered again, never answered
//! 409 as if another message had taken its uid.

use std::sync::Arc;

use octohooks_api::ingest::Ingest;
use octohooks_broker::publisher::Publisher;
use octohooks_broker::AmqpLink;
use octohooks_db::models::Message;
use octohooks_platform::metrics::Metrics;
use octohooks_tests::{Options, TestApp};
use tokio_util::sync::CancellationToken;

fn message(application_id: uuid::Uuid, uid: &str) -> Message {
    Message {
        id: octohooks_domain::new_id(),
        application_id,
        uid: Some(uid.to_owned()),
        event_type: "t".into(),
        channels: Vec::new(),
        payload: "{}".into(),
        created: chrono::Utc::now(),
        expunged: false,
        payload_expires: None,
    }
}

#[tokio::test]
async fn a_message_stored_by_an_earlier_try_is_accepted_and_a_taken_uid_is_not() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    let application_id: uuid::Uuid = app.create_app("app").await.parse().unwrap();
    let db = octohooks_db::pool::build_pool(&app.database_url, &Default::default()).unwrap();
    let stop = CancellationToken::new();
    let link = AmqpLink::start(
        octohooks_tests::app::AMQP_URL.into(),
        octohooks_broker::Topology {
            queue: app.queue.clone(),
            delivery_limit: 20,
        },
        stop.clone(),
    );
    let publisher = Publisher::start(
        db.clone(),
        link,
        Arc::new(Metrics::new().unwrap()),
        octohooks_broker::express::claim(std::time::Duration::from_secs(5)),
    );
    let ingest = Ingest::start(db, publisher);

    let first = message(application_id, "order-1");
    ingest.accept(first.clone(), None, None).await.unwrap();
    // The same message again, as a retry of a batch whose commit answer was lost would offer it.
    ingest
        .accept(first, None, None)
        .await
        .expect("already stored: accepted");
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 1);

    // Another message with the same uid is a conflict.
    let taken = ingest
        .accept(message(application_id, "order-1"), None, None)
        .await;
    assert!(
        matches!(taken, Err(octohooks_api::error::ApiError::Conflict { .. })),
        "{taken:?}"
    );
    assert_eq!(app.count("SELECT count(*) FROM messages").await, 1);
    stop.cancel();
    app.stop().await;
}
