#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Backtests as an operator runs them, on every backend, against the real
//! app: `POST /admin/subscribers/{id}/backtests` and the reads that follow it
//! to `done`. Every expectation below is worked out by hand from the amounts
//! and labels the test gives its decisions.

use std::time::{Duration, Instant};

use crate::common::{read, Backend, TestApp};
use reqwest::Method;
use riskgate::clock::rfc3339;
use riskgate::store::{now_millis, Actor};
use serde_json::{json, Value};

// ---- helpers ------------------------------------------------------------

async fn score(app: &TestApp, key: &str, subscriber: &str, n: &str, payload: Value) -> Value {
    let body =
        json!({"request_id": format!("req-{n}"), "subscriber_id": subscriber, "payload": payload});
    let resp = app
        .client
        .post(app.url("/risk/bin/score"))
        .header("X-API-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, resp) = read(resp).await;
    assert_eq!(status, 200, "{body} -> {resp}");
    resp
}

async fn label(app: &TestApp, key: &str, decision: &str, label: &str) {
    let resp = app
        .client
        .post(app.url(&format!("/risk/decisions/{decision}/feedback")))
        .header("X-API-Key", key)
        .json(&json!({ "label": label }))
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, 200, "{body}");
}

async fn put_rules(app: &TestApp, subscriber: &str, rules: Value) -> i64 {
    let (status, body) = app
        .admin(
            Method::PUT,
            &format!("/admin/subscribers/{subscriber}/rules"),
            Some(rules),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["version"].as_i64().unwrap()
}

async fn queue(app: &TestApp, subscriber: &str, body: Value) -> (u16, Value) {
    app.admin(
        Method::POST,
        &format!("/admin/subscribers/{subscriber}/backtests"),
        Some(body),
    )
    .await
}

async fn queue_ok(app: &TestApp, subscriber: &str, body: Value) -> String {
    let (status, queued) = queue(app, subscriber, body).await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["status"], "queued", "{queued}");
    queued["backtest_id"].as_str().unwrap().to_owned()
}

