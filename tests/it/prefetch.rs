#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Device intelligence end to end: ingest, the prefetch worker calling the
//! provider simulator (a real HTTP server answering with the providers'
//! fixtures), and `GET /fingerprint/events/{id}`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::common::trials::Server;
use crate::common::{read, redis_url, Backend, TestApp};
use riskgate::simulator::{self, SimRunning, SimulatorConfig};
use serde_json::{json, Value};

struct Setup {
    app: TestApp,
    sim: SimRunning,
    key: String,
}

async fn setup(backend: Backend, sim: SimulatorConfig, redis: bool) -> Setup {
    let sim = simulator::start(&sim).await.unwrap();
    let base = url::Url::parse(&format!("http://{}", sim.addr)).unwrap();
    let app = TestApp::start_with(backend, |config| {
        config.fingerprint_base_url = Some(base.clone());
        config.stytch_base_url = Some(base.clone());
        config.fingerprintiq_base_url = Some(base.clone());
        config.fetch_timeout = Duration::from_millis(800);
        config.fetch_connect_timeout = Duration::from_millis(500);
        if redis {
            config.redis_url = Some(redis_url());
        }
    })
    .await;
    let id = format!("s{}", riskgate::secrets::random_id(10));
    let key = app.subscriber_with_key(&id).await;
    Setup {
        app,
        sim,
        key: format!("{id} {key}"),
    }
}

impl Setup {
    fn subscriber(&self) -> &str {
        self.key.split(' ').next().unwrap()
    }

    fn api_key(&self) -> &str {
        self.key.split(' ').nth(1).unwrap()
    }

    async fn ingest(&self, request_id: &str) -> Value {
        let body = json!({"request_id": request_id, "subscriber_id": self.subscriber(), "session_id": "sess", "user_id": "user"});
        let (status, body) = self
            .app
            .ingest(Some(self.api_key()), body.to_string())
            .await;
        assert_eq!(status, 202, "{body}");
        body
    }

    async fn event(&self, request_id: &str) -> (u16, Value) {
        let path = format!("/fingerprint/events/{}", urlencode(request_id));
        let req = self
            .app
            .client
            .get(self.app.url(&path))
            .header("X-API-Key", self.api_key());
        read(req.send().await.unwrap()).await
    }

