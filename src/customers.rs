//! End customers as a subscriber sees them: `GET /customers/{user_id}` (the
//! profile ingest and scoring keep up to date) and `PATCH /customers/{user_id}`
//! (`trusted` / `blocked` / `normal`, which rules read as `customer.status`).

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::auth::Subscriber;
use crate::error::ApiError;
use crate::operator::rfc3339;
use crate::request::{required, JsonObject};
use crate::store::{now_millis, CustomerProfile, CustomerRow, CustomerStatus};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show_customer, update_customer))
}

#[derive(Serialize, ToSchema)]
pub struct DeviceView {
    visitor_id: String,
    first_seen: String,
    last_seen: String,
}

#[derive(Serialize, ToSchema)]
pub struct CardView {
    bin: String,
    last4: String,
    first_seen: String,
    last_seen: String,
}

#[derive(Serialize, ToSchema)]
pub struct DecisionCounts {
    total: i64,
    allow: i64,
    review: i64,
    block: i64,
    /// Decisions labelled `fraud` or `chargeback`.
    fraud_labels: i64,
}

#[derive(Serialize, ToSchema)]
pub struct AmountStats {
    count: i64,
    /// Sum and largest of the scored amounts, in major units of whatever
    /// currency each was in.
    total: f64,
    max: Option<f64>,
}

/// An end customer's profile.
#[derive(Serialize, ToSchema)]
pub struct CustomerView {
    user_id: String,
    /// `normal`, `trusted` or `blocked`.
    #[schema(example = "normal")]
    status: &'static str,
    first_seen: String,
    last_seen: String,
    status_updated_at: Option<String>,
    decisions: DecisionCounts,
    amounts: AmountStats,
    /// Most recently seen first (at most 100; `devices_total` counts all).
    devices: Vec<DeviceView>,
    devices_total: i64,
    /// Cards as BIN + last4, most recently seen first (at most 100).
    cards: Vec<CardView>,
    cards_total: i64,
}

fn view(row: &CustomerRow, profile: Option<&CustomerProfile>) -> CustomerView {
    CustomerView {
        user_id: row.user_id.clone(),
        status: row.status.as_str(),
        first_seen: rfc3339(row.first_seen),
        last_seen: rfc3339(row.last_seen),
        status_updated_at: row.status_updated_at.map(rfc3339),
        decisions: DecisionCounts {
            total: row.decisions_allow + row.decisions_review + row.decisions_block,
            allow: row.decisions_allow,
            review: row.decisions_review,
            block: row.decisions_block,
            fraud_labels: row.fraud_labels,
        },
        amounts: AmountStats {
            count: row.amount_count,
            total: row.amount_total,
            max: row.amount_max,
        },
        devices: profile
            .map(|p| {
                p.devices
                    .iter()
                    .map(|d| DeviceView {
                        visitor_id: d.visitor_id.clone(),
                        first_seen: rfc3339(d.first_seen),
                        last_seen: rfc3339(d.last_seen),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        devices_total: profile.map_or(0, |p| p.devices_total),
        cards: profile
            .map(|p| {
                p.cards
                    .iter()
                    .map(|c| CardView {
                        bin: c.bin.clone(),
                        last4: c.last4.clone(),
                        first_seen: rfc3339(c.first_seen),
                        last_seen: rfc3339(c.last_seen),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        cards_total: profile.map_or(0, |p| p.cards_total),
    }
}

fn not_found(user_id: &str) -> ApiError {
    ApiError::not_found(format!("Customer '{user_id}' not found"))
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
        (status = 401, description = "Missing or invalid API key", body = crate::app::ErrorBody),
        (status = 404, description = "Never seen by this subscriber", body = crate::app::ErrorBody),
    )
)]
async fn show_customer(
    State(app): State<AppState>,
    subscriber: Subscriber,
    Path(user_id): Path<String>,
) -> Result<Json<CustomerView>, ApiError> {
    let user_id = crate::scrub::masked_id(&user_id).into_owned();
    let profile = app
        .store
        .get_customer(&subscriber.id, &user_id)
        .await?
        .ok_or_else(|| not_found(&user_id))?;
    Ok(Json(view(&profile.customer, Some(&profile))))
}

/// Set an end customer's status: `trusted`, `blocked` or `normal`. A user not
/// seen yet is created, so a merchant can block an account before it pays.
#[utoipa::path(
    patch,
    path = "/customers/{user_id}",
    tag = "customers",
    params(("user_id" = String, Path, description = "The merchant's user id")),
    request_body(content = Object, description = "`{\"status\": \"trusted\" | \"blocked\" | \"normal\"}`"),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The updated profile", body = CustomerView),
        (status = 400, description = "Missing or invalid status", body = crate::app::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crate::app::ErrorBody),
    )
)]
async fn update_customer(
    State(app): State<AppState>,
    subscriber: Subscriber,
    Path(user_id): Path<String>,
    JsonObject(body): JsonObject,
) -> Result<Json<CustomerView>, ApiError> {
    let user_id = crate::scrub::masked_id(&user_id).into_owned();
    if user_id.chars().count() > 256 || user_id.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "user_id",
            "must be at most 256 characters without control characters",
        ));
    }
    let status = required(&body, "status")?
        .as_str()
        .and_then(CustomerStatus::parse)
        .ok_or_else(|| ApiError::invalid("status", "expected trusted, blocked or normal"))?;
    app.store
        .set_customer_status(&subscriber.id, &user_id, status, now_millis())
        .await?;
    let profile = app
        .store
        .get_customer(&subscriber.id, &user_id)
        .await?
        .ok_or_else(|| not_found(&user_id))?;
    Ok(Json(view(&profile.customer, Some(&profile))))
}
