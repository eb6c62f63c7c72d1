//! `riskgate simulate-providers`: the three device-intelligence providers'
//! server APIs, served on loopback from fixtures embedded in the binary, with
//! settable latency, fault rate and share of risky answers, for demos, tests
//! and benchmarks.
//!
//! Routes (the providers' own call shapes, SPEC "Providers"):
//!
//! | provider | call | auth (missing or malformed) |
//! |---|---|---|
//! | Fingerprint v4 | `GET /v4/events/{event_id}` | `Authorization: Bearer <key>` (403 `secret_api_key_required`) |
//! | Fingerprint v3 | `GET /events/{request_id}` | `Auth-API-Key: <key>` (403 `TokenRequired`) |
//! | Stytch | `POST /v1/fingerprint/lookup` `{"telemetry_id"}` | HTTP Basic `project_id:secret` (401 `unauthorized_credentials`) |
//! | FingerprintIQ | `GET /v1/events/{request_id}` | `Authorization: Bearer fiq_secret_…` (401 `{"error"}`) |
//!
//! A success answer is the provider's fixture with its id field(s) set to the
//! requested id. Which fixture, and what else happens, is chosen by the id:
//!
//! | id starts with | answer |
//! |---|---|
//! | `notfound-` | 404, the provider's not-found body |
//! | `forbidden-` | 403, the provider's forbidden body |
//! | `ratelimit-` | 429 with `Retry-After: 1` the first time the id is seen, then 200 |
//! | `flaky-` | 503 for the first two calls with the id, then 200 |
//! | `slow-` | 200 after `--slow-ms` (3 s) |
//! | `v3partial-` | Fingerprint v3 only: 200 with per-product `error`s (rate-limited products) |
//! | `risky-` / `clean-` | 200, the risky / clean variant |
//! | anything else | 200; risky for a `--risky-share` of ids, chosen by a hash of the id |
//!
//! After one of the first five prefixes, `risky-` or `clean-` still picks the
//! variant (`slow-risky-1`). A `p~…` id is a persona: the clean variant with
//! the device, IP and flags the id spells out (`persona.rs`; generated
//! traffic uses it). Per-id state (`ratelimit-`, `flaky-`) is kept per
//! provider. Before any of this, a `--fault-rate` share of calls fail at
//! random: a 500 or 503, a 429 with `Retry-After: 1`, or a hang of
//! `--timeout-hang-ms` followed by a 504. `--latency-ms` is added to every
//! provider answer.
//!
//! `GET /_sim/stats` counts the calls per path, per provider event and per
//! status; `POST /_sim/reset` clears the counters and the per-id state.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::http::error::error_response;

mod persona;
pub use persona::Persona;

/// Flags of `riskgate simulate-providers`, each also read from
/// `RISKGATE_SIM_<FLAG>`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulatorConfig {
    /// Address to serve on (keep it on loopback).
    #[arg(long, env = "RISKGATE_SIM_LISTEN", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,

    /// Milliseconds added to every provider answer.
    #[arg(long, env = "RISKGATE_SIM_LATENCY_MS", default_value_t = 0)]
    pub latency_ms: u64,

    /// Share (0..1) of calls that fail at random: 500/503, 429 with
    /// `Retry-After: 1`, or a hang of `--timeout-hang-ms`, in equal parts.
    #[arg(long, env = "RISKGATE_SIM_FAULT_RATE", default_value_t = 0.0, value_parser = parse_share)]
    pub fault_rate: f64,

    /// Share (0..1) of request ids answered with the risky variant (bot, VPN,
    /// tampering, Stytch BLOCK); the same id always gets the same variant.
    #[arg(long, env = "RISKGATE_SIM_RISKY_SHARE", default_value_t = 0.1, value_parser = parse_share)]
    pub risky_share: f64,

    /// How long a random "hang" fault holds the call before answering 504.
    #[arg(long, env = "RISKGATE_SIM_TIMEOUT_HANG_MS", default_value_t = 10_000)]
    pub timeout_hang_ms: u64,

    /// How long `slow-` request ids wait before answering.
    #[arg(long, env = "RISKGATE_SIM_SLOW_MS", default_value_t = 3_000)]
    pub slow_ms: u64,
}

