//! One Redis connection that fails fast, shared by the Redis backends (the
//! signal cache, the velocity counters).
//!
//! Every call is bounded by the configured wait (`--redis-timeout`). The first
//! call that finds Redis unreachable opens the circuit: from then on calls
//! fail at once, without touching the network, while one background task
//! reconnects and `PING`s every [`PROBE_INTERVAL`]; its first success closes
//! the circuit again. The redis crate's own `ConnectionManager` is not used:
//! it makes every caller wait on its reconnect, which backs off exponentially
//! (a checkout stalled for the whole request timeout, and the service came
//! back more than a minute after Redis did).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::{AsyncConnectionConfig, Client, RedisError, RedisResult};
use prometheus::{IntCounter, IntGauge};

/// How often an open circuit tries Redis again.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// The default bound on one Redis call.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_millis(250);
/// How long a probe may take to connect: it runs in the background, so it may
/// wait longer than a request would.
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Where a backend reports its health: `up` is 1 while its circuit is closed,
/// `errors` counts the calls that found Redis unreachable or too slow.
#[derive(Clone)]
pub struct Health {
    pub up: IntGauge,
    pub errors: IntCounter,
}

impl Health {
    /// Series registered nowhere, for a backend whose health nobody reads
    /// (tools, tests).
    pub fn detached() -> Self {
        // Constant, valid names: these constructors cannot fail.
        #[allow(clippy::expect_used)]
        Self {
            up: IntGauge::new("up", "up").expect("valid gauge"),
            errors: IntCounter::new("errors", "errors").expect("valid counter"),
        }
    }
}

/// How the Redis backends talk to Redis.
#[derive(Clone)]
pub struct RedisSettings {
    /// The longest one call may take before it counts as a failure.
    pub call_timeout: Duration,
    pub health: Health,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            call_timeout: DEFAULT_CALL_TIMEOUT,
            health: Health::detached(),
        }
    }
}

/// Cheap to clone: every clone shares the connection and the circuit.
#[derive(Clone)]
pub struct RedisLink(Arc<Inner>);

struct Inner {
    client: Client,
    call_timeout: Duration,
    /// `None` while the circuit is open.
    conn: RwLock<Option<MultiplexedConnection>>,
    /// Whether a probe task is running (at most one per link).
    probing: AtomicBool,
    health: Health,
}

/// Whether a Redis error means the server could not be reached (refused,
/// dropped, timed out) rather than an answer that was an error.
pub fn is_unreachable(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || err.is_timeout()
}

fn unreachable(kind: std::io::ErrorKind, what: &'static str) -> RedisError {
    RedisError::from(std::io::Error::new(kind, what))
}

impl RedisLink {
    /// Connects once, bounded by `connect_timeout`: a start-up that cannot
    /// reach Redis says so instead of serving without it.
    pub async fn connect(
        url: &str,
        settings: &RedisSettings,
        connect_timeout: Duration,
    ) -> RedisResult<Self> {
        let client = Client::open(url)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(connect_timeout)
            .set_response_timeout(settings.call_timeout);
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        settings.health.up.set(1);
        Ok(Self(Arc::new(Inner {
            client,
            call_timeout: settings.call_timeout,
            conn: RwLock::new(Some(conn)),
            probing: AtomicBool::new(false),
            health: settings.health.clone(),
        })))
    }

    /// Whether the circuit is closed (Redis answered the last call or probe).
    pub fn healthy(&self) -> bool {
        self.current().is_some()
    }

    fn current(&self) -> Option<MultiplexedConnection> {
        match self.0.conn.read() {
            Ok(conn) => conn.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Runs one call on the connection, within the call timeout. Fails at
    /// once while the circuit is open.
    pub async fn call<T, F, Fut>(&self, f: F) -> RedisResult<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let Some(conn) = self.current() else {
            return Err(unreachable(
                std::io::ErrorKind::NotConnected,
                "Redis circuit open",
            ));
        };
        let result = match tokio::time::timeout(self.0.call_timeout, f(conn)).await {
            Ok(result) => result,
            Err(_) => Err(unreachable(
                std::io::ErrorKind::TimedOut,
                "Redis call timed out",
            )),
        };
        if let Err(err) = &result {
            if is_unreachable(err) {
                self.trip(err);
            }
        }
        result
    }

    /// Opens the circuit and starts the probe, unless one runs already.
    fn trip(&self, err: &RedisError) {
        self.0.health.errors.inc();
        let was_closed = match self.0.conn.write() {
            Ok(mut conn) => conn.take().is_some(),
            Err(poisoned) => poisoned.into_inner().take().is_some(),
        };
        self.0.health.up.set(0);
        if was_closed {
            tracing::warn!(error = %err, "Redis unreachable; circuit open, probing in the background");
        }
        if self.0.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let link = self.clone();
        tokio::spawn(async move { link.probe().await });
    }

    async fn probe(self) {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(PROBE_CONNECT_TIMEOUT)
            .set_response_timeout(PROBE_CONNECT_TIMEOUT);
        loop {
            tokio::time::sleep(PROBE_INTERVAL).await;
            let attempt = async {
                let mut conn = self
                    .0
                    .client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                ::redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await?;
                RedisResult::Ok(conn)
            };
            match tokio::time::timeout(PROBE_CONNECT_TIMEOUT * 2, attempt).await {
                Ok(Ok(conn)) => {
                    // Cleared before the connection is put back: a call that
                    // fails on it right away must be able to start a probe.
                    self.0.probing.store(false, Ordering::Release);
                    match self.0.conn.write() {
                        Ok(mut slot) => *slot = Some(conn),
                        Err(poisoned) => *poisoned.into_inner() = Some(conn),
                    }
                    self.0.health.up.set(1);
                    tracing::info!("Redis answers again; circuit closed");
                    return;
                }
                Ok(Err(err)) => tracing::debug!(error = %err, "Redis probe failed"),
                Err(_) => tracing::debug!("Redis probe timed out"),
            }
        }
    }
}
