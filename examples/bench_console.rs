//! Console page-render benchmark: seeds 100,000 decisions of one subscriber
//! (SQLite, spread over the last 7 days, 1 in 12 sent to review, 60,000
//! customers; a rule version run as the shadow and a finished backtest of
//! it over 24 hours; a card list of 500 entries) and times each console page,
//! measured at the client over loopback: the first request (the overview is
//! then computed; later ones within 15 s reuse it), then p50/p99 of 50 more.
//!
//! ```text
//! cargo run --release --example bench_console [-- DECISIONS]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use riskgate::config::ServeConfig;
use riskgate::store::{Actor, DatabaseUrl, NewDecision};
use serde_json::json;

const RUNS: usize = 50;
const DAY: i64 = 24 * 3600 * 1000;

fn decision(i: usize, now: i64, rng: &mut rand::rngs::StdRng) -> NewDecision {
    let created_at = now - rng.gen_range(0..7 * DAY);
    let review = i % 12 == 0;
    let block = !review && i % 25 == 0;
    let (action, level, score) = if review {
        ("review", "medium", 0.45)
    } else if block {
        ("block", "high", 0.8)
    } else {
        ("allow", "low", 0.1)
    };
    let user = format!("u{}", i % 60_000);
    let input = json!({
        "subscriber_id": "bench", "request_id": format!("req-{i}"),
        "transaction_amount": 10 + i % 500, "amount": 10 + i % 500, "amount_minor": (10 + i % 500) * 100,
        "currency": "USD", "bin": format!("{}", 400_000 + i % 900), "last4": format!("{:04}", i % 10_000),
        "card_brand": "visa", "card_country": "US", "user_id": user, "session_id": format!("s{i}"),
        "email": format!("{user}@example.com"), "email_domain": format!("d{}.example", i % 300),
        "ip_address": format!("10.{}.{}.{}", i % 200, i % 250, i % 240), "ip_country": "US",
        "billing_country": "US", "shipping_country": "US", "risk_score_from_cache": 0.05,
        "device_status": "ready",
        "device": {"known": true, "provider": "fingerprint", "visitor_id": format!("v{}", i % 70_000),
                   "vpn": i % 9 == 0, "bot": "not_detected", "ip_address": "10.0.0.1", "ip_country": "US"},
        "velocity": {"user": {"count_5m": 1, "count_1h": 1, "count_24h": 2, "amount_5m": 10, "amount_1h": 10, "amount_24h": 20},
                     "card": {"count_5m": 1, "count_1h": 1, "count_24h": 1, "amount_5m": 10, "amount_1h": 10, "amount_24h": 10},
                     "cards_per_device": 1, "cards_per_user": 1, "devices_per_user": 1},
        "customer": {"known": true, "status": "normal", "decisions": 3},
    });
    let hits = if review || block {
        json!([{"rule": "VPN with a high amount", "weight": 0.25}, {"rule": "New device", "weight": 0.15}])
    } else {
        json!([])
    };
    let result = json!({"risk_score": score, "risk_level": level, "action": action, "rule_hits": hits, "rules_version": 0});
    NewDecision {
        id: format!("dec_bench{i:010}"),
        subscriber_id: "bench".into(),
        request_id: format!("req-{i}"),
        idempotency_key: None,
        request_hash: String::new(),
        input: Arc::from(input.to_string()),
        result: Arc::from(result.to_string()),
        risk_score: score,
        risk_level: level.into(),
        action: action.into(),
        rules_version: 0,
        callback_url: None,
        user_id: Some(user),
        duration_us: rng.gen_range(300..4000),
        created_at,
        customer: Some(riskgate::store::CustomerTouch {
            user_id: format!("u{}", i % 60_000),
            visitor_id: Some(format!("v{}", i % 70_000)),
            card: Some((
                format!("{}", 400_000 + i % 900),
                format!("{:04}", i % 10_000),
            )),
            amount: Some((10 + i % 500) as f64),
            action: None,
        }),
        callback: None,
        shadow: None,
        ip_address: Some(format!("10.{}.{}.{}", i % 200, i % 250, i % 240)),
        email_domain: Some(format!("d{}.example", i % 300)),
        references: Vec::new(),
    }
}