impl Default for SimulatorConfig {
    /// The command-line defaults, except that it listens on an ephemeral
    /// loopback port (`127.0.0.1:0`): the shape in-process users want.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            latency_ms: 0,
            fault_rate: 0.0,
            risky_share: 0.1,
            timeout_hang_ms: 10_000,
            slow_ms: 3_000,
        }
    }
}

fn parse_share(s: &str) -> Result<f64, String> {
    let value: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a number from 0 to 1, got {s:?}"))?;
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("expected a number from 0 to 1, got {s:?}"))
    }
}

/// A started simulator: where it listens, and how to stop it.
pub struct SimRunning {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl SimRunning {
    /// `http://<addr>`, the base URL to give the provider adapters.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting and ends the calls in flight (held calls answer 503
    /// at once instead of finishing their wait).
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(true);
        self.task.await.unwrap_or(Ok(()))
    }

    /// Waits until the server stops on its own (in practice: a server error).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.unwrap_or(Ok(()))
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(mut self) -> std::io::Result<()> {
        tokio::select! {
            result = &mut self.task => result.unwrap_or(Ok(())),
            _ = crate::app::shutdown_signal() => {
                tracing::info!("shutdown signal received");
                self.shutdown().await
            }
        }
    }
}

/// Binds `config.listen` and starts serving in the background.
pub async fn start(config: &SimulatorConfig) -> std::io::Result<SimRunning> {
    let fixtures = Fixtures::load()?;
    let listen = config.listen;
    if !listen.ip().is_loopback() {
        // It accepts any credentials and answers from public examples:
        // harmless, but nothing anyone else should be pointed at.
        tracing::warn!(%listen, "provider simulator listening beyond loopback");
    }
    let named = |e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("cannot listen on {listen}: {e}"))
    };
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(named)?;
    let addr = listener.local_addr().map_err(named)?;
    let (shutdown, stop) = watch::channel(false);
    let sim = Sim(Arc::new(SimInner {
        config: config.clone(),
        fixtures,
        seen: Mutex::new(HashMap::new()),
        stats: Mutex::new(Stats::default()),
        stop: stop.clone(),
    }));
    let app = router(sim);
    let task = tokio::spawn(async move {
        let mut stop = stop;
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stop| *stop).await;
            })
            .await
    });
    Ok(SimRunning {
        addr,
        shutdown,
        task,
    })
}

// ---------------------------------------------------------------------------
// Fixtures

const V4_OK: &str = include_str!("../fixtures/providers/fingerprint/v4/get_event_200.json");
const V4_KEY_REQUIRED: &str =
    include_str!("../fixtures/providers/fingerprint/v4/get_event_403_secret_api_key_required.json");
const V4_KEY_NOT_FOUND: &str = include_str!(
    "../fixtures/providers/fingerprint/v4/get_event_403_secret_api_key_not_found.json"
);
const V4_NOT_FOUND: &str =
    include_str!("../fixtures/providers/fingerprint/v4/get_event_404_event_not_found.json");
const V4_TOO_MANY: &str =
    include_str!("../fixtures/providers/fingerprint/v4/get_event_429_too_many_requests.json");
const V4_INTERNAL: &str =
    include_str!("../fixtures/providers/fingerprint/v4/get_event_500_internal_server_error.json");

const V3_OK: &str = include_str!("../fixtures/providers/fingerprint/v3/get_event_200.json");
const V3_PARTIAL: &str =
    include_str!("../fixtures/providers/fingerprint/v3/get_event_200_too_many_requests_error.json");
const V3_TOKEN_REQUIRED: &str =
    include_str!("../fixtures/providers/fingerprint/v3/get_event_403_token_required.json");
const V3_TOKEN_NOT_FOUND: &str =
    include_str!("../fixtures/providers/fingerprint/v3/get_event_403_token_not_found.json");
const V3_NOT_FOUND: &str =
    include_str!("../fixtures/providers/fingerprint/v3/get_event_404_request_not_found.json");
const V3_TOO_MANY: &str =
    include_str!("../fixtures/providers/fingerprint/v3/error_429_too_many_requests.json");

const STYTCH_ALLOW: &str = include_str!("../fixtures/providers/stytch/lookup_200.json");
const STYTCH_BLOCK: &str = include_str!("../fixtures/providers/stytch/lookup_200_block.json");
const STYTCH_NOT_FOUND: &str =
    include_str!("../fixtures/providers/stytch/error_404_telemetry_id_not_found.json");

