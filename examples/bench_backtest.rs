//! Backtest benchmark, end to end: a backtest of `decisions` stored decisions
//! queued over HTTP and followed to `done`, the reading from the store, the
//! replay, the progress writes and the result included.
//!
//! ```text
//! cargo run --release --example bench_backtest -- [sqlite|postgres] [decisions]
//! ```
//! One run: start the server in-process; create a subscriber; write
//! `decisions` (default 100,000) decisions straight into its database, spread
//! over the last 23 hours, as scoring stores them (the input of varied
//! amounts, cards, velocity counters, customers and devices, decided by the
//! default pack; one in twenty labelled fraud, one in five legit); then queue
//! a backtest of the default pack plus one stricter rule over the last day
//! and read it every 50 ms until it is done. The figure is the time from the
//! `202` to `done`, and the decisions per minute it makes.
//!
//! `postgres` uses PostgreSQL from `RISKGATE_BENCH_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`; a schema of its own, dropped
//! afterwards). The per-decision cost of the replay alone is
//! `cargo bench --bench replay`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;
use common::BenchBackend;

use std::time::{Duration, Instant};

use riskgate::config::ServeConfig;
use riskgate::decision::rules::{compile, default_rule_set};
use riskgate::decision::{self, Input};
use riskgate::store::{now_millis, DatabaseUrl};
use rust_decimal::Decimal;
use serde_json::{json, Value};

const TOKEN: &str = "bench-admin-token-0123456789";
const SUBSCRIBER: &str = "bench";
/// Rows per insert statement while seeding.
const ROWS: usize = 500;

/// One stored decision's columns.
struct Row {
    id: String,
    request_id: String,
    input: String,
    result: String,
    risk_score: f64,
    risk_level: String,
    action: String,
    user_id: String,
    created_at: i64,
    label: Option<&'static str>,
}

fn rows(n: usize, now: i64) -> Vec<Row> {
    let live = compile(default_rule_set().unwrap(), 0).unwrap();
    let span = 23 * 3_600_000_i64;
    (0..n)
        .map(|i| {
            let k = i as i64;
            let mut input: Input = decision::sample_input();
            input.subscriber_id = json!(SUBSCRIBER);
            input.request_id = format!("req-{i}");
            input.amount = Decimal::new(1_000 + (k * 7_919) % 400_000, 2);
            input.transaction_amount = input.amount;
            input.amount_minor = 1_000 + (k * 7_919) % 400_000;
            let user = format!("user-{}", i % 5_000);
            input.user_id = Some(user.clone());
            input.last4 = Some(format!("{:04}", i % 10_000));
            input.velocity.card.count_1h = (i % 7) as u64;
            input.velocity.card.count_24h = (i % 13) as u64;
            input.velocity.user.count_24h = (i % 17) as u64;
            input.customer.age_days = (i % 90) as f64;
            input.customer.decisions = (i % 40) as i64;
            input.device.vpn = i % 11 == 0;
            input.device.visitor_id = Some(format!("visitor-{}", i % 8_000));
            input.risk_score_from_cache = (i % 10) as f64 / 20.0;
            let outcome = decision::decide(&live, &input);
            let label = match i % 20 {
                0 => Some("fraud"),
                1 => Some("chargeback"),
                2..=5 => Some("legit"),
                _ => None,
            };
            Row {
                id: format!("dec_{i:024}"),
                request_id: input.request_id.clone(),
                input: serde_json::to_string(&input).unwrap(),
                result: serde_json::to_string(&outcome).unwrap(),
                risk_score: outcome.risk_score,
                risk_level: outcome.risk_level.clone(),
                action: outcome.action.as_str().to_owned(),
                user_id: user,
                created_at: now - span + (span * k) / n.max(1) as i64,
                label,
            }
        })
        .collect()
}

