//! Reading a `POST /risk/bin/score` body into validated transaction features:
//! identifiers at the top level or inside `payload`, features from `payload`
//! and/or a raw `gateway_event`, card numbers cut down to BIN and last4, BIN
//! data added. Pure: no I/O.

use std::net::IpAddr;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::features::{is_computed_field, is_request_field, Code, Input};
use super::gateways;
use super::reference::{bins, currency};
use super::scrub;

/// Amounts above this are refused: beyond it, minor units overflow 64 bits for
/// 4-digit currencies and the response's JSON number would round.
const MAX_AMOUNT: i64 = 100_000_000_000_000;
const MAX_ID: usize = 256;
const MAX_TEXT: usize = 512;
const MAX_URL: usize = 2048;

/// Why a body cannot be scored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// `400`: a missing or malformed field (the message names it).
    Invalid(String),
    /// `422`: a well-formed `gateway_event` that cannot be used.
    Unprocessable(String),
}

impl RequestError {
    fn missing(field: &str) -> Self {
        Self::Invalid(format!("Missing '{field}' in request body"))
    }

    fn invalid(field: &str, why: &str) -> Self {
        Self::Invalid(format!("Invalid '{field}': {why}"))
    }
}

type Result<T> = std::result::Result<T, RequestError>;

/// A validated score request: the request's part of the decision's input
/// (the device, velocity and customer parts are added by
/// [`build_input`](super::build_input)), and what the request asks beside it.
#[derive(Debug, Clone)]
pub struct Transaction {
    pub input: Input,
    /// The currency's minor-unit exponent (ISO 4217).
    pub exponent: u32,
    pub callback_url: Option<String>,
    /// The payment's references, to find its decision again when the gateway
    /// reports a dispute or fraud: the gateway event's (Stripe charge and
    /// payment intent ids, Adyen pspReference and merchantReference), then
    /// the request's `external_transaction_number`. Distinct, most specific
    /// first.
    pub references: Vec<String>,
    /// The `subscriber_id` inside `payload` when one also stands at the top
    /// level (the top-level one is `input.subscriber_id`): both must name the
    /// key's subscriber, or a body could claim one tenant and carry another's.
    pub payload_subscriber_id: Option<Value>,
    /// The whole body as JSON, card numbers masked: what idempotency compares
    /// (empty unless asked for).
    canonical: String,
}

impl Transaction {
    /// The request body as JSON with card numbers masked; equal bodies give
    /// equal fingerprints whatever their key order or spacing.
    pub fn fingerprint(&self) -> &str {
        &self.canonical
    }
}

/// Reads and validates a score request body. Card numbers anywhere in it are
/// masked first, so nothing later (input, storage, logs) sees them.
pub fn parse(body: Map<String, Value>) -> Result<Transaction> {
    parse_request(body, false)
}

