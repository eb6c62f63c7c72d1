//! Square: `payment.created` / `payment.updated` events
//! (`data.object.payment`) and CreatePayment / GetPayment responses
//! (`payment` at the root). Square sends no issuing country and no IP.

use serde_json::{Map, Value};

use super::{path, text, Features, GatewayError};

fn payment(obj: &Map<String, Value>) -> Option<&Map<String, Value>> {
    let p = obj
        .get("payment")
        .or_else(|| path(obj, &["data", "object", "payment"]))
        .and_then(Value::as_object)?;
    let looks = p.contains_key("amount_money")
        || p.contains_key("card_details")
        || p.contains_key("source_type");
    looks.then_some(p)
}

pub(super) fn detect(obj: &Map<String, Value>) -> bool {
    payment(obj).is_some()
}

pub(super) fn extract(obj: &Map<String, Value>) -> Result<Features, GatewayError> {
    let mut f = Features::default();
    let Some(p) = payment(obj) else {
        return Err(GatewayError(
            "Square payment not found: expected data.object.payment or payment".to_owned(),
        ));
    };
    f.copy("gateway_event_type", obj.get("type"));
    f.copy("gateway_event_id", obj.get("event_id"));
    f.money_minor(
        "Square",
        path(p, &["amount_money", "amount"]),
        text(p, &["amount_money", "currency"]),
        |_| None,
    )?;
    if let Some(card) = path(p, &["card_details", "card"]).and_then(Value::as_object) {
        f.bin(text(card, &["bin"]));
        f.last4(text(card, &["last_4"]));
        f.brand(text(card, &["card_brand"]));
        if text(card, &["prepaid_type"]).as_deref() == Some("PREPAID") {
            f.funding(Some("prepaid".to_owned()));
        }
        f.funding(text(card, &["card_type"]));
    }
    f.set_str("email", text(p, &["buyer_email_address"]));
    f.country("billing_country", text(p, &["billing_address", "country"]));
    f.country(
        "shipping_country",
        text(p, &["shipping_address", "country"]),
    );
    f.set_str("external_transaction_number", text(p, &["reference_id"]));
    f.set_str("external_transaction_number", text(p, &["order_id"]));
    f.set_str("external_transaction_number", text(p, &["id"]));
    f.copy("gateway_payment_id", p.get("id"));
    f.copy("gateway_order_id", p.get("order_id"));
    f.copy("gateway_customer_id", p.get("customer_id"));
    f.copy("gateway_status", p.get("status"));
    f.copy("gateway_card_status", path(p, &["card_details", "status"]));
    f.copy(
        "gateway_entry_method",
        path(p, &["card_details", "entry_method"]),
    );
    f.copy(
        "gateway_avs_status",
        path(p, &["card_details", "avs_status"]),
    );
    f.copy(
        "gateway_cvv_status",
        path(p, &["card_details", "cvv_status"]),
    );
    f.copy(
        "gateway_risk_level",
        path(p, &["risk_evaluation", "risk_level"]),
    );
    f.copy("gateway_source_type", p.get("source_type"));
    Ok(f)
}
