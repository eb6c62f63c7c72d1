//! The end customers of a subscriber: their profiles, and the status a
//! merchant sets on them.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{ServiceError, ServiceResult};
use crate::clock::rfc3339;
use crate::decision::scrub::masked_id;
use crate::fields::required;
use crate::store::{now_millis, Actor, CustomerProfile, CustomerRow, CustomerStatus, Store};

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

fn not_found(user_id: &str) -> ServiceError {
    ServiceError::not_found(format!("Customer '{user_id}' not found"))
}

/// The customer's profile.
pub async fn show(
    store: &dyn Store,
    subscriber: &str,
    user_id: &str,
) -> ServiceResult<CustomerView> {
    let user_id = masked_id(user_id).into_owned();
    let profile = store
        .get_customer(subscriber, &user_id)
        .await?
        .ok_or_else(|| not_found(&user_id))?;
    Ok(view(&profile.customer, Some(&profile)))
}

/// Sets the customer's status; a user not seen yet is created, so a merchant
/// can block an account before it pays.
pub async fn set_status(
    store: &dyn Store,
    subscriber: &str,
    user_id: &str,
    body: &Map<String, Value>,
    actor: &Actor,
) -> ServiceResult<CustomerView> {
    let user_id = masked_id(user_id).into_owned();
    if user_id.chars().count() > 256 || user_id.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "user_id",
            "must be at most 256 characters without control characters",
        ));
    }
    let status = required(body, "status")?
        .as_str()
        .and_then(CustomerStatus::parse)
        .ok_or_else(|| ServiceError::invalid("status", "expected trusted, blocked or normal"))?;
    store
        .set_customer_status(subscriber, &user_id, status, now_millis(), actor)
        .await?;
    let profile = store
        .get_customer(subscriber, &user_id)
        .await?
        .ok_or_else(|| not_found(&user_id))?;
    Ok(view(&profile.customer, Some(&profile)))
}
