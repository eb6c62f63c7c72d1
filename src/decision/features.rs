//! The features one decision is made from, as rules see them and as the
//! response's `input` shows them: the same names in both places.
//!
//! [`Input`] is built once per decision. It serializes (in a stable, readable
//! order) for the response and the stored decision, and
//! [`Input::to_variable`] builds the rules' evaluation context directly from
//! the typed fields, without a JSON round trip.

use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;
use std::borrow::Cow;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use zen_expression::variable::{Variable, VariableMap};

use super::device::{device_risk, DeviceEvidence};
use super::velocity::{VelocitySnapshot, WindowCounts};

/// Where a feature comes from: the request (a payload field with a meaning of
/// its own, or a gateway event's), or riskgate (computed; a payload field of
/// that name is kept as `extra_<name>` so it can neither hide nor fake one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Request,
    Computed,
}

/// One top-level feature: its name (in the response's `input` and in rules)
/// and what it means.
#[derive(Debug, Clone, Copy)]
pub struct Feature {
    pub name: &'static str,
    pub origin: Origin,
    pub doc: &'static str,
}

/// Text that is usually one of a few fixed values (`"USD"`, `"ready"`) but
/// reads back owned from a stored decision.
pub type Code = Cow<'static, str>;

/// Declares the top-level features once. From this one list come the
/// [`Input`] struct (and so the response's `input` and the stored decision,
/// which replays deserialize), [`CONTEXT_NAMES`] and the rules' context
/// ([`Input::context`]), the documented list [`FEATURES`], and which payload
/// fields the parser treats as its own ([`REQUEST_FIELDS`]) or as computed
/// ([`COMPUTED_FIELDS`]).
macro_rules! features {
    ($( $(#[$meta:meta])* $name:ident : $ty:ty, $origin:ident, $doc:literal; )*) => {
        /// Every feature of one decision. Field names are the rule names.
        #[derive(Debug, Clone, Default, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Input {
            $( #[doc = $doc] $(#[$meta])* pub $name: $ty, )*
            /// Where full card numbers were found and cut down to BIN and last4.
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub card_data_scrubbed: Vec<String>,
            /// Parts that were unavailable when deciding (`velocity` when the
            /// counters could not be reached); absent when everything was there.
            #[serde(skip_serializing_if = "Vec::is_empty")]
            pub degraded: Vec<Code>,
            /// Other payload fields and the gateway's own `gateway_*` fields,
            /// kept as sent.
            #[serde(flatten)]
            pub extra: Map<String, Value>,
        }

        /// The top-level names of the evaluation context, in the order they
        /// are built. A rule set records which of them its expressions read
        /// ([`Uses`]).
        pub const CONTEXT_NAMES: [&str; [$(stringify!($name)),*].len()] = [$(stringify!($name)),*];

        /// Every top-level feature, documented.
        pub const FEATURES: [Feature; CONTEXT_NAMES.len()] = [
            $( Feature { name: stringify!($name), origin: Origin::$origin, doc: $doc }, )*
        ];

        impl Input {
            fn put_features(&self, uses: &Uses, map: &mut VariableMap) {
                $({
                    const BIT: u64 = bit(stringify!($name));
                    if uses.wants(BIT) {
                        map.insert(key(stringify!($name)), Read::read(&self.$name).to_variable());
                    }
                })*
            }

            /// The top-level feature at `index` in [`CONTEXT_NAMES`].
            fn feature(&self, index: usize) -> Val<'_> {
                const READERS: [for<'a> fn(&'a Input) -> Val<'a>; CONTEXT_NAMES.len()] =
                    [$(|input: &Input| Read::read(&input.$name)),*];
                READERS.get(index).map_or(Val::Null, |read| read(self))
            }
        }
    };
}

features! {
    subscriber_id: Value, Request, "As the request sent it (`12` stays a number).";
    request_id: String, Request, "The ingested request id the merchant sent.";
    #[serde(serialize_with = "decimal_number")]
    transaction_amount: Decimal, Request, "The amount, in major units of `currency`.";
    #[serde(serialize_with = "decimal_number")]
    amount: Decimal, Computed, "The same as `transaction_amount`, under the short name rules use.";
    amount_minor: i64, Computed, "The amount in the currency's minor units (ISO 4217 exponent).";
    currency: Code, Request, "ISO 4217 alphabetic code, upper case.";
    bin: Option<String>, Request, "The card's first 6 to 8 digits.";
    last4: Option<String>, Request, "The card's last 4 digits.";
    card_brand: Option<String>, Request, "`visa`, `mastercard`, … (lower case).";
    card_funding: Option<String>, Request, "`credit`, `debit`, `prepaid` or `charge`.";
    card_country: Option<String>, Request, "ISO 3166 alpha-2 of the issuer.";
    card_prepaid: bool, Computed, "Whether the card is prepaid (its funding, or the BIN table).";
    card_issuer: Option<String>, Computed, "The issuing bank, from the BIN table.";
    card_category: Option<String>, Computed, "The card's category (classic, gold, business, …), from the BIN table.";
    bin_source: Option<Code>, Computed, "`table` (the BIN table knew it), `iin_range` (only the brand, from the network's number ranges) or null (no BIN).";
    user_id: Option<String>, Request, "The merchant's user id.";
    session_id: Option<String>, Request, "The merchant's session id.";
    external_transaction_number: Option<String>, Request, "The merchant's order or transaction number.";
    email: Option<String>, Request, "The shopper's email address.";
    email_domain: Option<String>, Computed, "The part of `email` after the `@`, lower case.";
    ip_address: Option<String>, Request, "The shopper's IP address.";
    ip_country: Option<String>, Computed, "The country of the shopper's IP, from the device provider.";
    billing_country: Option<String>, Request, "ISO 3166 alpha-2 of the billing address.";
    shipping_country: Option<String>, Request, "ISO 3166 alpha-2 of the shipping address.";
    gateway: Option<Code>, Computed, "`stripe`, `adyen`, `checkout`, `braintree` or `square` when the features came from a `gateway_event`.";
    risk_score_from_cache: f64, Computed, "The device risk in [0, 1] from the cached signals; 0 when none.";
    device_status: Code, Computed, "`ready`, `pending`, `failed`, or `none` (nothing ingested).";
    device_source: Option<Code>, Computed, "Which key found the device: `request`, `session` or `user`.";
    device_request_id: Option<String>, Computed, "The ingested request whose signals were used.";
    device: DeviceInput, Computed, "The device signals (`device.vpn`, `device.bot`, …).";
    velocity: VelocityInput, Computed, "The subscriber's velocity counters, this transaction included (`velocity.card.count_1h`, …).";
    customer: CustomerInput, Computed, "The end customer's profile before this transaction (`customer.age_days`, …).";
    lists: ListHits, Computed, "The subscriber's lists this transaction is on, as `{\"name\": true}`; rules read `lists.<name>`, `false` for any other name.";
}

/// Payload fields the parser reads itself; every other one is an extra.
pub fn is_request_field(name: &str) -> bool {
    name == "callback_url"
        || FEATURES
            .iter()
            .any(|f| f.origin == Origin::Request && f.name == name)
}

/// Names riskgate computes (a payload field so named becomes `extra_<name>`).
pub fn is_computed_field(name: &str) -> bool {
    matches!(name, "card_data_scrubbed" | "degraded")
        || FEATURES
            .iter()
            .any(|f| f.origin == Origin::Computed && f.name == name)
}

/// A feature's value as a rule reads it, borrowed from the input: what the
/// evaluation context ([`Input::context`]) holds at that place, without
/// building it.
#[derive(Clone, Copy)]
pub enum Val<'a> {
    Null,
    Bool(bool),
    Number(Decimal),
    Text(&'a str),
    /// A part with members of its own (`device`, `velocity.card`).
    Part(&'a dyn Part),
    /// An array or object the request sent (a payload extra, an odd
    /// `subscriber_id`); scalars the request sent read as the variants above.
    Json(&'a Value),
    /// The lists that matched, as a whole (`lists`, not `lists.<name>`).
    Lists(&'a ListHits),
}

impl Val<'_> {
    /// The value as the rule engine holds it in the context.
    pub fn to_variable(&self) -> Variable {
        match *self {
            Val::Null => Variable::Null,
            Val::Bool(b) => Variable::Bool(b),
            Val::Number(n) => Variable::Number(n),
            Val::Text(s) => text(s),
            Val::Part(part) => {
                let names = part.names();
                let mut map = VariableMap::with_capacity(names.len());
                for (index, name) in names.iter().enumerate() {
                    map.insert(key(name), part.read(index).to_variable());
                }
                Variable::from_object(map)
            }
            Val::Json(value) => Variable::from(value),
            Val::Lists(hits) => lists_variable(hits, None),
        }
    }
}

/// The `lists` object of the context: every name in `names` (the lists the
/// rules read) with whether the transaction is on it; without `names`, the
/// lists that matched.
fn lists_variable(hits: &ListHits, names: Option<&[Box<str>]>) -> Variable {
    match names {
        None => {
            let mut map = VariableMap::with_capacity(hits.names().len());
            for name in hits.names() {
                map.insert_str(name, Variable::Bool(true));
            }
            Variable::from_object(map)
        }
        Some(names) => {
            let mut map = VariableMap::with_capacity(names.len());
            for name in names {
                map.insert_str(name, Variable::Bool(hits.contains(name)));
            }
            Variable::from_object(map)
        }
    }
}

impl Read for ListHits {
    fn read(&self) -> Val<'_> {
        Val::Lists(self)
    }
}

/// A feature with members (`device.vpn`): their names, and each one's value.
pub trait Part {
    fn names(&self) -> &'static [&'static str];
    /// The member at `index` in [`Part::names`].
    fn read(&self, index: usize) -> Val<'_>;
}

/// Declares a part's members once, in context order; each member's type
/// says how it reads ([`Read`]).
macro_rules! part {
    ($ty:ident { $($name:ident),* $(,)? }) => {
        impl Part for $ty {
            fn names(&self) -> &'static [&'static str] {
                &[$(stringify!($name)),*]
            }

            fn read(&self, index: usize) -> Val<'_> {
                const READERS: &[for<'a> fn(&'a $ty) -> Val<'a>] =
                    &[$(|part: &$ty| Read::read(&part.$name)),*];
                READERS.get(index).map_or(Val::Null, |read| read(self))
            }
        }

        impl Read for $ty {
            fn read(&self) -> Val<'_> {
                Val::Part(self)
            }
        }
    };
}

