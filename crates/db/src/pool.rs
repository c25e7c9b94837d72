//! The connection pool. Bounded, with timeouts on wait, create and recycle, a
//! `statement_timeout` on every connection and a client-side deadline a little longer than it,
//! so that a slow or unreachable database turns into 503s instead of a pile-up of waiting
//! requests. Every connection also turns the JIT off, and a pool for batched statements plans
//! each of them once ([`PoolOptions::generic_plans`]).

use std::time::Duration;

use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::connect::Target;
use crate::{DbError, DbResult};

/// How much longer than `statement_timeout` a call may wait for its answer before the client
/// gives up on the connection: Postgres cancels a slow statement itself and says so; only an
/// unreachable server lets the client's deadline run out.
pub const ANSWER_GRACE: Duration = Duration::from_secs(2);

/// The shared pool type.
pub type DbPool = Pool<AsyncPgConnection>;
/// A connection checked out of the pool.
pub type Conn = Object<AsyncPgConnection>;

/// Pool sizing and timeouts.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Most connections held open.
    pub max_size: usize,
    /// Longest wait for a free connection before giving up with 503.
    pub wait_timeout: Duration,
    /// Longest any single statement may run; a call without an answer for this plus
    /// [`ANSWER_GRACE`] closes its connection.
    pub statement_timeout: Duration,
    /// Plans each prepared statement once per connection (`plan_cache_mode =
    /// force_generic_plan`), for a pool that runs only the batched statements of the delivery
    /// path, which find their rows by key whatever their values. Left to choose, Postgres
    /// planned those statements anew on every call whenever their arrays were short (a plan for
    /// one element looks cheaper than the generic one), and that planning was a large part of
    /// the CPU per message at low load (BENCHMARKS.md, "Planned once"). Such a pool also
    /// turns sequential scans off (`enable_seqscan = off`): a plan kept for the connection's
    /// life must not read a whole table because it was small when planned. The outbox is a
    /// queue, small by its statistics and large on disk between vacuums; a plan made on it
    /// after an `ANALYZE` read every page of it to remove a batch's jobs (BENCHMARKS.md, "Kept
    /// plans that read the outbox whole"). Not for a general pool: a generic plan cannot use a
    /// partial index through a bound value, nor choose between indexes by a filter's value,
    /// which the API's lists need.
    pub generic_plans: bool,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 16,
            wait_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            generic_plans: false,
        }
    }
}

/// Builds the pool; connections are opened lazily, so this succeeds while Postgres is down
/// (but not with a URL that does not parse, or names a root certificate file that is missing).
pub fn build_pool(database_url: &str, options: &PoolOptions) -> DbResult<DbPool> {
    let target = Target::parse(database_url)?;
    let statement_timeout_ms = options.statement_timeout.as_millis();
    let deadline = options.statement_timeout + ANSWER_GRACE;
    let generic_plans = options.generic_plans;
    let mut config = ManagerConfig::default();
    // Broken connections are dropped by the pool when returned; a test query on every
    // checkout would double the round trips of every request.
    config.recycling_method = diesel_async::pooled_connection::RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |_url| {
        let target = target.clone();
        Box::pin(async move {
            let mut conn = target.open_with_deadline(deadline).await?;
            // No JIT: every statement of the services is short, and compiling one (which
            // Postgres does when a batch's estimated cost is high) took longer than running it.
            // A general pool keeps the server's `plan_cache_mode` and lets the planner weigh
            // sequential scans.
            let plans = if generic_plans {
                "; SET plan_cache_mode = force_generic_plan; SET enable_seqscan = off"
            } else {
                ""
            };
            conn.batch_execute(&format!(
                "SET statement_timeout = {statement_timeout_ms}; SET jit = off{plans}"
            ))
            .await
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, config);
    Pool::builder(manager)
        .max_size(options.max_size.max(2))
        // The connection returned last is handed out first: under moderate load a few warm
        // backends serve every query, instead of all of them in turn (each a separate Postgres
        // process to wake, with its own cold caches), and the rest stay idle.
        .queue_mode(deadpool::managed::QueueMode::Lifo)
        .wait_timeout(Some(options.wait_timeout))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|err| DbError::Unavailable(err.to_string()))
}

/// How long a pooled connection may sit unused before it is closed.
pub const IDLE_CONNECTION_LIMIT: Duration = Duration::from_secs(300);

/// Closes connections unused for [`IDLE_CONNECTION_LIMIT`], checking once a minute, until the
/// pool is gone. The pool hands out its most recently used connection first, so the extra
/// connections a burst opened sit unused afterwards: closed, they cost Postgres nothing, and a
/// firewall that drops idle flows cannot leave them dead for the next burst.
pub fn close_idle_connections(pool: &DbPool) -> tokio::task::JoinHandle<()> {
    let pool = pool.weak();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(pool) = pool.upgrade() else {
                return;
            };
            pool.retain(|_, metrics| metrics.last_used() < IDLE_CONNECTION_LIMIT);
        }
    })
}

/// Checks a connection out of the pool.
pub async fn connection(pool: &DbPool) -> DbResult<Conn> {
    pool.get()
        .await
        .map_err(|err| DbError::Unavailable(err.to_string()))
}

/// True when Postgres answers a trivial query.
pub async fn ping(pool: &DbPool) -> bool {
    match connection(pool).await {
        Ok(mut conn) => diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .await
            .is_ok(),
        Err(_) => false,
    }
}