const FIQ_OK: &str = include_str!("../fixtures/providers/fingerprintiq/get_event_200.json");
const FIQ_NOT_FOUND: &str =
    include_str!("../fixtures/providers/fingerprintiq/error_404_event_not_found.json");

/// The embedded fixtures, parsed once at start, risky variants built.
struct Fixtures {
    v4_clean: Value,
    v4_risky: Value,
    v4_key_required: Value,
    v4_key_not_found: Value,
    v4_not_found: Value,
    v4_too_many: Value,
    v4_internal: Value,
    v3_clean: Value,
    v3_risky: Value,
    v3_partial: Value,
    v3_token_required: Value,
    v3_token_not_found: Value,
    v3_not_found: Value,
    v3_too_many: Value,
    stytch_clean: Value,
    stytch_risky: Value,
    stytch_not_found: Value,
    fiq_clean: Value,
    fiq_risky: Value,
    fiq_not_found: Value,
}

fn parse(name: &str, text: &str) -> std::io::Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("embedded fixture {name}: {e}"),
        )
    })
}

/// Sets `value[path…]` when every step of the path exists.
fn patch(value: &mut Value, path: &[&str], new: Value) {
    let mut at = value;
    for step in path {
        match at.get_mut(*step) {
            Some(next) => at = next,
            None => return,
        }
    }
    *at = new;
}

impl Fixtures {
    fn load() -> std::io::Result<Self> {
        let v4_clean = parse("v4 get_event_200", V4_OK)?;
        let mut v4_risky = v4_clean.clone();
        for (path, value) in [
            (&["bot"][..], json!("bad")),
            (&["vpn"], json!(true)),
            (&["vpn_confidence"], json!("high")),
            (&["vpn_methods", "public_vpn"], json!(true)),
            (&["tampering"], json!(true)),
            (&["tampering_details", "anti_detect_browser"], json!(true)),
            (&["incognito"], json!(true)),
        ] {
            patch(&mut v4_risky, path, value);
        }

        let v3_clean = parse("v3 get_event_200", V3_OK)?;
        let mut v3_risky = v3_clean.clone();
        for (path, value) in [
            (
                &["products", "botd", "data", "bot"][..],
                json!({"result": "bad", "type": "selenium"}),
            ),
            (&["products", "vpn", "data", "result"], json!(true)),
            (
                &["products", "vpn", "data", "methods", "publicVPN"],
                json!(true),
            ),
            (&["products", "tampering", "data", "result"], json!(true)),
            (
                &["products", "tampering", "data", "antiDetectBrowser"],
                json!(true),
            ),
            (&["products", "incognito", "data", "result"], json!(true)),
        ] {
            patch(&mut v3_risky, path, value);
        }

        let fiq_clean = parse("fingerprintiq get_event_200", FIQ_OK)?;
        let mut fiq_risky = fiq_clean.clone();
        for (path, value) in [
            (&["botProbability"][..], json!(0.97)),
            (&["suspectScore"], json!(80)),
            (&["verdicts", "bot", "result"], json!(true)),
            (&["verdicts", "bot", "probability"], json!(0.97)),
            (&["verdicts", "vpn", "result"], json!(true)),
            (&["verdicts", "tampering", "result"], json!(true)),
            (&["verdicts", "headless", "result"], json!(true)),
        ] {
            patch(&mut fiq_risky, path, value);
        }

        Ok(Self {
            v4_clean,
            v4_risky,
            v4_key_required: parse("v4 403 secret_api_key_required", V4_KEY_REQUIRED)?,
            v4_key_not_found: parse("v4 403 secret_api_key_not_found", V4_KEY_NOT_FOUND)?,
            v4_not_found: parse("v4 404", V4_NOT_FOUND)?,
            v4_too_many: parse("v4 429", V4_TOO_MANY)?,
            v4_internal: parse("v4 500", V4_INTERNAL)?,
            v3_clean,
            v3_risky,
            v3_partial: parse("v3 200 too_many_requests_error", V3_PARTIAL)?,
            v3_token_required: parse("v3 403 token_required", V3_TOKEN_REQUIRED)?,
            v3_token_not_found: parse("v3 403 token_not_found", V3_TOKEN_NOT_FOUND)?,
            v3_not_found: parse("v3 404", V3_NOT_FOUND)?,
            v3_too_many: parse("v3 429", V3_TOO_MANY)?,
            stytch_clean: parse("stytch allow", STYTCH_ALLOW)?,
            stytch_risky: parse("stytch block", STYTCH_BLOCK)?,
            stytch_not_found: parse("stytch 404", STYTCH_NOT_FOUND)?,
            fiq_clean,
            fiq_risky,
            fiq_not_found: parse("fingerprintiq 404", FIQ_NOT_FOUND)?,
        })
    }
}

