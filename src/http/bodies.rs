//! The documented shapes of the request bodies the handlers read field by
//! field (`JsonObject`): the same required fields, enums and limits as the
//! validation in `fields`, the transaction parser and the services, so a
//! client generator or a contract test learns what is accepted.
#![allow(dead_code)] // the types document bodies; the handlers read them by hand

use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::RefOr;
use utoipa::Number;
use utoipa::ToSchema;

use crate::providers::Provider;

/// Not blank (after trimming Unicode white space) and no control character:
/// what `fields::text` and the transaction parser accept.
pub const TEXT_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$";
/// [`TEXT_PATTERN`], and not dots only (a URL path would resolve `.` and `..` away).
const REQUEST_ID_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000.][^\x00-\x1f\x7f-\x9f]*$|^[^\x00-\x1f\x7f-\x9f]*[ \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*\.[^\x00-\x1f\x7f-\x9f]*$|^[^\x00-\x1f\x7f-\x9f]*\.[^\x00-\x1f\x7f-\x9f]*[ \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$";
const SUBSCRIBER_ID_PATTERN: &str = "^[A-Za-z0-9_-]{1,64}$";

fn text_with(max: usize, pattern: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(pattern))
}

fn text(max: usize) -> ObjectBuilder {
    text_with(max, TEXT_PATTERN)
}

/// A JSON integer as serde reads one: any `i64` or `u64`.
fn integer() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(Number::Int(isize::MIN)))
        .maximum(Some(Number::UInt(usize::MAX)))
}

fn one_of(description: &str, items: impl IntoIterator<Item = ObjectBuilder>) -> RefOr<Schema> {
    let mut one = OneOfBuilder::new().description(Some(description));
    for item in items {
        one = one.item(item.build());
    }
    Schema::OneOf(one.build()).into()
}

/// `null` counts as absent wherever these bodies have an optional field.
fn nullable(schema: RefOr<Schema>) -> RefOr<Schema> {
    let null = ObjectBuilder::new().schema_type(Type::Null).build();
    Schema::OneOf(OneOfBuilder::new().item(schema).item(null).build()).into()
}

/// Not blank after trimming Unicode white space (what the rule parser checks).
const NON_BLANK: &str = r"[^\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

fn string_enum(values: &[&str]) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
}

pub fn subscriber_id_schema() -> RefOr<Schema> {
    one_of(
        "A subscriber id: 1-64 characters from [A-Za-z0-9_-], or an integer standing for its decimal form (`12` and `\"12\"` are the same subscriber).",
        [
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(SUBSCRIBER_ID_PATTERN)),
            integer(),
        ],
    )
}

fn id_256() -> RefOr<Schema> {
    text(256).into()
}

fn ingest_request_id() -> RefOr<Schema> {
    text_with(256, REQUEST_ID_PATTERN).into()
}

/// A merchant's identifier in a score: text, or an integer read as its decimal form.
fn identifier() -> RefOr<Schema> {
    one_of(
        "At most 256 characters, not blank, no control characters; an integer is read as its decimal form.",
        [text(256), integer()],
    )
}

fn amount() -> RefOr<Schema> {
    one_of(
        "The amount in major units of `currency`: a number from 0 to 100000000000000, or a string holding a plain decimal number (`\"12.50\"`: digits, an optional fraction, no sign, exponent or spaces).",
        [
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(0))
                .maximum(Some(100_000_000_000_000_f64)),
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^0*[0-9]{1,14}(\.[0-9]{1,14})?$|^0*100000000000000(\.0+)?$")),
        ],
    )
}

fn currency() -> RefOr<Schema> {
    let codes: Vec<&str> = crate::decision::reference::currency::all()
        .iter()
        .map(|c| c.code)
        .collect();
    string_enum(&codes)
        .description(Some(
            "ISO 4217 alphabetic code (any case is accepted; upper case listed).",
        ))
        .into()
}

fn digits(min: usize, max: usize, low: u64, high: u64, what: &str) -> RefOr<Schema> {
    one_of(
        what,
        [
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(format!("^[0-9]{{{min},{max}}}$"))),
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(Number::UInt(low as usize)))
                .maximum(Some(Number::UInt(high as usize))),
        ],
    )
}

