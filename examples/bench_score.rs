//! Scoring benchmark: `POST /risk/bin/score` end to end over HTTP on loopback,
//! each `200` backed by a committed decision, with a warm device cache,
//! compared with `GET /healthz` on the same server, client and concurrency
//! (the floor of what the HTTP stack costs).
//!
//! ```text
//! cargo run --release --example bench_score -- [sqlite|postgres] [requests] [concurrency]
//! ```
//! One run: start the server and the provider simulator in-process; create a
//! subscriber, an API key and Fingerprint credentials pointing at the
//! simulator; ingest 1,000 request ids and wait until their device signals are
//! `ready`; then, each after a warm-up of a few hundred requests, `requests`
//! health checks and `requests` scores (request ids of the warmed events round
//! robin, a few hundred users with a card each, varied amounts), every answer
//! checked.
//!
//! The simulator answers every request id with its fixture's visitor id (one
//! for the clean variant, one for the risky), so nearly all scores share one
//! device: a hot key for the per-device velocity counters, with about
//! `requests` events in its 24 h window by the end. That is the worst case
//! (one device or IP hammering a merchant), not the typical one.
//!
//! `sqlite` uses the embedded cache; `postgres` uses PostgreSQL from
//! `RISKGATE_BENCH_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`;
//! a schema of its own, dropped afterwards) and Redis from
//! `RISKGATE_BENCH_REDIS_URL` (default `redis://127.0.0.1:6379`; the run's keys
//! are deleted afterwards). Client and server share the machine, so the
//! figures are a floor for a dedicated server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;
use common::{expect, fan_out, ms, send, BenchBackend};

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use riskgate::config::ServeConfig;
use serde_json::{json, Value};

