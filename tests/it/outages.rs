//! Backend outages degrade the service, never hang it: a Redis of the test's
//! own is stopped under a running server (scores go on, marked `degraded`;
//! ingests are still accepted), and PostgreSQL is cut off behind a TCP proxy
//! of the test's own (writes answer `503` with `Retry-After`, and nothing that
//! was acknowledged is lost). Both recover without a restart. The shared
//! servers are never stopped.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use riskgate::config::ServeConfig;
use riskgate::store::{DatabaseUrl, JobKind};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::common::trials::{trials, Server};
use crate::common::{
    fresh_db, postgres_base_url, read, Backend, TestApp, ADMIN_TOKEN, NO_PROVIDER, SECRETS_KEY,
};

pub fn trials() -> Vec<libtest_mimic::Trial> {
    trials! {
        tokio.threads(4).needs(Server::Postgres) => [
            redis_down_scores_degraded_and_ingests_accepted,
            database_cut_answers_503_and_loses_nothing,
        ],
    }
}

/// The hang detector: an answer slower than this means a wait was unbounded.
/// Not a speed figure (the measured maximum is printed).
const ANSWER_BOUND: Duration = Duration::from_secs(2);
const SUBSCRIBER: &str = "12";

/// A redis-server of this test's own, on a port of its own.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (see .ci/run)");
        let redis = Self {
            port,
            child: Some(child),
        };
        redis.wait_until_up();
        redis
    }

    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        Self::start_on(port)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn wait_until_up(&self) {
        use std::io::{Read, Write};
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pong = std::net::TcpStream::connect(("127.0.0.1", self.port)).and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_millis(500)))?;
                s.write_all(b"PING\r\n")?;
                let mut buf = [0u8; 7];
                s.read_exact(&mut buf)?;
                Ok(buf.starts_with(b"+PONG"))
            });
            if matches!(pong, Ok(true)) {
                return;
            }
            assert!(Instant::now() < deadline, "own redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills it (SIGKILL: the server vanishes as in a crash).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Timed {
    status: u16,
    body: Value,
    retry_after: Option<String>,
    took: Duration,
}

async fn send(app: &TestApp, method: Method, path: &str, key: &str, body: Option<Value>) -> Timed {
    let started = Instant::now();
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("X-API-Key", key);
    if let Some(body) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    let resp = req.send().await.unwrap();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (status, body) = read(resp).await;
    Timed {
        status,
        body,
        retry_after,
        took: started.elapsed(),
    }
}

fn ingest_body(request_id: &str) -> Value {
    json!({"request_id": request_id, "subscriber_id": SUBSCRIBER,
           "session_id": "sess-1", "user_id": "user-1"})
}

fn score_body(request_id: &str) -> Value {
    json!({"request_id": request_id, "subscriber_id": SUBSCRIBER, "payload": {
        "transaction_amount": "25.00", "currency": "USD",
        "user_id": "user-1", "session_id": "sess-1"}})
}

async fn ingest(app: &TestApp, key: &str, request_id: &str) -> Timed {
    send(
        app,
        Method::POST,
        "/fingerprint/ingest",
        key,
        Some(ingest_body(request_id)),
    )
    .await
}

async fn score(app: &TestApp, key: &str, request_id: &str) -> Timed {
    send(
        app,
        Method::POST,
        "/risk/bin/score",
        key,
        Some(score_body(request_id)),
    )
    .await
}