fn bin() -> RefOr<Schema> {
    digits(
        6,
        8,
        100_000,
        99_999_999,
        "The card's first 6 to 8 digits (a string, or an integer of 6 to 8 digits).",
    )
}

fn last4() -> RefOr<Schema> {
    digits(
        4,
        4,
        1000,
        9999,
        "The card's last 4 digits (a string, or an integer of 4 digits).",
    )
}

fn country() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[A-Za-z]{2}$"))
        .description(Some("ISO 3166 alpha-2 country code, any case"))
        .into()
}

fn label_text() -> RefOr<Schema> {
    text(64).into()
}

fn email() -> RefOr<Schema> {
    text(512).into()
}

fn ip_address() -> RefOr<Schema> {
    one_of(
        "An IPv4 or IPv6 address",
        [
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::Custom("ipv4".into()))),
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::Custom("ipv6".into()))),
        ],
    )
}

fn callback_url() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::Custom("uri".into())))
        .max_length(Some(2048))
        .pattern(Some("^[Hh][Tt][Tt][Pp][Ss]?://[^/?#@]+([/?#].*)?$"))
        .description(Some(
            "An absolute http or https URL without credentials. Its host must resolve to a public address (unless the server allows private callbacks), else `400`.",
        ))
        .into()
}

fn opt_bin() -> RefOr<Schema> {
    nullable(bin())
}

fn opt_last4() -> RefOr<Schema> {
    nullable(last4())
}

fn opt_label_text() -> RefOr<Schema> {
    nullable(label_text())
}

fn opt_country() -> RefOr<Schema> {
    nullable(country())
}

fn opt_identifier() -> RefOr<Schema> {
    nullable(identifier())
}

fn opt_email() -> RefOr<Schema> {
    nullable(email())
}

fn opt_ip_address() -> RefOr<Schema> {
    nullable(ip_address())
}

fn opt_callback_url() -> RefOr<Schema> {
    nullable(callback_url())
}

/// `POST /fingerprint/ingest` body. Other fields are ignored.
#[derive(ToSchema)]
pub struct IngestRequest {
    /// The provider's request (event) id: Fingerprint `requestId` / `event_id`,
    /// Stytch `telemetry_id`, FingerprintIQ event id. Not dots only.
    #[schema(schema_with = ingest_request_id, example = "1708102555327.NLOjmg")]
    request_id: String,
    /// The subscriber's id: it must be the API key's (`403` otherwise).
    #[schema(schema_with = subscriber_id_schema)]
    subscriber_id: String,
    #[schema(schema_with = id_256, example = "DEV-SESSION-XYZ")]
    session_id: String,
    #[schema(schema_with = id_256, example = "user@example.com")]
    user_id: String,
    /// Which provider to ask; the subscriber's default (first configured) when
    /// absent. One it has not configured is a `422`.
    #[schema(nullable)]
    provider: Option<Provider>,
}

/// The features of a transaction. The fields listed are read and validated;
/// any other field is accepted and kept as an extra feature rules can read
/// (one named like a computed feature is kept as `extra_<name>`). `null`
/// counts as absent.
#[derive(ToSchema)]
pub struct ScorePayload {
    #[schema(schema_with = amount)]
    transaction_amount: String,
    #[schema(schema_with = currency)]
    currency: String,
    #[schema(schema_with = opt_bin)]
    bin: Option<String>,
    #[schema(schema_with = opt_last4)]
    last4: Option<String>,
    /// `visa`, `mastercard`, … (stored lower case).
    #[schema(schema_with = opt_label_text)]
    card_brand: Option<String>,
    /// `credit`, `debit`, `prepaid` or `charge` (stored lower case).
    #[schema(schema_with = opt_label_text)]
    card_funding: Option<String>,
    #[schema(schema_with = opt_country)]
    card_country: Option<String>,
    #[schema(schema_with = opt_identifier)]
    user_id: Option<String>,
    #[schema(schema_with = opt_identifier)]
    session_id: Option<String>,
    /// The merchant's order or transaction number.
    #[schema(schema_with = opt_identifier)]
    external_transaction_number: Option<String>,
    #[schema(schema_with = opt_email)]
    email: Option<String>,
    #[schema(schema_with = opt_ip_address)]
    ip_address: Option<String>,
    #[schema(schema_with = opt_country)]
    billing_country: Option<String>,
    #[schema(schema_with = opt_country)]
    shipping_country: Option<String>,
}

