#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The `riskgate` binary as an operator runs it: start-up flags and errors,
//! the operator commands, the logs, and a `kill -9` in the middle of a burst.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::binary::{cli, Server};
use crate::common::{fresh_db, read, Backend, ADMIN_TOKEN, SECRETS_KEY};
use riskgate::store::DatabaseUrl;
use serde_json::{json, Value};

fn bad_flags_stop_startup_with_one_line_naming_them() {
    for (args, needle) in [
        (vec!["--no-such-flag"], "--no-such-flag"),
        (vec!["serve", "--listen", "not-an-address"], "--listen"),
        (vec!["--database-url", "mysql://x"], "--database-url"),
        (vec!["--redis-url", "http://x"], "--redis-url"),
        (vec!["--log-format", "xml"], "--log-format"),
        (vec!["--signal-ttl", "soon"], "--signal-ttl"),
        (vec!["--admin-token", "short"], "--admin-token"),
        (
            vec!["--fingerprint-base-url", "ftp://x"],
            "--fingerprint-base-url",
        ),
    ] {
        let out = crate::common::riskgate().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let out = crate::common::riskgate()
        .args(["--database-url", "postgres://127.0.0.1:1/x"])
        .env_remove("RISKGATE_SECRETS_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--secrets-key"));
}

fn an_unreachable_redis_stops_startup_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("rg.db").display());
    let out = crate::common::riskgate()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &db,
            "--redis-url",
            "redis://127.0.0.1:1",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("Redis did not answer"), "{stderr}");
}