    /// Polls until the event is no longer pending (or `limit` passes).
    async fn settled(&self, request_id: &str, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            let (status, event) = self.event(request_id).await;
            assert_eq!(status, 200, "{event}");
            if event["status"] != "pending" || started.elapsed() > limit {
                return event;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn sim_calls(&self, event_key: &str) -> Value {
        let stats: Value = reqwest::get(format!("http://{}/_sim/stats", self.sim.addr))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stats["events"].get(event_key).cloned().unwrap_or(json!({}))
    }

    async fn stop(self) {
        self.app.stop().await;
        self.sim.shutdown().await.unwrap();
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn quiet_sim() -> SimulatorConfig {
    SimulatorConfig {
        risky_share: 0.0,
        ..SimulatorConfig::default()
    }
}

async fn ingested_events_become_ready_and_repeat_ingests_are_cached(backend: Backend) {
    let s = setup(backend, quiet_sim(), false).await;
    assert_eq!(s.ingest("clean-1").await["mode"], "queued");
    let event = s.settled("clean-1", Duration::from_secs(10)).await;
    assert_eq!(event["status"], "ready", "{event}");
    assert_eq!(event["provider"], "fingerprint");
    assert_eq!(event["request_id"], "clean-1");
    assert_eq!(event["visitor_id"], "Ibk1527CUFmcnjLwIs4A9");
    assert_eq!(event["signals"]["ip_country"], "CZ");
    assert!(event["device_risk"].as_f64().unwrap() < 0.3, "{event}");
    assert!(event["fetched_at"].is_string());

    // A repeat ingest is answered from the stored result; the provider is not called again.
    assert_eq!(s.ingest("clean-1").await["mode"], "cached");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        s.sim_calls("fingerprint_v4:clean-1").await,
        json!({"200": 1})
    );
    s.stop().await;
}

async fn provider_404_fails_with_its_reason_and_is_not_retried(backend: Backend) {
    let s = setup(backend, quiet_sim(), false).await;
    s.ingest("notfound-7").await;
    let event = s.settled("notfound-7", Duration::from_secs(10)).await;
    assert_eq!(event["status"], "failed", "{event}");
    let error = event["error"].as_str().unwrap();
    assert!(error.contains("404"), "{error}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        s.sim_calls("fingerprint_v4:notfound-7").await,
        json!({"404": 1})
    );
    assert_eq!(event["attempts"], 1);
    s.stop().await;
}

async fn a_429_is_retried_after_retry_after(backend: Backend) {
    let s = setup(backend, quiet_sim(), false).await;
    let started = Instant::now();
    s.ingest("ratelimit-3").await;
    let event = s.settled("ratelimit-3", Duration::from_secs(10)).await;
    assert_eq!(event["status"], "ready", "{event}");
    // Retry-After: 1 is the minimum wait before the second call.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        s.sim_calls("fingerprint_v4:ratelimit-3").await,
        json!({"200": 1, "429": 1})
    );
    assert_eq!(event["attempts"], 2);
    s.stop().await;
}

async fn unknown_and_foreign_events_are_404(backend: Backend) {
    let s = setup(backend, quiet_sim(), false).await;
    s.ingest("mine-1").await;
    let (status, body) = s.event("never-ingested").await;
    assert_eq!((status, body["error"].is_string()), (404, true));
    let other = s.app.subscriber_with_key("other").await;
    let req = s
        .app
        .client
        .get(s.app.url("/fingerprint/events/mine-1"))
        .header("X-API-Key", other);
    assert_eq!(read(req.send().await.unwrap()).await.0, 404);
    let req = s.app.client.get(s.app.url("/fingerprint/events/mine-1"));
    assert_eq!(
        read(req.send().await.unwrap()).await,
        (401, json!({"error": "Missing API key"}))
    );
    s.stop().await;
}

/// With Redis as the cache, the keys the ingest answered with hold the result.
async fn redis_cache_holds_the_result_under_the_promised_keys() {
    let s = setup(Backend::Sqlite, quiet_sim(), true).await;
    let keys = s.ingest("clean-redis").await["redis_keys"].clone();
    let event = s.settled("clean-redis", Duration::from_secs(10)).await;
    assert_eq!(event["status"], "ready");
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let cached: String = redis::cmd("GET")
        .arg(keys[0].as_str().unwrap())
        .query_async(&mut conn)
        .await
        .unwrap();
    let cached: Value = serde_json::from_str(&cached).unwrap();
    assert_eq!(cached["status"], "ready");
    assert_eq!(cached["signals"]["visitor_id"], "Ibk1527CUFmcnjLwIs4A9");
    for pointer in [&keys[1], &keys[2]] {
        let points: String = redis::cmd("GET")
            .arg(pointer.as_str().unwrap())
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(points, "clean-redis");
    }
    let _: () = redis::cmd("DEL")
        .arg(keys[0].as_str().unwrap())
        .arg(keys[1].as_str().unwrap())
        .arg(keys[2].as_str().unwrap())
        .query_async(&mut conn)
        .await
        .unwrap();
    // A cache miss is refilled from the stored result.
    let again = s.settled("clean-redis", Duration::from_secs(1)).await;
    assert_eq!(again["status"], "ready");
    let refilled: Option<String> = redis::cmd("GET")
        .arg(keys[0].as_str().unwrap())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(refilled.is_some());
    s.stop().await;
}

/// 1,000 ingests against a provider failing 30% of calls: every one ends
/// `ready` or `failed` with a reason, none stuck, none fetched again after success.
async fn thousand_ingests_under_faults_all_settle_without_double_fetches() {
    let sim = SimulatorConfig {
        fault_rate: 0.3,
        timeout_hang_ms: 1_500,
        risky_share: 0.2,
        ..SimulatorConfig::default()
    };
    let s = setup(Backend::Sqlite, sim, false).await;
    let ids: Vec<String> = (0..1000).map(|i| format!("load-{i}")).collect();
    for chunk in ids.chunks(50) {
        let sends = chunk.iter().map(|id| s.ingest(id));
        for body in futures_util_join(sends).await {
            assert_eq!(body["mode"], "queued");
        }
    }
    let started = Instant::now();
    let mut pending: HashSet<&String> = ids.iter().collect();
    while !pending.is_empty() && started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let store = s.app.store();
        let mut settled = Vec::new();
        for id in pending.iter() {
            let job = store
                .latest_job(s.subscriber(), "device_fetch", id)
                .await
                .unwrap()
                .unwrap();
            if matches!(
                job.state,
                riskgate::store::JobState::Succeeded | riskgate::store::JobState::Failed
            ) {
                settled.push(*id);
            }
        }
        for id in settled {
            pending.remove(id);
        }
    }
    assert!(
        pending.is_empty(),
        "{} jobs still pending after {:?}",
        pending.len(),
        started.elapsed()
    );
    let (mut ready, mut failed) = (0, 0);
    for id in &ids {
        let (_, event) = s.event(id).await;
        match event["status"].as_str() {
            Some("ready") => ready += 1,
            Some("failed") => {
                failed += 1;
                assert!(
                    event["error"].as_str().is_some_and(|e| !e.is_empty()),
                    "{event}"
                );
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    let stats: Value = reqwest::get(format!("http://{}/_sim/stats", s.sim.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = stats["events"].as_object().unwrap();
    // With no event counted, "fetched at most once" would hold vacuously.
    assert!(!events.is_empty(), "{stats}");
    for (event, statuses) in events {
        let successes = statuses.get("200").and_then(Value::as_u64).unwrap_or(0);
        assert!(
            successes <= 1,
            "{event} fetched {successes} times after success"
        );
    }
    eprintln!(
        "1000 ingests at 30% faults: {ready} ready, {failed} failed, settled in {:?}",
        started.elapsed()
    );
    assert!(ready >= 990, "{ready} ready");
    s.stop().await;
}

async fn futures_util_join<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut handles = Vec::new();
    for f in futures {
        handles.push(f);
    }
    let mut out = Vec::new();
    // Drive them concurrently on this task.
    let mut pinned: Vec<_> = handles.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(done.into_iter().map(|o| o.unwrap()));
    out
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        each(Backend::ALL) => [
            ingested_events_become_ready_and_repeat_ingests_are_cached,
            provider_404_fails_with_its_reason_and_is_not_retried,
            a_429_is_retried_after_retry_after,
            unknown_and_foreign_events_are_404,
        ],
        tokio.threads(2).needs(Server::Redis) => [
            redis_cache_holds_the_result_under_the_promised_keys,
        ],
        tokio.threads(2) => [
            thousand_ingests_under_faults_all_settle_without_double_fetches,
        ],
    }
}