/// `POST /risk/bin/score` body. `request_id`, `subscriber_id` and
/// `callback_url` may stand inside `payload` instead of at the top level. A
/// `gateway_event` (a raw Stripe, Adyen, Checkout.com, Braintree or Square
/// event) supplies the features itself, and then `payload` is optional; the
/// payload's fields win over the event's. Other top-level fields are ignored.
#[derive(ToSchema)]
pub struct ScoreRequest {
    #[schema(schema_with = identifier)]
    request_id: String,
    /// The subscriber's id: it must be the API key's (`403` otherwise).
    #[schema(schema_with = subscriber_id_schema)]
    subscriber_id: String,
    payload: ScorePayload,
    /// A raw gateway event; one riskgate cannot recognize (or that carries no
    /// amount when `payload` has none) answers `422`.
    #[schema(value_type = Option<Object>)]
    gateway_event: Option<serde_json::Value>,
    #[schema(schema_with = opt_callback_url)]
    callback_url: Option<String>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum CustomerStatus {
    Trusted,
    Blocked,
    Normal,
}

/// `PATCH /customers/{user_id}` body.
#[derive(ToSchema)]
pub struct CustomerStatusUpdate {
    status: CustomerStatus,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Label {
    Fraud,
    Legit,
    Chargeback,
}

/// `POST /risk/decisions/{decision_id}/feedback` body.
#[derive(ToSchema)]
pub struct Feedback {
    label: Label,
}

fn name_200() -> RefOr<Schema> {
    text(200).into()
}

fn optional_subscriber_id() -> RefOr<Schema> {
    one_of(
        "The subscriber's id (generated when absent): 1-64 characters from [A-Za-z0-9_-] or an integer, not a card number.",
        [
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(SUBSCRIBER_ID_PATTERN)),
            integer(),
            ObjectBuilder::new().schema_type(Type::Null),
        ],
    )
}

/// `POST /admin/subscribers` body.
#[derive(ToSchema)]
pub struct NewSubscriber {
    #[schema(schema_with = optional_subscriber_id)]
    id: Option<String>,
    #[schema(schema_with = name_200)]
    name: String,
    /// How its callbacks are signed (default `v1`).
    signing_scheme: Option<SigningSchemeName>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum SigningSchemeName {
    V1,
    V1a,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum SubscriberStatus {
    Active,
    Suspended,
}

fn nullable_name_200() -> RefOr<Schema> {
    one_of(
        "At most 200 characters, not blank, no control characters",
        [text(200), ObjectBuilder::new().schema_type(Type::Null)],
    )
}

/// `PATCH /admin/subscribers/{id}` body: a non-null `name` or `status` (or both).
pub struct SubscriberUpdate;

impl utoipa::PartialSchema for SubscriberUpdate {
    fn schema() -> RefOr<Schema> {
        let object = ObjectBuilder::new()
            .property("name", nullable_name_200())
            .property(
                "status",
                nullable(string_enum(&["active", "suspended"]).into()),
            )
            .build();
        let present = |field: &str| {
            ObjectBuilder::new()
                .property(field, ObjectBuilder::new().schema_type(Type::String))
                .required(field)
                .build()
        };
        let either = AnyOfBuilder::new()
            .item(present("name"))
            .item(present("status"))
            .build();
        Schema::AllOf(
            AllOfBuilder::new()
                .item(object)
                .item(Schema::AnyOf(either))
                .build(),
        )
        .into()
    }
}

impl ToSchema for SubscriberUpdate {}

/// `POST /admin/subscribers/{id}/keys` body; it may be empty.
#[derive(ToSchema)]
pub struct NewApiKey {
    /// A label for the key.
    #[schema(schema_with = nullable_name_200)]
    name: Option<String>,
}

/// `POST /admin/subscribers/{id}/webhook-secret/rotate` body; it may be empty.
#[derive(ToSchema)]
pub struct SecretRotation {
    /// How long callbacks also carry the previous secret's signature
    /// (default 86400, at most 30 days).
    #[schema(nullable, minimum = 0, maximum = 2_592_000)]
    grace_period_seconds: Option<u64>,
}

/// `PUT /admin/subscribers/{id}/signing-scheme` body.
#[derive(ToSchema)]
pub struct SigningSchemeChange {
    signing_scheme: SigningSchemeName,
    /// How long callbacks also carry the previous scheme's signature
    /// (default 86400, at most 30 days; 0 switches at once).
    #[schema(nullable, minimum = 0, maximum = 2_592_000)]
    grace_period_seconds: Option<u64>,
}

fn region() -> RefOr<Schema> {
    nullable(string_enum(&["us", "eu", "ap"]).into())
}

fn api_version() -> RefOr<Schema> {
    nullable(string_enum(&["v4", "v3"]).into())
}

fn secret_512() -> RefOr<Schema> {
    text(512).into()
}

/// Fingerprint credentials (`region` default `us`, `api_version` default `v4`).
#[derive(ToSchema)]
pub struct FingerprintCredentials {
    #[schema(schema_with = secret_512)]
    secret_key: String,
    #[schema(schema_with = region)]
    region: Option<String>,
    #[schema(schema_with = api_version)]
    api_version: Option<String>,
}

/// Stytch credentials.
#[derive(ToSchema)]
pub struct StytchCredentials {
    #[schema(schema_with = secret_512)]
    project_id: String,
    #[schema(schema_with = secret_512)]
    secret: String,
}

/// FingerprintIQ credentials.
#[derive(ToSchema)]
pub struct FingerprintiqCredentials {
    #[schema(schema_with = secret_512)]
    secret_key: String,
}

/// A provider's credentials, in the shape the `provider` path segment names.
/// Unknown fields are ignored.
pub struct ProviderCredentials;

impl utoipa::PartialSchema for ProviderCredentials {
    fn schema() -> RefOr<Schema> {
        Schema::AnyOf(
            AnyOfBuilder::new()
                .item(FingerprintCredentials::schema())
                .item(StytchCredentials::schema())
                .item(FingerprintiqCredentials::schema())
                .build(),
        )
        .into()
    }
}

impl ToSchema for ProviderCredentials {}

/// `PUT /admin/subscribers/{id}/rate-limit` body. No other field is accepted.
#[derive(ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitRequest {
    /// Sustained requests per second, from one a day to 1000000.
    #[schema(minimum = 0.000_011_574_074_074_074_073, maximum = 1_000_000)]
    requests_per_second: f64,
    /// Requests allowed at once above the rate (default: one second's worth, at least 1).
    #[schema(nullable, minimum = 1, maximum = 1_000_000)]
    burst: Option<u64>,
}

fn rule_name() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(128))
        .pattern(Some(NON_BLANK))
        .description(Some("Unique in the rule set; not blank"))
        .into()
}

