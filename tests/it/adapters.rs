#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The provider adapters over real HTTP: `riskgate::providers::client::fetch`
//! (never a stub) against a local axum server on 127.0.0.1:0 that checks the
//! call shape SPEC "Providers" prescribes, records every request it receives,
//! and answers with the fixture files under `fixtures/providers/` byte for
//! byte, with the status each file's name gives.
//!
//! The fixture tests loop over the directory listings, so a fixture added
//! later is either given an expectation here or fails the run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::Router;
use base64::Engine as _;
use riskgate::providers::client::{fetch, Credentials, Endpoints, FetchOutcome};
use riskgate::providers::DeviceSignals;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

// ---------------------------------------------------------------------------
// Credentials the test server expects.

const FP_SECRET: &str = "fp_test_SecretKey_9f8e7d6c";
const STYTCH_PROJECT: &str = "project-test-6c1f3b2a-0d4e-4f5a-9b8c-7d6e5f4a3b2c";
const STYTCH_SECRET: &str = "secret-test-Zx9y8W7v6U5t4S3r2Q1p=";
const FIQ_SECRET: &str = "fiq_secret_3f9a1c7e5b2d4068";

fn fingerprint(api_version: &str) -> Credentials {
    Credentials::Fingerprint {
        secret_key: FP_SECRET.into(),
        region: "eu".into(),
        api_version: api_version.into(),
    }
}

fn stytch() -> Credentials {
    Credentials::Stytch {
        project_id: STYTCH_PROJECT.into(),
        secret: STYTCH_SECRET.into(),
    }
}

fn fingerprintiq() -> Credentials {
    Credentials::Fingerprintiq {
        secret_key: FIQ_SECRET.into(),
    }
}

fn all_credentials() -> Vec<Credentials> {
    vec![
        fingerprint("v4"),
        fingerprint("v3"),
        stytch(),
        fingerprintiq(),
    ]
}

/// The provider API a call is meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Api {
    FingerprintV4,
    FingerprintV3,
    Stytch,
    Fingerprintiq,
}

fn api_of(credentials: &Credentials) -> Api {
    match credentials {
        Credentials::Fingerprint { api_version, .. } if api_version == "v3" => Api::FingerprintV3,
        Credentials::Fingerprint { .. } => Api::FingerprintV4,
        Credentials::Stytch { .. } => Api::Stytch,
        Credentials::Fingerprintiq { .. } => Api::Fingerprintiq,
    }
}

fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(2))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

fn endpoints_at(base: &Url) -> Endpoints {
    Endpoints {
        fingerprint: Some(base.clone()),
        stytch: Some(base.clone()),
        fingerprintiq: Some(base.clone()),
    }
}

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/providers")
}

// ---------------------------------------------------------------------------
// The fixture server.

#[derive(Clone)]
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    retry_after: Option<String>,
}

/// One request as the server received it.
#[derive(Debug, Clone)]
struct Received {
    method: Method,
    /// The path as sent, percent-encoding intact.
    raw_path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
    /// The API and (decoded) id when the call had a valid shape.
    matched: Option<(Api, String)>,
    /// Why the call shape was refused.
    shape_error: Option<String>,
}

#[derive(Default)]
struct ServerState {
    replies: Mutex<HashMap<(Api, String), Reply>>,
    received: Mutex<Vec<Received>>,
}

struct FixtureServer {
    base: Url,
    state: Arc<ServerState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FixtureServer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ServerState::default());
        let app = Router::new().fallback(handle).with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base: Url::parse(&format!("http://{addr}/")).unwrap(),
            state,
            task,
        }
    }

    fn endpoints(&self) -> Endpoints {
        endpoints_at(&self.base)
    }

    /// Answers a well-shaped call for `id` on `api` with `reply`.
    fn answer(&self, api: Api, id: &str, reply: Reply) {
        self.state
            .replies
            .lock()
            .unwrap()
            .insert((api, id.to_owned()), reply);
    }

    fn answer_json(&self, api: Api, id: &str, status: u16, body: Vec<u8>, retry: Option<&str>) {
        self.answer(
            api,
            id,
            Reply {
                status,
                content_type: "application/json",
                body,
                retry_after: retry.map(str::to_owned),
            },
        );
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// The one request received for `id` on `api`, which had a valid shape.
    fn only_call(&self, api: Api, id: &str) -> Received {
        let all = self.received();
        let refused: Vec<_> = all.iter().filter(|r| r.shape_error.is_some()).collect();
        assert!(refused.is_empty(), "refused call shapes: {refused:#?}");
        let calls: Vec<_> = all
            .into_iter()
            .filter(|r| r.matched.as_ref() == Some(&(api, id.to_owned())))
            .collect();
        assert_eq!(calls.len(), 1, "calls for {api:?} {id:?}: {calls:#?}");
        calls.into_iter().next().unwrap()
    }
}

async fn handle(State(state): State<Arc<ServerState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let raw_path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    let checked = check_shape(
        &parts.method,
        &raw_path,
        query.as_deref(),
        &parts.headers,
        &body,
    );
    let reply = checked
        .as_ref()
        .ok()
        .and_then(|key| state.replies.lock().unwrap().get(key).cloned());
    let refusal = match &checked {
        Err(why) => format!("test server: wrong call shape: {why}"),
        Ok((api, id)) => format!("test server: no reply set up for {api:?} {id:?}"),
    };
    let (matched, shape_error) = match checked {
        Ok(key) => (Some(key), None),
        Err(why) => (None, Some(why)),
    };
    state.received.lock().unwrap().push(Received {
        method: parts.method,
        raw_path,
        query,
        headers: parts.headers,
        body,
        matched,
        shape_error,
    });
    let reply = reply.unwrap_or(Reply {
        // 418: no fixture uses it, so a refused call cannot pass for one.
        status: 418,
        content_type: "text/plain",
        body: refusal.into_bytes(),
        retry_after: None,
    });
    let mut response = Response::builder()
        .status(reply.status)
        .header(CONTENT_TYPE, reply.content_type);
    if let Some(wait) = reply.retry_after {
        response = response.header(RETRY_AFTER, wait);
    }
    response.body(Body::from(reply.body)).unwrap()
}

