//! Transaction scoring: `POST /risk/bin/score`, and the decisions it records
//! (`GET /risk/decisions/{id}`, `POST /risk/decisions/{id}/feedback`).
//!
//! The handler gathers what the pure core ([`crate::scoring`]) needs — the
//! cached device signals, the velocity counters, the customer's profile and
//! the compiled rules — decides, and answers only once the decision is
//! committed (through the store's group commit, so concurrent decisions share
//! one flush).

pub mod rulebook;

use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::auth::Subscriber;
use crate::cache::CachedEvent;
use crate::error::ApiError;
use crate::ingest::device_event;
use crate::request::{subscriber_id, JsonObject};
use crate::scoring::{self, CustomerInput, DeviceSource, RequestError};
use crate::secrets::random_id;
use crate::store::{
    now_millis, CustomerFeatures, CustomerTouch, DecisionRecorded, DecisionRow, JobState, Label,
    Millis, NewDecision,
};
use crate::velocity::{VelocityEvent, VelocitySnapshot, WINDOW_24H_MS};

pub use rulebook::RuleBook;

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_WINDOW_MS: Millis = WINDOW_24H_MS;
const MAX_IDEMPOTENCY_KEY: usize = 255;
/// How long the callback URL's host may take to resolve at scoring time.
const CALLBACK_DNS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(score))
        .routes(routes!(show_decision))
        .routes(routes!(feedback))
}