/// An operator API call: its status and JSON body.
async fn admin_json(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = http
        .request(method, format!("{base}{path}"))
        .bearer_auth("rgadm_bench_console_token_0123456789");
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    // BENCH_CONSOLE_DB keeps the seeded database (for query plans).
    let path = std::env::var("BENCH_CONSOLE_DB")
        .unwrap_or_else(|_| dir.path().join("bench.db").display().to_string());
    let url = DatabaseUrl::Sqlite { path };
    let mut config = ServeConfig::for_database(url);
    config.admin_token = Some("rgadm_bench_console_token_0123456789".into());
    let running = riskgate::app::start(&config, false).await.unwrap();
    let store = running.state.store.clone();
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let admin = |m: reqwest::Method, p: &str, body: serde_json::Value| {
        http.request(m, format!("{base}{p}"))
            .bearer_auth("rgadm_bench_console_token_0123456789")
            .json(&body)
            .send()
    };
    assert!(admin(
        reqwest::Method::POST,
        "/admin/subscribers",
        json!({"id": "bench", "name": "bench"})
    )
    .await
    .unwrap()
    .status()
    .is_success());

    let seeded = Instant::now();
    let now = riskgate::store::now_millis();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let all: Vec<NewDecision> = (0..n).map(|i| decision(i, now, &mut rng)).collect();
    for chunk in all.chunks(256) {
        let mut tasks = tokio::task::JoinSet::new();
        for d in chunk {
            let (store, d) = (store.clone(), d.clone());
            tasks.spawn(async move { store.record_decision(&d, 0).await.map(|_| ()) });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap().unwrap();
        }
    }
    for i in 0..200 {
        store
            .set_customer_status(
                "bench",
                &format!("u{i}"),
                riskgate::store::CustomerStatus::Trusted,
                now,
                &Actor::Operator,
            )
            .await
            .unwrap();
    }
    println!(
        "seeded {n} decisions in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );

    // A card list of 500 entries (a page shows 100), one expired.
    let put = admin(
        reqwest::Method::PUT,
        "/admin/subscribers/bench/lists/blocked_cards",
        json!({"kind": "card", "description": "bench"}),
    )
    .await
    .unwrap();
    assert!(put.status().is_success());
    for i in 0..500 {
        let mut entry = json!({"value": format!("{}:{:04}", 400_000 + i, i), "reason": "bench"});
        if i == 3 {
            entry["expires_at"] = json!("2020-01-01T00:00:00Z");
        }
        let added = admin(
            reqwest::Method::POST,
            "/admin/subscribers/bench/lists/blocked_cards/entries",
            entry,
        )
        .await
        .unwrap();
        assert_eq!(added.status(), 201);
    }
    let created = admin(
        reqwest::Method::POST,
        "/admin/subscribers/bench/users",
        json!({"email": "bench@example.com", "role": "admin", "password": "bench-password-1"}),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201);
    let login = http
        .post(format!("{base}/console/login"))
        .form(&[
            ("email", "bench@example.com"),
            ("password", "bench-password-1"),
        ])
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let review = all.iter().find(|d| d.action == "review").unwrap();
    let bin = review
        .input
        .split("\"bin\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    // Rules: a draft of the default pack plus one rule, run as the shadow
    // (the decisions stay decided by the pack, v0, so the statistics read
    // every decision of their window), and a backtest of it over 24 hours.
    let (_, pack) = admin_json(
        &http,
        &base,
        reqwest::Method::GET,
        "/admin/subscribers/bench/rules",
        None,
    )
    .await;
    let mut draft = json!({"rules": pack["rules"].clone(), "note": "bench"});
    draft["rules"].as_array_mut().unwrap().push(
        json!({"name": "Big basket", "expression": "amount > 400", "weight": 0.5, "action": "block"}),
    );
    let (status, _) = admin_json(
        &http,
        &base,
        reqwest::Method::POST,
        "/admin/subscribers/bench/rules/versions",
        Some(draft),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = admin_json(
        &http,
        &base,
        reqwest::Method::POST,
        "/admin/subscribers/bench/rules/versions/1/shadow",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let window = json!({"version": 1, "from": riskgate::clock::rfc3339(now - DAY), "to": riskgate::clock::rfc3339(now + 1)});
    let (status, queued) = admin_json(
        &http,
        &base,
        reqwest::Method::POST,
        "/admin/subscribers/bench/backtests",
        Some(window),
    )
    .await;
    assert_eq!(status, 202, "{queued}");
    let backtest = queued["backtest_id"].as_str().unwrap().to_owned();
    let replayed = Instant::now();
    loop {
        let (_, b) = admin_json(
            &http,
            &base,
            reqwest::Method::GET,
            &format!("/admin/subscribers/bench/backtests/{backtest}"),
            None,
        )
        .await;
        match b["status"].as_str().unwrap() {
            "done" => break,
            "failed" => panic!("backtest failed: {b}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    println!(
        "backtest of 24 h in {:.1} s",
        replayed.elapsed().as_secs_f64()
    );

    let pages = [
        ("overview 24h", "/console/overview".to_owned()),
        ("overview 7d", "/console/overview?range=7d".to_owned()),
        ("review queue", "/console/review".to_owned()),
        ("decisions", "/console/decisions".to_owned()),
        (
            "decisions action=review",
            "/console/decisions?action=review".to_owned(),
        ),
        (
            "decisions by card",
            format!("/console/decisions?card={bin}"),
        ),
        (
            "decisions by device",
            "/console/decisions?device=v123".to_owned(),
        ),
        (
            "decisions by rule",
            "/console/decisions?rule=New+device".to_owned(),
        ),
        (
            "decisions by IP",
            "/console/decisions?ip=10.0.0.0".to_owned(),
        ),
        (
            "decisions by email domain",
            "/console/decisions?email_domain=d7.example".to_owned(),
        ),
        ("decision", format!("/console/decisions/{}", review.id)),
        ("customer", "/console/customers/u42".to_owned()),
        ("audit log", "/console/audit".to_owned()),
        ("rules", "/console/rules".to_owned()),
        (
            "rules version (diff)",
            "/console/rules/versions/1".to_owned(),
        ),
        ("rules draft editor", "/console/rules/draft".to_owned()),
        (
            "rules publish confirm",
            "/console/rules/versions/1/publish".to_owned(),
        ),
        ("rule stats 1h", "/console/rules/stats".to_owned()),
        ("rule stats 3h", "/console/rules/stats?range=3h".to_owned()),
        (
            "backtest (done)",
            format!("/console/rules/backtests/{backtest}"),
        ),
        ("lists", "/console/lists".to_owned()),
        (
            "list entries (100)",
            "/console/lists/blocked_cards".to_owned(),
        ),
        ("account", "/console/account".to_owned()),
    ];
    println!(
        "{:<26} {:>9} {:>9} {:>9} {:>9}",
        "page", "first ms", "p50 ms", "p99 ms", "bytes"
    );
    for (name, path) in pages {
        let mut times = Vec::with_capacity(RUNS);
        let mut bytes = 0;
        let mut first = Duration::ZERO;
        for run in 0..=RUNS {
            let started = Instant::now();
            let resp = http
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{path}");
            bytes = resp.bytes().await.unwrap().len();
            if run > 0 {
                times.push(started.elapsed());
            } else {
                first = started.elapsed();
            }
        }
        times.sort();
        let at =
            |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{name:<26} {:>9.2} {:>9.2} {:>9.2} {bytes:>9}",
            ms(first),
            ms(at(0.5)),
            ms(at(0.99))
        );
    }
    running.shutdown().await.unwrap();
}