/// How a feature's value enters the rules' context.
trait Read {
    fn read(&self) -> Val<'_>;
}

/// A value the request sent, as the rule engine converts JSON.
fn json(value: &Value) -> Val<'_> {
    match value {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::String(s) => Val::Text(s),
        // The engine's own conversion, so a number reads exactly as it would
        // from the JSON (and a number it cannot hold as null).
        Value::Number(_) => match Variable::from(value) {
            Variable::Number(n) => Val::Number(n),
            _ => Val::Null,
        },
        Value::Array(_) | Value::Object(_) => Val::Json(value),
    }
}

impl Read for Value {
    fn read(&self) -> Val<'_> {
        json(self)
    }
}

impl Read for String {
    fn read(&self) -> Val<'_> {
        Val::Text(self)
    }
}

impl Read for Code {
    fn read(&self) -> Val<'_> {
        Val::Text(self)
    }
}

impl<T: Read> Read for Option<T> {
    fn read(&self) -> Val<'_> {
        self.as_ref().map_or(Val::Null, T::read)
    }
}

impl Read for Decimal {
    fn read(&self) -> Val<'_> {
        Val::Number(*self)
    }
}

impl Read for i64 {
    fn read(&self) -> Val<'_> {
        Val::Number(Decimal::from(*self))
    }
}

