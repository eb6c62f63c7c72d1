//! Backtests: a candidate rule set replayed over a window of a subscriber's
//! stored decisions.
//!
//! The row holds what was asked, the progress and the result; the work is a
//! [`JobKind::Backtest`](super::JobKind::Backtest) job recorded in the same
//! transaction as the row (and its audit entry), so a backtest that was
//! answered `202` runs even if the process dies before it starts. The
//! decisions a backtest replays are read here too, in keyset pages.

use async_trait::async_trait;
use serde::Serialize;

use super::{Actor, Millis, StoreResult};

/// Where a backtest is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BacktestStatus {
    Queued,
    Running,
    Done,
    Failed,
}

impl BacktestStatus {
    pub const ALL: [BacktestStatus; 4] = [Self::Queued, Self::Running, Self::Done, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Done or failed: nothing will change it again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed)
    }
}

impl TryFrom<String> for BacktestStatus {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or_else(|| format!("backtest status {s:?}"))
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BacktestRow {
    pub id: String,
    pub subscriber_id: String,
    #[sqlx(try_from = "String")]
    pub status: BacktestStatus,
    /// JSON: the candidate rule set (resolved), its version if it was a
    /// stored one, and the window.
    pub request: String,
    pub progress_done: i64,
    pub progress_total: i64,
    /// JSON, once done.
    pub result: Option<String>,
    /// Why it failed, once failed.
    pub error: Option<String>,
    pub created_at: Millis,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    pub updated_at: Millis,
}

/// A backtest to queue.
#[derive(Debug, Clone)]
pub struct NewBacktest {
    pub id: String,
    pub subscriber_id: String,
    pub request: String,
    /// The audit entry's summary of the request (never the whole rule set).
    pub summary: serde_json::Value,
}

/// A stored decision as a backtest replays it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReplayDecision {
    pub id: String,
    pub created_at: Millis,
    /// The features the decision was made from (the core's `Input`, JSON).
    pub input: String,
    /// The outcome given (the core's `Outcome`, JSON).
    pub result: String,
    pub action: String,
    pub label: Option<String>,
}

/// How a backtest run ended.
#[derive(Debug, Clone)]
pub enum BacktestOutcome {
    Done { result: String },
    Failed { error: String },
}

#[async_trait]
pub trait Backtests: Send + Sync {
    /// Records the backtest as queued, the job that runs it (kind
    /// `backtest`, keyed by the backtest id) and the audit entry
    /// (`backtest.queue`), in one transaction.
    async fn queue_backtest(
        &self,
        backtest: &NewBacktest,
        actor: &Actor,
    ) -> StoreResult<BacktestRow>;
    /// The subscriber's backtest; `None` for an unknown id or another
    /// subscriber's.
    async fn get_backtest(&self, subscriber_id: &str, id: &str)
        -> StoreResult<Option<BacktestRow>>;
    /// The backtest of any subscriber (for the worker, whose job names it).
    async fn backtest_by_id(&self, id: &str) -> StoreResult<Option<BacktestRow>>;
    /// Up to `limit` of the subscriber's backtests, newest first.
    async fn list_backtests(
        &self,
        subscriber_id: &str,
        limit: i64,
    ) -> StoreResult<Vec<BacktestRow>>;
    /// Marks a backtest that is not final as running from its start:
    /// progress 0 of `total`. Answers whether it did.
    async fn start_backtest(&self, id: &str, total: i64, at: Millis) -> StoreResult<bool>;
    /// Records how many decisions a running backtest has replayed.
    async fn backtest_progress(&self, id: &str, done: i64, at: Millis) -> StoreResult<()>;
    /// Ends a backtest that is not final yet; answers whether this call did.
    async fn finish_backtest(
        &self,
        id: &str,
        outcome: &BacktestOutcome,
        at: Millis,
    ) -> StoreResult<bool>;
    /// How many of the subscriber's decisions were made in `[from, to)`.
    async fn count_decisions_between(
        &self,
        subscriber_id: &str,
        from: Millis,
        to: Millis,
    ) -> StoreResult<i64>;
    /// Up to `limit` of the subscriber's decisions made in `[from, to)`, in
    /// (created_at, id) order, strictly after the `after` position when
    /// given (keyset paging).
    async fn decisions_between(
        &self,
        subscriber_id: &str,
        from: Millis,
        to: Millis,
        after: Option<(Millis, String)>,
        limit: i64,
    ) -> StoreResult<Vec<ReplayDecision>>;
}

