//! `POST /risk/bin/score`, `GET /risk/decisions/{id}` and
//! `POST /risk/decisions/{id}/feedback`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Subscriber;
use super::bodies::AsyncJob;
use super::error::ApiError;
use super::request::JsonObject;
use crate::clock::rfc3339;
use crate::service::scoring::{DecisionDetail, Scored};
use crate::state::AppState;
use crate::store::{Actor, JobState, Label};

const MAX_IDEMPOTENCY_KEY: usize = 255;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(score))
        .routes(routes!(show_decision))
        .routes(routes!(feedback))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let invalid =
        |why: &str| ApiError::bad_request(format!("Invalid 'Idempotency-Key' header: {why}"));
    let key = value
        .to_str()
        .map_err(|_| invalid("expected visible ASCII characters"))?
        .trim();
    if key.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(invalid(&format!(
            "must be at most {MAX_IDEMPOTENCY_KEY} characters"
        )));
    }
    Ok(Some(key.to_owned()))
}

/// `Idempotency-Key`: visible ASCII, not blank, at most 255 characters
/// (after trimming), else `400`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // documents the header; `idempotency_key` reads it
struct IdempotencyKey {
    /// Repeat a request safely: the same key (within 24 h) returns the same decision.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = "^[\\x21-\\x7e]([ -~]*[\\x21-\\x7e])?$"
    )]
    idempotency_key: Option<String>,
}

fn async_job(callback_url: Option<&str>) -> AsyncJob {
    match callback_url {
        Some(_) => AsyncJob {
            status: "queued",
            will_callback: true,
        },
        None => AsyncJob {
            status: "none",
            will_callback: false,
        },
    }
}

fn raw(json: &str) -> Result<&RawValue, ApiError> {
    serde_json::from_str(json).map_err(|err| {
        tracing::error!(error = %err, "stored decision JSON does not parse");
        ApiError::internal()
    })
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Result<Response, ApiError> {
    let bytes = serde_json::to_vec(body).map_err(|_| ApiError::internal())?;
    Ok((
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response())
}

/// The `200` of a score. `input` and `result` are written as the very bytes
/// that were stored, never parsed again: the service hands over valid JSON.
fn score_response(scored: &Scored) -> Result<Response, ApiError> {
    let id = serde_json::to_string(&scored.decision_id).map_err(|_| ApiError::internal())?;
    let job = serde_json::to_string(&async_job(scored.callback.then_some("")))
        .map_err(|_| ApiError::internal())?;
    let mut body =
        String::with_capacity(scored.input.len() + scored.result.len() + id.len() + job.len() + 96);
    for part in [
        "{\"decision_id\":",
        &id,
        ",\"input\":",
        &scored.input,
        ",\"result\":",
        &scored.result,
        ",\"source\":\"bin\",\"type\":\"transaction\",\"async_job\":",
        &job,
        "}",
    ] {
        body.push_str(part);
    }
    Ok((
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// An earlier decision with the same key: the same answer for the same body,
/// `409` for another.
/// Score a transaction.
///
/// Send `payload` (features) or `gateway_event` (a raw Stripe, Adyen,
/// Checkout.com, Braintree or Square event), or both (the payload's fields
/// win). The decision is durably recorded before the answer is sent.
#[utoipa::path(
    post,
    path = "/risk/bin/score",
    tag = "scoring",
    request_body(content = crate::http::bodies::ScoreRequest, description = "A transaction: `payload` features and/or a `gateway_event`"),
    params(IdempotencyKey),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The decision", body = crate::http::bodies::ScoreResponse),
        (status = 400, description = "Invalid JSON, a missing or invalid field or header, or a callback_url whose host does not resolve to a public address", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over the subscriber's rate limit (`Retry-After` says when to retry)", body = crate::http::error::ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Database unavailable, try again", body = crate::http::error::ErrorBody),
        (status = 403, description = "subscriber_id does not match API key", body = crate::http::error::ErrorBody),
        (status = 409, description = "Idempotency-Key reused with another body", body = crate::http::error::ErrorBody),
        (status = 413, description = "Request body too large", body = crate::http::error::ErrorBody),
        (status = 422, description = "gateway_event not recognized or unusable", body = crate::http::error::ErrorBody),
    )
)]
async fn score(
    State(app): State<AppState>,
    subscriber: Subscriber,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let scored = app.scoring.score(&subscriber.id, body, key).await?;
    score_response(&scored)
}

/// A stored decision, as its owner reads it.
#[derive(Serialize, ToSchema)]
struct DecisionView<'a> {
    decision_id: &'a str,
    request_id: &'a str,
    subscriber_id: &'a str,
    created_at: String,
    #[schema(value_type = String, example = "bin")]
    source: &'static str,
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "transaction")]
    kind: &'static str,
    #[schema(value_type = Object)]
    input: &'a RawValue,
    #[schema(value_type = crate::http::bodies::DecisionResult)]
    result: &'a RawValue,
    rules_version: i64,
    /// Microseconds from request to decision (before the commit).
    duration_us: i64,
    callback_url: Option<&'a str>,
    async_job: AsyncJob,
    #[schema(value_type = Option<crate::http::bodies::Label>)]
    label: Option<&'static str>,
    labeled_at: Option<String>,
    /// What the shadow rule set would have decided (it never acts); `null`
    /// when no shadow ran.
    #[schema(value_type = Option<crate::http::bodies::ShadowResult>)]
    shadow: Option<&'a RawValue>,
    /// The callback, when one was asked for: its state, the final result it
    /// carries, and every delivery attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    callback: Option<CallbackView<'a>>,
}