fn expression() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(4096))
        .pattern(Some(NON_BLANK))
        .description(Some(
            "A boolean expression over the features (`amount > 1000 and device.vpn`); one that does not compile is a `400` naming the rule",
        ))
        .into()
}

fn description_1024() -> RefOr<Schema> {
    one_of(
        "Not blank, at most 1024 characters",
        [
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(1024))
                .pattern(Some(NON_BLANK)),
            ObjectBuilder::new().schema_type(Type::Null),
        ],
    )
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum RuleAction {
    Allow,
    Review,
    Block,
}

/// One rule of a rule set.
#[derive(ToSchema)]
pub struct RuleInput {
    #[schema(schema_with = rule_name)]
    name: String,
    #[schema(schema_with = expression)]
    expression: String,
    /// Added to the risk score when the rule hits.
    #[schema(minimum = -1, maximum = 1)]
    weight: f64,
    /// The action a hit forces (at least).
    #[schema(nullable)]
    action: Option<RuleAction>,
    /// With `action` `allow` or `block` only (else `400`): the action
    /// overrides the others; a final `block` beats a final `allow`, which
    /// beats every other action and the score. Default `false`.
    #[schema(rename = "final", nullable)]
    is_final: Option<bool>,
    #[schema(schema_with = description_1024)]
    description: Option<String>,
    /// Default `true`.
    #[schema(nullable)]
    enabled: Option<bool>,
}