const TOKEN: &str = "bench-admin-token-0123456789";
/// Device events ingested and awaited before scoring.
const WARM_EVENTS: usize = 1_000;
/// How long the device cache may take to fill.
const WARM_DEADLINE: Duration = Duration::from_secs(120);
/// Unmeasured requests before each measured phase.
const WARM_UP: usize = 300;
const USERS: usize = 300;
/// BINs of a few real card ranges (Visa, Mastercard, Amex, Discover, JCB).
const CARDS: [&str; 6] = ["411111", "424242", "555555", "378282", "601100", "356611"];

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
    assert!(
        requests > 0 && concurrency > 0,
        "requests and concurrency must be positive"
    );

    let data = BenchBackend::open(&backend, true).await;
    let url = data.database_url.clone();
    let sim = riskgate::simulator::start(&riskgate::simulator::SimulatorConfig::default())
        .await
        .unwrap();
    let sim_url = url::Url::parse(&format!("http://{}", sim.addr)).unwrap();
    let mut config = ServeConfig::for_database(url);
    config.fingerprint_base_url = Some(sim_url);
    config.admin_token = Some(TOKEN.into());
    config.db.secrets_key = Some("bench-secrets-key-0123456789".into());
    config.redis_url = data.redis_url.clone();
    let running = riskgate::app::start(&config, false).await.unwrap();
    let base: Arc<str> = format!("http://{}", running.addr).into();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();

    // A subscriber of its own per run: a shared Redis keeps no state across runs.
    let subscriber = format!("bench-{}", riskgate::secrets::random_id(8));
    let created = client
        .post(format!("{base}/admin/subscribers"))
        .bearer_auth(TOKEN)
        .json(&json!({"id": subscriber, "name": "bench"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    let put = client
        .put(format!(
            "{base}/admin/subscribers/{subscriber}/providers/fingerprint"
        ))
        .bearer_auth(TOKEN)
        .json(&json!({"secret_key": "bench-fingerprint-secret"}))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());
    let key: Value = client
        .post(format!("{base}/admin/subscribers/{subscriber}/keys"))
        .bearer_auth(TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key: Arc<str> = key["api_key"].as_str().unwrap().into();

    let outcome = run(&client, &base, &key, &subscriber, requests, concurrency).await;

    running.shutdown().await.unwrap();
    sim.shutdown().await.unwrap();
    data.clean_up(&subscriber).await;
    let (device_fill, healthz, score, actions) = match outcome {
        Ok(figures) => figures,
        Err(message) => {
            eprintln!("bench_score aborted: {message}");
            std::process::exit(1);
        }
    };

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let store = match backend.as_str() {
        "postgres" => "PostgreSQL + Redis",
        _ => "SQLite + embedded cache",
    };
    println!(
        "bench_score on {backend} ({store}), {cores} cores, concurrency {concurrency} (client and server on the same machine)"
    );
    println!(
        "device cache: {WARM_EVENTS} events ingested and ready in {:.2} s",
        device_fill.as_secs_f64()
    );
    println!(
        "{:<8} {:>9} {:>10} {:>9} {:>9} {:>9}",
        "phase", "requests", "req/s", "p50 ms", "p99 ms", "max ms"
    );
    for phase in [&healthz, &score] {
        println!(
            "{:<8} {:>9} {:>10.0} {:>9.2} {:>9.2} {:>9.2}",
            phase.name,
            phase.latencies.len(),
            phase.throughput(),
            ms(phase.percentile(0.50)),
            ms(phase.percentile(0.99)),
            ms(phase.percentile(1.0)),
        );
    }
    println!(
        "score/healthz: throughput {:.3}, p99 {:.2}",
        score.throughput() / healthz.throughput(),
        ms(score.percentile(0.99)) / ms(healthz.percentile(0.99)),
    );
    println!(
        "score actions (warm-up included): allow {}, review {}, block {}",
        actions[0].load(Ordering::Relaxed),
        actions[1].load(Ordering::Relaxed),
        actions[2].load(Ordering::Relaxed),
    );
}

type Figures = (Duration, Phase, Phase, Arc<[AtomicUsize; 3]>);

/// Everything that talks to the server; an `Err` is the reason to abort.
async fn run(
    client: &reqwest::Client,
    base: &Arc<str>,
    key: &Arc<str>,
    subscriber: &str,
    requests: usize,
    concurrency: usize,
) -> Result<Figures, String> {
    let run_id = riskgate::secrets::random_id(6);
    let request_id: Arc<dyn Fn(usize) -> String + Send + Sync> =
        Arc::new(move |i| format!("bench-{run_id}-{i}"));

    // 1. Warm the device cache.
    let fill_started = Instant::now();
    let ingest_bodies: Arc<Vec<String>> = Arc::new(
        (0..WARM_EVENTS)
            .map(|i| {
                json!({
                    "request_id": request_id(i),
                    "subscriber_id": subscriber,
                    "provider": "fingerprint",
                    "session_id": format!("s-{i}"),
                    "user_id": format!("u-{}", i % USERS),
                })
                .to_string()
            })
            .collect(),
    );
    {
        let (client, base, key, bodies) = (
            client.clone(),
            base.clone(),
            key.clone(),
            ingest_bodies.clone(),
        );
        fan_out(WARM_EVENTS, concurrency, move |i| {
            let request = client
                .post(format!("{base}/fingerprint/ingest"))
                .header("X-API-Key", &*key)
                .header("Content-Type", "application/json")
                .body(bodies[i].clone());
            async move {
                let (status, body) = send(request).await?;
                expect(status == 202, "POST /fingerprint/ingest", status, &body)
            }
        })
        .await?;
    }
    let mut pending: Vec<usize> = (0..WARM_EVENTS).collect();
    let mut failed = 0;
    while !pending.is_empty() {
        if fill_started.elapsed() > WARM_DEADLINE {
            return Err(format!(
                "{} of {WARM_EVENTS} device events still pending after {WARM_DEADLINE:?}",
                pending.len()
            ));
        }
        let ids = Arc::new(std::mem::take(&mut pending));
        let (client, base, key, request_id, ids2) = (
            client.clone(),
            base.clone(),
            key.clone(),
            request_id.clone(),
            ids.clone(),
        );
        let statuses = fan_out(ids.len(), concurrency, move |n| {
            let request = client
                .get(format!("{base}/fingerprint/events/{}", request_id(ids2[n])))
                .header("X-API-Key", &*key);
            async move {
                let (status, body) = send(request).await?;
                expect(status == 200, "GET /fingerprint/events", status, &body)?;
                let event: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
                Ok(event["status"].as_str().unwrap_or_default().to_owned())
            }
        })
        .await?;
        for (n, status) in statuses.into_iter().enumerate() {
            match status.as_str() {
                "ready" => {}
                "failed" => failed += 1,
                _ => pending.push(ids[n]),
            }
        }
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    if failed > 0 {
        return Err(format!(
            "{failed} of {WARM_EVENTS} device events failed to fetch"
        ));
    }
    let device_fill = fill_started.elapsed();

    // 2. Health checks.
    let healthz = {
        let (client, base) = (client.clone(), base.clone());
        measure("healthz", requests, concurrency, move |_| {
            let request = client.get(format!("{base}/healthz"));
            async move {
                let (status, body) = send(request).await?;
                expect(status == 200, "GET /healthz", status, &body)
            }
        })
        .await?
    };

    // 3. Scores. Bodies are built before the clock starts.
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..requests + WARM_UP)
            .map(|n| score_body(subscriber, &*request_id, n))
            .collect(),
    );
    let actions: Arc<[AtomicUsize; 3]> = Arc::new(Default::default());
    let score = {
        let (client, base, key, bodies, actions) = (
            client.clone(),
            base.clone(),
            key.clone(),
            bodies.clone(),
            actions.clone(),
        );
        let next_body = Arc::new(AtomicUsize::new(0));
        measure("score", requests, concurrency, move |_| {
            let n = next_body.fetch_add(1, Ordering::Relaxed);
            let request = client
                .post(format!("{base}/risk/bin/score"))
                .header("X-API-Key", &*key)
                .header("Content-Type", "application/json")
                .body(bodies[n % bodies.len()].clone());
            let actions = actions.clone();
            async move {
                let (status, body) = send(request).await?;
                expect(status == 200, "POST /risk/bin/score", status, &body)?;
                let decision: Value =
                    serde_json::from_slice(&body).map_err(|e| format!("score answer: {e}"))?;
                let result = &decision["result"];
                if !result["risk_score"].is_number() {
                    return Err(format!(
                        "POST /risk/bin/score answered 200 without result.risk_score: {}",
                        String::from_utf8_lossy(&body)
                    ));
                }
                let slot = match result["action"].as_str() {
                    Some("allow") => 0,
                    Some("review") => 1,
                    _ => 2,
                };
                actions[slot].fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        })
        .await?
    };
    Ok((device_fill, healthz, score, actions))
}

/// One score request body: the `n`th warmed request id (round robin), a few
/// hundred users with a card each, amounts from 10 to 900 with cents.
fn score_body(subscriber: &str, request_id: &dyn Fn(usize) -> String, n: usize) -> String {
    let event = n % WARM_EVENTS;
    let user = event % USERS;
    // One card per user: a real BIN and a last4 of its own.
    let bin = CARDS[user % CARDS.len()];
    let last4 = format!("{:04}", (user * 7_919) % 10_000);
    let cents = 1_000 + (n * 7_919) % 89_000;
    json!({
        "request_id": request_id(event),
        "subscriber_id": subscriber,
        "payload": {
            "transaction_amount": cents as f64 / 100.0,
            "currency": "USD",
            "bin": bin,
            "last4": last4,
            "user_id": format!("u-{user}"),
            "session_id": format!("s-{event}"),
            "external_transaction_number": format!("tx-{n}"),
            "ip_address": format!("203.0.113.{}", user % 250 + 1),
            "email": format!("user{user}@example.com"),
            "billing_country": "US",
        }
    })
    .to_string()
}

/// A measured phase: wall time and every request's latency, sorted.
struct Phase {
    name: &'static str,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Phase {
    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let last = self.latencies.len() - 1;
        self.latencies[((self.latencies.len() as f64 * p) as usize).min(last)]
    }
}

/// `WARM_UP` unmeasured calls of `call`, then `requests` timed ones.
async fn measure<F, Fut>(
    name: &'static str,
    requests: usize,
    concurrency: usize,
    call: F,
) -> Result<Phase, String>
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    fan_out(WARM_UP, concurrency, call.clone()).await?;
    let started = Instant::now();
    let mut latencies = fan_out(requests, concurrency, move |n| {
        let call = call(n);
        async move {
            let t = Instant::now();
            call.await?;
            Ok(t.elapsed())
        }
    })
    .await?;
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(Phase {
        name,
        elapsed,
        latencies,
    })
}
