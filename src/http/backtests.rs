//! Backtests under `/admin/subscribers/{id}/backtests`, with the admin token:
//! queue one (`202`), read one with its progress and result, list the
//! recent ones.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Operator;
use super::error::{ApiError, ErrorBody};
use super::request::JsonObject;
use crate::service::backtests::{self, BacktestList, BacktestQueued, BacktestView};
use crate::state::AppState;
use crate::store::Actor;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(queue_backtest, list_backtests))
        .routes(routes!(show_backtest))
}

/// Replay a stored rule-set version (0: the default pack).
#[derive(ToSchema)]
#[allow(dead_code)] // documents the body; the handler reads it as JSON
pub struct BacktestOfVersion {
    #[schema(minimum = 0)]
    version: i64,
    /// Replay the decisions made at or after this time (RFC 3339)…
    #[schema(format = DateTime)]
    from: String,
    /// …and before this one, which must be later.
    #[schema(format = DateTime)]
    to: String,
}

/// Replay a rule set given here, validated as `PUT …/rules` validates one
/// (and not stored).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BacktestOfRules {
    rules: crate::http::bodies::RuleSetInput,
    #[schema(format = DateTime)]
    from: String,
    #[schema(format = DateTime)]
    to: String,
}

/// `POST …/backtests` body: the candidate (a stored version, or a rule set)
/// and the window of decisions to replay it on.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum BacktestRequest {
    Version(BacktestOfVersion),
    Rules(BacktestOfRules),
}

/// Queue a backtest: the candidate rule set replayed on the subscriber's
/// decisions of the window, each with what riskgate knew when it was made.
/// Answers `202` at once; `GET …/backtests/{backtest_id}` follows it.
#[utoipa::path(post, path = "/admin/subscribers/{id}/backtests", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id")),
    request_body(content = BacktestRequest),
    security(("admin_token" = [])),
    responses(
        (status = 202, description = "Queued (durably: it runs after a restart)", body = BacktestQueued),
        (status = 400, description = "Invalid JSON, a missing or invalid field, `from` not before `to`, both or neither of `version` and `rules`, or an invalid rule set (named)", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber, or no such rule-set version", body = ErrorBody),
        (status = 413, description = "Request body too large", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn queue_backtest(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<BacktestQueued>), ApiError> {
    let queued = backtests::queue(app.store.as_ref(), &id, &body, &Actor::Operator).await?;
    app.backtest_wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(queued)))
}

/// The subscriber's 50 most recent backtests, newest first, without their
/// results.
#[utoipa::path(get, path = "/admin/subscribers/{id}/backtests", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = BacktestList),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn list_backtests(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<BacktestList>, ApiError> {
    Ok(Json(backtests::list(app.store.as_ref(), &id).await?))
}

/// One backtest: its status, its progress and, once `done`, its result.
#[utoipa::path(get, path = "/admin/subscribers/{id}/backtests/{backtest_id}", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id"),
           ("backtest_id" = String, Path, description = "As the `202` gave it")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = BacktestView),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber, or no such backtest of this subscriber", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn show_backtest(
    State(app): State<AppState>,
    _: Operator,
    Path((id, backtest_id)): Path<(String, String)>,
) -> Result<Json<BacktestView>, ApiError> {
    Ok(Json(
        backtests::get(app.store.as_ref(), &id, &backtest_id).await?,
    ))
}