/// Sets every string field named `key`, at any depth, to `id`.
fn set_id(value: &mut Value, key: &str, id: &str) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if k == key && v.is_string() {
                    *v = Value::String(id.to_owned());
                } else {
                    set_id(v, key, id);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| set_id(v, key, id)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Providers

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    FingerprintV4,
    FingerprintV3,
    Stytch,
    Fingerprintiq,
}

impl Api {
    fn name(self) -> &'static str {
        match self {
            Self::FingerprintV4 => "fingerprint_v4",
            Self::FingerprintV3 => "fingerprint_v3",
            Self::Stytch => "stytch",
            Self::Fingerprintiq => "fingerprintiq",
        }
    }

    /// The field(s) of a success body that carry the requested id.
    fn id_field(self) -> &'static str {
        match self {
            Self::FingerprintV4 => "event_id",
            Self::FingerprintV3 | Self::Fingerprintiq => "requestId",
            Self::Stytch => "telemetry_id",
        }
    }
}

fn stytch_request_id() -> String {
    format!("request-id-sim-{:016x}", rand::random::<u64>())
}

/// Stytch gives every answer its own `request_id`.
fn fresh_request_id(mut body: Value) -> Value {
    if let Some(map) = body.as_object_mut() {
        map.insert("request_id".into(), Value::String(stytch_request_id()));
    }
    body
}

/// Stytch's error body shape (as `stytch/error_404_telemetry_id_not_found.json`).
fn stytch_error(status: StatusCode, error_type: &str, message: &str) -> Value {
    let code = status.as_u16();
    json!({
        "status_code": code,
        "request_id": stytch_request_id(),
        "error_type": error_type,
        "error_message": message,
        "error_url": format!("https://stytch.com/docs/api/errors/{code}#{error_type}"),
    })
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn retry_after(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

impl Sim {
    fn not_found(&self, api: Api) -> Response {
        let f = &self.fixtures;
        let body = match api {
            Api::FingerprintV4 => f.v4_not_found.clone(),
            Api::FingerprintV3 => f.v3_not_found.clone(),
            Api::Stytch => fresh_request_id(f.stytch_not_found.clone()),
            Api::Fingerprintiq => f.fiq_not_found.clone(),
        };
        reply(StatusCode::NOT_FOUND, body)
    }

    fn forbidden(&self, api: Api) -> Response {
        let f = &self.fixtures;
        let body = match api {
            Api::FingerprintV4 => f.v4_key_not_found.clone(),
            Api::FingerprintV3 => f.v3_token_not_found.clone(),
            Api::Stytch => stytch_error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "This project is not allowed to use Device Fingerprinting.",
            ),
            Api::Fingerprintiq => json!({"error": "Forbidden"}),
        };
        reply(StatusCode::FORBIDDEN, body)
    }

    fn too_many(&self, api: Api) -> Response {
        let f = &self.fixtures;
        let body = match api {
            Api::FingerprintV4 => f.v4_too_many.clone(),
            Api::FingerprintV3 => f.v3_too_many.clone(),
            Api::Stytch => stytch_error(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many requests have been made.",
            ),
            Api::Fingerprintiq => json!({"error": "Too many requests"}),
        };
        retry_after(reply(StatusCode::TOO_MANY_REQUESTS, body))
    }

    /// A 500, 503 or 504 in the provider's error shape.
    fn server_error(&self, api: Api, status: StatusCode) -> Response {
        let message = match status {
            StatusCode::SERVICE_UNAVAILABLE => "service unavailable",
            StatusCode::GATEWAY_TIMEOUT => "request timed out",
            _ => "internal server error",
        };
        let body = match api {
            Api::FingerprintV4 if status == StatusCode::INTERNAL_SERVER_ERROR => {
                self.fixtures.v4_internal.clone()
            }
            Api::FingerprintV4 => json!({"error": {"code": "failed", "message": message}}),
            Api::FingerprintV3 => json!({"error": {"code": "Failed", "message": message}}),
            Api::Stytch => {
                let error_type = match status {
                    StatusCode::SERVICE_UNAVAILABLE => "service_unavailable",
                    StatusCode::GATEWAY_TIMEOUT => "request_timeout",
                    _ => "internal_server_error",
                };
                stytch_error(status, error_type, &format!("Simulated {message}."))
            }
            Api::Fingerprintiq => json!({"error": message}),
        };
        reply(status, body)
    }

    fn success(&self, api: Api, id: &str, risky: bool) -> Response {
        let f = &self.fixtures;
        let template = match (api, risky) {
            (Api::FingerprintV4, false) => &f.v4_clean,
            (Api::FingerprintV4, true) => &f.v4_risky,
            (Api::FingerprintV3, false) => &f.v3_clean,
            (Api::FingerprintV3, true) => &f.v3_risky,
            (Api::Stytch, false) => &f.stytch_clean,
            (Api::Stytch, true) => &f.stytch_risky,
            (Api::Fingerprintiq, false) => &f.fiq_clean,
            (Api::Fingerprintiq, true) => &f.fiq_risky,
        };
        let mut body = template.clone();
        if let Some(persona) = Persona::parse(behaviour(id).1) {
            let now = crate::store::now_millis();
            match api {
                Api::FingerprintV4 => persona.apply_v4(&mut body, now),
                Api::FingerprintV3 => persona.apply_v3(&mut body, now),
                Api::Stytch => persona.apply_stytch(&mut body),
                Api::Fingerprintiq => persona.apply_fingerprintiq(&mut body, now),
            }
        }
        set_id(&mut body, api.id_field(), id);
        if api == Api::Stytch {
            body = fresh_request_id(body);
        }
        reply(StatusCode::OK, body)
    }
}

// ---------------------------------------------------------------------------
// Behaviour chosen by the request id

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    NotFound,
    Forbidden,
    RateLimit,
    Flaky,
    Slow,
    V3Partial,
    Normal,
}

