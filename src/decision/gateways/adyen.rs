//! Adyen: Standard webhooks (`notificationItems[].NotificationRequestItem`),
//! a bare `NotificationRequestItem`, Checkout `/payments` and Classic
//! `/authorise` responses. `additionalData` values are strings and each may
//! be missing (merchants enable them one by one).
//!
//! A webhook may carry several items: the first `AUTHORISATION` item is used,
//! else the first item.

use serde_json::{Map, Value};

use super::{is_card_brand, normalize_brand, path, text, Features, GatewayError};

pub(super) fn detect(obj: &Map<String, Value>) -> bool {
    obj.contains_key("notificationItems")
        || obj.contains_key("NotificationRequestItem")
        || (obj.contains_key("pspReference")
            && (obj.contains_key("eventCode") || obj.contains_key("resultCode")))
}

/// Adyen's exponents where they differ from ISO 4217
/// (FEATURE-PATHS.md). docs.adyen.com/development-resources/currency-codes
/// lists CLP 2 and CVE 0 as "differs from standard"; ISK 2 is the same page's
/// note (adyen/adyen-commercetools#1085); IDR 0 (same table) was not
/// re-checked here: FEATURE-PATHS names IDR without a value.
fn exponent(code: &str) -> Option<u8> {
    match code {
        "CLP" | "ISK" => Some(2),
        "CVE" | "IDR" => Some(0),
        _ => None,
    }
}

pub(super) fn extract(obj: &Map<String, Value>) -> Result<Features, GatewayError> {
    let mut f = Features::default();
    let item = if let Some(items) = obj.get("notificationItems") {
        let items = items.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
            GatewayError(
                "Adyen notification without items: expected notificationItems to be a \
                 non-empty array of {\"NotificationRequestItem\": {…}}"
                    .to_owned(),
            )
        })?;
        let auth = items
            .iter()
            .filter_map(unwrap_item)
            .find(|i| i.get("eventCode").and_then(Value::as_str) == Some("AUTHORISATION"));
        let item = auth
            .or_else(|| items.iter().find_map(unwrap_item))
            .ok_or_else(|| {
                GatewayError(
                    "Adyen notification items without NotificationRequestItem: expected \
                 notificationItems[].NotificationRequestItem"
                        .to_owned(),
                )
            })?;
        Some(item)
    } else if let Some(i) = obj.get("NotificationRequestItem") {
        Some(i.as_object().ok_or_else(|| {
            GatewayError("Adyen NotificationRequestItem is not an object".to_owned())
        })?)
    } else if obj.contains_key("eventCode") {
        Some(obj)
    } else {
        None
    };
    let empty = Map::new();
    match item {
        Some(i) => {
            let a = i
                .get("additionalData")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            f.money_minor(
                "Adyen",
                path(i, &["amount", "value"]),
                text(i, &["amount", "currency"]),
                exponent,
            )?;
            f.copy("gateway_event_code", i.get("eventCode"));
            f.set("gateway_success", flag(i.get("success")));
            f.copy("gateway_psp_reference", i.get("pspReference"));
            f.set_str(
                "external_transaction_number",
                text(i, &["merchantReference"]),
            );
            additional(&mut f, a, i.get("paymentMethod"));
            // `reason` of a successful AUTHORISATION is `authCode:last4:expiry`.
            let authorised = i.get("eventCode").and_then(Value::as_str) == Some("AUTHORISATION")
                && i.get("success").and_then(Value::as_str) == Some("true");
            if authorised {
                f.last4(text(i, &["reason"]).and_then(|r| r.split(':').nth(1).map(str::to_owned)));
            }
        }
        None => {
            let a = obj
                .get("additionalData")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            let (value, cur) = if obj.contains_key("amount") {
                (
                    path(obj, &["amount", "value"]),
                    text(obj, &["amount", "currency"]),
                )
            } else {
                (
                    a.get("authorisedAmountValue"),
                    text(a, &["authorisedAmountCurrency"]),
                )
            };
            f.money_minor("Adyen", value, cur, exponent)?;
            f.copy("gateway_result_code", obj.get("resultCode"));
            f.copy("gateway_refusal_reason", obj.get("refusalReason"));
            f.copy("gateway_psp_reference", obj.get("pspReference"));
            f.set_str(
                "external_transaction_number",
                text(obj, &["merchantReference"]),
            );
            f.copy(
                "gateway_fraud_score",
                path(obj, &["fraudResult", "accountScore"]),
            );
            additional(&mut f, a, None);
        }
    }
    Ok(f)
}

