//! Prometheus metrics, one registry per running app (so tests that start
//! several apps in one process do not share counters).

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::store::{JobState, Store, StoreResult};

/// Cheap to clone: every handle shares its series with the registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub ingests: IntCounterVec,
    /// Provider calls by provider and outcome (`ready`, `retry`, `failed`,
    /// `circuit_open` for calls the breaker held back).
    pub provider_attempts: IntCounterVec,
    pub provider_latency: HistogramVec,
    /// 1 while a provider's circuit breaker is open.
    pub breaker_open: IntGaugeVec,
    /// Decisions by action.
    pub decisions: IntCounterVec,
    /// Rule evaluations that failed (a missing field, a type mismatch): the
    /// rule did not hit, the decision went on.
    pub rule_errors: IntCounter,
    /// Callback attempts by outcome (`delivered`, `retry`, `failed`).
    pub callbacks: IntCounterVec,
    /// Time one callback delivery attempt took.
    pub callback_latency: Histogram,
    /// Age of the oldest callback not yet delivered or failed.
    callback_oldest_age: Gauge,
    jobs: IntGaugeVec,
    /// Requests refused by a subscriber's rate limit, per subscriber.
    pub rate_limited: IntCounterVec,
    /// Limiter calls that failed (the request was admitted), per backend.
    pub rate_limiter_errors: IntCounterVec,
    /// 1 while a backend (`store`, `cache`, `velocity`) answers, 0 while it
    /// is unreachable.
    pub backend_up: IntGaugeVec,
    /// Calls that found a backend unreachable or too slow, by backend.
    pub backend_errors: IntCounterVec,
    /// The store's count of unreachable-database errors at the last render.
    store_errors_seen: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// How long `/metrics` waits for the database to say whether it is up.
const STORE_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("riskgate".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5,
            ]),
            &["method", "route"],
        )?;
        let ingests = IntCounterVec::new(
            Opts::new("ingest_total", "Accepted fingerprint ingests by mode"),
            &["mode"],
        )?;
        let jobs = IntGaugeVec::new(
            Opts::new("jobs", "Jobs in the database by kind and state"),
            &["kind", "state"],
        )?;
        let provider_attempts = IntCounterVec::new(
            Opts::new(
                "provider_attempts_total",
                "Provider calls by provider and outcome",
            ),
            &["provider", "outcome"],
        )?;
        let provider_latency = HistogramVec::new(
            HistogramOpts::new("provider_request_duration_seconds", "Provider call latency")
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
            &["provider"],
        )?;
        let breaker_open = IntGaugeVec::new(
            Opts::new(
                "provider_circuit_open",
                "1 while the provider's circuit breaker is open",
            ),
            &["provider"],
        )?;
        let decisions = IntCounterVec::new(
            Opts::new("decisions_total", "Scoring decisions by action"),
            &["action"],
        )?;
        let rule_errors = IntCounter::new(
            "rule_errors_total",
            "Rule evaluations that failed on a decision's input (counted as not hit)",
        )?;
        let callbacks = IntCounterVec::new(
            Opts::new("callbacks_total", "Callback delivery attempts by outcome"),
            &["outcome"],
        )?;
        let callback_latency = Histogram::with_opts(
            HistogramOpts::new(
                "callback_attempt_duration_seconds",
                "Time one callback delivery attempt took",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )?;
        let callback_oldest_age = Gauge::new(
            "callback_oldest_pending_age_seconds",
            "Age of the oldest callback not yet delivered or failed (0 when none)",
        )?;
        let backend_up = IntGaugeVec::new(
            Opts::new(
                "backend_up",
                "1 while the backend (store, cache, velocity) answers, 0 while it is unreachable",
            ),
            &["backend"],
        )?;
        let backend_errors = IntCounterVec::new(
            Opts::new(
                "backend_errors_total",
                "Calls that found the backend unreachable or too slow",
            ),
            &["backend"],
        )?;
        for backend in ["store", "cache", "velocity"] {
            backend_up.with_label_values(&[backend]).set(1);
            backend_errors.with_label_values(&[backend]).inc_by(0);
        }
        registry.register(Box::new(backend_up.clone()))?;
        registry.register(Box::new(backend_errors.clone()))?;
        registry.register(Box::new(callbacks.clone()))?;
        registry.register(Box::new(callback_latency.clone()))?;
        registry.register(Box::new(callback_oldest_age.clone()))?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(rule_errors.clone()))?;
        registry.register(Box::new(provider_attempts.clone()))?;
        registry.register(Box::new(provider_latency.clone()))?;
        registry.register(Box::new(breaker_open.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(ingests.clone()))?;
        registry.register(Box::new(jobs.clone()))?;
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "rate_limited_total",
                "Requests refused with 429 by the subscriber's rate limit",
            ),
            &["subscriber_id"],
        )?;
        let rate_limiter_errors = IntCounterVec::new(
            Opts::new(
                "rate_limiter_errors_total",
                "Rate-limit checks that failed and admitted the request",
            ),
            &["backend"],
        )?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(rate_limiter_errors.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            ingests,
            provider_attempts,
            provider_latency,
            breaker_open,
            decisions,
            rule_errors,
            callbacks,
            callback_latency,
            callback_oldest_age,
            jobs,
            rate_limited,
            rate_limiter_errors,
            backend_up,
            backend_errors,
            store_errors_seen: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(
                crate::store::unavailable_errors(),
            )),
        })
    }

    /// Where a Redis backend reports its health.
    pub fn redis_health(&self, backend: &str) -> crate::redis_link::Health {
        crate::redis_link::Health {
            up: self.backend_up.with_label_values(&[backend]),
            errors: self.backend_errors.with_label_values(&[backend]),
        }
    }

    /// The text exposition, with job gauges read fresh from the database.
    /// While the database is unreachable it still answers, with the store
    /// marked down and the job gauges as last read.
    pub async fn render(&self, store: &dyn Store) -> String {
        let total = crate::store::unavailable_errors();
        let seen = self
            .store_errors_seen
            .swap(total, std::sync::atomic::Ordering::AcqRel);
        self.backend_errors
            .with_label_values(&["store"])
            .inc_by(total.saturating_sub(seen));
        let read = tokio::time::timeout(STORE_PROBE_TIMEOUT, self.read_jobs(store)).await;
        let up = matches!(read, Ok(Ok(())));
        if let Ok(Err(err)) = &read {
            tracing::warn!(error = %err, "metrics: database");
        }
        self.backend_up
            .with_label_values(&["store"])
            .set(i64::from(up));
        let mut out = Vec::new();
        // Encoding into a Vec only fails on invalid metric families, which the
        // constructors above rule out.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    async fn read_jobs(&self, store: &dyn Store) -> StoreResult<()> {
        let counts = store.job_counts().await?;
        self.jobs.reset();
        for (kind, state) in counts
            .iter()
            .map(|(k, _, _)| k)
            .flat_map(|k| JobState::ALL.map(|s| (k, s)))
        {
            self.jobs.with_label_values(&[kind, state.as_str()]).set(0);
        }
        for (kind, state, n) in &counts {
            self.jobs.with_label_values(&[kind, state.as_str()]).set(*n);
        }
        let oldest = store
            .oldest_live_job(crate::store::JobKind::DecisionCallback.as_str())
            .await?
            .map_or(0.0, |at| {
                (crate::store::now_millis() - at).max(0) as f64 / 1000.0
            });
        self.callback_oldest_age.set(oldest);
        Ok(())
    }
}
