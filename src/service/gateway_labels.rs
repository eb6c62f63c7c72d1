//! Labels from gateways: a dispute or fraud report a gateway sent about a
//! payment labels the decision made when that payment was scored, found by
//! the payment references recorded then (see
//! [`GatewayRefs`](crate::store::GatewayRefs)).

use serde_json::{json, Value};

use super::{ServiceError, ServiceResult};
use crate::decision::gateways::disputes::{self, ReportKind};
use crate::decision::scrub::masked_id;
use crate::store::{now_millis, Actor, Label, Store};

/// The decision a report labelled, and its label now.
#[derive(Debug, Clone)]
pub struct GatewayLabelled {
    pub decision_id: String,
    pub label: Label,
}

/// Reads a gateway's dispute or fraud report, finds the subscriber's decision
/// for the payment it names, and labels it: `chargeback` for a dispute or
/// chargeback, `fraud` for a fraud report. A fraud report does not replace a
/// `chargeback` the decision has already (the dispute says more: the money
/// is gone). The same report twice labels once.
pub async fn label_from_gateway(
    store: &dyn Store,
    subscriber: &str,
    actor: &Actor,
    event: &Value,
) -> ServiceResult<GatewayLabelled> {
    let report = disputes::parse(event).map_err(|e| ServiceError::unprocessable(e.0))?;
    let row = store
        .decision_by_reference(subscriber, &report.references)
        .await?
        .ok_or_else(|| {
            let named: Vec<String> = report
                .references
                .iter()
                .map(|r| format!("'{}'", masked_id(r)))
                .collect();
            ServiceError::not_found(format!(
                "No scored payment has the {} reference {}",
                gateway_name(report.gateway),
                named.join(" or ")
            ))
        })?;
    let label = match report.kind {
        ReportKind::Chargeback => Label::Chargeback,
        ReportKind::Fraud if row.label == Some(Label::Chargeback) => Label::Chargeback,
        ReportKind::Fraud => Label::Fraud,
    };
    let context = json!({
        "source": "gateway",
        "gateway": report.gateway,
        "event": masked_id(&report.event),
        "dispute_id": report.id.as_deref().map(masked_id),
        "reason": report.reason.as_deref().map(masked_id),
    });
    let labelled = store
        .label_decision(subscriber, &row.id, label, now_millis(), actor, context)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("Decision '{}' not found", row.id)))?;
    tracing::info!(
        subscriber_id = %subscriber,
        decision_id = %labelled.id,
        gateway = report.gateway,
        label = label.as_str(),
        "decision labelled from a gateway report"
    );
    Ok(GatewayLabelled {
        decision_id: labelled.id,
        label: labelled.label.unwrap_or(label),
    })
}

fn gateway_name(gateway: &str) -> &'static str {
    match gateway {
        "stripe" => "Stripe",
        "adyen" => "Adyen",
        _ => "gateway",
    }
}