fn degraded(body: &Value) -> Vec<String> {
    body["input"]["degraded"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn readyz(app: &TestApp) -> Timed {
    let started = Instant::now();
    let resp = app.client.get(app.url("/readyz")).send().await.unwrap();
    let (status, body) = read(resp).await;
    Timed {
        status,
        body,
        retry_after: None,
        took: started.elapsed(),
    }
}

async fn metrics(app: &TestApp) -> String {
    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.text().await.unwrap()
}

/// The value of one series in the text exposition.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
}

async fn redis_down_scores_degraded_and_ingests_accepted() {
    let mut redis = OwnRedis::start();
    let url = redis.url();
    let app = TestApp::start_with(Backend::Postgres, |c| c.redis_url = Some(url)).await;
    let key = app.subscriber_with_key(SUBSCRIBER).await;

    let before = ingest(&app, &key, "r-0").await;
    assert_eq!(before.status, 202, "{}", before.body);
    let before = score(&app, &key, "r-0").await;
    assert_eq!(before.status, 200, "{}", before.body);
    assert!(degraded(&before.body).is_empty(), "{}", before.body);
    assert_eq!(readyz(&app).await.status, 200);

    redis.kill();
    let mut slowest = Duration::ZERO;
    for i in 1..=15 {
        let request_id = format!("r-{i}");
        let ingested = ingest(&app, &key, &request_id).await;
        assert_eq!(
            ingested.status, 202,
            "ingest without Redis: {}",
            ingested.body
        );
        // An ingested request id: its device comes from the database.
        let scored = score(&app, &key, &request_id).await;
        assert_eq!(scored.status, 200, "score without Redis: {}", scored.body);
        assert_eq!(degraded(&scored.body), ["velocity"], "{}", scored.body);
        // Never ingested: only the session pointer (in the cache) could name
        // the device, so the decision says it went without.
        let unknown = score(&app, &key, &format!("never-{i}")).await;
        assert_eq!(unknown.status, 200, "{}", unknown.body);
        assert_eq!(
            degraded(&unknown.body),
            ["device", "velocity"],
            "{}",
            unknown.body
        );
        let event = send(
            &app,
            Method::GET,
            &format!("/fingerprint/events/{request_id}"),
            &key,
            None,
        )
        .await;
        assert_eq!(event.status, 200, "event from the database: {}", event.body);
        for answer in [&ingested, &scored, &unknown, &event] {
            assert!(
                answer.took < ANSWER_BOUND,
                "an answer took {:?} with Redis down",
                answer.took
            );
            slowest = slowest.max(answer.took);
        }
    }
    let ready = readyz(&app).await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body, json!({"error": "Cache unavailable"}));
    assert!(ready.took < ANSWER_BOUND, "readyz took {:?}", ready.took);
    let text = metrics(&app).await;
    assert_eq!(
        series(&text, "riskgate_backend_up{backend=\"cache\"}"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        series(&text, "riskgate_backend_up{backend=\"velocity\"}"),
        Some(0.0)
    );
    assert_eq!(
        series(&text, "riskgate_backend_up{backend=\"store\"}"),
        Some(1.0)
    );
    assert!(
        series(&text, "riskgate_backend_errors_total{backend=\"cache\"}").unwrap_or(0.0) >= 1.0
    );
    assert!(
        series(&text, "riskgate_backend_errors_total{backend=\"velocity\"}").unwrap_or(0.0) >= 1.0
    );
    eprintln!("outage: slowest answer with Redis down {slowest:?}");

    // Every accepted ingest has its job.
    let store = app.store();
    for i in 1..=15 {
        let job = store
            .latest_job(SUBSCRIBER, JobKind::DeviceFetch.as_str(), &format!("r-{i}"))
            .await
            .unwrap();
        assert!(
            job.is_some(),
            "ingest r-{i} was answered 202 but has no job"
        );
    }

    let _redis = OwnRedis::start_on(redis.port);
    let back = Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let scored = score(&app, &key, &format!("back-{n}")).await;
        assert_eq!(scored.status, 200, "{}", scored.body);
        let ready = readyz(&app).await;
        if degraded(&scored.body).is_empty() && ready.status == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "not recovered 5 s after Redis came back: {}",
            scored.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = back.elapsed();
    let text = metrics(&app).await;
    assert_eq!(
        series(&text, "riskgate_backend_up{backend=\"cache\"}"),
        Some(1.0)
    );
    assert_eq!(
        series(&text, "riskgate_backend_up{backend=\"velocity\"}"),
        Some(1.0)
    );
    let after = ingest(&app, &key, "r-after").await;
    assert_eq!(after.status, 202);
    eprintln!("outage: recovered {recovered:?} after Redis came back");
    app.stop().await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Open,
    /// New connections are accepted and closed at once.
    Refuse,
    /// New connections are accepted and never answered.
    Stall,
}

/// Forwards one direction until either side closes; while `frozen`, what
/// arrives is swallowed and the connection stays open: a partition that
/// neither resets nor answers, which a statement timeout cannot see.
async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen.load(std::sync::atomic::Ordering::Acquire) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A TCP proxy in front of PostgreSQL that can cut every connection.
struct Proxy {
    addr: SocketAddr,
    link: Arc<Mutex<Link>>,
    frozen: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let link = Arc::new(Mutex::new(Link::Open));
        let conns = Arc::new(Mutex::new(Vec::<AbortHandle>::new()));
        let frozen = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (l, c, f) = (link.clone(), conns.clone(), frozen.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let mode = *l.lock().unwrap();
                let task = match mode {
                    Link::Refuse => {
                        drop(client);
                        continue;
                    }
                    Link::Stall => tokio::spawn(async move {
                        let mut buf = [0u8; 1024];
                        while client.read(&mut buf).await.is_ok_and(|n| n > 0) {}
                    }),
                    Link::Open => {
                        let frozen = f.clone();
                        tokio::spawn(async move {
                            if let Ok(server) = TcpStream::connect(upstream).await {
                                let (client_in, client_out) = client.into_split();
                                let (server_in, server_out) = server.into_split();
                                tokio::join!(
                                    forward(client_in, server_out, frozen.clone()),
                                    forward(server_in, client_out, frozen),
                                );
                            }
                        })
                    }
                };
                c.lock().unwrap().push(task.abort_handle());
            }
        })
        .abort_handle();
        Self {
            addr,
            link,
            frozen,
            conns,
            accept,
        }
    }

    /// Every open connection stops carrying anything but stays open; new
    /// ones are accepted and never answered.
    fn freeze(&self) {
        *self.link.lock().unwrap() = Link::Stall;
        self.frozen
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Closes every open connection; new ones get `link`.
    fn cut(&self, link: Link) {
        self.frozen
            .store(false, std::sync::atomic::Ordering::Release);
        *self.link.lock().unwrap() = link;
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
    }

    fn restore(&self) {
        *self.link.lock().unwrap() = Link::Open;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut(Link::Refuse);
        self.accept.abort();
    }
}

