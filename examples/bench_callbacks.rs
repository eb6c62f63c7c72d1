//! Callback benchmark: signed decision callbacks end to end over HTTP on
//! loopback, from `POST /risk/bin/score` with a `callback_url` to the POST
//! arriving at a receiver that checks every signature.
//!
//! ```text
//! cargo run --release --example bench_callbacks -- [sqlite|postgres] [callbacks] [concurrency]
//! ```
//! One run: start a callback receiver (axum on `127.0.0.1:0`; it records the
//! arrival of every POST, verifies its Standard Webhooks signature with the
//! subscriber's webhook secret and answers `200`), the provider simulator
//! (`slow-` request ids answered after 400 ms) and the server, in-process, with
//! private callback URLs allowed and a callback wait of 5 s; create a
//! subscriber, an API key and Fingerprint credentials pointing at the
//! simulator. Then two phases:
//!
//! * throughput: ingest `callbacks` request ids and wait until their device
//!   signals are `ready`; then `callbacks` scores with a `callback_url` at
//!   `concurrency`: score req/s, callbacks delivered per second (first score to
//!   last arrival) and each callback's latency from its score's `200` to its
//!   arrival;
//! * late signals: 200 `slow-` request ids, each ingested and scored at once
//!   (device still pending), so each callback waits for its device signals:
//!   the time from the moment the signals were fetched (`fetched_at` of
//!   `GET /fingerprint/events/{id}`) to the callback's arrival; every body
//!   must say `signals_complete: true`.
//!
//! The run fails if a signature does not verify, a callback is missing or a
//! late one is incomplete. `sqlite` uses the embedded cache; `postgres` uses
//! PostgreSQL from `RISKGATE_BENCH_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`; a schema of its own, dropped
//! afterwards) and Redis from `RISKGATE_BENCH_REDIS_URL` (default
//! `redis://127.0.0.1:6379`; the run's keys are deleted afterwards). Receiver,
//! client and server share the machine, so the figures are a floor for a
//! dedicated server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/mod.rs"]
mod common;
use common::{expect, fan_out, ms, send, BenchBackend};

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use riskgate::config::ServeConfig;
use serde_json::{json, Value};

