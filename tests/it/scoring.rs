#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Transaction scoring as a subscriber sees it, on every backend, against the
//! real app: `POST /risk/bin/score` (validation, response shape, gateway
//! events, card scrubbing, idempotency, rules and the score formula, device
//! signals), `GET /risk/decisions/{id}`, feedback, and `GET/PATCH
//! /customers/{user_id}`.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use crate::common::trials::Server;
use crate::common::{read, Backend, TestApp};
use reqwest::Method;
use riskgate::simulator::{self, SimRunning, SimulatorConfig};
use riskgate::store::DatabaseUrl;
use serde_json::{json, Value};

// ---- helpers ------------------------------------------------------------

/// Sends `method path` with an optional API key, Idempotency-Key and body.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: Option<&str>,
    idempotency: Option<&str>,
    body: Option<String>,
) -> (u16, Value) {
    let mut req = app.client.request(method, app.url(path));
    if let Some(key) = key {
        req = req.header("X-API-Key", key);
    }
    if let Some(idem) = idempotency {
        req = req.header("Idempotency-Key", idem);
    }
    if let Some(body) = body {
        req = req.header("Content-Type", "application/json").body(body);
    }
    read(req.send().await.unwrap()).await
}

async fn score(app: &TestApp, key: &str, body: &Value) -> (u16, Value) {
    call(
        app,
        Method::POST,
        "/risk/bin/score",
        Some(key),
        None,
        Some(body.to_string()),
    )
    .await
}

/// Scores and insists on a 200.
async fn score_ok(app: &TestApp, key: &str, body: &Value) -> Value {
    let (status, resp) = score(app, key, body).await;
    assert_eq!(status, 200, "{body} -> {resp}");
    resp
}

async fn get(app: &TestApp, key: &str, path: &str) -> (u16, Value) {
    call(app, Method::GET, path, Some(key), None, None).await
}

async fn patch_customer(app: &TestApp, key: &str, user: &str, body: Value) -> (u16, Value) {
    call(
        app,
        Method::PATCH,
        &format!("/customers/{user}"),
        Some(key),
        None,
        Some(body.to_string()),
    )
    .await
}

async fn feedback(app: &TestApp, key: &str, decision: &str, body: Value) -> (u16, Value) {
    call(
        app,
        Method::POST,
        &format!("/risk/decisions/{decision}/feedback"),
        Some(key),
        None,
        Some(body.to_string()),
    )
    .await
}

async fn put_rules(app: &TestApp, subscriber: &str, body: Value) -> (u16, Value) {
    app.admin(
        Method::PUT,
        &format!("/admin/subscribers/{subscriber}/rules"),
        Some(body),
    )
    .await
}

/// A score body for subscriber 12 with a payload.
fn tx(request_id: &str, payload: Value) -> Value {
    json!({"request_id": request_id, "subscriber_id": 12, "payload": payload})
}

fn hit_names(resp: &Value) -> Vec<String> {
    resp["result"]["rule_hits"]
        .as_array()
        .unwrap_or_else(|| panic!("no rule_hits in {resp}"))
        .iter()
        .map(|h| h["rule"].as_str().unwrap().to_owned())
        .collect()
}

fn risk(resp: &Value) -> f64 {
    resp["result"]["risk_score"]
        .as_f64()
        .unwrap_or_else(|| panic!("no risk_score in {resp}"))
}

/// `(risk_score, risk_level, action)` of a score response.
fn verdict(resp: &Value) -> (f64, String, String) {
    (
        risk(resp),
        resp["result"]["risk_level"].as_str().unwrap().to_owned(),
        resp["result"]["action"].as_str().unwrap().to_owned(),
    )
}

fn error_of(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {body}"))
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Every text column of every decision, every stored card and every
/// customer id, as one string.
async fn stored_decisions(app: &TestApp) -> String {
    use sqlx::{Connection, Row};
    const DECISIONS: &str = "SELECT id, request_id, COALESCE(idempotency_key, ''), request_hash, \
         input, result, COALESCE(callback_url, ''), COALESCE(user_id, '') FROM decisions";
    const CARDS: &str = "SELECT bin || ':' || last4 FROM customer_cards \
         UNION ALL SELECT user_id FROM customers";
    let mut out = String::new();
    match &app.db.url {
        DatabaseUrl::Sqlite { path } => {
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{path}"))
                .await
                .unwrap();
            for query in [DECISIONS, CARDS] {
                for row in sqlx::query(query).fetch_all(&mut conn).await.unwrap() {
                    for i in 0..row.len() {
                        out.push_str(&row.try_get::<String, _>(i).unwrap());
                        out.push('\n');
                    }
                }
            }
            conn.close().await.unwrap();
        }
        DatabaseUrl::Postgres { url } => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            for query in [DECISIONS, CARDS] {
                for row in sqlx::query(query).fetch_all(&mut conn).await.unwrap() {
                    for i in 0..row.len() {
                        out.push_str(&row.try_get::<String, _>(i).unwrap());
                        out.push('\n');
                    }
                }
            }
            conn.close().await.unwrap();
        }
    }
    // Callers assert what the rows do not hold: no rows would pass anything.
    assert!(!out.is_empty(), "no decision or customer stored");
    out
}

/// The raw bytes of the SQLite database and its journal files.
fn sqlite_files(app: &TestApp) -> Vec<u8> {
    let DatabaseUrl::Sqlite { path } = &app.db.url else {
        return Vec::new();
    };
    let dir = std::path::Path::new(path).parent().unwrap();
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            bytes.extend(std::fs::read(&p).unwrap());
        }
    }
    assert!(
        !bytes.is_empty(),
        "no database file under {}",
        dir.display()
    );
    bytes
}

