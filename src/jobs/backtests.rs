//! The backtest worker: runs the `backtest` jobs that queueing a backtest
//! records (in the same transaction as the backtest), through
//! [`crate::service::backtests::run`].
//!
//! It is a [`Handler`] on the job [`Runner`](super::Runner): a backtest
//! queued before a crash is claimed after the restart, and one whose process
//! died mid-run is claimed again when its lease runs out (at once on SQLite)
//! and replayed from its start. A stopping process leaves a running backtest
//! between two pages and puts its job back, rather than holding the shutdown
//! for the rest of the replay.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::watch;

use crate::service::backtests::{run, Ran, RunError};
use crate::store::{
    duration_millis, now_millis, BacktestOutcome, JobKind, JobOutcome, JobRow, Store,
};

use super::{Backoff, Handler};

pub struct BacktestWorker {
    store: Arc<dyn Store>,
    stop: watch::Receiver<bool>,
    /// Retries of a run the store failed.
    backoff: Backoff,
}

impl BacktestWorker {
    /// `stop` is the process's shutdown signal, looked at between pages.
    pub fn new(store: Arc<dyn Store>, stop: watch::Receiver<bool>) -> Self {
        Self {
            store,
            stop,
            backoff: Backoff::Doubling {
                base: Duration::from_secs(1),
                max: Duration::from_secs(60),
                attempts: 6,
            },
        }
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow() || self.stop.has_changed().is_err()
    }

    async fn finish(&self, job: &JobRow, outcome: JobOutcome) {
        if let Err(err) = self.store.finish_job(&job.id, &outcome).await {
            // Left running: claimed again when its lease runs out, and then
            // found final.
            tracing::warn!(job = %job.id, error = %err, "could not finish a backtest job");
        }
    }
}

#[async_trait]
impl Handler for BacktestWorker {
    fn kind(&self) -> JobKind {
        JobKind::Backtest
    }

    /// One at a time: a replay is all CPU, and scoring shares the cores.
    fn leased(&self) -> usize {
        1
    }

    async fn run(&self, job: JobRow) {
        let payload: Value = serde_json::from_str(&job.payload).unwrap_or(Value::Null);
        let backtest_id = payload
            .get("backtest_id")
            .and_then(Value::as_str)
            .unwrap_or(&job.dedupe_key)
            .to_owned();
        let ran = run(self.store.as_ref(), &backtest_id, || self.stopping()).await;
        let error = match ran {
            Ok(Ran::Finished) => {
                let result = serde_json::json!({ "backtest_id": backtest_id }).to_string();
                return self.finish(&job, JobOutcome::Succeeded { result }).await;
            }
            Ok(Ran::Missing) => {
                let error = format!("backtest {backtest_id} not found");
                return self.finish(&job, JobOutcome::Failed { error }).await;
            }
            Ok(Ran::Interrupted) => {
                // Due again at once, the attempt not counted: the next
                // process to run starts it over.
                let again = self
                    .store
                    .retry_job(&job.id, now_millis(), "interrupted by a shutdown", true)
                    .await;
                if let Err(err) = again {
                    tracing::warn!(job = %job.id, error = %err, "could not requeue a backtest");
                }
                return;
            }
            Err(RunError::Store(err)) => match self.backoff.next(job.attempts) {
                Some(wait) => {
                    tracing::warn!(backtest = %backtest_id, error = %err, "backtest failed; retrying");
                    let at = now_millis() + duration_millis(wait);
                    if let Err(err) = self
                        .store
                        .retry_job(&job.id, at, &err.to_string(), false)
                        .await
                    {
                        tracing::warn!(job = %job.id, error = %err, "could not requeue a backtest");
                    }
                    return;
                }
                None => err.to_string(),
            },
            Err(RunError::Replay(error)) => error,
        };
        tracing::warn!(backtest = %backtest_id, %error, "backtest failed");
        let outcome = BacktestOutcome::Failed {
            error: error.clone(),
        };
        if let Err(err) = self
            .store
            .finish_backtest(&backtest_id, &outcome, now_millis())
            .await
        {
            // Left running with its job: the next claim tries again.
            tracing::warn!(backtest = %backtest_id, error = %err, "could not record a failed backtest");
            return;
        }
        self.finish(&job, JobOutcome::Failed { error }).await;
    }
}
