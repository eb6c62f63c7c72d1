//! The prefetch worker: runs the device-fetch jobs that `/fingerprint/ingest`
//! records, calls the subscriber's provider, and stores the normalized signals
//! (durably with the job, then in the signal cache).
//!
//! It is a [`Handler`] on the job [`Runner`](super::Runner), which leases the
//! jobs, so several processes on one PostgreSQL share the queue and a job held
//! by a process that died is picked up again when its lease expires.
//! Execution is at least once; its effects (finishing a job, writing a cache
//! entry) are idempotent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;

use crate::cache::{CachedEvent, EventStatus, SignalCache};
use crate::metrics::Metrics;
use crate::providers::client::{fetch, Credentials, Endpoints, FetchOutcome};
use crate::providers::Provider;
use crate::secrets::Sealer;
use crate::service::devices::PendingFetches;
use crate::service::operator::credentials_context;
use crate::store::{
    duration_millis, now_millis, CustomerTouch, JobKind, JobOutcome, JobRow, Millis, Store,
};
use crate::ttl_cache::{TtlCache, LOOKUP_TTL};

use super::{Backoff, Handler};

#[derive(Debug, Clone)]
pub struct PrefetchConfig {
    /// Fetches in flight at once in this process.
    pub concurrency: usize,
    /// Attempts before a retryable failure becomes final.
    pub max_attempts: i64,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How long an open circuit stops calls to its provider.
    pub breaker_cooldown: Duration,
}

impl Default for PrefetchConfig {
    fn default() -> Self {
        Self {
            concurrency: 32,
            max_attempts: 8,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            breaker_cooldown: Duration::from_secs(10),
        }
    }
}

/// Per-provider circuit breakers. A provider whose recent calls mostly fail
/// (at least [`BREAKER_FAILURE_SHARE`] of the last [`BREAKER_WINDOW`], once
/// [`BREAKER_MIN_CALLS`] are in) gets no calls for the cooldown; then calls
/// resume with a fresh window. A share rather than a run of consecutive
/// failures keeps a provider that merely fails often (rate limits, a flaky
/// node) in service: at a 30% failure rate, 16 of 20 fail about once in 10^5.
#[derive(Default)]
struct Breakers {
    state: Mutex<HashMap<Provider, Breaker>>,
}

const BREAKER_WINDOW: usize = 20;
const BREAKER_MIN_CALLS: usize = 10;
const BREAKER_FAILURE_SHARE: f64 = 0.8;

#[derive(Default)]
struct Breaker {
    recent: std::collections::VecDeque<bool>,
    open_until: Option<Instant>,
}

impl Breakers {
    /// `Some(wait)` while the provider's circuit is open.
    fn open_for(&self, provider: Provider) -> Option<Duration> {
        let state = self.state.lock().ok()?;
        let breaker = state.get(&provider)?;
        breaker
            .open_until
            .and_then(|until| until.checked_duration_since(Instant::now()))
    }

    /// Records an outcome; answers whether it opened the circuit.
    fn record(&self, provider: Provider, failed: bool, cooldown: Duration) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        let breaker = state.entry(provider).or_default();
        if breaker.recent.len() == BREAKER_WINDOW {
            breaker.recent.pop_front();
        }
        breaker.recent.push_back(failed);
        let failures = breaker.recent.iter().filter(|f| **f).count();
        let calls = breaker.recent.len();
        if calls >= BREAKER_MIN_CALLS && failures as f64 >= BREAKER_FAILURE_SHARE * calls as f64 {
            breaker.open_until = Some(Instant::now() + cooldown);
            breaker.recent.clear();
            return true;
        }
        false
    }
}

pub struct Prefetcher {
    pub store: Arc<dyn Store>,
    pub cache: Arc<dyn SignalCache>,
    pub sealer: Sealer,
    pub upstream: Upstream,
    pub config: PrefetchConfig,
    pub metrics: Metrics,
    /// Retries of a provider that answered "try again".
    backoff: Backoff,
    breakers: Breakers,
    credentials_cache: TtlCache<Credentials>,
    /// Scoring's record of the fetches queued here; see [`PendingFetches`].
    pending: Option<Arc<PendingFetches>>,
}

/// How the worker reaches the providers.
pub struct Upstream {
    /// Carries the connect and total timeouts; follows no redirects.
    pub http: reqwest::Client,
    pub endpoints: Endpoints,
}

/// What a job's payload says (written by ingest).
struct FetchJob {
    request_id: String,
    provider: Option<Provider>,
    user_id: Option<String>,
}

