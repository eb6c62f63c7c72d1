//! Transaction features from raw payment-gateway events (`gateway_event` of
//! `POST /risk/bin/score`).
//!
//! [`extract`] recognizes which gateway sent an event and maps it onto the
//! SPEC payload feature names, following
//! `shared/fixtures/gateways/FEATURE-PATHS.md`:
//!
//! | gateway | accepted shapes | recognized by |
//! |---|---|---|
//! | Stripe | event (`"object": "event"`) carrying a charge, payment_intent (both API-version shapes), payment_method or review; or one of those objects bare | `object` field |
//! | Adyen | Standard webhook (`notificationItems`), a bare `NotificationRequestItem`, Checkout `/payments` and Classic `/authorise` responses | `notificationItems`; `pspReference` + `eventCode` / `resultCode` |
//! | Square | `payment.*` event (`data.object.payment`), CreatePayment/GetPayment response (`payment`) | `payment` object with `amount_money` / `card_details` / `source_type` |
//! | Braintree | the transaction as JSON (SDK camelCase form, `{"transaction": {…}}` or bare) | `currencyIsoCode` / `creditCard` / `paymentInstrumentType` |
//! | Checkout.com | event/webhook (`type` + `data`), `GET /payments/{id}` response | `pay_` payment id, or `type` + `data.source` |
//!
//! Only the JSON form of Braintree transactions is accepted: its XML (API
//! responses, `bt_payload` of webhooks) must be converted by the caller (the
//! Braintree SDKs do it); an XML string answers an error that says so.
//!
//! Output: `transaction_amount` (major units, exact: computed from the
//! integer minor amount with the ISO 4217 exponent and the gateway's own
//! exceptions, then written as a JSON integer for zero-decimal currencies and
//! as the nearest `f64` otherwise — exact for every minor amount below 2^53),
//! `currency` (upper case), `bin`, `last4`, `card_brand` (lower case, the BIN
//! table's names: `visa`, `mastercard`, `amex`, …), `card_funding` (`credit`,
//! `debit`, `prepaid`, `charge`, …), `card_country`, `billing_country`,
//! `shipping_country` (ISO alpha-2, upper case), `email`, `ip_address`,
//! `external_transaction_number`, plus the gateway's own fields under
//! `gateway_*` (risk scores, AVS/CVC/3DS results, ids, `gateway_amount_minor`
//! and `gateway_amount_exponent`). Only features present in the event are
//! set: an event without an amount (a Stripe review or payment_method, an
//! Adyen 3-D Secure redirect) yields no `transaction_amount`, and the caller
//! completes it from the request's `payload` or answers that it is missing.
//!
//! Pure: no I/O.

use serde_json::{Map, Value};

use super::reference::currency::{self, MajorAmount};

mod adyen;
mod braintree;
mod checkout;
pub mod disputes;
mod square;
mod stripe;

/// Features extracted from one gateway event.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    /// `stripe`, `adyen`, `checkout`, `braintree` or `square`.
    pub gateway: &'static str,
    /// SPEC payload feature names → values; only those present in the event.
    pub features: Map<String, Value>,
    /// The gateway's references of the payment, most specific first: Stripe's
    /// charge and payment intent ids, Adyen's pspReference and
    /// merchantReference. A later dispute or fraud report names the payment
    /// by one of them (see [`disputes`]).
    pub references: Vec<String>,
}

/// The longest reference kept: the longest identifier a score accepts.
pub const MAX_REFERENCE: usize = 256;

/// A payment reference as stored and looked up: a non-empty string (a JSON
/// integer is written out) of at most [`MAX_REFERENCE`] characters without
/// control characters, trimmed; `None` for anything else.
pub fn reference(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(_) => integer_text(v)?,
        _ => return None,
    };
    let fits =
        !s.is_empty() && s.chars().count() <= MAX_REFERENCE && !s.chars().any(char::is_control);
    fits.then_some(s)
}

/// Adds `reference` to `refs` unless it is there already.
pub fn push_reference(refs: &mut Vec<String>, reference: Option<String>) {
    if let Some(r) = reference {
        if !refs.contains(&r) {
            refs.push(r);
        }
    }
}

