//! The [`Store`] on SQLite or PostgreSQL through sqlx's `Any` driver.
//!
//! Both schemas (`migrations/sqlite`, `migrations/postgres`) use the same column
//! names and compatible types (BIGINT milliseconds, TEXT JSON), and every query
//! here is written in the common subset of both dialects with `$n` parameters,
//! so the two backends cannot drift apart: one implementation, two servers.
//! Queries are checked at run time, so building needs no live database.

use std::str::FromStr;
use std::time::Duration;

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::AnyConnection;
use sqlx::{AnyPool, Executor, Row};

use super::group_commit::GroupCommit;
use super::*;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// A validated `--database-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH`; the file is created if absent.
    Sqlite { path: String },
    /// `postgres://…` or `postgresql://…`, passed to the driver as given.
    Postgres { url: String },
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
        {
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                return Err("expected sqlite://PATH with a file path".into());
            }
            return Ok(Self::Sqlite {
                path: path.to_owned(),
            });
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Self::Postgres { url: s.to_owned() });
        }
        Err("expected sqlite://PATH or postgres://…".into())
    }
}

impl DatabaseUrl {
    /// The URL with any password masked, for logs.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite { path } => format!("sqlite://{path}"),
            Self::Postgres { url } => match url::Url::parse(url) {
                Ok(mut parsed) if parsed.password().is_some() => {
                    let _ = parsed.set_password(Some("***"));
                    parsed.to_string()
                }
                _ => url.clone(),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    commits: GroupCommit,
    /// SQLite allows one writer at a time; queueing writers here, in order,
    /// replaces SQLite's busy handler, whose growing sleeps (up to 100 ms a
    /// try) made write latency spike under concurrent ingests.
    writer: Option<Arc<tokio::sync::Mutex<()>>>,
}

pub(super) fn db_err(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        // SQLITE_BUSY and its extended codes: another process held the write
        // lock past the busy timeout. Worth a retry, not a 500.
        sqlx::Error::Database(db)
            if matches!(db.code().as_deref(), Some("5" | "261" | "517" | "773")) =>
        {
            StoreError::Unavailable(err)
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_) => StoreError::Unavailable(err),
        _ => StoreError::Database(err),
    }
}

impl SqlStore {
    /// Connects and applies the embedded migrations of the URL's backend.
    pub async fn connect(url: &DatabaseUrl) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let (dialect, conn_url, max) = match url {
            // `mode=rwc` creates the file when it is absent.
            DatabaseUrl::Sqlite { path } => {
                (Dialect::Sqlite, format!("sqlite://{path}?mode=rwc"), 8)
            }
            DatabaseUrl::Postgres { url } => (Dialect::Postgres, url.clone(), 16),
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(5));
        if dialect == Dialect::Sqlite {
            options = options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers run beside the writer; FULL sync makes a
                    // committed row survive power loss, not only a process crash.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                    )
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(&conn_url).await.map_err(db_err)?;
        let migrator = match dialect {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await?;
        let writer = (dialect == Dialect::Sqlite).then(|| Arc::new(tokio::sync::Mutex::new(())));
        // One committer suffices for SQLite's single writer; PostgreSQL takes
        // several batches at once.
        let committers = if dialect == Dialect::Sqlite { 1 } else { 4 };
        let commits = GroupCommit::spawn(pool.clone(), writer.clone(), committers);
        Ok(Self {
            pool,
            dialect,
            commits,
            writer,
        })
    }

    /// Waits for this process's turn to write (SQLite only).
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.writer {
            Some(writer) => Some(writer.lock().await),
            None => None,
        }
    }
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}"))
}

fn subscriber_from(row: &AnyRow) -> StoreResult<SubscriberRow> {
    let status: String = row.try_get("status").map_err(db_err)?;
    Ok(SubscriberRow {
        id: row.try_get("id").map_err(db_err)?,
        name: row.try_get("name").map_err(db_err)?,
        status: SubscriberStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        webhook_secret_sealed: row.try_get("webhook_secret_sealed").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
        previous_webhook_secret_sealed: row
            .try_get("previous_webhook_secret_sealed")
            .map_err(db_err)?,
        previous_secret_expires_at: row.try_get("previous_secret_expires_at").map_err(db_err)?,
    })
}

fn api_key_from(row: &AnyRow) -> StoreResult<ApiKeyRow> {
    Ok(ApiKeyRow {
        key_id: row.try_get("key_id").map_err(db_err)?,
        subscriber_id: row.try_get("subscriber_id").map_err(db_err)?,
        name: row.try_get("name").map_err(db_err)?,
        key_hash: row.try_get("key_hash").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        revoked_at: row.try_get("revoked_at").map_err(db_err)?,
    })
}

fn provider_from(row: &AnyRow) -> StoreResult<ProviderCredentialRow> {
    Ok(ProviderCredentialRow {
        subscriber_id: row.try_get("subscriber_id").map_err(db_err)?,
        provider: row.try_get("provider").map_err(db_err)?,
        sealed: row.try_get("sealed").map_err(db_err)?,
        settings: row.try_get("settings").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
    })
}

fn rule_set_from(row: &AnyRow) -> StoreResult<RuleSetRow> {
    Ok(RuleSetRow {
        subscriber_id: row.try_get("subscriber_id").map_err(db_err)?,
        version: row.try_get("version").map_err(db_err)?,
        body: row.try_get("body").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
    })
}

fn job_from(row: &AnyRow) -> StoreResult<JobRow> {
    let state: String = row.try_get("state").map_err(db_err)?;
    Ok(JobRow {
        id: row.try_get("id").map_err(db_err)?,
        kind: row.try_get("kind").map_err(db_err)?,
        subscriber_id: row.try_get("subscriber_id").map_err(db_err)?,
        dedupe_key: row.try_get("dedupe_key").map_err(db_err)?,
        payload: row.try_get("payload").map_err(db_err)?,
        state: JobState::parse(&state).ok_or_else(|| corrupt("job state", &state))?,
        attempts: row.try_get("attempts").map_err(db_err)?,
        run_at: row.try_get("run_at").map_err(db_err)?,
        lease_expires_at: row.try_get("lease_expires_at").map_err(db_err)?,
        result: row.try_get("result").map_err(db_err)?,
        last_error: row.try_get("last_error").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
        finished_at: row.try_get("finished_at").map_err(db_err)?,
    })
}

