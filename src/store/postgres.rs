//! The [`Store`] on PostgreSQL, for production, through sqlx's native
//! PostgreSQL driver. Many processes may share one database: writers take row
//! locks (`FOR UPDATE`), and job claims skip the rows another process is
//! claiming (`SKIP LOCKED`).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::circuit::Circuit;
use super::group_commit::GroupCommit;
use super::shared::{conflict, store_impls, STATEMENT_CACHE};

/// How long a request waits for a pooled connection. While the database is
/// unreachable every acquire waits this long before it fails (sqlx retries the
/// connect until then), so it is the bound on a 503 during an outage.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// The server-side bound on one statement.
const STATEMENT_TIMEOUT: &str = "5s";

static MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

fn db_err(err: sqlx::Error) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => conflict(db.constraint()),
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_) => super::unavailable(err),
        _ => StoreError::Database(err),
    }
}

async fn begin_write(pool: &PgPool) -> StoreResult<sqlx::Transaction<'static, sqlx::Postgres>> {
    pool.begin().await.map_err(db_err)
}

pub struct PgStore {
    pool: PgPool,
    /// A pool that is closed: every call on it fails at once. Calls go to it
    /// while the circuit is open.
    tripped: PgPool,
    circuit: Arc<Circuit>,
    commits: GroupCommit,
}

struct PgCommitter {
    pool: PgPool,
    tripped: PgPool,
    circuit: Arc<Circuit>,
    /// Several processes may share the database: nothing is kept in memory.
    memory: Option<Arc<CustomerMemory>>,
}

impl PgCommitter {
    fn pool(&self) -> &PgPool {
        if self.circuit.is_open() {
            &self.tripped
        } else {
            &self.pool
        }
    }
}

impl PgStore {
    const LOCK_ROW: &'static str = "FOR UPDATE";
    const SKIP_LOCKED: &'static str = "FOR UPDATE SKIP LOCKED";

    /// Connects (the URL is passed to the driver as given) and applies the
    /// embedded migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(db_err)?
            .statement_cache_capacity(STATEMENT_CACHE)
            // A statement the server cannot finish in time fails instead of
            // holding a checkout (and a pooled connection) until the request
            // times out.
            .options([("statement_timeout", STATEMENT_TIMEOUT)]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(db_err)?;
        MIGRATIONS.run(&pool).await?;
        let tripped = PgPoolOptions::new().connect_lazy_with(options.clone());
        tripped.close().await;
        let circuit = Circuit::spawn_probe(options);
        // Batches commit concurrently here: take several at once.
        let commits = GroupCommit::spawn(
            PgCommitter {
                pool: pool.clone(),
                tripped: tripped.clone(),
                circuit: circuit.clone(),
                memory: None,
            },
            4,
        );
        Ok(Self {
            pool,
            tripped,
            circuit,
            commits,
        })
    }

    /// The pool, or while the database's circuit is open the closed one, so
    /// the call fails at once as unavailable.
    fn live(&self) -> &PgPool {
        if self.circuit.is_open() {
            &self.tripped
        } else {
            &self.pool
        }
    }

    fn reads(&self) -> &PgPool {
        self.live()
    }

    fn writes(&self) -> &PgPool {
        self.live()
    }

    fn memory(&self) -> Option<&Arc<CustomerMemory>> {
        None
    }

    /// Other processes enqueue fetches too: every lookup asks the table.
    fn ingested(&self) -> Option<&IngestedIds> {
        None
    }
}

#[async_trait::async_trait]
impl Lifecycle for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(self.live())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

store_impls!(PgStore, PgCommitter, sqlx::Postgres, sqlx::PgConnection);
super::audit::audit_impls!(PgStore, sqlx::Postgres, sqlx::PgConnection);
super::gateway_refs::gateway_refs_impls!(PgStore, sqlx::Postgres, sqlx::PgConnection);
super::rule_sets::rule_versions_impls!(PgStore, sqlx::Postgres, sqlx::PgConnection);
super::lists::lists_impls!(PgStore, sqlx::Postgres, sqlx::PgConnection);
super::backtests::backtests_impls!(PgStore, sqlx::Postgres, sqlx::PgConnection);
super::console::console_impls!(PgStore, sqlx::Postgres, sqlx::PgConnection);
