//! Durable storage: subscribers, API keys, provider credentials, rule sets, jobs,
//! scoring decisions (with their callback attempts) and end-customer profiles.
//!
//! Everything riskgate promises with a `2xx` is written through the [`Store`]
//! before the response leaves. [`Store`] is the sum of one small trait per
//! aggregate ([`Settings`], [`Subscribers`], [`RuleSets`], [`Jobs`],
//! [`Decisions`], [`Customers`], [`Audit`], [`GatewayRefs`], [`Lists`], [`Backtests`]);
//! [`connect`] picks the backend from the URL:
//! SQLite, the embedded default, or PostgreSQL for production. One contract
//! test suite (`tests/it/store_contract.rs`) runs against both.

mod audit;
mod backtests;
mod circuit;
mod console;
mod customer_memory;
mod customers;
mod decision_counts;
mod decisions;
mod gateway_refs;
mod group_commit;
mod ingested;
mod jobs;
mod lists;
mod postgres;
mod rule_sets;
mod settings;
mod shared;
mod sqlite;
mod subscribers;
mod touches;
mod url;

use std::sync::Arc;

use async_trait::async_trait;

pub use audit::*;
pub use backtests::*;
pub use console::{
    ActionBucket, ConsoleSession, ConsoleStore, ConsoleUser, DecisionFilter, DecisionSample,
};
pub use customers::*;
pub use decisions::*;
pub use gateway_refs::GatewayRefs;
pub use jobs::*;
pub use lists::*;
pub use postgres::PgStore;
pub use rule_sets::*;
pub use settings::*;
pub use sqlite::SqliteStore;
pub use subscribers::*;
pub use url::DatabaseUrl;

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
    /// A row with the same unique key exists already. The text is the
    /// store's own description of the constraint (clients may read it),
    /// never the database's message.
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

/// Database calls, in this process, that found the database unreachable.
static UNAVAILABLE_ERRORS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many database calls found the database unreachable so far (for `/metrics`).
pub fn unavailable_errors() -> u64 {
    UNAVAILABLE_ERRORS.load(std::sync::atomic::Ordering::Relaxed)
}

/// A database call that ran out of its bound, counted as unreachable.
pub fn timed_out() -> StoreError {
    unavailable(sqlx::Error::PoolTimedOut)
}

/// An unreachable database, counted.
fn unavailable(err: sqlx::Error) -> StoreError {
    UNAVAILABLE_ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    StoreError::Unavailable(err)
}

/// What every backend answers about itself.
#[async_trait]
pub trait Lifecycle: Send + Sync {
    /// Which backend this is (`sqlite` or `postgres`), for logs and `/readyz`.
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> StoreResult<()>;
    /// A count of the commits other processes made, on a backend whose only
    /// other writer is an occasional one (SQLite: the CLI), seen within a
    /// second. While it holds still, a copy of what this process wrote is
    /// exact. `None` on a backend that others write at any time.
    fn foreign_writes(&self) -> Option<u64> {
        None
    }
    /// Closes the connection pool; in-flight queries finish first.
    async fn close(&self);
}

/// The storage contract: every aggregate's trait. Every method is one short
/// transaction (or one statement), so an acknowledged write is durable when
/// the call returns.
pub trait Store:
    Lifecycle
    + Settings
    + Subscribers
    + RuleSets
    + Jobs
    + Decisions
    + Customers
    + Audit
    + GatewayRefs
    + Lists
    + Backtests
    + ConsoleStore
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: Lifecycle
        + Settings
        + Subscribers
        + RuleSets
        + Jobs
        + Decisions
        + Customers
        + Audit
        + GatewayRefs
        + Lists
        + Backtests
        + ConsoleStore
        + Send
        + Sync
        + 'static
{
}

/// Connects to the URL's backend and applies its embedded migrations.
pub async fn connect(url: &DatabaseUrl) -> StoreResult<Arc<dyn Store>> {
    Ok(match url {
        DatabaseUrl::Sqlite { path } => Arc::new(SqliteStore::connect(path).await?),
        DatabaseUrl::Postgres { url } => Arc::new(PgStore::connect(url).await?),
    })
}
