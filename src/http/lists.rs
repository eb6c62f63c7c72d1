//! The lists: `/lists…` for a subscriber's backend (`X-API-Key`), and the
//! same under `/admin/subscribers/{id}/lists…` for the operator.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Operator, Subscriber};
use super::error::{ApiError, ErrorBody};
use super::request::JsonObject;
use crate::service::lists::{self, ListDetail, ListEntryView, ListView, ListsPage};
use crate::service::operator::existing;
use crate::state::AppState;
use crate::store::Actor;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(all_lists))
        .routes(routes!(show_list, put_list, delete_list))
        .routes(routes!(add_entry))
        .routes(routes!(remove_entry))
        .routes(routes!(admin_all_lists))
        .routes(routes!(admin_show_list, admin_put_list, admin_delete_list))
        .routes(routes!(admin_add_entry))
        .routes(routes!(admin_remove_entry))
}

/// A list's name in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // documents the path; the handlers read it as a string
struct ListName {
    /// 1 to 64 characters from `[a-z0-9_]`; anything else is a `400`.
    #[param(pattern = "^[a-z0-9_]{1,64}$")]
    name: String,
}

/// An entry's value in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct EntryValue {
    /// The entry's value as the entry shows it, percent-encoded
    /// (`411111%3A1111`).
    #[param(min_length = 1)]
    value: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct SubscriberId {
    /// Subscriber id
    id: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^([0-9a-fA-F]{2}){1,1024}$")]
    cursor: Option<String>,
    /// Entries per page, 1 to 1000 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

async fn show(
    app: &AppState,
    subscriber: &str,
    name: &str,
    page: Page,
) -> Result<ListDetail, ApiError> {
    let limit = lists::page_limit(page.limit.as_deref())?;
    Ok(lists::show(
        app.store.as_ref(),
        subscriber,
        name,
        page.cursor.as_deref(),
        limit,
    )
    .await?)
}

async fn put(
    app: &AppState,
    subscriber: &str,
    name: &str,
    body: &serde_json::Map<String, serde_json::Value>,
    actor: Actor,
) -> Result<(StatusCode, Json<ListView>), ApiError> {
    let (created, view) = lists::put(
        &app.store,
        &app.scoring.lists,
        subscriber,
        name,
        body,
        actor,
    )
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)))
}