const TOKEN: &str = "bench-admin-token-0123456789";
/// Request ids of the late-signals phase.
const LATE: usize = 200;
/// How long the simulator holds a `slow-` request id.
const SLOW_MS: u64 = 400;
/// How long a callback waits for pending device signals.
const CALLBACK_WAIT: Duration = Duration::from_secs(5);
/// How long the device cache may take to fill.
const READY_DEADLINE: Duration = Duration::from_secs(120);
const USERS: usize = 300;
/// `(bin, last4)` of a few real card ranges.
const CARDS: [(&str, &str); 4] = [
    ("411111", "1111"),
    ("424242", "4242"),
    ("555555", "4444"),
    ("378282", "0005"),
];

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let backend = args
        .first()
        .map(String::as_str)
        .unwrap_or("sqlite")
        .to_owned();
    let callbacks: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2_000);
    let concurrency: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
    assert!(
        callbacks > 0 && concurrency > 0,
        "callbacks and concurrency must be positive"
    );

    // The receiver first: its address goes into every score.
    let receiver = Arc::new(Receiver::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback_url: Arc<str> =
        format!("http://{}/callback", listener.local_addr().unwrap()).into();
    let receiver_task = {
        let app = axum::Router::new()
            .route("/callback", axum::routing::post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await })
    };

    let data = BenchBackend::open(&backend, true).await;
    let url = data.database_url.clone();
    let sim = riskgate::simulator::start(&riskgate::simulator::SimulatorConfig {
        slow_ms: SLOW_MS,
        ..Default::default()
    })
    .await
    .unwrap();
    let sim_url = url::Url::parse(&format!("http://{}", sim.addr)).unwrap();
    let mut config = ServeConfig::for_database(url);
    config.fingerprint_base_url = Some(sim_url);
    config.admin_token = Some(TOKEN.into());
    config.db.secrets_key = Some("bench-secrets-key-0123456789".into());
    config.redis_url = data.redis_url.clone();
    config.allow_private_callbacks = true;
    config.callback_wait = CALLBACK_WAIT;
    let callback_concurrency = config.callback_concurrency;
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
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let secret = created["webhook_secret"]
        .as_str()
        .expect("webhook_secret in the creation answer")
        .to_owned();
    receiver.secret.set(secret).unwrap();
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

    let ctx = Ctx {
        client,
        base,
        key,
        subscriber: subscriber.clone().into(),
        callback_url,
        concurrency,
        receiver: receiver.clone(),
    };
    let outcome = async {
        let throughput = throughput(&ctx, callbacks).await?;
        let late = late_signals(&ctx).await?;
        Ok::<_, String>((throughput, late))
    }
    .await;

    running.shutdown().await.unwrap();
    sim.shutdown().await.unwrap();
    receiver_task.abort();
    data.clean_up(&subscriber).await;
    let (throughput, late) = match outcome {
        Ok(figures) => figures,
        Err(message) => {
            eprintln!("bench_callbacks aborted: {message}");
            std::process::exit(1);
        }
    };

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let store = match backend.as_str() {
        "postgres" => "PostgreSQL + Redis",
        _ => "SQLite + embedded cache",
    };
    println!(
        "bench_callbacks on {backend} ({store}), {cores} cores, client concurrency {concurrency}, \
         callback concurrency {callback_concurrency}, callback wait {}s, slow- ids {SLOW_MS} ms \
         (receiver, client and server on the same machine)",
        CALLBACK_WAIT.as_secs()
    );
    println!(
        "device cache: {callbacks} events ingested and ready in {:.2} s",
        throughput.device_fill.as_secs_f64()
    );
    println!(
        "{:<34} {:>6} {:>10} {:>9} {:>9} {:>9}",
        "measure", "count", "per s", "p50 ms", "p99 ms", "max ms"
    );
    let row = |name: &str, rate: Option<f64>, latencies: &[Duration]| {
        let rate = rate.map_or_else(|| "-".to_owned(), |r| format!("{r:.0}"));
        println!(
            "{:<34} {:>6} {:>10} {:>9.2} {:>9.2} {:>9.2}",
            name,
            latencies.len(),
            rate,
            ms(percentile(latencies, 0.50)),
            ms(percentile(latencies, 0.99)),
            ms(percentile(latencies, 1.0)),
        );
    };
    row(
        "score (request to 200)",
        Some(callbacks as f64 / throughput.score_elapsed.as_secs_f64()),
        &throughput.score_latencies,
    );
    row(
        "callback (score 200 to arrival)",
        Some(callbacks as f64 / throughput.delivery_elapsed.as_secs_f64()),
        &throughput.callback_latencies,
    );
    row("late: score 200 to arrival", None, &late.score_to_arrival);
    row(
        "late: signals fetched to arrival",
        None,
        &late.ready_to_arrival,
    );
    println!(
        "throughput: scores took {:.2} s; first score to last callback {:.2} s; \
         {} callbacks arrived before their score's 200 was read (counted as 0 ms)",
        throughput.score_elapsed.as_secs_f64(),
        throughput.delivery_elapsed.as_secs_f64(),
        throughput.early,
    );
    println!(
        "late signals: {LATE} slow- ids, {} pending when scored; signals fetched {:.2} s \
         (median) after the score; signals_complete {}/{LATE}",
        late.pending_at_score,
        ms(percentile(&late.score_to_fetched, 0.5)) / 1000.0,
        late.complete,
    );
    let posts = receiver.posts.load(Ordering::Relaxed);
    let bad_signatures = receiver.bad_signatures.load(Ordering::Relaxed);
    let bad_bodies = receiver.bad_bodies.load(Ordering::Relaxed);
    let duplicates = receiver.duplicates.load(Ordering::Relaxed);
    println!(
        "receiver: {posts} POSTs, {} signatures verified, {bad_signatures} failed; \
         {bad_bodies} bad bodies; {duplicates} duplicates; throughput signals_complete {}/{callbacks}",
        posts - bad_signatures,
        throughput.complete,
    );
    if bad_signatures > 0 || bad_bodies > 0 || late.complete != LATE {
        eprintln!("bench_callbacks failed: a signature, a body or a late callback was wrong");
        std::process::exit(1);
    }
}

/// What every phase needs.
struct Ctx {
    client: reqwest::Client,
    base: Arc<str>,
    key: Arc<str>,
    subscriber: Arc<str>,
    callback_url: Arc<str>,
    concurrency: usize,
    receiver: Arc<Receiver>,
}