/// The payment's references among the extracted features, most specific
/// first. Only Stripe and Adyen disputes are read back (see [`disputes`]), so
/// only their references are kept.
fn references(gateway: &str, features: &Map<String, Value>) -> Vec<String> {
    let keys: &[&str] = match gateway {
        "stripe" => &[
            "gateway_charge_id",
            "gateway_latest_charge",
            "gateway_payment_intent_id",
        ],
        // `external_transaction_number` is Adyen's merchantReference here.
        "adyen" => &["gateway_psp_reference", "external_transaction_number"],
        _ => &[],
    };
    let mut refs = Vec::new();
    for key in keys {
        push_reference(&mut refs, features.get(*key).and_then(reference));
    }
    refs
}

/// Why an event could not be used: the message for a `422`, saying what was
/// expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError(pub String);

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GatewayError {}

const EXPECTED: &str = "expected a Stripe, Adyen, Checkout.com, Braintree or Square event";

/// Recognizes the gateway that sent `event` and extracts its features.
pub fn extract(event: &Value) -> Result<Extracted, GatewayError> {
    let obj = match event {
        Value::Object(obj) => obj,
        Value::String(s) if s.trim_start().starts_with('<') => {
            return Err(GatewayError(format!(
                "unrecognized gateway_event: {EXPECTED} as a JSON object, got a string holding \
                 XML; Braintree XML is not accepted: send the transaction as JSON, the way the \
                 Braintree SDKs return it ({{\"transaction\": {{\"amount\": \"1.00\", \
                 \"currencyIsoCode\": \"USD\", \"creditCard\": {{…}}}}}})"
            )))
        }
        other => {
            return Err(GatewayError(format!(
                "unrecognized gateway_event: {EXPECTED} as a JSON object, got {}",
                json_kind(other)
            )))
        }
    };
    let (gateway, features) = if stripe::detect(obj) {
        ("stripe", stripe::extract(obj)?)
    } else if adyen::detect(obj) {
        ("adyen", adyen::extract(obj)?)
    } else if square::detect(obj) {
        ("square", square::extract(obj)?)
    } else if braintree::detect(obj) {
        ("braintree", braintree::extract(obj)?)
    } else if checkout::detect(obj) {
        ("checkout", checkout::extract(obj)?)
    } else {
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).take(12).collect();
        if obj.len() > keys.len() {
            keys.push("…");
        }
        return Err(GatewayError(format!(
            "unrecognized gateway_event: {EXPECTED} (Stripe: \"object\": \"event\", \"charge\" \
             or \"payment_intent\"; Adyen: \"notificationItems\", or \"pspReference\" with \
             \"eventCode\" or \"resultCode\"; Checkout.com: a \"pay_…\" payment \"id\", or \
             \"type\" with \"data.source\"; Braintree: \"transaction\" with \
             \"currencyIsoCode\"; Square: \"payment\" or \"data.object.payment\"); got an \
             object with keys [{}]",
            keys.join(", ")
        )));
    };
    let features = features.into_map();
    Ok(Extracted {
        gateway,
        references: references(gateway, &features),
        features,
    })
}

/// A JSON number that is a whole number, as its decimal text: `12` and
/// `12.0` alike (JSON Schema and JavaScript clients do not tell them apart).
/// A float counts only where it is exact (up to 2^53): beyond, it stands for
/// an integer outside `i64` and `u64` that was rounded on the way in.
pub fn integer_text(v: &Value) -> Option<String> {
    let Value::Number(n) = v else {
        return None;
    };
    if n.is_i64() || n.is_u64() {
        return Some(n.to_string());
    }
    let f = n.as_f64()?;
    const EXACT: f64 = 9_007_199_254_740_992.0;
    #[allow(clippy::cast_possible_truncation)]
    (f.fract() == 0.0 && f.abs() <= EXACT).then(|| (f as i64).to_string())
}

/// How an error message names a JSON value's type.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `v[a][b]…`, `None` for a missing key or a non-object on the way.
pub(crate) fn path<'a>(v: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Value> {
    let (first, rest) = keys.split_first()?;
    let mut cur = v.get(*first)?;
    for k in rest {
        cur = cur.as_object()?.get(*k)?;
    }
    Some(cur)
}