/// The subscriber's lists.
#[utoipa::path(get, path = "/lists", tag = "lists",
    security(("api_key" = [])),
    responses(
        (status = 200, body = ListsPage),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 429, description = "Over the subscriber's rate limit (`Retry-After` says when to retry)", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn all_lists(
    State(app): State<AppState>,
    subscriber: Subscriber,
) -> Result<Json<ListsPage>, ApiError> {
    Ok(Json(lists::all(app.store.as_ref(), &subscriber.id).await?))
}

/// A list with a page of its entries, by value (expired entries included:
/// they no longer match).
#[utoipa::path(get, path = "/lists/{name}", tag = "lists",
    params(ListName, Page),
    security(("api_key" = [])),
    responses(
        (status = 200, body = ListDetail),
        (status = 400, description = "An invalid list name, cursor or limit", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such list", body = ErrorBody),
        (status = 429, description = "Over the subscriber's rate limit (`Retry-After` says when to retry)", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn show_list(
    State(app): State<AppState>,
    subscriber: Subscriber,
    Path(name): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<ListDetail>, ApiError> {
    Ok(Json(show(&app, &subscriber.id, &name, page).await?))
}

/// Create a list (`201`) or set its kind and description (`200`). The kind
/// of a list with entries cannot change (`409`).
#[utoipa::path(put, path = "/lists/{name}", tag = "lists",
    params(ListName),
    request_body(content = crate::http::bodies::ListInput),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Updated", body = ListView),
        (status = 201, description = "Created", body = ListView),
        (status = 400, description = "Invalid JSON, an invalid list name, or a missing or invalid field", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 409, description = "The list has entries of another kind, or the subscriber has 100 lists", body = ErrorBody),
        (status = 413, description = "Request body too large", body = ErrorBody),
        (status = 429, description = "Over the subscriber's rate limit (`Retry-After` says when to retry)", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn put_list(
    State(app): State<AppState>,
    subscriber: Subscriber,
    Path(name): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<ListView>), ApiError> {
    let actor = Actor::ApiKey(subscriber.key_id);
    put(&app, &subscriber.id, &name, &body, actor).await
}

/// Delete a list and its entries. Rules that read it then read `false`.
#[utoipa::path(delete, path = "/lists/{name}", tag = "lists",
    params(ListName),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "An invalid list name", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such list", body = ErrorBody),
        (status = 429, description = "Over the subscriber's rate limit (`Retry-After` says when to retry)", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn delete_list(
    State(app): State<AppState>,
    subscriber: Subscriber,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::ApiKey(subscriber.key_id);
    lists::delete(&app.store, &app.scoring.lists, &subscriber.id, &name, actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add an entry (an entry with the same value is replaced). The next score
/// in this process sees it.
#[utoipa::path(post, path = "/lists/{name}/entries", tag = "lists",
    params(ListName),
    request_body(content = crate::http::bodies::ListEntryInput),
    security(("api_key" = [])),
    responses(
        (status = 201, body = ListEntryView),
        (status = 400, description = "Invalid JSON, an invalid list name, or a missing or invalid field (a value that does not fit the list's kind names `value`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such list", body = ErrorBody),
        (status = 409, description = "The subscriber's lists hold 100000 entries", body = ErrorBody),
        (status = 413, description = "Request body too large", body = ErrorBody),
        (status = 429, description = "Over the subscriber's rate limit (`Retry-After` says when to retry)", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn add_entry(
    State(app): State<AppState>,
    subscriber: Subscriber,
    Path(name): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<ListEntryView>), ApiError> {
    let actor = Actor::ApiKey(subscriber.key_id);
    let entry = lists::add_entry(
        &app.store,
        &app.scoring.lists,
        &subscriber.id,
        &name,
        &body,
        actor,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(entry)))
}

/// Remove an entry.
#[utoipa::path(delete, path = "/lists/{name}/entries/{value}", tag = "lists",
    params(ListName, EntryValue),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "An invalid list name", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such list, or no such entry on it", body = ErrorBody),
        (status = 429, description = "Over the subscriber's rate limit (`Retry-After` says when to retry)", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn remove_entry(
    State(app): State<AppState>,
    subscriber: Subscriber,
    Path((name, value)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let actor = Actor::ApiKey(subscriber.key_id);
    lists::remove_entry(
        &app.store,
        &app.scoring.lists,
        &subscriber.id,
        &name,
        &value,
        actor,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A subscriber's lists.
#[utoipa::path(get, path = "/admin/subscribers/{id}/lists", tag = "operator",
    params(SubscriberId),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = ListsPage),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn admin_all_lists(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<ListsPage>, ApiError> {
    existing(app.store.as_ref(), &id).await?;
    Ok(Json(lists::all(app.store.as_ref(), &id).await?))
}

/// One of a subscriber's lists with a page of its entries.
#[utoipa::path(get, path = "/admin/subscribers/{id}/lists/{name}", tag = "operator",
    params(SubscriberId, ListName, Page),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = ListDetail),
        (status = 400, description = "An invalid list name, cursor or limit", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber or list", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn admin_show_list(
    State(app): State<AppState>,
    _: Operator,
    Path((id, name)): Path<(String, String)>,
    Query(page): Query<Page>,
) -> Result<Json<ListDetail>, ApiError> {
    existing(app.store.as_ref(), &id).await?;
    Ok(Json(show(&app, &id, &name, page).await?))
}

/// Create a subscriber's list (`201`) or set its kind and description (`200`).
#[utoipa::path(put, path = "/admin/subscribers/{id}/lists/{name}", tag = "operator",
    params(SubscriberId, ListName),
    request_body(content = crate::http::bodies::ListInput),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Updated", body = ListView),
        (status = 201, description = "Created", body = ListView),
        (status = 400, description = "Invalid JSON, an invalid list name, or a missing or invalid field", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 409, description = "The list has entries of another kind, or the subscriber has 100 lists", body = ErrorBody),
        (status = 413, description = "Request body too large", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn admin_put_list(
    State(app): State<AppState>,
    _: Operator,
    Path((id, name)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<ListView>), ApiError> {
    existing(app.store.as_ref(), &id).await?;
    put(&app, &id, &name, &body, Actor::Operator).await
}

/// Delete a subscriber's list and its entries.
#[utoipa::path(delete, path = "/admin/subscribers/{id}/lists/{name}", tag = "operator",
    params(SubscriberId, ListName),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "An invalid list name", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber or list", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn admin_delete_list(
    State(app): State<AppState>,
    _: Operator,
    Path((id, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    existing(app.store.as_ref(), &id).await?;
    lists::delete(&app.store, &app.scoring.lists, &id, &name, Actor::Operator).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add an entry to a subscriber's list.
#[utoipa::path(post, path = "/admin/subscribers/{id}/lists/{name}/entries", tag = "operator",
    params(SubscriberId, ListName),
    request_body(content = crate::http::bodies::ListEntryInput),
    security(("admin_token" = [])),
    responses(
        (status = 201, body = ListEntryView),
        (status = 400, description = "Invalid JSON, an invalid list name, or a missing or invalid field (a value that does not fit the list's kind names `value`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber or list", body = ErrorBody),
        (status = 409, description = "The subscriber's lists hold 100000 entries", body = ErrorBody),
        (status = 413, description = "Request body too large", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn admin_add_entry(
    State(app): State<AppState>,
    _: Operator,
    Path((id, name)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, Json<ListEntryView>), ApiError> {
    existing(app.store.as_ref(), &id).await?;
    let entry = lists::add_entry(
        &app.store,
        &app.scoring.lists,
        &id,
        &name,
        &body,
        Actor::Operator,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(entry)))
}

/// Remove an entry from a subscriber's list.
#[utoipa::path(delete, path = "/admin/subscribers/{id}/lists/{name}/entries/{value}", tag = "operator",
    params(SubscriberId, ListName, EntryValue),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "An invalid list name", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber, list or entry", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn admin_remove_entry(
    State(app): State<AppState>,
    _: Operator,
    Path((id, name, value)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    existing(app.store.as_ref(), &id).await?;
    lists::remove_entry(
        &app.store,
        &app.scoring.lists,
        &id,
        &name,
        &value,
        Actor::Operator,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
