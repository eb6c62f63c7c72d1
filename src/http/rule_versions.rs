//! Rule-set versions under `/admin/subscribers/{id}/rules/…`, with the admin
//! token: drafts, publish (and rollback), the shadow, and per-rule statistics.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Operator;
use super::error::{ApiError, ErrorBody};
use super::request::JsonObject;
use crate::service::rule_versions::*;
use crate::state::AppState;
use crate::store::Actor;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_version, list_rule_versions))
        .routes(routes!(show_version))
        .routes(routes!(publish_version))
        .routes(routes!(shadow_version))
        .routes(routes!(stop_shadow_version))
        .routes(routes!(show_rule_stats))
}

/// A version number from the path; anything else names no version.
fn version(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .map_err(|_| ApiError::not_found(format!("Rule set version '{text}' not found")))
}

/// Store a validated rule set as a draft. It acts on nothing until it is
/// published or made the shadow. A bad rule is a `400` naming it.
#[utoipa::path(post, path = "/admin/subscribers/{id}/rules/versions", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id")),
    request_body = crate::http::bodies::RuleSetInput,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "The draft", body = RuleVersionView),
        (status = 400, description = "Invalid JSON, or a missing or invalid field", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 413, description = "Request body too large", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn create_version(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<RuleVersionView>), ApiError> {
    let draft = create_draft(app.store.as_ref(), &id, &body, &Actor::Operator).await?;
    Ok((StatusCode::CREATED, Json(draft)))
}

/// List the subscriber's rule-set versions, newest first, with their status.
#[utoipa::path(get, path = "/admin/subscribers/{id}/rules/versions", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = RuleVersionList),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn list_rule_versions(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<RuleVersionList>, ApiError> {
    Ok(Json(list_versions(app.store.as_ref(), &id).await?))
}

/// Read one version with its rules.
#[utoipa::path(get, path = "/admin/subscribers/{id}/rules/versions/{v}", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id"),
           ("v" = i64, Path, description = "Version number")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = RuleVersionView),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber or version", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn show_version(
    State(app): State<AppState>,
    _: Operator,
    Path((id, v)): Path<(String, String)>,
) -> Result<Json<RuleVersionView>, ApiError> {
    Ok(Json(
        get_version(app.store.as_ref(), &id, version(&v)?).await?,
    ))
}

/// Make a version live: it decides from the next request on, and the
/// previous live version is retired. Rolling back is publishing an older
/// version; publishing the shadow stops the shadow.
#[utoipa::path(post, path = "/admin/subscribers/{id}/rules/versions/{v}/publish", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id"),
           ("v" = i64, Path, description = "Version number")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The version, now live", body = RuleVersionView),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber or version", body = ErrorBody),
        (status = 409, description = "The version is already live", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn publish_version(
    State(app): State<AppState>,
    _: Operator,
    Path((id, v)): Path<(String, String)>,
) -> Result<Json<RuleVersionView>, ApiError> {
    let published = publish(app.store.as_ref(), &id, version(&v)?, &Actor::Operator).await;
    // Forgotten either way: a failed commit may still have happened.
    app.scoring.rulebook.invalidate(&id);
    Ok(Json(published?))
}

/// Make a version the shadow: it is evaluated on every decision beside the
/// live one, its outcome stored on the decision as `shadow`; it never acts.
/// There is one shadow at a time: this one replaces the previous one.
#[utoipa::path(post, path = "/admin/subscribers/{id}/rules/versions/{v}/shadow", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id"),
           ("v" = i64, Path, description = "Version number")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The version, now the shadow", body = RuleVersionView),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber or version", body = ErrorBody),
        (status = 409, description = "The version is live or already the shadow", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn shadow_version(
    State(app): State<AppState>,
    _: Operator,
    Path((id, v)): Path<(String, String)>,
) -> Result<Json<RuleVersionView>, ApiError> {
    let shadowed = start_shadow(app.store.as_ref(), &id, version(&v)?, &Actor::Operator).await;
    app.scoring.rulebook.invalidate(&id);
    Ok(Json(shadowed?))
}

/// Stop the shadow. The version goes back to `retired` if it was ever live,
/// else to `draft`.
#[utoipa::path(delete, path = "/admin/subscribers/{id}/rules/shadow", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The version that was the shadow", body = RuleVersionView),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 409, description = "No shadow is running", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn stop_shadow_version(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<RuleVersionView>, ApiError> {
    let stopped = stop_shadow(app.store.as_ref(), &id, &Actor::Operator).await;
    app.scoring.rulebook.invalidate(&id);
    Ok(Json(stopped?))
}

/// The window of the statistics.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; `show_rule_stats` reads it
struct StatsWindow {
    /// Start (inclusive), RFC 3339; default 30 days before `to`.
    #[param(format = DateTime)]
    from: Option<String>,
    /// End (exclusive), RFC 3339; default now.
    #[param(format = DateTime)]
    to: Option<String>,
}

/// What each rule of the live and the shadow version did on the decisions
/// of the window: hits, hit rate, labelled hits and precision (`fraud` or
/// `chargeback` among the labelled hits), overall and per action.
#[utoipa::path(get, path = "/admin/subscribers/{id}/rules/stats", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id"), StatsWindow),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = RuleStatsView),
        (status = 400, description = "`from` or `to` is not an RFC 3339 time, or `from` is after `to`", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn show_rule_stats(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<RuleStatsView>, ApiError> {
    let (mut from, mut to) = (None, None);
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*key {
            "from" => from = Some(value.into_owned()),
            "to" => to = Some(value.into_owned()),
            _ => {}
        }
    }
    let from = window_bound("from", from.as_deref())?;
    let to = window_bound("to", to.as_deref())?;
    Ok(Json(rule_stats(app.store.as_ref(), &id, from, to).await?))
}