impl FetchJob {
    fn from_row(job: &JobRow) -> Self {
        let payload: Value = serde_json::from_str(&job.payload).unwrap_or(Value::Null);
        let text = |field: &str| {
            payload
                .get(field)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Self {
            request_id: text("request_id").unwrap_or_else(|| job.dedupe_key.clone()),
            provider: text("provider").as_deref().and_then(Provider::parse),
            user_id: text("user_id"),
        }
    }
}

#[async_trait]
impl Handler for Prefetcher {
    fn kind(&self) -> JobKind {
        JobKind::DeviceFetch
    }

    /// One fetch in flight per leased job.
    fn leased(&self) -> usize {
        self.config.concurrency
    }

    async fn run(&self, job: JobRow) {
        self.run_job(job).await;
    }
}

impl Prefetcher {
    /// Tells scoring when a fetch it knows as pending has finished.
    pub fn with_pending(mut self, pending: Option<Arc<PendingFetches>>) -> Self {
        self.pending = pending;
        self
    }

    pub fn new(
        store: Arc<dyn Store>,
        cache: Arc<dyn SignalCache>,
        sealer: Sealer,
        upstream: Upstream,
        config: PrefetchConfig,
        metrics: Metrics,
    ) -> Self {
        let backoff = Backoff::Doubling {
            base: config.backoff_base,
            max: config.backoff_max,
            attempts: config.max_attempts,
        };
        Self {
            store,
            cache,
            sealer,
            upstream,
            config,
            metrics,
            backoff,
            breakers: Breakers::default(),
            credentials_cache: TtlCache::new(LOOKUP_TTL, 10_000),
            pending: None,
        }
    }

    /// The subscriber's opened credentials, cached for at most a second so a
    /// burst of fetches does not read and decrypt them once per event.
    async fn credentials(
        &self,
        subscriber_id: &str,
        provider: Provider,
    ) -> Result<Credentials, String> {
        let cache_key = format!("{subscriber_id}\u{0}{}", provider.as_str());
        if let Some(credentials) = self.credentials_cache.get(&cache_key) {
            return Ok(credentials);
        }
        let credentials = self.load_credentials(subscriber_id, provider).await?;
        self.credentials_cache.put(&cache_key, credentials.clone());
        Ok(credentials)
    }

    async fn load_credentials(
        &self,
        subscriber_id: &str,
        provider: Provider,
    ) -> Result<Credentials, String> {
        let rows = self
            .store
            .list_provider_credentials(subscriber_id)
            .await
            .map_err(|e| e.to_string())?;
        let row = rows
            .iter()
            .find(|row| row.provider == provider.as_str())
            .ok_or_else(|| {
                format!(
                    "no {} credentials configured for this subscriber",
                    provider.as_str()
                )
            })?;
        let secret = self
            .sealer
            .open(&row.sealed, &credentials_context(subscriber_id, provider))
            .map_err(|e| e.to_string())?;
        Credentials::from_stored(provider, &secret, &row.settings)
            .ok_or_else(|| format!("stored {} credentials are incomplete", provider.as_str()))
    }

    async fn run_job(&self, job: JobRow) {
        let fetch_job = FetchJob::from_row(&job);
        let Some(provider) = fetch_job.provider else {
            self.finish(
                &job,
                &fetch_job,
                None,
                Err("job names no known provider".into()),
            )
            .await;
            return;
        };
        let credentials = match self.credentials(&job.subscriber_id, provider).await {
            Ok(credentials) => credentials,
            Err(reason) => {
                self.finish(&job, &fetch_job, Some(provider), Err(reason))
                    .await;
                return;
            }
        };
        if let Some(wait) = self.breakers.open_for(provider) {
            // The provider is down: put the job back without spending an attempt.
            self.metrics
                .provider_attempts
                .with_label_values(&[provider.as_str(), "circuit_open"])
                .inc();
            let run_at = now_millis() + duration_millis(wait);
            self.retry(&job, run_at, "circuit open: provider failing", true)
                .await;
            return;
        }
        let started = Instant::now();
        let outcome = fetch(
            &self.upstream.http,
            &self.upstream.endpoints,
            &credentials,
            &fetch_job.request_id,
        )
        .await;
        self.metrics
            .provider_latency
            .with_label_values(&[provider.as_str()])
            .observe(started.elapsed().as_secs_f64());
        let (label, failed) = match &outcome {
            FetchOutcome::Ready(_) => ("ready", false),
            FetchOutcome::Retry { .. } => ("retry", true),
            FetchOutcome::Failed { .. } => ("failed", false),
        };
        self.metrics
            .provider_attempts
            .with_label_values(&[provider.as_str(), label])
            .inc();
        let opened = self
            .breakers
            .record(provider, failed, self.config.breaker_cooldown);
        self.metrics
            .breaker_open
            .with_label_values(&[provider.as_str()])
            .set(i64::from(self.breakers.open_for(provider).is_some()));
        if opened {
            tracing::warn!(
                provider = provider.as_str(),
                "circuit opened: provider failing"
            );
        }
        match outcome {
            FetchOutcome::Ready(signals) => {
                self.finish(&job, &fetch_job, Some(provider), Ok(*signals))
                    .await;
            }
            FetchOutcome::Failed { reason } => {
                self.finish(&job, &fetch_job, Some(provider), Err(reason))
                    .await;
            }
            FetchOutcome::Retry { reason, not_before } => match self.backoff.next(job.attempts) {
                Some(wait) => {
                    let wait = wait.max(not_before.unwrap_or_default());
                    self.retry(&job, now_millis() + duration_millis(wait), &reason, false)
                        .await;
                }
                None => {
                    let reason = format!("gave up after {} attempts: {reason}", job.attempts);
                    self.finish(&job, &fetch_job, Some(provider), Err(reason))
                        .await;
                }
            },
        }
    }

