//! Backtests: queueing one (validated, its rule set resolved, recorded with
//! its job and audit entry in one transaction), reading it back, and running
//! it: the subscriber's decisions of the window read in keyset pages and
//! replayed by the pure core ([`crate::decision::replay`]), the progress
//! recorded after every page.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::operator::existing;
use super::{ServiceError, ServiceResult};
use crate::clock::{parse_rfc3339, rfc3339};
use crate::decision::replay::{BacktestResult, Replay, StoredDecision, Truth};
use crate::decision::rules::{compile, default_rule_set, parse_rule_set, CompiledRuleSet, RuleSet};
use crate::fields::{integer_text, json_kind, optional, required};
use crate::secrets::random_id;
use crate::store::{
    now_millis, Actor, BacktestOutcome, BacktestRow, BacktestStatus, Label, Millis, NewBacktest,
    ReplayDecision, Store, StoreError,
};

/// Decisions read (and replayed) per page; the progress moves once a page.
pub const PAGE: i64 = 1_000;
/// How many backtests the list shows, newest first.
const LISTED: i64 = 50;

/// What a backtest replays, as stored on its row: the candidate resolved,
/// so editing rules later does not change a queued backtest.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredRequest {
    /// The stored version the candidate is, if it is one (0: the default pack).
    version: Option<i64>,
    rules: RuleSet,
    from: Millis,
    to: Millis,
}

/// `202` to a queued backtest.
#[derive(Debug, Serialize, ToSchema)]
pub struct BacktestQueued {
    #[schema(example = "bt_3kTz8qLmN4pR7sT1uV3wYz0a")]
    pub backtest_id: String,
    pub status: StatusView,
}

/// `queued`, `running`, `done` or `failed`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = BacktestStatus)]
pub enum StatusView {
    Queued,
    Running,
    Done,
    Failed,
}

impl From<BacktestStatus> for StatusView {
    fn from(status: BacktestStatus) -> Self {
        match status {
            BacktestStatus::Queued => Self::Queued,
            BacktestStatus::Running => Self::Running,
            BacktestStatus::Done => Self::Done,
            BacktestStatus::Failed => Self::Failed,
        }
    }
}