impl Read for u64 {
    fn read(&self) -> Val<'_> {
        Val::Number(Decimal::from(*self))
    }
}

impl Read for bool {
    fn read(&self) -> Val<'_> {
        Val::Bool(*self)
    }
}

impl Read for f64 {
    fn read(&self) -> Val<'_> {
        float(*self).map_or(Val::Null, Val::Number)
    }
}

/// The device signals as rules see them. Flags the provider did not report
/// read as `false` (so `device.vpn and …` never fails on a missing value);
/// `known` says whether any signals were cached at all.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceInput {
    pub known: bool,
    pub provider: Option<String>,
    pub visitor_id: Option<String>,
    pub confidence: Option<f64>,
    /// `good`, `bad` or `not_detected`; null when unknown.
    pub bot: Option<String>,
    pub bot_probability: Option<f64>,
    pub vpn: bool,
    pub proxy: bool,
    pub tor: bool,
    pub incognito: bool,
    pub tampering: bool,
    pub virtual_machine: bool,
    pub emulator: bool,
    pub jailbroken: bool,
    pub rooted: bool,
    pub frida: bool,
    pub mitm_attack: bool,
    pub ip_address: Option<String>,
    pub ip_country: Option<String>,
    pub ip_asn: Option<String>,
    pub ip_datacenter: bool,
    pub ip_blocklisted: bool,
    pub suspect_score: Option<f64>,
    pub provider_verdict: Option<String>,
    pub device_type: Option<String>,
}