/// What the load saw answered.
#[derive(Default)]
struct Seen {
    ingested: Vec<String>,
    decided: Vec<String>,
    unavailable: usize,
    slowest_unavailable: Duration,
    /// When each 503 was asked for, and how long it took.
    unavailable_answers: Vec<(Instant, Duration)>,
    last_ok: Option<Instant>,
}

async fn database_cut_answers_503_and_loses_nothing() {
    let db = fresh_db(Backend::Postgres).await;
    let DatabaseUrl::Postgres { url: real } = db.url.clone() else {
        unreachable!()
    };
    let upstream = url::Url::parse(&postgres_base_url()).unwrap();
    let upstream: SocketAddr = tokio::net::lookup_host((
        upstream.host_str().unwrap().trim_matches(['[', ']']),
        upstream.port().unwrap_or(5432),
    ))
    .await
    .unwrap()
    .next()
    .unwrap();
    let proxy = Proxy::start(upstream).await;
    let mut proxied = url::Url::parse(&real).unwrap();
    proxied.set_ip_host(proxy.addr.ip()).unwrap();
    proxied.set_port(Some(proxy.addr.port())).unwrap();

    let mut config = ServeConfig::for_database(DatabaseUrl::Postgres {
        url: proxied.to_string(),
    });
    config.admin_token = Some(ADMIN_TOKEN.to_owned());
    config.db.secrets_key = Some(SECRETS_KEY.to_owned());
    let nowhere = url::Url::parse(NO_PROVIDER).ok();
    config.fingerprint_base_url = nowhere.clone();
    config.stytch_base_url = nowhere.clone();
    config.fingerprintiq_base_url = nowhere;
    let running = riskgate::app::start(&config, false)
        .await
        .expect("app starts");
    let app = Arc::new(TestApp {
        base: format!("http://{}", running.addr),
        running: Some(running),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        db,
    });
    let key = app.subscriber_with_key(SUBSCRIBER).await;

    // A steady client: one ingest and one score at a time, noting what was
    // acknowledged.
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (app, key, seen, stop) = (app.clone(), key.clone(), seen.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 5000 {
                i += 1;
                let request_id = format!("load-{i}");
                for answer in [
                    ingest(&app, &key, &request_id).await,
                    score(&app, &key, &request_id).await,
                ] {
                    let mut seen = seen.lock().unwrap();
                    match answer.status {
                        202 => seen.ingested.push(request_id.clone()),
                        200 => seen
                            .decided
                            .push(answer.body["decision_id"].as_str().unwrap().to_owned()),
                        503 => {
                            assert_eq!(
                                answer.retry_after.as_deref(),
                                Some("1"),
                                "503 without Retry-After"
                            );
                            assert!(answer.body["error"].is_string(), "{}", answer.body);
                            seen.unavailable += 1;
                            seen.slowest_unavailable = seen.slowest_unavailable.max(answer.took);
                            let asked = Instant::now().checked_sub(answer.took).unwrap();
                            seen.unavailable_answers.push((asked, answer.took));
                        }
                        other => panic!("database outage answered {other}: {}", answer.body),
                    }
                    if matches!(answer.status, 200 | 202) {
                        seen.last_ok = Some(Instant::now());
                    }
                    assert!(
                        answer.took < Duration::from_secs(5),
                        "an answer took {:?} during the database outage",
                        answer.took
                    );
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        seen.lock().unwrap().decided.len() > 3,
        "load runs before the cut"
    );
    // First a partition that keeps every connection open and answers
    // nothing; then connections refused; then new ones that hang.
    proxy.freeze();
    let cut = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    proxy.cut(Link::Refuse);
    tokio::time::sleep(Duration::from_secs(2)).await;
    proxy.cut(Link::Stall);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = seen.lock().unwrap().unavailable;
    assert!(during > 0, "the cut database answered no 503");
    // Once the circuit has seen the outage (a probe interval and its
    // timeout) and what was in flight has run out its bound (3 s), a 503
    // comes at once instead of after the pool's wait.
    let settled: Vec<Duration> = seen
        .lock()
        .unwrap()
        .unavailable_answers
        .iter()
        .filter(|(asked, _)| *asked > cut + Duration::from_millis(3500))
        .map(|(_, took)| *took)
        .collect();
    assert!(
        settled.len() > 10,
        "too few 503s after the circuit opened: {settled:?}"
    );
    let slow = settled
        .iter()
        .filter(|took| **took > Duration::from_millis(250))
        .count();
    assert_eq!(
        slow, 0,
        "503s slower than 250 ms with the circuit open: {settled:?}"
    );
    let cut_at_success = seen.lock().unwrap().last_ok;

    proxy.cut(Link::Open);
    proxy.restore();
    let back = Instant::now();
    loop {
        let ok = seen.lock().unwrap().last_ok;
        if ok.is_some_and(|at| at > back) {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "no success 10 s after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recovered = back.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    load.await.unwrap();
    assert!(cut_at_success.is_some());

    // Every acknowledged write is in the database, read past the proxy.
    let store = riskgate::store::connect(&app.db.url).await.unwrap();
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    for request_id in &seen.ingested {
        let job = store
            .latest_job(SUBSCRIBER, JobKind::DeviceFetch.as_str(), request_id)
            .await
            .unwrap();
        assert!(
            job.is_some(),
            "ingest {request_id} was answered 202 but has no job"
        );
    }
    for id in &seen.decided {
        let decision = store.get_decision(SUBSCRIBER, id).await.unwrap();
        assert!(
            decision.is_some(),
            "decision {id} was answered 200 but is not stored"
        );
    }
    eprintln!(
        "outage: {} ingests and {} decisions acknowledged, all stored; {} answered 503, slowest {:?}; \
         first success {recovered:?} after the database came back",
        seen.ingested.len(),
        seen.decided.len(),
        seen.unavailable,
        seen.slowest_unavailable,
    );
    store.close().await;
    drop(proxy);
    if let Ok(app) = Arc::try_unwrap(app) {
        app.stop().await;
    }
}