/// The id's behaviour prefix and the rest of the id.
fn behaviour(id: &str) -> (Behaviour, &str) {
    for (prefix, b) in [
        ("notfound-", Behaviour::NotFound),
        ("forbidden-", Behaviour::Forbidden),
        ("ratelimit-", Behaviour::RateLimit),
        ("flaky-", Behaviour::Flaky),
        ("slow-", Behaviour::Slow),
        ("v3partial-", Behaviour::V3Partial),
    ] {
        if let Some(rest) = id.strip_prefix(prefix) {
            return (b, rest);
        }
    }
    (Behaviour::Normal, id)
}

/// The id's behaviour prefix and whether it asks for the risky variant
/// (`Some(true)`), the clean one (`Some(false)`), or leaves it to the hash.
/// A persona id (`p~…`) asks for the clean variant, which its signals patch.
fn classify(id: &str) -> (Behaviour, Option<bool>) {
    let (behaviour, rest) = behaviour(id);
    if rest.starts_with(persona::PREFIX) {
        return (behaviour, Some(false));
    }
    let variant = if rest.starts_with("risky-") {
        Some(true)
    } else if rest.starts_with("clean-") {
        Some(false)
    } else {
        None
    };
    (behaviour, variant)
}

/// A stable number in [0, 1) from the id: the same id always lands the same.
fn id_fraction(id: &str) -> f64 {
    let digest = Sha256::digest(id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

// ---------------------------------------------------------------------------
// State, stats and the router

#[derive(Clone)]
struct Sim(Arc<SimInner>);

struct SimInner {
    config: SimulatorConfig,
    fixtures: Fixtures,
    /// Calls seen per `provider:id`, for ids whose answer depends on it.
    seen: Mutex<HashMap<String, u32>>,
    stats: Mutex<Stats>,
    stop: watch::Receiver<bool>,
}

impl std::ops::Deref for Sim {
    type Target = SimInner;
    fn deref(&self) -> &SimInner {
        &self.0
    }
}

/// Keys kept per counter map; calls beyond it are counted in `untracked`.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Default, Serialize)]
struct Stats {
    total: u64,
    /// Status → calls.
    statuses: BTreeMap<String, u64>,
    /// Request path → status → calls.
    paths: BTreeMap<String, BTreeMap<String, u64>>,
    /// `provider:id` (`fingerprint_v4`, `fingerprint_v3`, `stytch`,
    /// `fingerprintiq`) → status → calls.
    events: BTreeMap<String, BTreeMap<String, u64>>,
    /// Calls not broken down by path or event because the maps were full.
    untracked: u64,
}

fn bump(
    map: &mut BTreeMap<String, BTreeMap<String, u64>>,
    key: &str,
    status: &str,
    untracked: &mut u64,
) {
    if let Some(per) = map.get_mut(key) {
        *per.entry(status.to_owned()).or_default() += 1;
    } else if map.len() < MAX_TRACKED {
        map.entry(key.to_owned())
            .or_default()
            .insert(status.to_owned(), 1);
    } else {
        *untracked += 1;
    }
}

/// Which provider event a response answered, for the stats.
#[derive(Clone)]
struct EventKey(String);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sim {
    /// Waits `ms`; `false` when the simulator is shutting down meanwhile.
    async fn pause(&self, ms: u64) -> bool {
        if ms == 0 {
            return true;
        }
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms)) => true,
            _ = stop.wait_for(|stop| *stop) => false,
        }
    }

    /// Counts this call for `api:id` and returns how many calls it makes.
    fn call_number(&self, api: Api, id: &str) -> u32 {
        let mut seen = lock(&self.seen);
        let key = format!("{}:{id}", api.name());
        if !seen.contains_key(&key) && seen.len() >= MAX_TRACKED {
            // A benchmark hammering fresh ids: forget the old ones.
            seen.clear();
        }
        let n = seen.entry(key).or_default();
        *n = n.saturating_add(1);
        *n
    }

    /// A random fault for a `--fault-rate` share of calls.
    async fn fault(&self, api: Api) -> Option<Response> {
        let rate = self.config.fault_rate;
        if rate <= 0.0 || rand::random::<f64>() >= rate {
            return None;
        }
        Some(match rand::random::<u32>() % 3 {
            0 => {
                let status = if rand::random::<bool>() {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                self.server_error(api, status)
            }
            1 => self.too_many(api),
            _ => {
                if self.pause(self.config.timeout_hang_ms).await {
                    self.server_error(api, StatusCode::GATEWAY_TIMEOUT)
                } else {
                    self.server_error(api, StatusCode::SERVICE_UNAVAILABLE)
                }
            }
        })
    }

    /// The answer for an authenticated call for event `id`.
    async fn answer(&self, api: Api, id: &str) -> Response {
        if let Some(fault) = self.fault(api).await {
            return fault;
        }
        let (behaviour, variant) = classify(id);
        let risky = variant.unwrap_or_else(|| id_fraction(id) < self.config.risky_share);
        match behaviour {
            Behaviour::NotFound => self.not_found(api),
            Behaviour::Forbidden => self.forbidden(api),
            Behaviour::RateLimit if self.call_number(api, id) == 1 => self.too_many(api),
            Behaviour::Flaky if self.call_number(api, id) <= 2 => {
                self.server_error(api, StatusCode::SERVICE_UNAVAILABLE)
            }
            Behaviour::Slow if !self.pause(self.config.slow_ms).await => {
                self.server_error(api, StatusCode::SERVICE_UNAVAILABLE)
            }
            Behaviour::V3Partial if api == Api::FingerprintV3 => {
                reply(StatusCode::OK, self.fixtures.v3_partial.clone())
            }
            _ => self.success(api, id, risky),
        }
    }
}