/// The callback receiver's record.
#[derive(Default)]
struct Receiver {
    /// The subscriber's webhook secret (set once it is created).
    secret: OnceLock<String>,
    /// By decision id: the first arrival.
    arrivals: Mutex<HashMap<String, Arrival>>,
    posts: AtomicUsize,
    bad_signatures: AtomicUsize,
    bad_bodies: AtomicUsize,
    duplicates: AtomicUsize,
}

#[derive(Clone, Copy)]
struct Arrival {
    at: Instant,
    wall: SystemTime,
    signals_complete: bool,
}

impl Receiver {
    fn arrival(&self, decision_id: &str) -> Option<Arrival> {
        self.arrivals.lock().unwrap().get(decision_id).copied()
    }

    /// Waits until every decision's callback has arrived.
    async fn wait_for(&self, decision_ids: &[String], deadline: Duration) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let missing = {
                let arrivals = self.arrivals.lock().unwrap();
                decision_ids
                    .iter()
                    .filter(|id| !arrivals.contains_key(*id))
                    .count()
            };
            if missing == 0 {
                return Ok(());
            }
            if started.elapsed() > deadline {
                return Err(format!(
                    "{missing} of {} callbacks missing after {deadline:?}",
                    decision_ids.len()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// `POST /callback`: record the arrival, verify the signature, answer `200`
/// (a bad one is counted, not refused, so no retry muddles the timings).
async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    let wall = SystemTime::now();
    receiver.posts.fetch_add(1, Ordering::Relaxed);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let webhook_id = header("webhook-id");
    let verified = match (
        receiver.secret.get(),
        header("webhook-timestamp").parse::<i64>(),
    ) {
        (Some(secret), Ok(timestamp)) => riskgate::callbacks::signing::verify(
            secret,
            webhook_id,
            timestamp,
            &body,
            header("webhook-signature"),
        ),
        _ => false,
    };
    if !verified {
        receiver.bad_signatures.fetch_add(1, Ordering::Relaxed);
    }
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let decision = parsed.as_ref().and_then(|v| {
        let id = v["decision_id"].as_str()?;
        let ok = v["type"] == "risk.decision" && webhook_id == format!("msg_{id}");
        ok.then(|| (id.to_owned(), v["signals_complete"] == true))
    });
    let Some((decision_id, signals_complete)) = decision else {
        receiver.bad_bodies.fetch_add(1, Ordering::Relaxed);
        return StatusCode::OK;
    };
    let mut arrivals = receiver.arrivals.lock().unwrap();
    match arrivals.entry(decision_id) {
        Entry::Vacant(slot) => {
            slot.insert(Arrival {
                at,
                wall,
                signals_complete,
            });
        }
        Entry::Occupied(_) => {
            receiver.duplicates.fetch_add(1, Ordering::Relaxed);
        }
    }
    StatusCode::OK
}

struct Throughput {
    device_fill: Duration,
    score_elapsed: Duration,
    /// First score sent to last callback arrived.
    delivery_elapsed: Duration,
    score_latencies: Vec<Duration>,
    callback_latencies: Vec<Duration>,
    /// Callbacks that arrived before the client had read their score's `200`.
    early: usize,
    complete: usize,
}

struct Late {
    pending_at_score: usize,
    score_to_fetched: Vec<Duration>,
    score_to_arrival: Vec<Duration>,
    ready_to_arrival: Vec<Duration>,
    complete: usize,
}

/// The score of one (ready) device event, with a callback.
struct Scored {
    decision_id: String,
    sent: Instant,
    answered: Instant,
    device_status: String,
}

async fn throughput(ctx: &Ctx, count: usize) -> Result<Throughput, String> {
    let run_id = riskgate::secrets::random_id(6);
    let ids: Arc<Vec<String>> = Arc::new((0..count).map(|i| format!("cb-{run_id}-{i}")).collect());

    let fill_started = Instant::now();
    {
        let (client, base, key, subscriber, ids) = (
            ctx.client.clone(),
            ctx.base.clone(),
            ctx.key.clone(),
            ctx.subscriber.clone(),
            ids.clone(),
        );
        fan_out(count, ctx.concurrency, move |i| {
            ingest(&client, &base, &key, &subscriber, &ids[i], i)
        })
        .await?;
    }
    wait_ready(ctx, &ids).await?;
    let device_fill = fill_started.elapsed();

    // Bodies are built before the clock starts.
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..count)
            .map(|i| score_body(&ctx.subscriber, &ids[i], i, &ctx.callback_url))
            .collect(),
    );
    let started = Instant::now();
    let scored = {
        let (client, base, key) = (ctx.client.clone(), ctx.base.clone(), ctx.key.clone());
        fan_out(count, ctx.concurrency, move |i| {
            score(&client, &base, &key, bodies[i].clone())
        })
        .await?
    };
    let score_elapsed = started.elapsed();
    let decision_ids: Vec<String> = scored.iter().map(|s| s.decision_id.clone()).collect();
    ctx.receiver
        .wait_for(&decision_ids, Duration::from_secs(60) + CALLBACK_WAIT)
        .await?;

    let mut last = started;
    let mut early = 0;
    let mut complete = 0;
    let mut callback_latencies = Vec::with_capacity(count);
    let mut score_latencies = Vec::with_capacity(count);
    for s in &scored {
        let arrival = ctx.receiver.arrival(&s.decision_id).unwrap();
        last = last.max(arrival.at);
        if arrival.at < s.answered {
            early += 1;
        }
        complete += usize::from(arrival.signals_complete);
        callback_latencies.push(arrival.at.saturating_duration_since(s.answered));
        score_latencies.push(s.answered - s.sent);
    }
    callback_latencies.sort_unstable();
    score_latencies.sort_unstable();
    Ok(Throughput {
        device_fill,
        score_elapsed,
        delivery_elapsed: last - started,
        score_latencies,
        callback_latencies,
        early,
        complete,
    })
}

async fn late_signals(ctx: &Ctx) -> Result<Late, String> {
    let run_id = riskgate::secrets::random_id(6);
    let ids: Arc<Vec<String>> = Arc::new((0..LATE).map(|i| format!("slow-{run_id}-{i}")).collect());
    // Each id: ingest, then score at once (the device is still being fetched).
    let scored = {
        let (client, base, key, subscriber, url, ids) = (
            ctx.client.clone(),
            ctx.base.clone(),
            ctx.key.clone(),
            ctx.subscriber.clone(),
            ctx.callback_url.clone(),
            ids.clone(),
        );
        fan_out(LATE, ctx.concurrency, move |i| {
            let (client, base, key, subscriber, url, ids) = (
                client.clone(),
                base.clone(),
                key.clone(),
                subscriber.clone(),
                url.clone(),
                ids.clone(),
            );
            async move {
                ingest(&client, &base, &key, &subscriber, &ids[i], i).await?;
                let body = score_body(&subscriber, &ids[i], i, &url);
                score(&client, &base, &key, body).await
            }
        })
        .await?
    };
    let decision_ids: Vec<String> = scored.iter().map(|s| s.decision_id.clone()).collect();
    ctx.receiver
        .wait_for(&decision_ids, Duration::from_secs(60) + CALLBACK_WAIT)
        .await?;

    // When each device event was fetched (the moment it became ready, give or
    // take the store and cache writes that follow).
    let fetched = {
        let (client, base, key, ids) = (
            ctx.client.clone(),
            ctx.base.clone(),
            ctx.key.clone(),
            ids.clone(),
        );
        fan_out(LATE, ctx.concurrency, move |i| {
            let request = client
                .get(format!("{base}/fingerprint/events/{}", ids[i]))
                .header("X-API-Key", &*key);
            async move {
                let (status, body) = send(request).await?;
                expect(status == 200, "GET /fingerprint/events", status, &body)?;
                let event: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
                if event["status"] != "ready" {
                    return Err(format!("late event not ready: {event}"));
                }
                let at = event["fetched_at"].as_str().unwrap_or_default();
                humantime::parse_rfc3339(at).map_err(|e| format!("fetched_at {at:?}: {e}"))
            }
        })
        .await?
    };

    let mut late = Late {
        pending_at_score: 0,
        score_to_fetched: Vec::with_capacity(LATE),
        score_to_arrival: Vec::with_capacity(LATE),
        ready_to_arrival: Vec::with_capacity(LATE),
        complete: 0,
    };
    for (s, fetched_at) in scored.iter().zip(fetched) {
        let arrival = ctx.receiver.arrival(&s.decision_id).unwrap();
        late.pending_at_score += usize::from(s.device_status == "pending");
        late.complete += usize::from(arrival.signals_complete);
        late.score_to_arrival
            .push(arrival.at.saturating_duration_since(s.answered));
        late.ready_to_arrival
            .push(arrival.wall.duration_since(fetched_at).unwrap_or_default());
        // The score's 200 on the wall clock, from its arrival.
        let answered_wall = arrival.wall - arrival.at.saturating_duration_since(s.answered);
        late.score_to_fetched
            .push(fetched_at.duration_since(answered_wall).unwrap_or_default());
    }
    late.score_to_fetched.sort_unstable();
    late.score_to_arrival.sort_unstable();
    late.ready_to_arrival.sort_unstable();
    Ok(late)
}

/// `POST /fingerprint/ingest` of one request id.
fn ingest(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    subscriber: &str,
    request_id: &str,
    i: usize,
) -> impl Future<Output = Result<(), String>> + Send + 'static {
    let body = json!({
        "request_id": request_id,
        "subscriber_id": subscriber,
        "provider": "fingerprint",
        "session_id": format!("s-{request_id}"),
        "user_id": format!("u-{}", i % USERS),
    })
    .to_string();
    let request = client
        .post(format!("{base}/fingerprint/ingest"))
        .header("X-API-Key", key)
        .header("Content-Type", "application/json")
        .body(body);
    async move {
        let (status, body) = send(request).await?;
        expect(status == 202, "POST /fingerprint/ingest", status, &body)
    }
}