/// `path` as a non-empty, trimmed string (numbers are written out).
pub(crate) fn text(v: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    match path(v, keys)? {
        Value::String(s) => {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_owned())
        }
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The feature map being built; setters skip absent values.
#[derive(Debug, Default)]
pub(crate) struct Features(Map<String, Value>);

impl Features {
    pub(crate) fn into_map(self) -> Map<String, Value> {
        self.0
    }

    /// Sets `key` unless `value` is `None` or JSON null; never overwrites.
    pub(crate) fn set(&mut self, key: &str, value: Option<Value>) {
        match value {
            Some(Value::Null) | None => {}
            Some(v) => {
                self.0.entry(key.to_owned()).or_insert(v);
            }
        }
    }

    pub(crate) fn set_str(&mut self, key: &str, value: Option<String>) {
        self.set(key, value.map(Value::String));
    }

    /// A string, number or boolean copied as is (gateway risk fields).
    pub(crate) fn copy(&mut self, key: &str, value: Option<&Value>) {
        match value {
            Some(Value::String(s)) if s.trim().is_empty() => {}
            Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => {
                self.set(key, Some(v.clone()));
            }
            _ => {}
        }
    }

    pub(crate) fn bin(&mut self, value: Option<String>) {
        self.set_str("bin", value.filter(|b| is_digits(b, 6..=8)));
    }

    pub(crate) fn last4(&mut self, value: Option<String>) {
        self.set_str("last4", value.filter(|l| is_digits(l, 4..=4)));
    }

    pub(crate) fn brand(&mut self, value: Option<String>) {
        self.set_str("card_brand", value.and_then(|b| normalize_brand(&b)));
    }

    pub(crate) fn funding(&mut self, value: Option<String>) {
        self.set_str("card_funding", value.and_then(|f| normalize_funding(&f)));
    }

    /// An ISO 3166 alpha-2 country (alpha-3 accepted and mapped).
    pub(crate) fn country(&mut self, key: &str, value: Option<String>) {
        self.set_str(key, value.and_then(|c| normalize_country(&c)));
    }

    /// `transaction_amount`, `currency`, `gateway_amount_minor`,
    /// `gateway_amount_exponent` from an integer minor amount.
    pub(crate) fn money_minor(
        &mut self,
        gateway: &str,
        minor: Option<&Value>,
        currency_code: Option<String>,
        exponent_override: fn(&str) -> Option<u8>,
    ) -> Result<(), GatewayError> {
        let minor = match minor {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n.as_i64().ok_or_else(|| bad_amount(gateway, n))?),
            Some(Value::String(s)) => Some(
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| bad_amount(gateway, s))?,
            ),
            Some(other) => return Err(bad_amount(gateway, other)),
        };
        let Some(code) = currency_code else {
            if minor.is_some() {
                return Err(GatewayError(format!(
                    "{gateway} event has an amount but no currency: expected an ISO 4217 code \
                     next to the amount"
                )));
            }
            return Ok(());
        };
        let (code, exponent) = currency_exponent(gateway, &code, exponent_override)?;
        self.set_str("currency", Some(code.to_owned()));
        if let Some(minor) = minor {
            self.amount(gateway, currency::minor_to_major_exact(minor, exponent))?;
        }
        Ok(())
    }

    /// The same from a decimal string in major units (Braintree).
    pub(crate) fn money_major(
        &mut self,
        gateway: &str,
        major: Option<String>,
        currency_code: Option<String>,
    ) -> Result<(), GatewayError> {
        let Some(code) = currency_code else {
            if major.is_some() {
                return Err(GatewayError(format!(
                    "{gateway} transaction has an amount but no currency: expected an ISO 4217 \
                     code next to the amount"
                )));
            }
            return Ok(());
        };
        let (code, exponent) = currency_exponent(gateway, &code, |_| None)?;
        self.set_str("currency", Some(code.to_owned()));
        let Some(major) = major else { return Ok(()) };
        let minor = decimal_to_minor(&major, exponent).ok_or_else(|| {
            GatewayError(format!(
                "{gateway} amount {major:?} is not a decimal number with at most {exponent} \
                 decimals ({code})"
            ))
        })?;
        self.amount(gateway, currency::minor_to_major_exact(minor, exponent))
    }

    fn amount(&mut self, gateway: &str, major: MajorAmount) -> Result<(), GatewayError> {
        if major.minor < 0 {
            return Err(GatewayError(format!(
                "{gateway} amount {major} is negative: expected an amount >= 0"
            )));
        }
        self.set("transaction_amount", Some(major_to_json(gateway, major)?));
        self.set(
            "gateway_amount_minor",
            i64::try_from(major.minor).ok().map(Value::from),
        );
        self.set("gateway_amount_exponent", Some(Value::from(major.exponent)));
        Ok(())
    }
}