/// The backtest queries, compiled against each backend's driver (see
/// [`store_impls`](super::shared)); expanded after `audit_impls!`, whose
/// `record_audit_on` it uses, as it does `store_impls!`'s `insert_job_on`.
macro_rules! backtests_impls {
    ($store:ident, $db:ty, $conn:ty) => {
        const BACKTEST_COLUMNS: &str = "id, subscriber_id, status, request, progress_done, \
             progress_total, result, error, created_at, started_at, finished_at, updated_at";

        #[async_trait::async_trait]
        impl $crate::store::Backtests for $store {
            async fn queue_backtest(
                &self,
                backtest: &$crate::store::NewBacktest,
                actor: &$crate::store::Actor,
            ) -> $crate::store::StoreResult<$crate::store::BacktestRow> {
                let now = now_millis();
                let mut tx = begin_write(self.writes()).await?;
                sqlx::query(
                    "INSERT INTO backtests (id, subscriber_id, status, request, progress_done, \
                     progress_total, created_at, updated_at) \
                     VALUES ($1, $2, 'queued', $3, 0, 0, $4, $4)",
                )
                .bind(&backtest.id)
                .bind(&backtest.subscriber_id)
                .bind(&backtest.request)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                let job = NewJob {
                    id: format!("job_{}", $crate::secrets::random_id(20)),
                    kind: JobKind::Backtest.as_str().to_owned(),
                    subscriber_id: backtest.subscriber_id.clone(),
                    dedupe_key: backtest.id.clone(),
                    payload: serde_json::json!({ "backtest_id": backtest.id }).to_string(),
                    run_at: None,
                };
                if insert_job_on(&mut tx, &job).await?.is_none() {
                    return Err(StoreError::Conflict(
                        "a live job with the same key exists".into(),
                    ));
                }
                record_audit_on(
                    &mut tx,
                    &NewAudit::new(
                        &backtest.subscriber_id,
                        actor,
                        "backtest.queue",
                        format!("backtests/{}", backtest.id),
                        backtest.summary.clone(),
                    ),
                )
                .await?;
                tx.commit().await.map_err(db_err)?;
                Ok(BacktestRow {
                    id: backtest.id.clone(),
                    subscriber_id: backtest.subscriber_id.clone(),
                    status: BacktestStatus::Queued,
                    request: backtest.request.clone(),
                    progress_done: 0,
                    progress_total: 0,
                    result: None,
                    error: None,
                    created_at: now,
                    started_at: None,
                    finished_at: None,
                    updated_at: now,
                })
            }

            async fn get_backtest(
                &self,
                subscriber_id: &str,
                id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::BacktestRow>> {
                sqlx::query_as(&format!(
                    "SELECT {BACKTEST_COLUMNS} FROM backtests WHERE subscriber_id = $1 AND id = $2"
                ))
                .bind(subscriber_id)
                .bind(id)
                .fetch_optional(self.reads())
                .await
                .map_err(db_err)
            }

            async fn backtest_by_id(
                &self,
                id: &str,
            ) -> $crate::store::StoreResult<Option<$crate::store::BacktestRow>> {
                sqlx::query_as(&format!(
                    "SELECT {BACKTEST_COLUMNS} FROM backtests WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(self.reads())
                .await
                .map_err(db_err)
            }

            async fn list_backtests(
                &self,
                subscriber_id: &str,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::BacktestRow>> {
                sqlx::query_as(&format!(
                    "SELECT {BACKTEST_COLUMNS} FROM backtests WHERE subscriber_id = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT $2"
                ))
                .bind(subscriber_id)
                .bind(limit.clamp(1, 1000))
                .fetch_all(self.reads())
                .await
                .map_err(db_err)
            }

            async fn start_backtest(
                &self,
                id: &str,
                total: i64,
                at: $crate::store::Millis,
            ) -> $crate::store::StoreResult<bool> {
                // A run taken again after a crash starts over: its earlier
                // progress counted a replay whose sums are lost.
                let done = sqlx::query(
                    "UPDATE backtests SET status = 'running', progress_done = 0, \
                     progress_total = $2, started_at = $3, updated_at = $3 \
                     WHERE id = $1 AND status IN ('queued', 'running')",
                )
                .bind(id)
                .bind(total)
                .bind(at)
                .execute(self.writes())
                .await
                .map_err(db_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn backtest_progress(
                &self,
                id: &str,
                done: i64,
                at: $crate::store::Millis,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE backtests SET progress_done = $2, updated_at = $3 \
                     WHERE id = $1 AND status = 'running'",
                )
                .bind(id)
                .bind(done)
                .bind(at)
                .execute(self.writes())
                .await
                .map_err(db_err)?;
                Ok(())
            }

            async fn finish_backtest(
                &self,
                id: &str,
                outcome: &$crate::store::BacktestOutcome,
                at: $crate::store::Millis,
            ) -> $crate::store::StoreResult<bool> {
                let (status, result, error) = match outcome {
                    BacktestOutcome::Done { result } => ("done", Some(result.as_str()), None),
                    BacktestOutcome::Failed { error } => ("failed", None, Some(error.as_str())),
                };
                // A finished run has replayed everything it counted.
                let done = sqlx::query(
                    "UPDATE backtests SET status = $2, result = $3, error = $4, \
                     progress_done = CASE WHEN $6 THEN progress_total ELSE progress_done END, \
                     finished_at = $5, updated_at = $5 \
                     WHERE id = $1 AND status IN ('queued', 'running')",
                )
                .bind(id)
                .bind(status)
                .bind(result)
                .bind(error)
                .bind(at)
                .bind(status == "done")
                .execute(self.writes())
                .await
                .map_err(db_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn count_decisions_between(
                &self,
                subscriber_id: &str,
                from: $crate::store::Millis,
                to: $crate::store::Millis,
            ) -> $crate::store::StoreResult<i64> {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM decisions \
                     WHERE subscriber_id = $1 AND created_at >= $2 AND created_at < $3",
                )
                .bind(subscriber_id)
                .bind(from)
                .bind(to)
                .fetch_one(self.reads())
                .await
                .map_err(db_err)
            }

            async fn decisions_between(
                &self,
                subscriber_id: &str,
                from: $crate::store::Millis,
                to: $crate::store::Millis,
                after: Option<($crate::store::Millis, String)>,
                limit: i64,
            ) -> $crate::store::StoreResult<Vec<$crate::store::ReplayDecision>> {
                // Without a position, (from - 1, "") is before every row.
                // The position's time is also the page's lower bound, so the
                // index range starts there: filtered, the rows before it
                // would be read again for every page.
                let (after_at, after_id) =
                    after.unwrap_or((from.saturating_sub(1), String::new()));
                sqlx::query_as(
                    "SELECT id, created_at, input, result, action, label FROM decisions \
                     WHERE subscriber_id = $1 AND created_at >= $2 AND created_at < $3 \
                     AND (created_at > $4 OR (created_at = $4 AND id > $5)) \
                     ORDER BY created_at, id LIMIT $6",
                )
                .bind(subscriber_id)
                .bind(after_at.max(from))
                .bind(to)
                .bind(after_at)
                .bind(after_id)
                .bind(limit.clamp(1, 10_000))
                .fetch_all(self.reads())
                .await
                .map_err(db_err)
            }
        }
    };
}

pub(super) use backtests_impls;