/// `POST /risk/bin/score` of one body; the decision id and when it answered.
fn score(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    body: String,
) -> impl Future<Output = Result<Scored, String>> + Send + 'static {
    let request = client
        .post(format!("{base}/risk/bin/score"))
        .header("X-API-Key", key)
        .header("Content-Type", "application/json")
        .body(body);
    async move {
        let sent = Instant::now();
        let (status, body) = send(request).await?;
        let answered = Instant::now();
        expect(status == 200, "POST /risk/bin/score", status, &body)?;
        let decision: Value =
            serde_json::from_slice(&body).map_err(|e| format!("score answer: {e}"))?;
        let decision_id = decision["decision_id"]
            .as_str()
            .ok_or("score answer without decision_id")?
            .to_owned();
        if decision["async_job"]["will_callback"] != true {
            return Err(format!(
                "score answer without a queued callback: {decision}"
            ));
        }
        Ok(Scored {
            decision_id,
            sent,
            answered,
            device_status: decision["input"]["device_status"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        })
    }
}

/// Polls `GET /fingerprint/events/{id}` until every event is `ready`.
async fn wait_ready(ctx: &Ctx, ids: &Arc<Vec<String>>) -> Result<(), String> {
    let started = Instant::now();
    let mut pending: Vec<usize> = (0..ids.len()).collect();
    let mut failed = 0;
    while !pending.is_empty() {
        if started.elapsed() > READY_DEADLINE {
            return Err(format!(
                "{} of {} device events still pending after {READY_DEADLINE:?}",
                pending.len(),
                ids.len()
            ));
        }
        let batch = Arc::new(std::mem::take(&mut pending));
        let (client, base, key, ids, batch2) = (
            ctx.client.clone(),
            ctx.base.clone(),
            ctx.key.clone(),
            ids.clone(),
            batch.clone(),
        );
        let statuses = fan_out(batch.len(), ctx.concurrency, move |n| {
            let request = client
                .get(format!("{base}/fingerprint/events/{}", ids[batch2[n]]))
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
                _ => pending.push(batch[n]),
            }
        }
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    if failed > 0 {
        return Err(format!("{failed} device events failed to fetch"));
    }
    Ok(())
}

/// One score request body with a callback: a few hundred users, a few BINs,
/// amounts from 10 to 900 with cents.
fn score_body(subscriber: &str, request_id: &str, n: usize, callback_url: &str) -> String {
    let user = n % USERS;
    let (bin, last4) = CARDS[(n / 7) % CARDS.len()];
    let cents = 1_000 + (n * 7_919) % 89_000;
    json!({
        "request_id": request_id,
        "subscriber_id": subscriber,
        "callback_url": callback_url,
        "payload": {
            "transaction_amount": cents as f64 / 100.0,
            "currency": "USD",
            "bin": bin,
            "last4": last4,
            "user_id": format!("u-{user}"),
            "session_id": format!("s-{request_id}"),
            "external_transaction_number": format!("tx-{request_id}"),
            "ip_address": format!("203.0.113.{}", user % 250 + 1),
            "email": format!("user{user}@example.com"),
            "billing_country": "US",
        }
    })
    .to_string()
}

/// The `p` quantile of sorted latencies (`1.0`: the maximum).
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let last = sorted.len() - 1;
    sorted[((sorted.len() as f64 * p) as usize).min(last)]
}