fn with_event(mut response: Response, api: Api, id: &str) -> Response {
    response
        .extensions_mut()
        .insert(EventKey(format!("{}:{id}", api.name())));
    response
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The token of `Authorization: Bearer <token>`, when non-empty.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = header_text(headers, header::AUTHORIZATION)?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// HTTP Basic credentials with a non-empty user and password.
fn basic_ok(headers: &HeaderMap) -> bool {
    let Some((scheme, encoded)) =
        header_text(headers, header::AUTHORIZATION).and_then(|v| v.split_once(' '))
    else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return false;
    };
    matches!(text.split_once(':'), Some((user, secret)) if !user.is_empty() && !secret.is_empty())
}

async fn fingerprint_v4(
    State(sim): State<Sim>,
    Path(event_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let api = Api::FingerprintV4;
    let response = if bearer(&headers).is_none() {
        reply(StatusCode::FORBIDDEN, sim.fixtures.v4_key_required.clone())
    } else {
        sim.answer(api, &event_id).await
    };
    with_event(response, api, &event_id)
}

async fn fingerprint_v3(
    State(sim): State<Sim>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let api = Api::FingerprintV3;
    let key = header_text(&headers, header::HeaderName::from_static("auth-api-key"));
    let response = if key.is_none_or(str::is_empty) {
        reply(
            StatusCode::FORBIDDEN,
            sim.fixtures.v3_token_required.clone(),
        )
    } else {
        sim.answer(api, &request_id).await
    };
    with_event(response, api, &request_id)
}

async fn stytch_lookup(State(sim): State<Sim>, headers: HeaderMap, body: Bytes) -> Response {
    let api = Api::Stytch;
    if !basic_ok(&headers) {
        return reply(
            StatusCode::UNAUTHORIZED,
            stytch_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized_credentials",
                "Unauthorized credentials.",
            ),
        );
    }
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let Ok(parsed) = parsed else {
        return reply(
            StatusCode::BAD_REQUEST,
            stytch_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_body",
                "The request body is not valid JSON.",
            ),
        );
    };
    let telemetry_id = parsed
        .get("telemetry_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty());
    let Some(telemetry_id) = telemetry_id else {
        return reply(
            StatusCode::BAD_REQUEST,
            stytch_error(
                StatusCode::BAD_REQUEST,
                "missing_telemetry_id",
                "telemetry_id is a required field.",
            ),
        );
    };
    let response = sim.answer(api, telemetry_id).await;
    with_event(response, api, telemetry_id)
}

