//! `POST /risk/feedback/gateway`: labels from a gateway's dispute or fraud
//! report.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Subscriber;
use super::error::ApiError;
use super::request::JsonObject;
use crate::service::gateway_labels::label_from_gateway;
use crate::state::AppState;
use crate::store::Actor;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(gateway_feedback))
}

/// The label a gateway's report set.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the values `label` takes
#[schema(rename_all = "lowercase")]
enum GatewayLabel {
    Fraud,
    Chargeback,
}

/// The decision a gateway's report labelled.
#[derive(Serialize, ToSchema)]
struct GatewayLabelled {
    /// The decision made when the payment was scored.
    decision_id: String,
    /// Its label now: `chargeback` for a dispute or chargeback, `fraud` for a
    /// fraud report (a decision labelled `chargeback` keeps it).
    #[schema(value_type = GatewayLabel)]
    label: &'static str,
}

/// Label a decision from a gateway's dispute or fraud report, sent as the
/// gateway sent it: a Stripe `charge.dispute.created` event or dispute
/// object, a Stripe `radar.early_fraud_warning` event or object, or an Adyen
/// `CHARGEBACK` notification. The decision is the one made when that payment
/// was scored, found by the payment's references (Stripe `charge` and
/// `payment_intent`; Adyen `originalReference` and `merchantReference`).
/// Forward the event from your backend with your API key: riskgate does not
/// check the gateway's webhook signature. The same report twice labels once.
#[utoipa::path(
    post,
    path = "/risk/feedback/gateway",
    tag = "scoring",
    request_body(content = crate::http::bodies::GatewayReport, description = "The gateway's raw dispute or fraud-report event"),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The labelled decision", body = GatewayLabelled),
        (status = 400, description = "Invalid JSON, or a body that is not a JSON object", body = crate::http::error::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = crate::http::error::ErrorBody),
        (status = 404, description = "No payment scored for this subscriber has the event's references", body = crate::http::error::ErrorBody),
        (status = 413, description = "Request body too large", body = crate::http::error::ErrorBody),
        (status = 422, description = "Not a dispute or fraud report riskgate recognizes, or one that names no payment (the error says what was expected)", body = crate::http::error::ErrorBody),
        (status = 429, description = "Over the subscriber's rate limit (`Retry-After` says when to retry)", body = crate::http::error::ErrorBody, headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Database unavailable, try again", body = crate::http::error::ErrorBody),
    )
)]
async fn gateway_feedback(
    State(app): State<AppState>,
    subscriber: Subscriber,
    JsonObject(body): JsonObject,
) -> Result<Json<GatewayLabelled>, ApiError> {
    let actor = Actor::ApiKey(subscriber.key_id.clone());
    let event = serde_json::Value::Object(body);
    let labelled = label_from_gateway(app.store.as_ref(), &subscriber.id, &actor, &event).await?;
    Ok(Json(GatewayLabelled {
        decision_id: labelled.decision_id,
        label: labelled.label.as_str(),
    }))
}