/// `PUT /admin/subscribers/{id}/rules` and `POST …/rules/versions` body.
/// `review_threshold` must not exceed `block_threshold`.
#[derive(ToSchema)]
pub struct RuleSetInput {
    /// What the version changes, for the people who read the history.
    #[schema(schema_with = note_1024)]
    note: Option<String>,
    /// Default 0.30.
    #[schema(nullable, minimum = 0, maximum = 1)]
    review_threshold: Option<f64>,
    /// Default 0.70.
    #[schema(nullable, minimum = 0, maximum = 1)]
    block_threshold: Option<f64>,
    #[schema(max_items = 500)]
    rules: Vec<RuleInput>,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

/// A rule that hit.
#[derive(ToSchema)]
pub struct RuleHitView {
    rule: String,
    #[schema(minimum = -1, maximum = 1)]
    weight: f64,
    /// The action the rule forces, if any.
    action: Option<RuleAction>,
}

/// A rule that could not be evaluated on this input (it did not hit).
#[derive(ToSchema)]
pub struct RuleErrorView {
    rule: String,
    error: String,
}

fn note_1024() -> RefOr<Schema> {
    one_of(
        "At most 1024 characters, not blank, no control characters",
        [text(1024), ObjectBuilder::new().schema_type(Type::Null)],
    )
}

/// What the shadow rule set would have decided on a decision. It never
/// acts: it is in neither the score's answer nor the callback.
#[derive(ToSchema)]
pub struct ShadowResult {
    /// The shadow's rule-set version.
    version: i64,
    #[schema(minimum = 0, maximum = 1)]
    risk_score: f64,
    risk_level: RiskLevel,
    action: RuleAction,
    rule_hits: Vec<RuleHitView>,
}

/// A decision's `result`.
#[derive(ToSchema)]
pub struct DecisionResult {
    #[schema(minimum = 0, maximum = 1)]
    risk_score: f64,
    risk_level: RiskLevel,
    action: RuleAction,
    rule_hits: Vec<RuleHitView>,
    /// Present when some rules failed on this input.
    rule_errors: Option<Vec<RuleErrorView>>,
    /// The rule-set version that decided (0 = the default pack).
    rules_version: i64,
}

/// The `200` of a score.
#[derive(ToSchema)]
pub struct ScoreResponse {
    #[schema(example = "dec_8fJ2kq0xLmN4pR7sT1uV3wYz")]
    decision_id: String,
    /// Every feature the rules saw.
    #[schema(value_type = Object)]
    input: serde_json::Value,
    result: DecisionResult,
    #[schema(schema_with = bin_source)]
    source: String,
    #[schema(rename = "type", schema_with = transaction_type)]
    kind: String,
    async_job: AsyncJob,
}

fn bin_source() -> RefOr<Schema> {
    string_enum(&["bin"]).into()
}

fn transaction_type() -> RefOr<Schema> {
    string_enum(&["transaction"]).into()
}

/// The jobs to list, by state.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum JobStateFilter {
    Pending,
    Running,
    Succeeded,
    Failed,
}

/// What the async part of a decision will do: a callback once the device
/// signals are in, when a `callback_url` was accepted.
#[derive(serde::Serialize, ToSchema)]
pub struct AsyncJob {
    /// `queued` (a callback will be sent), `delivered`, `failed`, or `none`.
    #[schema(value_type = String, example = "queued", schema_with = async_status)]
    pub status: &'static str,
    pub will_callback: bool,
}

fn async_status() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["queued", "delivered", "failed", "none"]))
        .into()
}

/// `POST /risk/feedback/gateway` body: a gateway's raw dispute or fraud
/// report, as the gateway sent it. Each shape keeps every other field the
/// gateway puts in it.
pub struct GatewayReport;

/// A payment id as a dispute names it: an id, or (Stripe) the expanded object.
fn payment_id() -> RefOr<Schema> {
    Schema::AnyOf(
        AnyOfBuilder::new()
            .item(text(256).build())
            .item(
                ObjectBuilder::new()
                    .property("id", text(256))
                    .required("id")
                    .build(),
            )
            .build(),
    )
    .into()
}

fn stripe_object(kind: &str, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .description(Some(description))
        .property("object", string_enum(&[kind]))
        .property("id", ObjectBuilder::new().schema_type(Type::String))
        .property("charge", payment_id())
        .property("payment_intent", nullable(payment_id()))
        .required("object")
        .required("charge")
}

