//! `POST /fingerprint/ingest` and `GET /fingerprint/events/{request_id}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Subscriber;
use super::error::ApiError;
use super::request::JsonObject;
use crate::decision::scrub::masked_id;
use crate::service::ingest::{EventView, IngestResponse};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ingest))
        .routes(routes!(event))
}

/// Accept a device-identification request id for background prefetch.
#[utoipa::path(
    post,
    path = "/fingerprint/ingest",
    tag = "fingerprint",
    request_body = crate::http::bodies::IngestRequest,
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Accepted; the fetch is recorded durably", body = IngestResponse),
        (status = 400, description = "Invalid JSON, or a missing or malformed field", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over the subscriber's rate limit (`Retry-After` says when to retry)", body = crate::http::error::ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Database unavailable, try again", body = crate::http::error::ErrorBody),
        (status = 403, description = "subscriber_id does not match API key", body = crate::http::error::ErrorBody),
        (status = 413, description = "Request body too large", body = crate::http::error::ErrorBody),
        (status = 422, description = "No device provider configured (or not the one asked for)", body = crate::http::error::ErrorBody),
    )
)]
async fn ingest(
    State(app): State<AppState>,
    subscriber: Subscriber,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<IngestResponse>), ApiError> {
    let accepted = app.ingest.accept(&subscriber.id, &body).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
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
        (status = 401, description = "Missing or invalid API key", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over the subscriber's rate limit (`Retry-After` says when to retry)", body = crate::http::error::ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Database unavailable, try again", body = crate::http::error::ErrorBody),
        (status = 404, description = "No such request id for this subscriber", body = crate::http::error::ErrorBody),
    )
)]
async fn event(
    State(app): State<AppState>,
    subscriber: Subscriber,
    Path(request_id): Path<String>,
) -> Result<Json<EventView>, ApiError> {
    // Stored masked by the ingest, so read (and named in a 404) masked.
    let request_id = masked_id(&request_id);
    match app.devices.event(&subscriber.id, &request_id).await? {
        Some(event) => Ok(Json(EventView::from_event(event))),
        None => Err(ApiError::not_found(format!(
            "Event '{request_id}' not found"
        ))),
    }
}
