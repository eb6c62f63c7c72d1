//! Stripe: events (`"object": "event"`) and bare charge, payment_intent,
//! payment_method and review objects.
//!
//! A `payment_intent` of API versions before 2022-11-15 carries its charges
//! (`charges.data[0]`, card details inside); from 2022-11-15 on only the
//! `latest_charge` id, so card features come from the `charge.*` event.

use serde_json::{Map, Value};

use super::{path, text, Features, GatewayError};

const KINDS: &[&str] = &["charge", "payment_intent", "payment_method", "review"];

pub(super) fn detect(obj: &Map<String, Value>) -> bool {
    matches!(obj.get("object").and_then(Value::as_str), Some(k) if k == "event" || KINDS.contains(&k))
}

/// Stripe's exponents where they differ from ISO 4217: its zero-decimal
/// currencies, and ISK sent with two decimals.
fn exponent(code: &str) -> Option<u8> {
    match code {
        "BIF" | "CLP" | "DJF" | "GNF" | "JPY" | "KMF" | "KRW" | "MGA" | "PYG" | "RWF" | "UGX"
        | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => Some(0),
        "BHD" | "JOD" | "KWD" | "OMR" | "TND" => Some(3),
        "ISK" | "HUF" | "TWD" => Some(2),
        _ => None,
    }
}

pub(super) fn extract(obj: &Map<String, Value>) -> Result<Features, GatewayError> {
    let mut f = Features::default();
    let root = if obj.get("object").and_then(Value::as_str) == Some("event") {
        f.copy("gateway_event_type", obj.get("type"));
        f.copy("gateway_api_version", obj.get("api_version"));
        f.copy("gateway_event_id", obj.get("id"));
        path(obj, &["data", "object"])
            .and_then(Value::as_object)
            .ok_or_else(|| {
                GatewayError(
                "Stripe event without data.object: expected a charge.* or payment_intent.* event"
                    .to_owned(),
            )
            })?
    } else {
        obj
    };
    let kind = root.get("object").and_then(Value::as_str).unwrap_or("");
    f.set_str("gateway_object", Some(kind.to_owned()));
    match kind {
        "charge" => {
            f.money_minor(
                "Stripe",
                root.get("amount"),
                text(root, &["currency"]),
                exponent,
            )?;
            charge(&mut f, root);
        }
        "payment_intent" => {
            f.money_minor(
                "Stripe",
                root.get("amount"),
                text(root, &["currency"]),
                exponent,
            )?;
            f.copy("gateway_payment_intent_id", root.get("id"));
            f.copy("gateway_status", root.get("status"));
            f.copy("gateway_latest_charge", root.get("latest_charge"));
            f.copy(
                "gateway_failure_code",
                path(root, &["last_payment_error", "code"]),
            );
            f.copy(
                "gateway_decline_code",
                path(root, &["last_payment_error", "decline_code"]),
            );
            let first_charge = path(root, &["charges", "data"])
                .and_then(Value::as_array)
                .and_then(|d| d.first())
                .and_then(Value::as_object);
            if let Some(c) = first_charge {
                charge(&mut f, c);
            }
            f.set_str(
                "external_transaction_number",
                text(root, &["metadata", "order_id"]),
            );
            f.set_str("external_transaction_number", text(root, &["id"]));
            f.set_str("email", text(root, &["receipt_email"]));
            f.country(
                "shipping_country",
                text(root, &["shipping", "address", "country"]),
            );
            f.copy("gateway_customer_id", root.get("customer"));
        }
        "payment_method" => {
            if let Some(card) = root.get("card").and_then(Value::as_object) {
                card_fields(&mut f, card);
            }
            f.set_str("email", text(root, &["billing_details", "email"]));
            f.country(
                "billing_country",
                text(root, &["billing_details", "address", "country"]),
            );
            f.copy("gateway_payment_method_id", root.get("id"));
            f.copy("gateway_customer_id", root.get("customer"));
        }
        "review" => {
            f.set_str("ip_address", text(root, &["ip_address"]));
            f.country(
                "gateway_ip_country",
                text(root, &["ip_address_location", "country"]),
            );
            f.copy("gateway_review_id", root.get("id"));
            f.copy("gateway_review_reason", root.get("reason"));
            f.copy("gateway_review_opened_reason", root.get("opened_reason"));
            f.copy("gateway_charge_id", root.get("charge"));
            f.copy("gateway_payment_intent_id", root.get("payment_intent"));
        }
        other => {
            let what = if other.is_empty() { "no object" } else { other };
            return Err(GatewayError(format!(
                "Stripe event carries {what:?}: expected a charge, payment_intent, \
                 payment_method or review (charge.*, payment_intent.* or review.* events)"
            )));
        }
    }
    Ok(f)
}

