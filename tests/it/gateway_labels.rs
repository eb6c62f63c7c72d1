#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Labels from gateways (`POST /risk/feedback/gateway`) and the audit log
//! (`GET /admin/subscribers/{id}/audit`), on every backend, against the real
//! app: a payment scored from a gateway event, then the gateway's own dispute
//! or fraud-report fixture (`fixtures/gateways/disputes/`) labels it.
//!
//! The dispute fixtures come from other sources than the payment fixtures, so
//! their payment ids differ: where they do, the test sets the scored
//! payment's id to the one the dispute names (and says so), which is what a
//! real gateway's two events would share.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{read, Backend, TestApp};

fn fixture(file: &str) -> Value {
    let path = format!("{}/fixtures/gateways/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

async fn post(app: &TestApp, path: &str, key: Option<&str>, body: String) -> (u16, Value) {
    let mut req = app.client.post(app.url(path)).body(body);
    if let Some(key) = key {
        req = req.header("X-API-Key", key);
    }
    read(req.send().await.unwrap()).await
}

async fn get(app: &TestApp, path: &str, key: &str) -> (u16, Value) {
    read(
        app.client
            .get(app.url(path))
            .header("X-API-Key", key)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Scores `event` for `user`; the decision id.
async fn score_event(
    app: &TestApp,
    key: &str,
    request_id: &str,
    user: &str,
    event: Value,
) -> String {
    let body = json!({"request_id": request_id, "subscriber_id": "12",
                      "gateway_event": event, "payload": {"user_id": user}});
    let (status, resp) = post(app, "/risk/bin/score", Some(key), body.to_string()).await;
    assert_eq!(status, 200, "{resp}");
    resp["decision_id"].as_str().unwrap().to_owned()
}

async fn report(app: &TestApp, key: &str, event: &Value) -> (u16, Value) {
    post(app, "/risk/feedback/gateway", Some(key), event.to_string()).await
}

async fn label_of(app: &TestApp, key: &str, decision: &str) -> Value {
    let (status, body) = get(app, &format!("/risk/decisions/{decision}"), key).await;
    assert_eq!(status, 200, "{body}");
    body["label"].clone()
}

async fn fraud_labels(app: &TestApp, key: &str, user: &str) -> i64 {
    let (status, body) = get(app, &format!("/customers/{user}"), key).await;
    assert_eq!(status, 200, "{body}");
    body["decisions"]["fraud_labels"].as_i64().unwrap()
}

/// Every entry of the subscriber's audit log, newest first, read `page` at a time.
async fn audit(app: &TestApp, subscriber: &str, page: usize) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/admin/subscribers/{subscriber}/audit?limit={page}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = app.admin(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{body}");
        let got = body["entries"].as_array().unwrap();
        assert!(got.len() <= page, "{body}");
        entries.extend(got.iter().cloned());
        match body["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(got.len(), page, "a page before the last is full");
                cursor = Some(next.to_owned());
            }
            None => return entries,
        }
    }
}

fn key_id(key: &str) -> String {
    riskgate::secrets::key_id_of(key).unwrap().to_owned()
}

async fn stripe_dispute_labels_the_scored_charge(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    // The OpenAPI charge is the one the OpenAPI dispute object disputes.
    let disputed = score_event(
        &app,
        &key,
        "r1",
        "u1",
        fixture("stripe/charge_object_openapi.json"),
    )
    .await;
    let other = score_event(
        &app,
        &key,
        "r2",
        "u2",
        fixture("stripe/event_charge_succeeded.json"),
    )
    .await;

    let dispute = fixture("disputes/stripe_dispute_object_openapi.json");
    let (status, body) = report(&app, &key, &dispute).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"decision_id": disputed, "label": "chargeback"})
    );
    assert_eq!(label_of(&app, &key, &disputed).await, "chargeback");
    assert_eq!(label_of(&app, &key, &other).await, Value::Null);
    assert_eq!(fraud_labels(&app, &key, "u1").await, 1);

    // The same dispute again: one label, counted once, audited once.
    let (status, again) = report(&app, &key, &dispute).await;
    assert_eq!((status, &again), (200, &body));
    assert_eq!(fraud_labels(&app, &key, "u1").await, 1);
    let labels: Vec<Value> = audit(&app, "12", 50)
        .await
        .into_iter()
        .filter(|e| e["action"] == "decision.label")
        .collect();
    assert_eq!(labels.len(), 1, "{labels:?}");
    assert_eq!(labels[0]["actor"], format!("api_key:{}", key_id(&key)));
    assert_eq!(labels[0]["target"], format!("decisions/{disputed}"));
    let summary = &labels[0]["summary"];
    assert_eq!(summary["dispute_id"], "dp_1Pgc71B7WZ01zgkWMevJiAUx");
    assert_eq!(
        (&summary["label"], &summary["gateway"], &summary["event"]),
        (&json!("chargeback"), &json!("stripe"), &json!("dispute"))
    );

    // The `charge.dispute.created` webhook names the charge of the
    // stripe-ruby-mock events by a shorter zeroed id than the charge.succeeded
    // fixture carries: set it to that charge's id.
    let mut event = fixture("disputes/event_charge_dispute_created.json");
    event["data"]["object"]["charge"] = json!("ch_000000000000000000000000");
    let (status, body) = report(&app, &key, &event).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"decision_id": other, "label": "chargeback"}));
    assert_eq!(fraud_labels(&app, &key, "u2").await, 1);
    // Its payment intent names it as well.
    let mut by_intent = fixture("disputes/stripe_dispute_object_openapi.json");
    by_intent["charge"] = json!("ch_never_scored");
    by_intent["payment_intent"] = json!("pi_000000000000000000000000");
    let (status, body) = report(&app, &key, &by_intent).await;
    assert_eq!(
        (status, &body["decision_id"]),
        (200, &json!(other)),
        "{body}"
    );
    app.stop().await;
}

