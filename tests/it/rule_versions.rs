//! Rule-set versions as an operator and an analyst use them, on every
//! backend, against the real app: drafts, publish and rollback, the shadow
//! (stored on decisions, never acting), and the per-rule statistics against
//! labels.

use crate::common::{Backend, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

const RULES: &str = "/admin/subscribers/12/rules";

async fn score(app: &TestApp, key: &str, request_id: &str, amount: f64) -> Value {
    let body = json!({"request_id": request_id, "subscriber_id": 12,
        "payload": {"transaction_amount": amount, "currency": "USD"}});
    let resp = app
        .client
        .post(app.url("/risk/bin/score"))
        .header("X-API-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, resp) = crate::common::read(resp).await;
    assert_eq!(status, 200, "{resp}");
    resp
}

async fn decision(app: &TestApp, key: &str, id: &str) -> Value {
    let resp = app
        .client
        .get(app.url(&format!("/risk/decisions/{id}")))
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap();
    let (status, body) = crate::common::read(resp).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn label(app: &TestApp, key: &str, id: &str, label: &str) {
    let resp = app
        .client
        .post(app.url(&format!("/risk/decisions/{id}/feedback")))
        .header("X-API-Key", key)
        .json(&json!({"label": label}))
        .send()
        .await
        .unwrap();
    let (status, body) = crate::common::read(resp).await;
    assert_eq!(status, 200, "{body}");
}

async fn admin(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    app.admin(method, &format!("{RULES}{path}"), body).await
}

/// `(version, status)` of every version, newest first.
async fn statuses(app: &TestApp) -> Vec<(i64, String)> {
    let (status, list) = admin(app, Method::GET, "/versions", None).await;
    assert_eq!(status, 200, "{list}");
    list["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn versions(pairs: &[(i64, &str)]) -> Vec<(i64, String)> {
    pairs.iter().map(|(v, s)| (*v, (*s).to_owned())).collect()
}

fn one_rule(name: &str, expression: &str, weight: f64) -> Value {
    json!({"rules": [{"name": name, "expression": expression, "weight": weight}]})
}

async fn drafts_publish_and_roll_back_with_statuses(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let (status, v1) = app
        .admin(
            Method::PUT,
            RULES,
            Some(one_rule("Big", "amount > 100", 0.5)),
        )
        .await;
    assert_eq!((status, v1["version"].as_i64()), (200, Some(1)), "{v1}");

    let mut draft = one_rule("Bigger", "amount > 100", 0.8);
    draft["note"] = json!("raise the weight");
    let (status, v2) = admin(&app, Method::POST, "/versions", Some(draft)).await;
    assert_eq!(status, 201, "{v2}");
    assert_eq!(
        (&v2["version"], &v2["status"], &v2["author"], &v2["note"]),
        (
            &json!(2),
            &json!("draft"),
            &json!("operator"),
            &json!("raise the weight")
        )
    );
    assert_eq!(v2["rules"][0]["name"], "Bigger");
    assert_eq!(
        (&v2["rules_count"], &v2["published_at"]),
        (&json!(1), &Value::Null)
    );
    // A draft acts on nothing.
    let resp = score(&app, &key, "r-1", 150.0).await;
    assert_eq!(resp["result"]["rules_version"], 1);
    assert_eq!(statuses(&app).await, versions(&[(2, "draft"), (1, "live")]));
    let (status, shown) = admin(&app, Method::GET, "/versions/2", None).await;
    assert_eq!((status, &shown["rules"][0]["weight"]), (200, &json!(0.8)));

    // Published, it decides from the very next request of this process.
    let (status, published) = admin(&app, Method::POST, "/versions/2/publish", None).await;
    assert_eq!(
        (status, &published["status"]),
        (200, &json!("live")),
        "{published}"
    );
    assert!(published["published_at"].is_string());
    let resp = score(&app, &key, "r-2", 150.0).await;
    assert_eq!(resp["result"]["rules_version"], 2);
    assert_eq!(resp["result"]["risk_score"], 0.8);
    assert_eq!(
        statuses(&app).await,
        versions(&[(2, "live"), (1, "retired")])
    );
    let (_, current) = app.admin(Method::GET, RULES, None).await;
    assert_eq!(current["version"], 2);
    let (status, err) = admin(&app, Method::POST, "/versions/2/publish", None).await;
    assert_eq!(
        (status, err),
        (409, json!({"error": "Rule set version 2 is already live"}))
    );

    // Rolling back is publishing the older version.
    let (status, _) = admin(&app, Method::POST, "/versions/1/publish", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        score(&app, &key, "r-3", 150.0).await["result"]["rules_version"],
        1
    );
    assert_eq!(
        statuses(&app).await,
        versions(&[(2, "retired"), (1, "live")])
    );

    // A PUT still publishes at once; numbers are never reused.
    let (_, v3) = app
        .admin(Method::PUT, RULES, Some(one_rule("Any", "amount > 0", 0.1)))
        .await;
    assert_eq!(v3["version"], 3);
    let (_, v4) = admin(
        &app,
        Method::POST,
        "/versions",
        Some(one_rule("X", "amount > 1", 0.1)),
    )
    .await;
    assert_eq!(v4["version"], 4);
    assert_eq!(
        statuses(&app).await,
        versions(&[(4, "draft"), (3, "live"), (2, "retired"), (1, "retired")])
    );

    // Every change is in the audit log with what it did.
    let entries = app.store().audit_log("12", None, 100).await.unwrap();
    let publishes: Vec<Value> = entries
        .iter()
        .filter(|e| e.action == "rules.publish")
        .map(|e| serde_json::from_str(&e.summary).unwrap())
        .collect();
    assert_eq!(publishes.len(), 4, "{publishes:?}");
    let rollback = publishes
        .iter()
        .find(|s| s["version"] == 1 && s["previous_live"] == 2)
        .unwrap_or_else(|| panic!("no rollback entry in {publishes:?}"));
    assert_eq!(rollback["rules"], 1);
    let drafts: Vec<&str> = entries
        .iter()
        .filter(|e| e.action == "rules.draft")
        .map(|e| e.target.as_str())
        .collect();
    let mut drafts = drafts;
    drafts.sort();
    assert_eq!(drafts, ["rules/2", "rules/4"]);
    assert!(entries.iter().all(|e| e.actor == "operator"));

    // Unknown versions and subscribers, and refused bodies.
    for path in ["/versions/99", "/versions/abc", "/versions/-1"] {
        let (status, body) = admin(&app, Method::GET, path, None).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    for path in ["/versions/99/publish", "/versions/99/shadow"] {
        let (status, body) = admin(&app, Method::POST, path, None).await;
        assert_eq!(
            (status, body),
            (404, json!({"error": "Rule set version 99 not found"}))
        );
    }
    let (status, _) = app
        .admin(
            Method::GET,
            "/admin/subscribers/nobody/rules/versions",
            None,
        )
        .await;
    assert_eq!(status, 404);
    let bad = json!({"rules": [{"name": "Oops", "expression": "amount >", "weight": 0.1}]});
    let (status, err) = admin(&app, Method::POST, "/versions", Some(bad)).await;
    assert_eq!(status, 400);
    assert!(err["error"].as_str().unwrap().contains("'Oops'"), "{err}");
    let mut blank_note = one_rule("Fine", "amount > 1", 0.1);
    blank_note["note"] = json!(" ");
    let (status, err) = admin(&app, Method::POST, "/versions", Some(blank_note)).await;
    assert_eq!(
        (status, err),
        (400, json!({"error": "Invalid 'note': must not be empty"}))
    );
    assert_eq!(statuses(&app).await.len(), 4, "nothing refused was stored");
    app.stop().await;
}

async fn shadow_outcomes_are_stored_and_never_act(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    app.admin(
        Method::PUT,
        RULES,
        Some(one_rule("Big", "amount > 100", 0.1)),
    )
    .await;
    let candidate = json!({"rules": [
        {"name": "Huge", "expression": "amount > 100", "weight": 0.9, "action": "block"},
        {"name": "Tiny", "expression": "amount < 10", "weight": 0.2}
    ]});
    let (_, v2) = admin(&app, Method::POST, "/versions", Some(candidate)).await;
    assert_eq!(v2["version"], 2);
    let (status, started) = admin(&app, Method::POST, "/versions/2/shadow", None).await;
    assert_eq!(
        (status, &started["status"]),
        (200, &json!("shadow")),
        "{started}"
    );
    assert_eq!(
        statuses(&app).await,
        versions(&[(2, "shadow"), (1, "live")])
    );
    let (status, err) = admin(&app, Method::POST, "/versions/1/shadow", None).await;
    assert_eq!(status, 409);
    assert!(err["error"].as_str().unwrap().contains("is live"), "{err}");
    let (status, err) = admin(&app, Method::POST, "/versions/2/shadow", None).await;
    assert_eq!(
        (status, err),
        (
            409,
            json!({"error": "Rule set version 2 is already the shadow"})
        )
    );

    // The answer is the live version's alone.
    let resp = score(&app, &key, "s-1", 150.0).await;
    assert_eq!(resp["result"]["rules_version"], 1);
    assert_eq!(
        (&resp["result"]["action"], &resp["result"]["risk_score"]),
        (&json!("allow"), &json!(0.1))
    );
    assert!(resp.get("shadow").is_none() && resp["result"].get("shadow").is_none());
    assert!(!resp.to_string().contains("Huge"), "{resp}");
    // The decision shows what the shadow would have done.
    let id = resp["decision_id"].as_str().unwrap();
    let shown = decision(&app, &key, id).await;
    assert_eq!(shown["result"]["action"], "allow");
    assert_eq!(
        shown["shadow"],
        json!({"version": 2, "risk_score": 0.9, "risk_level": "high", "action": "block",
               "rule_hits": [{"rule": "Huge", "weight": 0.9, "action": "block"}]})
    );

    // Stopped, the shadow goes back to a draft and decisions carry none.
    let (status, stopped) = admin(&app, Method::DELETE, "/shadow", None).await;
    assert_eq!(
        (status, &stopped["status"], &stopped["version"]),
        (200, &json!("draft"), &json!(2))
    );
    let resp = score(&app, &key, "s-2", 150.0).await;
    let shown = decision(&app, &key, resp["decision_id"].as_str().unwrap()).await;
    assert_eq!(shown["shadow"], Value::Null);
    let (status, err) = admin(&app, Method::DELETE, "/shadow", None).await;
    assert_eq!(
        (status, err),
        (409, json!({"error": "No shadow rule set is running"}))
    );

    // Publishing the shadow stops the shadow; a retired version may be one.
    admin(&app, Method::POST, "/versions/2/shadow", None).await;
    let (status, _) = admin(&app, Method::POST, "/versions/2/publish", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        statuses(&app).await,
        versions(&[(2, "live"), (1, "retired")])
    );
    let resp = score(&app, &key, "s-3", 150.0).await;
    assert_eq!(
        (&resp["result"]["rules_version"], &resp["result"]["action"]),
        (&json!(2), &json!("block"))
    );
    let shown = decision(&app, &key, resp["decision_id"].as_str().unwrap()).await;
    assert_eq!(shown["shadow"], Value::Null);
    let (status, _) = admin(&app, Method::POST, "/versions/1/shadow", None).await;
    assert_eq!(status, 200);
    let resp = score(&app, &key, "s-4", 5.0).await;
    let shown = decision(&app, &key, resp["decision_id"].as_str().unwrap()).await;
    assert_eq!(
        (&shown["shadow"]["version"], &shown["shadow"]["rule_hits"]),
        (&json!(1), &json!([]))
    );
    assert_eq!(shown["result"]["rule_hits"][0]["rule"], "Tiny");
    let (_, stopped) = admin(&app, Method::DELETE, "/shadow", None).await;
    assert_eq!(stopped["status"], "retired");
    let actions: Vec<String> = app
        .store()
        .audit_log("12", None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "rules.shadow.start")
            .count(),
        3
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "rules.shadow.stop").count(),
        2
    );
    app.stop().await;
}

async fn rule_stats_count_hits_and_precision_against_labels(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    // Decided by the default pack: not the live version's.
    score(&app, &key, "t-0", 2000.0).await;
    let live = json!({"rules": [
        {"name": "Big", "expression": "amount > 100", "weight": 0.5},
        {"name": "Huge", "expression": "amount > 1000", "weight": 0.5},
        {"name": "Never", "expression": "amount < 0", "weight": 0.5}
    ]});
    let (status, _) = app.admin(Method::PUT, RULES, Some(live)).await;
    assert_eq!(status, 200);
    admin(
        &app,
        Method::POST,
        "/versions",
        Some(one_rule("Mid", "amount > 500", 0.8)),
    )
    .await;
    admin(&app, Method::POST, "/versions/2/shadow", None).await;
    let mut ids = Vec::new();
    for (i, amount) in [50.0, 200.0, 700.0, 2000.0].into_iter().enumerate() {
        let resp = score(&app, &key, &format!("t-{}", i + 1), amount).await;
        ids.push(resp["decision_id"].as_str().unwrap().to_owned());
    }
    label(&app, &key, &ids[1], "legit").await;
    label(&app, &key, &ids[2], "fraud").await;
    label(&app, &key, &ids[3], "chargeback").await;

    let (status, stats) = admin(&app, Method::GET, "/stats", None).await;
    assert_eq!(status, 200, "{stats}");
    let live = &stats["live"];
    assert_eq!(
        (
            &live["version"],
            &live["decisions"],
            &live["labelled"],
            &live["fraud"]
        ),
        (&json!(1), &json!(4), &json!(3), &json!(2))
    );
    assert_eq!(
        live["actions"],
        json!({"allow": 1, "review": 2, "block": 1})
    );
    let rule = |set: &Value, name: &str| -> Value {
        set["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule"] == name)
            .unwrap_or_else(|| panic!("no {name} in {set}"))
            .clone()
    };
    let big = rule(live, "Big");
    assert_eq!(
        (
            &big["hits"],
            &big["hit_rate"],
            &big["labelled_hits"],
            &big["fraud_hits"],
            &big["precision"]
        ),
        (
            &json!(3),
            &json!(0.75),
            &json!(3),
            &json!(2),
            &json!(0.6667)
        )
    );
    assert_eq!(
        big["by_action"]["review"],
        json!({"decisions": 2, "hits": 2, "hit_rate": 1.0, "labelled_hits": 2,
               "fraud_hits": 1, "precision": 0.5})
    );
    assert_eq!(big["by_action"]["block"]["precision"], 1.0);
    assert_eq!(
        (
            &big["by_action"]["allow"]["hits"],
            &big["by_action"]["allow"]["precision"]
        ),
        (&json!(0), &Value::Null)
    );
    let huge = rule(live, "Huge");
    assert_eq!(
        (&huge["hits"], &huge["precision"]),
        (&json!(1), &json!(1.0))
    );
    let never = rule(live, "Never");
    assert_eq!(
        (&never["hits"], &never["hit_rate"], &never["precision"]),
        (&json!(0), &json!(0.0), &Value::Null)
    );

    let shadow = &stats["shadow"];
    assert_eq!(
        (&shadow["version"], &shadow["decisions"], &shadow["fraud"]),
        (&json!(2), &json!(4), &json!(2))
    );
    assert_eq!(
        shadow["actions"],
        json!({"allow": 2, "review": 0, "block": 2})
    );
    let mid = rule(shadow, "Mid");
    assert_eq!(
        (&mid["hits"], &mid["labelled_hits"], &mid["precision"]),
        (&json!(2), &json!(2), &json!(1.0))
    );
    assert_eq!(mid["by_action"]["block"]["hits"], 2);

    // The window bounds the decisions counted.
    let (status, later) = admin(&app, Method::GET, "/stats?from=2999-01-01T00:00:00Z", None).await;
    assert_eq!(status, 400, "from after the default to: {later}");
    let (status, empty) = admin(
        &app,
        Method::GET,
        "/stats?from=2000-01-01T00:00:00Z&to=2000-02-01T00:00:00Z",
        None,
    )
    .await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(
        (&empty["live"]["decisions"], &empty["shadow"]["decisions"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(rule(&empty["live"], "Big")["hit_rate"], Value::Null);
    assert_eq!(empty["from"], "2000-01-01T00:00:00.000Z");
    let (status, wide) = admin(
        &app,
        Method::GET,
        "/stats?from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z",
        None,
    )
    .await;
    assert_eq!((status, &wide["live"]["decisions"]), (200, &json!(4)));
    for (query, field) in [
        ("from=yesterday", "from"),
        ("to=2024-13-01T00:00:00Z", "to"),
        ("from=2024-02-01T00:00:00Z&to=2024-01-01T00:00:00Z", "from"),
    ] {
        let (status, err) = admin(&app, Method::GET, &format!("/stats?{query}"), None).await;
        assert_eq!(status, 400, "{query}: {err}");
        assert!(
            err["error"]
                .as_str()
                .unwrap()
                .contains(&format!("'{field}'")),
            "{query}: {err}"
        );
    }

    // Without a shadow there are no shadow stats.
    admin(&app, Method::DELETE, "/shadow", None).await;
    let (_, stats) = admin(&app, Method::GET, "/stats", None).await;
    assert_eq!(stats["shadow"], Value::Null);
    assert_eq!(stats["live"]["decisions"], 4);
    app.stop().await;
}

/// Runs the migrations before rule-set versions had a status, then `sql`.
async fn before_versions(db: &crate::common::TestDb, sql: &[&str]) {
    use riskgate::store::DatabaseUrl;
    let dir = match &db.url {
        DatabaseUrl::Sqlite { .. } => "migrations/sqlite",
        DatabaseUrl::Postgres { .. } => "migrations/postgres",
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut migrator = sqlx::migrate::Migrator::new(path).await.unwrap();
    let older: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|m| m.version < 7)
        .cloned()
        .collect();
    migrator.migrations = older.into();
    match &db.url {
        DatabaseUrl::Sqlite { path } => {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            migrator.run(&pool).await.unwrap();
            for statement in sql {
                sqlx::query(statement).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
        DatabaseUrl::Postgres { url } => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            migrator.run(&pool).await.unwrap();
            for statement in sql {
                sqlx::query(statement).execute(&pool).await.unwrap();
            }
            pool.close().await;
        }
    }
}

async fn versions_stored_before_statuses_keep_the_highest_live(backend: Backend) {
    use riskgate::store::{Actor, NewRuleSet, RuleStatus};
    let db = crate::common::fresh_db(backend).await;
    before_versions(
        &db,
        &[
            "INSERT INTO subscribers (id, name, status, webhook_secret_sealed, created_at, \
             updated_at) VALUES ('12', 'a', 'active', 'x', 1, 1), ('13', 'b', 'active', 'x', 1, 1)",
            "INSERT INTO rule_sets (subscriber_id, version, body, created_at) VALUES \
             ('12', 1, '{\"rules\":[]}', 1000), ('12', 2, '{\"rules\":[]}', 2000), \
             ('13', 1, '{\"rules\":[]}', 3000)",
        ],
    )
    .await;
    let store = riskgate::store::connect(&db.url).await.unwrap();
    let live = store.current_rule_set("12").await.unwrap().unwrap();
    assert_eq!(
        (live.version, live.status, live.published_at),
        (2, RuleStatus::Live, Some(2000))
    );
    let old = store.rule_set_version("12", 1).await.unwrap().unwrap();
    assert_eq!(
        (old.status, old.published_at, old.author.as_str()),
        (RuleStatus::Retired, Some(1000), "operator")
    );
    assert_eq!(
        store.current_rule_set("13").await.unwrap().unwrap().version,
        1
    );
    let next = store
        .draft_rule_set(
            "12",
            NewRuleSet {
                body: "{\"rules\":[]}",
                note: None,
                rules: 0,
            },
            &Actor::Operator,
        )
        .await
        .unwrap();
    assert_eq!(next.version, 3);
    store.close().await;
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        each(Backend::ALL) => [
            drafts_publish_and_roll_back_with_statuses,
            shadow_outcomes_are_stored_and_never_act,
            rule_stats_count_hits_and_precision_against_labels,
            versions_stored_before_statuses_keep_the_highest_live,
        ],
    }
}