/// A Charge (`data.object` of `charge.*`, or `charges.data[0]` of an old
/// PaymentIntent).
fn charge(f: &mut Features, c: &Map<String, Value>) {
    if let Some(card) = path(c, &["payment_method_details", "card"]).and_then(Value::as_object) {
        card_fields(f, card);
    }
    // Legacy sources (`card_…`, `src_…`) keep their card at `source`.
    if let Some(src) = c.get("source").and_then(Value::as_object) {
        if src.get("object").and_then(Value::as_str) == Some("card") {
            card_fields(f, src);
        }
    }
    f.set_str("email", text(c, &["billing_details", "email"]));
    f.set_str("email", text(c, &["receipt_email"]));
    f.country(
        "billing_country",
        text(c, &["billing_details", "address", "country"]),
    );
    f.country(
        "shipping_country",
        text(c, &["shipping", "address", "country"]),
    );
    f.set_str(
        "external_transaction_number",
        text(c, &["metadata", "order_id"]),
    );
    f.set_str("external_transaction_number", text(c, &["payment_intent"]));
    f.set_str("external_transaction_number", text(c, &["id"]));
    f.copy("gateway_charge_id", c.get("id"));
    f.copy("gateway_payment_intent_id", c.get("payment_intent"));
    f.copy("gateway_customer_id", c.get("customer"));
    f.copy("gateway_status", c.get("status"));
    f.copy("gateway_risk_score", path(c, &["outcome", "risk_score"]));
    f.copy("gateway_risk_level", path(c, &["outcome", "risk_level"]));
    f.copy("gateway_outcome_type", path(c, &["outcome", "type"]));
    f.copy("gateway_outcome_reason", path(c, &["outcome", "reason"]));
    f.copy(
        "gateway_network_status",
        path(c, &["outcome", "network_status"]),
    );
    f.copy("gateway_failure_code", c.get("failure_code"));
}

/// `payment_method_details.card`, a PaymentMethod's `card`, or a legacy
/// card source.
fn card_fields(f: &mut Features, card: &Map<String, Value>) {
    // `iin` is "for internal use only": usually absent.
    f.bin(text(card, &["iin"]));
    f.last4(text(card, &["last4"]));
    f.brand(text(card, &["brand"]));
    f.funding(text(card, &["funding"]));
    f.country("card_country", text(card, &["country"]));
    f.copy("gateway_card_network", card.get("network"));
    f.copy(
        "gateway_cvc_check",
        path(card, &["checks", "cvc_check"]).or(card.get("cvc_check")),
    );
    f.copy(
        "gateway_avs_line1_check",
        path(card, &["checks", "address_line1_check"]).or(card.get("address_line1_check")),
    );
    f.copy(
        "gateway_avs_postal_code_check",
        path(card, &["checks", "address_postal_code_check"]).or(card.get("address_zip_check")),
    );
    f.copy(
        "gateway_3ds_result",
        path(card, &["three_d_secure", "result"]),
    );
    f.copy(
        "gateway_3ds_flow",
        path(card, &["three_d_secure", "authentication_flow"]),
    );
    f.copy(
        "gateway_3ds_version",
        path(card, &["three_d_secure", "version"]),
    );
    f.copy("gateway_wallet", path(card, &["wallet", "type"]));
}