async fn fingerprintiq(
    State(sim): State<Sim>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let api = Api::Fingerprintiq;
    let authorized = bearer(&headers)
        .and_then(|token| token.strip_prefix("fiq_secret_"))
        .is_some_and(|rest| !rest.is_empty());
    let response = if authorized {
        sim.answer(api, &request_id).await
    } else {
        reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "Missing or invalid secret API key"}),
        )
    };
    with_event(response, api, &request_id)
}

async fn stats(State(sim): State<Sim>) -> Response {
    let stats = lock(&sim.stats);
    Json(&*stats).into_response()
}

async fn reset(State(sim): State<Sim>) -> Response {
    *lock(&sim.stats) = Stats::default();
    lock(&sim.seen).clear();
    Json(json!({"reset": true})).into_response()
}

/// Adds `--latency-ms` to provider answers and counts every call.
async fn latency_and_stats(State(sim): State<Sim>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let internal = path.starts_with("/_sim/");
    if !internal && !sim.pause(sim.config.latency_ms).await {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, "Shutting down");
    }
    let response = next.run(req).await;
    if !internal {
        let status = response.status().as_u16().to_string();
        let event = response.extensions().get::<EventKey>().cloned();
        tracing::debug!(%path, %status, "simulated provider call");
        let mut guard = lock(&sim.stats);
        let stats = &mut *guard;
        stats.total += 1;
        *stats.statuses.entry(status.clone()).or_default() += 1;
        bump(&mut stats.paths, &path, &status, &mut stats.untracked);
        if let Some(EventKey(key)) = event {
            bump(&mut stats.events, &key, &status, &mut stats.untracked);
        }
    }
    response
}

