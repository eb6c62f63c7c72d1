//! The prefetch worker: runs the device-fetch jobs that `/fingerprint/ingest`
//! records, calls the subscriber's provider, and stores the normalized signals
//! (durably with the job, then in the signal cache).
//!
//! Jobs are leased from the store, so several processes on one PostgreSQL
//! share the queue and a job held by a process that died is picked up again
//! when its lease expires. Execution is at least once; its effects (finishing
//! a job, writing a cache entry) are idempotent. The loop wakes on new work,
//! on a finished fetch, when the next retry is due, and otherwise polls slowly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{watch, Notify, Semaphore};

use crate::cache::{CachedEvent, EventStatus, SignalCache};
use crate::metrics::Metrics;
use crate::providers::client::{fetch, Credentials, Endpoints, FetchOutcome};
use crate::providers::Provider;
use crate::secrets::Sealer;
use crate::service::devices::DEVICE_FETCH_JOB;
use crate::service::operator::credentials_context;
use crate::store::{duration_millis, now_millis, CustomerTouch, JobOutcome, JobRow, Millis, Store};
use crate::ttl_cache::{TtlCache, LOOKUP_TTL};

#[derive(Debug, Clone)]
pub struct PrefetchConfig {
    /// Fetches in flight at once in this process.
    pub concurrency: usize,
    /// Attempts before a retryable failure becomes final.
    pub max_attempts: i64,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// The slow fallback poll (new work normally wakes the worker at once).
    pub poll_interval: Duration,
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
            poll_interval: Duration::from_secs(2),
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
    /// Keeps the leases of the fetches in flight.
    leases: super::Leases,
    pub store: Arc<dyn Store>,
    pub cache: Arc<dyn SignalCache>,
    pub sealer: Sealer,
    pub upstream: Upstream,
    pub config: PrefetchConfig,
    pub metrics: Metrics,
    /// Notified by ingest when it records a job, and by fetches as they end.
    pub wake: Arc<Notify>,
    breakers: Breakers,
    credentials_cache: TtlCache<Credentials>,
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

impl Prefetcher {
    pub fn new(
        store: Arc<dyn Store>,
        cache: Arc<dyn SignalCache>,
        sealer: Sealer,
        upstream: Upstream,
        config: PrefetchConfig,
        metrics: Metrics,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            leases: super::Leases::default(),
            store,
            cache,
            sealer,
            upstream,
            config,
            metrics,
            wake,
            breakers: Breakers::default(),
            credentials_cache: TtlCache::new(LOOKUP_TTL, 10_000),
        }
    }

    /// Keeps its leases alive through `leases` (shared with the other job
    /// handlers, renewed by one keeper).
    pub fn with_leases(mut self, leases: super::Leases) -> Self {
        self.leases = leases;
        self
    }

    /// Runs until `shutdown` turns true, then lets the fetches in flight finish.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        loop {
            if *shutdown.borrow() {
                break;
            }
            let free = slots.available_permits();
            let mut full_batch = false;
            if free > 0 {
                let now = now_millis();
                let lease_until = super::lease_until(now);
                match self
                    .store
                    .claim_jobs(DEVICE_FETCH_JOB, free as i64, now, lease_until)
                    .await
                {
                    Ok(jobs) => {
                        full_batch = jobs.len() == free;
                        for job in jobs {
                            let Ok(slot) = slots.clone().acquire_owned().await else {
                                break;
                            };
                            let worker = self.clone();
                            tokio::spawn(async move {
                                let _lease = worker.leases.hold(&job.id);
                                worker.run_job(job).await;
                                drop(slot);
                                worker.wake.notify_one();
                            });
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "could not claim fetch jobs");
                    }
                }
            }
            if full_batch {
                continue; // more work may be waiting
            }
            let wait = match self.store.next_due(DEVICE_FETCH_JOB).await {
                Ok(Some(due)) => {
                    Duration::from_millis(u64::try_from(due - now_millis()).unwrap_or(0))
                        .min(self.config.poll_interval)
                }
                _ => self.config.poll_interval,
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait.max(Duration::from_millis(5))) => {}
                _ = shutdown.changed() => {}
            }
        }
        // Drain: a fetch that finishes now saves a provider call after restart.
        let _ = slots
            .acquire_many(self.config.concurrency.max(1) as u32)
            .await;
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

    fn backoff(&self, attempts: i64) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
        let ceiling = self
            .config
            .backoff_base
            .saturating_mul(1 << exp)
            .min(self.config.backoff_max);
        // Jitter in [50%, 100%] spreads retries of a burst that failed together.
        super::jitter(ceiling, 0.5..=1.0)
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
            FetchOutcome::Retry { reason, .. } if job.attempts >= self.config.max_attempts => {
                let reason = format!("gave up after {} attempts: {reason}", job.attempts);
                self.finish(&job, &fetch_job, Some(provider), Err(reason))
                    .await;
            }
            FetchOutcome::Retry { reason, not_before } => {
                let wait = self
                    .backoff(job.attempts)
                    .max(not_before.unwrap_or_default());
                self.retry(&job, now_millis() + duration_millis(wait), &reason, false)
                    .await;
            }
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
