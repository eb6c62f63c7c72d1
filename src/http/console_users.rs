//! `POST`/`GET /admin/subscribers/{id}/users` and
//! `PATCH /admin/subscribers/{id}/users/{user_id}`: the operator manages a
//! subscriber's console users.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Operator;
use super::error::{ApiError, ErrorBody};
use super::request::JsonObject;
use crate::service::console::{self, ConsoleUserCreated, ConsoleUserList, ConsoleUserView};
use crate::state::AppState;
use crate::store::Actor;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_user, list_users))
        .routes(routes!(update_user))
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documents the body
pub enum ConsoleRole {
    Analyst,
    Admin,
}

/// `POST /admin/subscribers/{id}/users` body.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the body; the service reads it
pub struct NewConsoleUser {
    /// Unique across subscribers (compared in lower case): one `@` between
    /// non-empty parts, no spaces or control characters.
    #[schema(
        max_length = 254,
        pattern = "^[^@\\x00-\\x20\\x7f-\\x9f]+@[^@\\x00-\\x20\\x7f-\\x9f]+$"
    )]
    email: String,
    role: ConsoleRole,
    /// The initial password (12 to 256 characters); when absent, one is
    /// generated and returned once.
    #[schema(min_length = 12, max_length = 256)]
    password: Option<String>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ConsoleUserStatus {
    Active,
    Disabled,
}

/// `PATCH /admin/subscribers/{id}/users/{user_id}` body.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ConsoleUserUpdate {
    status: ConsoleUserStatus,
}

/// Create a console user of the subscriber. Without `password`, a random
/// one is generated and shown once in the answer.
#[utoipa::path(post, path = "/admin/subscribers/{id}/users", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id")),
    request_body(content = NewConsoleUser),
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "The user (and its generated password, once)", body = ConsoleUserCreated),
        (status = 400, description = "Invalid JSON, or a missing or invalid email, role or password", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 409, description = "A console user with this email exists", body = ErrorBody),
        (status = 413, description = "Request body too large", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn create_user(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<ConsoleUserCreated>), ApiError> {
    let created = console::create_user(app.store.as_ref(), &id, &body, &Actor::Operator).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// List the subscriber's console users (never their passwords).
#[utoipa::path(get, path = "/admin/subscribers/{id}/users", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = ConsoleUserList),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn list_users(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<ConsoleUserList>, ApiError> {
    Ok(Json(console::list_users(app.store.as_ref(), &id).await?))
}

/// Disable (`disabled`: signed out at once, refused at sign-in) or
/// re-enable (`active`) a console user.
#[utoipa::path(patch, path = "/admin/subscribers/{id}/users/{user_id}", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id"),
           ("user_id" = String, Path, description = "The `usr_…` id")),
    request_body(content = ConsoleUserUpdate),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = ConsoleUserView),
        (status = 400, description = "Invalid JSON, or a missing or invalid status", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber or user", body = ErrorBody),
        (status = 413, description = "Request body too large", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn update_user(
    State(app): State<AppState>,
    _: Operator,
    Path((id, user_id)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<Json<ConsoleUserView>, ApiError> {
    Ok(Json(
        console::set_user_status(app.store.as_ref(), &id, &user_id, &body, &Actor::Operator)
            .await?,
    ))
}