/// Inserts the rows in one transaction, `ROWS` to a statement.
macro_rules! seed {
    ($pool:expr, $rows:expr) => {{
        let mut tx = $pool.begin().await.unwrap();
        for chunk in $rows.chunks(ROWS) {
            let tuples: Vec<String> = (0..chunk.len())
                .map(|r| {
                    let p: Vec<String> = (1..=12).map(|c| format!("${}", r * 12 + c)).collect();
                    format!("({})", p.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO decisions (id, subscriber_id, request_id, request_hash, input, \
                 result, risk_score, risk_level, action, rules_version, user_id, created_at) \
                 VALUES {}",
                tuples.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for row in chunk {
                query = query
                    .bind(&row.id)
                    .bind(SUBSCRIBER)
                    .bind(&row.request_id)
                    .bind("")
                    .bind(&row.input)
                    .bind(&row.result)
                    .bind(row.risk_score)
                    .bind(&row.risk_level)
                    .bind(&row.action)
                    .bind(0_i64)
                    .bind(&row.user_id)
                    .bind(row.created_at);
            }
            query.execute(&mut *tx).await.unwrap();
        }
        for chunk in $rows.chunks(ROWS) {
            for label in ["fraud", "chargeback", "legit"] {
                let ids: Vec<&str> = chunk
                    .iter()
                    .filter(|r| r.label == Some(label))
                    .map(|r| r.id.as_str())
                    .collect();
                if ids.is_empty() {
                    continue;
                }
                let params: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 3)).collect();
                let sql = format!(
                    "UPDATE decisions SET label = $1, labeled_at = $2 WHERE id IN ({})",
                    params.join(", ")
                );
                let mut query = sqlx::query(&sql).bind(label).bind(now_millis());
                for id in ids {
                    query = query.bind(id);
                }
                query.execute(&mut *tx).await.unwrap();
            }
        }
        tx.commit().await.unwrap();
    }};
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let backend = args
        .first()
        .map(String::as_str)
        .unwrap_or("sqlite")
        .to_owned();
    let decisions: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    riskgate::decision::reference::init().unwrap();

    let data = BenchBackend::open(&backend, false).await;
    let url = data.database_url.clone();
    let mut config = ServeConfig::for_database(url.clone());
    config.admin_token = Some(TOKEN.into());
    config.db.secrets_key = Some("bench-secrets-key-0123456789".into());
    let running = riskgate::app::start(&config, false).await.unwrap();
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{base}/admin/subscribers"))
        .bearer_auth(TOKEN)
        .json(&json!({"id": SUBSCRIBER, "name": "bench"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());

    let now = now_millis();
    let started = Instant::now();
    let rows = rows(decisions, now);
    let generated = started.elapsed();
    match &url {
        DatabaseUrl::Sqlite { path } => {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{path}"))
                .await
                .unwrap();
            seed!(pool, rows);
            pool.close().await;
        }
        DatabaseUrl::Postgres { url } => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            seed!(pool, rows);
            sqlx::query("ANALYZE decisions")
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
    let seeded = started.elapsed() - generated;
    drop(rows);
    eprintln!(
        "seeded {decisions} decisions (generated in {:.1} s, written in {:.1} s)",
        generated.as_secs_f64(),
        seeded.as_secs_f64()
    );

    let mut candidate = serde_json::to_value(default_rule_set().unwrap()).unwrap();
    candidate["rules"].as_array_mut().unwrap().push(json!({
        "name": "Card velocity", "expression": "velocity.card.count_1h >= 3 and amount > 500",
        "weight": 0.4, "action": "review"
    }));
    let body = json!({
        "rules": candidate,
        "from": riskgate::clock::rfc3339(now - 24 * 3_600_000),
        "to": riskgate::clock::rfc3339(now + 60_000),
    });
    let queued_at = Instant::now();
    let queued: Value = client
        .post(format!("{base}/admin/subscribers/{SUBSCRIBER}/backtests"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = queued["backtest_id"].as_str().expect("queued").to_owned();
    let done = loop {
        let view: Value = client
            .get(format!(
                "{base}/admin/subscribers/{SUBSCRIBER}/backtests/{id}"
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        match view["status"].as_str() {
            Some("done") => break view,
            Some("failed") => panic!("backtest failed: {view}"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let elapsed = queued_at.elapsed();
    running.shutdown().await.unwrap();
    data.clean_up(SUBSCRIBER).await;

    let replayed = done["result"]["decisions"].as_u64().unwrap();
    assert_eq!(replayed as usize, decisions, "{done}");
    let per_minute = replayed as f64 / elapsed.as_secs_f64() * 60.0;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "bench_backtest on {backend}, {cores} cores: {replayed} decisions replayed in {:.2} s \
         (202 to done), {:.0} decisions/min, {:.1} µs/decision; changed {}, candidate {}",
        elapsed.as_secs_f64(),
        per_minute,
        elapsed.as_secs_f64() * 1e6 / replayed.max(1) as f64,
        done["result"]["changed"]["count"],
        done["result"]["candidate"]["actions"],
    );
}
