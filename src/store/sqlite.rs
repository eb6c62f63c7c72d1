//! The [`Store`] on SQLite, the embedded default, through sqlx's native
//! SQLite driver.
//!
//! Every write goes through one connection, the only one of the writer pool:
//! SQLite allows one writer at a time, and queueing writers for that
//! connection, in order, replaces SQLite's busy handler, whose growing sleeps
//! (up to 100 ms a try) made write latency spike under concurrent ingests. The
//! connection's prepared statements stay cached on it. Reads run beside it on
//! a pool of their own (WAL). The busy timeout still covers another process
//! (the CLI) writing to the same file.
//!
//! Scoring reads customer features from memory, not the file: the store keeps
//! a write-through copy ([`CustomerMemory`]), rebuilt from the tables when it
//! connects and updated after each commit that changes a customer. That copy
//! is exact because this process is the only writer of customer rows: the
//! CLI, the one other process that opens the file, writes none (subscribers,
//! keys, credentials, rule sets, jobs and settings only). A second process
//! writing customers would leave this one's copy stale until it restarts.
//!
//! For the same reason the store knows every request id ever ingested
//! ([`IngestedIds`]), so a score whose request id was never ingested finds
//! no device without a statement; and it watches for the CLI's commits
//! (`PRAGMA data_version` on the writer connection, once a second), so that
//! what is kept of rule sets and keys in memory can stay until one happens.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use super::group_commit::GroupCommit;
use super::shared::{conflict, store_impls, STATEMENT_CACHE};

static MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");

/// What SQLite reports for a unique violation ("UNIQUE constraint failed:
/// <columns>", never the constraint's name), by constraint name.
const UNIQUE_COLUMNS: &[(&str, &str)] = &[
    ("settings.key", "settings_pkey"),
    ("subscribers.id", "subscribers_pkey"),
    ("api_keys.key_id", "api_keys_pkey"),
    (
        "provider_credentials.subscriber_id, provider_credentials.provider",
        "provider_credentials_pkey",
    ),
    (
        "rule_sets.subscriber_id, rule_sets.version",
        "rule_sets_pkey",
    ),
    ("jobs.id", "jobs_pkey"),
    (
        "jobs.subscriber_id, jobs.kind, jobs.dedupe_key",
        "jobs_live",
    ),
    ("decisions.id", "decisions_pkey"),
    (
        "decisions.subscriber_id, decisions.idempotency_key",
        "decisions_idempotency",
    ),
    (
        "callback_attempts.decision_id, callback_attempts.attempt",
        "callback_attempts_pkey",
    ),
    (
        "customers.subscriber_id, customers.user_id",
        "customers_pkey",
    ),
    (
        "customer_devices.subscriber_id, customer_devices.user_id, customer_devices.visitor_id",
        "customer_devices_pkey",
    ),
    (
        "customer_cards.subscriber_id, customer_cards.user_id, customer_cards.bin, \
         customer_cards.last4",
        "customer_cards_pkey",
    ),
];

fn db_err(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            let columns = db.message().strip_prefix("UNIQUE constraint failed: ");
            let constraint = UNIQUE_COLUMNS
                .iter()
                .find(|(known, _)| Some(*known) == columns)
                .map(|(_, name)| *name);
            conflict(constraint)
        }
        // SQLITE_BUSY and its extended codes: another process held the write
        // lock past the busy timeout. Worth a retry, not a 500.
        sqlx::Error::Database(db)
            if matches!(db.code().as_deref(), Some("5" | "261" | "517" | "773")) =>
        {
            super::unavailable(err)
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            super::unavailable(err)
        }
        _ => StoreError::Database(err),
    }
}

/// A write transaction. It takes the write lock up front: a deferred
/// transaction that reads first fails at once with SQLITE_BUSY when another
/// process (the CLI) writes meanwhile; BEGIN IMMEDIATE waits for the lock.
async fn begin_write(pool: &SqlitePool) -> StoreResult<sqlx::Transaction<'static, sqlx::Sqlite>> {
    pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)
}