/// The one value of header `name`, as text.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, String> {
    let values: Vec<_> = headers.get_all(name).iter().collect();
    match values.as_slice() {
        [one] => one
            .to_str()
            .map_err(|_| format!("header {name} is not text")),
        [] => Err(format!("header {name} is missing")),
        _ => Err(format!("header {name} is sent {} times", values.len())),
    }
}

fn absent(headers: &HeaderMap, name: &str) -> Result<(), String> {
    match headers.contains_key(name) {
        true => Err(format!("header {name} must not be sent")),
        false => Ok(()),
    }
}

fn expect_header(headers: &HeaderMap, name: &str, want: &str) -> Result<(), String> {
    let got = single(headers, name)?;
    match got == want {
        true => Ok(()),
        false => Err(format!("header {name} is {got:?}, want {want:?}")),
    }
}

/// Strict percent-decoding of one raw path segment.
fn percent_decode(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .ok_or_else(|| format!("truncated escape in {raw:?}"))?;
            let byte =
                u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape %{hex} in {raw:?}"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{raw:?} does not decode to UTF-8"))
}

/// The id from the last path segment (one segment, decoded, not empty).
fn path_id(raw: &str) -> Result<String, String> {
    let id = percent_decode(raw)?;
    match id.is_empty() {
        true => Err("empty id segment".into()),
        false => Ok(id),
    }
}

/// Checks a request against the providers' call shapes (SPEC "Providers").
fn check_shape(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Api, String), String> {
    if let Some(query) = query {
        return Err(format!("unexpected query string {query:?}"));
    }
    let segments: Vec<&str> = path
        .strip_prefix('/')
        .ok_or_else(|| format!("path {path:?} is not absolute"))?
        .split('/')
        .collect();
    let bearer =
        |secret: &str| expect_header(headers, "authorization", &format!("Bearer {secret}"));
    let no_body = || match body.is_empty() {
        true => Ok(()),
        false => Err(format!("a GET with a body of {} bytes", body.len())),
    };
    match (method, segments.as_slice()) {
        (&Method::GET, ["v4", "events", id]) => {
            bearer(FP_SECRET)?;
            absent(headers, "auth-api-key")?;
            no_body()?;
            Ok((Api::FingerprintV4, path_id(id)?))
        }
        (&Method::GET, ["events", id]) => {
            expect_header(headers, "auth-api-key", FP_SECRET)?;
            absent(headers, "authorization")?;
            no_body()?;
            Ok((Api::FingerprintV3, path_id(id)?))
        }
        (&Method::GET, ["v1", "events", id]) => {
            if !FIQ_SECRET.starts_with("fiq_secret_") {
                return Err("FingerprintIQ secret keys start with fiq_secret_".into());
            }
            bearer(FIQ_SECRET)?;
            absent(headers, "auth-api-key")?;
            no_body()?;
            Ok((Api::Fingerprintiq, path_id(id)?))
        }
        (&Method::POST, ["v1", "fingerprint", "lookup"]) => {
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("{STYTCH_PROJECT}:{STYTCH_SECRET}"));
            expect_header(headers, "authorization", &format!("Basic {basic}"))?;
            absent(headers, "auth-api-key")?;
            let content_type = single(headers, "content-type")?;
            if !content_type.starts_with("application/json") {
                return Err(format!("content-type {content_type:?} is not JSON"));
            }
            let json: Value = serde_json::from_slice(body)
                .map_err(|e| format!("body is not JSON ({e}): {body:?}"))?;
            let fields = json
                .as_object()
                .ok_or_else(|| format!("body {json} is not an object"))?;
            match (fields.len(), fields.get("telemetry_id")) {
                (1, Some(Value::String(id))) if !id.is_empty() => Ok((Api::Stytch, id.clone())),
                _ => Err(format!("body {json} is not {{\"telemetry_id\": <id>}}")),
            }
        }
        _ => Err(format!("no provider API is {method} {path}")),
    }
}

// ---------------------------------------------------------------------------
// Every fixture file, served with the status its name says.

