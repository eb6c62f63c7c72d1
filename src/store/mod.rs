//! Durable storage: subscribers, API keys, provider credentials, rule sets, jobs,
//! scoring decisions (with their callback attempts) and end-customer profiles.
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

/// A duration in milliseconds (saturating), to add to a [`Millis`].
pub fn duration_millis(d: std::time::Duration) -> Millis {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

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
    /// The secret replaced by the last rotation, still accepted (signed with)
    /// until `previous_secret_expires_at`; see [`Store::rotate_webhook_secret`].
    pub previous_webhook_secret_sealed: Option<String>,
    pub previous_secret_expires_at: Option<Millis>,
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
    /// When the job is first due; `None` for now.
    pub run_at: Option<Millis>,
}

/// How [`Store::requeue_failed_job`] resolved a request.
#[derive(Debug, Clone)]
pub enum Requeued {
    /// The latest job of the key had failed; it is pending again (committed).
    Requeued(JobRow),
    /// The latest job of the key is pending, running or succeeded; unchanged.
    NotFailed(JobRow),
    /// No job of that kind has the key (for that subscriber).
    Missing,
}

/// The job kind of a decision's callback; its `dedupe_key` is the decision id.
pub const DECISION_CALLBACK_JOB: &str = "decision_callback";

/// One delivery attempt of a decision's callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackAttempt {
    pub decision_id: String,
    /// 1 for the first attempt; (decision_id, attempt) is unique.
    pub attempt: i64,
    pub at: Millis,
    /// The HTTP status answered, if any.
    pub status_code: Option<i64>,
    /// Why the attempt failed (network error, non-2xx), if it did.
    pub error: Option<String>,
    pub duration_ms: i64,
    /// The `webhook-id` header sent.
    pub webhook_id: String,
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

/// What a subscriber says about one of its end customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CustomerStatus {
    Normal,
    Trusted,
    Blocked,
}

impl CustomerStatus {
    pub const ALL: [CustomerStatus; 3] = [Self::Normal, Self::Trusted, Self::Blocked];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Trusted => "trusted",
            Self::Blocked => "blocked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

/// The outcome a subscriber reports for a decision after the fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    Fraud,
    Legit,
    Chargeback,
}

impl Label {
    pub const ALL: [Label; 3] = [Self::Fraud, Self::Legit, Self::Chargeback];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fraud => "fraud",
            Self::Legit => "legit",
            Self::Chargeback => "chargeback",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|label| label.as_str() == s)
    }

    /// Fraud and chargebacks count in `customers.fraud_labels`.
    pub fn is_fraud_like(self) -> bool {
        matches!(self, Self::Fraud | Self::Chargeback)
    }
}

/// What a decision or an ingest tells us about an end customer.
#[derive(Debug, Clone, Default)]
pub struct CustomerTouch {
    pub user_id: String,
    /// A device seen for the customer (recorded in `customer_devices`).
    pub visitor_id: Option<String>,
    /// A card seen for the customer: (BIN, last four digits).
    pub card: Option<(String, String)>,
    /// A transaction amount; counted in the amount statistics when finite.
    pub amount: Option<f64>,
    /// `allow`, `review` or `block`: counted in `decisions_*`. Any other value,
    /// or `None`, counts no decision. [`Store::record_decision`] counts the
    /// decision's own `action` instead.
    pub action: Option<String>,
}

/// A scoring decision to record.
#[derive(Debug, Clone)]
pub struct NewDecision {
    pub id: String,
    pub subscriber_id: String,
    pub request_id: String,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    /// The scored request, JSON.
    pub input: String,
    /// The response given, JSON.
    pub result: String,
    pub risk_score: f64,
    pub risk_level: String,
    pub action: String,
    pub rules_version: i64,
    pub callback_url: Option<String>,
    /// The end customer; labels on the decision count against this user.
    /// Should equal `customer.user_id` when `customer` is given.
    pub user_id: Option<String>,
    pub duration_us: i64,
    pub created_at: Millis,
    /// The customer profile update that goes with the decision (same transaction).
    pub customer: Option<CustomerTouch>,
    /// A job recorded with the decision, in the same transaction, when the
    /// decision is inserted (not when an idempotent repeat finds an existing
    /// one): the decision's callback, of kind [`DECISION_CALLBACK_JOB`] with
    /// the decision id as `dedupe_key`.
    pub callback: Option<NewJob>,
}