fn bad_amount(gateway: &str, v: impl std::fmt::Display) -> GatewayError {
    GatewayError(format!(
        "{gateway} amount {v} is not an integer number of minor units"
    ))
}

/// The currency's ISO code and the exponent the gateway uses for it.
fn currency_exponent(
    gateway: &str,
    code: &str,
    exponent_override: fn(&str) -> Option<u8>,
) -> Result<(&'static str, u8), GatewayError> {
    let cur = currency::currency(code.trim()).ok_or_else(|| {
        GatewayError(format!(
            "{gateway} currency {code:?} is not an active ISO 4217 currency code"
        ))
    })?;
    let exponent = exponent_override(cur.code)
        .or(cur.exponent)
        .ok_or_else(|| {
            GatewayError(format!(
                "{gateway} currency {} ({}) has no minor unit in ISO 4217: expected a currency \
             (funds and precious metals cannot be scored)",
                cur.code, cur.name
            ))
        })?;
    Ok((cur.code, exponent))
}

/// An exact amount as a JSON number: an integer when there are no decimals,
/// else the nearest `f64` (exact division while `|minor| < 2^53`).
fn major_to_json(gateway: &str, major: MajorAmount) -> Result<Value, GatewayError> {
    const MAX_EXACT: i128 = 1 << 53;
    if major.exponent == 0 {
        if let Ok(n) = i64::try_from(major.minor) {
            return Ok(Value::from(n));
        }
    }
    if major.minor.abs() >= MAX_EXACT {
        return Err(GatewayError(format!(
            "{gateway} amount {major} is too large to score exactly"
        )));
    }
    serde_json::Number::from_f64(major.to_f64())
        .map(Value::Number)
        .ok_or_else(|| GatewayError(format!("{gateway} amount {major} is not a finite number")))
}

/// `"12.30"` with exponent 2 → 1230; `None` for anything but digits with an
/// optional fraction of at most `exponent` significant decimals.
fn decimal_to_minor(s: &str, exponent: u8) -> Option<i64> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    let exp = usize::from(exponent);
    if frac.len() > exp {
        return None;
    }
    let digits = format!("{int}{frac:0<exp$}");
    digits.parse().ok()
}

