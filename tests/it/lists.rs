//! Lists: the API (with `X-API-Key` and for the operator), values normalized
//! for their kind, rules reading `lists.<name>` on the score path, the
//! allow-versus-block precedence, expiry, ranges, tenants, the audit log,
//! and a change seen by another process; and the store's contract.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{read, Backend, TestApp, ADMIN_TOKEN, SECRETS_KEY};
use riskgate::store::*;

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("X-API-Key", key);
    if let Some(body) = body {
        req = req.json(&body);
    }
    read(req.send().await.unwrap()).await
}

async fn put_list(app: &TestApp, key: &str, name: &str, body: Value) -> (u16, Value) {
    call(app, Method::PUT, &format!("/lists/{name}"), key, Some(body)).await
}

async fn add(app: &TestApp, key: &str, name: &str, body: Value) -> (u16, Value) {
    call(
        app,
        Method::POST,
        &format!("/lists/{name}/entries"),
        key,
        Some(body),
    )
    .await
}

async fn rules(app: &TestApp, subscriber: &str, rules: Value) {
    let (status, body) = app
        .admin(
            Method::PUT,
            &format!("/admin/subscribers/{subscriber}/rules"),
            Some(json!({"rules": rules})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn score(app: &TestApp, key: &str, subscriber: &str, payload: Value) -> Value {
    let body = json!({
        "request_id": format!("r-{}", riskgate::secrets::random_id(10)),
        "subscriber_id": subscriber,
        "payload": payload,
    });
    let (status, resp) = call(app, Method::POST, "/risk/bin/score", key, Some(body)).await;
    assert_eq!(status, 200, "{resp}");
    resp
}

fn payment(extra: Value) -> Value {
    let mut payload = json!({"transaction_amount": 25, "currency": "USD"});
    for (k, v) in extra.as_object().unwrap() {
        payload[k] = v.clone();
    }
    payload
}

fn action(resp: &Value) -> &str {
    resp["result"]["action"].as_str().unwrap()
}

async fn lists_are_created_listed_read_paged_and_deleted(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let (status, list) = put_list(
        &app,
        &key,
        "vip_emails",
        json!({"kind": "email", "description": "Known good"}),
    )
    .await;
    assert_eq!(status, 201, "{list}");
    assert_eq!(
        (
            list["name"].clone(),
            list["kind"].clone(),
            list["description"].clone(),
            list["entries_total"].clone()
        ),
        (
            json!("vip_emails"),
            json!("email"),
            json!("Known good"),
            json!(0)
        )
    );
    let (status, again) = put_list(&app, &key, "vip_emails", json!({"kind": "email"})).await;
    assert_eq!(
        (status, again["description"].clone()),
        (200, Value::Null),
        "{again}"
    );

    for (i, email) in ["Zed@Example.com", " amy@example.COM", "bob@example.com"]
        .iter()
        .enumerate()
    {
        let (status, entry) = add(
            &app,
            &key,
            "vip_emails",
            json!({"value": email, "reason": format!("r{i}"), "expires_at": "2999-01-01T01:00:00+01:00"}),
        )
        .await;
        assert_eq!(status, 201, "{entry}");
        assert_eq!(entry["value"], email.trim().to_lowercase());
        assert_eq!(entry["expires_at"], "2999-01-01T00:00:00.000Z");
        assert!(
            entry["author"].as_str().unwrap().starts_with("api_key:"),
            "{entry}"
        );
        assert!(entry["created_at"].as_str().unwrap().ends_with('Z'));
    }
    // The same value again replaces the entry.
    let (status, replaced) = add(
        &app,
        &key,
        "vip_emails",
        json!({"value": "BOB@example.com"}),
    )
    .await;
    assert_eq!(
        (
            status,
            replaced["reason"].clone(),
            replaced["expires_at"].clone()
        ),
        (201, Value::Null, Value::Null)
    );

    let (status, all) = call(&app, Method::GET, "/lists", &key, None).await;
    assert_eq!(status, 200);
    assert_eq!(all["lists"].as_array().unwrap().len(), 1);
    assert_eq!(all["lists"][0]["entries_total"], 3);

    // Pages, by value.
    let (status, first) = call(&app, Method::GET, "/lists/vip_emails?limit=2", &key, None).await;
    assert_eq!(status, 200, "{first}");
    let values = |page: &Value| -> Vec<String> {
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["value"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(values(&first), ["amy@example.com", "bob@example.com"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (status, second) = call(
        &app,
        Method::GET,
        &format!("/lists/vip_emails?limit=2&cursor={cursor}"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(values(&second), ["zed@example.com"]);
    assert_eq!(second["next_cursor"], Value::Null);

    // Removing an entry: by its value percent-encoded, or another spelling of it.
    let (status, _) = call(
        &app,
        Method::DELETE,
        "/lists/vip_emails/entries/amy%40example.com",
        &key,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &app,
        Method::DELETE,
        "/lists/vip_emails/entries/ZED@EXAMPLE.COM",
        &key,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, gone) = call(
        &app,
        Method::DELETE,
        "/lists/vip_emails/entries/amy%40example.com",
        &key,
        None,
    )
    .await;
    assert_eq!(status, 404, "{gone}");
    let (_, shown) = call(&app, Method::GET, "/lists/vip_emails", &key, None).await;
    assert_eq!(values(&shown), ["bob@example.com"]);
    assert_eq!(shown["entries_total"], 1);

    // A list with entries keeps its kind.
    let (status, refused) = put_list(&app, &key, "vip_emails", json!({"kind": "user"})).await;
    assert_eq!(status, 409, "{refused}");

    let (status, _) = call(&app, Method::DELETE, "/lists/vip_emails", &key, None).await;
    assert_eq!(status, 204);
    for (method, path) in [
        (Method::GET, "/lists/vip_emails"),
        (Method::DELETE, "/lists/vip_emails"),
        (
            Method::DELETE,
            "/lists/vip_emails/entries/bob%40example.com",
        ),
    ] {
        let (status, body) = call(&app, method, path, &key, None).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("vip_emails"),
            "{body}"
        );
    }
    let (status, body) = add(&app, &key, "vip_emails", json!({"value": "a@b.c"})).await;
    assert_eq!(status, 404, "{body}");
    app.stop().await;
}

async fn values_are_normalized_and_bad_requests_name_their_field(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let cases: &[(&str, &str, &str)] = &[
        ("ip", "10.1.2.3/8", "10.0.0.0/8"),
        ("ip", "2001:DB8::0:1", "2001:db8::1"),
        ("card", "4111 1111 1111 1111", "411111:1111"),
        ("card", "5555555555554444", "555555:4444"),
        ("bin", "41111111", "41111111"),
        ("email_domain", "@Mailinator.com", "mailinator.com"),
        ("country", "ng", "NG"),
        ("device", "visitor-1", "visitor-1"),
        ("user", "u-1", "u-1"),
    ];
    for (kind, value, shown) in cases {
        let name = format!("l_{kind}");
        let (status, body) = put_list(&app, &key, &name, json!({"kind": kind})).await;
        assert!(status == 201 || status == 200, "{body}");
        let (status, entry) = add(&app, &key, &name, json!({"value": value})).await;
        assert_eq!(
            (status, entry["value"].as_str()),
            (201, Some(*shown)),
            "{kind} {value}: {entry}"
        );
    }
    // No full card number is kept anywhere an operator can read.
    let (_, list) = call(&app, Method::GET, "/lists/l_card", &key, None).await;
    assert!(!list.to_string().contains("4111111111111111"), "{list}");
    let audit = app.store().audit_log("12", None, 100).await.unwrap();
    assert!(audit.iter().any(|e| e.summary.contains("411111:1111")));
    assert!(!audit.iter().any(|e| e.summary.contains("4111111111111111")));

    let bad: &[(&str, Value, &str)] = &[
        ("l_card", json!({"value": "4111111111111112"}), "'value'"),
        ("l_card", json!({"value": "4111"}), "'value'"),
        ("l_ip", json!({"value": "10.0.0.0/33"}), "'value'"),
        ("l_ip", json!({"value": "example.com"}), "'value'"),
        ("l_bin", json!({"value": "4111"}), "'value'"),
        ("l_country", json!({"value": "Nigeria"}), "'value'"),
        ("l_user", json!({"value": " "}), "'value'"),
        ("l_user", json!({"value": 12}), "'value'"),
        ("l_user", json!({"value": "x".repeat(257)}), "'value'"),
        ("l_user", json!({}), "'value'"),
        (
            "l_user",
            json!({"value": "u", "expires_at": "tomorrow"}),
            "'expires_at'",
        ),
        (
            "l_user",
            json!({"value": "u", "expires_at": 1_700_000_000}),
            "'expires_at'",
        ),
        ("l_user", json!({"value": "u", "reason": ""}), "'reason'"),
    ];
    for (name, body, field) in bad {
        let (status, resp) = add(&app, &key, name, body.clone()).await;
        assert_eq!(status, 400, "{body}: {resp}");
        let error = resp["error"].as_str().unwrap();
        assert!(error.contains(field), "{body}: {error}");
        assert!(!error.contains("4111111111111112"), "{error}");
    }
    for (name, body, field) in [
        ("Bad-Name", json!({"kind": "user"}), "'name'"),
        (&"x".repeat(65), json!({"kind": "user"}), "'name'"),
        ("ok", json!({"kind": "phone"}), "'kind'"),
        ("ok", json!({}), "'kind'"),
        (
            "ok",
            json!({"kind": "user", "description": 5}),
            "'description'",
        ),
    ] {
        let (status, resp) = put_list(&app, &key, name, body.clone()).await;
        assert_eq!(status, 400, "{name} {body}: {resp}");
        assert!(resp["error"].as_str().unwrap().contains(field), "{resp}");
    }
    for query in ["limit=0", "limit=1001", "limit=x", "cursor=nothex"] {
        let (status, resp) = call(
            &app,
            Method::GET,
            &format!("/lists/l_user?{query}"),
            &key,
            None,
        )
        .await;
        assert_eq!(status, 400, "{query}: {resp}");
    }
    app.stop().await;
}

async fn a_block_list_entry_on_a_card_blocks_its_payments(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    rules(&app, "12", json!([
        {"name": "Stolen card", "expression": "lists.blocked_cards", "weight": 0.1, "action": "block"}
    ]))
    .await;
    let card = json!({"bin": "41111111", "last4": "1111"});
    assert_eq!(
        action(&score(&app, &key, "12", payment(card.clone())).await),
        "allow",
        "no such list yet: false"
    );
    put_list(&app, &key, "blocked_cards", json!({"kind": "card"})).await;
    let (status, _) = add(
        &app,
        &key,
        "blocked_cards",
        json!({"value": "4111111111111111", "reason": "reported stolen"}),
    )
    .await;
    assert_eq!(status, 201);
    let resp = score(&app, &key, "12", payment(card.clone())).await;
    assert_eq!(action(&resp), "block", "{resp}");
    assert_eq!(resp["input"]["lists"], json!({"blocked_cards": true}));
    // The stored decision shows it too.
    let id = resp["decision_id"].as_str().unwrap();
    let (status, stored) = call(
        &app,
        Method::GET,
        &format!("/risk/decisions/{id}"),
        &key,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        stored["input"]["lists"],
        json!({"blocked_cards": true}),
        "{stored}"
    );
    // Another card is not on it.
    let other = score(
        &app,
        &key,
        "12",
        payment(json!({"bin": "55555555", "last4": "4444"})),
    )
    .await;
    assert_eq!(
        (action(&other), other["input"]["lists"].clone()),
        ("allow", json!({}))
    );
    // Removed: the next payment goes through.
    let (status, _) = call(
        &app,
        Method::DELETE,
        "/lists/blocked_cards/entries/411111%3A1111",
        &key,
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(
        action(&score(&app, &key, "12", payment(card)).await),
        "allow"
    );
    app.stop().await;
}

async fn an_allow_list_lets_through_what_a_rule_blocks_and_a_final_block_beats_it(
    backend: Backend,
) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    rules(&app, "12", json!([
        {"name": "Big", "expression": "amount > 1000", "weight": 0.9, "action": "block"},
        {"name": "Trusted customer", "expression": "lists.trusted_users", "weight": 0, "action": "allow", "final": true},
        {"name": "Sanctioned country", "expression": "lists.sanctioned", "weight": 0, "action": "block", "final": true}
    ]))
    .await;
    put_list(&app, &key, "trusted_users", json!({"kind": "user"})).await;
    put_list(&app, &key, "sanctioned", json!({"kind": "country"})).await;
    let big = |user: &str, country: &str| json!({"transaction_amount": 5000, "currency": "USD", "user_id": user, "billing_country": country});
    let resp = score(&app, &key, "12", big("u-1", "FR")).await;
    assert_eq!(action(&resp), "block");
    add(&app, &key, "trusted_users", json!({"value": "u-1"})).await;
    let resp = score(&app, &key, "12", big("u-1", "FR")).await;
    assert_eq!(action(&resp), "allow", "{resp}");
    assert_eq!(
        resp["result"]["risk_level"], "high",
        "the score is reported as computed"
    );
    let hit = resp["result"]["rule_hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["rule"] == "Trusted customer")
        .unwrap()
        .clone();
    assert_eq!(hit["final"], true);
    assert_eq!(
        action(&score(&app, &key, "12", big("u-2", "FR")).await),
        "block",
        "only the listed user"
    );
    // A final block beats the allow-list (any of the payment's countries).
    add(&app, &key, "sanctioned", json!({"value": "ir"})).await;
    let resp = score(&app, &key, "12", big("u-1", "IR")).await;
    assert_eq!(action(&resp), "block", "{resp}");
    assert_eq!(
        resp["input"]["lists"],
        json!({"sanctioned": true, "trusted_users": true})
    );
    let small = json!({"transaction_amount": 5, "currency": "USD", "user_id": "u-9", "shipping_country": "IR"});
    assert_eq!(action(&score(&app, &key, "12", small).await), "block");
    // `final` only goes with allow or block.
    let (status, body) = app
        .admin(
            Method::PUT,
            "/admin/subscribers/12/rules",
            Some(json!({"rules": [{"name": "x", "expression": "true", "weight": 0, "action": "review", "final": true}]})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("'final'"),
        "{body}"
    );
    app.stop().await;
}

async fn an_expired_entry_no_longer_matches(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    rules(&app, "12", json!([
        {"name": "Blocked device", "expression": "lists.bad_users", "weight": 0, "action": "block"}
    ]))
    .await;
    put_list(&app, &key, "bad_users", json!({"kind": "user"})).await;
    let (status, _) = add(
        &app,
        &key,
        "bad_users",
        json!({"value": "old", "expires_at": "2001-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(status, 201);
    let soon = riskgate::clock::rfc3339(now_millis() + 1500);
    let (status, entry) = add(
        &app,
        &key,
        "bad_users",
        json!({"value": "brief", "expires_at": soon}),
    )
    .await;
    assert_eq!(status, 201, "{entry}");
    let old = payment(json!({"user_id": "old"}));
    let brief = payment(json!({"user_id": "brief"}));
    assert_eq!(
        action(&score(&app, &key, "12", old).await),
        "allow",
        "expired long ago"
    );
    assert_eq!(
        action(&score(&app, &key, "12", brief.clone()).await),
        "block"
    );
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(
        action(&score(&app, &key, "12", brief).await),
        "allow",
        "expired since"
    );
    // Still listed, with its expiry.
    let (_, list) = call(&app, Method::GET, "/lists/bad_users", &key, None).await;
    assert_eq!(list["entries_total"], 2, "{list}");
    app.stop().await;
}

async fn an_ip_list_matches_by_range_and_falls_back_to_no_ip(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    rules(&app, "12", json!([
        {"name": "Bad network", "expression": "lists.bad_networks", "weight": 0, "action": "review"}
    ]))
    .await;
    put_list(&app, &key, "bad_networks", json!({"kind": "ip"})).await;
    add(
        &app,
        &key,
        "bad_networks",
        json!({"value": "203.0.113.0/24"}),
    )
    .await;
    add(
        &app,
        &key,
        "bad_networks",
        json!({"value": "2001:db8::/32"}),
    )
    .await;
    add(&app, &key, "bad_networks", json!({"value": "198.51.100.7"})).await;
    for (ip, expected) in [
        ("203.0.113.200", "review"),
        ("203.0.114.1", "allow"),
        ("198.51.100.7", "review"),
        ("198.51.100.8", "allow"),
        ("2001:db8:abcd::1", "review"),
        ("2001:db9::1", "allow"),
    ] {
        let resp = score(&app, &key, "12", payment(json!({"ip_address": ip}))).await;
        assert_eq!(action(&resp), expected, "{ip}");
    }
    assert_eq!(
        action(&score(&app, &key, "12", payment(json!({}))).await),
        "allow",
        "no IP: not on it"
    );
    app.stop().await;
}

async fn another_subscribers_key_can_neither_read_nor_change_a_list(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let other = app.subscriber_with_key("13").await;
    put_list(&app, &key, "blocked_cards", json!({"kind": "card"})).await;
    add(&app, &key, "blocked_cards", json!({"value": "411111:1111"})).await;
    let (status, lists) = call(&app, Method::GET, "/lists", &other, None).await;
    assert_eq!((status, lists), (200, json!({"lists": []})));
    for (method, path, body) in [
        (Method::GET, "/lists/blocked_cards", None),
        (
            Method::POST,
            "/lists/blocked_cards/entries",
            Some(json!({"value": "555555:4444"})),
        ),
        (
            Method::DELETE,
            "/lists/blocked_cards/entries/411111%3A1111",
            None,
        ),
        (Method::DELETE, "/lists/blocked_cards", None),
    ] {
        let (status, body) = call(&app, method.clone(), path, &other, body).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    // Its own list of the same name is another list, and its rules read it alone.
    put_list(&app, &other, "blocked_cards", json!({"kind": "card"})).await;
    rules(&app, "12", json!([{"name": "Stolen", "expression": "lists.blocked_cards", "weight": 0, "action": "block"}])).await;
    rules(&app, "13", json!([{"name": "Stolen", "expression": "lists.blocked_cards", "weight": 0, "action": "block"}])).await;
    let card = payment(json!({"bin": "411111", "last4": "1111"}));
    assert_eq!(
        action(&score(&app, &key, "12", card.clone()).await),
        "block"
    );
    assert_eq!(action(&score(&app, &other, "13", card).await), "allow");
    let (_, mine) = call(&app, Method::GET, "/lists/blocked_cards", &key, None).await;
    assert_eq!(mine["entries_total"], 1);
    // Without a key, nothing.
    let (status, _) = read(app.client.get(app.url("/lists")).send().await.unwrap()).await;
    assert_eq!(status, 401);
    app.stop().await;
}

async fn the_operator_manages_lists_and_every_change_is_audited(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let (status, created) = app
        .admin(
            Method::PUT,
            "/admin/subscribers/12/lists/sanctioned",
            Some(json!({"kind": "country"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let (status, entry) = app
        .admin(
            Method::POST,
            "/admin/subscribers/12/lists/sanctioned/entries",
            Some(json!({"value": "kp", "reason": "sanctions"})),
        )
        .await;
    assert_eq!(
        (status, entry["value"].clone(), entry["author"].clone()),
        (201, json!("KP"), json!("operator"))
    );
    // The subscriber sees the operator's list.
    let (_, shown) = call(&app, Method::GET, "/lists/sanctioned", &key, None).await;
    assert_eq!(shown["entries"][0]["value"], "KP");
    add(&app, &key, "sanctioned", json!({"value": "IR"})).await;
    let (status, page) = app
        .admin(
            Method::GET,
            "/admin/subscribers/12/lists/sanctioned?limit=1",
            None,
        )
        .await;
    assert_eq!(
        (status, page["entries"].as_array().unwrap().len()),
        (200, 1),
        "{page}"
    );
    let (status, all) = app
        .admin(Method::GET, "/admin/subscribers/12/lists", None)
        .await;
    assert_eq!(
        (status, all["lists"][0]["entries_total"].clone()),
        (200, json!(2))
    );
    let (status, _) = app
        .admin(
            Method::DELETE,
            "/admin/subscribers/12/lists/sanctioned/entries/IR",
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .admin(
            Method::DELETE,
            "/admin/subscribers/12/lists/sanctioned",
            None,
        )
        .await;
    assert_eq!(status, 204);
    for (method, path) in [
        (Method::GET, "/admin/subscribers/99/lists"),
        (Method::GET, "/admin/subscribers/99/lists/sanctioned"),
        (Method::DELETE, "/admin/subscribers/99/lists/sanctioned"),
    ] {
        let (status, _) = app.admin(method, path, None).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, body) = app
        .admin(
            Method::PUT,
            "/admin/subscribers/99/lists/x",
            Some(json!({"kind": "ip"})),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = read(
        app.client
            .get(app.url("/admin/subscribers/12/lists"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);

    // Every change, in order, with its actor.
    let log = app.store().audit_log("12", None, 100).await.unwrap();
    let mut changes: Vec<(String, String, String)> = log
        .iter()
        .filter(|e| e.target == "lists/sanctioned")
        .map(|e| (e.action.clone(), e.actor.clone(), e.summary.clone()))
        .collect();
    changes.reverse();
    let actions: Vec<&str> = changes.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "list.create",
            "list.entry.add",
            "list.entry.add",
            "list.entry.remove",
            "list.delete"
        ]
    );
    assert_eq!(changes[0].1, "operator");
    assert!(changes[2].1.starts_with("api_key:"), "{:?}", changes[2]);
    let summary: Value = serde_json::from_str(&changes[1].2).unwrap();
    assert_eq!(
        (summary["value"].clone(), summary["reason"].clone()),
        (json!("KP"), json!("sanctions"))
    );
    app.stop().await;
}

/// A second riskgate process on the same database.
async fn second_process(app: &TestApp) -> riskgate::app::Running {
    let mut config = riskgate::config::ServeConfig::for_database(app.db.url.clone());
    config.admin_token = Some(ADMIN_TOKEN.to_owned());
    config.db.secrets_key = Some(SECRETS_KEY.to_owned());
    let nowhere = url::Url::parse(crate::common::NO_PROVIDER).ok();
    config.fingerprint_base_url = nowhere.clone();
    config.stytch_base_url = nowhere.clone();
    config.fingerprintiq_base_url = nowhere;
    riskgate::app::start(&config, false)
        .await
        .expect("second process starts")
}

async fn a_change_in_one_process_is_seen_by_another(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    rules(&app, "12", json!([{"name": "Bad user", "expression": "lists.bad_users", "weight": 0, "action": "block"}])).await;
    put_list(&app, &key, "bad_users", json!({"kind": "user"})).await;
    let other = second_process(&app).await;
    let other_base = format!("http://{}", other.addr);
    let score_other = |user: &'static str| {
        let (client, base, key) = (app.client.clone(), other_base.clone(), key.clone());
        async move {
            let body = json!({"request_id": format!("o-{}", riskgate::secrets::random_id(8)), "subscriber_id": "12",
                              "payload": {"transaction_amount": 3, "currency": "USD", "user_id": user}});
            let (status, resp) = read(
                client
                    .post(format!("{base}/risk/bin/score"))
                    .header("X-API-Key", &key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(status, 200, "{resp}");
            resp["result"]["action"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(score_other("mallory").await, "allow");
    add(&app, &key, "bad_users", json!({"value": "mallory"})).await;
    let mut seen = String::new();
    for _ in 0..40 {
        seen = score_other("mallory").await;
        if seen == "block" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, "block", "the other process never saw the entry");
    // And the first process at once.
    assert_eq!(
        action(&score(&app, &key, "12", payment(json!({"user_id": "mallory"}))).await),
        "block"
    );
    other.shutdown().await.unwrap();
    app.stop().await;
}

// ---- the store's contract -------------------------------------------------

async fn store_lists_keep_entries_counts_revisions_and_tenants(backend: Backend) {
    let db = crate::common::fresh_db(backend).await;
    let store = connect(&db.url).await.unwrap();
    let key = Actor::ApiKey("key_1".into());
    assert_eq!(store.lists_revision("12").await.unwrap(), 0);
    let created = store
        .put_list("12", "cards", "card", Some("stolen"), 10, &key)
        .await
        .unwrap();
    let PutList::Created(row) = created else {
        panic!("{created:?}")
    };
    assert_eq!(
        (row.kind.as_str(), row.description.as_deref(), row.entries),
        ("card", Some("stolen"), 0)
    );
    let r1 = store.lists_revision("12").await.unwrap();
    assert!(r1 > 0);
    let updated = store
        .put_list("12", "cards", "bin", None, 10, &Actor::Operator)
        .await
        .unwrap();
    assert!(
        matches!(updated, PutList::Updated(ref r) if r.kind == "bin" && r.description.is_none()),
        "{updated:?}"
    );
    let entry = |value: &str, expires_at| NewListEntry {
        value: value.into(),
        reason: Some("why".into()),
        expires_at,
    };
    let added = store
        .add_list_entry("12", "cards", &entry("411111", Some(5)), 3, &key)
        .await
        .unwrap();
    let AddEntry::Added(row) = added else {
        panic!("{added:?}")
    };
    assert_eq!(
        (row.value.as_str(), row.expires_at, row.author.as_str()),
        ("411111", Some(5), "api_key:key_1")
    );
    // A kind in use stays.
    assert!(matches!(
        store
            .put_list("12", "cards", "user", None, 10, &key)
            .await
            .unwrap(),
        PutList::KindInUse(_)
    ));
    // Replacing keeps one entry; the limit counts every list of the subscriber.
    store
        .add_list_entry("12", "cards", &entry("411111", None), 3, &key)
        .await
        .unwrap();
    store
        .put_list("12", "other", "user", None, 10, &key)
        .await
        .unwrap();
    store
        .add_list_entry("12", "other", &entry("u1", None), 3, &key)
        .await
        .unwrap();
    store
        .add_list_entry("12", "other", &entry("u2", None), 3, &key)
        .await
        .unwrap();
    assert_eq!(
        store
            .add_list_entry("12", "other", &entry("u3", None), 3, &key)
            .await
            .unwrap(),
        AddEntry::Full
    );
    assert!(matches!(
        store
            .add_list_entry("12", "other", &entry("u2", Some(9)), 3, &key)
            .await
            .unwrap(),
        AddEntry::Added(_)
    ));
    assert_eq!(
        store
            .add_list_entry("12", "nope", &entry("u", None), 3, &key)
            .await
            .unwrap(),
        AddEntry::NoList
    );
    assert_eq!(
        store
            .put_list("12", "third", "ip", None, 2, &key)
            .await
            .unwrap(),
        PutList::TooMany
    );
    let lists = store.lists("12").await.unwrap();
    let counts: Vec<(&str, i64)> = lists.iter().map(|l| (l.name.as_str(), l.entries)).collect();
    assert_eq!(counts, [("cards", 1), ("other", 2)]);
    let page = store.list_entries("12", "other", None, 1).await.unwrap();
    assert_eq!(
        page.iter().map(|e| e.value.as_str()).collect::<Vec<_>>(),
        ["u1"]
    );
    let page = store
        .list_entries("12", "other", Some("u1"), 10)
        .await
        .unwrap();
    assert_eq!(
        (page.len(), page[0].value.as_str(), page[0].expires_at),
        (1, "u2", Some(9))
    );
    let snapshot = store.list_snapshot("12").await.unwrap();
    assert_eq!(
        snapshot.lists,
        [
            ("cards".to_owned(), "bin".to_owned()),
            ("other".to_owned(), "user".to_owned())
        ]
    );
    let mut entries = snapshot.entries.clone();
    entries.sort();
    assert_eq!(
        entries,
        [
            ("cards".to_owned(), "411111".to_owned(), None),
            ("other".to_owned(), "u1".to_owned(), None),
            ("other".to_owned(), "u2".to_owned(), Some(9)),
        ]
    );
    assert_eq!(snapshot.revision, store.lists_revision("12").await.unwrap());
    // Another subscriber's lists are its own.
    assert!(store.lists("13").await.unwrap().is_empty());
    assert!(store.get_list("13", "cards").await.unwrap().is_none());
    assert_eq!(
        store
            .remove_list_entry("13", "cards", "411111", &key)
            .await
            .unwrap(),
        RemoveEntry::NoList
    );
    assert!(!store.delete_list("13", "cards", &key).await.unwrap());
    assert_eq!(
        store.lists_revision("13").await.unwrap(),
        0,
        "nothing changed for 13"
    );
    // Removing, then deleting.
    let before = store.lists_revision("12").await.unwrap();
    assert_eq!(
        store
            .remove_list_entry("12", "other", "u1", &key)
            .await
            .unwrap(),
        RemoveEntry::Removed
    );
    assert_eq!(
        store
            .remove_list_entry("12", "other", "u1", &key)
            .await
            .unwrap(),
        RemoveEntry::NoEntry
    );
    assert!(store.lists_revision("12").await.unwrap() > before);
    assert_eq!(
        store
            .get_list("12", "other")
            .await
            .unwrap()
            .unwrap()
            .entries,
        1
    );
    assert!(store.delete_list("12", "other", &key).await.unwrap());
    assert!(store.get_list("12", "other").await.unwrap().is_none());
    assert!(store
        .list_entries("12", "other", None, 10)
        .await
        .unwrap()
        .is_empty());
    // Deleted entries no longer count toward the limit.
    assert!(matches!(
        store
            .add_list_entry("12", "cards", &entry("555555", None), 3, &key)
            .await
            .unwrap(),
        AddEntry::Added(_)
    ));
    // Each committed change has its audit entry; refusals have none.
    let log = store.audit_log("12", None, 100).await.unwrap();
    let mut actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    actions.reverse();
    assert_eq!(
        actions,
        [
            "list.create",
            "list.update",
            "list.entry.add",
            "list.entry.add",
            "list.create",
            "list.entry.add",
            "list.entry.add",
            "list.entry.add",
            "list.entry.remove",
            "list.delete",
            "list.entry.add",
        ]
    );
    assert!(store.audit_log("13", None, 10).await.unwrap().is_empty());
}

async fn store_concurrent_adds_count_each_entry_once(backend: Backend) {
    let db = crate::common::fresh_db(backend).await;
    let store = connect(&db.url).await.unwrap();
    store
        .put_list("12", "users", "user", None, 10, &Actor::Operator)
        .await
        .unwrap();
    let adds = (0..16).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let entry = NewListEntry {
                value: format!("u{}", i % 4),
                reason: None,
                expires_at: None,
            };
            store
                .add_list_entry("12", "users", &entry, 100, &Actor::Operator)
                .await
                .unwrap()
        })
    });
    for add in adds {
        assert!(matches!(add.await.unwrap(), AddEntry::Added(_)));
    }
    assert_eq!(
        store
            .get_list("12", "users")
            .await
            .unwrap()
            .unwrap()
            .entries,
        4
    );
    assert_eq!(
        store
            .list_entries("12", "users", None, 100)
            .await
            .unwrap()
            .len(),
        4
    );
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        each(Backend::ALL) => [
            lists_are_created_listed_read_paged_and_deleted,
            values_are_normalized_and_bad_requests_name_their_field,
            a_block_list_entry_on_a_card_blocks_its_payments,
            an_allow_list_lets_through_what_a_rule_blocks_and_a_final_block_beats_it,
            an_expired_entry_no_longer_matches,
            an_ip_list_matches_by_range_and_falls_back_to_no_ip,
            another_subscribers_key_can_neither_read_nor_change_a_list,
            the_operator_manages_lists_and_every_change_is_audited,
            a_change_in_one_process_is_seen_by_another,
            store_lists_keep_entries_counts_revisions_and_tenants,
            store_concurrent_adds_count_each_entry_once,
        ],
    }
}
