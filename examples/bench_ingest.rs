//! Ingest throughput benchmark: `POST /fingerprint/ingest` end to end over HTTP
//! on loopback, each `202` backed by a committed job row, with the prefetch
//! worker fetching every event from the in-process provider simulator at the
//! same time; then the queue drain rate (all jobs fetched and stored).
//!
//! ```text
//! cargo run --release --example bench_ingest -- [sqlite|postgres] [requests] [concurrency]
//! ```
//! PostgreSQL is taken from `RISKGATE_BENCH_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); the run uses a schema of its own
//! and drops it afterwards. Client and server share the machine, so the figures
//! are a floor for a dedicated server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;
use common::BenchBackend;

use std::sync::Arc;
use std::time::{Duration, Instant};

use riskgate::config::ServeConfig;
use serde_json::{json, Value};
use tokio::sync::Mutex;

const TOKEN: &str = "bench-admin-token-0123456789";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let backend = args
        .first()
        .map(String::as_str)
        .unwrap_or("sqlite")
        .to_owned();
    let requests: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let concurrency: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);

    let data = BenchBackend::open(&backend, false).await;
    let url = data.database_url.clone();
    let sim = riskgate::simulator::start(&riskgate::simulator::SimulatorConfig::default())
        .await
        .unwrap();
    let sim_url = url::Url::parse(&format!("http://{}", sim.addr)).unwrap();
    let mut config = ServeConfig::for_database(url);
    config.fingerprint_base_url = Some(sim_url);
    config.admin_token = Some(TOKEN.into());
    config.db.secrets_key = Some("bench-secrets-key-0123456789".into());
    let running = riskgate::app::start(&config, false).await.unwrap();
    let base = format!("http://{}", running.addr);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();

    let admin = |path: &str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    admin("/admin/subscribers", json!({"id": 12, "name": "bench"}))
        .await
        .unwrap();
    client
        .put(format!("{base}/admin/subscribers/12/providers/fingerprint"))
        .bearer_auth(TOKEN)
        .json(&json!({"secret_key": "k"}))
        .send()
        .await
        .unwrap();
    let key: Value = admin("/admin/subscribers/12/keys", json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = key["api_key"].as_str().unwrap().to_owned();

    let latencies = Arc::new(Mutex::new(Vec::with_capacity(requests)));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, base, key, latencies, next) =
                (client.clone(), base.clone(), key.clone(), latencies.clone(), next.clone());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= requests {
                        break;
                    }
                    let body = format!(
                        r#"{{"request_id":"bench-{n}","subscriber_id":12,"session_id":"s-{n}","user_id":"u-{}"}}"#,
                        n % 1000
                    );
                    let t = Instant::now();
                    let resp = client
                        .post(format!("{base}/fingerprint/ingest"))
                        .header("X-API-Key", &key)
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 202);
                    resp.bytes().await.unwrap();
                    mine.push(t.elapsed());
                }
                latencies.lock().await.extend(mine);
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let elapsed = started.elapsed();
    let mut latencies = latencies.lock().await.clone();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "ingest on {backend}: {requests} requests, concurrency {concurrency}: {:.0} req/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        requests as f64 / elapsed.as_secs_f64(),
        ms(pct(0.50)),
        ms(pct(0.99)),
        ms(*latencies.last().unwrap()),
    );
    // Drain: until every job has been fetched and its result stored.
    let store = running.state.store.clone();
    loop {
        let counts = store.job_counts().await.unwrap();
        let live: i64 = counts
            .iter()
            .filter(|(_, state, _)| {
                matches!(
                    state,
                    riskgate::store::JobState::Pending | riskgate::store::JobState::Running
                )
            })
            .map(|(_, _, n)| n)
            .sum();
        if live == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drained = started.elapsed();
    let counts = store.job_counts().await.unwrap();
    println!(
        "drain on {backend}: {requests} jobs fetched and stored {:.2} s after the first ingest: {:.0} jobs/s end to end ({counts:?})",
        drained.as_secs_f64(),
        requests as f64 / drained.as_secs_f64(),
    );
    running.shutdown().await.unwrap();
    sim.shutdown().await.unwrap();
    data.clean_up("").await;
}