/// What a user sees for one fixture.
enum Expect {
    /// `Ready`, and the mapped signals pass this check.
    Ready(fn(&DeviceSignals)),
    /// `Failed` with exactly this reason.
    Failed(&'static str),
    /// `Retry` with exactly this reason.
    Retry(&'static str),
}

struct FixtureDir {
    /// Relative to `fixtures/providers/`.
    rel: &'static str,
    credentials: Credentials,
    /// Files that are not answers of the API `fetch` calls.
    skip: &'static [&'static str],
    cases: Vec<(&'static str, Expect)>,
}

/// The HTTP status a fixture's file name gives: its first three-digit word.
fn status_from_name(file: &str) -> Option<u16> {
    let stem = file.strip_suffix(".json")?;
    stem.split('_')
        .find(|w| w.len() == 3 && w.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|w| w.parse().ok())
}

fn sorted_listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_type().unwrap().is_file())
        .map(|entry| entry.file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panic".into())
}

/// Serves every file of the directory through the fixture server, calls
/// `fetch` for it and checks the outcome. Returns how many files were
/// covered; fails listing every file that was not, or went wrong.
async fn run_fixture_dir(dir: FixtureDir) -> usize {
    let path = fixtures_root().join(dir.rel);
    let listing = sorted_listing(&path);
    let api = api_of(&dir.credentials);
    let server = FixtureServer::start().await;
    let http = client(Duration::from_secs(5));
    let mut cases: BTreeMap<&str, Expect> = dir.cases.into_iter().collect();
    let mut failures = Vec::new();
    let mut covered = 0;

    for skipped in dir.skip {
        assert!(
            listing.iter().any(|f| f == skipped),
            "{}/{skipped} is skipped but does not exist",
            dir.rel
        );
    }
    for (n, file) in listing.iter().enumerate() {
        if dir.skip.contains(&file.as_str()) {
            continue;
        }
        let Some(expect) = cases.remove(file.as_str()) else {
            failures.push(format!("{}/{file}: no expectation (not covered)", dir.rel));
            continue;
        };
        let Some(status) = status_from_name(file) else {
            failures.push(format!("{}/{file}: no status in the file name", dir.rel));
            continue;
        };
        let consistent = match (&expect, status) {
            (Expect::Ready(_), 200..=299) => true,
            (Expect::Retry(_), 408 | 425 | 429 | 500..=599) => true,
            (Expect::Failed(_), 300..=499) => !matches!(status, 408 | 425 | 429),
            _ => false,
        };
        if !consistent {
            failures.push(format!(
                "{}/{file}: the expectation does not fit status {status}",
                dir.rel
            ));
            continue;
        }
        let body = std::fs::read(path.join(file)).unwrap();
        let retry_after = (status == 429).then_some("3");
        let id = format!("{n}.{}", file.trim_end_matches(".json"));
        server.answer_json(api, &id, status, body, retry_after);

        let outcome = fetch(&http, &server.endpoints(), &dir.credentials, &id).await;
        let problem = match (expect, outcome) {
            (Expect::Ready(check), FetchOutcome::Ready(signals)) => {
                catch_unwind(AssertUnwindSafe(|| check(&signals)))
                    .err()
                    .map(|p| format!("mapped signals: {}", panic_text(p)))
            }
            (Expect::Failed(want), FetchOutcome::Failed { reason }) => {
                (reason != want).then(|| format!("Failed reason {reason:?}, want {want:?}"))
            }
            (Expect::Retry(want), FetchOutcome::Retry { reason, not_before }) => {
                let want_wait = (status == 429).then_some(Duration::from_secs(3));
                if reason != want {
                    Some(format!("Retry reason {reason:?}, want {want:?}"))
                } else if not_before != want_wait {
                    Some(format!("not_before {not_before:?}, want {want_wait:?}"))
                } else {
                    None
                }
            }
            (Expect::Ready(_), other) => Some(format!("want Ready, got {other:?}")),
            (Expect::Failed(want), other) => Some(format!("want Failed({want:?}), got {other:?}")),
            (Expect::Retry(want), other) => Some(format!("want Retry({want:?}), got {other:?}")),
        };
        let calls: Vec<_> = server
            .received()
            .into_iter()
            .filter(|r| r.matched.as_ref() == Some(&(api, id.clone())))
            .collect();
        let problem = problem.or_else(|| {
            (calls.len() != 1).then(|| format!("{} well-shaped calls, want 1", calls.len()))
        });
        match problem {
            Some(problem) => failures.push(format!("{}/{file} ({status}): {problem}", dir.rel)),
            None => covered += 1,
        }
    }
    for stale in cases.keys() {
        failures.push(format!(
            "{}/{stale}: expectation for a file that does not exist",
            dir.rel
        ));
    }
    let refused: Vec<_> = server
        .received()
        .into_iter()
        .filter_map(|r| {
            r.shape_error
                .map(|e| format!("{} {}: {e}", r.method, r.raw_path))
        })
        .collect();
    failures.extend(refused);
    assert!(
        failures.is_empty(),
        "{} of {} fixture files went wrong:\n{}",
        failures.len(),
        listing.len() - dir.skip.len(),
        failures.join("\n")
    );
    assert_eq!(covered, listing.len() - dir.skip.len());
    covered
}

/// What every full device event in Fingerprint's samples says.
fn fingerprint_sample_device(s: &DeviceSignals) {
    assert_eq!(s.visitor_id.as_deref(), Some("Ibk1527CUFmcnjLwIs4A9"));
    assert_eq!(s.confidence, Some(0.97));
    assert_eq!(s.ip_address.as_deref(), Some("61.127.217.15"));
    assert_eq!(s.ip_country.as_deref(), Some("CZ"));
    assert_eq!(s.ip_asn.as_deref(), Some("7922"));
    assert_eq!(s.ip_asn_name.as_deref(), Some("COMCAST-7922"));
}

fn events_1h(s: &DeviceSignals) -> Option<i64> {
    s.velocity.as_ref().and_then(|v| v.events_1h)
}

fn fingerprint_v3_dir() -> FixtureDir {
    FixtureDir {
        rel: "fingerprint/v3",
        credentials: fingerprint("v3"),
        skip: &["webhook.json"],
        cases: vec![
            (
                "get_event_200.json",
                Expect::Ready(|s| {
                    fingerprint_sample_device(s);
                    assert_eq!(s.bot.as_deref(), Some("not_detected"));
                    assert_eq!(s.proxy, Some(true));
                    assert_eq!(s.vpn, Some(false));
                    assert_eq!(s.incognito, Some(false));
                    assert_eq!(s.event_time, Some(1_582_299_576_512));
                    assert_eq!(events_1h(s), Some(5));
                    assert!(s.partial_errors.is_empty(), "{:?}", s.partial_errors);
                }),
            ),
            (
                "get_event_200_all_errors.json",
                Expect::Ready(|s| {
                    assert_eq!(s.visitor_id, None);
                    assert_eq!(s.bot, None);
                    assert_eq!(s.ip_address, None);
                    assert_eq!(s.partial_errors.len(), 24, "{:?}", s.partial_errors);
                    assert!(s
                        .partial_errors
                        .contains(&"identification: Failed".to_owned()));
                    assert!(s.partial_errors.contains(&"botd: Failed".to_owned()));
                }),
            ),
            (
                "get_event_200_all_errors_latest_spec.json",
                Expect::Ready(|s| {
                    assert_eq!(s.visitor_id, None);
                    assert_eq!(s.bot, None);
                    assert_eq!(s.partial_errors.len(), 26, "{:?}", s.partial_errors);
                    assert!(s
                        .partial_errors
                        .contains(&"identification: Failed".to_owned()));
                    assert!(s.partial_errors.contains(&"rareDevice: Failed".to_owned()));
                }),
            ),
            (
                "get_event_200_botd_failed_error.json",
                Expect::Ready(|s| {
                    assert_eq!(s.visitor_id.as_deref(), Some("Ibk1527CUFmcnjLwIs4A9"));
                    assert_eq!(s.confidence, Some(0.97));
                    assert_eq!(s.bot, None);
                    assert_eq!(s.partial_errors, ["botd: Failed"]);
                }),
            ),
            (
                "get_event_200_extra_fields.json",
                Expect::Ready(|s| {
                    assert_eq!(s.visitor_id.as_deref(), Some("Ibk1527CUFmcnjLwIs4A9"));
                    assert_eq!(s.bot.as_deref(), Some("not_detected"));
                    assert_eq!(s.ip_address.as_deref(), Some("61.127.217.15"));
                    assert_eq!(s.ip_country.as_deref(), Some("DE"));
                    assert!(s.partial_errors.is_empty(), "{:?}", s.partial_errors);
                }),
            ),
            (
                "get_event_200_identification_failed_error.json",
                Expect::Ready(|s| {
                    assert_eq!(s.visitor_id, None);
                    assert_eq!(s.bot.as_deref(), Some("bad"));
                    assert_eq!(s.bot_type.as_deref(), Some("headless_chrome"));
                    assert_eq!(s.partial_errors, ["identification: Failed"]);
                }),
            ),
            (
                "get_event_200_latest_spec.json",
                Expect::Ready(|s| {
                    fingerprint_sample_device(s);
                    assert_eq!(s.bot.as_deref(), Some("not_detected"));
                    assert_eq!(s.virtual_machine, Some(true));
                    assert_eq!(events_1h(s), Some(5));
                    assert!(s.partial_errors.is_empty(), "{:?}", s.partial_errors);
                }),
            ),
            (
                "get_event_200_too_many_requests_error.json",
                Expect::Ready(|s| {
                    assert_eq!(s.visitor_id, None);
                    assert_eq!(s.bot, None);
                    assert_eq!(
                        s.partial_errors,
                        [
                            "botd: TooManyRequests",
                            "identification: 429 Too Many Requests"
                        ]
                    );
                }),
            ),
            (
                "get_event_200_with_broken_format.json",
                Expect::Ready(|s| {
                    fingerprint_sample_device(s);
                    assert_eq!(s.bot.as_deref(), Some("not_detected"));
                    assert_eq!(s.proxy, Some(true));
                    assert_eq!(s.event_time, Some(1_582_299_576_512));
                }),
            ),
            (
                "get_event_200_with_unknown_field.json",
                Expect::Ready(|s| {
                    fingerprint_sample_device(s);
                    assert_eq!(s.proxy, Some(false));
                    assert!(s.partial_errors.is_empty(), "{:?}", s.partial_errors);
                }),
            ),
            (
                "error_403_subscription_not_active.json",
                Expect::Failed("403 SubscriptionNotActive: forbidden"),
            ),
            (
                "get_event_403_token_not_found.json",
                Expect::Failed("403 TokenNotFound: secret key is not found"),
            ),
            (
                "get_event_403_token_required.json",
                Expect::Failed("403 TokenRequired: secret key is required"),
            ),
            (
                "get_event_403_wrong_region.json",
                Expect::Failed("403 WrongRegion: wrong region"),
            ),
            (
                "get_event_404_request_not_found.json",
                Expect::Failed("404 RequestNotFound: request id is not found"),
            ),
            (
                "error_429_too_many_requests.json",
                Expect::Retry("429 TooManyRequests: too many requests"),
            ),
            (
                "error_429_too_many_requests_plain.json",
                Expect::Retry("429 too many requests"),
            ),
        ],
    }
}

fn fingerprint_v4_dir() -> FixtureDir {
    FixtureDir {
        rel: "fingerprint/v4",
        credentials: fingerprint("v4"),
        skip: &["webhook_event.json"],
        cases: vec![
            (
                "get_event_200.json",
                Expect::Ready(|s| {
                    fingerprint_sample_device(s);
                    assert_eq!(s.bot.as_deref(), Some("not_detected"));
                    assert_eq!(s.proxy, Some(true));
                    assert_eq!(s.vpn, Some(false));
                    assert_eq!(s.incognito, Some(false));
                    assert_eq!(s.event_time, Some(1_708_102_555_327));
                    assert_eq!(events_1h(s), Some(5));
                    assert_eq!(s.provider_verdict, None);
                    assert!(s.partial_errors.is_empty(), "{:?}", s.partial_errors);
                }),
            ),
            (
                "get_event_200_with_bot_info.json",
                Expect::Ready(|s| {
                    fingerprint_sample_device(s);
                    assert_eq!(s.bot.as_deref(), Some("good"));
                    assert_eq!(s.bot_type.as_deref(), Some("chatgpt_agent"));
                }),
            ),
            (
                "get_event_200_with_edge.json",
                Expect::Ready(|s| {
                    assert_eq!(s.visitor_id, None);
                    assert_eq!(s.bot_type.as_deref(), Some("ChatGPT Agent"));
                    assert_eq!(s.ip_address.as_deref(), Some("104.210.139.192"));
                    assert_eq!(s.ip_country.as_deref(), Some("US"));
                    assert_eq!(s.ip_asn.as_deref(), Some("8075"));
                    assert_eq!(s.ip_datacenter, Some(true));
                    assert_eq!(s.event_time, Some(1_758_130_560_902));
                }),
            ),
            (
                "get_event_200_with_ruleset.json",
                Expect::Ready(|s| {
                    fingerprint_sample_device(s);
                    assert_eq!(s.provider_verdict.as_deref(), Some("block"));
                    assert_eq!(s.verdict_reasons, ["r_uE0af8497PFAOD"]);
                }),
            ),
            (
                "get_event_200_with_unknown_field.json",
                Expect::Ready(|s| {
                    fingerprint_sample_device(s);
                    assert_eq!(s.bot.as_deref(), Some("not_detected"));
                    assert_eq!(s.proxy, Some(true));
                    assert_eq!(s.event_time, Some(1_708_102_555_327));
                }),
            ),
            (
                "get_event_400_event_id_invalid.json",
                Expect::Failed("400 request_cannot_be_parsed: invalid event_id"),
            ),
            (
                "get_event_400_ruleset_not_found.json",
                Expect::Failed("400 ruleset_not_found: ruleset not found"),
            ),
            (
                "error_403_subscription_not_active.json",
                Expect::Failed("403 subscription_not_active: forbidden"),
            ),
            (
                "error_403_wrong_region.json",
                Expect::Failed("403 wrong_region: wrong region"),
            ),
            (
                "get_event_403_secret_api_key_not_found.json",
                Expect::Failed(
                    "403 secret_api_key_not_found: no fingerprint workspace found for specified secret API key",
                ),
            ),
            (
                "get_event_403_secret_api_key_required.json",
                Expect::Failed(
                    "403 secret_api_key_required: secret API key in header is missing or empty",
                ),
            ),
            (
                "get_event_404_event_not_found.json",
                Expect::Failed("404 event_not_found: event id not found"),
            ),
            (
                "get_event_429_too_many_requests.json",
                Expect::Retry("429 too_many_requests: too many requests"),
            ),
            (
                "get_event_429_too_many_search_requests.json",
                Expect::Retry("429 too_many_requests: too many search requests"),
            ),
            (
                "get_event_500_internal_server_error.json",
                Expect::Retry("500 failed: internal server error"),
            ),
            (
                "get_event_504_search_timeout_exceeded.json",
                Expect::Retry("504 failed: gateway timeout"),
            ),
        ],
    }
}

fn stytch_dir() -> FixtureDir {
    FixtureDir {
        rel: "stytch",
        credentials: stytch(),
        skip: &[],
        cases: vec![
            (
                "lookup_200.json",
                Expect::Ready(|s| {
                    assert_eq!(
                        s.visitor_id.as_deref(),
                        Some("visitor-fingerprint-2c9a5e8b-1f7d-4b3e-8a60-4e1d7c9b2f05")
                    );
                    assert_eq!(s.provider_verdict.as_deref(), Some("allow"));
                    assert_eq!(s.verdict_reasons, ["KNOWN_DEVICE"]);
                    assert_eq!(s.tampering, Some(false));
                    assert_eq!(s.vpn, Some(false));
                    assert_eq!(s.ip_address.as_deref(), Some("203.0.113.42"));
                    assert_eq!(s.ip_country.as_deref(), Some("US"));
                    assert_eq!(s.event_time, Some(1_772_460_309_000));
                }),
            ),
            (
                "lookup_200_block.json",
                Expect::Ready(|s| {
                    assert_eq!(
                        s.visitor_id.as_deref(),
                        Some("visitor-fingerprint-6b0e8d3a-c5f1-4972-a1d8-7e3c4b9f0a25")
                    );
                    assert_eq!(s.provider_verdict.as_deref(), Some("block"));
                    assert_eq!(s.bot.as_deref(), Some("bad"));
                    assert_eq!(s.bot_type.as_deref(), Some("headless_browser_automation"));
                    assert_eq!(s.virtual_machine, Some(true));
                    assert_eq!(s.tampering, Some(true));
                    assert_eq!(s.vpn, Some(true));
                    assert_eq!(s.ip_address.as_deref(), Some("198.51.100.23"));
                    assert_eq!(s.ip_country.as_deref(), Some("DE"));
                }),
            ),
            (
                "lookup_200_challenge.json",
                Expect::Ready(|s| {
                    assert_eq!(
                        s.visitor_id.as_deref(),
                        Some("visitor-fingerprint-d7f2b9e4-6a0c-4c31-8e5b-3a1f7d9c0b62")
                    );
                    assert_eq!(s.provider_verdict.as_deref(), Some("challenge"));
                    assert_eq!(
                        s.verdict_reasons,
                        ["VIRTUAL_MACHINE", "SMART_RATE_LIMIT_WARNING"]
                    );
                    assert_eq!(s.virtual_machine, Some(true));
                    assert_eq!(s.bot, None);
                    assert_eq!(s.ip_address.as_deref(), Some("192.0.2.77"));
                }),
            ),
            (
                "error_404_telemetry_id_not_found.json",
                Expect::Failed(
                    "404 telemetry_id_not_found: The telemetry ID could not be found. \
                     Check that it was returned by the client SDK and has not expired.",
                ),
            ),
        ],
    }
}

fn fingerprintiq_dir() -> FixtureDir {
    FixtureDir {
        rel: "fingerprintiq",
        credentials: fingerprintiq(),
        skip: &[],
        cases: vec![
            (
                "get_event_200.json",
                Expect::Ready(|s| {
                    assert_eq!(
                        s.visitor_id.as_deref(),
                        Some("iq_01hns3k6tez83695a6t714s6n1")
                    );
                    assert_eq!(s.confidence, Some(0.97));
                    assert_eq!(s.bot_probability, Some(0.05));
                    assert_eq!(s.bot.as_deref(), Some("not_detected"));
                    assert_eq!(s.vpn, Some(false));
                    assert_eq!(s.ip_address.as_deref(), Some("203.0.113.42"));
                    assert_eq!(s.ip_country.as_deref(), Some("US"));
                    assert_eq!(s.event_time, Some(1_712_000_003_000));
                    assert_eq!(events_1h(s), Some(3));
                }),
            ),
            (
                "identify_lookup_200_sdk_test.json",
                Expect::Ready(|s| {
                    assert_eq!(s.visitor_id.as_deref(), Some("iq_abc123"));
                    assert_eq!(s.confidence, Some(0.97));
                    assert_eq!(s.bot_probability, Some(0.02));
                    assert_eq!(s.ip_country.as_deref(), Some("US"));
                }),
            ),
            (
                "error_404_event_not_found.json",
                Expect::Failed("404 Event not found"),
            ),
        ],
    }
}

async fn every_fingerprint_v3_fixture_through_fetch() {
    assert_eq!(run_fixture_dir(fingerprint_v3_dir()).await, 17);
}

async fn every_fingerprint_v4_fixture_through_fetch() {
    assert_eq!(run_fixture_dir(fingerprint_v4_dir()).await, 16);
}

async fn every_stytch_fixture_through_fetch() {
    assert_eq!(run_fixture_dir(stytch_dir()).await, 4);
}

async fn every_fingerprintiq_fixture_through_fetch() {
    assert_eq!(run_fixture_dir(fingerprintiq_dir()).await, 3);
}

/// No fixture directory or file can escape the tests above: every file under
/// `fixtures/providers/` (but the notes) is in one of their directories and
/// is either given an expectation or a named skip.
fn every_fixture_file_belongs_to_a_tested_directory() {
    let dirs = [
        fingerprint_v3_dir(),
        fingerprint_v4_dir(),
        stytch_dir(),
        fingerprintiq_dir(),
    ];
    let mut known: HashSet<String> = HashSet::new();
    for dir in &dirs {
        for (file, _) in &dir.cases {
            known.insert(format!("{}/{file}", dir.rel));
        }
        for file in dir.skip {
            known.insert(format!("{}/{file}", dir.rel));
        }
    }
    let root = fixtures_root();
    let mut pending = vec![root.clone()];
    let mut files = Vec::new();
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let rel = path.strip_prefix(&root).unwrap().to_str().unwrap();
                files.push(rel.replace('\\', "/"));
            }
        }
    }
    files.retain(|f| f != "SOURCES.md");
    let unknown: Vec<_> = files.iter().filter(|f| !known.contains(*f)).collect();
    assert!(unknown.is_empty(), "fixtures no test covers: {unknown:?}");
    assert_eq!(files.len(), known.len(), "{files:?}");
    let skipped: usize = dirs.iter().map(|d| d.skip.len()).sum();
    assert_eq!(files.len() - skipped, 40, "API answers covered");
}