    async fn retry(&self, job: &JobRow, run_at: Millis, reason: &str, refund: bool) {
        if let Err(err) = self.store.retry_job(&job.id, run_at, reason, refund).await {
            // The lease will expire and the job will be claimed again.
            tracing::warn!(job_id = %job.id, error = %err, "could not reschedule a fetch");
        }
    }

    /// Records the final outcome: durably with the job first, then in the cache.
    async fn finish(
        &self,
        job: &JobRow,
        fetch_job: &FetchJob,
        provider: Option<Provider>,
        outcome: Result<crate::providers::DeviceSignals, String>,
    ) {
        let now = now_millis();
        let (event, stored) = match outcome {
            Ok(signals) => {
                let event = CachedEvent {
                    request_id: fetch_job.request_id.clone(),
                    provider: provider.map(|p| p.as_str().to_owned()).unwrap_or_default(),
                    status: EventStatus::Ready,
                    signals: Some(signals),
                    error: None,
                    fetched_at: Some(now),
                    attempts: job.attempts,
                };
                let result = serde_json::to_string(&event).unwrap_or_default();
                (event, JobOutcome::Succeeded { result })
            }
            Err(reason) => {
                tracing::info!(job_id = %job.id, subscriber_id = %job.subscriber_id, %reason, "fetch failed");
                let event = CachedEvent {
                    request_id: fetch_job.request_id.clone(),
                    provider: provider.map(|p| p.as_str().to_owned()).unwrap_or_default(),
                    status: EventStatus::Failed,
                    signals: None,
                    error: Some(reason.clone()),
                    fetched_at: Some(now),
                    attempts: job.attempts,
                };
                (event, JobOutcome::Failed { error: reason })
            }
        };
        if let Err(err) = self.store.finish_job(&job.id, &stored).await {
            // Not recorded: the job stays leased and runs again after the lease.
            tracing::warn!(job_id = %job.id, error = %err, "could not record a fetch outcome");
            return;
        }
        // The customer's profile learns the device the user was seen on.
        let visitor = event.signals.as_ref().and_then(|s| s.visitor_id.clone());
        if let (Some(user_id), Some(visitor_id)) = (fetch_job.user_id.clone(), visitor) {
            let touch = CustomerTouch {
                user_id,
                visitor_id: Some(visitor_id),
                ..CustomerTouch::default()
            };
            if let Err(err) = self
                .store
                .touch_customer(&job.subscriber_id, &touch, now)
                .await
            {
                tracing::warn!(job_id = %job.id, error = %err, "could not record the customer's device");
            }
        }
        // Session and user pointers were set at ingest; pointing them here could
        // move them back from a newer request to this older one.
        if let Err(err) = self
            .cache
            .put_event(&job.subscriber_id, None, None, &event)
            .await
        {
            // The job row holds the result; readers refill the cache from it.
            tracing::warn!(job_id = %job.id, error = %err, "could not cache a fetched event");
        }
        if let Some(pending) = &self.pending {
            pending.finished(&job.subscriber_id, &job.dedupe_key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_opens_on_a_mostly_failing_provider_only() {
        let breakers = Breakers::default();
        let cooldown = Duration::from_secs(60);
        // 30% failures, in the worst order (bunched), never open it.
        for i in 0..200 {
            assert!(!breakers.record(Provider::Stytch, i % 10 < 3, cooldown));
        }
        assert!(breakers.open_for(Provider::Stytch).is_none());
        // A provider that is down opens after the minimum number of calls.
        let opened = (0..BREAKER_MIN_CALLS)
            .map(|_| breakers.record(Provider::Fingerprint, true, cooldown))
            .filter(|o| *o)
            .count();
        assert_eq!(opened, 1);
        assert!(breakers.open_for(Provider::Fingerprint).is_some());
        assert!(
            breakers.open_for(Provider::Stytch).is_none(),
            "breakers are per provider"
        );
    }
}