fn first_start_prints_an_admin_token_once_and_stores_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rg.db");
    let url = format!("sqlite://{}", db.display());
    let run = || {
        let mut child = crate::common::riskgate()
            .args(["--listen", "127.0.0.1:0", "--database-url", &url])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut printed = Vec::new();
        let base = loop {
            let line = lines.next().unwrap().unwrap();
            if let Some(addr) = line.strip_prefix("riskgate listening on ") {
                break addr.to_owned();
            }
            printed.push(line);
        };
        (child, base, printed.join("\n"))
    };
    let (mut first, base, banner) = run();
    let token = banner
        .split_whitespace()
        .find(|w| w.starts_with("rgadm_"))
        .expect("token printed")
        .to_owned();
    let client = reqwest::blocking::Client::new();
    let ok = client
        .get(format!("{base}/admin/subscribers"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
    first.kill().unwrap();
    first.wait().unwrap();
    let raw = std::fs::read(&db).unwrap();
    assert!(
        !String::from_utf8_lossy(&raw).contains(&token),
        "token stored in clear"
    );

    let (mut second, base, banner) = run();
    assert!(
        !banner.contains("rgadm_"),
        "the token is printed only at first start"
    );
    let ok = client
        .get(format!("{base}/admin/subscribers"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(
        ok.status(),
        200,
        "the stored token still works after a restart"
    );
    second.kill().unwrap();
    second.wait().unwrap();
}

async fn operator_cli_manages_what_the_server_serves(backend: Backend) {
    let db = fresh_db(backend).await;
    let url = &db.url;
    let (ok, sub, err) = cli(
        url,
        &["subscriber", "create", "--name", "Acme", "--id", "12"],
    );
    assert!(ok, "{err}");
    assert_eq!(sub["id"], "12");
    assert!(sub["webhook_secret"]
        .as_str()
        .unwrap()
        .starts_with("whsec_"));
    let (ok, _, err) = cli(
        url,
        &["subscriber", "create", "--name", "Acme", "--id", "12"],
    );
    assert!(!ok && err.contains("already exists"), "{err}");

    let (ok, _, err) = cli(
        url,
        &[
            "provider",
            "set",
            "12",
            "stytch",
            "--project-id",
            "project-test-1",
        ],
    );
    assert!(!ok && err.contains("missing --secret"), "{err}");
    let (ok, provider, err) = cli(
        url,
        &[
            "provider",
            "set",
            "12",
            "fingerprint",
            "--secret-key",
            "cli-SECRET-1",
            "--region",
            "ap",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(provider["settings"]["region"], "ap");
    assert!(!provider.to_string().contains("cli-SECRET-1"));

    let (ok, key, err) = cli(url, &["key", "create", "12", "--name", "checkout"]);
    assert!(ok, "{err}");
    let api_key = key["api_key"].as_str().unwrap().to_owned();
    let key_id = key["key_id"].as_str().unwrap().to_owned();
    let (_, keys, _) = cli(url, &["key", "list", "12"]);
    assert_eq!(keys["keys"][0]["key_id"], key_id.as_str());
    assert!(!keys.to_string().contains(&api_key));

    let server = Server::start(url, &[]);
    let client = reqwest::Client::new();
    let ingest = |key: String, id: &str| {
        let body =
            json!({"request_id": id, "subscriber_id": 12, "session_id": "s", "user_id": "u"});
        let req = client
            .post(format!("{}/fingerprint/ingest", server.base))
            .header("X-API-Key", key)
            .json(&body);
        async move { read(req.send().await.unwrap()).await }
    };
    let (status, body) = ingest(api_key.clone(), "cli-1").await;
    assert_eq!((status, body["mode"].as_str()), (202, Some("queued")));
    // The fetch worker may have leased the job already (its provider is
    // unreachable, so it goes back to pending): either state is the job.
    let (_, jobs, _) = cli(url, &["job", "list", "--subscriber", "12"]);
    assert_eq!(jobs["jobs"][0]["key"], "cli-1");
    let state = jobs["jobs"][0]["state"].as_str();
    assert!(matches!(state, Some("pending" | "running")), "{jobs}");

    let (ok, shown, _) = cli(url, &["subscriber", "suspend", "12"]);
    assert!(ok);
    assert_eq!(shown["status"], "suspended");
    // The server caches key lookups for at most one second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(ingest(api_key.clone(), "cli-2").await.0, 401);
    cli(url, &["subscriber", "activate", "12"]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(ingest(api_key.clone(), "cli-2").await.0, 202);
    let (ok, revoked, _) = cli(url, &["key", "revoke", "12", &key_id]);
    assert!(ok);
    assert_eq!(revoked["status"], "revoked");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(ingest(api_key.clone(), "cli-3").await.0, 401);

    // A rule set the CLI stores reaches the running server's decisions
    // without a restart (the server keeps rule sets in memory).
    let key = cli(url, &["key", "create", "12", "--name", "rules"]).1["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let score = || {
        let body = json!({"request_id": "cli-r", "subscriber_id": "12",
            "payload": {"transaction_amount": 20, "currency": "USD"}});
        let req = client
            .post(format!("{}/risk/bin/score", server.base))
            .header("X-API-Key", key.clone())
            .json(&body);
        async move { read(req.send().await.unwrap()).await }
    };
    let (status, first) = score().await;
    assert_eq!(
        (status, &first["result"]["rules_version"]),
        (200, &json!(0)),
        "{first}"
    );
    let rules = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        rules.path(),
        json!({"rules": [{"name": "Any", "expression": "amount > 0", "weight": 0.1}]}).to_string(),
    )
    .unwrap();
    let (ok, _, err) = cli(
        url,
        &[
            "subscriber",
            "set-rules",
            "12",
            rules.path().to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, scored) = score().await;
        if scored["result"]["rules_version"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the CLI's rule set never reached the server: {scored}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (ok, rotated, _) = cli(url, &["admin-token", "rotate"]);
    assert!(ok);
    assert!(rotated["admin_token"]
        .as_str()
        .unwrap()
        .starts_with("rgadm_"));
    let (_, list, _) = cli(url, &["subscriber", "list"]);
    assert_eq!(list["subscribers"].as_array().unwrap().len(), 1);
    let (ok, _, err) = cli(url, &["subscriber", "show", "nobody"]);
    assert!(!ok && err.contains("not found"), "{err}");
    if let DatabaseUrl::Sqlite { path } = url {
        // A mistyped path is an error, not a fresh empty database.
        let typo = DatabaseUrl::Sqlite {
            path: format!("{path}.typo"),
        };
        let (ok, _, err) = cli(&typo, &["key", "list", "12"]);
        assert!(!ok && err.contains("does not exist"), "{err}");
        assert!(!std::path::Path::new(&format!("{path}.typo")).exists());
    }
    server.stop();
}

/// Secrets that pass through the service never reach its logs, even at debug level.
async fn logs_never_contain_secrets() {
    let db = fresh_db(Backend::Sqlite).await;
    let server =
        Server::start_with_env(&db.url, &["--log-format", "json"], &[("RUST_LOG", "debug")]);
    let client = reqwest::Client::new();
    let admin = |method: reqwest::Method, path: &str, body: Value| {
        client
            .request(method, format!("{}{path}", server.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let created: Value = admin(
        reqwest::Method::POST,
        "/admin/subscribers",
        json!({"id": "s1", "name": "S"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let webhook_secret = created["webhook_secret"].as_str().unwrap().to_owned();
    admin(
        reqwest::Method::PUT,
        "/admin/subscribers/s1/providers/stytch",
        json!({"project_id": "p", "secret": "STYTCH-SECRET-42"}),
    )
    .await
    .unwrap();
    let key: Value = admin(
        reqwest::Method::POST,
        "/admin/subscribers/s1/keys",
        json!({}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let api_key = key["api_key"].as_str().unwrap().to_owned();
    let body = json!({"request_id": "r", "subscriber_id": "s1", "session_id": "s", "user_id": "u"});
    let resp = client
        .post(format!("{}/fingerprint/ingest", server.base))
        .header("X-API-Key", &api_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let bad = client
        .post(format!("{}/fingerprint/ingest", server.base))
        .header("X-API-Key", format!("{api_key}zz"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let log = server.stop();
    assert!(
        log.contains("/fingerprint/ingest"),
        "debug logs were written: {log}"
    );
    let first = log.lines().next().unwrap();
    assert!(
        serde_json::from_str::<Value>(first).is_ok(),
        "--log-format json writes JSON lines: {first}"
    );
    for secret in [
        ADMIN_TOKEN,
        SECRETS_KEY,
        &api_key,
        &webhook_secret,
        "STYTCH-SECRET-42",
    ] {
        assert!(!log.contains(secret), "log contains a secret");
    }
}

/// `kill -9` during a burst of ingests: every request that got a `202` has its
/// job after the restart.
async fn kill9_during_ingest_burst_loses_no_acknowledged_job(backend: Backend) {
    let db = fresh_db(backend).await;
    let mut server = Server::start(&db.url, &[]);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let key = server.subscriber_with_key(&client, "12").await;

    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for worker in 0..16 {
        let (client, base, key, acked, stop) = (
            client.clone(),
            server.base.clone(),
            key.clone(),
            acked.clone(),
            stop.clone(),
        );
        senders.push(tokio::spawn(async move {
            for n in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let id = format!("burst-{worker}-{n}");
                let body = json!({"request_id": id, "subscriber_id": 12, "session_id": "s", "user_id": "u"});
                let sent = client.post(format!("{base}/fingerprint/ingest")).header("X-API-Key", &key).json(&body).send().await;
                match sent {
                    Ok(resp) if resp.status() == 202 => acked.lock().unwrap().push(id),
                    Ok(resp) => panic!("unexpected {}", resp.status()),
                    Err(_) => break, // the server died mid-request: not acknowledged
                }
            }
        }));
    }
    // Let the burst build up, then kill the process without warning.
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if acked.lock().unwrap().len() >= 300 {
            break;
        }
    }
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 300);
    eprintln!("{} ingests acknowledged before kill -9", acked.len());

    let server = Server::start(&db.url, &[]);
    let store = riskgate::store::connect(&db.url).await.unwrap();
    let mut lost = Vec::new();
    for id in &acked {
        if store
            .latest_job("12", riskgate::store::JobKind::DeviceFetch.as_str(), id)
            .await
            .unwrap()
            .is_none()
        {
            lost.push(id);
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged ingests lost: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    // And the restarted server knows them: a repeat is in flight, not queued again.
    let body =
        json!({"request_id": acked[0], "subscriber_id": 12, "session_id": "s", "user_id": "u"});
    let resp = client
        .post(format!("{}/fingerprint/ingest", server.base))
        .header("X-API-Key", &key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(read(resp).await.1["mode"], "in_flight");
    store.close().await;
    server.stop();
}

/// `riskgate serve --demo`, as a new user tries it: the printed key and curl
/// work, and the event's signals are ready moments later.
async fn demo_prints_a_working_key_and_events_become_ready() {
    let db = fresh_db(Backend::Sqlite).await;
    let server = Server::start(&db.url, &["--demo"]);
    let started = std::time::Instant::now();
    let key = loop {
        let printed = server.stdout.lock().unwrap().join("\n");
        if let Some(at) = printed.find("rg_live_") {
            let key: String = printed[at..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '\'')
                .collect();
            assert!(printed.contains("curl -s -X POST"), "{printed}");
            break key;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no demo key printed: {printed}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let client = reqwest::Client::new();
    for (id, provider) in [
        ("demo-1", "fingerprint"),
        ("demo-2", "stytch"),
        ("demo-3", "fingerprintiq"),
        ("risky-demo", "stytch"),
    ] {
        let body = json!({"request_id": id, "subscriber_id": "demo", "session_id": "s", "user_id": "u", "provider": provider});
        let req = client
            .post(format!("{}/fingerprint/ingest", server.base))
            .header("X-API-Key", &key)
            .json(&body);
        assert_eq!(read(req.send().await.unwrap()).await.0, 202);
    }
    for id in ["demo-1", "demo-2", "demo-3", "risky-demo"] {
        let started = std::time::Instant::now();
        let event = loop {
            let req = client
                .get(format!("{}/fingerprint/events/{id}", server.base))
                .header("X-API-Key", &key);
            let (status, event) = read(req.send().await.unwrap()).await;
            assert_eq!(status, 200, "{event}");
            if event["status"] != "pending" || started.elapsed() > Duration::from_secs(10) {
                break event;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(event["status"], "ready", "{id}: {event}");
        assert!(event["visitor_id"].is_string(), "{id}: {event}");
    }
    let req = client
        .get(format!("{}/fingerprint/events/risky-demo", server.base))
        .header("X-API-Key", &key);
    let risky = read(req.send().await.unwrap()).await.1;
    assert!(risky["device_risk"].as_f64().unwrap() > 0.7, "{risky}");
    server.stop();
}

/// `kill -9` while fetches are in flight: after a restart every accepted job
/// completes (its lease expires and the new process claims it).
async fn kill9_with_fetches_in_flight_completes_every_job(backend: Backend) {
    let db = fresh_db(backend).await;
    let sim = riskgate::simulator::start(&riskgate::simulator::SimulatorConfig {
        slow_ms: 1_500,
        risky_share: 0.0,
        ..Default::default()
    })
    .await
    .unwrap();
    let sim_url = format!("http://{}", sim.addr);
    let flags = [
        "--fingerprint-base-url",
        sim_url.as_str(),
        "--fetch-timeout",
        "3s",
        "--fetch-connect-timeout",
        "1s",
    ];
    let mut server = Server::start(&db.url, &flags);
    let client = reqwest::Client::new();
    let key = server.subscriber_with_key(&client, "12").await;
    let ids: Vec<String> = (0..40).map(|i| format!("slow-crash-{i}")).collect();
    for id in &ids {
        let body =
            json!({"request_id": id, "subscriber_id": 12, "session_id": "s", "user_id": "u"});
        let resp = client
            .post(format!("{}/fingerprint/ingest", server.base))
            .header("X-API-Key", &key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
    }
    // The provider answers after 1.5 s: kill while the calls are in flight.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let store = riskgate::store::connect(&db.url).await.unwrap();
    let running = store
        .list_jobs(&riskgate::store::JobFilter {
            state: Some(riskgate::store::JobState::Running),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!running.is_empty(), "fetches were in flight at the kill");
    server.kill9();

    let server = Server::start(&db.url, &flags);
    let started = std::time::Instant::now();
    loop {
        let mut unfinished = 0;
        for id in &ids {
            let job = store
                .latest_job("12", riskgate::store::JobKind::DeviceFetch.as_str(), id)
                .await
                .unwrap()
                .unwrap();
            if job.state != riskgate::store::JobState::Succeeded {
                unfinished += 1;
            }
        }
        if unfinished == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{unfinished} jobs unfinished after restart"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "{} in-flight jobs at kill -9; all {} completed {:?} after restart",
        running.len(),
        ids.len(),
        started.elapsed()
    );
    // The new process's cache is empty: scoring finds the device of a request
    // ingested by the killed one from what was stored, and no device for a
    // request id nobody ingested.
    for (id, status) in [(ids[0].as_str(), "ready"), ("never-ingested", "none")] {
        let body = json!({"request_id": id, "subscriber_id": "12",
            "payload": {"transaction_amount": 20, "currency": "USD"}});
        let (code, scored) = read(
            client
                .post(format!("{}/risk/bin/score", server.base))
                .header("X-API-Key", &key)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(code, 200, "{scored}");
        assert_eq!(scored["input"]["device_status"], status, "{id}: {scored}");
    }
    store.close().await;
    server.stop();
    sim.shutdown().await.unwrap();
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        each(Backend::ALL) => [
            kill9_with_fetches_in_flight_completes_every_job,
            operator_cli_manages_what_the_server_serves,
            kill9_during_ingest_burst_loses_no_acknowledged_job,
        ],
        sync => [
            bad_flags_stop_startup_with_one_line_naming_them,
            an_unreachable_redis_stops_startup_with_a_message,
            first_start_prints_an_admin_token_once_and_stores_only_its_hash,
        ],
        tokio.threads(2) => [
            logs_never_contain_secrets,
            demo_prints_a_working_key_and_events_become_ready,
        ],
    }
}
