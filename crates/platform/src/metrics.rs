//! Prometheus metrics of both services, served at `GET /metrics`. Each service instance owns a
//! registry (no global state), so several instances can live in one test process.
//! Names follow Prometheus conventions: `octohooks_` prefix, units in names, `_total` counters.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Every metric Octohooks exports. The API fills the HTTP and ingest families, the dispatcher
/// the delivery families; both report the outbox.
pub struct Metrics {
    registry: Registry,
    /// Requests by method, route pattern and status.
    pub http_requests: IntCounterVec,
    /// Request latency by method and route pattern.
    pub http_duration: HistogramVec,
    /// Messages accepted (202).
    pub messages_accepted: IntCounter,
    /// Outbox jobs that are due and not yet published.
    pub outbox_backlog: IntGauge,
    /// Age of the oldest due job in the outbox, in seconds.
    pub outbox_oldest_age: prometheus::Gauge,
    /// Delivery attempts by outcome (`success`, `failed`).
    pub attempts: IntCounterVec,
    /// Retries scheduled after a failed attempt.
    pub retries_scheduled: IntCounter,
    /// Deliveries given up after the last attempt.
    pub deliveries_exhausted: IntCounter,
    /// Jobs put back to wait for their endpoint's turn, by reason (fairness).
    pub deliveries_deferred: IntCounterVec,
    /// Time from acceptance of a message to its successful delivery.
    pub delivery_latency: Histogram,
    /// Duration of one HTTP attempt.
    pub attempt_duration: Histogram,
    /// Attempts running right now.
    pub attempts_in_flight: IntGauge,
    /// Jobs waiting in the delivery queue (consumer lag).
    pub queue_depth: IntGauge,
    /// API-key and application lookups by result (`hit`, `miss`, `bypass` while the
    /// invalidation listener is down), and `forget`: clearings after a change committed.
    pub lookup_cache: IntCounterVec,
    /// Jobs the API's publisher published, by lane: `express` (in memory, their outbox rows
    /// kept until a dispatcher is done) or `durable`.
    pub jobs_published: IntCounterVec,
    /// 1 while the API publishes first attempts by the express lane (a dispatcher reads it and
    /// keeps it nearly empty), 0 while they go durably.
    pub express_lane_open: IntGauge,
    /// 1 while the express lane carries the first attempts of a commit together, as batches (a
    /// dispatcher that reads batches consumes them), 0 while it sends single jobs or is closed.
    pub express_batches_open: IntGauge,
    /// Broker messages the API published by the express lane, by form: `single` (one job) or
    /// `batch` (the jobs of a commit); with `jobs_published_total`, how many jobs each carried.
    pub express_messages_published: IntCounterVec,
    /// Where the dispatcher got what an attempt needs: `carried` by the express lane with the
    /// job, or `read` from Postgres.
    pub job_contexts: IntCounterVec,
    /// Time a message spends in each stage between its request and its recorded attempt, by
    /// [`Stage`]: where end-to-end latency goes, read per stage rather than guessed.
    pub pipeline_stage: HistogramVec,
    /// The stage histograms, resolved once, by `Stage as usize`.
    stages: Vec<Histogram>,
    /// Asks a dispatcher made to Postgres for more of an endpoint's slots (every slot it held
    /// was busy), by answer: `grown`, or `refused` (none beyond those in use).
    pub slot_grant_asks: IntCounterVec,
    /// How long a job waited for a slot while its dispatcher asked for more: the ask's commit,
    /// or less when one of the dispatcher's own attempts to the endpoint ended first.
    pub slot_ask_wait: Histogram,
}

/// The stages of a first attempt, in order. The API observes the first three, the dispatcher
/// the rest; `queued` runs from the request to the dispatcher's receipt of the job, so the
/// broker's own share is `queued` less the API's stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    // The order is that of `Stage::ALL`.
    /// Request handed to the group commit → its transaction committed.
    Commit,
    /// Committed → its jobs' publication begins (waiting for the publisher).
    PublishWait,
    /// Publication begins → the broker confirmed every job of the batch.
    Confirm,
    /// Request → the dispatcher received the job (wall clocks of one host, or NTP).
    Queued,
    /// Job received → what the attempt needs was read from Postgres.
    Context,
    /// The HTTP exchange with the receiver.
    Send,
    /// Response read → outcome recorded (committed).
    Record,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 7] = [
        Self::Commit,
        Self::PublishWait,
        Self::Confirm,
        Self::Queued,
        Self::Context,
        Self::Send,
        Self::Record,
    ];

    /// The `stage` label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Commit => "commit",
            Self::PublishWait => "publish_wait",
            Self::Confirm => "confirm",
            Self::Queued => "queued",
            Self::Context => "context",
            Self::Send => "send",
            Self::Record => "record",
        }
    }
}