fn statuses_come_from_the_file_names() {
    for (file, status) in [
        ("get_event_200_with_broken_format.json", 200),
        ("error_403_subscription_not_active.json", 403),
        ("get_event_404_event_not_found.json", 404),
        ("get_event_400_event_id_invalid.json", 400),
        ("error_429_too_many_requests_plain.json", 429),
        ("get_event_500_internal_server_error.json", 500),
        ("get_event_504_search_timeout_exceeded.json", 504),
        ("lookup_200.json", 200),
        ("identify_lookup_200_sdk_test.json", 200),
    ] {
        assert_eq!(status_from_name(file), Some(status), "{file}");
    }
    assert_eq!(status_from_name("webhook.json"), None);
}

// ---------------------------------------------------------------------------
// Call shapes.

fn fixture(rel: &str) -> Vec<u8> {
    let path = fixtures_root().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ok_fixture(api: Api) -> Vec<u8> {
    fixture(match api {
        Api::FingerprintV4 => "fingerprint/v4/get_event_200.json",
        Api::FingerprintV3 => "fingerprint/v3/get_event_200.json",
        Api::Stytch => "stytch/lookup_200.json",
        Api::Fingerprintiq => "fingerprintiq/get_event_200.json",
    })
}

/// Serves the provider's 200 fixture for `id`, calls `fetch`, asserts
/// `Ready` and returns what the server received.
async fn call_once(credentials: &Credentials, id: &str) -> Received {
    let server = FixtureServer::start().await;
    let api = api_of(credentials);
    server.answer_json(api, id, 200, ok_fixture(api), None);
    let outcome = fetch(
        &client(Duration::from_secs(5)),
        &server.endpoints(),
        credentials,
        id,
    )
    .await;
    assert!(
        matches!(outcome, FetchOutcome::Ready(_)),
        "{api:?} {id:?}: {outcome:?}"
    );
    server.only_call(api, id)
}

fn header<'a>(r: &'a Received, name: &str) -> Option<&'a str> {
    r.headers.get(name).map(|v| v.to_str().unwrap())
}

