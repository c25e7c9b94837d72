//! Database, environment, applications and endpoints for a run; and the raw Postgres limit.

use std::process::Command;

use serde_json::{json, Value};

/// `psql` connected to `database` on the local server.
fn psql(database: &str) -> Command {
    let mut command = Command::new("psql");
    command.args(["-h", "127.0.0.1", "-U", "postgres", "-d", database]);
    command
}

/// Recreates the benchmark database (the API migrates it on start).
pub fn recreate_database(name: &str) -> anyhow::Result<()> {
    let status = psql("postgres")
        .args(["-q", "-c"])
        .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .status()?;
    anyhow::ensure!(status.success(), "could not drop {name}");
    Ok(())
}

/// Runs one SQL statement (or several, separated by semicolons) in `database`.
pub fn sql(database: &str, statement: &str) -> anyhow::Result<()> {
    let status = psql(database)
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(statement)
        .status()?;
    anyhow::ensure!(status.success(), "could not run {statement}");
    Ok(())
}

/// `VACUUM ANALYZE` on `name`: gives the planner the statistics that autovacuum gives any
/// database that has been running for a minute.
pub fn analyze(name: &str) -> anyhow::Result<()> {
    let status = psql(name)
        .args(["-q", "-c"])
        .arg("VACUUM ANALYZE")
        .status()?;
    anyhow::ensure!(status.success(), "could not analyze {name}");
    Ok(())
}

/// The one number `query` answers in `database`.
pub fn count(database: &str, query: &str) -> anyhow::Result<u64> {
    let output = psql(database).args(["-At", "-c"]).arg(query).output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{query} answered {text}"))
}

/// What stands between the messages of application `uid` and their receiver: the destinations
/// not yet delivered by state, the failed attempts by answer, and the jobs left in the outbox
/// (how soon and how late they are due, how many are claimed, and the most times one was put
/// back).
/// Printed when a phase's deliveries do not all arrive in time, so that its `NaN` explains itself.
pub fn undelivered(database: &str, uid: &str) -> String {
    let of_app = format!(
        "JOIN endpoints e ON e.id = t.endpoint_id JOIN applications a ON a.id = e.application_id \
         WHERE a.uid = '{uid}'"
    );
    let queries = [
        format!(
            "SELECT 'destination', t.status, count(*), max(t.attempt_count), \
               round(extract(epoch FROM min(t.next_attempt) - now())) \
             FROM message_destinations t {of_app} AND t.status <> 'success' GROUP BY 2"
        ),
        format!(
            "SELECT 'failed attempt', t.response_status_code, count(*), left(t.response, 80) \
             FROM attempts t {of_app} AND t.status <> 'success' GROUP BY 2, 4"
        ),
        format!(
            "SELECT 'outbox job', t.attempt, count(*), \
               round(extract(epoch FROM min(t.due) - now())), \
               round(extract(epoch FROM max(t.due) - now())), count(t.claimed_until), \
               max(t.deferrals) \
             FROM outbox t {of_app} GROUP BY 2"
        ),
    ];
    let mut command = psql(database);
    command.arg("-At");
    for query in &queries {
        command.args(["-c", query]);
    }
    match command.output() {
        Ok(output) => String::from_utf8_lossy(&output.stdout).into_owned(),
        Err(error) => format!("could not ask {database}: {error}"),
    }
}

/// Transactions committed or rolled back in `database` so far, as Postgres counts them (each
/// backend publishes its counts within about a second of its last transaction).
pub fn transactions(database: &str) -> anyhow::Result<u64> {
    let output = psql("postgres")
        .args(["-At", "-c"])
        .arg(format!(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{database}'"
        ))
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("no transaction count for {database}: {text}"))
}

/// Deletes the run's delivery queues (best effort): every queue the services declare
/// (`octohooks_broker::delivery_queues`), so that no run leaves one behind.
pub fn delete_queues(queue: &str) {
    for name in [
        queue.to_owned(),
        format!("{queue}.retry"),
        format!("{queue}.parked"),
        format!("{queue}.fanout"),
        format!("{queue}.express"),
        format!("{queue}.express-batches"),
    ] {
        let _ = Command::new("rabbitmqctl")
            .args(["-q", "delete_queue", &name])
            .output();
    }
}

/// A tiny client for the setup calls.
pub struct Admin {
    client: reqwest::Client,
    api: String,
}

impl Admin {
    /// A client of `api`.
    pub fn new(api: &str) -> Self {
        Self {
            client: reqwest::Client::new(),
            api: api.to_owned(),
        }
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        let response = self
            .client
            .post(format!("{}{path}", self.api))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        Ok(response.json().await?)
    }