/// [`parse`], also keeping the body's [`Transaction::fingerprint`] when
/// `fingerprint` is set (what an `Idempotency-Key` compares) or the body asks
/// for a callback (whose re-score reads it again). Otherwise it is skipped:
/// serializing a large gateway event costs more than the rest of the parse.
pub fn parse_request(mut body: Map<String, Value>, fingerprint: bool) -> Result<Transaction> {
    let scrubbed = {
        let mut found = Vec::new();
        for (name, value) in body.iter_mut() {
            for mut pan in scrub::scrub_value(value) {
                pan.path = if pan.path.is_empty() {
                    name.clone()
                } else if pan.path.starts_with('[') {
                    format!("{name}{}", pan.path)
                } else {
                    format!("{name}.{}", pan.path)
                };
                found.push(pan);
            }
        }
        found
    };
    let wants_callback = body.contains_key("callback_url")
        || body
            .get("payload")
            .is_some_and(|p| p.get("callback_url").is_some());
    let canonical = if fingerprint || wants_callback {
        serde_json::to_string(&body).unwrap_or_default()
    } else {
        String::new()
    };

    let payload = match body.remove("payload") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => return Err(RequestError::invalid("payload", "expected an object")),
    };
    let gateway_event = body.remove("gateway_event").filter(|v| !v.is_null());
    if payload.is_none() && gateway_event.is_none() {
        return Err(RequestError::Invalid(
            "Request must contain 'payload' or 'gateway_event'".into(),
        ));
    }
    let mut payload = payload.unwrap_or_default();

    let payload_subscriber_id = if body.get("subscriber_id").is_some_and(|v| !v.is_null()) {
        payload.remove("subscriber_id").filter(|v| !v.is_null())
    } else {
        None
    };
    // Identifiers: top level first, else inside the payload.
    let mut take_id = |name: &str| {
        body.remove(name)
            .filter(|v| !v.is_null())
            .or_else(|| payload.remove(name).filter(|v| !v.is_null()))
    };
    let subscriber_id =
        take_id("subscriber_id").ok_or_else(|| RequestError::missing("subscriber_id"))?;
    let request_id_value =
        take_id("request_id").ok_or_else(|| RequestError::missing("request_id"))?;
    let callback_value = take_id("callback_url");
    let request_id = identifier(request_id_value, "request_id")?;
    let callback_url = callback_value.map(|v| callback_url(&v)).transpose()?;

    // Features: the gateway's first, the payload's over them (the merchant
    // knows its own ids and may correct what the event lacks).
    let (gateway, mut features, mut references) = match gateway_event {
        Some(event) => {
            let extracted =
                gateways::extract(&event).map_err(|e| RequestError::Unprocessable(e.0))?;
            (
                Some(extracted.gateway),
                extracted.features,
                extracted.references,
            )
        }
        None => (None, Map::new(), Vec::new()),
    };
    let from_gateway_amount = features.contains_key("transaction_amount");
    // A null payload field counts as absent, here and among the extras.
    payload.retain(|_, value| !value.is_null());
    if features.is_empty() {
        features = payload;
    } else {
        for (name, value) in payload {
            features.insert(name, value);
        }
    }

    let amount_value = match features.remove("transaction_amount") {
        Some(v) => v,
        None if gateway.is_some() && !from_gateway_amount && !features.contains_key("currency") => {
            return Err(RequestError::Unprocessable(
                "gateway_event carries no amount (for example a Stripe review or payment_method, \
                 an Adyen 3-D Secure redirect): send 'transaction_amount' and 'currency' in \
                 'payload' beside it"
                    .into(),
            ))
        }
        None => return Err(RequestError::missing("transaction_amount")),
    };
    let amount = amount(&amount_value)?;
    let currency_value = features
        .remove("currency")
        .ok_or_else(|| RequestError::missing("currency"))?;
    let Value::String(code) = &currency_value else {
        return Err(RequestError::invalid(
            "currency",
            "expected an ISO 4217 code such as \"USD\"",
        ));
    };
    let currency = currency::currency(code).ok_or_else(|| {
        RequestError::invalid(
            "currency",
            &format!("'{}' is not an ISO 4217 currency code", clip(code)),
        )
    })?;
    let exponent = u32::from(currency.exponent.unwrap_or(0));
    let amount_minor = minor_units(amount, exponent)?;

    let mut bin = optional(&mut features, "bin", digits_field(6, 8, "bin"))?;
    let mut last4 = optional(&mut features, "last4", digits_field(4, 4, "last4"))?;
    if let Some(pan) = scrubbed.first() {
        bin.get_or_insert_with(|| pan.bin.clone());
        last4.get_or_insert_with(|| pan.last4.clone());
    }
    let mut card_brand = optional(&mut features, "card_brand", lower_text("card_brand"))?;
    let mut card_funding = optional(&mut features, "card_funding", lower_text("card_funding"))?;
    let mut card_country = optional(&mut features, "card_country", country("card_country"))?;
    let user_id = optional(&mut features, "user_id", |v| identifier(v, "user_id"))?;
    let session_id = optional(&mut features, "session_id", |v| identifier(v, "session_id"))?;
    let external_transaction_number =
        optional(&mut features, "external_transaction_number", |v| {
            identifier(v, "external_transaction_number")
        })?;
    gateways::push_reference(
        &mut references,
        external_transaction_number
            .as_deref()
            .and_then(|n| gateways::reference(&Value::String(n.to_owned()))),
    );
    let email = optional(&mut features, "email", |v| plain_text(v, "email", MAX_TEXT))?;
    let email_domain = email
        .as_deref()
        .and_then(|e| e.rsplit_once('@'))
        .map(|(_, domain)| domain.trim().to_ascii_lowercase())
        .filter(|d| !d.is_empty());
    let ip_address = optional(&mut features, "ip_address", ip)?;
    let billing_country = optional(&mut features, "billing_country", country("billing_country"))?;
    let shipping_country = optional(
        &mut features,
        "shipping_country",
        country("shipping_country"),
    )?;

    // The BIN table fills what neither the merchant nor the gateway said.
    let info = bin.as_deref().and_then(bins::lookup);
    let mut card_prepaid = card_funding.as_deref() == Some("prepaid");
    let (mut card_issuer, mut card_category, mut bin_source) = (None, None, None);
    if let Some(info) = info {
        card_brand.get_or_insert_with(|| info.brand.to_owned());
        if let Some(funding) = info.funding_label() {
            card_funding.get_or_insert_with(|| funding.to_owned());
        }
        if let Some(country) = info.country {
            card_country.get_or_insert_with(|| country.to_owned());
        }
        card_prepaid |= info.prepaid;
        card_issuer = info.issuer.map(str::to_owned);
        card_category = info.category.map(str::to_owned);
        bin_source = Some(match info.source {
            bins::BinSource::Table => "table",
            bins::BinSource::IinRange => "iin_range",
        });
    }

    let mut extra = Map::new();
    for (name, value) in features {
        if is_request_field(&name) {
            continue;
        }
        if is_computed_field(&name) {
            // A payload's own `extra_<name>` keeps its value; this one yields.
            extra.entry(format!("extra_{name}")).or_insert(value);
        } else {
            extra.insert(name, value);
        }
    }

    Ok(Transaction {
        input: Input {
            subscriber_id,
            request_id,
            transaction_amount: amount,
            amount,
            amount_minor,
            currency: Code::Borrowed(currency.code),
            bin,
            last4,
            card_brand,
            card_funding,
            card_country,
            card_prepaid,
            card_issuer,
            card_category,
            bin_source: bin_source.map(Code::Borrowed),
            user_id,
            session_id,
            external_transaction_number,
            email,
            email_domain,
            ip_address,
            billing_country,
            shipping_country,
            gateway: gateway.map(Code::Borrowed),
            card_data_scrubbed: scrubbed.into_iter().map(|p| p.path).collect(),
            extra,
            ..Input::default()
        },
        exponent,
        callback_url,
        references,
        payload_subscriber_id,
        canonical,
    })
}

