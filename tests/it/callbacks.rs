#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Signed decision callbacks, end to end: a local receiver on loopback
//! collects what riskgate POSTs and checks it with the Standard Webhooks
//! reference library (`standardwebhooks`). Covered: the signed body and its
//! headers, re-scoring once late device signals arrive (and the bounded
//! wait), retries with the same `webhook-id` and body, `failed` and the
//! operator's retry, the SSRF checks on `callback_url`, secret rotation, a
//! `kill -9` with callbacks outstanding, and idempotent repeats. Callbacks of
//! a `v1a` (Ed25519) subscriber are checked from the public key alone by a
//! verifier written here from the spec on ed25519-dalek, since the reference
//! library knows only `v1`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::binary::Server;
use crate::common::{fresh_db, read, Backend, TestApp, ADMIN_TOKEN};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::Router;
use reqwest::Method;
use riskgate::config::{Schedule, ServeConfig};
use riskgate::simulator::{self, SimRunning, SimulatorConfig};
use serde_json::{json, Value};
use standardwebhooks::Webhook;

const SUB: &str = "merchant-7";

// ---- the receiver -------------------------------------------------------

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    /// Whether the signature verified, when the receiver holds a secret.
    verified: Option<bool>,
    /// What the receiver answered.
    status: u16,
    /// When it arrived.
    at: Instant,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The `v1,…` entries of `webhook-signature`.
    fn signatures(&self) -> Vec<String> {
        self.header("webhook-signature")
            .split_ascii_whitespace()
            .map(str::to_owned)
            .collect()
    }

    /// Whether the reference library accepts this request with `secret`,
    /// optionally with `webhook-signature` replaced by `signature`.
    fn verifies_with(&self, secret: &str, signature: Option<&str>) -> bool {
        let mut headers = self.headers.clone();
        if let Some(signature) = signature {
            headers.insert(
                "webhook-signature",
                HeaderValue::from_str(signature).unwrap(),
            );
        }
        Webhook::new(secret)
            .unwrap()
            .verify(&self.body, &headers)
            .is_ok()
    }

    /// Like [`Self::verifies_with`], for a `whpk_` public key and `v1a`.
    fn verifies_v1a_with(&self, public_key: &str, signature: Option<&str>) -> bool {
        let mut headers = self.headers.clone();
        if let Some(signature) = signature {
            headers.insert(
                "webhook-signature",
                HeaderValue::from_str(signature).unwrap(),
            );
        }
        verify_v1a(public_key, &headers, &self.body)
    }
}

#[derive(Clone, Default)]
struct ReceiverState {
    received: Arc<Mutex<Vec<Received>>>,
    /// Statuses answered in order, per path, before the fixed one.
    script: Arc<Mutex<HashMap<String, VecDeque<u16>>>>,
    /// The status answered per path once its script is used up (default 200).
    fixed: Arc<Mutex<HashMap<String, u16>>>,
    /// When set, a request whose signature does not verify with it gets 401.
    secret: Arc<Mutex<Option<String>>>,
    /// Likewise for a `whpk_` public key and `v1a` signatures (checked
    /// instead of `secret` when set).
    public_key: Arc<Mutex<Option<String>>>,
}

/// A Standard Webhooks `v1a` check as a receiver would write it from the
/// spec, with ed25519-dalek and no riskgate code: the three headers, a
/// timestamp within five minutes, and any `v1a` entry that is an Ed25519
/// signature of `"{id}.{timestamp}.{body}"` under the public key alone.
fn verify_v1a(public_key: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    use base64::Engine;
    use ed25519_dalek::{Signature, VerifyingKey};
    let b64 = base64::engine::general_purpose::STANDARD;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp), Some(signatures)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return false;
    };
    match timestamp.parse::<i64>() {
        Ok(at) if (unix_now() - at).abs() <= 300 => {}
        _ => return false,
    }
    let Some(key) = public_key
        .strip_prefix("whpk_")
        .and_then(|k| b64.decode(k).ok())
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .and_then(|k| VerifyingKey::from_bytes(&k).ok())
    else {
        return false;
    };
    let content = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body].concat();
    signatures
        .split(' ')
        .filter_map(|entry| entry.split_once(','))
        .filter(|(version, _)| *version == "v1a")
        .filter_map(|(_, signature)| b64.decode(signature).ok())
        .filter_map(|signature| <[u8; 64]>::try_from(signature).ok())
        .any(|signature| {
            key.verify_strict(&content, &Signature::from_bytes(&signature))
                .is_ok()
        })
}

async fn receive(
    State(state): State<ReceiverState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let path = uri.path().to_owned();
    let secret = state.secret.lock().unwrap().clone();
    let public_key = state.public_key.lock().unwrap().clone();
    let verified = match public_key {
        Some(key) => Some(verify_v1a(&key, &headers, &body)),
        None => secret.map(|secret| {
            Webhook::new(&secret)
                .map(|hook| hook.verify(&body, &headers).is_ok())
                .unwrap_or(false)
        }),
    };
    let scripted = state
        .script
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(VecDeque::pop_front);
    let status = match (verified, scripted) {
        (Some(false), _) => 401,
        (_, Some(status)) => status,
        _ => state
            .fixed
            .lock()
            .unwrap()
            .get(&path)
            .copied()
            .unwrap_or(200),
    };
    state.received.lock().unwrap().push(Received {
        path,
        headers,
        body,
        verified,
        status,
        at: Instant::now(),
    });
    StatusCode::from_u16(status).unwrap()
}