/// Loads every customer with its devices and cards, from one snapshot (a
/// read transaction), into the copy. Runs before the store is returned, so
/// before any write of this process.
async fn rebuild(
    reads: &SqlitePool,
    memory: &CustomerMemory,
    ids: &IngestedIds,
) -> StoreResult<()> {
    let mut tx = reads.begin().await.map_err(db_err)?;
    let customers = sqlx::query_as(&format!("SELECT {CUSTOMER_COLUMNS} FROM customers"))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
    // In key order, so each customer's sorted lists grow at their end.
    let devices = sqlx::query_as(
        "SELECT subscriber_id, user_id, visitor_id FROM customer_devices \
         ORDER BY subscriber_id, user_id, visitor_id",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    let cards = sqlx::query_as(
        "SELECT subscriber_id, user_id, bin, last4 FROM customer_cards \
         ORDER BY subscriber_id, user_id, bin, last4",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    let ingested: Vec<(String, String)> =
        sqlx::query_as("SELECT subscriber_id, dedupe_key FROM jobs WHERE kind = $1")
            .bind(JobKind::DeviceFetch.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    memory.rebuild(customers, devices, cards);
    ids.rebuild(ingested);
    Ok(())
}

/// How often the writer connection asks whether another process committed.
const FOREIGN_WRITE_POLL: Duration = Duration::from_secs(1);

/// Counts the commits of other processes as the writer connection sees them:
/// its `data_version` changes on any other connection's commit, never on its
/// own. Ends when the pool closes.
fn watch_foreign_writes(writes: SqlitePool, count: Arc<AtomicU64>) {
    tokio::spawn(async move {
        let mut seen: Option<i64> = None;
        let mut first = true;
        loop {
            // The first version is read at once: one read a poll later would
            // take another process's commit in between for the start, and a
            // copy filled before it would never be dropped.
            if !std::mem::take(&mut first) {
                tokio::time::sleep(FOREIGN_WRITE_POLL).await;
            }
            if writes.is_closed() {
                return;
            }
            let Ok(version) = sqlx::query_scalar::<_, i64>("PRAGMA data_version")
                .fetch_one(&writes)
                .await
            else {
                // Unknown is treated as changed: a cache dropped needlessly
                // costs a read, one kept wrongly would be stale.
                count.fetch_add(1, Ordering::Release);
                continue;
            };
            if seen.is_some_and(|s| s != version) {
                count.fetch_add(1, Ordering::Release);
            }
            seen = Some(version);
        }
    });
}

/// Makes the database readable by its owner only: it holds decisions,
/// customers and sealed secrets. SQLite gives the `-wal` and `-shm` files it
/// creates the database file's permissions, so the database file is created
/// here, `0600`, before SQLite opens it; files an older start left wider lose
/// their group and other permissions.
#[cfg(unix)]
fn owner_only(db: &std::path::Path) -> StoreResult<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

    let io = |what: &str, path: &std::path::Path, err: std::io::Error| {
        StoreError::Unavailable(sqlx::Error::Io(std::io::Error::new(
            err.kind(),
            format!("{what} {}: {err}", path.display()),
        )))
    };
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(db)
    {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(io("cannot create", db, err)),
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut companion = db.as_os_str().to_owned();
        companion.push(suffix);
        let path = std::path::Path::new(&companion);
        let Ok(meta) = std::fs::metadata(path) else {
            continue;
        };
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))
                .map_err(|err| io("cannot restrict the permissions of", path, err))?;
            tracing::warn!(
                file = %path.display(),
                "database file was readable by other users; now owner-only"
            );
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn owner_only(_db: &std::path::Path) -> StoreResult<()> {
    Ok(())
}

pub struct SqliteStore {
    /// Readers, beside the writer (WAL).
    reads: SqlitePool,
    /// One connection: every write, the group commit's batches included.
    writes: SqlitePool,
    commits: GroupCommit,
    memory: Arc<CustomerMemory>,
    ingested: IngestedIds,
    foreign_writes: Arc<AtomicU64>,
}

struct SqliteCommitter {
    pool: SqlitePool,
    memory: Option<Arc<CustomerMemory>>,
}

impl SqliteCommitter {
    fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

impl SqliteStore {
    /// SQLite takes no row locks: the write lock serializes writers.
    const LOCK_ROW: &'static str = "";
    const SKIP_LOCKED: &'static str = "";

    /// Opens (creating it if absent) the database file and applies the
    /// embedded migrations.
    pub async fn connect(path: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(db_err)?
            .create_if_missing(true)
            // WAL lets readers run beside the writer; FULL sync makes a
            // committed row survive power loss, not only a process crash.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        owner_only(options.get_filename())?;
        let writes = SqlitePoolOptions::new()
            .max_connections(1)
            // Writers queue for the one connection; a batch takes milliseconds.
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone().statement_cache_capacity(STATEMENT_CACHE))
            .await
            .map_err(db_err)?;
        MIGRATIONS.run(&writes).await?;
        let reads = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(db_err)?;
        let memory = Arc::new(CustomerMemory::default());
        let ingested = IngestedIds::default();
        rebuild(&reads, &memory, &ingested).await?;
        let foreign_writes = Arc::new(AtomicU64::new(0));
        watch_foreign_writes(writes.clone(), foreign_writes.clone());
        let commits = GroupCommit::spawn(
            SqliteCommitter {
                pool: writes.clone(),
                memory: Some(memory.clone()),
            },
            1,
        );
        Ok(Self {
            reads,
            writes,
            commits,
            memory,
            ingested,
            foreign_writes,
        })
    }

    fn memory(&self) -> Option<&Arc<CustomerMemory>> {
        Some(&self.memory)
    }

    fn ingested(&self) -> Option<&IngestedIds> {
        Some(&self.ingested)
    }

    fn reads(&self) -> &SqlitePool {
        &self.reads
    }

    fn writes(&self) -> &SqlitePool {
        &self.writes
    }
}

#[async_trait::async_trait]
impl Lifecycle for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reads)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    fn foreign_writes(&self) -> Option<u64> {
        Some(self.foreign_writes.load(Ordering::Acquire))
    }

    async fn close(&self) {
        self.writes.close().await;
        self.reads.close().await;
    }
}

store_impls!(
    SqliteStore,
    SqliteCommitter,
    sqlx::Sqlite,
    sqlx::SqliteConnection
);
super::audit::audit_impls!(SqliteStore, sqlx::Sqlite, sqlx::SqliteConnection);
super::gateway_refs::gateway_refs_impls!(SqliteStore, sqlx::Sqlite, sqlx::SqliteConnection);
super::rule_sets::rule_versions_impls!(SqliteStore, sqlx::Sqlite, sqlx::SqliteConnection);
super::lists::lists_impls!(SqliteStore, sqlx::Sqlite, sqlx::SqliteConnection);
super::backtests::backtests_impls!(SqliteStore, sqlx::Sqlite, sqlx::SqliteConnection);
super::console::console_impls!(SqliteStore, sqlx::Sqlite, sqlx::SqliteConnection);
