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

const SUBSCRIBER_COLUMNS: &str = "id, name, status, webhook_secret_sealed, created_at, updated_at";
const API_KEY_COLUMNS: &str = "key_id, subscriber_id, name, key_hash, created_at, revoked_at";
const JOB_COLUMNS: &str = "id, kind, subscriber_id, dedupe_key, payload, state, attempts, run_at, \
     lease_expires_at, result, last_error, created_at, updated_at, finished_at";

#[async_trait]
impl Store for SqlStore {
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

    async fn create_subscriber(&self, row: &SubscriberRow) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO subscribers (id, name, status, webhook_secret_sealed, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&row.id)
        .bind(&row.name)
        .bind(row.status.as_str())
        .bind(&row.webhook_secret_sealed)
        .bind(row.created_at)
        .bind(row.updated_at)
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

    async fn finish_job(&self, job_id: &str, outcome: &JobOutcome) -> StoreResult<bool> {
        self.commits.finish(job_id, outcome).await
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

/// Records `job` unless a live or fresh one exists; see [`Store::enqueue_unique`].
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
             run_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6, $6) \
             ON CONFLICT DO NOTHING RETURNING {JOB_COLUMNS}"
        );
        let inserted = sqlx::query(&sql)
            .bind(&job.id)
            .bind(&job.kind)
            .bind(&job.subscriber_id)
            .bind(&job.dedupe_key)
            .bind(&job.payload)
            .bind(now_millis())
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