async fn adyen_chargeback_labels_the_scored_authorisation(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    // The chargeback fixture's `originalReference` is the pspReference of the
    // disputed payment: the authorisation fixture gets that pspReference.
    let mut auth = fixture("adyen/notification_authorisation_success.json");
    auth["notificationItems"][0]["NotificationRequestItem"]["pspReference"] =
        json!("9913333333333333");
    let disputed = score_event(&app, &key, "r1", "u1", auth).await;
    let chargeback = fixture("disputes/adyen_notification_chargeback.json");
    let (status, body) = report(&app, &key, &chargeback).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"decision_id": disputed, "label": "chargeback"})
    );
    assert_eq!(fraud_labels(&app, &key, "u1").await, 1);

    // A payment scored from the merchant's payload alone is found by the
    // merchantReference (its external_transaction_number).
    let body = json!({"request_id": "r2", "subscriber_id": "12",
                      "payload": {"transaction_amount": 10, "currency": "EUR", "user_id": "u2",
                                  "external_transaction_number": "order-42"}});
    let (status, scored) = post(&app, "/risk/bin/score", Some(&key), body.to_string()).await;
    assert_eq!(status, 200, "{scored}");
    let mut by_order = chargeback.clone();
    let item = &mut by_order["notificationItems"][0]["NotificationRequestItem"];
    item["originalReference"] = json!("NOTSCORED0000000");
    item["merchantReference"] = json!("order-42");
    let (status, body) = report(&app, &key, &by_order).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision_id"], scored["decision_id"]);
    app.stop().await;
}

