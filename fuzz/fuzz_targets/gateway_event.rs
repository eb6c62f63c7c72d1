//! A raw `gateway_event`, from its bytes through `decision::gateways::extract`.
//!
//! Invariants: extraction never panics; a refusal is a 422 message saying what
//! was expected; an accepted event yields only features in the shapes the
//! score request documents (amount a finite number >= 0, an active ISO 4217
//! currency, a BIN of 6-8 and a last4 of 4 digits, ISO alpha-2 countries, a
//! lower-case brand), and the same event inside a score body is then scored or
//! refused with a 400/422, never anything else.

#![no_main]

use libfuzzer_sys::fuzz_target;
use riskgate::decision::gateways::extract;
use riskgate::decision::reference::currency::currency;
use riskgate::decision::{parse_request, RequestError};
use serde_json::{json, Value};

fn digits(v: &Value, len: std::ops::RangeInclusive<usize>) -> bool {
    v.as_str()
        .is_some_and(|s| len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()))
}

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let extracted = match extract(&event) {
        Ok(extracted) => extracted,
        Err(err) => {
            assert!(!err.0.trim().is_empty());
            return;
        }
    };
    assert!(matches!(
        extracted.gateway,
        "stripe" | "adyen" | "checkout" | "braintree" | "square"
    ));
    let f = &extracted.features;
    if let Some(amount) = f.get("transaction_amount") {
        let n = amount.as_f64().expect("a numeric amount");
        assert!(n.is_finite() && n >= 0.0, "{amount}");
        assert!(f.contains_key("currency"), "an amount without a currency");
    }
    if let Some(code) = f.get("currency") {
        let code = code.as_str().expect("a string currency");
        let known = currency(code).expect("an ISO 4217 currency");
        assert_eq!(known.code, code);
    }
    if let Some(minor) = f.get("gateway_amount_minor") {
        assert!(minor.as_i64().is_some_and(|m| m >= 0), "{minor}");
    }
    if let Some(bin) = f.get("bin") {
        assert!(digits(bin, 6..=8), "bin {bin}");
    }
    if let Some(last4) = f.get("last4") {
        assert!(digits(last4, 4..=4), "last4 {last4}");
    }
    for key in ["card_country", "billing_country", "shipping_country"] {
        if let Some(c) = f.get(key) {
            let c = c.as_str().expect("a string country");
            assert!(
                c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()),
                "{key} {c:?}"
            );
        }
    }
    if let Some(brand) = f.get("card_brand") {
        let brand = brand.as_str().expect("a string brand");
        assert!(
            !brand.is_empty() && brand == brand.to_ascii_lowercase(),
            "{brand:?}"
        );
    }

    let body = json!({"request_id": "r1", "subscriber_id": "s1", "gateway_event": event});
    let Value::Object(body) = body else {
        unreachable!("an object literal")
    };
    match parse_request(body, true) {
        Ok(tx) => assert_eq!(tx.input.gateway.as_deref(), Some(extracted.gateway)),
        Err(RequestError::Invalid(m) | RequestError::Unprocessable(m)) => {
            assert!(!m.trim().is_empty())
        }
    }
});