#[derive(Debug, Clone)]
pub struct DecisionRow {
    pub id: String,
    pub subscriber_id: String,
    pub request_id: String,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    pub input: String,
    pub result: String,
    pub risk_score: f64,
    pub risk_level: String,
    pub action: String,
    pub rules_version: i64,
    pub callback_url: Option<String>,
    pub user_id: Option<String>,
    pub duration_us: i64,
    pub created_at: Millis,
    pub label: Option<Label>,
    pub labeled_at: Option<Millis>,
    /// The request and result the callback sends, fixed by its first attempt
    /// (see [`Store::set_decision_final`]).
    pub final_input: Option<String>,
    pub final_result: Option<String>,
    pub final_at: Option<Millis>,
}

/// How [`Store::record_decision`] resolved a decision.
#[derive(Debug, Clone)]
pub enum DecisionRecorded {
    /// The decision was recorded (and committed).
    Inserted(DecisionRow),
    /// A decision with the same idempotency key is within the window; it is
    /// returned and nothing was written.
    Existing(DecisionRow),
}

impl DecisionRecorded {
    pub fn row(&self) -> &DecisionRow {
        match self {
            Self::Inserted(row) | Self::Existing(row) => row,
        }
    }

    pub fn into_row(self) -> DecisionRow {
        match self {
            Self::Inserted(row) | Self::Existing(row) => row,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CustomerRow {
    pub subscriber_id: String,
    pub user_id: String,
    pub status: CustomerStatus,
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub decisions_allow: i64,
    pub decisions_review: i64,
    pub decisions_block: i64,
    pub amount_count: i64,
    pub amount_total: f64,
    pub amount_max: Option<f64>,
    pub fraud_labels: i64,
    pub status_updated_at: Option<Millis>,
}

#[derive(Debug, Clone)]
pub struct CustomerDevice {
    pub visitor_id: String,
    pub first_seen: Millis,
    pub last_seen: Millis,
}

#[derive(Debug, Clone)]
pub struct CustomerCard {
    pub bin: String,
    pub last4: String,
    pub first_seen: Millis,
    pub last_seen: Millis,
}

/// Bound on the devices and cards listed in a [`CustomerProfile`].
pub const PROFILE_LIST_LIMIT: i64 = 100;

#[derive(Debug, Clone)]
pub struct CustomerProfile {
    pub customer: CustomerRow,
    /// Most recently seen first, at most [`PROFILE_LIST_LIMIT`].
    pub devices: Vec<CustomerDevice>,
    /// Most recently seen first, at most [`PROFILE_LIST_LIMIT`].
    pub cards: Vec<CustomerCard>,
    pub devices_total: i64,
    pub cards_total: i64,
}

/// What the scoring hot path reads about the customer, in ONE query.
#[derive(Debug, Clone)]
pub struct CustomerFeatures {
    pub status: CustomerStatus,
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub decisions_allow: i64,
    pub decisions_review: i64,
    pub decisions_block: i64,
    pub amount_count: i64,
    pub amount_total: f64,
    pub amount_max: Option<f64>,
    pub fraud_labels: i64,
    /// Distinct devices seen for the customer.
    pub devices: i64,
    /// Distinct cards seen for the customer.
    pub cards: i64,
    /// A visitor id was given and has been seen for this customer.
    pub known_device: bool,
    /// A card was given and has been seen for this customer.
    pub known_card: bool,
}

/// A stored decision as the start-up velocity rebuild reads it.
#[derive(Debug, Clone)]
pub struct DecisionReplay {
    pub id: String,
    pub subscriber_id: String,
    pub created_at: Millis,
    pub input: String,
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
    /// In one statement: the current webhook secret becomes the previous one
    /// (valid until `previous_expires_at`; an older previous secret is
    /// dropped) and `new_sealed` the current one. `None` for an unknown
    /// subscriber.
    async fn rotate_webhook_secret(
        &self,
        subscriber_id: &str,
        new_sealed: &str,
        previous_expires_at: Millis,
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
    /// Records a decision, in one transaction through the group committer.
    /// With an idempotency key: a decision of the subscriber with the same key
    /// created at or after `idempotent_since` is returned as
    /// [`DecisionRecorded::Existing`] and nothing is written (also when a
    /// concurrent call wins the race); an older one loses its key, which may be
    /// reused, and the new decision is recorded. With `customer`, the
    /// customer's profile is updated in the same transaction: seen times,
    /// the decision's `action` counted, the amount, device and card. With
    /// `callback`, that job is recorded in the same transaction when the
    /// decision is inserted (never for [`DecisionRecorded::Existing`]).
    async fn record_decision(
        &self,
        decision: &NewDecision,
        idempotent_since: Millis,
    ) -> StoreResult<DecisionRecorded>;
    /// The subscriber's decision with this idempotency key created at or after `since`.
    async fn find_decision_by_idempotency(
        &self,
        subscriber_id: &str,
        key: &str,
        since: Millis,
    ) -> StoreResult<Option<DecisionRow>>;
    /// The subscriber's decision; `None` for an unknown id or another subscriber's.
    async fn get_decision(&self, subscriber_id: &str, id: &str)
        -> StoreResult<Option<DecisionRow>>;
    /// The decision of any subscriber (for workers, whose jobs name their
    /// subscriber); never answer a tenant with it unchecked.
    async fn get_decision_by_id(&self, decision_id: &str) -> StoreResult<Option<DecisionRow>>;
    /// Fixes the input and result the decision's callback sends, unless they
    /// are fixed already (the first writer wins, so every retry of a callback
    /// sends the same body). Answers whether this call set them; `false` also
    /// for an unknown decision.
    async fn set_decision_final(
        &self,
        decision_id: &str,
        final_input: &str,
        final_result: &str,
        at: Millis,
    ) -> StoreResult<bool>;
    /// Records one callback attempt; recording the same (decision, attempt)
    /// again replaces it. Fails for an unknown decision.
    async fn record_callback_attempt(&self, attempt: &CallbackAttempt) -> StoreResult<()>;
    /// The decision's callback attempts, by attempt number.
    async fn callback_attempts(&self, decision_id: &str) -> StoreResult<Vec<CallbackAttempt>>;
    /// Sets (or replaces) the decision's label; `None` if the subscriber has no
    /// such decision. In the same transaction, the fraud-like label count of the
    /// decision's user (if any) goes up by one when the label becomes fraud-like
    /// and down by one when it stops being (the customer row is created if missing).
    async fn label_decision(
        &self,
        subscriber_id: &str,
        id: &str,
        label: Label,
        at: Millis,
    ) -> StoreResult<Option<DecisionRow>>;
    /// Records that the customer was seen at `at` (through the group committer):
    /// seen times, device, card and amount; a decision only when `touch.action`
    /// names one. Creates the customer when needed.
    async fn touch_customer(
        &self,
        subscriber_id: &str,
        touch: &CustomerTouch,
        at: Millis,
    ) -> StoreResult<()>;
    /// The customer with its most recently seen devices and cards.
    async fn get_customer(
        &self,
        subscriber_id: &str,
        user_id: &str,
    ) -> StoreResult<Option<CustomerProfile>>;
    /// Sets the customer's status, creating the customer (seen at `at`) if unknown.
    async fn set_customer_status(
        &self,
        subscriber_id: &str,
        user_id: &str,
        status: CustomerStatus,
        at: Millis,
    ) -> StoreResult<CustomerRow>;
    /// The customer's scoring features in one statement; whether the given
    /// device and card were seen for this customer before. `None` for an
    /// unknown customer.
    async fn customer_features(
        &self,
        subscriber_id: &str,
        user_id: &str,
        visitor_id: Option<&str>,
        card: Option<(&str, &str)>,
    ) -> StoreResult<Option<CustomerFeatures>>;
    /// Up to `limit` decisions of every subscriber created at or after `since`,
    /// ordered by (created_at, id), strictly after the `after` (created_at, id)
    /// position when given: keyset paging for the start-up velocity rebuild.
    async fn decisions_since(
        &self,
        since: Millis,
        after: Option<(Millis, String)>,
        limit: i64,
    ) -> StoreResult<Vec<DecisionReplay>>;
}