/// Count and amount (major units of this transaction's currency) over the
/// three windows. Zero when the transaction has no value for the dimension.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WindowInput {
    pub count_5m: u64,
    #[serde(serialize_with = "decimal_number")]
    pub amount_5m: Decimal,
    pub count_1h: u64,
    #[serde(serialize_with = "decimal_number")]
    pub amount_1h: Decimal,
    pub count_24h: u64,
    #[serde(serialize_with = "decimal_number")]
    pub amount_24h: Decimal,
}

/// The subscriber's own counters, this transaction included.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VelocityInput {
    pub user: WindowInput,
    pub card: WindowInput,
    pub device: WindowInput,
    pub ip: WindowInput,
    pub cards_per_device: u64,
    pub cards_per_user: u64,
    pub devices_per_user: u64,
}

/// The end customer's profile before this transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CustomerInput {
    /// Whether the user was seen before (by ingest or scoring) or flagged.
    pub known: bool,
    /// `normal`, `trusted` or `blocked`.
    pub status: Code,
    /// Days since first seen (fractional); 0 for a new customer.
    pub age_days: f64,
    /// Earlier decisions, and how many of them were allowed, reviewed, blocked.
    pub decisions: i64,
    pub allows: i64,
    pub reviews: i64,
    pub blocks: i64,
    /// Earlier decisions labelled `fraud` or `chargeback`.
    pub fraud_labels: i64,
    /// Earlier amounts (major units, whatever their currency): count, mean, max.
    pub amount_count: i64,
    pub avg_amount: f64,
    pub max_amount: f64,
    /// Distinct devices and cards seen for the customer.
    pub devices: i64,
    pub cards: i64,
    /// Whether this transaction's device / card was seen for the customer before.
    pub known_device: bool,
    pub known_card: bool,
}

impl Default for CustomerInput {
    fn default() -> Self {
        Self {
            known: false,
            status: Code::Borrowed("normal"),
            age_days: 0.0,
            decisions: 0,
            allows: 0,
            reviews: 0,
            blocks: 0,
            fraud_labels: 0,
            amount_count: 0,
            avg_amount: 0.0,
            max_amount: 0.0,
            devices: 0,
            cards: 0,
            known_device: false,
            known_card: false,
        }
    }
}

fn decimal_number<S: Serializer>(value: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    // Amounts are validated to at most 15 significant digits, so the f64's
    // shortest form prints the same decimal.
    if value.fract().is_zero() {
        if let Some(i) = value.to_i64() {
            return s.serialize_i64(i);
        }
    }
    s.serialize_f64(value.to_f64().unwrap_or(0.0))
}