async fn fingerprint_v4_call_shape() {
    let r = call_once(&fingerprint("v4"), "1708102555327.NLOjmg").await;
    assert_eq!(r.method, Method::GET);
    assert_eq!(r.raw_path, "/v4/events/1708102555327.NLOjmg");
    assert_eq!(r.query, None);
    assert_eq!(
        header(&r, "authorization"),
        Some(format!("Bearer {FP_SECRET}").as_str())
    );
    assert_eq!(header(&r, "auth-api-key"), None);
    assert!(r.body.is_empty());
}

async fn fingerprint_v3_call_shape() {
    let r = call_once(&fingerprint("v3"), "1708102555327.NLOjmg").await;
    assert_eq!(r.method, Method::GET);
    assert_eq!(r.raw_path, "/events/1708102555327.NLOjmg");
    assert_eq!(r.query, None);
    assert_eq!(header(&r, "auth-api-key"), Some(FP_SECRET));
    assert_eq!(header(&r, "authorization"), None);
    assert!(r.body.is_empty());
}

async fn stytch_call_shape() {
    let id = "telemetry-id-test-1f2e3d4c";
    let r = call_once(&stytch(), id).await;
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.raw_path, "/v1/fingerprint/lookup");
    assert_eq!(r.query, None);
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{STYTCH_PROJECT}:{STYTCH_SECRET}"));
    assert_eq!(
        header(&r, "authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert!(header(&r, "content-type")
        .unwrap()
        .starts_with("application/json"));
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body, serde_json::json!({ "telemetry_id": id }));
}