async fn early_fraud_warning_labels_fraud(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    // The fraud warning fixture names charge `ch_1234`: the scored charge is
    // given that id.
    let mut charge = fixture("stripe/charge_object_openapi.json");
    charge["id"] = json!("ch_1234");
    let decision = score_event(&app, &key, "r1", "u1", charge).await;
    let warning = fixture("disputes/stripe_early_fraud_warning_object_openapi.json");
    let (status, body) = report(&app, &key, &warning).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"decision_id": decision, "label": "fraud"}));
    assert_eq!(fraud_labels(&app, &key, "u1").await, 1);
    // As the webhook event too; twice is once.
    let event = json!({"object": "event", "id": "evt_1", "type": "radar.early_fraud_warning.created",
                       "data": {"object": warning}});
    let (status, _) = report(&app, &key, &event).await;
    assert_eq!(status, 200);
    assert_eq!(fraud_labels(&app, &key, "u1").await, 1);
    // The dispute that follows makes it a chargeback, still one fraud label;
    // a late fraud warning does not undo that.
    let mut dispute = fixture("disputes/stripe_dispute_object_openapi.json");
    dispute["charge"] = json!("ch_1234");
    let (status, body) = report(&app, &key, &dispute).await;
    assert_eq!(
        (status, &body["label"]),
        (200, &json!("chargeback")),
        "{body}"
    );
    let (status, body) = report(&app, &key, &warning).await;
    assert_eq!(
        (status, &body["label"]),
        (200, &json!("chargeback")),
        "{body}"
    );
    assert_eq!(label_of(&app, &key, &decision).await, "chargeback");
    assert_eq!(fraud_labels(&app, &key, "u1").await, 1);
    app.stop().await;
}