/// How far a backtest is: decisions replayed of those in its window.
#[derive(Debug, Serialize, ToSchema)]
pub struct Progress {
    pub done: i64,
    /// 0 until the run starts and counts the window.
    pub total: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BacktestView {
    pub backtest_id: String,
    pub subscriber_id: String,
    pub status: StatusView,
    pub progress: Progress,
    /// The stored rule-set version replayed; null for a rule set given inline.
    pub version: Option<i64>,
    /// The window: decisions made at or after `from` and before `to`.
    pub from: String,
    pub to: String,
    /// Once `done`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<BacktestResult>,
    /// Once `failed`: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BacktestList {
    /// The 50 most recent, newest first, without their results.
    pub backtests: Vec<BacktestView>,
}

fn not_found(id: &str) -> ServiceError {
    ServiceError::not_found(format!("Backtest '{id}' not found"))
}

fn stored_request(row: &BacktestRow) -> Result<StoredRequest, StoreError> {
    serde_json::from_str(&row.request)
        .map_err(|e| StoreError::Corrupt(format!("backtest request: {e}")))
}

fn view(row: BacktestRow, with_result: bool) -> ServiceResult<BacktestView> {
    let request = stored_request(&row)?;
    let result = match (&row.result, with_result) {
        (Some(text), true) => Some(
            serde_json::from_str(text)
                .map_err(|e| StoreError::Corrupt(format!("backtest result: {e}")))?,
        ),
        _ => None,
    };
    Ok(BacktestView {
        backtest_id: row.id,
        subscriber_id: row.subscriber_id,
        status: row.status.into(),
        progress: Progress {
            done: row.progress_done,
            total: row.progress_total,
        },
        version: request.version,
        from: rfc3339(request.from),
        to: rfc3339(request.to),
        result,
        error: row.error,
        created_at: rfc3339(row.created_at),
        started_at: row.started_at.map(rfc3339),
        finished_at: row.finished_at.map(rfc3339),
    })
}

/// An RFC 3339 field.
fn instant(body: &Map<String, Value>, field: &str) -> ServiceResult<Millis> {
    let value = required(body, field)?;
    let Value::String(text) = value else {
        return Err(ServiceError::invalid(
            field,
            &format!("expected an RFC 3339 date-time, got {}", json_kind(value)),
        ));
    };
    parse_rfc3339(text).ok_or_else(|| {
        ServiceError::invalid(
            field,
            "expected an RFC 3339 date-time such as 2024-05-01T00:00:00Z",
        )
    })
}

/// The candidate a request names: a stored version, or a rule set given
/// inline (validated as `PUT …/rules` validates one).
async fn candidate(
    store: &dyn Store,
    subscriber_id: &str,
    body: &Map<String, Value>,
) -> ServiceResult<(Option<i64>, RuleSet)> {
    match (optional(body, "version"), optional(body, "rules")) {
        (Some(_), Some(_)) => Err(ServiceError::bad_request(
            "Give either 'version' or 'rules', not both",
        )),
        (None, None) => Err(ServiceError::bad_request(
            "Missing 'version' or 'rules' in request body",
        )),
        (Some(version), None) => {
            let version = integer_text(version)
                .and_then(|text| text.parse::<i64>().ok())
                .filter(|v| *v >= 0)
                .ok_or_else(|| {
                    ServiceError::invalid("version", "expected a rule-set version (0 or more)")
                })?;
            if version == 0 {
                let pack = default_rule_set().map_err(|_| ServiceError::internal("backtest"))?;
                return Ok((Some(0), pack.clone()));
            }
            let row = store
                .rule_set_version(subscriber_id, version)
                .await?
                .ok_or_else(|| {
                    ServiceError::not_found(format!("Rule set version {version} not found"))
                })?;
            let rules: RuleSet = serde_json::from_str(&row.body)
                .map_err(|e| StoreError::Corrupt(format!("rule set: {e}")))?;
            Ok((Some(version), rules))
        }
        (None, Some(Value::Object(rules))) => {
            let rules = parse_rule_set(rules).map_err(ServiceError::bad_request)?;
            compile(&rules, 0).map_err(ServiceError::bad_request)?;
            Ok((None, rules))
        }
        (None, Some(other)) => Err(ServiceError::invalid(
            "rules",
            &format!("expected a rule set object, got {}", json_kind(other)),
        )),
    }
}

/// Queues a backtest of the subscriber's decisions made in `[from, to)`,
/// recorded with its job and its audit entry (by `actor`) in one
/// transaction. The caller wakes the worker.
pub async fn queue(
    store: &dyn Store,
    subscriber_id: &str,
    body: &Map<String, Value>,
    actor: &Actor,
) -> ServiceResult<BacktestQueued> {
    existing(store, subscriber_id).await?;
    let from = instant(body, "from")?;
    let to = instant(body, "to")?;
    if from >= to {
        return Err(ServiceError::invalid("to", "must be later than 'from'"));
    }
    let (version, rules) = candidate(store, subscriber_id, body).await?;
    let summary = serde_json::json!({
        "version": version,
        "rules": rules.rules.len(),
        "from": rfc3339(from),
        "to": rfc3339(to),
    });
    let request = StoredRequest {
        version,
        rules,
        from,
        to,
    };
    let backtest = NewBacktest {
        id: format!("bt_{}", random_id(24)),
        subscriber_id: subscriber_id.to_owned(),
        request: serde_json::to_string(&request).map_err(|_| ServiceError::internal("backtest"))?,
        summary,
    };
    let row = store.queue_backtest(&backtest, actor).await?;
    tracing::info!(%subscriber_id, backtest = %row.id, ?version, "backtest queued");
    Ok(BacktestQueued {
        backtest_id: row.id,
        status: row.status.into(),
    })
}

/// One of the subscriber's backtests, with its result once done.
pub async fn get(
    store: &dyn Store,
    subscriber_id: &str,
    backtest_id: &str,
) -> ServiceResult<BacktestView> {
    existing(store, subscriber_id).await?;
    let row = store
        .get_backtest(subscriber_id, backtest_id)
        .await?
        .ok_or_else(|| not_found(backtest_id))?;
    view(row, true)
}

/// The subscriber's recent backtests, newest first.
pub async fn list(store: &dyn Store, subscriber_id: &str) -> ServiceResult<BacktestList> {
    existing(store, subscriber_id).await?;
    let backtests = store
        .list_backtests(subscriber_id, LISTED)
        .await?
        .into_iter()
        .map(|row| view(row, false))
        .collect::<ServiceResult<_>>()?;
    Ok(BacktestList { backtests })
}

/// How a run ended.
#[derive(Debug)]
pub enum Ran {
    /// Done or failed (now or before): nothing left to do.
    Finished,
    /// Stopped between pages because the process is stopping; the backtest
    /// stays running, to start over when its job runs again.
    Interrupted,
    /// No such backtest.
    Missing,
}

/// Why a run could not finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The store failed; another attempt may succeed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The replay itself stopped (a panic in the core): not worth retrying.
    #[error("{0}")]
    Replay(String),
}

