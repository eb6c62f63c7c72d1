#![allow(clippy::unwrap_used, clippy::expect_used)]

//! Hardening fixes a user would notice, pinned: the CLI writing to the
//! database of a busy server, NUL bytes in paths, concurrent rule-set
//! versions, provider changes seen at once, a mismatched secrets key, a start
//! on a taken port, a client that never finishes its body, and request ids
//! that need percent-encoding.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::binary::{cli, cli_with_key, db_arg, Server};
use crate::common::{fresh_db, read, Backend, TestApp, ADMIN_TOKEN, SECRETS_KEY};
use reqwest::Method;
use riskgate::store::DatabaseUrl;
use serde_json::{json, Value};

/// Waits for a child that is expected to exit on its own; kills it and fails
/// the test when it is still running after `limit`.
fn wait_for_exit(mut child: Child, limit: Duration, what: &str) -> (bool, String, String) {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            return (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what}: still running after {limit:?}; stdout: {} stderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ingest_body(subscriber: Value, request_id: &str) -> Value {
    json!({"request_id": request_id, "subscriber_id": subscriber, "session_id": "sess-1", "user_id": "user@example.com"})
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_segment(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// 1. The operator CLI writes to the SQLite database of a server under ingest
///    load: neither side sees a lock error (no 500, no 503, no failed command).
async fn cli_writes_during_an_ingest_burst_on_sqlite_fail_nobody() {
    let db = fresh_db(Backend::Sqlite).await;
    // Providers unreachable at once: the worker's retries add their writes to
    // the contention instead of waiting on the network.
    let server = Server::start(
        &db.url,
        &[
            "--fingerprint-base-url",
            "http://127.0.0.1:1",
            "--fetch-connect-timeout",
            "1s",
        ],
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let admin = |method: Method, path: &str, body: Value| {
        client
            .request(method, format!("{}{path}", server.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let created = admin(
        Method::POST,
        "/admin/subscribers",
        json!({"id": 12, "name": "Acme"}),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201);
    let fp = admin(
        Method::PUT,
        "/admin/subscribers/12/providers/fingerprint",
        json!({"secret_key": "k"}),
    )
    .await
    .unwrap();
    assert_eq!(fp.status(), 200);
    let key: Value = admin(Method::POST, "/admin/subscribers/12/keys", json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = key["api_key"].as_str().unwrap().to_owned();

    const INGESTS: usize = 2000;
    const CONCURRENCY: usize = 32;
    const CLI_RUNS: usize = 30;
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut senders = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, base, key, next, failures) = (
            client.clone(),
            server.base.clone(),
            key.clone(),
            next.clone(),
            failures.clone(),
        );
        senders.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= INGESTS {
                    break;
                }
                let sent = client
                    .post(format!("{base}/fingerprint/ingest"))
                    .header("X-API-Key", &key)
                    .json(&ingest_body(json!(12), &format!("busy-{n}")))
                    .send()
                    .await;
                match sent {
                    Ok(resp) if resp.status() == 202 => {}
                    Ok(resp) => {
                        let status = resp.status();
                        let text = resp.text().await.unwrap_or_default();
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("ingest {n}: {status} {text}"));
                    }
                    Err(err) => failures.lock().unwrap().push(format!("ingest {n}: {err}")),
                }
            }
        }));
    }
    let url = db.url.clone();
    let burst = Instant::now();
    let operator = tokio::task::spawn_blocking(move || {
        let mut failed = Vec::new();
        for run in 0..CLI_RUNS {
            let (ok, created, err) = cli(&url, &["key", "create", "12"]);
            let issued = created["api_key"]
                .as_str()
                .is_some_and(|k| k.starts_with("rg_"));
            if !ok || !issued {
                failed.push(format!("key create #{run}: {err} {created}"));
            }
        }
        (failed, burst.elapsed())
    });
    for sender in senders {
        sender.await.unwrap();
    }
    let ingests_took = burst.elapsed();
    let (cli_failures, cli_took) = operator.await.unwrap();
    eprintln!("{INGESTS} ingests in {ingests_took:?}; {CLI_RUNS} CLI runs in {cli_took:?}");
    let failures = failures.lock().unwrap().clone();
    let log = server.stop();
    assert!(
        failures.is_empty(),
        "{} of {INGESTS} ingests not answered 202, e.g. {:?}\nserver log tail: {}",
        failures.len(),
        &failures[..failures.len().min(5)],
        tail(&log)
    );
    assert!(
        cli_failures.is_empty(),
        "{} of {CLI_RUNS} CLI runs failed: {:?}",
        cli_failures.len(),
        &cli_failures[..cli_failures.len().min(5)]
    );
    let (_, keys, _) = cli(&db.url, &["key", "list", "12"]);
    assert_eq!(
        keys["keys"].as_array().unwrap().len(),
        CLI_RUNS + 1,
        "every key the CLI printed was stored"
    );
}

fn tail(log: &str) -> String {
    let lines: Vec<_> = log.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// 2. A percent-encoded NUL in a path parameter (which PostgreSQL refuses in
///    text) is a 404, never a 500.
async fn nul_bytes_in_paths_are_not_found(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let rules = json!({"review_threshold": 0.4, "block_threshold": 0.8, "rules": []});
    let cases: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "/admin/subscribers/%00", None),
        (
            Method::PATCH,
            "/admin/subscribers/%00",
            Some(json!({"name": "x"})),
        ),
        (Method::GET, "/admin/subscribers/%00/keys", None),
        (Method::POST, "/admin/subscribers/%00/keys", None),
        (Method::DELETE, "/admin/subscribers/12/keys/%00", None),
        (
            Method::PUT,
            "/admin/subscribers/a%00/providers/fingerprint",
            Some(json!({"secret_key": "k"})),
        ),
        (Method::GET, "/admin/subscribers/%00/rules", None),
        (Method::PUT, "/admin/subscribers/%00/rules", Some(rules)),
        (Method::GET, "/admin/subscribers/%00/jobs", None),
    ];
    for (method, path, body) in cases {
        let (status, body) = app.admin(method.clone(), path, body).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert!(body["error"].is_string(), "{method} {path}: {body}");
    }
    let resp = app
        .client
        .get(app.url("/fingerprint/events/%00"))
        .header("X-API-Key", &key)
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, 404, "GET /fingerprint/events/%00: {body}");
    assert!(body["error"].is_string(), "{body}");
    // The service is unharmed.
    let (status, _) = app.admin(Method::GET, "/admin/subscribers/12", None).await;
    assert_eq!(status, 200);
    app.stop().await;
}