impl DeviceInput {
    /// The device part of the input, with `risk_score_from_cache`, status and
    /// the IP country.
    pub fn from_evidence(event: Option<&DeviceEvidence<'_>>) -> (Self, f64, &'static str) {
        let Some(event) = event else {
            return (Self::default(), 0.0, "none");
        };
        let status = event.status;
        let Some(s) = event.signals.filter(|_| event.is_ready()) else {
            let device = Self {
                provider: Some(event.provider.to_owned()),
                ..Self::default()
            };
            return (device, 0.0, status);
        };
        let yes = |b: Option<bool>| b == Some(true);
        let device = Self {
            known: true,
            provider: Some(event.provider.to_owned()),
            visitor_id: s.visitor_id.clone(),
            confidence: s.confidence,
            bot: s.bot.clone(),
            bot_probability: s.bot_probability,
            vpn: yes(s.vpn),
            proxy: yes(s.proxy),
            tor: yes(s.tor),
            incognito: yes(s.incognito),
            tampering: yes(s.tampering),
            virtual_machine: yes(s.virtual_machine),
            emulator: yes(s.emulator),
            jailbroken: yes(s.jailbroken),
            rooted: yes(s.rooted),
            frida: yes(s.frida),
            mitm_attack: yes(s.mitm_attack),
            ip_address: s.ip_address.clone(),
            ip_country: s.ip_country.clone(),
            ip_asn: s.ip_asn.clone(),
            ip_datacenter: yes(s.ip_datacenter),
            ip_blocklisted: yes(s.ip_blocklisted),
            suspect_score: s.suspect_score,
            provider_verdict: s.provider_verdict.clone(),
            device_type: s.device_type.clone(),
        };
        (device, device_risk(s), status)
    }
}

/// `minor / 10^exponent` as a decimal.
fn major(minor: i64, exponent: u32) -> Decimal {
    Decimal::try_from_i128_with_scale(i128::from(minor), exponent).unwrap_or_default()
}

impl WindowInput {
    fn from_counts(counts: Option<&WindowCounts>, exponent: u32) -> Self {
        let Some(c) = counts else {
            return Self::default();
        };
        Self {
            count_5m: c.count_5m,
            amount_5m: major(c.amount_5m, exponent),
            count_1h: c.count_1h,
            amount_1h: major(c.amount_1h, exponent),
            count_24h: c.count_24h,
            amount_24h: major(c.amount_24h, exponent),
        }
    }
}

impl VelocityInput {
    /// The counters, amounts shown in units of a currency with `exponent`
    /// minor digits.
    pub fn from_snapshot(v: &VelocitySnapshot, exponent: u32) -> Self {
        Self {
            user: WindowInput::from_counts(v.user.as_ref(), exponent),
            card: WindowInput::from_counts(v.card.as_ref(), exponent),
            device: WindowInput::from_counts(v.device.as_ref(), exponent),
            ip: WindowInput::from_counts(v.ip.as_ref(), exponent),
            cards_per_device: v.distinct_cards_per_device.unwrap_or(0),
            cards_per_user: v.distinct_cards_per_user.unwrap_or(0),
            devices_per_user: v.distinct_devices_per_user.unwrap_or(0),
        }
    }
}

// ---- the rules' evaluation context -------------------------------------

fn key(name: &'static str) -> zen_expression::variable::Symbol {
    zen_expression::variable::Symbol::from_static(name)
}

fn text(value: &str) -> Variable {
    Variable::String(zen_expression::variable::Symbol::from(value))
}

/// Scores, probabilities and averages to 6 decimals: exact for what they
/// hold, and far cheaper than an exact binary-to-decimal conversion.
fn float(value: f64) -> Option<Decimal> {
    const SCALE: f64 = 1_000_000.0;
    let scaled = (value * SCALE).round();
    if !scaled.is_finite() || scaled.abs() >= 9e15 {
        return Decimal::from_f64(value);
    }
    // In range and integral: the cast is exact.
    #[allow(clippy::cast_possible_truncation)]
    let units = scaled as i64;
    Some(Decimal::new(units, 6).normalize())
}