/// An HTTP server on loopback that records every request.
struct Receiver {
    addr: SocketAddr,
    state: ReceiverState,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Self {
        Self::on(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
    }

    fn on(listener: tokio::net::TcpListener) -> Self {
        let addr = listener.local_addr().unwrap();
        let state = ReceiverState::default();
        let router = Router::new().fallback(receive).with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { addr, state, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn verify_with(&self, secret: &str) {
        *self.state.secret.lock().unwrap() = Some(secret.to_owned());
    }

    fn verify_v1a_with(&self, public_key: &str) {
        *self.state.public_key.lock().unwrap() = Some(public_key.to_owned());
    }

    /// Answers `statuses` to the next requests on `path`, then the fixed status.
    fn script(&self, path: &str, statuses: &[u16]) {
        self.state
            .script
            .lock()
            .unwrap()
            .insert(path.to_owned(), statuses.iter().copied().collect());
    }

    fn answer(&self, path: &str, status: u16) {
        self.state
            .fixed
            .lock()
            .unwrap()
            .insert(path.to_owned(), status);
    }

    fn requests(&self, path: &str) -> Vec<Received> {
        self.state
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    fn all(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits until `path` got at least `n` requests.
    async fn wait_for(&self, path: &str, n: usize) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let got = self.requests(path);
            if got.len() >= n {
                return got;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{path}: {} of {n} requests after 20 s",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---- the API ------------------------------------------------------------

/// One subscriber's view of a riskgate server (in-process or the binary).
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        admin(&self.client, &self.base, method, path, body).await
    }

    async fn score(&self, body: &Value, idempotency: Option<&str>) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}/risk/bin/score", self.base))
            .header("X-API-Key", &self.key)
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(key) = idempotency {
            req = req.header("Idempotency-Key", key);
        }
        read(req.send().await.unwrap()).await
    }

    async fn score_ok(&self, body: &Value) -> Value {
        let (status, resp) = self.score(body, None).await;
        assert_eq!(status, 200, "{body} -> {resp}");
        resp
    }

    async fn decision(&self, id: &str) -> Value {
        let resp = self
            .client
            .get(format!("{}/risk/decisions/{id}", self.base))
            .header("X-API-Key", &self.key)
            .send()
            .await
            .unwrap();
        let (status, body) = read(resp).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits until the decision's callback is `want`; a callback that
    /// settles on the other final state fails at once.
    async fn wait_callback(&self, id: &str, want: &str) -> Value {
        let started = Instant::now();
        loop {
            let decision = self.decision(id).await;
            let status = decision["callback"]["status"].as_str().unwrap_or_default();
            if status == want {
                return decision;
            }
            assert!(
                !matches!(status, "delivered" | "failed"),
                "callback of {id} is {status}, expected {want}: {decision}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "callback of {id} not {want} after 30 s: {decision}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn retry(&self, subscriber: &str, decision_id: &str) -> (u16, Value) {
        self.admin(
            Method::POST,
            &format!("/admin/subscribers/{subscriber}/callbacks/{decision_id}/retry"),
            None,
        )
        .await
    }

    async fn set_scheme(&self, subscriber: &str, body: Value) -> (u16, Value) {
        self.admin(
            Method::PUT,
            &format!("/admin/subscribers/{subscriber}/signing-scheme"),
            Some(body),
        )
        .await
    }

    async fn rotate_key(&self, subscriber: &str, body: Option<Value>) -> (u16, Value) {
        self.admin(
            Method::POST,
            &format!("/admin/subscribers/{subscriber}/signing-key/rotate"),
            body,
        )
        .await
    }

    async fn rotate(&self, subscriber: &str, body: Option<Value>) -> (u16, Value) {
        self.admin(
            Method::POST,
            &format!("/admin/subscribers/{subscriber}/webhook-secret/rotate"),
            body,
        )
        .await
    }
}

async fn admin(
    client: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        req = req.json(&body);
    }
    read(req.send().await.unwrap()).await
}

/// Creates subscriber `id` with Fingerprint credentials and an API key;
/// returns the API and the subscriber's webhook secret.
async fn subscriber(client: &reqwest::Client, base: &str, id: &str) -> (Api, String) {
    let (status, created) = admin(
        client,
        base,
        Method::POST,
        "/admin/subscribers",
        Some(json!({"id": id, "name": id})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["webhook_secret"]
        .as_str()
        .unwrap_or_else(|| panic!("no webhook_secret in {created}"))
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let (status, body) = admin(
        client,
        base,
        Method::PUT,
        &format!("/admin/subscribers/{id}/providers/fingerprint"),
        Some(json!({"secret_key": "fp_secret_test"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = admin(
        client,
        base,
        Method::POST,
        &format!("/admin/subscribers/{id}/keys"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let api = Api {
        client: client.clone(),
        base: base.to_owned(),
        key: body["api_key"].as_str().unwrap().to_owned(),
    };
    (api, secret)
}

fn schedule(millis: &[u64]) -> Schedule {
    Schedule(millis.iter().map(|m| Duration::from_millis(*m)).collect())
}

/// A score body for [`SUB`] asking for a callback.
fn tx(request_id: &str, callback_url: &str) -> Value {
    json!({"request_id": request_id, "subscriber_id": SUB, "callback_url": callback_url,
           "payload": {"transaction_amount": 125.5, "currency": "USD", "bin": "411111",
                       "user_id": format!("user-{request_id}")}})
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

struct Setup {
    app: TestApp,
    api: Api,
    secret: String,
    receiver: Receiver,
}

/// An app that may call back to loopback, retrying every 50 ms three times
/// (unless `configure` says otherwise), subscriber [`SUB`], and a receiver.
async fn setup(backend: Backend, configure: impl FnOnce(&mut ServeConfig)) -> Setup {
    let app = TestApp::start_with(backend, |config| {
        config.allow_private_callbacks = true;
        config.callback_retry_schedule = schedule(&[50, 50, 50]);
        config.callback_timeout = Duration::from_secs(5);
        configure(config);
    })
    .await;
    let (api, secret) = subscriber(&app.client, &app.base, SUB).await;
    let receiver = Receiver::start().await;
    Setup {
        app,
        api,
        secret,
        receiver,
    }
}

fn attempt_codes(decision: &Value) -> Vec<Option<i64>> {
    decision["callback"]["attempts"]
        .as_array()
        .unwrap_or_else(|| panic!("no attempts in {decision}"))
        .iter()
        .map(|a| a["status_code"].as_i64())
        .collect()
}

// ---- 1. a signed callback -----------------------------------------------

async fn callback_is_signed_and_carries_the_decision(backend: Backend) {
    let s = setup(backend, |_| {}).await;
    s.receiver.verify_with(&s.secret);
    let sent_at = unix_now();
    let resp = s
        .api
        .score_ok(&tx("order-1", &s.receiver.url("/hooks/risk")))
        .await;
    assert_eq!(
        resp["async_job"],
        json!({"status": "queued", "will_callback": true}),
        "{resp}"
    );
    let decision_id = resp["decision_id"].as_str().unwrap().to_owned();

    let got = s.receiver.wait_for("/hooks/risk", 1).await;
    let call = &got[0];
    assert_eq!(call.verified, Some(true), "signature rejected: {call:?}");
    assert_eq!(call.status, 200);
    assert_eq!(call.header("webhook-id"), format!("msg_{decision_id}"));
    assert!(call.header("content-type").starts_with("application/json"));
    let timestamp: i64 = call.header("webhook-timestamp").parse().unwrap();
    assert!(
        (sent_at - 5..=unix_now() + 5).contains(&timestamp),
        "{timestamp}"
    );
    let signatures = call.signatures();
    assert_eq!(signatures.len(), 1, "{signatures:?}");
    assert!(signatures[0].starts_with("v1,"), "{signatures:?}");
    // Another secret does not verify it, nor does the same signature over
    // another body.
    let stranger = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    assert!(!call.verifies_with(stranger, None));
    let mut tampered = call.clone();
    tampered.body = Bytes::from([&call.body[..], b" "].concat());
    assert!(!tampered.verifies_with(&s.secret, None));

    let body = call.json();
    assert_eq!(body["type"], "risk.decision", "{body}");
    assert_eq!(body["decision_id"], decision_id.as_str());
    assert_eq!(body["request_id"], "order-1");
    assert_eq!(body["subscriber_id"], SUB);
    assert_eq!(body["signals_complete"], true, "{body}");
    assert_eq!(body["sync_result"], resp["result"], "{body}");
    for field in ["risk_score", "risk_level", "action", "rule_hits"] {
        assert!(
            body["result"].get(field).is_some(),
            "result lacks {field}: {body}"
        );
    }
    assert_eq!(body["input"]["request_id"], "order-1", "{body}");
    assert_eq!(body["input"]["transaction_amount"].as_f64(), Some(125.5));
    assert_eq!(body["input"]["currency"], "USD");
    assert_eq!(body["input"]["device_status"], "none", "{body}");
    // Nothing changed between the score and the callback: same result.
    assert_eq!(body["result"], resp["result"], "{body}");

    let decision = s.api.wait_callback(&decision_id, "delivered").await;
    let callback = &decision["callback"];
    assert_eq!(callback["webhook_id"], format!("msg_{decision_id}"));
    assert_eq!(callback["url"], s.receiver.url("/hooks/risk"));
    assert_eq!(callback["final_result"], body["result"], "{decision}");
    assert_eq!(callback["final_input"], body["input"], "{decision}");
    assert_eq!(attempt_codes(&decision), vec![Some(200)], "{decision}");
    let attempt = &callback["attempts"][0];
    assert_eq!(attempt["attempt"], 1);
    assert!(attempt["at"].is_string(), "{attempt}");
    assert!(attempt["error"].is_null(), "{attempt}");
    assert!(attempt["duration_ms"].as_i64().unwrap() >= 0, "{attempt}");
    assert_eq!(
        decision["async_job"],
        json!({"status": "delivered", "will_callback": false}),
        "{decision}"
    );
    // The synchronous result stays as it was answered.
    assert_eq!(decision["result"], resp["result"]);

    // Without a callback_url: nothing queued, no callback object.
    let mut plain = tx("order-2", "http://unused.invalid/");
    plain.as_object_mut().unwrap().remove("callback_url");
    let resp = s.api.score_ok(&plain).await;
    assert_eq!(
        resp["async_job"],
        json!({"status": "none", "will_callback": false})
    );
    let decision = s.api.decision(resp["decision_id"].as_str().unwrap()).await;
    assert!(decision.get("callback").is_none(), "{decision}");
    assert_eq!(s.receiver.all().len(), 1);
    s.app.stop().await;
}

// ---- 2. late device signals ---------------------------------------------

/// The simulator answers `slow-` ids after this long.
const SLOW_MS: u64 = 1_500;

async fn signal_app(backend: Backend, sim: &SimRunning, wait: Duration) -> (TestApp, Api) {
    let base = url::Url::parse(&sim.base_url()).unwrap();
    let app = TestApp::start_with(backend, |config| {
        config.allow_private_callbacks = true;
        config.callback_retry_schedule = schedule(&[50, 50]);
        config.callback_wait = wait;
        config.fingerprint_base_url = Some(base.clone());
        config.stytch_base_url = Some(base.clone());
        config.fingerprintiq_base_url = Some(base);
    })
    .await;
    let (api, _) = subscriber(&app.client, &app.base, SUB).await;
    (app, api)
}

async fn ingest(app: &TestApp, api: &Api, request_id: &str) {
    let body = json!({"request_id": request_id, "subscriber_id": SUB,
                      "session_id": format!("sess-{request_id}"), "user_id": "shopper"});
    let (status, resp) = app.ingest(Some(&api.key), body.to_string()).await;
    assert_eq!(status, 202, "{resp}");
}

async fn callback_rescores_once_late_signals_arrive(backend: Backend) {
    let sim = simulator::start(&SimulatorConfig {
        risky_share: 0.0,
        slow_ms: SLOW_MS,
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let receiver = Receiver::start().await;

    // A wait long enough for the provider's answer.
    let (app, api) = signal_app(backend, &sim, Duration::from_secs(10)).await;
    ingest(&app, &api, "slow-risky-cb-1").await;
    let started = Instant::now();
    let resp = api
        .score_ok(&tx("slow-risky-cb-1", &receiver.url("/late")))
        .await;
    assert_eq!(resp["input"]["device_status"], "pending", "{resp}");
    assert_eq!(resp["input"]["risk_score_from_cache"].as_f64(), Some(0.0));
    let decision_id = resp["decision_id"].as_str().unwrap().to_owned();

    let got = receiver.wait_for("/late", 1).await;
    let arrived = started.elapsed();
    let body = got[0].json();
    assert!(
        arrived >= Duration::from_millis(SLOW_MS) - Duration::from_millis(300),
        "called back after {arrived:?}, before the signals could be in"
    );
    assert_eq!(body["signals_complete"], true, "{body}");
    let input = &body["input"];
    assert_eq!(input["device_status"], "ready", "{body}");
    assert_eq!(input["device"]["known"], true, "{body}");
    let device_risk = input["risk_score_from_cache"].as_f64().unwrap();
    assert!(device_risk > 0.0, "{body}");
    assert!(
        body["result"]["risk_score"].as_f64().unwrap() >= device_risk,
        "{body}"
    );
    assert_eq!(body["sync_result"], resp["result"], "{body}");
    assert_ne!(
        body["result"], resp["result"],
        "the device risk changed nothing: {body}"
    );

    let decision = api.wait_callback(&decision_id, "delivered").await;
    assert_eq!(
        decision["callback"]["final_result"], body["result"],
        "{decision}"
    );
    assert_eq!(
        decision["callback"]["final_input"]["device_status"], "ready",
        "{decision}"
    );
    assert!(decision["callback"]["final_at"].is_string(), "{decision}");
    // The synchronous decision is kept as it was answered.
    assert_eq!(decision["result"], resp["result"]);
    assert_eq!(decision["input"]["device_status"], "pending");
    app.stop().await;

    // A wait shorter than the provider: the callback goes out without them.
    let (app, api) = signal_app(backend, &sim, Duration::from_millis(300)).await;
    ingest(&app, &api, "slow-risky-cb-2").await;
    let started = Instant::now();
    let resp = api
        .score_ok(&tx("slow-risky-cb-2", &receiver.url("/impatient")))
        .await;
    assert_eq!(resp["input"]["device_status"], "pending", "{resp}");
    let got = receiver.wait_for("/impatient", 1).await;
    let arrived = started.elapsed();
    assert!(
        arrived < Duration::from_millis(SLOW_MS),
        "waited {arrived:?}, longer than --callback-wait"
    );
    let body = got[0].json();
    assert_eq!(body["signals_complete"], false, "{body}");
    assert_eq!(body["input"]["device_status"], "pending", "{body}");
    assert_eq!(body["input"]["risk_score_from_cache"].as_f64(), Some(0.0));
    let decision_id = resp["decision_id"].as_str().unwrap();
    let decision = api.wait_callback(decision_id, "delivered").await;
    assert_eq!(
        decision["callback"]["final_input"]["device_status"], "pending",
        "{decision}"
    );
    app.stop().await;
    sim.shutdown().await.unwrap();
}

// ---- 3. retries ---------------------------------------------------------

async fn failed_deliveries_are_retried_with_the_same_id_and_body(backend: Backend) {
    let s = setup(backend, |_| {}).await;
    s.receiver.script("/flaky", &[500, 500]);
    let resp = s
        .api
        .score_ok(&tx("order-flaky", &s.receiver.url("/flaky")))
        .await;
    let decision_id = resp["decision_id"].as_str().unwrap().to_owned();

    let got = s.receiver.wait_for("/flaky", 3).await;
    assert_eq!(
        got.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![500, 500, 200]
    );
    for call in &got {
        assert_eq!(call.header("webhook-id"), format!("msg_{decision_id}"));
        assert_eq!(call.body, got[0].body, "the body changed between attempts");
        assert!(call.verifies_with(&s.secret, None), "{call:?}");
    }
    let decision = s.api.wait_callback(&decision_id, "delivered").await;
    assert_eq!(
        attempt_codes(&decision),
        vec![Some(500), Some(500), Some(200)],
        "{decision}"
    );
    let attempts = decision["callback"]["attempts"].as_array().unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|a| a["attempt"].as_i64())
            .collect::<Vec<_>>(),
        vec![Some(1), Some(2), Some(3)]
    );
    assert!(decision["callback"]["last_error"].is_null(), "{decision}");
    // Delivered: nothing more is sent.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.receiver.requests("/flaky").len(), 3);
    s.app.stop().await;
}

// ---- 4. failed, and the operator's retry --------------------------------

async fn exhausted_callbacks_fail_and_can_be_retried(backend: Backend) {
    let s = setup(backend, |config| {
        config.callback_retry_schedule = schedule(&[50, 50]);
        config.callback_timeout = Duration::from_secs(2);
    })
    .await;
    s.receiver.answer("/down", 500);
    let resp = s
        .api
        .score_ok(&tx("order-down", &s.receiver.url("/down")))
        .await;
    let down_id = resp["decision_id"].as_str().unwrap().to_owned();
    // A closed port: connection refused every time.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let resp = s
        .api
        .score_ok(&tx(
            "order-closed",
            &format!("http://127.0.0.1:{closed}/hook"),
        ))
        .await;
    let closed_id = resp["decision_id"].as_str().unwrap().to_owned();

    let decision = s.api.wait_callback(&down_id, "failed").await;
    assert_eq!(attempt_codes(&decision), vec![Some(500); 3], "{decision}");
    assert_eq!(
        decision["async_job"],
        json!({"status": "failed", "will_callback": false}),
        "{decision}"
    );
    assert!(decision["callback"]["last_error"].is_string(), "{decision}");
    assert_eq!(s.receiver.requests("/down").len(), 3);

    let decision = s.api.wait_callback(&closed_id, "failed").await;
    let attempts = decision["callback"]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{decision}");
    for attempt in attempts {
        assert!(attempt["status_code"].is_null(), "{attempt}");
        assert!(
            attempt["error"]
                .as_str()
                .is_some_and(|e| e.contains("connect")),
            "{attempt}"
        );
    }

    // Nothing more happens on its own.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.receiver.requests("/down").len(), 3);

    // The receiver is fixed; the operator sends it again.
    s.receiver.answer("/down", 200);
    let (status, body) = s.api.retry(SUB, &down_id).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["decision_id"], down_id.as_str(), "{body}");
    assert_eq!(body["status"], "queued", "{body}");
    let got = s.receiver.wait_for("/down", 4).await;
    assert_eq!(got[3].status, 200);
    assert_eq!(got[3].header("webhook-id"), format!("msg_{down_id}"));
    assert_eq!(got[3].body, got[0].body);
    let decision = s.api.wait_callback(&down_id, "delivered").await;
    // (That the three earlier attempts stay recorded beside it is
    // `operator_retry_keeps_the_earlier_attempts`.)
    assert!(attempt_codes(&decision).contains(&Some(200)), "{decision}");

    // Only a failed callback can be retried.
    let (status, body) = s.api.retry(SUB, &down_id).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let (status, body) = s.api.retry(SUB, "dec_nope").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = s.api.retry("no-such-subscriber", &closed_id).await;
    assert_eq!(status, 404, "{body}");
    // A decision without a callback has none to retry.
    let mut plain = tx("order-plain", "http://unused.invalid/");
    plain.as_object_mut().unwrap().remove("callback_url");
    let plain = s.api.score_ok(&plain).await;
    let (status, body) = s
        .api
        .retry(SUB, plain["decision_id"].as_str().unwrap())
        .await;
    assert_eq!(status, 404, "{body}");
    // Another tenant cannot retry this subscriber's callback.
    let (_other, _) = subscriber(&s.app.client, &s.app.base, "other-tenant").await;
    let (status, body) = s.api.retry("other-tenant", &closed_id).await;
    assert_eq!(status, 404, "{body}");
    // Without the admin token: 401.
    let resp = s
        .app
        .client
        .post(s.app.url(&format!(
            "/admin/subscribers/{SUB}/callbacks/{closed_id}/retry"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    s.app.stop().await;
}

// ---- 5. SSRF ------------------------------------------------------------

async fn private_callback_urls_are_refused_without_the_flag(backend: Backend) {
    let s = setup(backend, |config| config.allow_private_callbacks = false).await;
    let port = s.receiver.addr.port();
    let refused = [
        s.receiver.url("/ssrf"),
        format!("http://localhost:{port}/ssrf"),
        "http://10.0.0.1/hook".to_owned(),
        "http://192.168.1.10/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        format!("http://[::1]:{port}/ssrf"),
        format!("http://[::ffff:127.0.0.1]:{port}/ssrf"),
        format!("http://0x7f.1:{port}/ssrf"),
        "http://0.0.0.0/hook".to_owned(),
        "ftp://example.com/hook".to_owned(),
        "not a url".to_owned(),
    ];
    for (n, url) in refused.iter().enumerate() {
        let (status, body) = s.api.score(&tx(&format!("ssrf-{n}"), url), None).await;
        assert_eq!(status, 400, "{url}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("Invalid 'callback_url'"), "{url}: {body}");
    }
    // Inside `payload` too.
    let mut nested = tx("ssrf-nested", "http://unused.invalid/");
    nested.as_object_mut().unwrap().remove("callback_url");
    nested["payload"]["callback_url"] = json!("http://10.1.2.3/hook");
    let (status, body) = s.api.score(&nested, None).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("Invalid 'callback_url'")),
        "{body}"
    );
    // Refused before anything is recorded or sent.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s.receiver.all().is_empty(), "{:?}", s.receiver.all());
    let (status, jobs) = s
        .api
        .admin(Method::GET, &format!("/admin/subscribers/{SUB}/jobs"), None)
        .await;
    assert_eq!(status, 200, "{jobs}");
    assert!(
        jobs.to_string().find("decision_callback").is_none(),
        "{jobs}"
    );
    s.app.stop().await;

    // With --allow-private-callbacks, loopback is fine.
    let s = setup(backend, |_| {}).await;
    let resp = s
        .api
        .score_ok(&tx("private-ok", &s.receiver.url("/ssrf")))
        .await;
    assert_eq!(resp["async_job"]["will_callback"], true);
    s.receiver.wait_for("/ssrf", 1).await;
    let mut nested = tx("private-nested", "http://unused.invalid/");
    nested.as_object_mut().unwrap().remove("callback_url");
    nested["payload"]["callback_url"] = json!(s.receiver.url("/ssrf-nested"));
    let resp = s.api.score_ok(&nested).await;
    assert_eq!(resp["async_job"]["will_callback"], true, "{resp}");
    s.receiver.wait_for("/ssrf-nested", 1).await;
    // The scheme is still checked.
    let (status, body) = s
        .api
        .score(&tx("private-ftp", "ftp://127.0.0.1/hook"), None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("callback_url")),
        "{body}"
    );
    s.app.stop().await;
}

/// Credentials in a callback URL would be stored and shown with the decision
/// and sent as Basic auth: refused, at the top level and inside `payload`,
/// even where private addresses are allowed.
async fn callback_urls_with_credentials_are_refused(backend: Backend) {
    let s = setup(backend, |_| {}).await;
    let port = s.receiver.addr.port();
    let refused =
        json!({"error": "Invalid 'callback_url': must not carry credentials (user:password@)"});
    let urls = [
        format!("http://user:pass@127.0.0.1:{port}/creds"),
        format!("http://user@127.0.0.1:{port}/creds"),
        format!("http://:pass@127.0.0.1:{port}/creds"),
        "https://user:pass@merchant.example/hooks/risk".to_owned(),
    ];
    for (n, url) in urls.iter().enumerate() {
        let top = tx(&format!("creds-{n}"), url);
        assert_eq!(
            s.api.score(&top, None).await,
            (400, refused.clone()),
            "{url}"
        );
        let mut nested = top.clone();
        nested.as_object_mut().unwrap().remove("callback_url");
        nested["payload"]["callback_url"] = json!(url);
        assert_eq!(
            s.api.score(&nested, None).await,
            (400, refused.clone()),
            "{url}"
        );
    }
    // Nothing recorded, nothing sent.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s.receiver.all().is_empty(), "{:?}", s.receiver.all());
    let (status, jobs) = s
        .api
        .admin(Method::GET, &format!("/admin/subscribers/{SUB}/jobs"), None)
        .await;
    assert_eq!(status, 200, "{jobs}");
    assert!(!jobs.to_string().contains("decision_callback"), "{jobs}");
    // The same URL without them is delivered.
    let resp = s
        .api
        .score_ok(&tx("creds-none", &s.receiver.url("/creds")))
        .await;
    assert_eq!(resp["async_job"]["will_callback"], true, "{resp}");
    s.receiver.wait_for("/creds", 1).await;
    s.app.stop().await;
}

// ---- 6. secret rotation -------------------------------------------------

async fn rotated_secrets_sign_alongside_the_old_one_during_grace(backend: Backend) {
    let s = setup(backend, |_| {}).await;
    let old = s.secret.clone();
    let (status, rotated) = s
        .api
        .rotate(SUB, Some(json!({"grace_period_seconds": 3600})))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["webhook_secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_"), "{rotated}");
    assert_ne!(new, old);
    assert!(rotated["previous_valid_until"].is_string(), "{rotated}");

    let resp = s
        .api
        .score_ok(&tx("rotated-1", &s.receiver.url("/grace")))
        .await;
    let got = s.receiver.wait_for("/grace", 1).await;
    let call = &got[0];
    let signatures = call.signatures();
    assert_eq!(signatures.len(), 2, "{signatures:?}");
    // The new secret's signature first, then the old one's.
    assert!(call.verifies_with(&new, Some(&signatures[0])));
    assert!(!call.verifies_with(&old, Some(&signatures[0])));
    assert!(call.verifies_with(&old, Some(&signatures[1])));
    assert!(!call.verifies_with(&new, Some(&signatures[1])));
    // A receiver holding either secret accepts the whole header.
    assert!(call.verifies_with(&new, None));
    assert!(call.verifies_with(&old, None));
    s.api
        .wait_callback(resp["decision_id"].as_str().unwrap(), "delivered")
        .await;

    // Rotate again without grace: only the newest secret signs.
    let (status, rotated) = s
        .api
        .rotate(SUB, Some(json!({"grace_period_seconds": 0})))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let newest = rotated["webhook_secret"].as_str().unwrap().to_owned();
    assert_ne!(newest, new);
    s.api
        .score_ok(&tx("rotated-2", &s.receiver.url("/nograce")))
        .await;
    let got = s.receiver.wait_for("/nograce", 1).await;
    let call = &got[0];
    assert_eq!(call.signatures().len(), 1, "{:?}", call.signatures());
    assert!(call.verifies_with(&newest, None));
    assert!(!call.verifies_with(&new, None));
    assert!(!call.verifies_with(&old, None));

    // An empty body rotates with the default grace; bad input is refused.
    let (status, rotated) = s.api.rotate(SUB, None).await;
    assert_eq!(status, 200, "{rotated}");
    let (status, body) = s
        .api
        .rotate(SUB, Some(json!({"grace_period_seconds": -1})))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("grace_period_seconds")),
        "{body}"
    );
    let (status, body) = s.api.rotate("no-such-subscriber", None).await;
    assert_eq!(status, 404, "{body}");
    s.app.stop().await;
}

// ---- 6b. asymmetric (v1a) signatures ------------------------------------

/// Switches [`SUB`] to `v1a` at once; returns its public key.
async fn switch_to_v1a(api: &Api) -> String {
    let (status, set) = api
        .set_scheme(
            SUB,
            json!({"signing_scheme": "v1a", "grace_period_seconds": 0}),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["signing_scheme"], "v1a", "{set}");
    assert!(set["previous_scheme"].is_null(), "{set}");
    let key = set["public_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("whpk_"), "{set}");
    key
}

async fn v1a_callbacks_verify_with_the_public_key_alone(backend: Backend) {
    let s = setup(backend, |_| {}).await;
    let public_key = switch_to_v1a(&s.api).await;
    // The operator API shows the public key, never the private one.
    let (status, shown) = s
        .api
        .admin(Method::GET, &format!("/admin/subscribers/{SUB}"), None)
        .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["signing_scheme"], "v1a", "{shown}");
    assert_eq!(shown["public_key"], public_key.as_str(), "{shown}");
    assert!(!shown.to_string().contains("whsk_"), "{shown}");
    // Setting the scheme in force again keeps the key pair.
    let (status, again) = s
        .api
        .set_scheme(SUB, json!({"signing_scheme": "v1a"}))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["public_key"], public_key.as_str(), "{again}");
    assert!(again["previous_scheme"].is_null(), "{again}");

    s.receiver.verify_v1a_with(&public_key);
    let resp = s
        .api
        .score_ok(&tx("ed-1", &s.receiver.url("/ed25519")))
        .await;
    let decision_id = resp["decision_id"].as_str().unwrap().to_owned();
    let got = s.receiver.wait_for("/ed25519", 1).await;
    let call = &got[0];
    assert_eq!(
        call.verified,
        Some(true),
        "v1a signature rejected: {call:?}"
    );
    assert_eq!(call.status, 200);
    assert_eq!(call.header("webhook-id"), format!("msg_{decision_id}"));
    let signatures = call.signatures();
    assert_eq!(signatures.len(), 1, "{signatures:?}");
    assert!(signatures[0].starts_with("v1a,"), "{signatures:?}");
    // riskgate's own verifier agrees with the independent one.
    let timestamp: i64 = call.header("webhook-timestamp").parse().unwrap();
    assert!(riskgate::callbacks::signing::verify_v1a(
        &public_key,
        call.header("webhook-id"),
        timestamp,
        &call.body,
        call.header("webhook-signature"),
    ));
    // No HMAC entry: the shared secret verifies nothing any more.
    assert!(!call.verifies_with(&s.secret, None));
    // Another key pair's public key, or a changed body, does not verify.
    let stranger = "whpk_A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
    assert!(!call.verifies_v1a_with(stranger, None));
    let mut tampered = call.clone();
    tampered.body = Bytes::from([&call.body[..], b" "].concat());
    assert!(!tampered.verifies_v1a_with(&public_key, None));
    assert_eq!(call.json()["decision_id"], decision_id.as_str());
    s.api.wait_callback(&decision_id, "delivered").await;

    // Bad input is refused with a clear 400; an unknown subscriber is a 404.
    for (body, why) in [
        (json!({}), "Missing 'signing_scheme' in request body"),
        (
            json!({"signing_scheme": "v2"}),
            "Invalid 'signing_scheme': expected v1 or v1a",
        ),
        (
            json!({"signing_scheme": 1}),
            "Invalid 'signing_scheme': expected v1 or v1a",
        ),
        (
            json!({"signing_scheme": "v1", "grace_period_seconds": 2_592_001}),
            "Invalid 'grace_period_seconds': must be at most 2592000 (30 days)",
        ),
        (
            json!({"signing_scheme": "v1", "grace_period_seconds": "1h"}),
            "Invalid 'grace_period_seconds': expected a whole number of seconds",
        ),
    ] {
        let (status, answer) = s.api.set_scheme(SUB, body.clone()).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert_eq!(answer["error"], why, "{body} -> {answer}");
    }
    let (status, answer) = s
        .api
        .set_scheme("no-such-subscriber", json!({"signing_scheme": "v1a"}))
        .await;
    assert_eq!(status, 404, "{answer}");
    // Nothing above changed the scheme.
    let (_, shown) = s
        .api
        .admin(Method::GET, &format!("/admin/subscribers/{SUB}"), None)
        .await;
    assert_eq!(shown["signing_scheme"], "v1a", "{shown}");
    s.app.stop().await;
}

async fn a_scheme_change_signs_with_both_schemes_during_grace(backend: Backend) {
    let s = setup(backend, |_| {}).await;
    // v1 -> v1a with a grace period: both signatures, the new scheme first.
    let (status, set) = s
        .api
        .set_scheme(
            SUB,
            json!({"signing_scheme": "v1a", "grace_period_seconds": 3600}),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["previous_scheme"], "v1", "{set}");
    assert!(set["previous_scheme_valid_until"].is_string(), "{set}");
    let public_key = set["public_key"].as_str().unwrap().to_owned();
    s.api
        .score_ok(&tx("switch-1", &s.receiver.url("/both")))
        .await;
    let call = &s.receiver.wait_for("/both", 1).await[0];
    let signatures = call.signatures();
    assert_eq!(signatures.len(), 2, "{signatures:?}");
    assert!(signatures[0].starts_with("v1a,") && signatures[1].starts_with("v1,"));
    // A receiver still on the secret (the reference library) and one on the
    // public key both accept the same request.
    assert!(call.verifies_with(&s.secret, None));
    assert!(call.verifies_v1a_with(&public_key, None));

    // And back to v1 at once: the HMAC signature only, and the key pair is
    // kept for a later switch.
    let (status, set) = s
        .api
        .set_scheme(
            SUB,
            json!({"signing_scheme": "v1", "grace_period_seconds": 0}),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["signing_scheme"], "v1", "{set}");
    assert!(set["previous_scheme"].is_null(), "{set}");
    assert_eq!(set["public_key"], public_key.as_str(), "{set}");
    s.api
        .score_ok(&tx("switch-2", &s.receiver.url("/v1-again")))
        .await;
    let call = &s.receiver.wait_for("/v1-again", 1).await[0];
    assert_eq!(call.signatures().len(), 1, "{:?}", call.signatures());
    assert!(call.verifies_with(&s.secret, None));
    assert!(!call.verifies_v1a_with(&public_key, None));
    s.app.stop().await;
}

async fn rotated_v1a_keys_sign_alongside_the_old_one_during_grace(backend: Backend) {
    let s = setup(backend, |_| {}).await;
    let old = switch_to_v1a(&s.api).await;
    let (status, rotated) = s
        .api
        .rotate_key(SUB, Some(json!({"grace_period_seconds": 3600})))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["public_key"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whpk_"), "{rotated}");
    assert_ne!(new, old);
    assert!(rotated["previous_valid_until"].is_string(), "{rotated}");
    assert!(!rotated.to_string().contains("whsk_"), "{rotated}");
    let (_, shown) = s
        .api
        .admin(Method::GET, &format!("/admin/subscribers/{SUB}"), None)
        .await;
    assert_eq!(shown["public_key"], new.as_str(), "{shown}");

    let resp = s
        .api
        .score_ok(&tx("ed-rotated-1", &s.receiver.url("/grace")))
        .await;
    let call = &s.receiver.wait_for("/grace", 1).await[0];
    let signatures = call.signatures();
    assert_eq!(signatures.len(), 2, "{signatures:?}");
    assert!(
        signatures.iter().all(|e| e.starts_with("v1a,")),
        "{signatures:?}"
    );
    // The new key's signature first, then the old one's.
    assert!(call.verifies_v1a_with(&new, Some(&signatures[0])));
    assert!(!call.verifies_v1a_with(&old, Some(&signatures[0])));
    assert!(call.verifies_v1a_with(&old, Some(&signatures[1])));
    assert!(!call.verifies_v1a_with(&new, Some(&signatures[1])));
    // A receiver holding either public key accepts the whole header.
    assert!(call.verifies_v1a_with(&new, None));
    assert!(call.verifies_v1a_with(&old, None));
    s.api
        .wait_callback(resp["decision_id"].as_str().unwrap(), "delivered")
        .await;

    // Rotate again without grace: only the newest key signs.
    let (status, rotated) = s
        .api
        .rotate_key(SUB, Some(json!({"grace_period_seconds": 0})))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let newest = rotated["public_key"].as_str().unwrap().to_owned();
    s.api
        .score_ok(&tx("ed-rotated-2", &s.receiver.url("/nograce")))
        .await;
    let call = &s.receiver.wait_for("/nograce", 1).await[0];
    assert_eq!(call.signatures().len(), 1, "{:?}", call.signatures());
    assert!(call.verifies_v1a_with(&newest, None));
    assert!(!call.verifies_v1a_with(&new, None));
    assert!(!call.verifies_v1a_with(&old, None));

    // An empty body rotates with the default grace; bad input is refused.
    let (status, rotated) = s.api.rotate_key(SUB, None).await;
    assert_eq!(status, 200, "{rotated}");
    let (status, body) = s
        .api
        .rotate_key(SUB, Some(json!({"grace_period_seconds": -1})))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"],
        "Invalid 'grace_period_seconds': expected a whole number of seconds"
    );
    let (status, body) = s.api.rotate_key("no-such-subscriber", None).await;
    assert_eq!(status, 404, "{body}");
    s.app.stop().await;
}

async fn subscribers_may_be_created_signing_with_v1a(backend: Backend) {
    let app = TestApp::start_with(backend, |config| {
        config.allow_private_callbacks = true;
    })
    .await;
    let (status, created) = admin(
        &app.client,
        &app.base,
        Method::POST,
        "/admin/subscribers",
        Some(json!({"id": "ed-merchant", "name": "Ed", "signing_scheme": "v1a"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["signing_scheme"], "v1a", "{created}");
    assert!(created["public_key"].as_str().unwrap().starts_with("whpk_"));
    assert!(created["webhook_secret"]
        .as_str()
        .unwrap()
        .starts_with("whsec_"));
    assert!(!created.to_string().contains("whsk_"), "{created}");
    let (status, plain) = admin(
        &app.client,
        &app.base,
        Method::POST,
        "/admin/subscribers",
        Some(json!({"id": "hmac-merchant", "name": "H"})),
    )
    .await;
    assert_eq!(status, 201, "{plain}");
    assert_eq!(plain["signing_scheme"], "v1", "{plain}");
    assert!(plain["public_key"].is_null(), "{plain}");
    let (status, bad) = admin(
        &app.client,
        &app.base,
        Method::POST,
        "/admin/subscribers",
        Some(json!({"name": "X", "signing_scheme": "ed25519"})),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["error"], "Invalid 'signing_scheme': expected v1 or v1a");
    app.stop().await;
}

// ---- 7. kill -9 ---------------------------------------------------------

/// Accepts connections and never answers, until dropped.
struct BlackHole {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl BlackHole {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        Self { port, task }
    }

    async fn close(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn kill9_with_callbacks_outstanding_delivers_every_one() {
    let db = fresh_db(Backend::Sqlite).await;
    // Receiver A is down (port closed); receiver B accepts and never
    // answers, so some deliveries are in flight when the server dies.
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let hole = BlackHole::start().await;
    let hole_port = hole.port;
    let retries = vec!["300ms"; 40].join(",");
    let flags = [
        "--allow-private-callbacks",
        "--callback-wait",
        "200ms",
        "--callback-timeout",
        "2s",
        "--callback-retry-schedule",
        retries.as_str(),
    ];
    let mut server = Server::start(&db.url, &flags);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (api, secret) = subscriber(&client, &server.base, SUB).await;

    let mut decisions = Vec::new();
    for n in 0..6 {
        for (port, name) in [(closed_port, "closed"), (hole_port, "hole")] {
            let path = format!("/crash/{name}/{n}");
            let url = format!("http://127.0.0.1:{port}{path}");
            let resp = api.score_ok(&tx(&format!("crash-{name}-{n}"), &url)).await;
            decisions.push((resp["decision_id"].as_str().unwrap().to_owned(), port, path));
        }
    }
    // Let the deliveries fail a few times, some stuck in flight.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let store = riskgate::store::connect(&db.url).await.unwrap();
    let running = store
        .list_jobs(&riskgate::store::JobFilter {
            kind: Some(
                riskgate::store::JobKind::DecisionCallback
                    .as_str()
                    .to_owned(),
            ),
            state: Some(riskgate::store::JobState::Running),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    store.close().await;
    server.kill9();
    eprintln!("{} callbacks in flight at kill -9", running.len());
    assert!(!running.is_empty(), "no delivery was in flight at the kill");

    // Both receivers come up, answering 200, on the same ports.
    hole.close().await;
    let bind = |port: u16| async move {
        let started = Instant::now();
        loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                Ok(listener) => return listener,
                Err(err) => {
                    assert!(started.elapsed() < Duration::from_secs(10), "{port}: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    };
    let closed_receiver = Receiver::on(bind(closed_port).await);
    let hole_receiver = Receiver::on(bind(hole_port).await);
    closed_receiver.verify_with(&secret);
    hole_receiver.verify_with(&secret);

    let server = Server::start(&db.url, &flags);
    let api = Api {
        base: server.base.clone(),
        ..api
    };
    let started = Instant::now();
    for (id, _, _) in &decisions {
        let decision = api.wait_callback(id, "delivered").await;
        let codes = attempt_codes(&decision);
        assert_eq!(codes.last(), Some(&Some(200)), "{decision}");
    }
    let took = started.elapsed();
    eprintln!("all delivered {took:?} after the restart");
    // The restarted process takes back the leases its previous life held,
    // so a delivery cut short does not wait for its lease to run out.
    assert!(
        took < Duration::from_secs(15),
        "callbacks in flight at the kill took {took:?} after the restart"
    );
    for (id, port, path) in &decisions {
        let receiver = if *port == closed_port {
            &closed_receiver
        } else {
            &hole_receiver
        };
        let got = receiver.requests(path);
        assert!(!got.is_empty(), "{id} never delivered");
        for call in &got {
            assert_eq!(call.header("webhook-id"), format!("msg_{id}"));
            assert_eq!(call.verified, Some(true), "{call:?}");
            assert_eq!(
                call.body, got[0].body,
                "{id}: bodies differ between deliveries"
            );
            assert_eq!(call.json()["decision_id"], id.as_str());
        }
    }
    let log = server.stop();
    assert!(!log.contains("panicked"), "{log}");
}

/// Two processes share one PostgreSQL queue; one is killed with `kill -9`
/// while deliveries are in flight. The other takes its leases over: every
/// callback arrives within 15 s of the kill, repeats carry the same
/// `webhook-id` and body, and each decision's attempt history lists as many
/// attempts as its job counted (one cut short by the kill included).
async fn two_processes_one_killed_mid_delivery_deliver_every_callback() {
    let db = fresh_db(Backend::Postgres).await;
    let hole = BlackHole::start().await;
    let hole_port = hole.port;
    let retries = vec!["300ms"; 40].join(",");
    let flags = [
        "--allow-private-callbacks",
        "--callback-wait",
        "200ms",
        "--callback-timeout",
        "2s",
        "--callback-retry-schedule",
        retries.as_str(),
    ];
    let mut doomed = Server::start(&db.url, &flags);
    let survivor = Server::start(&db.url, &flags);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (api, secret) = subscriber(&client, &doomed.base, SUB).await;
    let mut decisions = Vec::new();
    for n in 0..12 {
        let path = format!("/two/{n}");
        let url = format!("http://127.0.0.1:{hole_port}{path}");
        let resp = api.score_ok(&tx(&format!("two-{n}"), &url)).await;
        decisions.push((resp["decision_id"].as_str().unwrap().to_owned(), path));
    }
    // Deliveries hang on the black hole; both processes hold some.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let store = riskgate::store::connect(&db.url).await.unwrap();
    let kind = riskgate::store::JobKind::DecisionCallback.as_str();
    let running = store
        .list_jobs(&riskgate::store::JobFilter {
            kind: Some(kind.to_owned()),
            state: Some(riskgate::store::JobState::Running),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!running.is_empty(), "no delivery was in flight at the kill");
    doomed.kill9();
    let killed_at = Instant::now();

    // The receiver comes up on the black hole's port, answering 200.
    hole.close().await;
    let listener = loop {
        match tokio::net::TcpListener::bind(("127.0.0.1", hole_port)).await {
            Ok(listener) => break listener,
            Err(err) => {
                assert!(killed_at.elapsed() < Duration::from_secs(10), "{err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let receiver = Receiver::on(listener);
    receiver.verify_with(&secret);
    let api = Api {
        base: survivor.base.clone(),
        ..api
    };
    for (id, _) in &decisions {
        api.wait_callback(id, "delivered").await;
    }
    let took = killed_at.elapsed();
    eprintln!(
        "{} deliveries in flight at kill -9; all delivered {took:?} after it",
        running.len()
    );
    assert!(
        took < Duration::from_secs(15),
        "callbacks took {took:?} after the kill"
    );
    for (id, path) in &decisions {
        let got = receiver.requests(path);
        assert!(!got.is_empty(), "{id} never reached the receiver");
        for call in &got {
            assert_eq!(call.header("webhook-id"), format!("msg_{id}"));
            assert_eq!(call.verified, Some(true), "{call:?}");
            assert_eq!(call.body, got[0].body, "{id}: bodies differ");
        }
        let decision = api.decision(id).await;
        let history = decision["callback"]["attempts"].as_array().unwrap().clone();
        let job = store.latest_job(SUB, kind, id).await.unwrap().unwrap();
        assert_eq!(
            history.len() as i64,
            job.attempts,
            "{id}: the history lists other attempts than the job made: {decision}"
        );
        assert_eq!(
            history.last().unwrap()["status_code"],
            200,
            "{id}: {decision}"
        );
        for (n, attempt) in history.iter().enumerate() {
            assert_eq!(attempt["attempt"], n as i64 + 1, "{decision}");
        }
    }
    store.close().await;
    let log = survivor.stop();
    assert!(!log.contains("panicked"), "{log}");
}

// ---- 8. idempotency -----------------------------------------------------

async fn idempotent_repeats_call_back_once(backend: Backend) {
    let s = setup(backend, |_| {}).await;
    let body = tx("order-idem", &s.receiver.url("/idem"));
    let (status, first) = s.api.score(&body, Some("idem-key-1")).await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = s.api.score(&body, Some("idem-key-1")).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["decision_id"], first["decision_id"]);
    assert_eq!(again["async_job"]["will_callback"], true);
    // The same key with another body is a conflict, and calls nobody.
    let other = tx("order-idem-other", &s.receiver.url("/idem"));
    let (status, body_409) = s.api.score(&other, Some("idem-key-1")).await;
    assert_eq!(status, 409, "{body_409}");

    // Concurrent repeats of another key.
    let concurrent = tx("order-idem-2", &s.receiver.url("/idem-race"));
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (api, body) = (s.api.clone(), concurrent.clone());
        tasks.push(tokio::spawn(async move {
            api.score(&body, Some("idem-key-2")).await
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        let (status, resp) = task.await.unwrap();
        assert_eq!(status, 200, "{resp}");
        ids.push(resp["decision_id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");

    s.api
        .wait_callback(first["decision_id"].as_str().unwrap(), "delivered")
        .await;
    s.api.wait_callback(&ids[0], "delivered").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.receiver.requests("/idem").len(), 1);
    assert_eq!(s.receiver.requests("/idem-race").len(), 1);
    assert_eq!(
        s.receiver.requests("/idem")[0].json()["decision_id"],
        first["decision_id"]
    );
    s.app.stop().await;
}

// ---- known bugs -----------------------------------------------------------

/// A retry is sent when the schedule says, not at the worker's next idle
/// poll: with `--callback-retry-schedule 100ms,200ms` the three attempts
/// take well under a second.
async fn retries_follow_a_short_schedule(backend: Backend) {
    let s = setup(backend, |config| {
        config.callback_retry_schedule = schedule(&[100, 200]);
    })
    .await;
    s.receiver.script("/quick", &[500, 503]);
    let resp = s
        .api
        .score_ok(&tx("order-quick", &s.receiver.url("/quick")))
        .await;
    let got = s.receiver.wait_for("/quick", 3).await;
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].at - w[0].at).collect();
    // 100 ms and 200 ms, ±10 % jitter, plus generous slack.
    assert!(gaps[0] < Duration::from_millis(600), "{gaps:?}");
    assert!(gaps[1] < Duration::from_millis(700), "{gaps:?}");
    s.api
        .wait_callback(resp["decision_id"].as_str().unwrap(), "delivered")
        .await;
    s.app.stop().await;
}

/// After an operator's retry, the attempts made before it stay on the
/// decision: four attempts, numbered 1 to 4.
async fn operator_retry_keeps_the_earlier_attempts(backend: Backend) {
    let s = setup(backend, |config| {
        config.callback_retry_schedule = schedule(&[50, 50]);
    })
    .await;
    s.receiver.answer("/history", 500);
    let resp = s
        .api
        .score_ok(&tx("order-history", &s.receiver.url("/history")))
        .await;
    let id = resp["decision_id"].as_str().unwrap().to_owned();
    s.api.wait_callback(&id, "failed").await;
    s.receiver.answer("/history", 200);
    let (status, body) = s.api.retry(SUB, &id).await;
    assert_eq!(status, 202, "{body}");
    let decision = s.api.wait_callback(&id, "delivered").await;
    let attempts = decision["callback"]["attempts"].as_array().unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|a| (a["attempt"].as_i64(), a["status_code"].as_i64()))
            .collect::<Vec<_>>(),
        vec![
            (Some(1), Some(500)),
            (Some(2), Some(500)),
            (Some(3), Some(500)),
            (Some(4), Some(200)),
        ],
        "{decision}"
    );
    s.app.stop().await;
}

/// A callback waiting for slow device signals does not hold a delivery slot
/// for the whole wait: with one slot, a callback whose signals are ready is
/// delivered while the slow one still waits.
async fn waiting_callbacks_do_not_block_ready_ones(backend: Backend) {
    let sim = simulator::start(&SimulatorConfig {
        risky_share: 0.0,
        slow_ms: SLOW_MS,
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let receiver = Receiver::start().await;
    let base = url::Url::parse(&sim.base_url()).unwrap();
    let app = TestApp::start_with(backend, |config| {
        config.allow_private_callbacks = true;
        config.callback_concurrency = 1;
        config.callback_wait = Duration::from_secs(10);
        config.fingerprint_base_url = Some(base);
    })
    .await;
    let (api, _) = subscriber(&app.client, &app.base, SUB).await;
    ingest(&app, &api, "ready-cb-1").await;
    // Let the ordinary id's signals arrive before anything waits.
    tokio::time::sleep(Duration::from_millis(500)).await;
    ingest(&app, &api, "slow-cb-1").await;
    let started = Instant::now();
    api.score_ok(&tx("slow-cb-1", &receiver.url("/slow"))).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    api.score_ok(&tx("ready-cb-1", &receiver.url("/ready")))
        .await;

    let ready = receiver.wait_for("/ready", 1).await;
    let ready_after = started.elapsed();
    assert!(
        ready_after < Duration::from_millis(SLOW_MS),
        "the ready callback waited behind the slow one: {ready_after:?}"
    );
    assert_eq!(ready[0].json()["signals_complete"], true);
    let slow = receiver.wait_for("/slow", 1).await;
    assert_eq!(slow[0].json()["input"]["device_status"], "ready");
    assert_eq!(slow[0].json()["signals_complete"], true);
    app.stop().await;
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        each(Backend::ALL) => [
            waiting_callbacks_do_not_block_ready_ones,
            callback_is_signed_and_carries_the_decision,
            callback_rescores_once_late_signals_arrive,
            failed_deliveries_are_retried_with_the_same_id_and_body,
            exhausted_callbacks_fail_and_can_be_retried,
            private_callback_urls_are_refused_without_the_flag,
            callback_urls_with_credentials_are_refused,
            rotated_secrets_sign_alongside_the_old_one_during_grace,
            v1a_callbacks_verify_with_the_public_key_alone,
            a_scheme_change_signs_with_both_schemes_during_grace,
            rotated_v1a_keys_sign_alongside_the_old_one_during_grace,
            subscribers_may_be_created_signing_with_v1a,
            idempotent_repeats_call_back_once,
            retries_follow_a_short_schedule,
            operator_retry_keeps_the_earlier_attempts,
        ],
        tokio.threads(2) => [
            kill9_with_callbacks_outstanding_delivers_every_one,
        ],
        tokio.threads(2).needs(crate::common::trials::Server::Postgres) => [
            two_processes_one_killed_mid_delivery_deliver_every_callback,
        ],
    }
}