fn decision_from(row: &AnyRow) -> StoreResult<DecisionRow> {
    let label: Option<String> = row.try_get("label").map_err(db_err)?;
    let label = label
        .map(|l| Label::parse(&l).ok_or_else(|| corrupt("label", &l)))
        .transpose()?;
    Ok(DecisionRow {
        id: row.try_get("id").map_err(db_err)?,
        subscriber_id: row.try_get("subscriber_id").map_err(db_err)?,
        request_id: row.try_get("request_id").map_err(db_err)?,
        idempotency_key: row.try_get("idempotency_key").map_err(db_err)?,
        request_hash: row.try_get("request_hash").map_err(db_err)?,
        input: row.try_get("input").map_err(db_err)?,
        result: row.try_get("result").map_err(db_err)?,
        risk_score: row.try_get("risk_score").map_err(db_err)?,
        risk_level: row.try_get("risk_level").map_err(db_err)?,
        action: row.try_get("action").map_err(db_err)?,
        rules_version: row.try_get("rules_version").map_err(db_err)?,
        callback_url: row.try_get("callback_url").map_err(db_err)?,
        user_id: row.try_get("user_id").map_err(db_err)?,
        duration_us: row.try_get("duration_us").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        label,
        labeled_at: row.try_get("labeled_at").map_err(db_err)?,
        final_input: row.try_get("final_input").map_err(db_err)?,
        final_result: row.try_get("final_result").map_err(db_err)?,
        final_at: row.try_get("final_at").map_err(db_err)?,
    })
}

fn callback_attempt_from(row: &AnyRow) -> StoreResult<CallbackAttempt> {
    Ok(CallbackAttempt {
        decision_id: row.try_get("decision_id").map_err(db_err)?,
        attempt: row.try_get("attempt").map_err(db_err)?,
        at: row.try_get("at").map_err(db_err)?,
        status_code: row.try_get("status_code").map_err(db_err)?,
        error: row.try_get("error").map_err(db_err)?,
        duration_ms: row.try_get("duration_ms").map_err(db_err)?,
        webhook_id: row.try_get("webhook_id").map_err(db_err)?,
    })
}

fn customer_status_from(row: &AnyRow) -> StoreResult<CustomerStatus> {
    let status: String = row.try_get("status").map_err(db_err)?;
    CustomerStatus::parse(&status).ok_or_else(|| corrupt("customer status", &status))
}

fn customer_from(row: &AnyRow) -> StoreResult<CustomerRow> {
    Ok(CustomerRow {
        subscriber_id: row.try_get("subscriber_id").map_err(db_err)?,
        user_id: row.try_get("user_id").map_err(db_err)?,
        status: customer_status_from(row)?,
        first_seen: row.try_get("first_seen").map_err(db_err)?,
        last_seen: row.try_get("last_seen").map_err(db_err)?,
        decisions_allow: row.try_get("decisions_allow").map_err(db_err)?,
        decisions_review: row.try_get("decisions_review").map_err(db_err)?,
        decisions_block: row.try_get("decisions_block").map_err(db_err)?,
        amount_count: row.try_get("amount_count").map_err(db_err)?,
        amount_total: row.try_get("amount_total").map_err(db_err)?,
        amount_max: row.try_get("amount_max").map_err(db_err)?,
        fraud_labels: row.try_get("fraud_labels").map_err(db_err)?,
        status_updated_at: row.try_get("status_updated_at").map_err(db_err)?,
    })
}

const SUBSCRIBER_COLUMNS: &str =
    "id, name, status, webhook_secret_sealed, created_at, updated_at, \
     previous_webhook_secret_sealed, previous_secret_expires_at";
const API_KEY_COLUMNS: &str = "key_id, subscriber_id, name, key_hash, created_at, revoked_at";
const JOB_COLUMNS: &str = "id, kind, subscriber_id, dedupe_key, payload, state, attempts, run_at, \
     lease_expires_at, result, last_error, created_at, updated_at, finished_at";
const DECISION_COLUMNS: &str = "id, subscriber_id, request_id, idempotency_key, request_hash, \
     input, result, risk_score, risk_level, action, rules_version, callback_url, user_id, \
     duration_us, created_at, label, labeled_at, final_input, final_result, final_at";
const CALLBACK_ATTEMPT_COLUMNS: &str =
    "decision_id, attempt, at, status_code, error, duration_ms, webhook_id";
const CUSTOMER_COLUMNS: &str = "subscriber_id, user_id, status, first_seen, last_seen, \
     decisions_allow, decisions_review, decisions_block, amount_count, amount_total, amount_max, \
     fraud_labels, status_updated_at";
/// Columns of `customers` qualified with `c.` (for joins and subselects).
const CUSTOMER_FEATURE_COLUMNS: &str = "c.status, c.first_seen, c.last_seen, c.decisions_allow, \
     c.decisions_review, c.decisions_block, c.amount_count, c.amount_total, c.amount_max, \
     c.fraud_labels";

#[async_trait]
impl Lifecycle for SqlStore {
    fn backend(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl Settings for SqlStore {
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|r| r.try_get("value").map_err(db_err)).transpose()
    }

    async fn insert_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let done =
            sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(key)
                .bind(value)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }
}