async fn fingerprintiq_call_shape() {
    let r = call_once(&fingerprintiq(), "req_01hns3k6tez83695a6t7").await;
    assert_eq!(r.method, Method::GET);
    assert_eq!(r.raw_path, "/v1/events/req_01hns3k6tez83695a6t7");
    assert_eq!(r.query, None);
    assert!(FIQ_SECRET.starts_with("fiq_secret_"));
    assert_eq!(
        header(&r, "authorization"),
        Some(format!("Bearer {FIQ_SECRET}").as_str())
    );
    assert_eq!(header(&r, "auth-api-key"), None);
    assert!(r.body.is_empty());
}

/// An id with `/`, spaces and URL delimiters arrives percent-encoded as ONE
/// path segment (the server matches exactly one segment after the prefix and
/// decodes it back to the id); Stytch gets it verbatim in the JSON body.
async fn odd_ids_arrive_as_one_encoded_path_segment() {
    let id = "evt/1 2?x=y#frag%41/..";
    let encoded = "evt%2F1%202%3Fx=y%23frag%2541%2F..";
    for (credentials, prefix) in [
        (fingerprint("v4"), "/v4/events/"),
        (fingerprint("v3"), "/events/"),
        (fingerprintiq(), "/v1/events/"),
    ] {
        let r = call_once(&credentials, id).await;
        assert_eq!(r.raw_path, format!("{prefix}{encoded}"), "{credentials:?}");
        assert_eq!(r.query, None, "{credentials:?}");
        assert_eq!(percent_decode(encoded).unwrap(), id);
    }
    let r = call_once(&stytch(), id).await;
    assert_eq!(r.raw_path, "/v1/fingerprint/lookup");
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["telemetry_id"], id);
}