part!(WindowInput {
    count_5m,
    amount_5m,
    count_1h,
    amount_1h,
    count_24h,
    amount_24h,
});

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The bit of a context name (a compile-time error for an unknown one).
const fn bit(name: &str) -> u64 {
    let mut i = 0;
    while i < CONTEXT_NAMES.len() {
        if same(CONTEXT_NAMES[i], name) {
            return 1 << i;
        }
        i += 1;
    }
    panic!("not a context name")
}

/// Which parts of the context a rule set reads. Building only those saves
/// most of the context's cost for typical rule sets; the values of the parts
/// built are the same either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uses {
    names: u64,
    /// Payload extras and `gateway_*` fields (names not in
    /// [`CONTEXT_NAMES`]) the rules read; `None` for all of them.
    extras: Option<Vec<String>>,
    /// The list names the rules read as `lists.<name>`: the context's
    /// `lists` holds each, `false` when the transaction is not on it. `None`:
    /// only the lists that matched (and any other name reads null).
    lists: Option<Box<[Box<str>]>>,
}

impl Uses {
    pub const ALL: Uses = Uses {
        names: u64::MAX,
        extras: None,
        lists: None,
    };

    /// The names `expressions` read, found by scanning for identifiers
    /// outside string literals that are not member names (`x.name`). An
    /// expression that reaches the root object by other means (`$root`)
    /// makes every part needed.
    pub fn of<'a>(expressions: impl IntoIterator<Item = &'a str>) -> Uses {
        let mut names = 0;
        let mut extras: Vec<String> = Vec::new();
        let mut lists: Vec<Box<str>> = Vec::new();
        let mut everything = false;
        for expression in expressions {
            for name in list_names(expression) {
                if !lists.iter().any(|l| **l == *name) {
                    lists.push(name.into());
                }
            }
            if expression.contains('$') {
                everything = true;
            }
            if everything {
                continue;
            }
            for ident in identifiers(expression) {
                match CONTEXT_NAMES.iter().position(|n| *n == ident) {
                    Some(i) => names |= 1 << i,
                    None if !extras.iter().any(|e| e == ident) => extras.push(ident.to_owned()),
                    None => {}
                }
            }
        }
        lists.sort_unstable();
        if everything {
            return Uses {
                lists: (!lists.is_empty()).then(|| lists.into()),
                ..Uses::ALL
            };
        }
        Uses {
            names,
            extras: Some(extras),
            lists: Some(lists.into()),
        }
    }

    /// Whether the context's `lists` holds `name` (reading `false` or
    /// `true`); else `lists.<name>` reads null there, unless it matched and
    /// the context shows the matches only.
    fn declares_list(&self, name: &str) -> Option<bool> {
        self.lists
            .as_ref()
            .map(|names| names.iter().any(|n| **n == *name))
    }

    /// Whether the rules read the extra field `name`.
    fn wants_extra(&self, name: &str) -> bool {
        self.extras
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    }

    fn wants(&self, bit: u64) -> bool {
        self.names & bit != 0
    }
}

/// Root-level identifiers of an expression: not inside quotes, not after a
/// `.`, not a keyword, not a function being called. A name this misreads
/// only makes the context carry extras it did not need.
fn identifiers(expression: &str) -> Vec<&str> {
    identifier_spans(expression)
        .into_iter()
        .map(|(start, end)| &expression[start..end])
        .collect()
}

/// The names read as `lists.<name>` (a root `lists`, a `.`, a name).
pub fn list_names(expression: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for (start, end) in identifier_spans(expression) {
        if &expression[start..end] != "lists" {
            continue;
        }
        let rest = expression[end..].trim_start();
        let Some(rest) = rest.strip_prefix('.') else {
            continue;
        };
        let rest = rest.trim_start();
        let len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if len > 0 {
            out.push(&rest[..len]);
        }
    }
    out
}