impl From<RequestError> for ApiError {
    fn from(err: RequestError) -> Self {
        match err {
            RequestError::Invalid(message) => ApiError::bad_request(message),
            RequestError::Unprocessable(message) => ApiError::unprocessable(message),
        }
    }
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

/// What the async part of a decision will do: a callback once the device
/// signals are in, when a `callback_url` was accepted.
#[derive(Serialize, ToSchema)]
pub struct AsyncJob {
    /// `queued` (a callback will be sent), `delivered`, `failed`, or `none`.
    #[schema(example = "queued")]
    status: &'static str,
    will_callback: bool,
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

/// The `200` of a score, written from the stored JSON without re-parsing it.
#[derive(Serialize)]
struct ScoreBody<'a> {
    decision_id: &'a str,
    input: &'a RawValue,
    result: &'a RawValue,
    source: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    async_job: AsyncJob,
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

fn score_response(row: &DecisionRow) -> Result<Response, ApiError> {
    json_response(
        StatusCode::OK,
        &ScoreBody {
            decision_id: &row.id,
            input: raw(&row.input)?,
            result: raw(&row.result)?,
            source: "bin",
            kind: "transaction",
            async_job: async_job(row.callback_url.as_deref()),
        },
    )
}

/// An earlier decision with the same key: the same answer for the same body,
/// `409` for another.
fn replay(row: &DecisionRow, request_hash: &str, key: &str) -> Result<Response, ApiError> {
    if row.request_hash == request_hash {
        score_response(row)
    } else {
        Err(ApiError::conflict(format!(
            "Idempotency-Key '{key}' was already used with a different request body"
        )))
    }
}

/// The device signals for the decision: by request id (the cache, else the
/// job row), else the session's latest request, else the user's.
pub(crate) async fn find_device(
    app: &AppState,
    subscriber_id: &str,
    tx: &scoring::Transaction,
) -> Result<Option<(CachedEvent, DeviceSource)>, ApiError> {
    if let Some(event) = device_event(app, subscriber_id, &tx.request_id).await? {
        return Ok(Some((event, DeviceSource::Request)));
    }
    let pointers = [
        (tx.session_id.as_deref(), DeviceSource::Session),
        (tx.user_id.as_deref(), DeviceSource::User),
    ];
    for (id, source) in pointers {
        let Some(id) = id else { continue };
        let found = match source {
            DeviceSource::Session => app.cache.get_by_session(subscriber_id, id).await,
            _ => app.cache.get_by_user(subscriber_id, id).await,
        };
        match found {
            Ok(Some(event)) => return Ok(Some((event, source))),
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "signal cache read failed"),
        }
    }
    Ok(None)
}

fn customer_input(features: Option<CustomerFeatures>, now: Millis) -> CustomerInput {
    let Some(c) = features else {
        return CustomerInput::default();
    };
    #[allow(clippy::cast_precision_loss)]
    let (age_days, avg_amount) = (
        ((now - c.first_seen).max(0) as f64) / 86_400_000.0,
        if c.amount_count > 0 {
            c.amount_total / c.amount_count as f64
        } else {
            0.0
        },
    );
    CustomerInput {
        known: true,
        status: c.status.as_str(),
        age_days: (age_days * 100.0).round() / 100.0,
        decisions: c.decisions_allow + c.decisions_review + c.decisions_block,
        allows: c.decisions_allow,
        reviews: c.decisions_review,
        blocks: c.decisions_block,
        fraud_labels: c.fraud_labels,
        amount_count: c.amount_count,
        avg_amount: (avg_amount * 100.0).round() / 100.0,
        max_amount: c.amount_max.unwrap_or(0.0),
        devices: c.devices,
        cards: c.cards,
        known_device: c.known_device,
        known_card: c.known_card,
    }
}

/// Score a transaction.
///
/// Send `payload` (features) or `gateway_event` (a raw Stripe, Adyen,
/// Checkout.com, Braintree or Square event), or both (the payload's fields
/// win). The decision is durably recorded before the answer is sent.
#[utoipa::path(
    post,
    path = "/risk/bin/score",
    tag = "scoring",
    request_body(content = Object, description = "`{request_id, subscriber_id, payload | gateway_event, callback_url?}`"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat a request safely: the same key (within 24 h) returns the same decision")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The decision", body = Object),
        (status = 400, description = "Missing or invalid field", body = crate::app::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crate::app::ErrorBody),
        (status = 403, description = "subscriber_id does not match API key", body = crate::app::ErrorBody),
        (status = 409, description = "Idempotency-Key reused with another body", body = crate::app::ErrorBody),
        (status = 422, description = "gateway_event not recognized or unusable", body = crate::app::ErrorBody),
    )
)]
async fn score(
    State(app): State<AppState>,
    subscriber: Subscriber,
    headers: HeaderMap,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let key = idempotency_key(&headers)?;
    let tx = scoring::parse_request(body, key.is_some())?;
    let claimed = subscriber_id(&tx.subscriber_id, "subscriber_id")?;
    if claimed != subscriber.id {
        return Err(ApiError::subscriber_mismatch());
    }
    let now = now_millis();
    let since = now - IDEMPOTENCY_WINDOW_MS;
    // The body's fingerprint for idempotency, taken after card numbers were
    // masked (what is stored never derives from a full card number).
    let request_hash = match key {
        Some(_) => hex::encode(Sha256::digest(tx.fingerprint().as_bytes())),
        None => String::new(),
    };
    if let Some(key) = &key {
        if let Some(row) = app
            .store
            .find_decision_by_idempotency(&subscriber.id, key, since)
            .await?
        {
            return replay(&row, &request_hash, key);
        }
    }

    let decision_id = format!("dec_{}", random_id(24));
    // A repeated key counts once in velocity even when two requests race:
    // both record the same event id.
    let event_id = key
        .as_ref()
        .map_or_else(|| decision_id.clone(), |k| format!("idem:{k}"));
    let callback_url = tx.callback_url.clone();
    let callback = match &callback_url {
        Some(url) => {
            // Refused now rather than at delivery: a private address is never
            // tried (and delivery checks again, at connect time).
            let check = crate::callbacks::ssrf::check_url(url, app.config.allow_private_callbacks);
            tokio::time::timeout(CALLBACK_DNS_TIMEOUT, check)
                .await
                .map_err(|_| ApiError::invalid("callback_url", "host did not resolve in time"))?
                .map_err(|why| ApiError::invalid("callback_url", &why))?;
            Some(crate::callbacks::new_job(
                &decision_id,
                &subscriber.id,
                url,
                tx.fingerprint(),
                &event_id,
            ))
        }
        None => None,
    };
    let user_id = tx.user_id.clone();
    let request_id = tx.request_id.clone();
    let assessed = assess(&app, &subscriber.id, tx, event_id, Velocity::Count, now).await?;
    let outcome = &assessed.outcome;
    app.metrics
        .decisions
        .with_label_values(&[outcome.action.as_str()])
        .inc();
    let decision = NewDecision {
        id: decision_id,
        subscriber_id: subscriber.id.clone(),
        request_id,
        idempotency_key: key.clone(),
        request_hash: request_hash.clone(),
        input: assessed.input_json,
        result: assessed.result_json,
        risk_score: outcome.risk_score,
        risk_level: outcome.risk_level.clone(),
        action: outcome.action.as_str().to_owned(),
        rules_version: outcome.rules_version,
        callback_url,
        user_id,
        duration_us: i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX),
        created_at: now,
        customer: assessed.touch,
        callback,
    };
    let recorded = app.store.record_decision(&decision, since).await?;
    if decision.callback.is_some() {
        app.callback_wake.notify_one();
    }
    match recorded {
        DecisionRecorded::Inserted(row) => score_response(&row),
        DecisionRecorded::Existing(row) => {
            let key = key.as_deref().unwrap_or_default();
            replay(&row, &request_hash, key)
        }
    }
}

