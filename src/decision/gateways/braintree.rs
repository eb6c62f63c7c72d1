//! Braintree: a transaction in its JSON form (the Node SDK's camelCase
//! object), wrapped (`{"transaction": {…}}`) or bare. Braintree sends no
//! webhook at authorisation, so subscribers forward the transaction the API
//! returned; its XML form is not accepted (see the module docs).
//!
//! The amount is a decimal string in major units (`"1.00"`).

use serde_json::{Map, Value};

use super::{path, text, Features, GatewayError};

fn transaction(obj: &Map<String, Value>) -> Option<&Map<String, Value>> {
    let t = obj
        .get("transaction")
        .and_then(Value::as_object)
        .unwrap_or(obj);
    let looks = t.contains_key("currencyIsoCode")
        || t.get("creditCard").is_some_and(Value::is_object)
        || t.contains_key("paymentInstrumentType");
    looks.then_some(t)
}

pub(super) fn detect(obj: &Map<String, Value>) -> bool {
    transaction(obj).is_some()
}

pub(super) fn extract(obj: &Map<String, Value>) -> Result<Features, GatewayError> {
    let mut f = Features::default();
    let Some(t) = transaction(obj) else {
        return Err(GatewayError(
            "Braintree transaction not found: expected {\"transaction\": {\"amount\", \
             \"currencyIsoCode\", \"creditCard\", …}}"
                .to_owned(),
        ));
    };
    f.money_major(
        "Braintree",
        text(t, &["amount"]),
        text(t, &["currencyIsoCode"]),
    )?;
    if let Some(c) = t.get("creditCard").and_then(Value::as_object) {
        f.bin(text(c, &["bin"]));
        f.last4(text(c, &["last4"]));
        f.brand(text(c, &["cardType"]));
        let yes = |k: &str| match text(c, &[k]).map(|v| v.to_ascii_lowercase()).as_deref() {
            Some("yes") => Some(true),
            Some("no") => Some(false),
            _ => None,
        };
        // Credit only by inference: neither prepaid nor debit, both known.
        let funding = match (yes("prepaid"), yes("debit")) {
            (Some(true), _) => Some("prepaid"),
            (_, Some(true)) => Some("debit"),
            (Some(false), Some(false)) => Some("credit"),
            _ => None,
        };
        f.funding(funding.map(str::to_owned));
        f.country("card_country", text(c, &["countryOfIssuance"]));
        f.copy("gateway_card_issuer", c.get("issuingBank"));
        f.copy("gateway_card_commercial", c.get("commercial"));
        f.copy("gateway_customer_location", c.get("customerLocation"));
    }
    f.set_str("email", text(t, &["customer", "email"]));
    f.country(
        "billing_country",
        text(t, &["billing", "countryCodeAlpha2"]),
    );
    f.country(
        "shipping_country",
        text(t, &["shipping", "countryCodeAlpha2"]),
    );
    f.set_str("external_transaction_number", text(t, &["orderId"]));
    f.set_str("external_transaction_number", text(t, &["id"]));
    f.copy("gateway_transaction_id", t.get("id"));
    f.copy("gateway_customer_id", path(t, &["customer", "id"]));
    f.copy("gateway_status", t.get("status"));
    f.copy(
        "gateway_processor_response_code",
        t.get("processorResponseCode"),
    );
    f.copy("gateway_rejection_reason", t.get("gatewayRejectionReason"));
    f.copy(
        "gateway_avs_postal_code_response",
        t.get("avsPostalCodeResponseCode"),
    );
    f.copy(
        "gateway_avs_street_address_response",
        t.get("avsStreetAddressResponseCode"),
    );
    f.copy("gateway_avs_error_response", t.get("avsErrorResponseCode"));
    f.copy("gateway_cvv_response", t.get("cvvResponseCode"));
    f.copy("gateway_risk_decision", path(t, &["riskData", "decision"]));
    f.copy("gateway_risk_id", path(t, &["riskData", "id"]));
    f.copy(
        "gateway_3ds_status",
        path(t, &["threeDSecureInfo", "status"]),
    );
    f.copy(
        "gateway_liability_shift",
        path(t, &["threeDSecureInfo", "liabilityShifted"]),
    );
    Ok(f)
}