fn contains_bytes(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

// ---- 1. validation ------------------------------------------------------

async fn score_validates_requests(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let other_key = app.subscriber_with_key("other").await;
    let base = || tx("r-1", json!({"transaction_amount": 10, "currency": "USD"}));

    let neither = json!({"error": "Request must contain 'payload' or 'gateway_event'"});
    for body in [
        json!({"request_id": "r-1", "subscriber_id": 12}),
        json!({"request_id": "r-1", "subscriber_id": 12, "payload": null, "gateway_event": null}),
    ] {
        assert_eq!(
            score(&app, &key, &body).await,
            (400, neither.clone()),
            "{body}"
        );
    }

    for field in ["transaction_amount", "currency"] {
        let expected = json!({"error": format!("Missing '{field}' in request body")});
        let mut body = base();
        body["payload"].as_object_mut().unwrap().remove(field);
        assert_eq!(score(&app, &key, &body).await, (400, expected.clone()));
        body["payload"][field] = Value::Null;
        assert_eq!(
            score(&app, &key, &body).await,
            (400, expected),
            "null is missing"
        );
    }
    for field in ["request_id", "subscriber_id"] {
        let expected = json!({"error": format!("Missing '{field}' in request body")});
        let mut body = base();
        body.as_object_mut().unwrap().remove(field);
        assert_eq!(score(&app, &key, &body).await, (400, expected.clone()));
        body[field] = Value::Null;
        assert_eq!(score(&app, &key, &body).await, (400, expected));
    }

    // Identifiers may stand inside the payload.
    let inside = json!({"payload": {"request_id": "in-payload", "subscriber_id": "12",
                                     "transaction_amount": 10, "currency": "USD"}});
    let resp = score_ok(&app, &key, &inside).await;
    assert_eq!(resp["input"]["request_id"], "in-payload");
    assert_eq!(resp["input"]["subscriber_id"], "12");

    // Field validation: a 400 whose error names the field.
    let cases = [
        ("transaction_amount", json!(-1)),
        ("transaction_amount", json!(-0.01)),
        ("transaction_amount", json!("abc")),
        ("transaction_amount", json!(true)),
        ("transaction_amount", json!([10])),
        ("currency", json!("XYZ")),
        ("currency", json!("US")),
        ("currency", json!(840)),
        ("bin", json!("12ab")),
        ("bin", json!("12345")),
        ("bin", json!("123456789")),
    ];
    for (field, value) in cases {
        let mut body = base();
        body["payload"][field] = value.clone();
        let (status, err) = score(&app, &key, &body).await;
        assert_eq!(status, 400, "{field}={value} -> {err}");
        assert!(
            error_of(&err).contains(&format!("'{field}'")),
            "{field}={value} -> {err}"
        );
    }
    for url in ["ftp://x", "not a url", "/relative/path", ""] {
        let mut body = base();
        body["callback_url"] = json!(url);
        let (status, err) = score(&app, &key, &body).await;
        assert_eq!(status, 400, "{url:?} -> {err}");
        assert!(
            error_of(&err).contains("'callback_url'"),
            "{url:?} -> {err}"
        );
    }

    // A decimal string amount is accepted; minor units follow the currency.
    let resp = score_ok(
        &app,
        &key,
        &tx(
            "r-str",
            json!({"transaction_amount": "12.50", "currency": "usd"}),
        ),
    )
    .await;
    assert_eq!(resp["input"]["transaction_amount"].as_f64(), Some(12.5));
    assert_eq!(resp["input"]["amount_minor"], 1250);
    assert_eq!(resp["input"]["currency"], "USD");
    for (code, amount, minor) in [("eUr", json!(1250), 125_000), ("jpy", json!(2500), 2500)] {
        let resp = score_ok(
            &app,
            &key,
            &tx(
                "r-cur",
                json!({"transaction_amount": amount, "currency": code}),
            ),
        )
        .await;
        assert_eq!(
            resp["input"]["currency"],
            code.to_ascii_uppercase(),
            "{resp}"
        );
        assert_eq!(resp["input"]["amount_minor"], minor, "{resp}");
    }

    // 12 and "12" are the same subscriber, echoed as sent.
    for id in [json!(12), json!("12")] {
        let mut body = base();
        body["subscriber_id"] = id.clone();
        let resp = score_ok(&app, &key, &body).await;
        assert_eq!(resp["input"]["subscriber_id"], id);
    }
    // Another tenant's id, in either place.
    let forbidden = json!({"error": "subscriber_id does not match API key"});
    for id in [json!(13), json!("other"), json!("012")] {
        let mut body = base();
        body["subscriber_id"] = id.clone();
        assert_eq!(
            score(&app, &key, &body).await,
            (403, forbidden.clone()),
            "{id}"
        );
    }
    assert_eq!(
        score(&app, &other_key, &base()).await,
        (403, forbidden.clone())
    );
    let mut inside = base();
    inside.as_object_mut().unwrap().remove("subscriber_id");
    inside["payload"]["subscriber_id"] = json!("other");
    assert_eq!(score(&app, &key, &inside).await, (403, forbidden));

    // Authentication.
    assert_eq!(
        call(
            &app,
            Method::POST,
            "/risk/bin/score",
            None,
            None,
            Some(base().to_string())
        )
        .await,
        (401, json!({"error": "Missing API key"}))
    );
    for bad in ["nope", &format!("{key}x")] {
        assert_eq!(
            score(&app, bad, &base()).await,
            (401, json!({"error": "Invalid API key"}))
        );
    }

    // Not JSON.
    let (status, err) = call(
        &app,
        Method::POST,
        "/risk/bin/score",
        Some(&key),
        None,
        Some("{".into()),
    )
    .await;
    assert_eq!(status, 400);
    assert!(error_of(&err).starts_with("Invalid JSON: "), "{err}");

    // Malformed subscriber ids.
    for id in [
        json!("a b"),
        json!(1.5),
        json!("x".repeat(65)),
        json!({"id": 12}),
    ] {
        let mut body = base();
        body["subscriber_id"] = id.clone();
        let (status, err) = score(&app, &key, &body).await;
        assert_eq!(status, 400, "{id} -> {err}");
        assert!(error_of(&err).contains("'subscriber_id'"), "{id} -> {err}");
    }
    // A blank Idempotency-Key.
    let (status, err) = call(
        &app,
        Method::POST,
        "/risk/bin/score",
        Some(&key),
        Some(" "),
        Some(base().to_string()),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert!(error_of(&err).contains("Idempotency-Key"), "{err}");

    // Too large.
    let mut big = base();
    big["payload"]["pad"] = json!("x".repeat(1024 * 1024 + 1));
    assert_eq!(
        score(&app, &key, &big).await,
        (413, json!({"error": "Request body too large"}))
    );

    // An unrecognizable gateway event says what was expected.
    let body = json!({"request_id": "r-gw", "subscriber_id": 12, "gateway_event": {"foo": 1}});
    let (status, err) = score(&app, &key, &body).await;
    assert_eq!(status, 422, "{err}");
    let message = error_of(&err);
    for needle in ["expected", "Stripe", "Adyen", "Square"] {
        assert!(message.contains(needle), "{message}");
    }
    app.stop().await;
}

// ---- 2. response shape --------------------------------------------------

const FEATURES: &[&str] = &[
    "subscriber_id",
    "request_id",
    "transaction_amount",
    "amount",
    "amount_minor",
    "currency",
    "bin",
    "last4",
    "card_brand",
    "card_funding",
    "card_country",
    "card_prepaid",
    "card_issuer",
    "card_category",
    "bin_source",
    "user_id",
    "session_id",
    "external_transaction_number",
    "email",
    "email_domain",
    "ip_address",
    "ip_country",
    "billing_country",
    "shipping_country",
    "gateway",
    "risk_score_from_cache",
    "device_status",
    "device_source",
    "device_request_id",
    "device",
    "velocity",
    "customer",
];

async fn score_response_has_the_documented_shape(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let body = tx(
        "order-1",
        json!({"transaction_amount": 499.99, "currency": "USD", "bin": "411111",
               "last4": "1111", "user_id": "shape-user", "session_id": "sess-shape",
               "external_transaction_number": "T-1", "email": "Jane@Example.COM",
               "ip_address": "192.0.2.10", "billing_country": "us", "shipping_country": "US",
               "loyalty_tier": "gold", "risk_score_from_cache": 0.99}),
    );
    let resp = score_ok(&app, &key, &body).await;

    let id = resp["decision_id"].as_str().unwrap();
    assert!(id.starts_with("dec_") && id.len() > 10, "{id}");
    assert_eq!(resp["source"], "bin");
    assert_eq!(resp["type"], "transaction");
    assert_eq!(resp["async_job"]["status"], "none");
    assert_eq!(resp["async_job"]["will_callback"], false);

    let input = &resp["input"];
    for feature in FEATURES {
        assert!(
            input.get(*feature).is_some(),
            "input lacks {feature}: {input}"
        );
    }
    assert_eq!(input["subscriber_id"], 12);
    assert_eq!(input["request_id"], "order-1");
    assert_eq!(input["transaction_amount"].as_f64(), Some(499.99));
    assert_eq!(input["amount"].as_f64(), Some(499.99));
    assert_eq!(input["amount_minor"], 49999);
    assert_eq!(input["currency"], "USD");
    assert_eq!(input["bin"], "411111");
    assert_eq!(input["last4"], "1111");
    assert_eq!(input["email_domain"], "example.com");
    assert_eq!(input["billing_country"], "US");
    assert_eq!(input["user_id"], "shape-user");
    assert_eq!(input["external_transaction_number"], "T-1");
    // Unknown extras are kept; a computed feature cannot be faked.
    assert_eq!(input["loyalty_tier"], "gold");
    assert_eq!(input["extra_risk_score_from_cache"].as_f64(), Some(0.99));
    assert_eq!(input["risk_score_from_cache"].as_f64(), Some(0.0));
    // Nothing ingested: no device.
    assert_eq!(input["device_status"], "none");
    assert_eq!(input["device_source"], Value::Null);
    assert_eq!(input["device"]["known"], false);
    // Velocity includes this transaction.
    for dim in ["user", "card", "ip"] {
        assert_eq!(input["velocity"][dim]["count_5m"], 1, "{dim}: {input}");
        assert_eq!(input["velocity"][dim]["amount_24h"].as_f64(), Some(499.99));
    }
    assert_eq!(input["velocity"]["device"]["count_5m"], 0);
    for field in ["cards_per_device", "cards_per_user", "devices_per_user"] {
        assert!(input["velocity"][field].is_u64(), "{field}: {input}");
    }
    // A customer never seen before.
    assert_eq!(input["customer"]["known"], false);
    assert_eq!(input["customer"]["status"], "normal");
    assert_eq!(input["customer"]["decisions"], 0);

    let result = &resp["result"];
    let score = risk(&resp);
    assert!((0.0..=1.0).contains(&score), "{result}");
    assert_eq!((score * 10_000.0).round() / 10_000.0, score, "{result}");
    let level = result["risk_level"].as_str().unwrap();
    let expected_level = if score < 0.3 {
        "low"
    } else if score < 0.7 {
        "medium"
    } else {
        "high"
    };
    assert_eq!(level, expected_level, "{result}");
    assert!(
        matches!(
            result["action"].as_str(),
            Some("allow" | "review" | "block")
        ),
        "{result}"
    );
    assert!(result["rule_hits"].is_array());
    // The default pack runs cleanly on a plain payload (no gateway fields).
    assert!(result.get("rule_errors").is_none(), "{result}");
    assert_eq!(result["rules_version"], 0);
    // The score is the rules' weights (no device risk here).
    let sum: f64 = result["rule_hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["weight"].as_f64().unwrap())
        .sum();
    assert!((score - sum.clamp(0.0, 1.0)).abs() < 1e-4, "{result}");

    // A second payment by the same user counts in velocity and the profile.
    let resp2 = score_ok(&app, &key, &body).await;
    assert_ne!(resp2["decision_id"], resp["decision_id"]);
    assert_eq!(resp2["input"]["velocity"]["user"]["count_5m"], 2);
    assert_eq!(
        resp2["input"]["velocity"]["user"]["amount_5m"].as_f64(),
        Some(999.98)
    );
    assert_eq!(resp2["input"]["customer"]["known"], true);
    assert_eq!(resp2["input"]["customer"]["decisions"], 1);
    assert_eq!(resp2["input"]["customer"]["known_card"], true);

    // A callback_url whose host does not resolve is refused before anything
    // is recorded (delivery itself is tested in tests/it/callbacks.rs).
    let mut with_callback = tx(
        "order-cb",
        json!({"transaction_amount": 5, "currency": "USD"}),
    );
    with_callback["callback_url"] = json!("https://merchant.example/hooks/risk");
    let (status, resp) = self::score(&app, &key, &with_callback).await;
    assert_eq!(status, 400, "{resp}");
    assert!(
        resp["error"]
            .as_str()
            .unwrap()
            .starts_with("Invalid 'callback_url': "),
        "{resp}"
    );
    app.stop().await;
}

// ---- 3. gateway events --------------------------------------------------

/// A fixture file, the gateway it comes from and the amount and currency it
/// carries (`None`: it carries none).
type GatewayCase = (&'static str, &'static str, Option<(f64, &'static str)>);

/// Every fixture under `fixtures/gateways/`. Mirrors `src/gateways/tests.rs`.
fn gateway_cases() -> Vec<GatewayCase> {
    vec![
        (
            "stripe/charge_object_openapi.json",
            "stripe",
            Some((1.0, "USD")),
        ),
        (
            "stripe/event_charge_failed.json",
            "stripe",
            Some((20.0, "USD")),
        ),
        (
            "stripe/event_charge_succeeded.json",
            "stripe",
            Some((20.0, "USD")),
        ),
        (
            "stripe/event_payment_intent_payment_failed.json",
            "stripe",
            Some((20.0, "USD")),
        ),
        (
            "stripe/event_payment_intent_succeeded.json",
            "stripe",
            Some((20.0, "USD")),
        ),
        (
            "stripe/payment_intent_object_openapi.json",
            "stripe",
            Some((10.99, "USD")),
        ),
        ("stripe/payment_method_object_openapi.json", "stripe", None),
        ("stripe/review_object_openapi.json", "stripe", None),
        (
            "adyen/checkout_payments_response_3ds_redirect.json",
            "adyen",
            None,
        ),
        (
            "adyen/checkout_payments_response_authorised.json",
            "adyen",
            Some((400.0, "USD")),
        ),
        (
            "adyen/classic_authorise_response_success.json",
            "adyen",
            None,
        ),
        (
            "adyen/notification_authorisation_openapi_example.json",
            "adyen",
            Some((10.0, "EUR")),
        ),
        (
            "adyen/notification_authorisation_success.json",
            "adyen",
            Some((101.0, "EUR")),
        ),
        (
            "adyen/notification_item_authorisation_avs_cvc.json",
            "adyen",
            Some((10.0, "EUR")),
        ),
        (
            "checkout/event_payment_approved.json",
            "checkout",
            Some((1.0, "USD")),
        ),
        (
            "checkout/get_payment_card_verified_3ds.json",
            "checkout",
            Some((0.0, "GBP")),
        ),
        (
            "checkout/get_payment_details_ip_shipping.json",
            "checkout",
            Some((65.4, "USD")),
        ),
        (
            "checkout/get_payment_response_customer_email.json",
            "checkout",
            Some((65.4, "USD")),
        ),
        (
            "braintree/transaction_sale_authorized.sdk.json",
            "braintree",
            Some((1.0, "USD")),
        ),
        (
            "braintree/transaction_sale_authorized.xml",
            "braintree",
            None,
        ),
        (
            "square/create_payment_response.json",
            "square",
            Some((10.0, "USD")),
        ),
        (
            "square/event_payment_created.json",
            "square",
            Some((1.0, "USD")),
        ),
        (
            "square/event_payment_updated.json",
            "square",
            Some((1.0, "USD")),
        ),
    ]
}

fn fixture_files() -> BTreeSet<String> {
    fn walk(base: &std::path::Path, dir: &std::path::Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                // Disputes are no payment events: `disputes.rs` tests them.
                if p.file_name().is_some_and(|n| n == "disputes") {
                    continue;
                }
                walk(base, &p, out);
            } else if p.extension().and_then(|e| e.to_str()) != Some("md") {
                let rel = p.strip_prefix(base).unwrap();
                out.insert(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let dir = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/gateways"));
    let mut out = BTreeSet::new();
    walk(&dir, &dir, &mut out);
    out
}

fn gateway_event(file: &str) -> Value {
    let path = format!("{}/fixtures/gateways/{file}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read_to_string(&path).unwrap();
    if file.ends_with(".xml") {
        // A caller can only send XML as a JSON string.
        Value::String(raw)
    } else {
        serde_json::from_str(&raw).unwrap_or_else(|e| panic!("{file}: {e}"))
    }
}

async fn every_gateway_fixture_scores(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let cases = gateway_cases();
    let listed: BTreeSet<String> = cases.iter().map(|(f, ..)| (*f).to_owned()).collect();
    assert_eq!(
        listed,
        fixture_files(),
        "every gateway fixture has a case here"
    );

    let mut failures = Vec::new();
    for (i, (file, gateway, amount)) in cases.into_iter().enumerate() {
        let event = gateway_event(file);
        let body = json!({"request_id": format!("gw-{i}"), "subscriber_id": 12,
                          "gateway_event": event.clone()});
        let (status, resp) = score(&app, &key, &body).await;
        match amount {
            Some((value, currency)) => {
                if status != 200 {
                    failures.push(format!("{file}: {status} {resp}"));
                    continue;
                }
                let input = &resp["input"];
                if input["transaction_amount"].as_f64() != Some(value)
                    || input["currency"] != currency
                    || input["gateway"] != gateway
                {
                    failures.push(format!(
                        "{file}: got {} {} from {}, want {value} {currency} from {gateway}",
                        input["transaction_amount"], input["currency"], input["gateway"]
                    ));
                }
                if let Some(errors) = resp["result"].get("rule_errors") {
                    failures.push(format!("{file}: default rules failed: {errors}"));
                }
                // Minor units follow the currency (all of these have 2 decimals).
                let minor = (value * 100.0).round() as i64;
                if input["amount_minor"] != minor {
                    failures.push(format!("{file}: amount_minor {}", input["amount_minor"]));
                }
            }
            None => {
                if status != 422 || !resp["error"].is_string() {
                    failures.push(format!("{file}: want 422, got {status} {resp}"));
                }
                if file.ends_with(".xml") {
                    continue;
                }
                // With amount and currency in the payload, the event scores.
                let body = json!({"request_id": format!("gw-{i}-p"), "subscriber_id": 12,
                                  "gateway_event": event,
                                  "payload": {"transaction_amount": 42.5, "currency": "eur"}});
                let (status, resp) = score(&app, &key, &body).await;
                if status != 200 {
                    failures.push(format!("{file} with payload: {status} {resp}"));
                    continue;
                }
                let input = &resp["input"];
                if input["transaction_amount"].as_f64() != Some(42.5)
                    || input["currency"] != "EUR"
                    || input["gateway"] != gateway
                {
                    failures.push(format!("{file} with payload: {input}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The gateway's features reach the input (payment_method: card and email).
    let body = json!({"request_id": "gw-pm", "subscriber_id": 12,
                      "gateway_event": gateway_event("stripe/payment_method_object_openapi.json"),
                      "payload": {"transaction_amount": 3, "currency": "USD"}});
    let resp = score_ok(&app, &key, &body).await;
    assert_eq!(resp["input"]["last4"], "4242");
    assert_eq!(resp["input"]["email"], "jenny@example.com");
    assert_eq!(resp["input"]["gateway_object"], "payment_method");
    // An amount without a currency is still the documented 400.
    let body = json!({"request_id": "gw-pm2", "subscriber_id": 12,
                      "gateway_event": gateway_event("stripe/review_object_openapi.json"),
                      "payload": {"transaction_amount": 3}});
    assert_eq!(
        score(&app, &key, &body).await,
        (400, json!({"error": "Missing 'currency' in request body"}))
    );
    // Gateway fields are features rules read: Checkout.com flagged this one.
    let body = json!({"request_id": "gw-flag", "subscriber_id": 12,
                      "gateway_event": gateway_event("checkout/get_payment_details_ip_shipping.json")});
    let resp = score_ok(&app, &key, &body).await;
    assert_eq!(resp["input"]["gateway_risk_flagged"], true, "{resp}");
    assert!(
        hit_names(&resp).contains(&"Gateway rates the payment risky".to_owned()),
        "{resp}"
    );
    assert!(resp["result"].get("rule_errors").is_none(), "{resp}");
    // The payload's fields win over the event's.
    let body = json!({"request_id": "gw-over", "subscriber_id": 12,
                      "gateway_event": gateway_event("stripe/event_charge_succeeded.json"),
                      "payload": {"transaction_amount": 7, "user_id": "gw-user"}});
    let resp = score_ok(&app, &key, &body).await;
    assert_eq!(resp["input"]["transaction_amount"].as_f64(), Some(7.0));
    assert_eq!(resp["input"]["currency"], "USD");
    assert_eq!(resp["input"]["user_id"], "gw-user");
    app.stop().await;
}

/// A body may carry `subscriber_id` at the top level and in `payload`: both
/// must be the key's subscriber (a matching top-level one does not vouch for
/// another tenant's id inside).
async fn score_refuses_another_subscriber_inside_the_payload(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    app.subscriber_with_key("other").await;
    let forbidden = json!({"error": "subscriber_id does not match API key"});
    for (top, inside) in [
        (json!(12), json!("other")),
        (json!("12"), json!(13)),
        (json!("other"), json!(12)),
    ] {
        let body = json!({"request_id": "two-subs", "subscriber_id": top,
                          "payload": {"subscriber_id": inside,
                                      "transaction_amount": 10, "currency": "USD"}});
        assert_eq!(
            score(&app, &key, &body).await,
            (403, forbidden.clone()),
            "{body}"
        );
    }
    // A malformed one inside is named, like at the top level.
    let body = json!({"request_id": "two-subs", "subscriber_id": 12,
                      "payload": {"subscriber_id": "a b",
                                  "transaction_amount": 10, "currency": "USD"}});
    let (status, err) = score(&app, &key, &body).await;
    assert_eq!(status, 400, "{err}");
    assert!(error_of(&err).contains("'subscriber_id'"), "{err}");
    // The same subscriber in both places, however written, is fine.
    for inside in [json!(12), json!("12")] {
        let body = json!({"request_id": "same-sub", "subscriber_id": "12",
                          "payload": {"subscriber_id": inside,
                                      "transaction_amount": 10, "currency": "USD"}});
        let resp = score_ok(&app, &key, &body).await;
        assert_eq!(resp["input"]["subscriber_id"], "12", "{resp}");
    }
    app.stop().await;
}

/// SPEC: `transaction_amount` is a JSON number or a string holding a decimal
/// number; a string is read as written, not loosened by a parser.
async fn score_amounts_are_plain_decimal_numbers(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    for bad in [
        "1_000",
        " 10 ",
        "10 ",
        " 10",
        "+10",
        "1e3",
        "1E3",
        "0x10",
        "10.",
        ".5",
        "1,000",
        "1.2.3",
        "",
        "-",
        "NaN",
        "inf",
        "10\n",
        "\u{ff11}\u{ff10}",
    ] {
        let body = tx("amt", json!({"transaction_amount": bad, "currency": "USD"}));
        let (status, err) = score(&app, &key, &body).await;
        assert_eq!(status, 400, "{bad:?} -> {err}");
        assert!(
            error_of(&err).starts_with("Invalid 'transaction_amount'"),
            "{bad:?} -> {err}"
        );
    }
    // A negative string is refused for being negative.
    let (status, err) = score(
        &app,
        &key,
        &tx(
            "amt",
            json!({"transaction_amount": "-5", "currency": "USD"}),
        ),
    )
    .await;
    assert_eq!(
        (status, error_of(&err)),
        (400, "Invalid 'transaction_amount': must be >= 0")
    );
    for (good, minor) in [
        (json!("10"), 1000),
        (json!("0"), 0),
        (json!("0.5"), 50),
        (json!("007.25"), 725),
        (json!("12.50"), 1250),
        (json!(1e3), 100_000),
        (json!(12.5), 1250),
        (json!(0), 0),
    ] {
        let body = tx(
            "amt",
            json!({"transaction_amount": good, "currency": "USD"}),
        );
        let resp = score_ok(&app, &key, &body).await;
        assert_eq!(resp["input"]["amount_minor"], minor, "{good} -> {resp}");
    }
    app.stop().await;
}

// ---- 4. card scrubbing --------------------------------------------------

const PAN_FORMS: &[&str] = &[
    "4111111111111111",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
];

fn assert_no_pan(what: &str, text: &str) {
    for pan in PAN_FORMS {
        assert!(
            !text.contains(pan),
            "{what} holds the card number {pan}: {text}"
        );
    }
}

async fn card_numbers_are_scrubbed(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let bodies = [
        (
            tx(
                "pan-1",
                json!({"transaction_amount": 10, "currency": "USD", "user_id": "pan-user",
                       "card_number": "4111 1111 1111 1111"}),
            ),
            vec!["payload.card_number"],
        ),
        (
            tx(
                "pan-2",
                json!({"transaction_amount": 10, "currency": "USD", "user_id": "pan-user",
                       "pan": 4_111_111_111_111_111_u64,
                       "notes": {"text": "card 4111-1111-1111-1111 please"}}),
            ),
            vec!["payload.pan", "payload.notes.text"],
        ),
    ];
    let mut ids = Vec::new();
    for (body, paths) in &bodies {
        let resp = score_ok(&app, &key, body).await;
        assert_no_pan("the score response", &resp.to_string());
        let input = &resp["input"];
        let scrubbed: BTreeSet<&str> = input["card_data_scrubbed"]
            .as_array()
            .unwrap_or_else(|| panic!("no card_data_scrubbed in {input}"))
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(scrubbed, paths.iter().copied().collect(), "{input}");
        assert!(
            input["bin"].as_str().unwrap().starts_with("411111"),
            "{input}"
        );
        assert_eq!(input["last4"], "1111");
        assert_eq!(input["card_brand"], "visa", "{input}");
        ids.push(resp["decision_id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let (status, shown) = get(&app, &key, &format!("/risk/decisions/{id}")).await;
        assert_eq!(status, 200);
        assert_no_pan("GET /risk/decisions", &shown.to_string());
        assert!(shown["input"]["card_data_scrubbed"].is_array());
    }
    let (status, customer) = get(&app, &key, "/customers/pan-user").await;
    assert_eq!(status, 200, "{customer}");
    assert_no_pan("the customer profile", &customer.to_string());
    assert_eq!(customer["cards"][0]["last4"], "1111", "{customer}");

    let stored = stored_decisions(&app).await;
    assert!(stored.contains(&ids[0]), "the dump reads the decisions");
    assert_no_pan("the decisions table", &stored);
    let files = sqlite_files(&app);
    for pan in PAN_FORMS {
        assert!(
            !contains_bytes(&files, pan),
            "the database file holds {pan}"
        );
    }
    app.stop().await;
}

// ---- 5. idempotency -----------------------------------------------------

async fn score_with_key(app: &TestApp, key: &str, idem: &str, body: &Value) -> (u16, Value) {
    call(
        app,
        Method::POST,
        "/risk/bin/score",
        Some(key),
        Some(idem),
        Some(body.to_string()),
    )
    .await
}

async fn idempotency_key_replays_the_decision(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let other = app.subscriber_with_key("other").await;
    let body = tx(
        "idem-1",
        json!({"transaction_amount": 25, "currency": "USD", "user_id": "idem-user"}),
    );
    let (status, first) = score_with_key(&app, &key, "k-1", &body).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["input"]["velocity"]["user"]["count_5m"], 1);
    // Key order and spacing do not make another body.
    let reordered = r#"{ "payload": {"user_id": "idem-user", "currency": "USD", "transaction_amount": 25},
        "subscriber_id": 12, "request_id": "idem-1" }"#;
    let (status, second) = call(
        &app,
        Method::POST,
        "/risk/bin/score",
        Some(&key),
        Some("k-1"),
        Some(reordered.to_owned()),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second, first, "the same decision comes back");

    // Counted once: a request without a key is the second, not the third.
    let (_, third) = score(&app, &key, &body).await;
    assert_ne!(third["decision_id"], first["decision_id"]);
    assert_eq!(third["input"]["velocity"]["user"]["count_5m"], 2, "{third}");
    assert_eq!(third["input"]["customer"]["decisions"], 1, "{third}");

    // The same key with another body.
    let mut changed = body.clone();
    changed["payload"]["transaction_amount"] = json!(26);
    let (status, err) = score_with_key(&app, &key, "k-1", &changed).await;
    assert_eq!(status, 409, "{err}");
    assert!(error_of(&err).contains("Idempotency-Key"), "{err}");
    let (_, again) = score_with_key(&app, &key, "k-1", &body).await;
    assert_eq!(again["decision_id"], first["decision_id"]);

    // Keys are per subscriber.
    let mut theirs = body.clone();
    theirs["subscriber_id"] = json!("other");
    let (status, resp) = score_with_key(&app, &other, "k-1", &theirs).await;
    assert_eq!(status, 200, "{resp}");
    assert_ne!(resp["decision_id"], first["decision_id"]);

    // Ten concurrent requests with one key: one decision, one customer entry.
    let conc = tx(
        "idem-conc",
        json!({"transaction_amount": 9, "currency": "USD", "user_id": "conc-user"}),
    );
    let ids = concurrent_scores(&app, &key, "k-conc", &conc, 10).await;
    assert_eq!(ids.len(), 1, "{ids:?}");
    let (_, after) = score(&app, &key, &conc).await;
    assert_eq!(after["input"]["customer"]["decisions"], 1, "{after}");
    let (_, customer) = get(&app, &key, "/customers/conc-user").await;
    assert_eq!(customer["decisions"]["total"], 2, "{customer}");
    assert_eq!(customer["amounts"]["count"], 2, "{customer}");
    app.stop().await;
}

/// Sends `n` identical requests with one Idempotency-Key at once; answers the
/// distinct decision ids (every answer must be a 200).
async fn concurrent_scores(
    app: &TestApp,
    key: &str,
    idem: &str,
    body: &Value,
    n: usize,
) -> HashSet<String> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let request = app
            .client
            .post(app.url("/risk/bin/score"))
            .header("X-API-Key", key)
            .header("Idempotency-Key", idem)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        tasks.spawn(async move { read(request.send().await.unwrap()).await });
    }
    let mut ids = HashSet::new();
    while let Some(done) = tasks.join_next().await {
        let (status, resp) = done.unwrap();
        assert_eq!(status, 200, "{resp}");
        ids.insert(resp["decision_id"].as_str().unwrap().to_owned());
    }
    ids
}

/// Concurrent requests repeating one Idempotency-Key count once in velocity
/// (SPEC: "gets the earlier decision back and counts once in velocity").
async fn concurrent_replays_count_once_in_velocity(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let mut failures = Vec::new();
    for round in 0..30 {
        let user = format!("race-user-{round}");
        let body = tx(
            &format!("race-{round}"),
            json!({"transaction_amount": 9, "currency": "USD", "user_id": user}),
        );
        let ids = concurrent_scores(&app, &key, &format!("k-race-{round}"), &body, 32).await;
        assert_eq!(ids.len(), 1, "{ids:?}");
        let (_, after) = score(&app, &key, &body).await;
        let count = &after["input"]["velocity"]["user"]["count_5m"];
        if count != 2 {
            failures.push(format!("round {round}: count_5m {count}, want 2"));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
    app.stop().await;
}

// ---- 6. rule sets -------------------------------------------------------

async fn rule_sets_drive_scoring(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let (status, initial) = app
        .admin(Method::GET, "/admin/subscribers/12/rules", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(initial["version"], 0);
    let names: Vec<&str> = initial["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(names.len() >= 20, "{names:?}");
    for name in [
        "Blocked customer",
        "Trusted customer",
        "Customer with confirmed fraud",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let big =
        |id: &str, amount: f64| tx(id, json!({"transaction_amount": amount, "currency": "USD"}));
    assert_eq!(
        score_ok(&app, &key, &big("r-0", 150.0)).await["result"]["rules_version"],
        0
    );

    // A rule that does not compile is refused, naming it; version 0 serves on.
    let bad = json!({"rules": [
        {"name": "Fine", "expression": "amount > 1", "weight": 0.1},
        {"name": "Broken rule", "expression": "amount >", "weight": 0.2}
    ]});
    let (status, err) = put_rules(&app, "12", bad.clone()).await;
    assert_eq!(status, 400, "{err}");
    assert!(error_of(&err).contains("Broken rule"), "{err}");
    let resp = score_ok(&app, &key, &big("r-1", 150.0)).await;
    assert_eq!(resp["result"]["rules_version"], 0);
    assert!(!hit_names(&resp).contains(&"Fine".to_owned()));

    let good = json!({"review_threshold": 0.3, "block_threshold": 0.9, "rules": [
        {"name": "Big", "expression": "amount > 100", "weight": 0.5, "action": "block"}
    ]});
    let (status, stored) = put_rules(&app, "12", good).await;
    assert_eq!(
        (status, stored["version"].as_i64()),
        (200, Some(1)),
        "{stored}"
    );
    let resp = score_ok(&app, &key, &big("r-2", 150.0)).await;
    assert_eq!(resp["result"]["rules_version"], 1);
    assert_eq!(
        resp["result"]["rule_hits"],
        json!([{"rule": "Big", "weight": 0.5, "action": "block"}])
    );
    assert_eq!(
        verdict(&resp),
        (0.5, "medium".into(), "block".into()),
        "the forced action wins"
    );
    let small = score_ok(&app, &key, &big("r-3", 50.0)).await;
    assert_eq!(small["result"]["rule_hits"], json!([]));
    assert_eq!(verdict(&small), (0.0, "low".into(), "allow".into()));

    // Another bad set leaves version 1 in force.
    let (status, _) = put_rules(&app, "12", bad).await;
    assert_eq!(status, 400);
    let resp = score_ok(&app, &key, &big("r-4", 150.0)).await;
    assert_eq!(resp["result"]["rules_version"], 1);
    assert_eq!(hit_names(&resp), ["Big"]);

    // A rule failing at evaluation does not hit, is reported and counted.
    let faulty = json!({"rules": [
        {"name": "Big", "expression": "amount > 100", "weight": 0.5, "action": "block"},
        {"name": "Faulty", "expression": "missing_field > 5", "weight": 0.3}
    ]});
    let (status, stored) = put_rules(&app, "12", faulty).await;
    assert_eq!(
        (status, stored["version"].as_i64()),
        (200, Some(2)),
        "{stored}"
    );
    let before = metric(&app, "riskgate_rule_errors_total").await;
    let resp = score_ok(&app, &key, &big("r-5", 150.0)).await;
    assert_eq!(resp["result"]["rules_version"], 2);
    assert_eq!(hit_names(&resp), ["Big"]);
    assert_eq!(risk(&resp), 0.5);
    let errors = resp["result"]["rule_errors"].as_array().unwrap_or_else(|| {
        panic!("no rule_errors in {resp}");
    });
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["rule"], "Faulty");
    assert!(errors[0]["error"].is_string());
    let after = metric(&app, "riskgate_rule_errors_total").await;
    assert_eq!(after, before + 1.0);
    // Stored decisions show the errors too.
    let id = resp["decision_id"].as_str().unwrap();
    let (_, shown) = get(&app, &key, &format!("/risk/decisions/{id}")).await;
    assert_eq!(shown["result"]["rule_errors"][0]["rule"], "Faulty");
    assert_eq!(shown["rules_version"], 2);
    app.stop().await;
}

// ---- 7. the score formula -----------------------------------------------

async fn score_formula_follows_weights_and_thresholds(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let rules = json!({"review_threshold": 0.25, "block_threshold": 0.6, "rules": [
        {"name": "A", "expression": "flag_a == true", "weight": 0.2},
        {"name": "B", "expression": "flag_b == true", "weight": 0.25},
        {"name": "Neg", "expression": "flag_neg == true", "weight": -0.3},
        {"name": "Big1", "expression": "flag_big == true", "weight": 0.6},
        {"name": "Big2", "expression": "flag_big == true", "weight": 0.5},
        {"name": "Third1", "expression": "flag_third == true", "weight": 0.33333},
        {"name": "Third2", "expression": "flag_third == true", "weight": 0.33333},
        {"name": "Force", "expression": "flag_force == true", "weight": 0.05, "action": "block"},
        {"name": "Soft", "expression": "flag_soft == true", "weight": 0.0, "action": "review"},
        {"name": "Allow", "expression": "flag_allow == true", "weight": 0.0, "action": "allow"},
        {"name": "Off", "expression": "flag_a == true", "weight": 0.9, "action": "block", "enabled": false}
    ]});
    let (status, stored) = put_rules(&app, "12", rules).await;
    assert_eq!(status, 200, "{stored}");
    let flags = [
        "flag_a",
        "flag_b",
        "flag_neg",
        "flag_big",
        "flag_third",
        "flag_force",
        "flag_soft",
        "flag_allow",
    ];
    let cases: &[(&[&str], f64, &str, &str)] = &[
        (&[], 0.0, "low", "allow"),
        (&["flag_a"], 0.2, "low", "allow"),
        (&["flag_b"], 0.25, "medium", "review"),
        (&["flag_a", "flag_b"], 0.45, "medium", "review"),
        (&["flag_a", "flag_b", "flag_neg"], 0.15, "low", "allow"),
        (&["flag_neg"], 0.0, "low", "allow"),
        (&["flag_big"], 1.0, "high", "block"),
        (&["flag_third"], 0.6667, "high", "block"),
        (&["flag_force"], 0.05, "low", "block"),
        (&["flag_a", "flag_soft"], 0.2, "low", "review"),
        (&["flag_big", "flag_allow"], 1.0, "high", "block"),
        (
            &["flag_a", "flag_b", "flag_allow"],
            0.45,
            "medium",
            "review",
        ),
    ];
    for (i, (on, score, level, action)) in cases.iter().enumerate() {
        let mut payload = json!({"transaction_amount": 10, "currency": "USD"});
        for flag in flags {
            payload[flag] = json!(on.contains(&flag));
        }
        let resp = score_ok(&app, &key, &tx(&format!("f-{i}"), payload)).await;
        assert_eq!(resp["input"]["risk_score_from_cache"].as_f64(), Some(0.0));
        assert_eq!(resp["result"]["rules_version"], 1);
        assert_eq!(
            verdict(&resp),
            (*score, (*level).to_owned(), (*action).to_owned()),
            "flags {on:?}: {}",
            resp["result"]
        );
        let hits = hit_names(&resp);
        let expected_hits = on.len()
            + usize::from(on.contains(&"flag_big"))
            + usize::from(on.contains(&"flag_third"));
        assert_eq!(hits.len(), expected_hits, "flags {on:?}: {hits:?}");
    }
    app.stop().await;
}

// ---- 8. decisions, feedback, customers ----------------------------------

async fn decisions_and_feedback_are_per_tenant(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let other = app.subscriber_with_key("other").await;
    let body = tx(
        "fb-1",
        json!({"transaction_amount": 30, "currency": "USD", "user_id": "fb-user"}),
    );
    let resp = score_ok(&app, &key, &body).await;
    let id = resp["decision_id"].as_str().unwrap().to_owned();
    let path = format!("/risk/decisions/{id}");

    let (status, shown) = get(&app, &key, &path).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["decision_id"], id.as_str());
    assert_eq!(shown["request_id"], "fb-1");
    assert_eq!(shown["label"], Value::Null);
    assert_eq!(shown["result"], resp["result"]);
    assert_eq!(shown["rules_version"], 0);
    assert!(shown["created_at"].is_string(), "{shown}");
    let (status, err) = get(&app, &other, &path).await;
    assert_eq!(status, 404, "{err}");
    assert!(err["error"].is_string());
    assert_eq!(get(&app, &key, "/risk/decisions/dec_nosuch").await.0, 404);
    assert_eq!(
        call(&app, Method::GET, &path, None, None, None).await,
        (401, json!({"error": "Missing API key"}))
    );

    assert_eq!(
        feedback(&app, &other, &id, json!({"label": "fraud"}))
            .await
            .0,
        404
    );
    assert_eq!(
        feedback(&app, &key, "dec_nosuch", json!({"label": "fraud"}))
            .await
            .0,
        404
    );
    for bad in [json!("spam"), json!(1), json!("FRAUDULENT")] {
        let (status, err) = feedback(&app, &key, &id, json!({"label": bad})).await;
        assert_eq!(status, 400, "{bad} -> {err}");
        assert!(error_of(&err).contains("'label'"), "{err}");
    }
    assert_eq!(
        feedback(&app, &key, &id, json!({})).await,
        (400, json!({"error": "Missing 'label' in request body"}))
    );
    // The other tenant's attempt changed nothing.
    assert_eq!(get(&app, &key, &path).await.1["label"], Value::Null);

    let (status, labelled) = feedback(&app, &key, &id, json!({"label": "fraud"})).await;
    assert_eq!(status, 200, "{labelled}");
    assert_eq!(labelled["label"], "fraud");
    assert!(labelled["labeled_at"].is_string());
    let (_, shown) = get(&app, &key, &path).await;
    assert_eq!(shown["label"], "fraud");
    assert_eq!(get(&app, &other, &path).await.0, 404);
    // Labelling the same decision again does not count it twice.
    for label in ["fraud", "chargeback"] {
        let (status, _) = feedback(&app, &key, &id, json!({"label": label})).await;
        assert_eq!(status, 200);
    }
    let (_, customer) = get(&app, &key, "/customers/fb-user").await;
    assert_eq!(customer["decisions"]["fraud_labels"], 1, "{customer}");

    // The customer's next payment carries the fraud label.
    let resp = score_ok(
        &app,
        &key,
        &tx(
            "fb-2",
            json!({"transaction_amount": 30, "currency": "USD", "user_id": "fb-user"}),
        ),
    )
    .await;
    assert_eq!(resp["input"]["customer"]["fraud_labels"], 1, "{resp}");
    assert!(
        hit_names(&resp).contains(&"Customer with confirmed fraud".to_owned()),
        "{resp}"
    );
    let labelled_risk = resp["result"]["risk_score"].as_f64().unwrap();
    assert!(labelled_risk > 0.0, "{resp}");
    // Relabelled legit: the fraud no longer counts.
    let (status, relabelled) = feedback(&app, &key, &id, json!({"label": "legit"})).await;
    assert_eq!((status, relabelled["label"].as_str()), (200, Some("legit")));
    let (_, customer) = get(&app, &key, "/customers/fb-user").await;
    assert_eq!(customer["decisions"]["fraud_labels"], 0, "{customer}");
    let resp = score_ok(
        &app,
        &key,
        &tx(
            "fb-4",
            json!({"transaction_amount": 30, "currency": "USD", "user_id": "fb-user"}),
        ),
    )
    .await;
    assert_eq!(resp["input"]["customer"]["fraud_labels"], 0, "{resp}");
    assert!(!hit_names(&resp).contains(&"Customer with confirmed fraud".to_owned()));
    // The same payment without the label scores lower.
    assert!(
        resp["result"]["risk_score"].as_f64().unwrap() < labelled_risk,
        "{resp}"
    );
    // The other tenant's user of the same name is untouched.
    let mut theirs = tx(
        "fb-3",
        json!({"transaction_amount": 30, "currency": "USD", "user_id": "fb-user"}),
    );
    theirs["subscriber_id"] = json!("other");
    let resp = score_ok(&app, &other, &theirs).await;
    assert_eq!(resp["input"]["customer"]["fraud_labels"], 0, "{resp}");
    assert_eq!(resp["input"]["customer"]["known"], false, "{resp}");
    app.stop().await;
}

async fn customers_are_profiled_and_flagged(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let other = app.subscriber_with_key("other").await;
    let pay = |id: &str, user: &str, amount: f64, bin: &str, last4: &str| {
        tx(
            id,
            json!({"transaction_amount": amount, "currency": "USD", "user_id": user,
                   "bin": bin, "last4": last4}),
        )
    };
    assert_eq!(get(&app, &key, "/customers/alice").await.0, 404);
    let first = score_ok(&app, &key, &pay("c-1", "alice", 10.0, "411111", "1111")).await;
    assert_eq!(first["input"]["customer"]["known"], false);
    let second = score_ok(&app, &key, &pay("c-2", "alice", 30.0, "555555", "4444")).await;
    assert_eq!(second["input"]["customer"]["known"], true);
    assert_eq!(second["input"]["customer"]["decisions"], 1);
    assert_eq!(second["input"]["customer"]["known_card"], false);

    let (status, profile) = get(&app, &key, "/customers/alice").await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["user_id"], "alice");
    assert_eq!(profile["status"], "normal");
    assert_eq!(profile["decisions"]["total"], 2, "{profile}");
    let by_action: i64 = ["allow", "review", "block"]
        .iter()
        .map(|a| profile["decisions"][a].as_i64().unwrap())
        .sum();
    assert_eq!(by_action, 2);
    assert_eq!(profile["amounts"]["count"], 2);
    assert_eq!(profile["amounts"]["total"].as_f64(), Some(40.0));
    assert_eq!(profile["amounts"]["max"].as_f64(), Some(30.0));
    let cards: BTreeSet<(String, String)> = profile["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["bin"].as_str().unwrap().to_owned(),
                c["last4"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        cards,
        [("411111", "1111"), ("555555", "4444")]
            .iter()
            .map(|(b, l)| ((*b).to_owned(), (*l).to_owned()))
            .collect()
    );
    assert_eq!(profile["cards_total"], 2);
    let (first_seen, last_seen) = (
        profile["first_seen"].as_str().unwrap(),
        profile["last_seen"].as_str().unwrap(),
    );
    assert!(first_seen <= last_seen, "{profile}");
    assert_eq!(get(&app, &other, "/customers/alice").await.0, 404);

    // A known card is recognized.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let third = score_ok(&app, &key, &pay("c-3", "alice", 20.0, "411111", "1111")).await;
    assert_eq!(third["input"]["customer"]["known_card"], true);
    assert_eq!(third["input"]["customer"]["decisions"], 2);
    let (_, profile) = get(&app, &key, "/customers/alice").await;
    assert_eq!(
        profile["cards"][0]["bin"], "411111",
        "most recent first: {profile}"
    );
    assert!(
        profile["last_seen"].as_str().unwrap() > last_seen,
        "{profile}"
    );
    assert_eq!(profile["first_seen"].as_str().unwrap(), first_seen);

    // Concurrent payments of one customer are all counted.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let client = app.client.clone();
        let url = app.url("/risk/bin/score");
        let key = key.clone();
        let body = pay(
            &format!("m-{i}"),
            "many",
            10.0 + f64::from(i),
            "411111",
            "1111",
        );
        tasks.spawn(async move {
            let resp = client
                .post(url)
                .header("X-API-Key", key)
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            read(resp).await.0
        });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
    let (_, many) = get(&app, &key, "/customers/many").await;
    assert_eq!(many["decisions"]["total"], 8, "{many}");
    assert_eq!(many["amounts"]["count"], 8, "{many}");
    assert_eq!(many["amounts"]["max"].as_f64(), Some(17.0), "{many}");
    assert_eq!(many["amounts"]["total"].as_f64(), Some(108.0), "{many}");
    assert_eq!(many["cards_total"], 1, "{many}");

    // Invalid status.
    let (status, err) = patch_customer(&app, &key, "alice", json!({"status": "vip"})).await;
    assert_eq!(status, 400, "{err}");
    assert!(error_of(&err).contains("'status'"), "{err}");
    assert_eq!(
        patch_customer(&app, &key, "alice", json!({})).await,
        (400, json!({"error": "Missing 'status' in request body"}))
    );

    // Blocked: every payment is refused.
    let (status, patched) = patch_customer(&app, &key, "alice", json!({"status": "blocked"})).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["status"], "blocked");
    assert_eq!(patched["decisions"]["total"], 3);
    let blocked = score_ok(&app, &key, &pay("c-4", "alice", 1.0, "411111", "1111")).await;
    assert_eq!(blocked["input"]["customer"]["status"], "blocked");
    assert_eq!(blocked["result"]["action"], "block", "{blocked}");
    assert!(hit_names(&blocked).contains(&"Blocked customer".to_owned()));

    // Another tenant's PATCH of the same user id is its own customer.
    let (status, theirs) =
        patch_customer(&app, &other, "alice", json!({"status": "trusted"})).await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(theirs["status"], "trusted");
    assert_eq!(theirs["decisions"]["total"], 0);
    let (_, mine) = get(&app, &key, "/customers/alice").await;
    assert_eq!(mine["status"], "blocked");
    let (status, _) = patch_customer(&app, &other, "erin", json!({"status": "blocked"})).await;
    assert_eq!(status, 200);
    assert_eq!(get(&app, &key, "/customers/erin").await.0, 404);
    let erin = score_ok(&app, &key, &pay("c-5", "erin", 5.0, "411111", "1111")).await;
    assert_eq!(erin["input"]["customer"]["status"], "normal");
    assert!(!hit_names(&erin).contains(&"Blocked customer".to_owned()));
    assert_ne!(erin["result"]["action"], "block");

    // Trusted lowers the score of the same payment.
    let risky = |id: &str, user: &str| {
        tx(
            id,
            json!({"transaction_amount": 20, "currency": "USD", "user_id": user,
                   "email": "someone@mailinator.com", "card_country": "US",
                   "billing_country": "FR", "shipping_country": "DE"}),
        )
    };
    let (status, _) = patch_customer(&app, &key, "bob", json!({"status": "trusted"})).await;
    assert_eq!(status, 200);
    let normal = score_ok(&app, &key, &risky("t-1", "carol")).await;
    let trusted = score_ok(&app, &key, &risky("t-2", "bob")).await;
    assert!(hit_names(&trusted).contains(&"Trusted customer".to_owned()));
    assert!(!hit_names(&normal).contains(&"Trusted customer".to_owned()));
    assert!(risk(&normal) >= 0.3, "{normal}");
    assert_eq!(normal["result"]["action"], "review", "{normal}");
    assert!(risk(&trusted) < risk(&normal), "{trusted} vs {normal}");
    // The trusted weight comes off the same sum (scores are rounded, so
    // compare within a rounding step).
    let (score, level, action) = verdict(&trusted);
    assert!(
        (score - (risk(&normal) - 0.3).max(0.0)).abs() < 1e-6,
        "{trusted} vs {normal}"
    );
    assert_eq!((level.as_str(), action.as_str()), ("low", "allow"));
    // Back to normal.
    let (_, back) = patch_customer(&app, &key, "bob", json!({"status": "normal"})).await;
    assert_eq!(back["status"], "normal");
    let again = score_ok(&app, &key, &risky("t-3", "bob")).await;
    assert!(!hit_names(&again).contains(&"Trusted customer".to_owned()));
    app.stop().await;
}

// ---- 9. device signals --------------------------------------------------

struct DeviceSetup {
    app: TestApp,
    sim: SimRunning,
    key: String,
}

async fn device_setup(backend: Backend) -> DeviceSetup {
    let sim = simulator::start(&SimulatorConfig {
        risky_share: 0.0,
        slow_ms: 4_000,
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let base = url::Url::parse(&format!("http://{}", sim.addr)).unwrap();
    let app = TestApp::start_with(backend, |config| {
        config.fingerprint_base_url = Some(base.clone());
        config.stytch_base_url = Some(base.clone());
        config.fingerprintiq_base_url = Some(base.clone());
    })
    .await;
    let key = app.subscriber_with_key("12").await;
    DeviceSetup { app, sim, key }
}

impl DeviceSetup {
    async fn ingest(&self, request_id: &str, session: &str, user: &str) {
        let body = json!({"request_id": request_id, "subscriber_id": 12,
                          "session_id": session, "user_id": user});
        let (status, resp) = self.app.ingest(Some(&self.key), body.to_string()).await;
        assert_eq!(status, 202, "{resp}");
    }

    async fn ready(&self, request_id: &str) -> Value {
        let started = Instant::now();
        loop {
            let (status, event) = get(
                &self.app,
                &self.key,
                &format!("/fingerprint/events/{request_id}"),
            )
            .await;
            assert_eq!(status, 200, "{event}");
            if event["status"] == "ready" {
                return event;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{request_id} never became ready: {event}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn stop(self) {
        self.app.stop().await;
        self.sim.shutdown().await.unwrap();
    }
}

async fn device_signals_feed_the_score(backend: Backend) {
    let s = device_setup(backend).await;
    let (app, key) = (&s.app, s.key.as_str());

    s.ingest("risky-dev-1", "sess-risky", "dev-user-r").await;
    s.ingest("clean-dev-1", "sess-clean", "dev-user-c").await;
    s.ready("risky-dev-1").await;
    s.ready("clean-dev-1").await;

    let resp = score_ok(
        app,
        key,
        &tx(
            "risky-dev-1",
            json!({"transaction_amount": 5000, "currency": "USD", "user_id": "buyer-r"}),
        ),
    )
    .await;
    let input = &resp["input"];
    assert_eq!(input["device_status"], "ready", "{input}");
    assert_eq!(input["device_source"], "request");
    assert_eq!(input["device_request_id"], "risky-dev-1");
    assert_eq!(input["device"]["known"], true);
    assert_eq!(input["device"]["bot"], "bad", "{input}");
    let device_risk = input["risk_score_from_cache"].as_f64().unwrap();
    assert!(device_risk > 0.5, "{input}");
    assert!(risk(&resp) >= device_risk, "{resp}");
    assert_ne!(resp["result"]["action"], "allow", "{resp}");
    assert!(hit_names(&resp).contains(&"Bad bot".to_owned()), "{resp}");
    assert!(input["velocity"]["device"]["count_5m"].as_u64().unwrap() >= 1);
    let visitor = input["device"]["visitor_id"].as_str().unwrap().to_owned();
    let (status, buyer) = get(app, key, "/customers/buyer-r").await;
    assert_eq!(status, 200, "{buyer}");
    assert_eq!(
        buyer["devices"][0]["visitor_id"],
        visitor.as_str(),
        "{buyer}"
    );
    assert_eq!(buyer["devices_total"], 1);

    // A clean device, a small amount and no country to mismatch.
    let resp = score_ok(
        app,
        key,
        &tx(
            "clean-dev-1",
            json!({"transaction_amount": 20, "currency": "USD", "user_id": "buyer-c"}),
        ),
    )
    .await;
    assert_eq!(resp["input"]["device_status"], "ready", "{resp}");
    assert_eq!(resp["input"]["device"]["known"], true);
    let clean_risk = resp["input"]["risk_score_from_cache"].as_f64().unwrap();
    assert!(clean_risk < 0.3, "{resp}");
    assert_eq!(
        (
            resp["result"]["risk_level"].as_str(),
            resp["result"]["action"].as_str()
        ),
        (Some("low"), Some("allow")),
        "{resp}"
    );

    // A new request id found through the ingested session.
    let resp = score_ok(
        app,
        key,
        &tx(
            "order-by-session",
            json!({"transaction_amount": 20, "currency": "USD", "session_id": "sess-clean"}),
        ),
    )
    .await;
    assert_eq!(resp["input"]["device_source"], "session", "{resp}");
    assert_eq!(resp["input"]["device_request_id"], "clean-dev-1");
    assert_eq!(resp["input"]["device_status"], "ready");
    assert_eq!(
        resp["input"]["risk_score_from_cache"].as_f64(),
        Some(clean_risk)
    );
    // And through the ingested user.
    let resp = score_ok(
        app,
        key,
        &tx(
            "order-by-user",
            json!({"transaction_amount": 20, "currency": "USD", "user_id": "dev-user-r"}),
        ),
    )
    .await;
    assert_eq!(resp["input"]["device_source"], "user", "{resp}");
    assert_eq!(resp["input"]["device_request_id"], "risky-dev-1");

    // Signals still on their way: scored at once, saying so.
    s.ingest("slow-dev-1", "sess-slow", "dev-user-s").await;
    let started = Instant::now();
    let resp = score_ok(
        app,
        key,
        &tx(
            "slow-dev-1",
            json!({"transaction_amount": 1500, "currency": "USD"}),
        ),
    )
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(resp["input"]["device_status"], "pending", "{resp}");
    assert_eq!(resp["input"]["risk_score_from_cache"].as_f64(), Some(0.0));
    assert_eq!(resp["input"]["device"]["known"], false);
    assert!(
        hit_names(&resp).contains(&"Device signals pending on a high amount".to_owned()),
        "{resp}"
    );
    // Another tenant never sees these signals, by request, session or user.
    let other = app.subscriber_with_key("other").await;
    let theirs = json!({"request_id": "risky-dev-1", "subscriber_id": "other",
                        "payload": {"transaction_amount": 5000, "currency": "USD",
                                    "session_id": "sess-risky", "user_id": "dev-user-r"}});
    let resp = score_ok(app, &other, &theirs).await;
    assert_eq!(resp["input"]["device_status"], "none", "{resp}");
    assert_eq!(resp["input"]["risk_score_from_cache"].as_f64(), Some(0.0));

    // Once the signals arrive, the same request id scores with them.
    s.ready("slow-dev-1").await;
    let resp = score_ok(
        app,
        key,
        &tx(
            "slow-dev-1",
            json!({"transaction_amount": 20, "currency": "USD"}),
        ),
    )
    .await;
    assert_eq!(resp["input"]["device_status"], "ready", "{resp}");
    assert_eq!(resp["input"]["device"]["known"], true);

    // A provider that answered 404: scored without device risk, saying so.
    s.ingest("notfound-dev-1", "sess-nf", "dev-user-nf").await;
    let started = Instant::now();
    loop {
        let (_, event) = get(app, key, "/fingerprint/events/notfound-dev-1").await;
        if event["status"] == "failed" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{event}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let resp = score_ok(
        app,
        key,
        &tx(
            "notfound-dev-1",
            json!({"transaction_amount": 20, "currency": "USD"}),
        ),
    )
    .await;
    assert_eq!(resp["input"]["device_status"], "failed", "{resp}");
    assert_eq!(resp["input"]["risk_score_from_cache"].as_f64(), Some(0.0));
    s.stop().await;
}

/// With Redis holding the velocity counters and device signals, replays and
/// concurrent repeats of an Idempotency-Key still count once.
async fn redis_velocity_counts_replays_once(backend: Backend) {
    let app = TestApp::start_with(backend, |config| {
        config.redis_url = Some(crate::common::redis_url());
    })
    .await;
    // Redis outlives the test: a subscriber of its own keeps counters apart.
    let subscriber = format!("r{}", riskgate::secrets::random_id(12));
    let key = app.subscriber_with_key(&subscriber).await;
    let body = |request_id: &str, user: &str| {
        json!({"request_id": request_id, "subscriber_id": subscriber,
               "payload": {"transaction_amount": 12.5, "currency": "USD", "user_id": user,
                           "bin": "411111", "last4": "1111"}})
    };
    let first = score_with_key(&app, &key, "rk-1", &body("r-1", "redis-user")).await;
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(first.1["input"]["velocity"]["user"]["count_5m"], 1);
    let again = score_with_key(&app, &key, "rk-1", &body("r-1", "redis-user")).await;
    assert_eq!(again, first);
    let third = score_ok(&app, &key, &body("r-2", "redis-user")).await;
    assert_eq!(third["input"]["velocity"]["user"]["count_5m"], 2, "{third}");
    assert_eq!(
        third["input"]["velocity"]["user"]["amount_5m"].as_f64(),
        Some(25.0)
    );
    assert_eq!(third["input"]["velocity"]["card"]["count_5m"], 2);
    assert_eq!(third["input"]["velocity"]["cards_per_user"], 1);

    let ids = concurrent_scores(&app, &key, "rk-conc", &body("r-3", "redis-conc"), 16).await;
    assert_eq!(ids.len(), 1, "{ids:?}");
    let after = score_ok(&app, &key, &body("r-4", "redis-conc")).await;
    assert_eq!(after["input"]["velocity"]["user"]["count_5m"], 2, "{after}");
    app.stop().await;
}

/// Decisions, customers, rules and the embedded velocity counters survive a
/// restart.
async fn scoring_state_survives_a_restart(backend: Backend) {
    let mut app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let rules = json!({"rules": [
        {"name": "Third payment", "expression": "velocity.user.count_5m >= 3", "weight": 0.4},
        {"name": "Same card thrice", "expression": "velocity.card.count_24h >= 3", "weight": 0.1}
    ]});
    assert_eq!(put_rules(&app, "12", rules).await.0, 200);
    let body = |id: &str| {
        tx(
            id,
            json!({"transaction_amount": 15, "currency": "USD", "user_id": "restart-user",
                   "bin": "411111", "last4": "1111", "ip_address": "198.51.100.7"}),
        )
    };
    let (status, first) = score_with_key(&app, &key, "rs-1", &body("rs-1")).await;
    assert_eq!(status, 200, "{first}");
    let second = score_ok(&app, &key, &body("rs-2")).await;
    assert_eq!(second["input"]["velocity"]["user"]["count_5m"], 2);
    assert_eq!(hit_names(&second), Vec::<String>::new());

    app.restart().await;

    let id = first["decision_id"].as_str().unwrap();
    let (status, shown) = get(&app, &key, &format!("/risk/decisions/{id}")).await;
    assert_eq!(status, 200, "{shown}");
    let (status, replay) = score_with_key(&app, &key, "rs-1", &body("rs-1")).await;
    assert_eq!(
        (status, &replay["decision_id"]),
        (200, &first["decision_id"])
    );
    let third = score_ok(&app, &key, &body("rs-3")).await;
    let velocity = &third["input"]["velocity"];
    for dim in ["user", "card", "ip"] {
        assert_eq!(velocity[dim]["count_5m"], 3, "{dim}: {velocity}");
        assert_eq!(
            velocity[dim]["amount_24h"].as_f64(),
            Some(45.0),
            "{velocity}"
        );
    }
    assert_eq!(velocity["cards_per_user"], 1, "{velocity}");
    assert_eq!(third["result"]["rules_version"], 1);
    assert_eq!(hit_names(&third), ["Third payment", "Same card thrice"]);
    assert_eq!(verdict(&third), (0.5, "medium".into(), "review".into()));
    assert_eq!(third["input"]["customer"]["decisions"], 2);
    let (_, customer) = get(&app, &key, "/customers/restart-user").await;
    assert_eq!(customer["decisions"]["total"], 3, "{customer}");
    app.stop().await;
}

/// SPEC "Operations": card numbers are never stored in full, also when a
/// merchant uses one as a user id in `PATCH /customers/{user_id}` (a score
/// body's `user_id` holding one is masked).
async fn customer_ids_holding_card_numbers_are_not_stored(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let resp = score_ok(
        &app,
        &key,
        &tx(
            "pan-user-1",
            json!({"transaction_amount": 5, "currency": "USD", "user_id": "4111111111111111"}),
        ),
    )
    .await;
    assert_no_pan("the score response", &resp.to_string());
    let (status, body) =
        patch_customer(&app, &key, "4111111111111111", json!({"status": "blocked"})).await;
    assert!(status == 200 || status == 400, "{status} {body}");
    assert_no_pan("the PATCH response", &body.to_string());
    assert_no_pan("the database", &stored_decisions(&app).await);
    app.stop().await;
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        each(Backend::ALL) => [
            score_validates_requests,
            score_response_has_the_documented_shape,
            every_gateway_fixture_scores,
            card_numbers_are_scrubbed,
            idempotency_key_replays_the_decision,
            rule_sets_drive_scoring,
            score_formula_follows_weights_and_thresholds,
            decisions_and_feedback_are_per_tenant,
            customers_are_profiled_and_flagged,
            device_signals_feed_the_score,
            scoring_state_survives_a_restart,
        ],
        each(Backend::ALL).threads(8) => [
            concurrent_replays_count_once_in_velocity,
        ],
        each(Backend::ALL) => [
            customer_ids_holding_card_numbers_are_not_stored,
            score_refuses_another_subscriber_inside_the_payload,
            score_amounts_are_plain_decimal_numbers,
        ],
        each(Backend::ALL).needs(Server::Redis) => [
            redis_velocity_counts_replays_once,
        ],
    }
}
