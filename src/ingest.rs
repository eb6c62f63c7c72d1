//! `POST /fingerprint/ingest`: accept a device-identification request id and
//! record a durable job to fetch the provider's analysis of it.
//!
//! The job row is committed before the `202` is written, so an acknowledged
//! ingest survives a crash of the process right after it answered.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::auth::Subscriber;
use crate::cache::{CachedEvent, EventStatus};
use crate::error::ApiError;
use crate::operator::configured_providers;
use crate::operator::rfc3339;
use crate::providers::risk::device_risk;
use crate::providers::DeviceSignals;
use crate::providers::Provider;
use crate::request::{optional_text, required, subscriber_id, text, JsonObject};
use crate::scrub::masked_id;
use crate::secrets::random_id;
use crate::store::{
    duration_millis, now_millis, CustomerTouch, Enqueued, JobRow, JobState, NewJob,
};

pub const DEVICE_FETCH_JOB: &str = "device_fetch";
const ID_MAX: usize = 256;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ingest))
        .routes(routes!(event))
}

/// The cache keys of one ingest, the same on Redis and the embedded cache.
pub fn cache_keys(
    subscriber_id: &str,
    request_id: &str,
    session_id: &str,
    user_id: &str,
) -> [String; 3] {
    [
        crate::cache::request_key(subscriber_id, request_id),
        crate::cache::session_key(subscriber_id, session_id),
        crate::cache::user_key(subscriber_id, user_id),
    ]
}

/// Request ids end up in provider URLs (`/v4/events/{id}`, percent-encoded)
/// and cache keys. Any text is accepted except `.` and `..`, which a URL path
/// would resolve away.
fn request_id(value: &serde_json::Value) -> Result<&str, ApiError> {
    let id = text(value, "request_id", ID_MAX)?;
    if id.chars().all(|c| c == '.') {
        return Err(ApiError::invalid(
            "request_id",
            "must not consist of dots only",
        ));
    }
    Ok(id)
}

