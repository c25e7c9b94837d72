//! Deleting an endpoint with a long history: its attempts and destinations go in statements of
//! a bounded size before the endpoint; another endpoint's stay.

use octohooks_tests::{Options, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Rows of each kind the large endpoint has: more than one statement removes.
const HISTORY: i64 = 60_000;

/// Counts the rows each statement removes from `table` into `removals`.
async fn log_removals(app: &TestApp, table: &str) {
    app.execute(&format!(
        "CREATE TRIGGER {table}_removal_logged AFTER DELETE ON {table} \
         REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION log_removal('{table}')"
    ))
    .await;
}

#[tokio::test]
async fn a_large_endpoint_goes_in_statements_of_a_bounded_size() {
    let app = TestApp::spawn_with(Options::api_only()).await;
    app.create_app("app").await;
    let large = app
        .create_endpoint(
            "app",
            json!({"url": "http://127.0.0.1:9/large", "uid": "large"}),
        )
        .await;
    let large = large["id"].as_str().unwrap().to_owned();
    let kept = app
        .create_endpoint(
            "app",
            json!({"url": "http://127.0.0.1:9/kept", "uid": "kept"}),
        )
        .await;
    let kept = kept["id"].as_str().unwrap().to_owned();
    for (endpoint, rows) in [(&large, HISTORY), (&kept, 10)] {
        app.execute(&format!(
            "INSERT INTO message_destinations \
               (message_id, endpoint_id, status, scheduled_attempts, attempt_count, updated) \
             SELECT gen_random_uuid(), '{endpoint}', 'success', 1, 1, now() \
             FROM generate_series(1, {rows})"
        ))
        .await;
        app.execute(&format!(
            "INSERT INTO attempts (id, message_id, endpoint_id, url, status, \
               response_status_code, response, response_duration_ms, trigger_type, created) \
             SELECT gen_random_uuid(), gen_random_uuid(), '{endpoint}', 'http://127.0.0.1:9/', \
               'success', 200, '', 1, 'scheduled', now() FROM generate_series(1, {rows})"
        ))
        .await;
    }
    app.execute("CREATE TABLE removals (tbl text, removed bigint)")
        .await;
    app.execute(
        "CREATE FUNCTION log_removal() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN INSERT INTO removals SELECT TG_ARGV[0], count(*) FROM removed; RETURN NULL; END $$",
    )
    .await;
    log_removals(&app, "attempts").await;
    log_removals(&app, "message_destinations").await;

    let deleted = app
        .call(
            Method::DELETE,
            "/api/v1/applications/app/endpoints/large",
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    for table in ["attempts", "message_destinations"] {
        assert_eq!(
            app.count(&format!(
                "SELECT max(removed) FROM removals WHERE tbl = '{table}'"
            ))
            .await,
            50_000,
            "no statement removed more {table} than the bound"
        );
        assert_eq!(
            app.count(&format!(
                "SELECT sum(removed)::bigint FROM removals WHERE tbl = '{table}'"
            ))
            .await,
            HISTORY,
            "every one of the large endpoint's {table} went"
        );
        for (endpoint, left) in [(&large, 0), (&kept, 10)] {
            assert_eq!(
                app.count(&format!(
                    "SELECT count(*) FROM {table} WHERE endpoint_id = '{endpoint}'"
                ))
                .await,
                left
            );
        }
    }
    let gone = app
        .call(
            Method::GET,
            "/api/v1/applications/app/endpoints/large",
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    app.stop().await;
}