#[derive(Serialize, ToSchema)]
struct CallbackView<'a> {
    /// `queued`, `delivering`, `delivered` or `failed`.
    #[schema(value_type = String)]
    status: &'static str,
    webhook_id: String,
    url: &'a str,
    /// The result after the device signals arrived (absent until re-scored).
    #[schema(value_type = Option<crate::http::bodies::DecisionResult>)]
    final_result: Option<&'a RawValue>,
    #[schema(value_type = Option<Object>)]
    final_input: Option<&'a RawValue>,
    final_at: Option<String>,
    next_attempt_at: Option<String>,
    last_error: Option<String>,
    attempts: Vec<AttemptView>,
}

#[derive(Serialize, ToSchema)]
struct AttemptView {
    attempt: i64,
    at: String,
    status_code: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
}

fn decision_view(detail: &DecisionDetail) -> Result<Response, ApiError> {
    let row = &detail.row;
    let (job, attempts) = (&detail.callback_job, &detail.attempts);
    let callback = match (&row.callback_url, job) {
        (Some(url), Some(job)) => Some(CallbackView {
            status: match job.state {
                JobState::Pending => "queued",
                JobState::Running => "delivering",
                JobState::Succeeded => "delivered",
                JobState::Failed => "failed",
            },
            webhook_id: crate::callbacks::webhook_id(&row.id),
            url,
            final_result: row.final_result.as_deref().map(raw).transpose()?,
            final_input: row.final_input.as_deref().map(raw).transpose()?,
            final_at: row.final_at.map(rfc3339),
            next_attempt_at: (job.state == JobState::Pending).then(|| rfc3339(job.run_at)),
            last_error: job.last_error.clone(),
            attempts: attempts
                .iter()
                .map(|a| AttemptView {
                    attempt: a.attempt,
                    at: rfc3339(a.at),
                    status_code: a.status_code,
                    error: a.error.clone(),
                    duration_ms: a.duration_ms,
                })
                .collect(),
        }),
        _ => None,
    };
    let async_job = match &callback {
        Some(c) => AsyncJob {
            status: match c.status {
                "delivered" => "delivered",
                "failed" => "failed",
                _ => "queued",
            },
            will_callback: matches!(c.status, "queued" | "delivering"),
        },
        None => async_job(None),
    };
    json_response(
        StatusCode::OK,
        &DecisionView {
            decision_id: &row.id,
            request_id: &row.request_id,
            subscriber_id: &row.subscriber_id,
            created_at: rfc3339(row.created_at),
            source: "bin",
            kind: "transaction",
            input: raw(&row.input)?,
            result: raw(&row.result)?,
            rules_version: row.rules_version,
            duration_us: row.duration_us,
            callback_url: row.callback_url.as_deref(),
            async_job,
            label: row.label.map(Label::as_str),
            labeled_at: row.labeled_at.map(rfc3339),
            shadow: row.shadow.as_deref().map(raw).transpose()?,
            callback,
        },
    )
}

/// Read one of the subscriber's decisions.
#[utoipa::path(
    get,
    path = "/risk/decisions/{decision_id}",
    tag = "scoring",
    params(("decision_id" = String, Path, description = "The `dec_…` id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The decision: input, result, label", body = DecisionView),
        (status = 401, description = "Missing or invalid API key", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over the subscriber's rate limit (`Retry-After` says when to retry)", body = crate::http::error::ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Database unavailable, try again", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such decision for this subscriber", body = crate::http::error::ErrorBody),
    )
)]
async fn show_decision(
    State(app): State<AppState>,
    subscriber: Subscriber,
    Path(decision_id): Path<String>,
) -> Result<Response, ApiError> {
    decision_view(&app.scoring.decision(&subscriber.id, &decision_id).await?)
}

/// Label a decision with what really happened: `fraud`, `legit` or
/// `chargeback`. Labels feed the customer's profile (`customer.fraud_labels`).
#[utoipa::path(
    post,
    path = "/risk/decisions/{decision_id}/feedback",
    tag = "scoring",
    params(("decision_id" = String, Path, description = "The `dec_…` id")),
    request_body(content = crate::http::bodies::Feedback),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The labelled decision", body = DecisionView),
        (status = 400, description = "Invalid JSON, or a missing or invalid label", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over the subscriber's rate limit (`Retry-After` says when to retry)", body = crate::http::error::ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Database unavailable, try again", body = crate::http::error::ErrorBody),
        (status = 413, description = "Request body too large", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such decision for this subscriber", body = crate::http::error::ErrorBody),
    )
)]
async fn feedback(
    State(app): State<AppState>,
    subscriber: Subscriber,
    Path(decision_id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    decision_view(
        &app.scoring
            .label(
                &subscriber.id,
                &decision_id,
                &body,
                &Actor::ApiKey(subscriber.key_id.clone()),
            )
            .await?,
    )
}