fn unwrap_item(v: &Value) -> Option<&Map<String, Value>> {
    v.get("NotificationRequestItem").and_then(Value::as_object)
}

fn flag(v: Option<&Value>) -> Option<Value> {
    match v? {
        Value::Bool(b) => Some(Value::Bool(*b)),
        Value::String(s) if s == "true" => Some(Value::Bool(true)),
        Value::String(s) if s == "false" => Some(Value::Bool(false)),
        _ => None,
    }
}

fn additional(f: &mut Features, a: &Map<String, Value>, item_method: Option<&Value>) {
    let get = |k: &str| text(a, &[k]);
    f.bin(get("cardBin"));
    f.bin(get("issuerBin"));
    f.bin(get("networkToken.bin"));
    f.last4(get("cardSummary"));
    let method =
        get("paymentMethod").or_else(|| item_method.and_then(Value::as_str).map(str::to_owned));
    f.copy(
        "gateway_payment_method",
        method.clone().map(Value::String).as_ref(),
    );
    for candidate in [
        method,
        get("cardPaymentMethod"),
        get("paymentMethodVariant"),
    ] {
        if let Some(b) = candidate.as_deref().and_then(normalize_brand) {
            if is_card_brand(&b) {
                f.set_str("card_brand", Some(b));
            }
        }
    }
    f.funding(get("fundingSource"));
    f.country("card_country", get("issuerCountry"));
    f.country("card_country", get("cardIssuingCountry"));
    f.set_str("email", get("shopperEmail"));
    f.set_str("ip_address", get("shopperIP"));
    f.country("billing_country", get("billingAddress.country"));
    f.country("shipping_country", get("deliveryAddress.country"));
    f.set_str("external_transaction_number", get("merchantReference"));
    f.set_str("external_transaction_number", get("merchantOrderReference"));
    f.set_str("gateway_shopper_reference", get("shopperReference"));
    f.set_str(
        "gateway_shopper_reference",
        get("recurring.shopperReference"),
    );
    f.set_str("gateway_shopper_country", get("shopperCountry"));
    f.set(
        "gateway_fraud_score",
        get("totalFraudScore")
            .and_then(|s| s.parse::<i64>().ok())
            .map(Value::from),
    );
    f.set_str("gateway_fraud_result_type", get("fraudResultType"));
    f.set_str("gateway_fraud_risk_level", get("fraudRiskLevel"));
    f.set(
        "gateway_fraud_manual_review",
        flag(a.get("fraudManualReview")),
    );
    f.set_str("gateway_avs_result", get("avsResult"));
    f.set_str("gateway_avs_result_raw", get("avsResultRaw"));
    f.set_str("gateway_cvc_result", get("cvcResult"));
    f.set_str("gateway_cvc_result_raw", get("cvcResultRaw"));
    f.set("gateway_3ds_offered", flag(a.get("threeDOffered")));
    f.set(
        "gateway_3ds_authenticated",
        flag(a.get("threeDAuthenticated")),
    );
    f.set("gateway_liability_shift", flag(a.get("liabilityShift")));
    f.set_str("gateway_eci", get("eci").filter(|e| e != "N/A"));
    f.set_str("gateway_sca_exemption", get("scaExemptionRequested"));
    f.set_str("gateway_card_issuing_bank", get("cardIssuingBank"));
}