/// At most 64 characters of a rejected value, for an error message.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The field, read by `read`, which takes the value over (a valid string is
/// kept, not copied).
fn optional<T>(
    features: &mut Map<String, Value>,
    field: &str,
    read: impl FnOnce(Value) -> Result<T>,
) -> Result<Option<T>> {
    match features.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => read(value).map(Some),
    }
}

fn kind(value: &Value) -> &'static str {
    super::gateways::json_kind(value)
}

/// A non-empty string without control characters; a JSON integer is taken as
/// its decimal form (merchants' ids are often numbers).
fn identifier(value: Value, field: &str) -> Result<String> {
    match super::gateways::integer_text(&value) {
        Some(text) => Ok(text),
        None => plain_text(value, field, MAX_ID),
    }
}

fn plain_text(value: Value, field: &str, max: usize) -> Result<String> {
    let Value::String(s) = value else {
        return Err(RequestError::invalid(
            field,
            &format!("expected a string, got {}", kind(&value)),
        ));
    };
    if s.trim().is_empty() {
        return Err(RequestError::invalid(field, "must not be empty"));
    }
    // A string holds at least as many bytes as characters.
    if s.len() > max && s.chars().count() > max {
        return Err(RequestError::invalid(
            field,
            &format!("must be at most {max} characters"),
        ));
    }
    // Printable ASCII holds no control character; anything else is decoded.
    if !s.bytes().all(|b| (0x20..0x7f).contains(&b)) && s.chars().any(char::is_control) {
        return Err(RequestError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(s)
}

fn lower_text(field: &'static str) -> impl FnOnce(Value) -> Result<String> {
    move |v| {
        plain_text(v, field, 64).map(|mut s| {
            if s.trim().len() == s.len() {
                s.make_ascii_lowercase();
                s
            } else {
                s.trim().to_ascii_lowercase()
            }
        })
    }
}

/// ISO 3166 alpha-2: two ASCII letters, any case.
fn country(field: &'static str) -> impl FnOnce(Value) -> Result<String> {
    move |v| {
        let mut s = plain_text(v, field, 2).map_err(|_| {
            RequestError::invalid(
                field,
                "expected an ISO 3166 alpha-2 country code such as \"US\"",
            )
        })?;
        if s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic()) {
            s.make_ascii_uppercase();
            Ok(s)
        } else {
            Err(RequestError::invalid(
                field,
                "expected an ISO 3166 alpha-2 country code such as \"US\"",
            ))
        }
    }
}

/// `min` to `max` ASCII digits, as a string (a JSON integer is accepted).
fn digits_field(
    min: usize,
    max: usize,
    field: &'static str,
) -> impl FnOnce(Value) -> Result<String> {
    move |v| {
        let s = match v {
            Value::String(s) if s.trim().len() == s.len() => s,
            Value::String(s) => s.trim().to_owned(),
            Value::Number(_) => super::gateways::integer_text(&v).unwrap_or_default(),
            _ => String::new(),
        };
        if (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(s)
        } else if min == max {
            Err(RequestError::invalid(
                field,
                &format!("expected {min} digits"),
            ))
        } else {
            Err(RequestError::invalid(
                field,
                &format!("expected {min} to {max} digits"),
            ))
        }
    }
}

fn ip(value: Value) -> Result<String> {
    let s = plain_text(value, "ip_address", 64)?;
    match IpAddr::from_str(s.trim()) {
        // An IPv4 address parses only in its one written form (no leading
        // zeros, no spaces), which is how it prints.
        Ok(IpAddr::V4(_)) if s.trim().len() == s.len() => Ok(s),
        Ok(ip) => Ok(ip.to_string()),
        Err(_) => Err(RequestError::invalid(
            "ip_address",
            "expected an IPv4 or IPv6 address",
        )),
    }
}

/// A JSON number ≥ 0, or a string holding a plain decimal number (`"12.50"`).
fn amount(value: &Value) -> Result<Decimal> {
    const WHY: &str = "expected a number >= 0 (or a string holding one)";
    let parsed = match value {
        // serde_json writes small and large floats with an exponent (`1e-7`).
        Value::Number(n) => {
            let text = n.to_string();
            Decimal::from_str(&text)
                .or_else(|_| Decimal::from_scientific(&text))
                // Below a decimal's 28 places (`2.2e-309`) an amount is zero
                // in every currency; it is still a number >= 0.
                .or_else(|err| match n.as_f64() {
                    Some(f) if f.abs() < 1e-28 => Ok(Decimal::ZERO),
                    _ => Err(err),
                })
        }
        // The decimal parser also takes `1_000`, and trimming took `" 10 "`:
        // a string is held to the plain form, so what was sent is what is read.
        Value::String(s) if is_plain_decimal(s) => Decimal::from_str(s),
        _ => return Err(RequestError::invalid("transaction_amount", WHY)),
    }
    .map_err(|_| RequestError::invalid("transaction_amount", WHY))?;
    if parsed.is_sign_negative() && !parsed.is_zero() {
        return Err(RequestError::invalid("transaction_amount", "must be >= 0"));
    }
    if parsed > Decimal::from(MAX_AMOUNT) {
        return Err(RequestError::invalid(
            "transaction_amount",
            &format!("must be at most {MAX_AMOUNT}"),
        ));
    }
    Ok(parsed.abs().normalize())
}

/// Digits with an optional fraction (`12`, `12.50`), an optional leading `-`
/// (refused later as negative, with that reason): no sign `+`, spaces,
/// underscores, exponent, or a dot without digits on both sides.
fn is_plain_decimal(s: &str) -> bool {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && fraction.is_none_or(digits)
}

/// The amount in minor units, rounded half to even when it has more decimals
/// than the currency.
fn minor_units(amount: Decimal, exponent: u32) -> Result<i64> {
    let scaled = amount
        .checked_mul(Decimal::from(10i64.pow(exponent.min(6))))
        .map(|d| d.round_dp(0));
    scaled
        .and_then(|d| i64::try_from(d).ok())
        .ok_or_else(|| RequestError::invalid("transaction_amount", "too large"))
}

fn callback_url(value: &Value) -> Result<String> {
    const WHY: &str = "expected an absolute http or https URL";
    let Value::String(s) = value else {
        return Err(RequestError::invalid("callback_url", WHY));
    };
    if s.len() > MAX_URL {
        return Err(RequestError::invalid(
            "callback_url",
            &format!("must be at most {MAX_URL} characters"),
        ));
    }
    match url::Url::parse(s.trim()) {
        // Credentials in the URL would be stored and shown with the decision
        // and sent as Basic auth: receivers authenticate callbacks by their
        // signature instead.
        Ok(url) if !url.username().is_empty() || url.password().is_some() => {
            Err(RequestError::invalid(
                "callback_url",
                "must not carry credentials (user:password@)",
            ))
        }
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(url.to_string())
        }
        _ => Err(RequestError::invalid("callback_url", WHY)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    fn parsed(body: Value) -> Result<Transaction> {
        let Value::Object(body) = body else {
            panic!("not an object: {body}")
        };
        parse(body)
    }

    fn with_amount(amount: Value) -> Result<Transaction> {
        parsed(json!({"request_id": "r", "subscriber_id": 12,
                      "payload": {"transaction_amount": amount, "currency": "USD"}}))
    }

    #[test]
    fn amounts_below_a_decimals_precision_are_zero_and_whole_floats_are_integers() {
        let tx = with_amount(json!(2.225_073_858_507_203e-309)).unwrap();
        assert!(tx.input.transaction_amount.is_zero());
        let tx = parsed(json!({"request_id": 7.0, "subscriber_id": 12,
                               "payload": {"transaction_amount": 1, "currency": "USD", "bin": 411111.0}}))
        .unwrap();
        assert_eq!(tx.input.request_id, "7");
        assert_eq!(tx.input.bin.as_deref(), Some("411111"));
        assert!(parsed(json!({"request_id": 7.5, "subscriber_id": 12,
                              "payload": {"transaction_amount": 1, "currency": "USD"}}))
        .is_err());
    }

    #[test]
    fn string_amounts_are_plain_decimals() {
        for bad in [
            "1_000", " 10 ", "+10", "1e3", "0x10", "10.", ".5", "1,5", "",
        ] {
            let err = with_amount(json!(bad)).unwrap_err();
            assert!(
                matches!(&err, RequestError::Invalid(m) if m.starts_with("Invalid 'transaction_amount'")),
                "{bad:?}: {err:?}"
            );
        }
        for (good, minor) in [("10", 1000), ("0.5", 50), ("12.50", 1250)] {
            assert_eq!(with_amount(json!(good)).unwrap().input.amount_minor, minor);
        }
        assert_eq!(with_amount(json!(1e-7)).unwrap().input.amount_minor, 0);
        assert_eq!(with_amount(json!(1e3)).unwrap().input.amount_minor, 100_000);
    }

    #[test]
    fn callback_urls_with_credentials_are_refused() {
        for url in ["https://u:p@example.com/h", "https://u@example.com/h"] {
            let err = parsed(
                json!({"request_id": "r", "subscriber_id": 12, "callback_url": url,
                                    "payload": {"transaction_amount": 1, "currency": "USD"}}),
            )
            .unwrap_err();
            assert_eq!(
                err,
                RequestError::Invalid(
                    "Invalid 'callback_url': must not carry credentials (user:password@)".into()
                )
            );
        }
    }

    #[test]
    fn a_payload_subscriber_id_beside_a_top_level_one_is_kept_for_checking() {
        let tx = parsed(json!({"request_id": "r", "subscriber_id": 12,
                               "payload": {"subscriber_id": "other",
                                           "transaction_amount": 1, "currency": "USD"}}))
        .unwrap();
        assert_eq!(tx.input.subscriber_id, json!(12));
        assert_eq!(tx.payload_subscriber_id, Some(json!("other")));
        let tx = parsed(json!({"request_id": "r",
                               "payload": {"subscriber_id": "12",
                                           "transaction_amount": 1, "currency": "USD"}}))
        .unwrap();
        assert_eq!(tx.input.subscriber_id, json!("12"));
        assert_eq!(tx.payload_subscriber_id, None);
    }

    /// What the parser gave before it kept valid strings instead of copying
    /// them.
    fn ip_as_before(s: &str) -> Option<String> {
        IpAddr::from_str(s.trim()).ok().map(|ip| ip.to_string())
    }

    #[test]
    fn an_ip_address_reads_as_it_prints() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut samples: Vec<String> = [
            "203.0.113.7",
            " 203.0.113.7",
            "203.0.113.7 ",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3.04",
            "1.2.3",
            "1.2.3.4.5",
            "+1.2.3.4",
            "::1",
            "::FFFF:192.0.2.1",
            "2001:DB8:0:0:0:0:0:1",
            "2001:db8::1",
            "fe80::1%eth0",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for _ in 0..5000 {
            let octets: Vec<String> = (0..4)
                .map(|_| match rng.gen_range(0..6) {
                    0 => format!("0{}", rng.gen_range(0..100)),
                    1 => rng.gen_range(0..400).to_string(),
                    _ => rng.gen_range(0..256).to_string(),
                })
                .collect();
            samples.push(octets.join("."));
        }
        let mut valid = 0;
        for s in samples {
            let got = ip(Value::String(s.clone())).ok();
            assert_eq!(got, ip_as_before(&s), "{s:?}");
            valid += usize::from(got.is_some());
        }
        assert!(valid > 1000, "{valid}");
    }

    #[test]
    fn text_checks_count_characters_and_find_control_characters() {
        let check = |s: &str, max: usize| plain_text(Value::String(s.to_owned()), "f", max);
        assert_eq!(check("ab", 2).unwrap(), "ab");
        assert!(check("abc", 2).is_err());
        assert_eq!(check("éé", 2).unwrap(), "éé", "4 bytes, 2 characters");
        assert!(check("a\u{7f}", 9).is_err());
        assert!(check("a\u{85}b", 9).is_err(), "a C1 control character");
        assert!(check("a\tb", 9).is_err());
        assert_eq!(check("a~ b", 9).unwrap(), "a~ b");
        assert!(check("  ", 9).is_err());
    }
}
