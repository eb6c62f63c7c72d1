//! Durable jobs: device fetches, decision callbacks and backtests, leased by
//! workers.

use async_trait::async_trait;
use serde::Serialize;

use super::{Millis, StoreResult};

/// What a job does; stored as [`JobKind::as_str`]. Declared here, beside the
/// rows that store it, so the services that enqueue jobs and the runner that
/// runs them name kinds without importing each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Fetching an ingested device's analysis from its provider; the
    /// `dedupe_key` is the request id.
    DeviceFetch,
    /// Delivering a decision's signed callback; the `dedupe_key` is the
    /// decision id.
    DecisionCallback,
    /// Replaying a candidate rule set over stored decisions; the
    /// `dedupe_key` is the backtest id.
    Backtest,
}

impl JobKind {
    pub const ALL: [JobKind; 3] = [Self::DeviceFetch, Self::DecisionCallback, Self::Backtest];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DeviceFetch => "device_fetch",
            Self::DecisionCallback => "decision_callback",
            Self::Backtest => "backtest",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl JobState {
    pub const ALL: [JobState; 4] = [Self::Pending, Self::Running, Self::Succeeded, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

impl TryFrom<String> for JobState {
    type Error = String;

    /// Decodes the stored text (rows decode through this).
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or_else(|| format!("job state {s:?}"))
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub subscriber_id: String,
    pub dedupe_key: String,
    pub payload: String,
    #[sqlx(try_from = "String")]
    pub state: JobState,
    pub attempts: i64,
    pub run_at: Millis,
    pub lease_expires_at: Option<Millis>,
    pub result: Option<String>,
    pub last_error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub finished_at: Option<Millis>,
}

/// A job to record; `dedupe_key` makes it unique among the live jobs of its kind.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: String,
    pub kind: String,
    pub subscriber_id: String,
    pub dedupe_key: String,
    pub payload: String,
    /// When the job is first due; `None` for now.
    pub run_at: Option<Millis>,
}

/// How [`Jobs::requeue_failed_job`] resolved a request.
#[derive(Debug, Clone)]
pub enum Requeued {
    /// The latest job of the key had failed; it is pending again (committed).
    Requeued(JobRow),
    /// The latest job of the key is pending, running or succeeded; unchanged.
    NotFailed(JobRow),
    /// No job of that kind has the key (for that subscriber).
    Missing,
}

/// How [`Jobs::enqueue_unique`] resolved a request for a job.
#[derive(Debug, Clone)]
pub enum Enqueued {
    /// A new job was recorded (and committed).
    Queued(JobRow),
    /// A live (pending or running) job for the same key exists; nothing recorded.
    InFlight(JobRow),
    /// A job for the same key succeeded recently enough; nothing recorded.
    Done(JobRow),
}

#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub subscriber_id: Option<String>,
    pub kind: Option<String>,
    pub state: Option<JobState>,
    pub limit: i64,
}

/// The outcome a worker records for a job it ran.
#[derive(Debug, Clone)]
pub enum JobOutcome {
    Succeeded { result: String },
    Failed { error: String },
}

/// The job queue: enqueue, lease, retry, finish.
#[async_trait]
pub trait Jobs: Send + Sync {
    /// Records `job` unless a live job with the same (subscriber, kind, key)
    /// exists, or one succeeded at or after `done_since`.
    async fn enqueue_unique(&self, job: &NewJob, done_since: Millis) -> StoreResult<Enqueued>;
    async fn list_jobs(&self, filter: &JobFilter) -> StoreResult<Vec<JobRow>>;
    /// The latest job of `kind` for the subscriber's key, live or finished.
    async fn latest_job(
        &self,
        subscriber_id: &str,
        kind: &str,
        dedupe_key: &str,
    ) -> StoreResult<Option<JobRow>>;
    /// Counts of jobs by (kind, state).
    async fn job_counts(&self) -> StoreResult<Vec<(String, JobState, i64)>>;
    /// Leases up to `limit` due jobs of `kind`: pending ones whose `run_at` has
    /// come, and running ones whose lease expired (their process died). Each is
    /// marked running until `lease_until`, its attempt counted. Safe with many
    /// processes on PostgreSQL (`FOR UPDATE SKIP LOCKED`).
    async fn claim_jobs(
        &self,
        kind: &str,
        limit: i64,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<Vec<JobRow>>;
    /// Extends to `lease_until` the lease of those of `job_ids` that are still
    /// running; a job that finished (or went back to the queue) meanwhile is
    /// left alone. A runner renews the leases of the jobs it runs, so a lease
    /// can be short and a job whose runner died is claimed again soon.
    async fn renew_leases(&self, job_ids: &[String], lease_until: Millis) -> StoreResult<()>;
    /// Makes every running job pending again, due at `now`, its attempt not
    /// counted (as [`Jobs::retry_job`] with `refund`); answers how many. For
    /// SQLite at start-up: the one process that owns the file takes back the
    /// leases its previous life left, rather than waiting for them to expire.
    async fn release_leases(&self, now: Millis) -> StoreResult<u64>;
    /// Returns a running job to the queue, to run again at `run_at`. With
    /// `refund`, the attempt is not counted (it never reached the provider).
    async fn retry_job(
        &self,
        job_id: &str,
        run_at: Millis,
        error: &str,
        refund: bool,
    ) -> StoreResult<bool>;
    /// When the next pending job of `kind` is due, if any.
    async fn next_due(&self, kind: &str) -> StoreResult<Option<Millis>>;
    /// When the oldest live (pending or running) job of `kind` was created, if any.
    async fn oldest_live_job(&self, kind: &str) -> StoreResult<Option<Millis>>;
    /// Puts the latest job of `kind` for the subscriber's key back in the
    /// queue, if it failed: pending at `run_at`, its attempts reset to 0, its
    /// last error kept. A job in any other state is left alone.
    async fn requeue_failed_job(
        &self,
        kind: &str,
        subscriber_id: &str,
        dedupe_key: &str,
        run_at: Millis,
    ) -> StoreResult<Requeued>;
    /// Records the end of a job's run. Only a live job can finish; answers
    /// whether this call finished it.
    async fn finish_job(&self, job_id: &str, outcome: &JobOutcome) -> StoreResult<bool>;
}