    /// Creates an environment and returns its API key.
    pub async fn environment(&self, admin_token: &str) -> anyhow::Result<String> {
        let env = self
            .post(
                admin_token,
                "/api/v1/environments",
                json!({"name": "bench"}),
            )
            .await?;
        Ok(env["apiKey"].as_str().unwrap_or_default().to_owned())
    }

    /// Creates an endpoint of application `app` from its `POST` body; returns it.
    pub async fn endpoint(&self, key: &str, app: &str, body: Value) -> anyhow::Result<Value> {
        self.post(key, &format!("/api/v1/applications/{app}/endpoints"), body)
            .await
    }

    /// Creates an event type from its `POST /api/v1/event-types` body.
    pub async fn event_type(&self, key: &str, body: Value) -> anyhow::Result<()> {
        self.post(key, "/api/v1/event-types", body).await.map(drop)
    }

    /// Creates application `uid` with endpoints at `urls`; returns its id.
    pub async fn application(
        &self,
        key: &str,
        uid: &str,
        urls: &[String],
    ) -> anyhow::Result<String> {
        let app = self
            .post(
                key,
                "/api/v1/applications",
                json!({"name": uid, "uid": uid}),
            )
            .await?;
        for url in urls {
            self.post(
                key,
                &format!("/api/v1/applications/{uid}/endpoints"),
                json!({"url": url}),
            )
            .await?;
        }
        Ok(app["id"].as_str().unwrap_or_default().to_owned())
    }
}

/// Prepares a separate database with the same schema, one application and one endpoint, so that
/// pgbench's rows never reach the running services. Returns the application id.
pub fn prepare_pgbench_database(name: &str) -> anyhow::Result<String> {
    recreate_database(name)?;
    let api =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/octohooks-api");
    let status = Command::new(api)
        .arg("migrate")
        .env(
            "OCTOHOOKS_DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:5432/{name}"),
        )
        .env("RUST_LOG", "warn")
        .status()?;
    anyhow::ensure!(status.success(), "could not migrate {name}");
    let app = uuid::Uuid::now_v7();
    let sql = format!(
        "INSERT INTO environments (id, name) VALUES ('{env}', 'pgbench'); \
         INSERT INTO applications (id, environment_id, uid, name, created, updated) \
           VALUES ('{app}', '{env}', 'pgbench', 'pgbench', now(), now()); \
         INSERT INTO endpoints (id, application_id, name, url, enabled, channels, event_types, headers, created, updated) \
           VALUES ('{endpoint}', '{app}', '', 'http://127.0.0.1:9/', true, '{{}}', '{{}}', '{{}}', now(), now());",
        env = uuid::Uuid::now_v7(),
        endpoint = uuid::Uuid::now_v7(),
    );
    let status = psql(name).args(["-q", "-c", &sql]).status()?;
    anyhow::ensure!(status.success(), "could not seed {name}");
    Ok(app.to_string())
}

/// Transactions per second pgbench commits holding the API's statements for one message (the
/// message row, then the destination and outbox job of each matching endpoint), at `clients`
/// connections for `secs` seconds.
pub fn pgbench_limit(database: &str, app_id: &str, clients: u32, secs: u32) -> anyhow::Result<f64> {
    let script = std::env::temp_dir().join("octohooks-bench.sql");
    std::fs::write(
        &script,
        "BEGIN;\n\
         INSERT INTO messages (id, application_id, uid, event_type, channels, payload, created) \
           VALUES (gen_random_uuid(), :app, NULL, 'invoice.paid', '{}', repeat('x', 400), now()) \
           RETURNING id AS mid \\gset\n\
         WITH dest AS (INSERT INTO message_destinations (message_id, endpoint_id, status, next_attempt, updated) \
             SELECT :mid, e.id, 'pending', now(), now() FROM endpoints e \
             WHERE e.application_id = :app AND e.enabled RETURNING endpoint_id) \
         INSERT INTO outbox (message_id, endpoint_id, attempt, trigger_type, due) \
           SELECT :mid, endpoint_id, 0, 'scheduled', now() FROM dest;\n\
         COMMIT;\n",
    )?;
    let output = Command::new("pgbench")
        .args(["-n", "-h", "127.0.0.1", "-U", "postgres", "-M", "prepared"])
        .args([
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &secs.to_string(),
        ])
        .arg("-D")
        .arg(format!("app={app_id}"))
        .arg("-f")
        .arg(&script)
        .arg(database)
        .output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find(|line| line.starts_with("tps = "))
        .and_then(|line| line.split_whitespace().nth(2))
        .and_then(|tps| tps.parse().ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "pgbench printed no tps: {text} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
}