/// Whether an assessment counts the transaction in velocity (a score) or
/// only reads the counters (a re-score, which was counted already).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Velocity {
    Count,
    Read,
}

/// One assessment of a transaction: the features, the outcome, their JSON,
/// and what it tells the customer's profile.
pub(crate) struct Assessment {
    pub outcome: scoring::Outcome,
    pub input_json: String,
    pub result_json: String,
    pub touch: Option<CustomerTouch>,
}

/// Gathers what the decision core needs — the device signals, the rules, the
/// velocity counters, the customer's profile — and decides.
pub(crate) async fn assess(
    app: &AppState,
    subscriber_id: &str,
    tx: scoring::Transaction,
    event_id: String,
    velocity_mode: Velocity,
    now: Millis,
) -> Result<Assessment, ApiError> {
    let (device, rules) = tokio::join!(
        find_device(app, subscriber_id, &tx),
        app.rulebook.current(app.store.as_ref(), subscriber_id),
    );
    let (device, rules) = (device?, rules?);
    let event = scoring::velocity_event(&tx, device.as_ref().map(|(e, _)| e), event_id);
    let card = tx.bin.as_deref().zip(tx.last4.as_deref());
    let visitor = event.device.as_deref();
    let (velocity, customer) = tokio::join!(
        async {
            match velocity_mode {
                Velocity::Count => {
                    app.velocity
                        .record_and_read(subscriber_id, &event, now)
                        .await
                }
                Velocity::Read => app.velocity.read(subscriber_id, &event, now).await,
            }
        },
        async {
            match tx.user_id.as_deref() {
                Some(user) => {
                    app.store
                        .customer_features(subscriber_id, user, visitor, card)
                        .await
                }
                None => Ok(None),
            }
        }
    );
    let mut degraded = Vec::new();
    let velocity = velocity.unwrap_or_else(|err| {
        // Checkout must not stop because the counters are unreachable; the
        // decision says it was made without them.
        tracing::warn!(error = %err, "velocity counters unavailable; scoring without them");
        degraded.push("velocity");
        VelocitySnapshot::default()
    });
    let customer = customer_input(customer?, now);
    let touch = tx.user_id.clone().map(|user_id| CustomerTouch {
        user_id,
        visitor_id: event.device.clone(),
        card: card.map(|(b, l)| (b.to_owned(), l.to_owned())),
        amount: rust_decimal::prelude::ToPrimitive::to_f64(&tx.amount),
        action: None,
    });
    let mut input = scoring::build_input(
        tx,
        device.as_ref().map(|(e, s)| (e, *s)),
        &velocity,
        customer,
    );
    input.degraded = degraded;
    let outcome = scoring::decide(&rules, &input);
    if !outcome.rule_errors.is_empty() {
        app.metrics
            .rule_errors
            .inc_by(outcome.rule_errors.len() as u64);
    }
    let input_json = serde_json::to_string(&input).map_err(|_| ApiError::internal())?;
    let result_json = serde_json::to_string(&outcome).map_err(|_| ApiError::internal())?;
    Ok(Assessment {
        outcome,
        input_json,
        result_json,
        touch,
    })
}

/// A stored decision, as its owner reads it.
#[derive(Serialize)]
struct DecisionView<'a> {
    decision_id: &'a str,
    request_id: &'a str,
    subscriber_id: &'a str,
    created_at: String,
    source: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    input: &'a RawValue,
    result: &'a RawValue,
    rules_version: i64,
    /// Microseconds from request to decision (before the commit).
    duration_us: i64,
    callback_url: Option<&'a str>,
    async_job: AsyncJob,
    label: Option<&'static str>,
    labeled_at: Option<String>,
    /// The callback, when one was asked for: its state, the final result it
    /// carries, and every delivery attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    callback: Option<CallbackView<'a>>,
}

#[derive(Serialize)]
struct CallbackView<'a> {
    /// `queued`, `delivering`, `delivered` or `failed`.
    status: &'static str,
    webhook_id: String,
    url: &'a str,
    /// The result after the device signals arrived (absent until re-scored).
    final_result: Option<&'a RawValue>,
    final_input: Option<&'a RawValue>,
    final_at: Option<String>,
    next_attempt_at: Option<String>,
    last_error: Option<String>,
    attempts: Vec<AttemptView>,
}

#[derive(Serialize)]
struct AttemptView {
    attempt: i64,
    at: String,
    status_code: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
}