impl utoipa::PartialSchema for GatewayReport {
    fn schema() -> RefOr<Schema> {
        let dispute = || {
            stripe_object(
            "dispute",
            "A Stripe dispute object (labels `chargeback`); `charge` and/or `payment_intent` name the payment.",
            )
        };
        let warning = || {
            stripe_object(
                "radar.early_fraud_warning",
                "A Stripe early fraud warning object (labels `fraud`).",
            )
        };
        let event = |types: ObjectBuilder, object: ObjectBuilder, what: &str| {
            ObjectBuilder::new()
                .description(Some(what))
                .property("object", string_enum(&["event"]))
                .property("type", types)
                .property(
                    "data",
                    ObjectBuilder::new()
                        .property("object", object)
                        .required("object"),
                )
                .required("object")
                .required("type")
                .required("data")
        };
        let item = || {
            ObjectBuilder::new()
            .description(Some(
                "An Adyen CHARGEBACK NotificationRequestItem (labels `chargeback`): `originalReference` is the payment's pspReference, `merchantReference` the merchant's.",
            ))
            .property("eventCode", string_enum(&["CHARGEBACK"]))
            .property("originalReference", text(256))
            .property("merchantReference", text(256))
            .property("pspReference", ObjectBuilder::new().schema_type(Type::String))
            .required("eventCode")
            .required("originalReference")
        };
        let webhook = ObjectBuilder::new()
            .description(Some(
                "An Adyen Standard webhook; its first CHARGEBACK item is read.",
            ))
            .property(
                "notificationItems",
                utoipa::openapi::schema::ArrayBuilder::new()
                    .items(
                        ObjectBuilder::new()
                            .property("NotificationRequestItem", item())
                            .required("NotificationRequestItem"),
                    )
                    .min_items(Some(1)),
            )
            .required("notificationItems");
        Schema::AnyOf(
            AnyOfBuilder::new()
                .description(Some(
                    "A Stripe charge.dispute.created or radar.early_fraud_warning.* event, a bare Stripe dispute or radar.early_fraud_warning object, or an Adyen CHARGEBACK notification.",
                ))
                .item(event(
                    string_enum(&["charge.dispute.created"]),
                    dispute(),
                    "A Stripe `charge.dispute.created` event (labels `chargeback`).",
                ).build())
                .item(event(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(r"^radar\.early_fraud_warning\.")),
                    warning(),
                    "A Stripe `radar.early_fraud_warning.*` event (labels `fraud`).",
                ).build())
                .item(dispute().build())
                .item(warning().build())
                .item(webhook.build())
                .item(item().build())
                .build(),
        )
        .into()
    }
}

impl ToSchema for GatewayReport {}

fn list_description() -> RefOr<Schema> {
    nullable(
        text(1024)
            .description(Some("At most 1024 characters; `null` clears it"))
            .into(),
    )
}

/// `PUT /lists/{name}` body: creates the list, or sets its kind (only while
/// it is empty) and description.
#[derive(ToSchema)]
pub struct ListInput {
    kind: crate::service::lists::ListKindName,
    #[schema(schema_with = list_description)]
    description: Option<String>,
}

fn entry_value() -> RefOr<Schema> {
    text(256)
        .description(Some(
            "Normalized for the list's kind: an email lower-cased, an IP address or CIDR range \
             parsed (host bits cleared), a card number kept as its first 6 and last 4 digits \
             (`411111:1111`; a full, masked or `BIN:last4` number is accepted), a BIN of 6 to 8 \
             digits, a country code upper-cased. A value that does not fit the kind is a `400`.",
        ))
        .into()
}

fn entry_reason() -> RefOr<Schema> {
    nullable(text(1024).description(Some("Why it is on the list")).into())
}

fn entry_expiry() -> RefOr<Schema> {
    nullable(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .description(Some(
                "RFC 3339; from then on the entry no longer matches (it stays listed)",
            ))
            .into(),
    )
}

/// `POST /lists/{name}/entries` body. An entry with the same value is
/// replaced.
#[derive(ToSchema)]
pub struct ListEntryInput {
    #[schema(schema_with = entry_value)]
    value: String,
    #[schema(schema_with = entry_reason)]
    reason: Option<String>,
    #[schema(schema_with = entry_expiry)]
    expires_at: Option<String>,
}
