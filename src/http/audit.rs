//! `GET /admin/subscribers/{id}/audit`: the subscriber's audit log.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Operator;
use super::error::{ApiError, ErrorBody};
use crate::service::audit::{audit_log, parse_cursor, parse_limit, AuditPage};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show_audit))
}

/// Read as text and checked here, so a bad value is a `400` that names it.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Entries per page: 1 to 200 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// The `next_cursor` of the page before.
    #[param(pattern = r"^[0-9]{1,15}\.[A-Za-z0-9_]{1,64}$")]
    cursor: Option<String>,
}

/// Read the subscriber's audit log: every change made to it (keys, provider
/// credentials, status, signing, rate limit, rules, lists, customer status,
/// labels), newest first, with who made it. Page with `cursor`.
#[utoipa::path(get, path = "/admin/subscribers/{id}/audit", tag = "operator",
    params(("id" = String, Path, description = "Subscriber id"), AuditQuery),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = AuditPage),
        (status = 400, description = "An invalid limit or cursor", body = ErrorBody),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
        (status = 404, description = "No such subscriber", body = ErrorBody),
        (status = 503, description = "Database unavailable, try again", body = ErrorBody),
    ))]
async fn show_audit(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    Query(query): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = parse_limit(query.limit.as_deref())?;
    let cursor = parse_cursor(query.cursor.as_deref())?;
    Ok(Json(
        audit_log(app.store.as_ref(), &id, limit, cursor).await?,
    ))
}
