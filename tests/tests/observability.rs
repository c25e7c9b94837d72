//! Metrics at /metrics on both services, and the trace context carried from the API through
//! the outbox and RabbitMQ into the dispatcher (and into the retries it schedules).

use octohooks_tests::{eventually, Options, Receiver, TestApp};
use reqwest::Method;
use serde_json::json;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

async fn scrape(url: &str) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0)
}

#[tokio::test]
async fn both_services_export_prometheus_metrics() {
    let app = TestApp::spawn().await;
    // The stages of the request's own publisher are asserted below, so the broker link must
    // be up before the message is sent.
    app.wait_ready().await;
    let receiver = Receiver::start().await;
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook")}))
        .await;
    app.post(
        "/api/v1/applications/app/messages",
        json!({"eventType": "t", "payload": {}}),
    )
    .await;
    receiver.wait_for("/hook", 1, 15).await;

    let api = scrape(&format!("{}/metrics", app.metrics_base)).await;
    // Only on the metrics listener: the public port does not answer it.
    let public = reqwest::get(format!("{}/metrics", app.base)).await.unwrap();
    assert_eq!(public.status(), reqwest::StatusCode::NOT_FOUND);
    assert_eq!(
        value(&api, "octohooks_messages_accepted_total"),
        1.0,
        "{api}"
    );
    assert!(api.contains(
        r#"octohooks_http_requests_total{method="POST",route="/api/v1/applications/{app}/messages",status="202"} 1"#
    ), "{api}");
    assert!(api.contains("octohooks_http_request_duration_seconds_bucket"));
    assert!(api.contains("octohooks_outbox_backlog_jobs"));

    let base = app.dispatcher_base().unwrap();
    let dispatcher_ok = eventually(10, || async {
        let metrics = scrape(&format!("{base}/metrics")).await;
        value(
            &metrics,
            r#"octohooks_delivery_attempts_total{outcome="success"}"#,
        ) == 1.0
    })
    .await;
    let dispatcher = scrape(&format!("{base}/metrics")).await;
    assert!(dispatcher_ok, "{dispatcher}");
    assert_eq!(
        value(&dispatcher, "octohooks_delivery_latency_seconds_count"),
        1.0
    );
    assert_eq!(
        value(&dispatcher, "octohooks_delivery_attempts_in_flight"),
        0.0
    );
    assert!(dispatcher.contains("octohooks_delivery_queue_depth_messages"));

    // The message's way through the pipeline, one observation per stage and service.
    let stage = |metrics: &str, stage: &str| {
        value(
            metrics,
            &format!(r#"octohooks_pipeline_stage_seconds_count{{stage="{stage}"}}"#),
        )
    };
    for (url, names) in [
        (
            format!("{}/metrics", app.metrics_base),
            &["commit", "publish_wait", "confirm"][..],
        ),
        (
            format!("{base}/metrics"),
            &["queued", "context", "send", "record"][..],
        ),
    ] {
        let counted = eventually(10, || async {
            let metrics = scrape(&url).await;
            names.iter().all(|name| stage(&metrics, name) == 1.0)
        })
        .await;
        let metrics = scrape(&url).await;
        let seen: Vec<_> = names
            .iter()
            .map(|name| (name, stage(&metrics, name)))
            .collect();
        assert!(counted, "stage observations at {url}: {seen:?}\n{metrics}");
    }
    app.stop().await;
}

#[tokio::test]
async fn the_trace_context_travels_from_the_request_to_the_retries() {
    let app = TestApp::spawn_with(Options {
        retry_schedule: "1h".into(),
        ..Options::default()
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.default_status(500);
    app.create_app("app").await;
    app.create_endpoint("app", json!({"url": receiver.url("/hook")}))
        .await;
    let key = app.api_key.clone();
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    app.request(
        Method::POST,
        "/api/v1/applications/app/messages",
        Some(&key),
        Some(json!({"eventType": "t", "payload": {}}).to_string()),
        &[("traceparent", &traceparent)],
    )
    .await;
    receiver.wait_for("/hook", 1, 15).await;
    // The retry the dispatcher scheduled carries the same trace id: the context went through
    // the outbox, the RabbitMQ message headers and the dispatcher.
    let carried = eventually(10, || async {
        app.count(&format!(
            "SELECT count(*) FROM outbox WHERE traceparent LIKE '00-{TRACE_ID}-%'"
        ))
        .await
            == 1
    })
    .await;
    assert!(carried);
    app.stop().await;
}

#[tokio::test]
async fn spans_are_exported_over_otlp_and_a_missing_collector_breaks_nothing() {
    let app = TestApp::spawn_with(Options {
        dispatcher: false,
        ..Options::default()
    })
    .await;
    let collector = Receiver::start().await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut apis = Vec::new();
    for endpoint in [collector.base.clone(), format!("http://{closed}")] {
        let mut vars = app.env_vars();
        vars.insert("OCTOHOOKS_OTLP_ENDPOINT".into(), endpoint);
        apis.push(octohooks_tests::process::spawn_api(&vars).await);
    }
    app.create_app("app").await;
    for (_, base) in &apis {
        let answer = app
            .request(
                Method::POST,
                &format!("{base}/api/v1/applications/app/messages"),
                Some(&app.api_key.clone()),
                Some(json!({"eventType": "t", "payload": {}}).to_string()),
                &[],
            )
            .await;
        assert_eq!(
            answer.status.as_u16(),
            202,
            "accepted with or without a collector"
        );
    }
    let exported = collector.wait_for("/v1/traces", 1, 30).await;
    assert!(
        !exported.is_empty(),
        "the batch exporter posted spans to the collector"
    );
    assert_eq!(exported[0].header("content-type"), "application/x-protobuf");
    drop(apis);
    app.stop().await;
}