/// Reads the backtest until it is done (or failed), for at most 30 s.
async fn until_done(app: &TestApp, subscriber: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = app
            .admin(
                Method::GET,
                &format!("/admin/subscribers/{subscriber}/backtests/{id}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        match body["status"].as_str().unwrap() {
            "done" | "failed" => return body,
            "queued" | "running" => {}
            other => panic!("status {other}: {body}"),
        }
        assert!(Instant::now() < deadline, "not done within 30 s: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn decision_id(resp: &Value) -> String {
    resp["decision_id"].as_str().unwrap().to_owned()
}

fn usd(amount: f64) -> Value {
    json!({"transaction_amount": amount, "currency": "USD"})
}

/// A window around now.
fn window() -> (String, String) {
    let now = now_millis();
    (rfc3339(now - 60_000), rfc3339(now + 60_000))
}

fn changed_ids(result: &Value) -> Vec<(String, String, String)> {
    result["changed"]["sample"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["decision_id"].as_str().unwrap().to_owned(),
                c["live"].as_str().unwrap().to_owned(),
                c["candidate"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

// ---- the flow -----------------------------------------------------------

/// Live: amounts over 500 are reviewed. Candidate: they are blocked, and
/// 150–500 reviewed. Eight decisions, labelled as below; a second tenant's
/// decisions in the same window must not count.
///
/// | # | amount | label      | live   | candidate |
/// |---|--------|------------|--------|-----------|
/// | 1 | 100    | legit      | allow  | allow     |
/// | 2 | 200    | fraud      | allow  | review    |
/// | 3 | 300    | —          | allow  | review    |
/// | 4 | 600    | fraud      | review | block     |
/// | 5 | 700    | legit      | review | block     |
/// | 6 | 800    | chargeback | review | block     |
/// | 7 | 900    | —          | review | block     |
/// | 8 | 50     | legit      | allow  | allow     |
async fn a_stricter_candidate_is_measured_against_the_labels(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let other = app.subscriber_with_key("13").await;
    let live = json!({"review_threshold": 0.3, "block_threshold": 0.7, "rules": [
        {"name": "Big", "expression": "amount > 500", "weight": 0.4}
    ]});
    let live_version = put_rules(&app, "12", live).await;
    let (from, to) = window();
    let plan = [
        (100.0, Some("legit")),
        (200.0, Some("fraud")),
        (300.0, None),
        (600.0, Some("fraud")),
        (700.0, Some("legit")),
        (800.0, Some("chargeback")),
        (900.0, None),
        (50.0, Some("legit")),
    ];
    let mut ids = Vec::new();
    for (i, (amount, labelled)) in plan.iter().enumerate() {
        let resp = score(&app, &key, "12", &i.to_string(), usd(*amount)).await;
        let id = decision_id(&resp);
        if let Some(labelled) = labelled {
            label(&app, &key, &id, labelled).await;
        }
        ids.push(id);
        // The other tenant's decisions are in the window too, and labelled.
        let theirs = score(&app, &other, "13", &i.to_string(), usd(5_000.0)).await;
        label(&app, &other, &decision_id(&theirs), "fraud").await;
    }
    let candidate = json!({"review_threshold": 0.3, "block_threshold": 0.7, "rules": [
        {"name": "Big", "expression": "amount > 500", "weight": 0.4, "action": "block"},
        {"name": "Mid", "expression": "amount > 150 and amount <= 500", "weight": 0.35}
    ]});
    let id = queue_ok(
        &app,
        "12",
        json!({"rules": candidate, "from": from, "to": to}),
    )
    .await;
    let done = until_done(&app, "12", &id).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["progress"], json!({"done": 8, "total": 8}));
    assert_eq!(done["version"], Value::Null);
    assert_eq!(done["backtest_id"], id.as_str());
    let result = &done["result"];
    assert_eq!(result["decisions"], 8);
    assert_eq!(result["skipped"], 0);
    assert_eq!(
        result["labels"],
        json!({"fraud": 3, "good": 3, "unlabelled": 2})
    );

    let live = &result["live"];
    assert_eq!(
        live["actions"],
        json!({"allow": 4, "review": 4, "block": 0})
    );
    assert_eq!(
        live["flagged"],
        json!({"tp": 2, "fp": 1, "tn": 2, "fn": 1, "unlabelled_positive": 1,
               "precision": 0.6667, "recall": 0.6667})
    );
    assert_eq!(
        live["blocked"],
        json!({"tp": 0, "fp": 0, "tn": 3, "fn": 3, "unlabelled_positive": 0,
               "precision": null, "recall": 0.0})
    );
    assert_eq!(live["fraud_amount_caught"], json!({"USD": 1400.0}));
    assert_eq!(live["good_amount_declined"], json!({}));
    assert_eq!(
        live["rules"],
        json!([{"rule": "Big", "hits": 4, "labelled_hits": 3, "precision": 0.6667, "errors": 0}])
    );

    let cand = &result["candidate"];
    assert_eq!(
        cand["actions"],
        json!({"allow": 2, "review": 2, "block": 4})
    );
    assert_eq!(
        cand["flagged"],
        json!({"tp": 3, "fp": 1, "tn": 2, "fn": 0, "unlabelled_positive": 2,
               "precision": 0.75, "recall": 1.0})
    );
    assert_eq!(
        cand["blocked"],
        json!({"tp": 2, "fp": 1, "tn": 2, "fn": 1, "unlabelled_positive": 1,
               "precision": 0.6667, "recall": 0.6667})
    );
    assert_eq!(cand["fraud_amount_caught"], json!({"USD": 1600.0}));
    assert_eq!(cand["good_amount_declined"], json!({"USD": 700.0}));
    assert_eq!(
        cand["rules"],
        json!([
            {"rule": "Big", "hits": 4, "labelled_hits": 3, "precision": 0.6667, "errors": 0},
            {"rule": "Mid", "hits": 2, "labelled_hits": 1, "precision": 1.0, "errors": 0}
        ])
    );

    assert_eq!(result["changed"]["count"], 6);
    let expected: Vec<(String, String, String)> = [
        (1, "allow", "review"),
        (2, "allow", "review"),
        (3, "review", "block"),
        (4, "review", "block"),
        (5, "review", "block"),
        (6, "review", "block"),
    ]
    .iter()
    .map(|(i, l, c)| (ids[*i].clone(), (*l).to_owned(), (*c).to_owned()))
    .collect();
    assert_eq!(changed_ids(result), expected);

    // The live version replayed gives the live actions back: same inputs,
    // same rules, same answers.
    let again = queue_ok(
        &app,
        "12",
        json!({"version": live_version, "from": from, "to": to}),
    )
    .await;
    let again = until_done(&app, "12", &again).await;
    assert_eq!(again["version"], live_version);
    assert_eq!(
        again["result"]["changed"],
        json!({"count": 0, "sample": []})
    );
    assert_eq!(again["result"]["candidate"], again["result"]["live"]);

    // A window that holds none of them replays nothing.
    let empty = queue_ok(
        &app,
        "12",
        json!({"version": 0, "from": "2001-01-01T00:00:00Z", "to": "2001-01-02T00:00:00+01:00"}),
    )
    .await;
    let empty = until_done(&app, "12", &empty).await;
    assert_eq!(empty["status"], "done");
    assert_eq!(empty["progress"], json!({"done": 0, "total": 0}));
    assert_eq!(empty["result"]["decisions"], 0);

    // The list shows all three, newest first, without their results.
    let (status, list) = app
        .admin(Method::GET, "/admin/subscribers/12/backtests", None)
        .await;
    assert_eq!(status, 200);
    let listed = list["backtests"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{list}");
    assert_eq!(listed[2]["backtest_id"], id.as_str());
    assert!(listed.iter().all(|b| b.get("result").is_none()), "{list}");

    // Queueing is audited, in the subscriber's log only.
    let audit = app.store().audit_log("12", None, 10).await.unwrap();
    let queued: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "backtest.queue")
        .collect();
    assert_eq!(queued.len(), 3, "{audit:?}");
    assert_eq!(queued[2].target, format!("backtests/{id}"));
    assert_eq!(queued[2].actor, "operator");
    let summary: Value = serde_json::from_str(&queued[2].summary).unwrap();
    assert_eq!(summary["rules"], 2);
    assert!(app
        .store()
        .audit_log("13", None, 10)
        .await
        .unwrap()
        .iter()
        .all(|e| e.action != "backtest.queue"));
    app.stop().await;
}

/// Five payments on one card by one customer: the candidate blocks a card
/// seen 3 times in the hour and reviews a customer with 3 earlier
/// decisions. Each decision is replayed as its own moment saw it: the card
/// rule hits the 3rd to 5th, the customer rule the 4th and 5th, though by
/// the end the card has been seen 5 times and the customer 5 times too.
async fn backtests_replay_each_decision_as_its_moment_saw_it(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    // Nothing hits live: every decision was allowed.
    put_rules(
        &app,
        "12",
        json!({"rules": [{"name": "Huge", "expression": "amount > 100000", "weight": 0.9}]}),
    )
    .await;
    let (from, to) = window();
    let mut ids = Vec::new();
    for i in 0..5 {
        let payload = json!({"transaction_amount": 20 + i, "currency": "EUR",
                             "bin": "424242", "last4": "4242", "user_id": "shopper-1"});
        let resp = score(&app, &key, "12", &i.to_string(), payload).await;
        assert_eq!(resp["result"]["action"], "allow", "{resp}");
        assert_eq!(resp["input"]["velocity"]["card"]["count_1h"], i + 1);
        ids.push(decision_id(&resp));
    }
    let candidate = json!({"rules": [
        {"name": "Card burst", "expression": "velocity.card.count_1h >= 3", "weight": 0, "action": "block"},
        {"name": "Regular", "expression": "customer.decisions >= 3", "weight": 0.3}
    ]});
    let id = queue_ok(
        &app,
        "12",
        json!({"rules": candidate, "from": from, "to": to}),
    )
    .await;
    let done = until_done(&app, "12", &id).await;
    let result = &done["result"];
    assert_eq!(result["decisions"], 5, "{done}");
    let rules = &result["candidate"]["rules"];
    assert_eq!(rules[0]["rule"], "Card burst");
    assert_eq!(rules[0]["hits"], 3, "{rules}");
    assert_eq!(rules[1]["rule"], "Regular");
    assert_eq!(rules[1]["hits"], 2, "{rules}");
    assert_eq!(
        result["candidate"]["actions"],
        json!({"allow": 2, "review": 0, "block": 3})
    );
    let expected: Vec<(String, String, String)> = ids[2..]
        .iter()
        .map(|id| (id.clone(), "allow".into(), "block".into()))
        .collect();
    assert_eq!(changed_ids(result), expected, "only the 3rd to 5th");
    app.stop().await;
}

// ---- validation and isolation -------------------------------------------

async fn backtest_requests_are_validated(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.subscriber_with_key("12").await;
    let (from, to) = window();
    let cases = [
        (json!({"version": 0, "to": to}), "Missing 'from'"),
        (json!({"version": 0, "from": from}), "Missing 'to'"),
        (
            json!({"version": 0, "from": "yesterday", "to": to}),
            "Invalid 'from'",
        ),
        (json!({"version": 0, "from": 5, "to": to}), "Invalid 'from'"),
        (
            json!({"version": 0, "from": from, "to": "2024-02-30T00:00:00Z"}),
            "Invalid 'to'",
        ),
        (
            json!({"version": 0, "from": to, "to": from}),
            "Invalid 'to'",
        ),
        (
            json!({"version": 0, "from": from, "to": from}),
            "Invalid 'to'",
        ),
        (json!({"from": from, "to": to}), "'version' or 'rules'"),
        (
            json!({"version": 0, "rules": {"rules": []}, "from": from, "to": to}),
            "not both",
        ),
        (
            json!({"version": -1, "from": from, "to": to}),
            "Invalid 'version'",
        ),
        (
            json!({"version": "one", "from": from, "to": to}),
            "Invalid 'version'",
        ),
        (
            json!({"version": 1.5, "from": from, "to": to}),
            "Invalid 'version'",
        ),
        (
            json!({"rules": [], "from": from, "to": to}),
            "Invalid 'rules'",
        ),
        (
            json!({"rules": {"rules": [{"name": "Half", "expression": "amount >", "weight": 0.1}]},
                   "from": from, "to": to}),
            "Invalid rule 'Half'",
        ),
        (
            json!({"rules": {"review_threshold": 0.9, "block_threshold": 0.5, "rules": []},
                   "from": from, "to": to}),
            "must not exceed",
        ),
    ];
    for (body, message) in cases {
        let (status, err) = queue(&app, "12", body.clone()).await;
        assert_eq!(status, 400, "{body} -> {err}");
        let text = err["error"].as_str().unwrap();
        assert!(text.contains(message), "{body} -> {text}");
    }
    let (status, err) = app
        .admin(Method::POST, "/admin/subscribers/12/backtests", None)
        .await;
    assert_eq!(status, 400, "{err}");

    let (status, err) = queue(&app, "12", json!({"version": 7, "from": from, "to": to})).await;
    assert_eq!(status, 404, "{err}");
    assert_eq!(err["error"], "Rule set version 7 not found");
    let (status, _) = queue(
        &app,
        "nobody",
        json!({"version": 0, "from": from, "to": to}),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .admin(Method::GET, "/admin/subscribers/nobody/backtests", None)
        .await;
    assert_eq!(status, 404);
    let (status, err) = app
        .admin(
            Method::GET,
            "/admin/subscribers/12/backtests/bt_nosuch",
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(err["error"], "Backtest 'bt_nosuch' not found");
    let resp = app
        .client
        .post(app.url("/admin/subscribers/12/backtests"))
        .json(&json!({"version": 0, "from": from, "to": to}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Nothing refused was queued.
    let (_, list) = app
        .admin(Method::GET, "/admin/subscribers/12/backtests", None)
        .await;
    assert_eq!(list["backtests"], json!([]));
    app.stop().await;
}

async fn a_backtest_is_its_subscribers_only(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.subscriber_with_key("12").await;
    app.subscriber_with_key("13").await;
    let (from, to) = window();
    let theirs = queue_ok(&app, "13", json!({"version": 0, "from": from, "to": to})).await;
    let (status, err) = app
        .admin(
            Method::GET,
            &format!("/admin/subscribers/12/backtests/{theirs}"),
            None,
        )
        .await;
    assert_eq!(status, 404, "{err}");
    let (_, list) = app
        .admin(Method::GET, "/admin/subscribers/12/backtests", None)
        .await;
    assert_eq!(list["backtests"], json!([]));
    assert_eq!(until_done(&app, "13", &theirs).await["status"], "done");
    app.stop().await;
}

// ---- durability ---------------------------------------------------------

/// A backtest recorded while no process runs (as a `202` leaves it when the
/// process dies at once) runs at the next start; so does one queued just
/// before a restart, whatever it was doing then.
async fn a_queued_backtest_runs_after_a_restart(backend: Backend) {
    let mut app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let (from, to) = window();
    for i in 0..3 {
        score(&app, &key, "12", &i.to_string(), usd(10.0 + f64::from(i))).await;
    }
    let before_restart = queue_ok(&app, "12", json!({"version": 0, "from": from, "to": to})).await;
    app.running.take().unwrap().shutdown().await.unwrap();

    // Queued with no process running: only the row and its job exist.
    let store = riskgate::store::connect(&app.db.url).await.unwrap();
    let body = json!({"version": 0, "from": from, "to": to});
    let offline = riskgate::service::backtests::queue(
        store.as_ref(),
        "12",
        body.as_object().unwrap(),
        &Actor::Operator,
    )
    .await
    .unwrap();
    let row = store
        .get_backtest("12", &offline.backtest_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status.as_str(), "queued");
    store.close().await;

    app.restart().await;
    for id in [&before_restart, &offline.backtest_id] {
        let done = until_done(&app, "12", id).await;
        assert_eq!(done["status"], "done", "{done}");
        assert_eq!(done["result"]["decisions"], 3, "{done}");
        assert_eq!(done["progress"], json!({"done": 3, "total": 3}));
    }
    app.stop().await;
}

/// `kill -9` right after the `202`, whether the backtest was still queued
/// or already replaying: after the restart it runs to the end, on every
/// decision.
async fn kill9_after_the_202_loses_no_backtest(backend: Backend) {
    use crate::common::binary::Server;
    let db = crate::common::fresh_db(backend).await;
    let mut server = Server::start(&db.url, &[]);
    let client = reqwest::Client::new();
    let key = server.subscriber_with_key(&client, "12").await;
    let (from, to) = window();
    const DECISIONS: usize = 1_500;
    let mut scoring = tokio::task::JoinSet::new();
    for worker in 0..16 {
        let (client, key, base) = (client.clone(), key.clone(), server.base.clone());
        scoring.spawn(async move {
            for i in (worker..DECISIONS).step_by(16) {
                let body = json!({"request_id": format!("r-{i}"), "subscriber_id": "12",
                    "payload": {"transaction_amount": 10 + i % 900, "currency": "USD",
                                "bin": "411111", "last4": format!("{:04}", i % 50)}});
                let resp = client
                    .post(format!("{base}/risk/bin/score"))
                    .header("X-API-Key", &key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
            }
        });
    }
    while let Some(done) = scoring.join_next().await {
        done.unwrap();
    }
    let resp = client
        .post(format!("{}/admin/subscribers/12/backtests", server.base))
        .bearer_auth(crate::common::ADMIN_TOKEN)
        .json(&json!({"version": 0, "from": from, "to": to}))
        .send()
        .await
        .unwrap();
    let (status, queued) = read(resp).await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["backtest_id"].as_str().unwrap().to_owned();
    server.kill9();

    let store = riskgate::store::connect(&db.url).await.unwrap();
    let at_kill = store.get_backtest("12", &id).await.unwrap().unwrap();
    assert!(!at_kill.status.is_final(), "{at_kill:?}");
    let server = Server::start(&db.url, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let row = store.get_backtest("12", &id).await.unwrap().unwrap();
        if row.status.is_final() {
            break row;
        }
        assert!(
            Instant::now() < deadline,
            "not done a minute after the restart: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done.status.as_str(), "done", "{done:?}");
    assert_eq!((done.progress_done, done.progress_total), (1_500, 1_500));
    let result: Value = serde_json::from_str(done.result.as_deref().unwrap()).unwrap();
    assert_eq!(result["decisions"], 1_500);
    assert_eq!(result["changed"]["count"], 0, "version 0 decided them all");
    eprintln!("backtest was {} at the kill", at_kill.status.as_str());
    store.close().await;
    server.stop();
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        each(Backend::ALL) => [
            kill9_after_the_202_loses_no_backtest,
            a_stricter_candidate_is_measured_against_the_labels,
            backtests_replay_each_decision_as_its_moment_saw_it,
            backtest_requests_are_validated,
            a_backtest_is_its_subscribers_only,
            a_queued_backtest_runs_after_a_restart,
        ],
    }
}