/// `POST /fingerprint/ingest` body.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the body; the handler reads it field by field
pub struct IngestRequest {
    /// The provider's request (event) id: Fingerprint `requestId` / `event_id`,
    /// Stytch `telemetry_id`, FingerprintIQ event id.
    #[schema(example = "1708102555327.NLOjmg")]
    request_id: String,
    /// The subscriber's id (a string, or an integer standing for its decimal form).
    #[schema(value_type = String, example = "12")]
    subscriber_id: serde_json::Value,
    #[schema(example = "DEV-SESSION-XYZ")]
    session_id: String,
    #[schema(example = "user@example.com")]
    user_id: String,
    /// Which provider to ask; the subscriber's default (first configured) when absent.
    provider: Option<Provider>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IngestMode {
    /// A durable fetch job was recorded.
    Queued,
    /// A fresh result is already cached; nothing fetched.
    Cached,
    /// A job for this request id is already pending or running.
    InFlight,
}

impl IngestMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Cached => "cached",
            Self::InFlight => "in_flight",
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct IngestResponse {
    /// Always `accepted`.
    #[schema(example = "accepted")]
    status: &'static str,
    mode: IngestMode,
    /// Cache keys under which the result is (or will be) readable.
    redis_keys: [String; 3],
    request_id: String,
    user_id: String,
    session_id: String,
}

/// Accept a device-identification request id for background prefetch.
#[utoipa::path(
    post,
    path = "/fingerprint/ingest",
    tag = "fingerprint",
    request_body = IngestRequest,
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Accepted; the fetch is recorded durably", body = IngestResponse),
        (status = 400, description = "Invalid JSON, or a missing or malformed field", body = crate::app::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crate::app::ErrorBody),
        (status = 403, description = "subscriber_id does not match API key", body = crate::app::ErrorBody),
        (status = 413, description = "Request body too large", body = crate::app::ErrorBody),
        (status = 422, description = "No device provider configured (or not the one asked for)", body = crate::app::ErrorBody),
    )
)]
async fn ingest(
    State(app): State<AppState>,
    subscriber: Subscriber,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<IngestResponse>), ApiError> {
    // Absent fields are reported before malformed ones, in the documented order.
    let fields = ["request_id", "subscriber_id", "session_id", "user_id"];
    for field in fields {
        required(&body, field)?;
    }
    let request_id = request_id(required(&body, "request_id")?)?;
    let claimed = subscriber_id(required(&body, "subscriber_id")?, "subscriber_id")?;
    let session_id = text(required(&body, "session_id")?, "session_id", ID_MAX)?;
    let user_id = text(required(&body, "user_id")?, "user_id", ID_MAX)?;
    // Card numbers are masked here exactly as scoring masks them, so the
    // session and user keys agree and no full number is stored.
    let (session_id, user_id) = (masked_id(session_id), masked_id(user_id));
    let (session_id, user_id) = (session_id.as_ref(), user_id.as_ref());
    if claimed != subscriber.id {
        return Err(ApiError::subscriber_mismatch());
    }
    let asked = optional_text(&body, "provider", 32)?
        .map(|p| {
            Provider::parse(p).ok_or_else(|| {
                ApiError::invalid("provider", &format!("expected {}", Provider::EXPECTED))
            })
        })
        .transpose()?;

    let configured = subscriber_providers(&app, &subscriber.id).await?;
    let Some(default) = configured.first() else {
        return Err(ApiError::unprocessable(
            "No device provider configured for this subscriber",
        ));
    };
    let provider = match asked {
        Some(p) if !configured.contains(&p) => {
            return Err(ApiError::unprocessable(format!(
                "Provider '{}' is not configured for this subscriber",
                p.as_str()
            )))
        }
        Some(p) => p,
        None => *default,
    };

    let job = NewJob {
        id: format!("job_{}", random_id(20)),
        kind: DEVICE_FETCH_JOB.to_owned(),
        subscriber_id: subscriber.id.clone(),
        dedupe_key: request_id.to_owned(),
        payload: json!({
            "request_id": request_id,
            "session_id": session_id,
            "user_id": user_id,
            "provider": provider,
        })
        .to_string(),
        run_at: None,
    };
    let now = now_millis();
    let fresh_since = now - duration_millis(app.config.signal_ttl);
    // The customer's profile records the sighting; both writes join the same
    // group commit, so the 202 waits for one flush.
    let touch = CustomerTouch {
        user_id: user_id.to_owned(),
        ..CustomerTouch::default()
    };
    let (enqueued, touched) = tokio::join!(
        app.store.enqueue_unique(&job, fresh_since),
        app.store.touch_customer(&subscriber.id, &touch, now),
    );
    if let Err(err) = touched {
        tracing::warn!(error = %err, "could not record the customer's sighting");
    }
    let mode = match enqueued? {
        Enqueued::Queued(_) => IngestMode::Queued,
        Enqueued::InFlight(_) => IngestMode::InFlight,
        Enqueued::Done(_) => IngestMode::Cached,
    };
    if mode == IngestMode::Queued {
        app.wake.notify_one();
    }
    // Scoring finds device signals by session or user through these pointers.
    // They are a convenience on top of the durable job: a cache outage must
    // not turn an accepted ingest into an error.
    if let Err(err) = app
        .cache
        .point(&subscriber.id, request_id, Some(session_id), Some(user_id))
        .await
    {
        tracing::warn!(error = %err, "could not point session/user at the request");
    }
    app.metrics
        .ingests
        .with_label_values(&[mode.as_str()])
        .inc();
    tracing::debug!(subscriber_id = %subscriber.id, %request_id, mode = mode.as_str(), "ingest accepted");
    Ok((
        StatusCode::ACCEPTED,
        Json(IngestResponse {
            status: "accepted",
            mode,
            redis_keys: cache_keys(&subscriber.id, request_id, session_id, user_id),
            request_id: request_id.to_owned(),
            user_id: user_id.to_owned(),
            session_id: session_id.to_owned(),
        }),
    ))
}

/// The subscriber's providers, first configured first, through a cache that is
/// at most [`crate::ttl_cache::LOOKUP_TTL`] stale.
async fn subscriber_providers(
    app: &AppState,
    subscriber_id: &str,
) -> Result<Vec<Provider>, ApiError> {
    if let Some(providers) = app.provider_cache.get(subscriber_id) {
        return Ok(providers);
    }
    let providers: Vec<Provider> = configured_providers(app.store.as_ref(), subscriber_id)
        .await?
        .into_iter()
        .map(|(provider, _)| provider)
        .collect();
    app.provider_cache.put(subscriber_id, providers.clone());
    Ok(providers)
}

