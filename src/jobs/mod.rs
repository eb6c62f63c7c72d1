//! Durable background work: fetching a device's analysis from its provider
//! after an ingest ([`device_fetch`]), delivering a decision's signed
//! callback ([`callbacks`]), and running a backtest ([`backtests`]).
//!
//! Each is one of the [`Handler`]s on one [`Runner`], which owns what every kind of job
//! needs: claiming due jobs with a short lease that one keeper renews while
//! they run (so a job whose process died is taken again within seconds),
//! bounded concurrency, waking on new work, taking back the leases of a
//! previous life on SQLite, and one jittered [`Backoff`] for retries.

pub mod backtests;
pub mod callbacks;
pub mod device_fetch;
mod runner;

pub use self::backtests::BacktestWorker;
pub use self::callbacks::{CallbackConfig, CallbackWorker};
pub use self::device_fetch::{PrefetchConfig, Prefetcher, Upstream};
pub use self::runner::{Backoff, Handler, Runner, LEASE};