/// The byte ranges of [`identifiers`].
fn identifier_spans(expression: &str) -> Vec<(usize, usize)> {
    let bytes = expression.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\'' || b == b'"' || b == b'`' {
            i += 1;
            while i < bytes.len() && bytes[i] != b {
                if bytes[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if b.is_ascii_alphabetic() || b == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let word = &expression[start..i];
            let member = expression[..start].trim_end().ends_with('.');
            let call = expression[i..].trim_start().starts_with('(');
            let keyword = matches!(
                word,
                "and" | "or" | "not" | "in" | "true" | "false" | "null"
            );
            if !(member || call || keyword) {
                out.push((start, i));
            }
            continue;
        }
        if b.is_ascii_digit() {
            // A number such as 1e3 or 0.5: not an identifier.
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    out
}

impl Input {
    /// The rules' evaluation context: the same names and values the input
    /// serializes to, built straight from the typed fields.
    pub fn to_variable(&self) -> Variable {
        self.context(&Uses::ALL)
    }

    /// The evaluation context with only the parts `uses` names.
    pub fn context(&self, uses: &Uses) -> Variable {
        let mut map = VariableMap::with_capacity(40);
        // Extras never share a name with the features below: the parser
        // renames such a payload field `extra_<name>`.
        match &uses.extras {
            None => {
                for (name, value) in &self.extra {
                    map.insert_str(name, Variable::from(value));
                }
            }
            Some(names) => {
                for name in names {
                    if let Some(value) = self.extra.get(name) {
                        map.insert_str(name, Variable::from(value));
                    }
                }
            }
        }
        self.put_features(uses, &mut map);
        if uses.wants(bit("lists")) && uses.lists.is_some() {
            map.insert(
                key("lists"),
                lists_variable(&self.lists, uses.lists.as_deref()),
            );
        }
        Variable::from_object(map)
    }
}

/// Where a path of names (`velocity.card.count_5m`) leads in the evaluation
/// context of a rule set, worked out once when the set is compiled, so that
/// a decision reads the value straight from its input ([`Input::at`]) and
/// gets what the context would hold there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    root: Root,
    /// Indices into the names of each part along the path.
    members: Box<[u8]>,
    /// The path goes on below a plain value or names no member of a part:
    /// null, as the engine reads a missing member.
    beyond: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Root {
    /// An index into [`CONTEXT_NAMES`].
    Feature(usize),
    /// A payload extra or `gateway_*` field.
    Extra(Box<str>),
    /// A name the rule set's context leaves out ([`Uses`]): null there.
    Absent,
    /// `lists.<name>`: whether the transaction is on that list; `declared`
    /// when the context holds the name whatever the answer (else it holds
    /// only the lists that matched).
    List { name: Box<str>, declared: bool },
}

/// A value [`Input::at`] leaves to the rule engine: something below an array
/// or object the request sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreadable;

impl Place {
    /// The place of `path` (at least one name) in the context built with
    /// `uses`; `None` for an empty path or a part too large to index.
    pub fn of(path: &[&str], uses: &Uses) -> Option<Place> {
        let (first, rest) = path.split_first()?;
        if let (["lists", name, more @ ..], true) = (path, uses.wants(bit("lists"))) {
            return Some(Place {
                root: match uses.declares_list(name) {
                    Some(false) => Root::Absent,
                    declared => Root::List {
                        name: (*name).into(),
                        declared: declared.is_some(),
                    },
                },
                members: Box::new([]),
                beyond: !more.is_empty(),
            });
        }
        let root = match CONTEXT_NAMES.iter().position(|n| n == first) {
            Some(i) if uses.wants(1 << i) => Root::Feature(i),
            Some(_) => Root::Absent,
            None if uses.wants_extra(first) => Root::Extra((*first).into()),
            None => Root::Absent,
        };
        let mut members = Vec::new();
        let mut beyond = !rest.is_empty();
        if let Root::Feature(i) = root {
            // Which features are parts, and their members, follow from the
            // types alone: the default input has the shape of every input.
            let shape = Input::default();
            let mut value = shape.feature(i);
            beyond = false;
            for name in rest {
                let Val::Part(part) = value else {
                    beyond = true;
                    break;
                };
                let Some(m) = part.names().iter().position(|n| n == name) else {
                    beyond = true;
                    break;
                };
                members.push(u8::try_from(m).ok()?);
                value = part.read(m);
            }
        }
        Some(Place {
            root,
            members: members.into(),
            beyond,
        })
    }
}

impl Input {
    /// The value at `place`: what the context built with the place's
    /// [`Uses`] holds there.
    pub fn at(&self, place: &Place) -> Result<Val<'_>, Unreadable> {
        let mut value = match &place.root {
            Root::Feature(i) => self.feature(*i),
            Root::Extra(name) => self.extra.get(&**name).map_or(Val::Null, json),
            Root::Absent => Val::Null,
            Root::List { name, declared } => match (self.lists.contains(name), declared) {
                (true, _) => Val::Bool(true),
                (false, true) => Val::Bool(false),
                (false, false) => Val::Null,
            },
        };
        for &m in &place.members {
            let Val::Part(part) = value else {
                return Ok(Val::Null);
            };
            value = part.read(usize::from(m));
        }
        if place.beyond {
            // Below JSON the request sent, the engine reads on; below
            // anything else it reads null.
            return match value {
                Val::Json(_) => Err(Unreadable),
                _ => Ok(Val::Null),
            };
        }
        Ok(value)
    }
}

part!(DeviceInput {
    known,
    provider,
    visitor_id,
    confidence,
    bot,
    bot_probability,
    vpn,
    proxy,
    tor,
    incognito,
    tampering,
    virtual_machine,
    emulator,
    jailbroken,
    rooted,
    frida,
    mitm_attack,
    ip_address,
    ip_country,
    ip_asn,
    ip_datacenter,
    ip_blocklisted,
    suspect_score,
    provider_verdict,
    device_type,
});

part!(VelocityInput {
    user,
    card,
    device,
    ip,
    cards_per_device,
    cards_per_user,
    devices_per_user,
});

part!(CustomerInput {
    known,
    status,
    age_days,
    decisions,
    allows,
    reviews,
    blocks,
    fraud_labels,
    amount_count,
    avg_amount,
    max_amount,
    devices,
    cards,
    known_device,
    known_card,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uses_finds_root_names_only() {
        let uses = Uses::of([
            "amount > 5 and device.vpn",
            "'customer' == email_domain or \"velocity\" == x",
        ]);
        assert!(uses.wants(bit("amount")));
        assert!(uses.wants(bit("device")));
        assert!(uses.wants(bit("email_domain")));
        assert!(!uses.wants(bit("customer")), "inside a string literal");
        assert!(!uses.wants(bit("velocity")), "inside a string literal");
        assert!(uses.wants_extra("x"), "x is not a context name: an extra");
        assert!(!uses.wants_extra("y"));
        let uses = Uses::of(["velocity.device.count_5m > 3 and 1e3 > 2"]);
        assert!(uses.wants(bit("velocity")));
        assert!(
            !uses.wants(bit("device")),
            "a member name, not the root device"
        );
        assert_eq!(uses.extras, Some(vec![]));
        assert_eq!(Uses::of(["$root.amount > 1"]), Uses::ALL);
    }

    #[test]
    fn the_partial_context_has_the_same_values() {
        let input = super::super::sample_input();
        let uses = Uses::of(["amount > 1 and customer.known"]);
        let partial = input.context(&uses).to_value();
        let full = input.to_variable().to_value();
        assert_eq!(partial["amount"], full["amount"]);
        assert_eq!(partial["customer"], full["customer"]);
        assert!(partial.get("device").is_none());
    }
}

/// The `lists` feature: the names of the lists the transaction is on, shown
/// as `{"name": true}` (only the lists that matched, to keep decisions
/// small); rules read every other name as `false`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListHits(Vec<String>);

impl ListHits {
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        let set: std::collections::BTreeSet<String> = names.into_iter().collect();
        Self(set.into_iter().collect())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.binary_search_by(|n| n.as_str().cmp(name)).is_ok()
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl serde::Serialize for ListHits {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|name| (name, true)))
    }
}

impl<'de> serde::Deserialize<'de> for ListHits {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map: std::collections::HashMap<String, bool> =
            serde::Deserialize::deserialize(deserializer)?;
        Ok(Self::new(
            map.into_iter().filter(|(_, on)| *on).map(|(name, _)| name),
        ))
    }
}
