//! `GET` and `PATCH /customers/{user_id}`.

use axum::extract::{Path, State};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Subscriber;
use super::error::ApiError;
use super::request::JsonObject;
use crate::service::customers::{self, CustomerView};
use crate::state::AppState;
use crate::store::Actor;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show_customer, update_customer))
}

/// Read an end customer's profile.
#[utoipa::path(
    get,
    path = "/customers/{user_id}",
    tag = "customers",
    params(("user_id" = String, Path, description = "The merchant's user id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The profile", body = CustomerView),
        (status = 401, description = "Missing or invalid API key", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over the subscriber's rate limit (`Retry-After` says when to retry)", body = crate::http::error::ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Database unavailable, try again", body = crate::http::error::ErrorBody),
        (status = 404, description = "Never seen by this subscriber", body = crate::http::error::ErrorBody),
    )
)]
async fn show_customer(
    State(app): State<AppState>,
    subscriber: Subscriber,
    Path(user_id): Path<String>,
) -> Result<Json<CustomerView>, ApiError> {
    Ok(Json(
        customers::show(app.store.as_ref(), &subscriber.id, &user_id).await?,
    ))
}

/// A user id a status can be set on.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // documents the path; the handler reads it as a string
struct UserIdPath {
    /// The merchant's user id: at most 256 characters, no control characters.
    #[param(max_length = 256, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    user_id: String,
}

/// Set an end customer's status: `trusted`, `blocked` or `normal`. A user not
/// seen yet is created, so a merchant can block an account before it pays.
#[utoipa::path(
    patch,
    path = "/customers/{user_id}",
    tag = "customers",
    params(UserIdPath),
    request_body(content = crate::http::bodies::CustomerStatusUpdate),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The updated profile", body = CustomerView),
        (status = 400, description = "Invalid JSON, a missing or invalid status, or a user id over 256 characters or with control characters", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over the subscriber's rate limit (`Retry-After` says when to retry)", body = crate::http::error::ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Database unavailable, try again", body = crate::http::error::ErrorBody),
        (status = 413, description = "Request body too large", body = crate::http::error::ErrorBody),
    )
)]
async fn update_customer(
    State(app): State<AppState>,
    subscriber: Subscriber,
    Path(user_id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<CustomerView>, ApiError> {
    let view = customers::set_status(
        app.store.as_ref(),
        &subscriber.id,
        &user_id,
        &body,
        &Actor::ApiKey(subscriber.key_id.clone()),
    )
    .await?;
    Ok(Json(view))
}