/// 3. Concurrent rule-set replacements each get their own version: 1..=64,
///    no 409, no gap.
async fn concurrent_rule_set_replacements_get_consecutive_versions(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (status, _) = app
        .admin(
            Method::POST,
            "/admin/subscribers",
            Some(json!({"id": 12, "name": "Acme"})),
        )
        .await;
    assert_eq!(status, 201);
    let app = Arc::new(app);
    let mut tasks = Vec::new();
    for n in 0..64 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"review_threshold": 0.4, "block_threshold": 0.8, "rules": [
                {"name": format!("Rule {n}"), "expression": "amount > 1000", "weight": 0.25}
            ]});
            app.admin(Method::PUT, "/admin/subscribers/12/rules", Some(body))
                .await
        }));
    }
    let mut versions = Vec::new();
    let mut failures = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        if status == 200 {
            versions.push(body["version"].as_i64().unwrap());
        } else {
            failures.push(format!("{status} {body}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 64 concurrent PUT rules failed: {failures:?}",
        failures.len()
    );
    versions.sort_unstable();
    assert_eq!(versions, (1..=64).collect::<Vec<i64>>());
    let (_, current) = app
        .admin(Method::GET, "/admin/subscribers/12/rules", None)
        .await;
    assert_eq!(current["version"], 64);
    Arc::try_unwrap(app).ok().unwrap().stop().await;
}

/// 4. A provider configured through the API is usable by the very next ingest,
///    even when ingest has cached the subscriber's providers just before.
async fn a_new_provider_is_usable_by_the_next_ingest(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    // Fill ingest's provider cache for this subscriber.
    let (status, body) = app
        .ingest(Some(&key), ingest_body(json!(12), "before").to_string())
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = app
        .admin(
            Method::PUT,
            "/admin/subscribers/12/providers/fingerprintiq",
            Some(json!({"secret_key": "fiq_secret_1"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut body = ingest_body(json!(12), "after");
    body["provider"] = json!("fingerprintiq");
    let (status, resp) = app.ingest(Some(&key), body.to_string()).await;
    assert_eq!(
        (status, resp["mode"].as_str()),
        (202, Some("queued")),
        "{resp}"
    );
    app.stop().await;
}

/// 5. A process with another secrets key than the database's is refused,
///    before it seals anything the server could never open.
fn a_different_secrets_key_is_refused_by_the_cli_and_serve() {
    const KEY_ONE: &str = "key-one-0123456789";
    const KEY_TWO: &str = "key-two-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::Sqlite {
        path: dir.path().join("rg.db").to_str().unwrap().to_owned(),
    };
    let (ok, sub, err) = cli_with_key(
        &url,
        KEY_ONE,
        &["subscriber", "create", "--name", "A", "--id", "1"],
    );
    assert!(ok, "{err}");
    assert_eq!(sub["id"], "1");

    let set = ["provider", "set", "1", "fingerprint", "--secret-key", "x"];
    let (ok, out, err) = cli_with_key(&url, KEY_TWO, &set);
    assert!(!ok, "a mismatched key must be refused: {out}");
    assert!(err.contains("secrets key"), "{err}");
    let (ok, provider, err) = cli_with_key(&url, KEY_ONE, &set);
    assert!(ok, "{err}");
    assert_eq!(provider["provider"], "fingerprint", "{provider}");

    let child = crate::common::riskgate()
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url"])
        .arg(db_arg(&url))
        .env("RISKGATE_SECRETS_KEY", KEY_TWO)
        .env("RISKGATE_ADMIN_TOKEN", ADMIN_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ok, stdout, stderr) = wait_for_exit(child, Duration::from_secs(20), "serve with key-two");
    assert!(!ok, "serve with a mismatched key must exit non-zero");
    assert!(stderr.contains("secrets key"), "{stderr}");
    assert!(
        !stdout.contains("listening"),
        "it must not start serving: {stdout}"
    );
}

/// 6. A start that fails on a taken port stores no admin token; the next start
///    generates and prints one.
fn a_failed_start_on_a_taken_port_does_not_swallow_the_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("rg.db").display());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let serve = |listen: String| {
        crate::common::riskgate()
            .args(["serve", "--listen", &listen, "--database-url", &db])
            .env("RISKGATE_SECRETS_KEY", SECRETS_KEY)
            .env_remove("RISKGATE_ADMIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (ok, stdout, stderr) = wait_for_exit(
        serve(format!("127.0.0.1:{port}")),
        Duration::from_secs(20),
        "serve on a taken port",
    );
    assert!(!ok, "serve on a taken port must fail: {stdout}");
    assert!(stderr.contains("cannot listen"), "{stderr}");
    assert!(
        !stdout.contains("rgadm_"),
        "no token is printed by a failed start: {stdout}"
    );
    drop(taken);

    let mut child = serve("127.0.0.1:0".to_owned());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let base = loop {
        let line = lines.next().expect("server printed its address").unwrap();
        if let Some(addr) = line.strip_prefix("riskgate listening on ") {
            break addr.to_owned();
        }
        printed.push(line);
    };
    let banner = printed.join("\n");
    let token = banner
        .split_whitespace()
        .find(|w| w.starts_with("rgadm_"))
        .map(str::to_owned);
    let works = token.as_ref().map(|token| {
        reqwest::blocking::Client::new()
            .get(format!("{base}/admin/subscribers"))
            .bearer_auth(token)
            .send()
            .unwrap()
            .status()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        token.is_some(),
        "the first successful start prints a generated admin token; printed: {banner:?}"
    );
    assert_eq!(works.map(|s| s.as_u16()), Some(200));
}

/// 7. A client that announces a body and never sends it is answered and let go.
///
/// The server gives a request body 10 s (`BODY_TIMEOUT` in `src/app.rs`) to
/// arrive; after that the body read fails and the client gets a 4xx JSON error
/// (408 or 400). Without that limit the connection and its task would be held
/// for as long as the client cared to wait. The 30 s whole-request timeout is
/// the backstop; the answer must come well before it.
async fn a_client_that_never_finishes_its_body_is_answered() {
    let app = TestApp::start(Backend::Sqlite).await;
    let key = app.subscriber_with_key("12").await;
    let addr = app.running.as_ref().unwrap().addr;
    let started = Instant::now();
    let (status, head, body) = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let request = format!(
            "POST /fingerprint/ingest HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
        );
        stream.write_all(request.as_bytes()).unwrap();
        stream.flush().unwrap();
        read_response(&mut stream)
    })
    .await
    .unwrap();
    let waited = started.elapsed();
    eprintln!("unfinished body answered {status:?} after {waited:?}");
    let status = status.unwrap_or_else(|| {
        panic!("no response within 20 s ({waited:?}); got {head:?}");
    });
    assert!(
        waited < Duration::from_secs(15),
        "answered only after {waited:?}"
    );
    assert!(
        status == 408 || status == 400,
        "expected 408 or 400, got {status}: {head} {body}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(body["error"].is_string(), "{body}");
    app.stop().await;
}

/// Reads one HTTP/1.1 response: (status, head, body). The status is `None`
/// when nothing (or no complete head) arrived before the read timeout or EOF.
fn read_response(stream: &mut std::net::TcpStream) -> (Option<u16>, String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => {
                return (
                    None,
                    String::from_utf8_lossy(&buf).into_owned(),
                    String::new(),
                )
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok());
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

/// 8. Request ids with `/`, spaces and non-ASCII text are accepted, and their
///    events are readable at their percent-encoded path, by their tenant only.
async fn request_ids_that_need_encoding_round_trip(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let other = app.subscriber_with_key("13").await;
    let ids = ["a/b c", "évènement-1", "a//b/", "50% off"];
    for id in ids {
        let (status, body) = app
            .ingest(Some(&key), ingest_body(json!(12), id).to_string())
            .await;
        assert_eq!(status, 202, "{id:?}: {body}");
        assert_eq!(body["request_id"], id);
    }
    let get = |key: &str, id: &str| {
        let req = app
            .client
            .get(app.url(&format!("/fingerprint/events/{}", encode_segment(id))))
            .header("X-API-Key", key);
        async move { read(req.send().await.unwrap()).await }
    };
    for id in ids {
        let (status, event) = get(&key, id).await;
        assert_eq!(status, 200, "{id:?}: {event}");
        assert_eq!(event["request_id"], id, "{event}");
        let state = event["status"].as_str().unwrap_or_default();
        assert!(
            ["pending", "ready", "failed"].contains(&state),
            "{id:?}: {event}"
        );
        // Another tenant does not see it.
        let (status, body) = get(&other, id).await;
        assert_eq!(status, 404, "{id:?} seen by another tenant: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    let (status, body) = get(&key, "unknown-id").await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].is_string(), "{body}");
    app.stop().await;
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        each(Backend::ALL) => [
            nul_bytes_in_paths_are_not_found,
            concurrent_rule_set_replacements_get_consecutive_versions,
            a_new_provider_is_usable_by_the_next_ingest,
            request_ids_that_need_encoding_round_trip,
        ],
        tokio.threads(4) => [
            cli_writes_during_an_ingest_burst_on_sqlite_fail_nobody,
        ],
        sync => [
            a_different_secrets_key_is_refused_by_the_cli_and_serve,
            a_failed_start_on_a_taken_port_does_not_swallow_the_admin_token,
        ],
        tokio.threads(2) => [
            a_client_that_never_finishes_its_body_is_answered,
        ],
    }
}