fn router(sim: Sim) -> Router {
    Router::new()
        .route("/v4/events/{event_id}", get(fingerprint_v4))
        .route("/events/{request_id}", get(fingerprint_v3))
        .route("/v1/fingerprint/lookup", post(stytch_lookup))
        .route("/v1/events/{request_id}", get(fingerprintiq))
        .route("/_sim/stats", get(stats))
        .route("/_sim/reset", post(reset))
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "Not found") })
        .method_not_allowed_fallback(|| async {
            error_response(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
        })
        .layer(middleware::from_fn_with_state(
            sim.clone(),
            latency_and_stats,
        ))
        .with_state(sim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_reads_the_prefixes() {
        assert_eq!(classify("notfound-1"), (Behaviour::NotFound, None));
        assert_eq!(classify("slow-risky-1"), (Behaviour::Slow, Some(true)));
        assert_eq!(classify("clean-x"), (Behaviour::Normal, Some(false)));
        assert_eq!(classify("abc"), (Behaviour::Normal, None));
    }

    #[test]
    fn id_fraction_is_stable_and_in_range() {
        let a = id_fraction("1708102555327.NLOjmg");
        assert_eq!(a, id_fraction("1708102555327.NLOjmg"));
        assert!((0.0..1.0).contains(&a));
    }

    #[test]
    fn shares_are_checked() {
        assert_eq!(parse_share("0.25"), Ok(0.25));
        assert!(parse_share("1.5").is_err());
        assert!(parse_share("NaN").is_err());
        assert!(parse_share("x").is_err());
    }

    /// What each adapter reads from a persona answer is what the id said.
    #[test]
    fn a_persona_answer_maps_to_its_signals_for_every_provider() {
        use crate::providers::{fingerprint, fingerprintiq, stytch};
        let f = Fixtures::load().unwrap();
        let persona = Persona {
            visitor_id: Some("famTab01".into()),
            ip: Some("172.58.10.7".into()),
            country: Some("GB".into()),
            asn: Some(25135),
            asn_name: Some("VODAFONE-UK".into()),
            vpn: true,
            emulator: true,
            confidence: Some(0.55),
            events: Some([4, 9, 20]),
            ..Default::default()
        };
        let id = persona.encode("x1");
        let body = |template: &Value, api: Api| {
            let mut b = template.clone();
            match api {
                Api::FingerprintV4 => persona.apply_v4(&mut b, 1),
                Api::FingerprintV3 => persona.apply_v3(&mut b, 1),
                Api::Stytch => persona.apply_stytch(&mut b),
                Api::Fingerprintiq => persona.apply_fingerprintiq(&mut b, 1),
            }
            set_id(&mut b, api.id_field(), &id);
            serde_json::to_vec(&b).unwrap()
        };
        for signals in [
            fingerprint::parse_v4(&body(&f.v4_clean, Api::FingerprintV4)).unwrap(),
            fingerprint::parse_v3(&body(&f.v3_clean, Api::FingerprintV3)).unwrap(),
        ] {
            assert_eq!(signals.visitor_id.as_deref(), Some("famTab01"));
            assert_eq!(signals.ip_address.as_deref(), Some("172.58.10.7"));
            assert_eq!(signals.ip_country.as_deref(), Some("GB"));
            assert_eq!(signals.ip_asn.as_deref(), Some("25135"));
            assert_eq!(signals.ip_datacenter, Some(false));
            assert_eq!(signals.bot.as_deref(), Some("not_detected"));
            assert_eq!(signals.confidence, Some(0.55));
            assert_eq!(
                (
                    signals.vpn,
                    signals.proxy,
                    signals.emulator,
                    signals.tampering
                ),
                (Some(true), Some(false), Some(true), Some(false))
            );
            assert_eq!(signals.velocity.unwrap().events_5m, Some(4));
        }
        let s = stytch::parse_lookup(&body(&f.stytch_clean, Api::Stytch)).unwrap();
        assert_eq!(s.visitor_id.as_deref(), Some("famTab01"));
        assert_eq!(
            (s.ip_country.as_deref(), s.vpn, s.emulator),
            (Some("GB"), Some(true), Some(true))
        );
        assert_eq!(s.provider_verdict.as_deref(), Some("block"));
        let q = fingerprintiq::parse_event(&body(&f.fiq_clean, Api::Fingerprintiq)).unwrap();
        assert_eq!(q.visitor_id.as_deref(), Some("famTab01"));
        assert_eq!(
            (q.ip_country.as_deref(), q.vpn, q.ip_datacenter),
            (Some("GB"), Some(true), Some(false))
        );
        assert_eq!(q.bot.as_deref(), Some("not_detected"));
        assert_eq!(classify(&id), (Behaviour::Normal, Some(false)));
        assert_eq!(
            classify(&format!("slow-{id}")),
            (Behaviour::Slow, Some(false))
        );
    }

    #[test]
    fn every_fixture_parses_and_risky_variants_differ() {
        let f = Fixtures::load().unwrap();
        assert_ne!(f.v4_clean, f.v4_risky);
        assert_ne!(f.v3_clean, f.v3_risky);
        assert_ne!(f.stytch_clean, f.stytch_risky);
        assert_ne!(f.fiq_clean, f.fiq_risky);
        assert_eq!(f.v4_risky["vpn"], json!(true));
        assert_eq!(
            f.v3_risky["products"]["tampering"]["data"]["result"],
            json!(true)
        );
    }
}