async fn decision_view(app: &AppState, row: &DecisionRow) -> Result<Response, ApiError> {
    let (job, attempts) = match &row.callback_url {
        Some(_) => {
            let (job, attempts) = tokio::join!(
                app.store
                    .latest_job(&row.subscriber_id, crate::callbacks::CALLBACK_JOB, &row.id),
                app.store.callback_attempts(&row.id),
            );
            (job?, attempts?)
        }
        None => (None, Vec::new()),
    };
    let callback = match (&row.callback_url, &job) {
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
            final_at: row.final_at.map(crate::operator::rfc3339),
            next_attempt_at: (job.state == JobState::Pending)
                .then(|| crate::operator::rfc3339(job.run_at)),
            last_error: job.last_error.clone(),
            attempts: attempts
                .iter()
                .map(|a| AttemptView {
                    attempt: a.attempt,
                    at: crate::operator::rfc3339(a.at),
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
            created_at: crate::operator::rfc3339(row.created_at),
            source: "bin",
            kind: "transaction",
            input: raw(&row.input)?,
            result: raw(&row.result)?,
            rules_version: row.rules_version,
            duration_us: row.duration_us,
            callback_url: row.callback_url.as_deref(),
            async_job,
            label: row.label.map(Label::as_str),
            labeled_at: row.labeled_at.map(crate::operator::rfc3339),
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
        (status = 200, description = "The decision: input, result, label", body = Object),
        (status = 401, description = "Missing or invalid API key", body = crate::app::ErrorBody),
        (status = 404, description = "No such decision for this subscriber", body = crate::app::ErrorBody),
    )
)]
async fn show_decision(
    State(app): State<AppState>,
    subscriber: Subscriber,
    Path(decision_id): Path<String>,
) -> Result<Response, ApiError> {
    let row = app
        .store
        .get_decision(&subscriber.id, &decision_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Decision '{decision_id}' not found")))?;
    decision_view(&app, &row).await
}

/// Label a decision with what really happened: `fraud`, `legit` or
/// `chargeback`. Labels feed the customer's profile (`customer.fraud_labels`).
#[utoipa::path(
    post,
    path = "/risk/decisions/{decision_id}/feedback",
    tag = "scoring",
    params(("decision_id" = String, Path, description = "The `dec_…` id")),
    request_body(content = Object, description = "`{\"label\": \"fraud\" | \"legit\" | \"chargeback\"}`"),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The labelled decision", body = Object),
        (status = 400, description = "Missing or invalid label", body = crate::app::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crate::app::ErrorBody),
        (status = 404, description = "No such decision for this subscriber", body = crate::app::ErrorBody),
    )
)]
async fn feedback(
    State(app): State<AppState>,
    subscriber: Subscriber,
    Path(decision_id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let label = crate::request::required(&body, "label")?;
    let label = label
        .as_str()
        .and_then(Label::parse)
        .ok_or_else(|| ApiError::invalid("label", "expected fraud, legit or chargeback"))?;
    let row = app
        .store
        .label_decision(&subscriber.id, &decision_id, label, now_millis())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Decision '{decision_id}' not found")))?;
    decision_view(&app, &row).await
}

/// Rebuilds the embedded velocity counters from the decisions of the last
/// 24 hours (the Redis backend keeps its own). Answers how many were counted.
pub async fn rebuild_velocity(
    store: &dyn crate::store::Store,
    velocity: &dyn crate::velocity::VelocityStore,
) -> Result<u64, crate::store::StoreError> {
    const PAGE: i64 = 1000;
    let since = now_millis() - WINDOW_24H_MS;
    let mut after = None;
    let mut counted = 0;
    loop {
        let page = store.decisions_since(since, after.clone(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.created_at, last.id.clone()));
        for decision in &page {
            let Ok(input) = serde_json::from_str::<Value>(&decision.input) else {
                continue;
            };
            let event = replay_event(&input, &decision.id);
            if velocity
                .record(&decision.subscriber_id, &event, decision.created_at)
                .await
                .is_ok()
            {
                counted += 1;
            }
        }
        if page.len() < PAGE as usize {
            break;
        }
    }
    Ok(counted)
}

/// The velocity event of a stored decision's input (the same fields
/// [`scoring::velocity_event`] used when it was scored).
fn replay_event(input: &Value, decision_id: &str) -> VelocityEvent {
    let text = |name: &str| input.get(name).and_then(Value::as_str).map(str::to_owned);
    let device = input
        .get("device")
        .and_then(|d| d.get("visitor_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let ip = text("ip_address").or_else(|| {
        input
            .get("device")
            .and_then(|d| d.get("ip_address"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    VelocityEvent {
        user: text("user_id"),
        card: text("bin")
            .zip(text("last4"))
            .map(|(b, l)| format!("{b}:{l}")),
        device,
        ip,
        amount_minor: input
            .get("amount_minor")
            .and_then(Value::as_i64)
            .unwrap_or(0),
        // Not the original event id (an idempotency key's is not stored); the
        // counters start empty, so nothing is counted twice.
        event_id: decision_id.to_owned(),
    }
}
