//! Operations endpoints: liveness, readiness, metrics and the OpenAPI document.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::error::ErrorBody;
use std::sync::Arc;

use crate::state::AppState;

/// How long `/readyz` waits for the database.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_json))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Ready {
    #[schema(example = "ready")]
    status: &'static str,
    /// `sqlite` or `postgres`.
    database: &'static str,
    /// `memory` or `redis`.
    cache: &'static str,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The process can serve: its database and its signal cache answer.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Ready), (status = 503, body = ErrorBody)))]
async fn readyz(State(app): State<AppState>) -> Response {
    // Bounded: a load balancer asking during an outage gets its answer, not
    // a hung probe.
    let store = tokio::time::timeout(READY_TIMEOUT, app.store.ping()).await;
    if !matches!(store, Ok(Ok(()))) {
        match store {
            Ok(Err(err)) => tracing::warn!(error = %err, "readiness: database"),
            _ => tracing::warn!("readiness: database did not answer in time"),
        }
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Database unavailable")
            .into_response();
    }
    // The cache's own calls are bounded (and fail at once while its circuit is
    // open); the velocity counters share its Redis.
    if let Err(err) = app.cache.ping().await {
        tracing::warn!(error = %err, "readiness: cache");
        return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Cache unavailable").into_response();
    }
    Json(Ready {
        status: "ready",
        database: app.store.backend(),
        cache: app.cache.backend(),
    })
    .into_response()
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain", body = String)))]
async fn metrics(State(app): State<AppState>) -> Response {
    let text = app.metrics.render(app.store.as_ref()).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// This document: every route with its request and response schemas.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
async fn openapi_json(State(app): State<AppState>) -> Json<Arc<utoipa::openapi::OpenApi>> {
    Json(app.openapi.clone())
}