fn truth(label: Option<&str>) -> Option<Truth> {
    label.and_then(Label::parse).map(|label| {
        if label.is_fraud_like() {
            Truth::Fraud
        } else {
            Truth::Good
        }
    })
}

/// Replays one page, off the async threads: it is all CPU.
async fn replay_page(
    rules: Arc<CompiledRuleSet>,
    mut replay: Replay,
    page: Vec<ReplayDecision>,
) -> Result<Replay, RunError> {
    tokio::task::spawn_blocking(move || {
        for decision in &page {
            replay.add(
                &rules,
                &StoredDecision {
                    id: &decision.id,
                    input: &decision.input,
                    result: &decision.result,
                    action: &decision.action,
                    truth: truth(decision.label.as_deref()),
                },
            );
        }
        replay
    })
    .await
    .map_err(|e| RunError::Replay(format!("the replay stopped: {e}")))
}

/// Runs a backtest from its start: counts the window, replays it page by
/// page (recording the progress after each) and stores the result. A
/// backtest already final is left alone. `stopping` is asked between pages.
pub async fn run(
    store: &dyn Store,
    backtest_id: &str,
    stopping: impl Fn() -> bool,
) -> Result<Ran, RunError> {
    let Some(row) = store.backtest_by_id(backtest_id).await? else {
        return Ok(Ran::Missing);
    };
    if row.status.is_final() {
        return Ok(Ran::Finished);
    }
    let failed = |error: String| BacktestOutcome::Failed { error };
    let request = match stored_request(&row) {
        Ok(request) => request,
        Err(err) => {
            store
                .finish_backtest(backtest_id, &failed(err.to_string()), now_millis())
                .await?;
            return Ok(Ran::Finished);
        }
    };
    // Validated when queued; a stored version may only stop compiling if
    // the engine changed since.
    let rules = match compile(&request.rules, request.version.unwrap_or(-1)) {
        Ok(rules) => Arc::new(rules),
        Err(err) => {
            store
                .finish_backtest(backtest_id, &failed(err), now_millis())
                .await?;
            return Ok(Ran::Finished);
        }
    };
    let subscriber = row.subscriber_id.as_str();
    let started = now_millis();
    // The window ends now at the latest: the count and the pages then see
    // the same decisions, however many are being made meanwhile.
    let (from, to) = (request.from, request.to.min(started));
    // (A window wholly in the future is empty: `to` is before `from` now.)
    let total = store.count_decisions_between(subscriber, from, to).await?;
    if !store.start_backtest(backtest_id, total, started).await? {
        return Ok(Ran::Finished);
    }
    let mut replay = Replay::new(&rules);
    let mut after = None;
    let mut seen: i64 = 0;
    loop {
        if stopping() {
            return Ok(Ran::Interrupted);
        }
        let page = store
            .decisions_between(subscriber, from, to, after.clone(), PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.created_at, last.id.clone()));
        let full = page.len() as i64 >= PAGE;
        seen += page.len() as i64;
        replay = replay_page(rules.clone(), replay, page).await?;
        store
            .backtest_progress(backtest_id, seen, now_millis())
            .await?;
        if !full {
            break;
        }
    }
    let result = replay.finish();
    let result =
        serde_json::to_string(&result).map_err(|e| RunError::Replay(format!("result: {e}")))?;
    store
        .finish_backtest(backtest_id, &BacktestOutcome::Done { result }, now_millis())
        .await?;
    tracing::info!(%subscriber, backtest = %backtest_id, decisions = seen,
        ms = now_millis() - started, "backtest done");
    Ok(Ran::Finished)
}