/// `GET /fingerprint/events/{request_id}` answer.
#[derive(Serialize, ToSchema)]
pub struct EventView {
    request_id: String,
    #[schema(value_type = String, example = "ready")]
    status: EventStatus,
    provider: String,
    visitor_id: Option<String>,
    /// The normalized signals (when `ready`).
    signals: Option<DeviceSignals>,
    /// `risk_score_from_cache`: the device risk in [0, 1] from these signals.
    device_risk: Option<f64>,
    /// When the provider answered (RFC 3339).
    fetched_at: Option<String>,
    attempts: i64,
    /// Why the fetch failed (when `failed`), or the last retryable error (when `pending`).
    error: Option<String>,
}

impl EventView {
    fn from_event(event: CachedEvent) -> Self {
        Self {
            visitor_id: event.signals.as_ref().and_then(|s| s.visitor_id.clone()),
            device_risk: event.signals.as_ref().map(device_risk),
            fetched_at: event.fetched_at.map(rfc3339),
            request_id: event.request_id,
            status: event.status,
            provider: event.provider,
            signals: event.signals,
            attempts: event.attempts,
            error: event.error,
        }
    }
}

/// The event as the job row records it, for a cache miss (after a restart of
/// the embedded cache, or an expired key).
fn event_from_job(job: &JobRow) -> CachedEvent {
    let payload: serde_json::Value = serde_json::from_str(&job.payload).unwrap_or_default();
    let provider = payload
        .get("provider")
        .and_then(|p| p.as_str())
        .unwrap_or_default()
        .to_owned();
    let stored: Option<CachedEvent> = job
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok());
    match (job.state, stored) {
        (JobState::Succeeded, Some(event)) => event,
        (state, _) => CachedEvent {
            request_id: job.dedupe_key.clone(),
            provider,
            status: if state == JobState::Failed {
                EventStatus::Failed
            } else {
                EventStatus::Pending
            },
            signals: None,
            error: job.last_error.clone(),
            fetched_at: job.finished_at,
            attempts: job.attempts,
        },
    }
}

/// The cached, normalized device signals of one ingested request id.
#[utoipa::path(
    get,
    path = "/fingerprint/events/{request_id}",
    tag = "fingerprint",
    params(("request_id" = String, Path, description = "The ingested request id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The event: pending, ready or failed", body = EventView),
        (status = 401, description = "Missing or invalid API key", body = crate::app::ErrorBody),
        (status = 404, description = "No such request id for this subscriber", body = crate::app::ErrorBody),
    )
)]
async fn event(
    State(app): State<AppState>,
    subscriber: Subscriber,
    Path(request_id): Path<String>,
) -> Result<Json<EventView>, ApiError> {
    match device_event(&app, &subscriber.id, &request_id).await? {
        Some(event) => Ok(Json(EventView::from_event(event))),
        None => Err(ApiError::not_found(format!(
            "Event '{request_id}' not found"
        ))),
    }
}

/// The device event of an ingested request id: from the signal cache, else
/// from its job row (after a restart of the embedded cache, or an expired
/// key), refilling the cache. `None` when the request id was never ingested.
pub async fn device_event(
    app: &AppState,
    subscriber_id: &str,
    request_id: &str,
) -> Result<Option<CachedEvent>, ApiError> {
    match app.cache.get_by_request(subscriber_id, request_id).await {
        Ok(Some(event)) => return Ok(Some(event)),
        Ok(None) => {}
        Err(err) => tracing::warn!(error = %err, "signal cache read failed; using the database"),
    }
    let Some(job) = app
        .store
        .latest_job(subscriber_id, DEVICE_FETCH_JOB, request_id)
        .await?
    else {
        return Ok(None);
    };
    let event = event_from_job(&job);
    if event.status != EventStatus::Pending {
        // Refill the cache; pointers stay with whatever request is newer.
        if let Err(err) = app.cache.put_event(subscriber_id, None, None, &event).await {
            tracing::warn!(error = %err, "could not refill the signal cache");
        }
    }
    Ok(Some(event))
}
