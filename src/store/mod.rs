//! Durable storage: subscribers, API keys, provider credentials, rule sets, jobs
//! and decisions.
//!
//! Everything riskgate promises with a `2xx` is written through the [`Store`]
//! trait before the response leaves. Two backends implement it with the same SQL
//! (see [`sql`]): SQLite, the embedded default, and PostgreSQL for production.
//! One contract test suite (`tests/store_contract.rs`) runs against both.

mod group_commit;
mod sql;

use async_trait::async_trait;
use serde::Serialize;

pub use sql::{DatabaseUrl, SqlStore};

/// Milliseconds since the Unix epoch; every stored timestamp uses it.
pub type Millis = i64;

pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A row with the same unique key exists already.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database could not be reached (connection refused, pool exhausted).
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value that riskgate itself wrote no longer parses.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscriberStatus {
    Active,
    Suspended,
}

impl SubscriberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SubscriberRow {
    pub id: String,
    pub name: String,
    pub status: SubscriberStatus,
    pub webhook_secret_sealed: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub key_id: String,
    pub subscriber_id: String,
    pub name: Option<String>,
    pub key_hash: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

/// What authenticating one API key needs, read in one query.
#[derive(Debug, Clone)]
pub struct KeyAuthRow {
    pub key_hash: String,
    pub subscriber_id: String,
    pub revoked: bool,
    pub subscriber_status: SubscriberStatus,
}

#[derive(Debug, Clone)]
pub struct ProviderCredentialRow {
    pub subscriber_id: String,
    pub provider: String,
    /// Encrypted JSON of the credentials (see `secrets::Sealer`).
    pub sealed: String,
    /// Non-secret settings (region, API version) as JSON, shown to operators.
    pub settings: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone)]
pub struct RuleSetRow {
    pub subscriber_id: String,
    pub version: i64,
    pub body: String,
    pub created_at: Millis,
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

#[derive(Debug, Clone)]
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub subscriber_id: String,
    pub dedupe_key: String,
    pub payload: String,
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
}

/// How [`Store::enqueue_unique`] resolved a request for a job.
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

/// The storage contract. Every method is one short transaction (or one
/// statement), so an acknowledged write is durable when the call returns.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is (`sqlite` or `postgres`), for logs and `/readyz`.
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> StoreResult<()>;
    /// Closes the connection pool; in-flight queries finish first.
    async fn close(&self);

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>>;
    /// Stores `value` unless the key exists; answers whether it was stored.
    async fn insert_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool>;
    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()>;

    /// Fails with [`StoreError::Conflict`] when the id is taken.
    async fn create_subscriber(&self, row: &SubscriberRow) -> StoreResult<()>;
    async fn get_subscriber(&self, id: &str) -> StoreResult<Option<SubscriberRow>>;
    async fn list_subscribers(&self) -> StoreResult<Vec<SubscriberRow>>;
    /// Changes name and/or status; `None` when the subscriber does not exist.
    async fn update_subscriber(
        &self,
        id: &str,
        name: Option<&str>,
        status: Option<SubscriberStatus>,
    ) -> StoreResult<Option<SubscriberRow>>;

    async fn create_api_key(&self, row: &ApiKeyRow) -> StoreResult<()>;
    async fn list_api_keys(&self, subscriber_id: &str) -> StoreResult<Vec<ApiKeyRow>>;
    /// Marks the key revoked (keeping the first revocation time); `None` if the
    /// subscriber has no such key.
    async fn revoke_api_key(
        &self,
        subscriber_id: &str,
        key_id: &str,
    ) -> StoreResult<Option<ApiKeyRow>>;
    async fn find_key_for_auth(&self, key_id: &str) -> StoreResult<Option<KeyAuthRow>>;

    /// Inserts or replaces one provider's credentials for a subscriber.
    async fn put_provider_credentials(&self, row: &ProviderCredentialRow) -> StoreResult<()>;
    /// The subscriber's providers, first configured first.
    async fn list_provider_credentials(
        &self,
        subscriber_id: &str,
    ) -> StoreResult<Vec<ProviderCredentialRow>>;

    /// Stores a new version of the subscriber's rule set and returns it.
    async fn put_rule_set(&self, subscriber_id: &str, body: &str) -> StoreResult<RuleSetRow>;
    async fn current_rule_set(&self, subscriber_id: &str) -> StoreResult<Option<RuleSetRow>>;

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
    /// Records the end of a job's run. Only a live job can finish; answers
    /// whether this call finished it.
    async fn finish_job(&self, job_id: &str, outcome: &JobOutcome) -> StoreResult<bool>;
}
