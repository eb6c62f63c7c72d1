//! The operator API under `/admin`, authenticated with the admin token.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Operator;
use super::error::ApiError;
use super::error::ErrorBody;
use super::request::JsonObject;
use crate::fields::optional;
use crate::providers::Provider;
use crate::service::operator::*;
use crate::service::rate_limits::RateLimitView;
use crate::state::AppState;
use crate::store::{Actor, JobFilter, JobState};

/// Who every change made here is recorded as in the audit log.
const OPERATOR: Actor = Actor::Operator;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, update))
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(revoke_api_key))
        .routes(routes!(put_provider_credentials))
        .routes(routes!(show_rules, replace_rules))
        .routes(routes!(show_rate_limit, set_rate_limit, remove_rate_limit))
        .routes(routes!(list_subscriber_jobs))
        .routes(routes!(rotate_webhook_secret))
        .routes(routes!(put_signing_scheme))
        .routes(routes!(rotate_signing_key_pair))
        .routes(routes!(retry_decision_callback))
}

/// Rotate the subscriber's webhook signing secret. The new secret is shown
/// once; during the grace period (default 24 h, `grace_period_seconds`, at
/// most 30 days) callbacks carry signatures with both the new and the
/// previous secret.
#[utoipa::path(post, path = "/admin/subscribers/{id}/webhook-secret/rotate", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id")),
    request_body(content = crate::http::bodies::SecretRotation, description = "May be empty"),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = RotatedSecret),
        (status = 400, description = "Invalid JSON, or a missing or invalid field", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 413, description = "Request body too large", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn rotate_webhook_secret(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<RotatedSecret>, ApiError> {
    let grace = grace_period(&parse_optional_object(&body)?)?;
    Ok(Json(
        rotate_secret(app.store.as_ref(), &app.sealer, &id, grace, &OPERATOR).await?,
    ))
}

/// Nothing but JSON's white space (a form feed, which Rust's ASCII white
/// space includes, is not JSON).
fn blank(body: &[u8]) -> bool {
    body.iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

/// A body that may be empty (or whitespace) for "all defaults".
fn parse_optional_object(
    body: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    if blank(body) {
        Ok(serde_json::Map::new())
    } else {
        Ok(crate::fields::parse_object(body)?)
    }
}

/// `grace_period_seconds`, 24 h when absent (the upper bound is the service's).
fn grace_period(
    body: &serde_json::Map<String, serde_json::Value>,
) -> Result<std::time::Duration, ApiError> {
    let seconds = match optional(body, "grace_period_seconds") {
        None => 24 * 3600,
        Some(v) => crate::fields::integer_text(v)
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::invalid("grace_period_seconds", "expected a whole number of seconds")
            })?,
    };
    Ok(std::time::Duration::from_secs(seconds))
}

/// Choose how the subscriber's callbacks are signed: `v1` (HMAC-SHA256 with
/// the `whsec_` secret, the default) or `v1a` (Ed25519; the receiver verifies
/// with the `whpk_` public key in the answer). The first switch to `v1a` makes
/// the key pair. During the grace period (default 24 h, at most 30 days)
/// callbacks carry signatures of both the new and the previous scheme.
#[utoipa::path(put, path = "/admin/subscribers/{id}/signing-scheme", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id")),
    request_body(content = crate::http::bodies::SigningSchemeChange),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = SigningSchemeSet),
        (status = 400, description = "Invalid JSON, or a missing or invalid field", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 413, description = "Request body too large", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn put_signing_scheme(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<SigningSchemeSet>, ApiError> {
    let scheme = match optional(&body, "signing_scheme") {
        Some(value) => parse_signing_scheme(value)?,
        None => return Err(ApiError::missing("signing_scheme")),
    };
    let grace = grace_period(&body)?;
    Ok(Json(
        set_signing_scheme(
            app.store.as_ref(),
            &app.sealer,
            &id,
            scheme,
            grace,
            &OPERATOR,
        )
        .await?,
    ))
}

/// Replace the subscriber's Ed25519 signing key pair. The answer has the new
/// `whpk_` public key (the private key is never shown); during the grace
/// period (default 24 h, `grace_period_seconds`, at most 30 days) `v1a`
/// callbacks carry signatures with both the new and the previous key.
#[utoipa::path(post, path = "/admin/subscribers/{id}/signing-key/rotate", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id")),
    request_body(content = crate::http::bodies::SecretRotation, description = "May be empty"),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = RotatedSigningKey),
        (status = 400, description = "Invalid JSON, or a missing or invalid field", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 413, description = "Request body too large", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn rotate_signing_key_pair(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<RotatedSigningKey>, ApiError> {
    let grace = grace_period(&parse_optional_object(&body)?)?;
    Ok(Json(
        rotate_signing_key(app.store.as_ref(), &app.sealer, &id, grace, &OPERATOR).await?,
    ))
}

/// Send a failed callback again. It gets a fresh retry schedule and the same
/// `webhook-id`.
#[utoipa::path(post, path = "/admin/subscribers/{id}/callbacks/{decision_id}/retry", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id"),
           ("decision_id" = String, Path, description = "The decision whose callback failed")),
    security(("admin_token" = [])),
    responses(
        (status = 202, body = RetriedCallback),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 409, description = "The callback has not failed", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn retry_decision_callback(
    State(app): State<AppState>,
    _: Operator,
    Path((id, decision_id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<RetriedCallback>), ApiError> {
    let retried = retry_callback(app.store.as_ref(), &id, &decision_id).await?;
    app.scoring.callback_wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(retried)))
}

/// Create a subscriber. The response carries its webhook signing secret, once,
/// and for `signing_scheme` `v1a` the public key of its new Ed25519 key pair.
#[utoipa::path(post, path = "/admin/subscribers", tag = "operator",
    request_body(content = crate::http::bodies::NewSubscriber),
    security(("admin_token" = [])),
    responses(
        (status = 201, body = SubscriberView),
        (status = 400, description = "Invalid JSON, or a missing or invalid field", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 409, description = "A subscriber with this id already exists", body = ErrorBody),
        (status = 413, description = "Request body too large", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn create(
    State(app): State<AppState>,
    _: Operator,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<SubscriberView>), ApiError> {
    let created = create_subscriber(app.store.as_ref(), &app.sealer, &body, &OPERATOR).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// List subscribers.
#[utoipa::path(get, path = "/admin/subscribers", tag = "operator",
    security(("admin_token" = [])),
    responses(
        (status = 200, body = SubscriberList),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn list(State(app): State<AppState>, _: Operator) -> Result<Json<SubscriberList>, ApiError> {
    Ok(Json(list_subscribers(app.store.as_ref()).await?))
}

/// Read one subscriber.
#[utoipa::path(get, path = "/admin/subscribers/{id}", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = SubscriberView),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn show(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<SubscriberView>, ApiError> {
    Ok(Json(get_subscriber(app.store.as_ref(), &id).await?))
}

/// Rename a subscriber or set its status (`active` / `suspended`). A suspended
/// subscriber's keys stop working on the next request.
#[utoipa::path(patch, path = "/admin/subscribers/{id}", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id")),
    request_body(content = crate::http::bodies::SubscriberUpdate),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = SubscriberView),
        (status = 400, description = "Invalid JSON, or a missing or invalid field", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 413, description = "Request body too large", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn update(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<SubscriberView>, ApiError> {
    let updated = update_subscriber(app.store.as_ref(), &id, &body, &OPERATOR).await?;
    app.key_cache.forget_subscriber(&id);
    Ok(Json(updated))
}

/// Issue an API key. The key is in this response only; riskgate stores its hash.
#[utoipa::path(post, path = "/admin/subscribers/{id}/keys", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id")),
    request_body(content = crate::http::bodies::NewApiKey, description = "May be empty"),
    security(("admin_token" = [])),
    responses(
        (status = 201, body = ApiKeyCreated),
        (status = 400, description = "Invalid JSON, or a missing or invalid field", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 413, description = "Request body too large", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn create_api_key(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<ApiKeyCreated>), ApiError> {
    // An empty body is fine here: the only field is an optional label.
    let body = if blank(&body) {
        serde_json::Map::new()
    } else {
        crate::fields::parse_object(&body)?
    };
    let created = create_key(app.store.as_ref(), &id, key_name(&body)?, &OPERATOR).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// List a subscriber's API keys (ids and status, never the keys).
#[utoipa::path(get, path = "/admin/subscribers/{id}/keys", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = ApiKeyList),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn list_api_keys(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyList>, ApiError> {
    Ok(Json(list_keys(app.store.as_ref(), &id).await?))
}

/// Revoke an API key; it is refused from the next request on.
#[utoipa::path(delete, path = "/admin/subscribers/{id}/keys/{key_id}", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id"), ("key_id" = String, Path, description = "Key id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = ApiKeyView),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn revoke_api_key(
    State(app): State<AppState>,
    _: Operator,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<Json<ApiKeyView>, ApiError> {
    let revoked = revoke_key(app.store.as_ref(), &id, &key_id, &OPERATOR).await?;
    app.key_cache.forget(&key_id);
    Ok(Json(revoked))
}

/// Store a subscriber's credentials for one provider (sealed; never returned).
///
/// `fingerprint`: `{"secret_key", "region"?: "us"|"eu"|"ap", "api_version"?: "v4"|"v3"}`;
/// `stytch`: `{"project_id", "secret"}`; `fingerprintiq`: `{"secret_key"}`.
#[utoipa::path(put, path = "/admin/subscribers/{id}/providers/{provider}", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id"),
           ("provider" = Provider, Path, description = "fingerprint, stytch or fingerprintiq")),
    request_body(content = crate::http::bodies::ProviderCredentials, description = "The credentials of the provider the path names"),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = ProviderView),
        (status = 400, description = "Invalid JSON, or a missing or invalid field", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 413, description = "Request body too large", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn put_provider_credentials(
    State(app): State<AppState>,
    _: Operator,
    Path((id, provider)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Json<ProviderView>, ApiError> {
    let provider = parse_provider(&provider)?;
    let stored = put_provider(
        app.store.as_ref(),
        &app.sealer,
        &id,
        provider,
        &body,
        &OPERATOR,
    )
    .await?;
    // Ingest must see the new provider on its next request, not a second later.
    app.ingest
        .providers
        .remove_where(|subscriber, _| subscriber == id);
    Ok(Json(stored))
}

/// Read the subscriber's current rule set and thresholds.
#[utoipa::path(get, path = "/admin/subscribers/{id}/rules", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = RuleSetView),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn show_rules(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<RuleSetView>, ApiError> {
    Ok(Json(get_rules(app.store.as_ref(), &id).await?))
}

/// Replace the subscriber's rule set: it is validated whole and published at
/// once, as a new version (the previous live version is retired; a shadow
/// keeps running). A bad rule is a `400` naming it, and the previous version
/// stays in force.
#[utoipa::path(put, path = "/admin/subscribers/{id}/rules", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id")),
    request_body = crate::http::bodies::RuleSetInput,
    security(("admin_token" = [])),
    responses(
        (status = 200, body = RuleSetView),
        (status = 400, description = "Invalid JSON, or a missing or invalid field", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 413, description = "Request body too large", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn replace_rules(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<RuleSetView>, ApiError> {
    let view = crate::service::rule_versions::put_rules(
        app.store.as_ref(),
        &id,
        &body,
        &crate::store::Actor::Operator,
    )
    .await;
    // This process decides with the new version from its next request
    // (forgotten on a failure too: the commit may have happened).
    app.scoring.rulebook.invalidate(&id);
    Ok(Json(view?))
}

/// Read the subscriber's rate limit (`null` fields: none).
#[utoipa::path(get, path = "/admin/subscribers/{id}/rate-limit", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = RateLimitView),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn show_rate_limit(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<RateLimitView>, ApiError> {
    Ok(Json(app.rate_limits.show(&id).await?))
}

/// Limit the requests the subscriber's keys may make:
/// `{"requests_per_second": 50, "burst": 100}` (the burst defaults to one
/// second's worth). Requests over it answer `429` with `Retry-After`.
#[utoipa::path(put, path = "/admin/subscribers/{id}/rate-limit", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id")),
    request_body(content = crate::http::bodies::RateLimitRequest),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = RateLimitView),
        (status = 400, description = "Invalid JSON, or a missing or invalid field", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 413, description = "Request body too large", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn set_rate_limit(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<RateLimitView>, ApiError> {
    Ok(Json(app.rate_limits.set(&id, &body, &OPERATOR).await?))
}

/// Remove the subscriber's rate limit.
#[utoipa::path(delete, path = "/admin/subscribers/{id}/rate-limit", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = RateLimitView),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn remove_rate_limit(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<RateLimitView>, ApiError> {
    Ok(Json(app.rate_limits.remove(&id, &OPERATOR).await?))
}

#[derive(Deserialize, IntoParams)]
struct JobQuery {
    /// `pending`, `running`, `succeeded` or `failed`.
    #[param(value_type = Option<crate::http::bodies::JobStateFilter>)]
    state: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    limit: Option<i64>,
}

/// List a subscriber's jobs, newest first.
#[utoipa::path(get, path = "/admin/subscribers/{id}/jobs", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id"), JobQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = JobList),
        (status = 400, description = "Invalid JSON, or a missing or invalid field", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn list_subscriber_jobs(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    Query(query): Query<JobQuery>,
) -> Result<Json<JobList>, ApiError> {
    let state = query
        .state
        .map(|s| {
            JobState::parse(&s).ok_or_else(|| {
                ApiError::invalid("state", "expected pending, running, succeeded or failed")
            })
        })
        .transpose()?;
    let filter = JobFilter {
        subscriber_id: Some(id),
        kind: None,
        state,
        limit: query.limit.unwrap_or(100),
    };
    Ok(Json(list_jobs(app.store.as_ref(), &filter).await?))
}
