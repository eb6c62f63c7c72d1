//! Checkout.com: events/webhooks (`type` + `data`) and `GET /payments/{id}`
//! responses (the payment at the root). The card's last four digits are
//! `source.last_4` in webhooks and `source.last4` in the payments API.

use serde_json::{Map, Value};

use super::{path, text, Features, GatewayError};

fn is_payment_id(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str)
        .is_some_and(|s| s.starts_with("pay_"))
}

pub(super) fn detect(obj: &Map<String, Value>) -> bool {
    let payment = |p: &Map<String, Value>| {
        is_payment_id(p.get("id")) && (p.contains_key("source") || p.contains_key("currency"))
    };
    if payment(obj) {
        return true;
    }
    let event = obj.get("type").is_some_and(Value::is_string);
    let data = obj.get("data").and_then(Value::as_object);
    event && data.is_some_and(|d| payment(d) || d.get("source").is_some_and(Value::is_object))
}

pub(super) fn extract(obj: &Map<String, Value>) -> Result<Features, GatewayError> {
    let mut f = Features::default();
    let p = match obj.get("data").and_then(Value::as_object) {
        Some(d) if obj.get("type").is_some_and(Value::is_string) => {
            f.copy("gateway_event_type", obj.get("type"));
            f.copy("gateway_event_id", obj.get("id"));
            f.copy("gateway_event_version", obj.get("version"));
            d
        }
        _ => obj,
    };
    f.money_minor(
        "Checkout.com",
        p.get("amount"),
        text(p, &["currency"]),
        |_| None,
    )?;
    let src = p.get("source").and_then(Value::as_object);
    if let Some(s) = src {
        f.bin(text(s, &["bin"]));
        f.last4(text(s, &["last_4"]));
        f.last4(text(s, &["last4"]));
        f.brand(text(s, &["scheme"]));
        f.funding(text(s, &["card_type"]));
        f.country("card_country", text(s, &["issuer_country"]));
        f.country("billing_country", text(s, &["billing_address", "country"]));
        f.copy("gateway_card_category", s.get("card_category"));
        f.copy("gateway_card_issuer", s.get("issuer"));
        f.copy("gateway_avs_check", s.get("avs_check"));
        f.copy("gateway_cvv_check", s.get("cvv_check"));
    }
    f.set_str("email", text(p, &["customer", "email"]));
    f.set_str("ip_address", text(p, &["payment_ip"]));
    f.country(
        "shipping_country",
        text(p, &["shipping", "address", "country"]),
    );
    f.set_str("external_transaction_number", text(p, &["reference"]));
    f.copy("gateway_payment_id", p.get("id"));
    f.copy("gateway_customer_id", path(p, &["customer", "id"]));
    f.copy("gateway_status", p.get("status"));
    f.copy("gateway_approved", p.get("approved"));
    f.copy("gateway_response_code", p.get("response_code"));
    f.copy("gateway_response_summary", p.get("response_summary"));
    f.copy("gateway_risk_flagged", path(p, &["risk", "flagged"]));
    f.copy("gateway_risk_score", path(p, &["risk", "score"]));
    f.copy("gateway_3ds_enrolled", path(p, &["3ds", "enrolled"]));
    f.copy(
        "gateway_3ds_authentication_response",
        path(p, &["3ds", "authentication_response"]),
    );
    f.copy("gateway_3ds_version", path(p, &["3ds", "version"]));
    f.copy("gateway_3ds_challenged", path(p, &["3ds", "challenged"]));
    f.copy("gateway_3ds_exemption", path(p, &["3ds", "exemption"]));
    f.copy("gateway_eci", p.get("eci").or(path(p, &["3ds", "eci"])));
    Ok(f)
}