fn is_digits(s: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// Card brand in the BIN table's spelling (`visa`, `mastercard`, `amex`,
/// `discover`, `diners`, `jcb`, `unionpay`, `maestro`, …); `None` when
/// empty or unknown-ish.
pub(crate) fn normalize_brand(raw: &str) -> Option<String> {
    let key: String = raw
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let brand = match key.as_str() {
        "" | "unknown" | "other" | "otherbrand" => return None,
        "mc" | "mastercard" | "mastercarddebit" => "mastercard",
        "amex" | "americanexpress" => "amex",
        "diners" | "dinersclub" | "discoverdiners" | "dinersclubinternational" => "diners",
        "unionpay" | "chinaunionpay" | "cup" => "unionpay",
        "cartebancaire" | "cartesbancaires" | "cb" => "cartes_bancaires",
        "eftpos" | "eftposau" | "eftposaustralia" => "eftpos",
        other => return Some(other.to_owned()),
    };
    Some(brand.to_owned())
}

/// Card brands a card-only field may hold (Adyen's `paymentMethod` is also
/// `ach`, `ideal`, `paypal`, …, which are no card brand).
pub(crate) fn is_card_brand(brand: &str) -> bool {
    matches!(
        brand,
        "visa"
            | "mastercard"
            | "amex"
            | "discover"
            | "diners"
            | "jcb"
            | "unionpay"
            | "maestro"
            | "interac"
            | "eftpos"
            | "cartes_bancaires"
            | "elo"
            | "hipercard"
            | "mir"
            | "rupay"
            | "bancontact"
            | "dankort"
            | "visadankort"
            | "electron"
            | "uatp"
    )
}

/// `credit`, `debit`, `prepaid`, `charge`, `deferred_debit`, …; `None` for
/// empty and unknown values (`unknown`, `UNKNOWN_CARD_TYPE`).
pub(crate) fn normalize_funding(raw: &str) -> Option<String> {
    let f = raw.trim().to_ascii_lowercase().replace([' ', '-'], "_");
    match f.as_str() {
        "" | "unknown" | "unknown_card_type" | "n/a" => None,
        _ => Some(f),
    }
}

/// ISO 3166 alpha-2 (upper case) from alpha-2 or alpha-3; `None` otherwise.
pub(crate) fn normalize_country(raw: &str) -> Option<String> {
    let c = raw.trim().to_ascii_uppercase();
    if !c.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    match c.len() {
        2 => Some(c),
        3 => ALPHA3
            .iter()
            .find(|(a3, _)| *a3 == c)
            .map(|(_, a2)| (*a2).to_owned()),
        _ => None,
    }
}

/// ISO 3166-1 alpha-3 → alpha-2 (Braintree's `countryOfIssuance`), plus
/// Kosovo's user-assigned `XKX`.
const ALPHA3: &[(&str, &str)] = &[
    ("AFG", "AF"),
    ("ALA", "AX"),
    ("ALB", "AL"),
    ("DZA", "DZ"),
    ("ASM", "AS"),
    ("AND", "AD"),
    ("AGO", "AO"),
    ("AIA", "AI"),
    ("ATA", "AQ"),
    ("ATG", "AG"),
    ("ARG", "AR"),
    ("ARM", "AM"),
    ("ABW", "AW"),
    ("AUS", "AU"),
    ("AUT", "AT"),
    ("AZE", "AZ"),
    ("BHS", "BS"),
    ("BHR", "BH"),
    ("BGD", "BD"),
    ("BRB", "BB"),
    ("BLR", "BY"),
    ("BEL", "BE"),
    ("BLZ", "BZ"),
    ("BEN", "BJ"),
    ("BMU", "BM"),
    ("BTN", "BT"),
    ("BOL", "BO"),
    ("BES", "BQ"),
    ("BIH", "BA"),
    ("BWA", "BW"),
    ("BVT", "BV"),
    ("BRA", "BR"),
    ("IOT", "IO"),
    ("BRN", "BN"),
    ("BGR", "BG"),
    ("BFA", "BF"),
    ("BDI", "BI"),
    ("CPV", "CV"),
    ("KHM", "KH"),
    ("CMR", "CM"),
    ("CAN", "CA"),
    ("CYM", "KY"),
    ("CAF", "CF"),
    ("TCD", "TD"),
    ("CHL", "CL"),
    ("CHN", "CN"),
    ("CXR", "CX"),
    ("CCK", "CC"),
    ("COL", "CO"),
    ("COM", "KM"),
    ("COG", "CG"),
    ("COD", "CD"),
    ("COK", "CK"),
    ("CRI", "CR"),
    ("CIV", "CI"),
    ("HRV", "HR"),
    ("CUB", "CU"),
    ("CUW", "CW"),
    ("CYP", "CY"),
    ("CZE", "CZ"),
    ("DNK", "DK"),
    ("DJI", "DJ"),
    ("DMA", "DM"),
    ("DOM", "DO"),
    ("ECU", "EC"),
    ("EGY", "EG"),
    ("SLV", "SV"),
    ("GNQ", "GQ"),
    ("ERI", "ER"),
    ("EST", "EE"),
    ("SWZ", "SZ"),
    ("ETH", "ET"),
    ("FLK", "FK"),
    ("FRO", "FO"),
    ("FJI", "FJ"),
    ("FIN", "FI"),
    ("FRA", "FR"),
    ("GUF", "GF"),
    ("PYF", "PF"),
    ("ATF", "TF"),
    ("GAB", "GA"),
    ("GMB", "GM"),
    ("GEO", "GE"),
    ("DEU", "DE"),
    ("GHA", "GH"),
    ("GIB", "GI"),
    ("GRC", "GR"),
    ("GRL", "GL"),
    ("GRD", "GD"),
    ("GLP", "GP"),
    ("GUM", "GU"),
    ("GTM", "GT"),
    ("GGY", "GG"),
    ("GIN", "GN"),
    ("GNB", "GW"),
    ("GUY", "GY"),
    ("HTI", "HT"),
    ("HMD", "HM"),
    ("VAT", "VA"),
    ("HND", "HN"),
    ("HKG", "HK"),
    ("HUN", "HU"),
    ("ISL", "IS"),
    ("IND", "IN"),
    ("IDN", "ID"),
    ("IRN", "IR"),
    ("IRQ", "IQ"),
    ("IRL", "IE"),
    ("IMN", "IM"),
    ("ISR", "IL"),
    ("ITA", "IT"),
    ("JAM", "JM"),
    ("JPN", "JP"),
    ("JEY", "JE"),
    ("JOR", "JO"),
    ("KAZ", "KZ"),
    ("KEN", "KE"),
    ("KIR", "KI"),
    ("PRK", "KP"),
    ("KOR", "KR"),
    ("KWT", "KW"),
    ("KGZ", "KG"),
    ("LAO", "LA"),
    ("LVA", "LV"),
    ("LBN", "LB"),
    ("LSO", "LS"),
    ("LBR", "LR"),
    ("LBY", "LY"),
    ("LIE", "LI"),
    ("LTU", "LT"),
    ("LUX", "LU"),
    ("MAC", "MO"),
    ("MDG", "MG"),
    ("MWI", "MW"),
    ("MYS", "MY"),
    ("MDV", "MV"),
    ("MLI", "ML"),
    ("MLT", "MT"),
    ("MHL", "MH"),
    ("MTQ", "MQ"),
    ("MRT", "MR"),
    ("MUS", "MU"),
    ("MYT", "YT"),
    ("MEX", "MX"),
    ("FSM", "FM"),
    ("MDA", "MD"),
    ("MCO", "MC"),
    ("MNG", "MN"),
    ("MNE", "ME"),
    ("MSR", "MS"),
    ("MAR", "MA"),
    ("MOZ", "MZ"),
    ("MMR", "MM"),
    ("NAM", "NA"),
    ("NRU", "NR"),
    ("NPL", "NP"),
    ("NLD", "NL"),
    ("NCL", "NC"),
    ("NZL", "NZ"),
    ("NIC", "NI"),
    ("NER", "NE"),
    ("NGA", "NG"),
    ("NIU", "NU"),
    ("NFK", "NF"),
    ("MKD", "MK"),
    ("MNP", "MP"),
    ("NOR", "NO"),
    ("OMN", "OM"),
    ("PAK", "PK"),
    ("PLW", "PW"),
    ("PSE", "PS"),
    ("PAN", "PA"),
    ("PNG", "PG"),
    ("PRY", "PY"),
    ("PER", "PE"),
    ("PHL", "PH"),
    ("PCN", "PN"),
    ("POL", "PL"),
    ("PRT", "PT"),
    ("PRI", "PR"),
    ("QAT", "QA"),
    ("REU", "RE"),
    ("ROU", "RO"),
    ("RUS", "RU"),
    ("RWA", "RW"),
    ("BLM", "BL"),
    ("SHN", "SH"),
    ("KNA", "KN"),
    ("LCA", "LC"),
    ("MAF", "MF"),
    ("SPM", "PM"),
    ("VCT", "VC"),
    ("WSM", "WS"),
    ("SMR", "SM"),
    ("STP", "ST"),
    ("SAU", "SA"),
    ("SEN", "SN"),
    ("SRB", "RS"),
    ("SYC", "SC"),
    ("SLE", "SL"),
    ("SGP", "SG"),
    ("SXM", "SX"),
    ("SVK", "SK"),
    ("SVN", "SI"),
    ("SLB", "SB"),
    ("SOM", "SO"),
    ("ZAF", "ZA"),
    ("SGS", "GS"),
    ("SSD", "SS"),
    ("ESP", "ES"),
    ("LKA", "LK"),
    ("SDN", "SD"),
    ("SUR", "SR"),
    ("SJM", "SJ"),
    ("SWE", "SE"),
    ("CHE", "CH"),
    ("SYR", "SY"),
    ("TWN", "TW"),
    ("TJK", "TJ"),
    ("TZA", "TZ"),
    ("THA", "TH"),
    ("TLS", "TL"),
    ("TGO", "TG"),
    ("TKL", "TK"),
    ("TON", "TO"),
    ("TTO", "TT"),
    ("TUN", "TN"),
    ("TUR", "TR"),
    ("TKM", "TM"),
    ("TCA", "TC"),
    ("TUV", "TV"),
    ("UGA", "UG"),
    ("UKR", "UA"),
    ("ARE", "AE"),
    ("GBR", "GB"),
    ("USA", "US"),
    ("UMI", "UM"),
    ("URY", "UY"),
    ("UZB", "UZ"),
    ("VUT", "VU"),
    ("VEN", "VE"),
    ("VNM", "VN"),
    ("VGB", "VG"),
    ("VIR", "VI"),
    ("WLF", "WF"),
    ("ESH", "EH"),
    ("YEM", "YE"),
    ("ZMB", "ZM"),
    ("ZWE", "ZW"),
    ("XKX", "XK"),
];

#[cfg(test)]
mod tests;