/// Finer buckets for the stages, most of which take well under a millisecond.
const STAGE_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512,
    1.0, 2.0, 5.0, 15.0, 60.0,
];

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 3600.0,
];

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("octohooks".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by method, route and status",
            ),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["method", "route"],
        )?;
        let messages_accepted =
            IntCounter::new("messages_accepted_total", "Messages accepted by the API")?;
        let outbox_backlog =
            IntGauge::new("outbox_backlog_jobs", "Due delivery jobs not yet published")?;
        let outbox_oldest_age = prometheus::Gauge::new(
            "outbox_oldest_job_age_seconds",
            "Age of the oldest due job in the outbox",
        )?;
        let attempts = IntCounterVec::new(
            Opts::new("delivery_attempts_total", "Delivery attempts by outcome"),
            &["outcome"],
        )?;
        let retries_scheduled =
            IntCounter::new("delivery_retries_scheduled_total", "Retries scheduled")?;
        let deliveries_exhausted = IntCounter::new(
            "deliveries_exhausted_total",
            "Deliveries failed for good after the last attempt",
        )?;
        let deliveries_deferred = IntCounterVec::new(
            Opts::new(
                "deliveries_deferred_total",
                "Jobs put back to wait for their endpoint's turn, by reason",
            ),
            &["reason"],
        )?;
        let delivery_latency = Histogram::with_opts(
            HistogramOpts::new(
                "delivery_latency_seconds",
                "Time from acceptance of a message to its successful delivery",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let attempt_duration = Histogram::with_opts(
            HistogramOpts::new(
                "delivery_attempt_duration_seconds",
                "Duration of one attempt",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let attempts_in_flight =
            IntGauge::new("delivery_attempts_in_flight", "Attempts running right now")?;
        let queue_depth = IntGauge::new(
            "delivery_queue_depth_messages",
            "Jobs waiting in the delivery queue (consumer lag)",
        )?;
        let lookup_cache = IntCounterVec::new(
            Opts::new(
                "lookup_cache_total",
                "API-key and application lookups by cache result",
            ),
            &["result"],
        )?;
        let pipeline_stage = HistogramVec::new(
            HistogramOpts::new(
                "pipeline_stage_seconds",
                "Time of a first attempt in each stage from request to recorded attempt",
            )
            .buckets(STAGE_BUCKETS.to_vec()),
            &["stage"],
        )?;
        registry.register(Box::new(pipeline_stage.clone()))?;
        let stages = Stage::ALL
            .iter()
            .map(|stage| pipeline_stage.get_metric_with_label_values(&[stage.label()]))
            .collect::<Result<_, _>>()?;
        registry.register(Box::new(lookup_cache.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(messages_accepted.clone()))?;
        registry.register(Box::new(outbox_backlog.clone()))?;
        registry.register(Box::new(outbox_oldest_age.clone()))?;
        registry.register(Box::new(attempts.clone()))?;
        registry.register(Box::new(retries_scheduled.clone()))?;
        registry.register(Box::new(deliveries_exhausted.clone()))?;
        registry.register(Box::new(deliveries_deferred.clone()))?;
        let jobs_published = IntCounterVec::new(
            Opts::new(
                "jobs_published_total",
                "Delivery jobs the API published, by lane (express or durable)",
            ),
            &["lane"],
        )?;
        registry.register(Box::new(jobs_published.clone()))?;
        let express_lane_open = IntGauge::new(
            "express_lane_open",
            "1 while first attempts go by the express lane, 0 while they go durably",
        )?;
        registry.register(Box::new(express_lane_open.clone()))?;
        let express_batches_open = IntGauge::new(
            "express_batches_open",
            "1 while the express lane sends the first attempts of a commit as batches",
        )?;
        registry.register(Box::new(express_batches_open.clone()))?;
        let express_messages_published = IntCounterVec::new(
            Opts::new(
                "express_messages_published_total",
                "Broker messages published by the express lane, by form (single or batch)",
            ),
            &["form"],
        )?;
        registry.register(Box::new(express_messages_published.clone()))?;
        let job_contexts = IntCounterVec::new(
            Opts::new(
                "job_contexts_total",
                "What attempts need, by source: carried with the job, or read from Postgres",
            ),
            &["source"],
        )?;
        registry.register(Box::new(job_contexts.clone()))?;
        registry.register(Box::new(delivery_latency.clone()))?;
        registry.register(Box::new(attempt_duration.clone()))?;
        registry.register(Box::new(attempts_in_flight.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        let slot_grant_asks = IntCounterVec::new(
            Opts::new(
                "slot_grant_asks_total",
                "Asks to Postgres for more of an endpoint's slots, by answer (grown or refused)",
            ),
            &["answer"],
        )?;
        registry.register(Box::new(slot_grant_asks.clone()))?;
        let slot_ask_wait = Histogram::with_opts(
            HistogramOpts::new(
                "slot_ask_wait_seconds",
                "Time a job waited for a slot while more were asked of Postgres",
            )
            .buckets(STAGE_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(slot_ask_wait.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            messages_accepted,
            outbox_backlog,
            outbox_oldest_age,
            attempts,
            retries_scheduled,
            deliveries_exhausted,
            deliveries_deferred,
            delivery_latency,
            attempt_duration,
            attempts_in_flight,
            queue_depth,
            lookup_cache,
            jobs_published,
            express_lane_open,
            express_batches_open,
            express_messages_published,
            job_contexts,
            pipeline_stage,
            stages,
            slot_grant_asks,
            slot_ask_wait,
        })
    }

    /// Refreshes the outbox gauges from the database (called on scrape).
    pub async fn refresh_outbox(&self, db: &octohooks_db::DbPool) {
        if let Ok(mut conn) = octohooks_db::pool::connection(db).await {
            if let Ok((count, oldest)) = octohooks_db::outbox::backlog(&mut conn).await {
                self.outbox_backlog.set(count);
                self.outbox_oldest_age.set(oldest);
            }
        }
    }

    /// Counts `elapsed` in `stage`.
    pub fn observe_stage(&self, stage: Stage, elapsed: std::time::Duration) {
        self.stages[stage as usize].observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::warn!(error = %err, "could not encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}