/// The server really refuses wrong call shapes (so the tests above could
/// fail), and serves the fixture bytes unchanged.
async fn the_test_server_is_strict_and_serves_bytes_verbatim() {
    let server = FixtureServer::start().await;
    let body = fixture("fingerprint/v4/get_event_200.json");
    server.answer_json(Api::FingerprintV4, "e1", 200, body.clone(), None);
    server.answer_json(Api::FingerprintV3, "e1", 200, body.clone(), None);
    server.answer_json(Api::Stytch, "e1", 200, body.clone(), None);
    let http = client(Duration::from_secs(5));
    let url = |path: &str| server.base.join(path).unwrap();

    let ok = http
        .get(url("v4/events/e1"))
        .bearer_auth(FP_SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.bytes().await.unwrap().to_vec(), body, "byte for byte");

    let basic_ok = http
        .post(url("v1/fingerprint/lookup"))
        .basic_auth(STYTCH_PROJECT, Some(STYTCH_SECRET))
        .json(&serde_json::json!({ "telemetry_id": "e1" }));
    assert_eq!(basic_ok.send().await.unwrap().status(), 200);

    let wrong = [
        // wrong key
        http.get(url("v4/events/e1")).bearer_auth("other"),
        // v3 header on the v4 path
        http.get(url("v4/events/e1"))
            .bearer_auth(FP_SECRET)
            .header("Auth-API-Key", FP_SECRET),
        // v4 header on the v3 path
        http.get(url("events/e1")).bearer_auth(FP_SECRET),
        // POST where GET is due
        http.post(url("v4/events/e1")).bearer_auth(FP_SECRET),
        // a query string
        http.get(url("v4/events/e1?x=1")).bearer_auth(FP_SECRET),
        // the id split over two segments
        http.get(url("v4/events/e/1")).bearer_auth(FP_SECRET),
        // Stytch with a bearer token
        http.post(url("v1/fingerprint/lookup"))
            .bearer_auth(STYTCH_SECRET)
            .json(&serde_json::json!({ "telemetry_id": "e1" })),
        // Stytch with another body field
        http.post(url("v1/fingerprint/lookup"))
            .basic_auth(STYTCH_PROJECT, Some(STYTCH_SECRET))
            .json(&serde_json::json!({ "telemetry_id": "e1", "x": 1 })),
        // Stytch with the id under another name
        http.post(url("v1/fingerprint/lookup"))
            .basic_auth(STYTCH_PROJECT, Some(STYTCH_SECRET))
            .json(&serde_json::json!({ "id": "e1" })),
    ];
    for (n, request) in wrong.into_iter().enumerate() {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 418, "case {n}");
    }
    let refused = server
        .received()
        .iter()
        .filter(|r| r.shape_error.is_some())
        .count();
    assert_eq!(refused, 9);
}

// ---------------------------------------------------------------------------
// Transport failures and odd answers.

fn assert_retry(outcome: FetchOutcome, want: &str, context: &str) {
    match outcome {
        FetchOutcome::Retry { reason, not_before } => {
            assert_eq!(reason, want, "{context}");
            assert_eq!(not_before, None, "{context}");
        }
        other => panic!("{context}: want Retry({want:?}), got {other:?}"),
    }
}