async fn gateway_reports_that_find_nothing_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let other_key = app.subscriber_with_key("13").await;
    let decision = score_event(
        &app,
        &key,
        "r1",
        "u1",
        fixture("stripe/charge_object_openapi.json"),
    )
    .await;
    let dispute = fixture("disputes/stripe_dispute_object_openapi.json");

    // Another subscriber cannot label it, nor learn it exists.
    let (status, body) = report(&app, &other_key, &dispute).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("ch_1PgafuB7WZ01zgkWXYmPNZs8"),
        "{body}"
    );
    assert_eq!(label_of(&app, &key, &decision).await, Value::Null);
    // A payment never scored.
    let mut unknown = dispute.clone();
    unknown["charge"] = json!("ch_never_scored");
    let (status, body) = report(&app, &key, &unknown).await;
    assert_eq!(status, 404, "{body}");
    let mut adyen = fixture("disputes/adyen_notification_chargeback.json");
    let (status, _) = report(&app, &key, &adyen).await;
    assert_eq!(status, 404);
    // Events it does not recognize: a payment, an Adyen authorisation.
    for event in [
        fixture("stripe/event_charge_succeeded.json"),
        fixture("adyen/notification_authorisation_success.json"),
        json!({"anything": "else"}),
    ] {
        let (status, body) = report(&app, &key, &event).await;
        assert_eq!(status, 422, "{event} -> {body}");
        assert!(
            body["error"].as_str().unwrap().contains("expected"),
            "{body}"
        );
    }
    adyen["notificationItems"][0]["NotificationRequestItem"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| k != "originalReference" && k != "merchantReference");
    let (status, body) = report(&app, &key, &adyen).await;
    assert_eq!(status, 422, "{body}");
    // Bad JSON, no key.
    let (status, body) = post(
        &app,
        "/risk/feedback/gateway",
        Some(&key),
        "{\"object\":".into(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(&app, "/risk/feedback/gateway", Some(&key), "[1]".into()).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = post(&app, "/risk/feedback/gateway", None, dispute.to_string()).await;
    assert_eq!(status, 401);
    // Nothing of that labelled anything.
    assert_eq!(label_of(&app, &key, &decision).await, Value::Null);
    app.stop().await;
}

/// A sequence of changes by the operator and by an API key reads back from
/// the audit log newest first, with the right actors, page by page; changes
/// that fail write nothing.
async fn audit_log_records_every_change_newest_first(backend: Backend) {
    let app = TestApp::start(backend).await;
    let admin = |method: Method, path: String, body: Option<Value>| {
        let app = &app;
        async move { app.admin(method, &path, body).await }
    };
    let s = "/admin/subscribers/12".to_owned();
    let ok = |(status, body): (u16, Value), want: u16| {
        assert_eq!(status, want, "{body}");
        body
    };
    ok(
        admin(
            Method::POST,
            "/admin/subscribers".into(),
            Some(json!({"id": "12", "name": "Shop"})),
        )
        .await,
        201,
    );
    ok(
        admin(
            Method::PUT,
            format!("{s}/providers/fingerprint"),
            Some(json!({"secret_key": "fp_secret_audit"})),
        )
        .await,
        200,
    );
    let key = app.new_key("12").await;
    let second = ok(
        admin(
            Method::POST,
            format!("{s}/keys"),
            Some(json!({"name": "old"})),
        )
        .await,
        201,
    );
    let second_id = second["key_id"].as_str().unwrap().to_owned();
    ok(
        admin(Method::DELETE, format!("{s}/keys/{second_id}"), None).await,
        200,
    );
    ok(
        admin(Method::PATCH, s.clone(), Some(json!({"name": "Shop 2"}))).await,
        200,
    );
    ok(
        admin(
            Method::PUT,
            format!("{s}/rate-limit"),
            Some(json!({"requests_per_second": 50})),
        )
        .await,
        200,
    );
    ok(
        admin(Method::DELETE, format!("{s}/rate-limit"), None).await,
        200,
    );
    let rotated = ok(
        admin(Method::POST, format!("{s}/webhook-secret/rotate"), None).await,
        200,
    );
    ok(
        admin(
            Method::PUT,
            format!("{s}/signing-scheme"),
            Some(json!({"signing_scheme": "v1a"})),
        )
        .await,
        200,
    );
    ok(
        admin(Method::POST, format!("{s}/signing-key/rotate"), None).await,
        200,
    );
    let patch = app
        .client
        .patch(app.url("/customers/u1"))
        .header("X-API-Key", &key)
        .body(json!({"status": "blocked"}).to_string());
    ok(read(patch.send().await.unwrap()).await, 200);
    let scored = score_event(
        &app,
        &key,
        "r1",
        "u1",
        fixture("stripe/charge_object_openapi.json"),
    )
    .await;
    let feedback = post(
        &app,
        &format!("/risk/decisions/{scored}/feedback"),
        Some(&key),
        json!({"label": "fraud"}).to_string(),
    )
    .await;
    ok(feedback, 200);
    ok(
        admin(
            Method::PATCH,
            s.clone(),
            Some(json!({"status": "suspended"})),
        )
        .await,
        200,
    );

    // Failed changes: refused before or inside their transaction, none recorded.
    ok(
        admin(
            Method::POST,
            "/admin/subscribers".into(),
            Some(json!({"id": "12", "name": "Again"})),
        )
        .await,
        409,
    );
    ok(
        admin(Method::PATCH, s.clone(), Some(json!({"status": "bogus"}))).await,
        400,
    );
    ok(
        admin(Method::DELETE, format!("{s}/keys/nosuchkey"), None).await,
        404,
    );
    ok(
        admin(
            Method::PUT,
            format!("{s}/rate-limit"),
            Some(json!({"requests_per_second": -1})),
        )
        .await,
        400,
    );
    ok(
        admin(
            Method::PUT,
            format!("{s}/providers/stytch"),
            Some(json!({})),
        )
        .await,
        400,
    );
    // Changes that change nothing: a revoked key revoked again, the limit
    // removed again, the scheme in force set again.
    ok(
        admin(Method::DELETE, format!("{s}/keys/{second_id}"), None).await,
        200,
    );
    ok(
        admin(Method::DELETE, format!("{s}/rate-limit"), None).await,
        200,
    );
    ok(
        admin(
            Method::PUT,
            format!("{s}/signing-scheme"),
            Some(json!({"signing_scheme": "v1a"})),
        )
        .await,
        200,
    );

    let api_key = format!("api_key:{}", key_id(&key));
    let expected: Vec<(&str, &str)> = vec![
        ("subscriber.create", "operator"),
        ("provider.credentials.put", "operator"),
        ("key.create", "operator"),
        ("key.create", "operator"),
        ("key.revoke", "operator"),
        ("subscriber.update", "operator"),
        ("rate_limit.set", "operator"),
        ("rate_limit.remove", "operator"),
        ("webhook_secret.rotate", "operator"),
        ("signing_scheme.set", "operator"),
        ("signing_key.rotate", "operator"),
        ("customer.status", &api_key),
        ("decision.label", &api_key),
        ("subscriber.status", "operator"),
    ];
    let newest_first: Vec<(String, String)> = expected
        .iter()
        .rev()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    for page in [1, 4, 50] {
        let entries = audit(&app, "12", page).await;
        let got: Vec<(String, String)> = entries
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_owned(),
                    e["actor"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(got, newest_first, "pages of {page}");
    }
    let entries = audit(&app, "12", 50).await;
    let times: Vec<&str> = entries
        .iter()
        .map(|e| e["time"].as_str().unwrap())
        .collect();
    for t in &times {
        assert!(humantime::parse_rfc3339(t).is_ok(), "{t}");
    }
    let find = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap()
            .clone()
    };
    assert_eq!(
        find("subscriber.status")["summary"]["status"],
        json!({"from": "active", "to": "suspended"})
    );
    assert_eq!(
        find("subscriber.update")["summary"]["name"],
        json!({"from": "Shop", "to": "Shop 2"})
    );
    assert_eq!(find("key.revoke")["target"], format!("keys/{second_id}"));
    assert_eq!(
        find("customer.status")["summary"],
        json!({"status": "blocked", "previous": null})
    );
    assert_eq!(find("customer.status")["target"], "customers/u1");
    assert_eq!(find("decision.label")["summary"]["label"], "fraud");
    assert_eq!(
        find("rate_limit.set")["summary"],
        json!({"requests_per_second": 50.0, "burst": 50})
    );
    assert_eq!(
        find("provider.credentials.put")["summary"]["provider"],
        "fingerprint"
    );
    // No secret in any summary.
    let text = Value::Array(entries.clone()).to_string();
    let secret = rotated["webhook_secret"].as_str().unwrap();
    for leaked in ["fp_secret_audit", secret, "whsk_", &key] {
        assert!(!text.contains(leaked), "{leaked} in {text}");
    }

    // Another subscriber's log is its own; bad paging is a 400 naming the field.
    ok(
        admin(
            Method::POST,
            "/admin/subscribers".into(),
            Some(json!({"id": "13", "name": "Other"})),
        )
        .await,
        201,
    );
    assert_eq!(audit(&app, "13", 50).await.len(), 1);
    ok(
        admin(Method::GET, "/admin/subscribers/nobody/audit".into(), None).await,
        404,
    );
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=x", "limit"),
        ("cursor=nope", "cursor"),
        ("cursor=1.a-b", "cursor"),
    ] {
        let body = ok(
            admin(Method::GET, format!("{s}/audit?{query}"), None).await,
            400,
        );
        assert!(
            body["error"].as_str().unwrap().contains(field),
            "{query}: {body}"
        );
    }
    // A cursor past the oldest entry is an empty last page.
    let body = ok(
        admin(Method::GET, format!("{s}/audit?cursor=1.a"), None).await,
        200,
    );
    assert_eq!(body, json!({"entries": [], "next_cursor": null}));
    app.stop().await;
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        each(Backend::ALL) => [
            stripe_dispute_labels_the_scored_charge,
            adyen_chargeback_labels_the_scored_authorisation,
            early_fraud_warning_labels_fraud,
            gateway_reports_that_find_nothing_are_refused,
            audit_log_records_every_change_newest_first,
        ],
    }
}