#[async_trait]
impl Subscribers for SqlStore {
    async fn create_subscriber(&self, row: &SubscriberRow) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO subscribers (id, name, status, webhook_secret_sealed, created_at, \
             updated_at, previous_webhook_secret_sealed, previous_secret_expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&row.id)
        .bind(&row.name)
        .bind(row.status.as_str())
        .bind(&row.webhook_secret_sealed)
        .bind(row.created_at)
        .bind(row.updated_at)
        .bind(row.previous_webhook_secret_sealed.as_deref())
        .bind(row.previous_secret_expires_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn get_subscriber(&self, id: &str) -> StoreResult<Option<SubscriberRow>> {
        let sql = format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(subscriber_from).transpose()
    }

    async fn list_subscribers(&self) -> StoreResult<Vec<SubscriberRow>> {
        let sql = format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers ORDER BY created_at, id");
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(subscriber_from).collect()
    }

    async fn update_subscriber(
        &self,
        id: &str,
        name: Option<&str>,
        status: Option<SubscriberStatus>,
    ) -> StoreResult<Option<SubscriberRow>> {
        let _turn = self.write_turn().await;
        let sql = format!(
            "UPDATE subscribers SET name = COALESCE($2, name), status = COALESCE($3, status), \
             updated_at = $4 WHERE id = $1 RETURNING {SUBSCRIBER_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(name)
            .bind(status.map(SubscriberStatus::as_str))
            .bind(now_millis())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(subscriber_from).transpose()
    }

    async fn rotate_webhook_secret(
        &self,
        subscriber_id: &str,
        new_sealed: &str,
        previous_expires_at: Millis,
    ) -> StoreResult<Option<SubscriberRow>> {
        let _turn = self.write_turn().await;
        // One statement, so atomic: SET expressions read the row as it was
        // before the update (SQL semantics on both backends).
        let sql = format!(
            "UPDATE subscribers SET previous_webhook_secret_sealed = webhook_secret_sealed, \
             previous_secret_expires_at = $3, webhook_secret_sealed = $2, updated_at = $4 \
             WHERE id = $1 RETURNING {SUBSCRIBER_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(subscriber_id)
            .bind(new_sealed)
            .bind(previous_expires_at)
            .bind(now_millis())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(subscriber_from).transpose()
    }

    async fn create_api_key(&self, row: &ApiKeyRow) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO api_keys (key_id, subscriber_id, name, key_hash, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&row.key_id)
        .bind(&row.subscriber_id)
        .bind(row.name.as_deref())
        .bind(&row.key_hash)
        .bind(row.created_at)
        .bind(row.revoked_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn list_api_keys(&self, subscriber_id: &str) -> StoreResult<Vec<ApiKeyRow>> {
        let sql = format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE subscriber_id = $1 ORDER BY created_at, key_id"
        );
        let rows = sqlx::query(&sql)
            .bind(subscriber_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(api_key_from).collect()
    }

    async fn revoke_api_key(
        &self,
        subscriber_id: &str,
        key_id: &str,
    ) -> StoreResult<Option<ApiKeyRow>> {
        let _turn = self.write_turn().await;
        let sql = format!(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) \
             WHERE subscriber_id = $1 AND key_id = $2 RETURNING {API_KEY_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(subscriber_id)
            .bind(key_id)
            .bind(now_millis())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(api_key_from).transpose()
    }

    async fn find_key_for_auth(&self, key_id: &str) -> StoreResult<Option<KeyAuthRow>> {
        let row = sqlx::query(
            "SELECT k.key_hash, k.subscriber_id, k.revoked_at, s.status \
             FROM api_keys k JOIN subscribers s ON s.id = k.subscriber_id WHERE k.key_id = $1",
        )
        .bind(key_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let status: String = row.try_get("status").map_err(db_err)?;
        let revoked_at: Option<i64> = row.try_get("revoked_at").map_err(db_err)?;
        Ok(Some(KeyAuthRow {
            key_hash: row.try_get("key_hash").map_err(db_err)?,
            subscriber_id: row.try_get("subscriber_id").map_err(db_err)?,
            revoked: revoked_at.is_some(),
            subscriber_status: SubscriberStatus::parse(&status)
                .ok_or_else(|| corrupt("status", &status))?,
        }))
    }

    async fn put_provider_credentials(&self, row: &ProviderCredentialRow) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        // Replacing credentials keeps `created_at`, so the default provider (the
        // first configured) does not change when its secret is rotated.
        sqlx::query(
            "INSERT INTO provider_credentials \
             (subscriber_id, provider, sealed, settings, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (subscriber_id, provider) DO UPDATE SET \
             sealed = excluded.sealed, settings = excluded.settings, updated_at = excluded.updated_at",
        )
        .bind(&row.subscriber_id)
        .bind(&row.provider)
        .bind(&row.sealed)
        .bind(&row.settings)
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn list_provider_credentials(
        &self,
        subscriber_id: &str,
    ) -> StoreResult<Vec<ProviderCredentialRow>> {
        let rows = sqlx::query(
            "SELECT subscriber_id, provider, sealed, settings, created_at, updated_at \
             FROM provider_credentials WHERE subscriber_id = $1 ORDER BY created_at, provider",
        )
        .bind(subscriber_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(provider_from).collect()
    }
}

#[async_trait]
impl RuleSets for SqlStore {
    async fn put_rule_set(&self, subscriber_id: &str, body: &str) -> StoreResult<RuleSetRow> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // Versions are MAX + 1: concurrent writers on PostgreSQL serialize on the
        // subscriber's row (SQLite writers are already serialized by the turn).
        if self.dialect == Dialect::Postgres {
            sqlx::query("SELECT id FROM subscribers WHERE id = $1 FOR UPDATE")
                .bind(subscriber_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        let row = sqlx::query(
            "INSERT INTO rule_sets (subscriber_id, version, body, created_at) \
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3 FROM rule_sets WHERE subscriber_id = $1 \
             RETURNING subscriber_id, version, body, created_at",
        )
        .bind(subscriber_id)
        .bind(body)
        .bind(now_millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let stored = rule_set_from(&row)?;
        tx.commit().await.map_err(db_err)?;
        Ok(stored)
    }

    async fn current_rule_set(&self, subscriber_id: &str) -> StoreResult<Option<RuleSetRow>> {
        let row = sqlx::query(
            "SELECT subscriber_id, version, body, created_at FROM rule_sets \
             WHERE subscriber_id = $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(subscriber_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(rule_set_from).transpose()
    }
}

#[async_trait]
impl Jobs for SqlStore {
    async fn enqueue_unique(&self, job: &NewJob, done_since: Millis) -> StoreResult<Enqueued> {
        self.commits.enqueue(job.clone(), done_since).await
    }

    async fn list_jobs(&self, filter: &JobFilter) -> StoreResult<Vec<JobRow>> {
        let sql = format!(
            // The casts let PostgreSQL type a parameter that is only compared with NULL.
            "SELECT {JOB_COLUMNS} FROM jobs \
             WHERE (CAST($1 AS TEXT) IS NULL OR subscriber_id = $1) \
             AND (CAST($2 AS TEXT) IS NULL OR kind = $2) \
             AND (CAST($3 AS TEXT) IS NULL OR state = $3) \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(filter.subscriber_id.as_deref())
            .bind(filter.kind.as_deref())
            .bind(filter.state.map(JobState::as_str))
            .bind(filter.limit.clamp(1, 1000))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(job_from).collect()
    }

    async fn latest_job(
        &self,
        subscriber_id: &str,
        kind: &str,
        dedupe_key: &str,
    ) -> StoreResult<Option<JobRow>> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        latest_job_on(&mut conn, subscriber_id, kind, dedupe_key).await
    }

    async fn job_counts(&self) -> StoreResult<Vec<(String, JobState, i64)>> {
        let rows = sqlx::query("SELECT kind, state, COUNT(*) AS n FROM jobs GROUP BY kind, state")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get("state").map_err(db_err)?;
                Ok((
                    row.try_get("kind").map_err(db_err)?,
                    JobState::parse(&state).ok_or_else(|| corrupt("job state", &state))?,
                    row.try_get("n").map_err(db_err)?,
                ))
            })
            .collect()
    }

    async fn claim_jobs(
        &self,
        kind: &str,
        limit: i64,
        now: Millis,
        lease_until: Millis,
    ) -> StoreResult<Vec<JobRow>> {
        let _turn = self.write_turn().await;
        // SQLite has one writer (the turn above); PostgreSQL processes skip the
        // rows another process is claiming instead of waiting for them.
        let lock = match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => "FOR UPDATE SKIP LOCKED",
        };
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_expires_at = $4, \
             updated_at = $3 WHERE id IN (SELECT id FROM jobs WHERE kind = $1 AND \
             ((state = 'pending' AND run_at <= $3) OR (state = 'running' AND lease_expires_at < $3)) \
             ORDER BY run_at LIMIT $2 {lock}) RETURNING {JOB_COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(kind)
            .bind(limit.max(0))
            .bind(now)
            .bind(lease_until)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(job_from).collect()
    }

    async fn retry_job(
        &self,
        job_id: &str,
        run_at: Millis,
        error: &str,
        refund: bool,
    ) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE jobs SET state = 'pending', run_at = $2, last_error = $3, lease_expires_at = NULL, \
             attempts = CASE WHEN $4 = 1 AND attempts > 0 THEN attempts - 1 ELSE attempts END, \
             updated_at = $5 WHERE id = $1 AND state = 'running'",
        )
        .bind(job_id)
        .bind(run_at)
        .bind(error)
        .bind(i64::from(refund))
        .bind(now_millis())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn next_due(&self, kind: &str) -> StoreResult<Option<Millis>> {
        let row = sqlx::query(
            "SELECT MIN(run_at) AS due FROM jobs WHERE kind = $1 AND state = 'pending'",
        )
        .bind(kind)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        row.try_get("due").map_err(db_err)
    }

    async fn oldest_live_job(&self, kind: &str) -> StoreResult<Option<Millis>> {
        let row = sqlx::query(
            "SELECT MIN(created_at) AS oldest FROM jobs \
             WHERE kind = $1 AND state IN ('pending', 'running')",
        )
        .bind(kind)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        row.try_get("oldest").map_err(db_err)
    }

    async fn requeue_failed_job(
        &self,
        kind: &str,
        subscriber_id: &str,
        dedupe_key: &str,
        run_at: Millis,
    ) -> StoreResult<Requeued> {
        let _turn = self.write_turn().await;
        // SQLite: take the write lock before reading (see `label_decision`).
        let mut tx = match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => self.pool.begin().await,
        }
        .map_err(db_err)?;
        let Some(latest) = latest_job_on(&mut tx, subscriber_id, kind, dedupe_key).await? else {
            return Ok(Requeued::Missing);
        };
        if latest.state != JobState::Failed {
            return Ok(Requeued::NotFailed(latest));
        }
        // `state = 'failed'` settles a race with a concurrent requeue
        // (PostgreSQL): the loser waits for the winner's commit, then
        // matches no row and reports the job as it is now.
        let row = sqlx::query(&format!(
            "UPDATE jobs SET state = 'pending', run_at = $2, attempts = 0, \
             lease_expires_at = NULL, result = NULL, finished_at = NULL, updated_at = $3 \
             WHERE id = $1 AND state = 'failed' RETURNING {JOB_COLUMNS}"
        ))
        .bind(&latest.id)
        .bind(run_at)
        .bind(now_millis())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let outcome = match row {
            Some(row) => Requeued::Requeued(job_from(&row)?),
            None => {
                let now = sqlx::query(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"))
                    .bind(&latest.id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
                Requeued::NotFailed(job_from(&now)?)
            }
        };
        tx.commit().await.map_err(db_err)?;
        Ok(outcome)
    }

    async fn finish_job(&self, job_id: &str, outcome: &JobOutcome) -> StoreResult<bool> {
        self.commits.finish(job_id, outcome).await
    }
}

#[async_trait]
impl Decisions for SqlStore {
    async fn record_decision(
        &self,
        decision: &NewDecision,
        idempotent_since: Millis,
    ) -> StoreResult<DecisionRecorded> {
        self.commits
            .record_decision(decision, idempotent_since)
            .await
    }

    async fn find_decision_by_idempotency(
        &self,
        subscriber_id: &str,
        key: &str,
        since: Millis,
    ) -> StoreResult<Option<DecisionRow>> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        let row = decision_by_key_on(&mut conn, subscriber_id, key).await?;
        Ok(row.filter(|row| row.created_at >= since))
    }

    async fn get_decision(
        &self,
        subscriber_id: &str,
        id: &str,
    ) -> StoreResult<Option<DecisionRow>> {
        let sql = format!(
            "SELECT {DECISION_COLUMNS} FROM decisions WHERE subscriber_id = $1 AND id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(subscriber_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(decision_from).transpose()
    }

    async fn get_decision_by_id(&self, decision_id: &str) -> StoreResult<Option<DecisionRow>> {
        let sql = format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(decision_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(decision_from).transpose()
    }

    async fn set_decision_final(
        &self,
        decision_id: &str,
        final_input: &str,
        final_result: &str,
        at: Millis,
    ) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        // `final_at IS NULL` settles concurrent writers: on PostgreSQL the
        // second waits for the first's commit, then matches no row.
        let done = sqlx::query(
            "UPDATE decisions SET final_input = $2, final_result = $3, final_at = $4 \
             WHERE id = $1 AND final_at IS NULL",
        )
        .bind(decision_id)
        .bind(final_input)
        .bind(final_result)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn record_callback_attempt(&self, attempt: &CallbackAttempt) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(&format!(
            "INSERT INTO callback_attempts ({CALLBACK_ATTEMPT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (decision_id, attempt) DO UPDATE SET at = excluded.at, \
             status_code = excluded.status_code, error = excluded.error, \
             duration_ms = excluded.duration_ms, webhook_id = excluded.webhook_id"
        ))
        .bind(&attempt.decision_id)
        .bind(attempt.attempt)
        .bind(attempt.at)
        .bind(attempt.status_code)
        .bind(attempt.error.as_deref())
        .bind(attempt.duration_ms)
        .bind(&attempt.webhook_id)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn callback_attempts(&self, decision_id: &str) -> StoreResult<Vec<CallbackAttempt>> {
        let rows = sqlx::query(&format!(
            "SELECT {CALLBACK_ATTEMPT_COLUMNS} FROM callback_attempts \
             WHERE decision_id = $1 ORDER BY attempt"
        ))
        .bind(decision_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(callback_attempt_from).collect()
    }

    async fn label_decision(
        &self,
        subscriber_id: &str,
        id: &str,
        label: Label,
        at: Millis,
    ) -> StoreResult<Option<DecisionRow>> {
        let _turn = self.write_turn().await;
        // SQLite: take the write lock before reading the old label (a deferred
        // transaction would fail with SQLITE_BUSY if another process wrote
        // between the read and the write).
        let mut tx = match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => self.pool.begin().await,
        }
        .map_err(db_err)?;
        let lock = match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => "FOR UPDATE",
        };
        let old = sqlx::query(&format!(
            "SELECT label, user_id, created_at FROM decisions \
             WHERE subscriber_id = $1 AND id = $2 {lock}"
        ))
        .bind(subscriber_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(old) = old else {
            return Ok(None);
        };
        let old_label: Option<String> = old.try_get("label").map_err(db_err)?;
        let user_id: Option<String> = old.try_get("user_id").map_err(db_err)?;
        let created_at: Millis = old.try_get("created_at").map_err(db_err)?;
        let was_fraud = old_label
            .as_deref()
            .and_then(Label::parse)
            .is_some_and(Label::is_fraud_like);
        let row = sqlx::query(&format!(
            "UPDATE decisions SET label = $3, labeled_at = $4 \
             WHERE subscriber_id = $1 AND id = $2 RETURNING {DECISION_COLUMNS}"
        ))
        .bind(subscriber_id)
        .bind(id)
        .bind(label.as_str())
        .bind(at)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let labeled = decision_from(&row)?;
        let delta = i64::from(label.is_fraud_like()) - i64::from(was_fraud);
        if let (Some(user_id), true) = (user_id, delta != 0) {
            // A customer first known from this label is dated by its decision.
            sqlx::query(
                "INSERT INTO customers (subscriber_id, user_id, first_seen, last_seen, fraud_labels) \
                 VALUES ($1, $2, $3, $3, $4) \
                 ON CONFLICT (subscriber_id, user_id) DO UPDATE SET fraud_labels = \
                 CASE WHEN customers.fraud_labels + $5 < 0 THEN 0 \
                 ELSE customers.fraud_labels + $5 END",
            )
            .bind(subscriber_id)
            .bind(&user_id)
            .bind(created_at)
            .bind(delta.max(0))
            .bind(delta)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(Some(labeled))
    }

    async fn decisions_since(
        &self,
        since: Millis,
        after: Option<(Millis, String)>,
        limit: i64,
    ) -> StoreResult<Vec<DecisionReplay>> {
        let columns = "id, subscriber_id, created_at, input";
        let limit = limit.clamp(1, 10_000);
        let rows = match after {
            None => {
                sqlx::query(&format!(
                    "SELECT {columns} FROM decisions WHERE created_at >= $1 \
                     ORDER BY created_at, id LIMIT $2"
                ))
                .bind(since)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
            Some((after_at, after_id)) => {
                sqlx::query(&format!(
                    "SELECT {columns} FROM decisions WHERE created_at >= $1 \
                     AND (created_at > $2 OR (created_at = $2 AND id > $3)) \
                     ORDER BY created_at, id LIMIT $4"
                ))
                .bind(since)
                .bind(after_at)
                .bind(after_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(db_err)?;
        rows.iter()
            .map(|row| {
                Ok(DecisionReplay {
                    id: row.try_get("id").map_err(db_err)?,
                    subscriber_id: row.try_get("subscriber_id").map_err(db_err)?,
                    created_at: row.try_get("created_at").map_err(db_err)?,
                    input: row.try_get("input").map_err(db_err)?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl Customers for SqlStore {
    async fn touch_customer(
        &self,
        subscriber_id: &str,
        touch: &CustomerTouch,
        at: Millis,
    ) -> StoreResult<()> {
        self.commits.touch_customer(subscriber_id, touch, at).await
    }

    async fn get_customer(
        &self,
        subscriber_id: &str,
        user_id: &str,
    ) -> StoreResult<Option<CustomerProfile>> {
        let row = sqlx::query(&format!(
            "SELECT {CUSTOMER_COLUMNS}, \
             (SELECT COUNT(*) FROM customer_devices d \
              WHERE d.subscriber_id = $1 AND d.user_id = $2) AS devices_total, \
             (SELECT COUNT(*) FROM customer_cards k \
              WHERE k.subscriber_id = $1 AND k.user_id = $2) AS cards_total \
             FROM customers WHERE subscriber_id = $1 AND user_id = $2"
        ))
        .bind(subscriber_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let customer = customer_from(&row)?;
        let devices_total: i64 = row.try_get("devices_total").map_err(db_err)?;
        let cards_total: i64 = row.try_get("cards_total").map_err(db_err)?;
        let devices = sqlx::query(
            "SELECT visitor_id, first_seen, last_seen FROM customer_devices \
             WHERE subscriber_id = $1 AND user_id = $2 \
             ORDER BY last_seen DESC, visitor_id LIMIT $3",
        )
        .bind(subscriber_id)
        .bind(user_id)
        .bind(PROFILE_LIST_LIMIT)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| {
            Ok(CustomerDevice {
                visitor_id: r.try_get("visitor_id").map_err(db_err)?,
                first_seen: r.try_get("first_seen").map_err(db_err)?,
                last_seen: r.try_get("last_seen").map_err(db_err)?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
        let cards = sqlx::query(
            "SELECT bin, last4, first_seen, last_seen FROM customer_cards \
             WHERE subscriber_id = $1 AND user_id = $2 \
             ORDER BY last_seen DESC, bin, last4 LIMIT $3",
        )
        .bind(subscriber_id)
        .bind(user_id)
        .bind(PROFILE_LIST_LIMIT)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?
        .iter()
        .map(|r| {
            Ok(CustomerCard {
                bin: r.try_get("bin").map_err(db_err)?,
                last4: r.try_get("last4").map_err(db_err)?,
                first_seen: r.try_get("first_seen").map_err(db_err)?,
                last_seen: r.try_get("last_seen").map_err(db_err)?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
        Ok(Some(CustomerProfile {
            customer,
            devices,
            cards,
            devices_total,
            cards_total,
        }))
    }

    async fn set_customer_status(
        &self,
        subscriber_id: &str,
        user_id: &str,
        status: CustomerStatus,
        at: Millis,
    ) -> StoreResult<CustomerRow> {
        let _turn = self.write_turn().await;
        let row = sqlx::query(&format!(
            "INSERT INTO customers (subscriber_id, user_id, status, first_seen, last_seen, \
             status_updated_at) VALUES ($1, $2, $3, $4, $4, $4) \
             ON CONFLICT (subscriber_id, user_id) DO UPDATE SET status = excluded.status, \
             status_updated_at = excluded.status_updated_at RETURNING {CUSTOMER_COLUMNS}"
        ))
        .bind(subscriber_id)
        .bind(user_id)
        .bind(status.as_str())
        .bind(at)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        customer_from(&row)
    }

    async fn customer_features(
        &self,
        subscriber_id: &str,
        user_id: &str,
        visitor_id: Option<&str>,
        card: Option<(&str, &str)>,
    ) -> StoreResult<Option<CustomerFeatures>> {
        // Unknown device or card: NULL parameters match no row. The casts let
        // PostgreSQL type a parameter that may be NULL.
        let row = sqlx::query(&format!(
            "SELECT {CUSTOMER_FEATURE_COLUMNS}, \
             (SELECT COUNT(*) FROM customer_devices d \
              WHERE d.subscriber_id = c.subscriber_id AND d.user_id = c.user_id) AS devices, \
             (SELECT COUNT(*) FROM customer_cards k \
              WHERE k.subscriber_id = c.subscriber_id AND k.user_id = c.user_id) AS cards, \
             CASE WHEN EXISTS (SELECT 1 FROM customer_devices d \
              WHERE d.subscriber_id = c.subscriber_id AND d.user_id = c.user_id \
              AND d.visitor_id = CAST($3 AS TEXT)) THEN 1 ELSE 0 END AS known_device, \
             CASE WHEN EXISTS (SELECT 1 FROM customer_cards k \
              WHERE k.subscriber_id = c.subscriber_id AND k.user_id = c.user_id \
              AND k.bin = CAST($4 AS TEXT) AND k.last4 = CAST($5 AS TEXT)) THEN 1 ELSE 0 END \
              AS known_card \
             FROM customers c WHERE c.subscriber_id = $1 AND c.user_id = $2"
        ))
        .bind(subscriber_id)
        .bind(user_id)
        .bind(visitor_id)
        .bind(card.map(|(bin, _)| bin))
        .bind(card.map(|(_, last4)| last4))
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let known_device: i64 = row.try_get("known_device").map_err(db_err)?;
        let known_card: i64 = row.try_get("known_card").map_err(db_err)?;
        Ok(Some(CustomerFeatures {
            status: customer_status_from(&row)?,
            first_seen: row.try_get("first_seen").map_err(db_err)?,
            last_seen: row.try_get("last_seen").map_err(db_err)?,
            decisions_allow: row.try_get("decisions_allow").map_err(db_err)?,
            decisions_review: row.try_get("decisions_review").map_err(db_err)?,
            decisions_block: row.try_get("decisions_block").map_err(db_err)?,
            amount_count: row.try_get("amount_count").map_err(db_err)?,
            amount_total: row.try_get("amount_total").map_err(db_err)?,
            amount_max: row.try_get("amount_max").map_err(db_err)?,
            fraud_labels: row.try_get("fraud_labels").map_err(db_err)?,
            devices: row.try_get("devices").map_err(db_err)?,
            cards: row.try_get("cards").map_err(db_err)?,
            known_device: known_device != 0,
            known_card: known_card != 0,
        }))
    }
}

/// Records a job's end; only a live job can finish. Runs on the caller's
/// connection, inside its transaction.
pub(super) async fn finish_on(
    conn: &mut AnyConnection,
    job_id: &str,
    outcome: &JobOutcome,
) -> StoreResult<bool> {
    let (state, result, error) = match outcome {
        JobOutcome::Succeeded { result } => (JobState::Succeeded, Some(result.as_str()), None),
        JobOutcome::Failed { error } => (JobState::Failed, None, Some(error.as_str())),
    };
    let done = sqlx::query(
        "UPDATE jobs SET state = $2, result = $3, last_error = $4, finished_at = $5, \
         updated_at = $5, lease_expires_at = NULL \
         WHERE id = $1 AND state IN ('pending', 'running')",
    )
    .bind(job_id)
    .bind(state.as_str())
    .bind(result)
    .bind(error)
    .bind(now_millis())
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn latest_job_on(
    conn: &mut AnyConnection,
    subscriber_id: &str,
    kind: &str,
    dedupe_key: &str,
) -> StoreResult<Option<JobRow>> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE subscriber_id = $1 AND kind = $2 AND dedupe_key = $3 \
         ORDER BY created_at DESC, id DESC LIMIT 1"
    );
    let row = sqlx::query(&sql)
        .bind(subscriber_id)
        .bind(kind)
        .bind(dedupe_key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    row.as_ref().map(job_from).transpose()
}

/// Records `job` unless a live or fresh one exists; see [`Jobs::enqueue_unique`].
/// Runs on the caller's connection, inside its transaction.
pub(super) async fn enqueue_on(
    conn: &mut AnyConnection,
    job: &NewJob,
    done_since: Millis,
) -> StoreResult<Enqueued> {
    // The partial unique index `jobs_live` settles races with other processes:
    // a losing insert returns no row, and the next look finds the winner.
    for _ in 0..3 {
        if let Some(latest) =
            latest_job_on(conn, &job.subscriber_id, &job.kind, &job.dedupe_key).await?
        {
            match latest.state {
                JobState::Pending | JobState::Running => return Ok(Enqueued::InFlight(latest)),
                JobState::Succeeded if latest.finished_at.unwrap_or(0) >= done_since => {
                    return Ok(Enqueued::Done(latest))
                }
                _ => {}
            }
        }
        let sql = format!(
            "INSERT INTO jobs (id, kind, subscriber_id, dedupe_key, payload, state, attempts, \
             run_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $7, $6, $6) \
             ON CONFLICT DO NOTHING RETURNING {JOB_COLUMNS}"
        );
        let now = now_millis();
        let inserted = sqlx::query(&sql)
            .bind(&job.id)
            .bind(&job.kind)
            .bind(&job.subscriber_id)
            .bind(&job.dedupe_key)
            .bind(&job.payload)
            .bind(now)
            .bind(job.run_at.unwrap_or(now))
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
        if let Some(row) = inserted {
            return Ok(Enqueued::Queued(job_from(&row)?));
        }
    }
    Err(StoreError::Conflict(format!(
        "job {} is contended",
        job.dedupe_key
    )))
}

/// Records `job` as pending, failing with [`StoreError::Conflict`] when a live
/// job has its key. Runs on the caller's connection, inside its transaction.
async fn insert_job_on(conn: &mut AnyConnection, job: &NewJob) -> StoreResult<JobRow> {
    let sql = format!(
        "INSERT INTO jobs (id, kind, subscriber_id, dedupe_key, payload, state, attempts, \
         run_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $7, $6, $6) \
         RETURNING {JOB_COLUMNS}"
    );
    let now = now_millis();
    let row = sqlx::query(&sql)
        .bind(&job.id)
        .bind(&job.kind)
        .bind(&job.subscriber_id)
        .bind(&job.dedupe_key)
        .bind(&job.payload)
        .bind(now)
        .bind(job.run_at.unwrap_or(now))
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    job_from(&row)
}

pub(super) async fn decision_by_key_on(
    conn: &mut AnyConnection,
    subscriber_id: &str,
    key: &str,
) -> StoreResult<Option<DecisionRow>> {
    let sql = format!(
        "SELECT {DECISION_COLUMNS} FROM decisions WHERE subscriber_id = $1 AND idempotency_key = $2"
    );
    let row = sqlx::query(&sql)
        .bind(subscriber_id)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    row.as_ref().map(decision_from).transpose()
}

/// Records a decision (not its customer update: the group committer applies
/// that after every batch's decisions, see `group_commit`); see
/// [`Decisions::record_decision`]. Runs on the caller's connection, inside its
/// transaction.
pub(super) async fn record_decision_on(
    conn: &mut AnyConnection,
    decision: &NewDecision,
    idempotent_since: Millis,
) -> StoreResult<DecisionRecorded> {
    let insert = format!(
        "INSERT INTO decisions (id, subscriber_id, request_id, idempotency_key, request_hash, \
         input, result, risk_score, risk_level, action, rules_version, callback_url, user_id, \
         duration_us, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (subscriber_id, idempotency_key) WHERE idempotency_key IS NOT NULL \
         DO NOTHING RETURNING {DECISION_COLUMNS}"
    );
    // The partial unique index `decisions_idempotency` settles races with
    // other batches and processes: a losing insert waits for the winner's
    // commit, returns no row, and the next look finds the winner.
    for _ in 0..3 {
        if let Some(key) = &decision.idempotency_key {
            if let Some(existing) = decision_by_key_on(conn, &decision.subscriber_id, key).await? {
                if existing.created_at >= idempotent_since {
                    return Ok(DecisionRecorded::Existing(existing));
                }
                // Out of the window: the key is free again.
                sqlx::query(
                    "UPDATE decisions SET idempotency_key = NULL \
                     WHERE subscriber_id = $1 AND id = $2 AND idempotency_key = $3",
                )
                .bind(&decision.subscriber_id)
                .bind(&existing.id)
                .bind(key)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
            }
        }
        let inserted = sqlx::query(&insert)
            .bind(&decision.id)
            .bind(&decision.subscriber_id)
            .bind(&decision.request_id)
            .bind(decision.idempotency_key.as_deref())
            .bind(&decision.request_hash)
            .bind(&decision.input)
            .bind(&decision.result)
            .bind(decision.risk_score)
            .bind(&decision.risk_level)
            .bind(&decision.action)
            .bind(decision.rules_version)
            .bind(decision.callback_url.as_deref())
            .bind(decision.user_id.as_deref())
            .bind(decision.duration_us)
            .bind(decision.created_at)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
        if let Some(row) = inserted {
            if let Some(job) = &decision.callback {
                insert_job_on(conn, job).await?;
            }
            return Ok(DecisionRecorded::Inserted(decision_from(&row)?));
        }
    }
    Err(StoreError::Conflict(format!(
        "idempotency key of decision {} is contended",
        decision.id
    )))
}

/// Upserts the customer, then its device and card: first seen is the earliest
/// time, last seen the latest; `action` (`allow`, `review` or `block`) counts
/// one decision, a finite amount one amount. Runs on the caller's connection,
/// inside its transaction (the group committer's second phase).
pub(super) async fn touch_customer_on(
    conn: &mut AnyConnection,
    subscriber_id: &str,
    touch: &CustomerTouch,
    at: Millis,
    action: Option<&str>,
) -> StoreResult<()> {
    let counted = |name: &str| i64::from(action == Some(name));
    // SQLite cannot store NaN in a NOT NULL REAL column; infinities would poison the sums.
    let amount = touch.amount.filter(|a| a.is_finite());
    // `amount_max` is derived in SQL rather than bound as an `Option<f64>`:
    // sqlx 0.8's `Any` driver sends a NULL f64 to PostgreSQL as a FLOAT4 NULL,
    // and the statement, cached with a FLOAT4 parameter, then rejects every
    // later 8-byte value ("incorrect binary data format").
    sqlx::query(
        "INSERT INTO customers (subscriber_id, user_id, status, first_seen, last_seen, \
         decisions_allow, decisions_review, decisions_block, amount_count, amount_total, amount_max) \
         VALUES ($1, $2, 'normal', $3, $3, $4, $5, $6, $7, $8, CASE WHEN $7 = 1 THEN $8 END) \
         ON CONFLICT (subscriber_id, user_id) DO UPDATE SET \
         first_seen = CASE WHEN excluded.first_seen < customers.first_seen \
           THEN excluded.first_seen ELSE customers.first_seen END, \
         last_seen = CASE WHEN excluded.last_seen > customers.last_seen \
           THEN excluded.last_seen ELSE customers.last_seen END, \
         decisions_allow = customers.decisions_allow + excluded.decisions_allow, \
         decisions_review = customers.decisions_review + excluded.decisions_review, \
         decisions_block = customers.decisions_block + excluded.decisions_block, \
         amount_count = customers.amount_count + excluded.amount_count, \
         amount_total = customers.amount_total + excluded.amount_total, \
         amount_max = CASE WHEN excluded.amount_max IS NULL THEN customers.amount_max \
           WHEN customers.amount_max IS NULL OR excluded.amount_max > customers.amount_max \
           THEN excluded.amount_max ELSE customers.amount_max END",
    )
    .bind(subscriber_id)
    .bind(&touch.user_id)
    .bind(at)
    .bind(counted("allow"))
    .bind(counted("review"))
    .bind(counted("block"))
    .bind(i64::from(amount.is_some()))
    .bind(amount.unwrap_or(0.0))
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    if let Some(visitor_id) = &touch.visitor_id {
        sqlx::query(
            "INSERT INTO customer_devices (subscriber_id, user_id, visitor_id, first_seen, last_seen) \
             VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (subscriber_id, user_id, visitor_id) DO UPDATE SET \
             first_seen = CASE WHEN excluded.first_seen < customer_devices.first_seen \
               THEN excluded.first_seen ELSE customer_devices.first_seen END, \
             last_seen = CASE WHEN excluded.last_seen > customer_devices.last_seen \
               THEN excluded.last_seen ELSE customer_devices.last_seen END",
        )
        .bind(subscriber_id)
        .bind(&touch.user_id)
        .bind(visitor_id)
        .bind(at)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    if let Some((bin, last4)) = &touch.card {
        sqlx::query(
            "INSERT INTO customer_cards (subscriber_id, user_id, bin, last4, first_seen, last_seen) \
             VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (subscriber_id, user_id, bin, last4) DO UPDATE SET \
             first_seen = CASE WHEN excluded.first_seen < customer_cards.first_seen \
               THEN excluded.first_seen ELSE customer_cards.first_seen END, \
             last_seen = CASE WHEN excluded.last_seen > customer_cards.last_seen \
               THEN excluded.last_seen ELSE customer_cards.last_seen END",
        )
        .bind(subscriber_id)
        .bind(&touch.user_id)
        .bind(bin)
        .bind(last4)
        .bind(at)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}