/// Accepts connections and answers nothing.
async fn silent_server() -> (Url, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held: Vec<TcpStream> = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (Url::parse(&format!("http://{addr}/")).unwrap(), task)
}

async fn a_server_that_never_answers_is_a_timeout_retry() {
    let (base, task) = silent_server().await;
    let http = client(Duration::from_millis(300));
    for credentials in all_credentials() {
        let started = Instant::now();
        let outcome = fetch(&http, &endpoints_at(&base), &credentials, "evt-1").await;
        let took = started.elapsed();
        assert_retry(outcome, "timeout", &format!("{credentials:?}"));
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_secs(3),
            "{credentials:?}: {took:?}"
        );
    }
    task.abort();
}

async fn a_closed_port_is_a_connect_error_retry() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    let http = client(Duration::from_secs(5));
    for credentials in all_credentials() {
        let outcome = fetch(&http, &endpoints_at(&base), &credentials, "evt-1").await;
        assert_retry(outcome, "connect error", &format!("{credentials:?}"));
    }
}

/// Reads one request head, sends a 200 head promising 1000 body bytes and
/// only 1 of them, then holds the connection (`hold`) or closes it.
async fn truncating_server(hold: bool) -> (Url, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{",
                )
                .await;
            let _ = socket.flush().await;
            if hold {
                held.push(socket);
            }
        }
    });
    (Url::parse(&format!("http://{addr}/")).unwrap(), task)
}

async fn a_body_that_stops_coming_is_a_timeout_retry() {
    let (base, task) = truncating_server(true).await;
    let http = client(Duration::from_millis(300));
    for credentials in all_credentials() {
        let outcome = fetch(&http, &endpoints_at(&base), &credentials, "evt-1").await;
        assert_retry(outcome, "timeout reading body", &format!("{credentials:?}"));
    }
    task.abort();
}

async fn a_connection_cut_mid_body_is_a_network_error_retry() {
    let (base, task) = truncating_server(false).await;
    let http = client(Duration::from_secs(5));
    for credentials in all_credentials() {
        let outcome = fetch(&http, &endpoints_at(&base), &credentials, "evt-1").await;
        assert_retry(
            outcome,
            "network error reading body",
            &format!("{credentials:?}"),
        );
    }
    task.abort();
}

async fn a_200_that_is_not_an_event_is_failed() {
    let server = FixtureServer::start().await;
    let http = client(Duration::from_secs(5));
    let bodies: [(&str, &'static str, &[u8]); 3] = [
        (
            "html",
            "text/html",
            b"<html><body><h1>Welcome to nginx!</h1></body></html>",
        ),
        ("empty", "application/json", b""),
        ("no-event", "application/json", b"{\"ok\":true}"),
    ];
    for credentials in all_credentials() {
        let api = api_of(&credentials);
        let provider = credentials.provider().as_str();
        for (id, content_type, body) in bodies {
            server.answer(
                api,
                id,
                Reply {
                    status: 200,
                    content_type,
                    body: body.to_vec(),
                    retry_after: None,
                },
            );
            let outcome = fetch(&http, &server.endpoints(), &credentials, id).await;
            match outcome {
                FetchOutcome::Failed { reason } => assert!(
                    reason.starts_with(&format!("unreadable {provider} answer: ")),
                    "{api:?} {id}: {reason}"
                ),
                other => panic!("{api:?} {id}: want Failed, got {other:?}"),
            }
        }
    }
}

/// `Retry-After` is honoured on every retryable status, as seconds or as an
/// HTTP date, and absent means no minimum wait.
async fn retry_after_reaches_the_outcome() {
    let server = FixtureServer::start().await;
    let http = client(Duration::from_secs(5));
    let credentials = fingerprint("v4");
    let body = fixture("fingerprint/v4/get_event_429_too_many_requests.json");
    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(60));
    let cases = [
        ("a", 429, None, None),
        ("b", 503, Some("7"), Some((7, 7))),
        ("c", 429, Some(date.as_str()), Some((50, 60))),
        ("d", 429, Some("soon"), None),
    ];
    for (id, status, header, want) in cases {
        server.answer_json(Api::FingerprintV4, id, status, body.clone(), header);
        let outcome = fetch(&http, &server.endpoints(), &credentials, id).await;
        let FetchOutcome::Retry { reason, not_before } = outcome else {
            panic!("{id}: want Retry, got {outcome:?}");
        };
        assert!(reason.starts_with(&format!("{status} ")), "{id}: {reason}");
        match want {
            None => assert_eq!(not_before, None, "{id}"),
            Some((low, high)) => {
                let wait = not_before.unwrap_or_else(|| panic!("{id}: no not_before"));
                assert!(
                    wait >= Duration::from_secs(low) && wait <= Duration::from_secs(high),
                    "{id}: {wait:?}"
                );
            }
        }
    }
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        tokio => [
            every_fingerprint_v3_fixture_through_fetch,
            every_fingerprint_v4_fixture_through_fetch,
            every_stytch_fixture_through_fetch,
            every_fingerprintiq_fixture_through_fetch,
            fingerprint_v4_call_shape,
            fingerprint_v3_call_shape,
            stytch_call_shape,
            fingerprintiq_call_shape,
            odd_ids_arrive_as_one_encoded_path_segment,
            the_test_server_is_strict_and_serves_bytes_verbatim,
            a_server_that_never_answers_is_a_timeout_retry,
            a_closed_port_is_a_connect_error_retry,
            a_body_that_stops_coming_is_a_timeout_retry,
            a_connection_cut_mid_body_is_a_network_error_retry,
            a_200_that_is_not_an_event_is_failed,
            retry_after_reaches_the_outcome,
        ],
        sync => [
            every_fixture_file_belongs_to_a_tested_directory,
            statuses_come_from_the_file_names,
        ],
    }
}
