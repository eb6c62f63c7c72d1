#![allow(clippy::unwrap_used, clippy::expect_used)]

//! `riskgate simulate-providers`, started in-process on an ephemeral port and
//! called like the provider adapters call the real APIs.

use std::time::{Duration, Instant};

use reqwest::{Client, RequestBuilder};
use riskgate::simulator::{start, SimRunning, SimulatorConfig};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Api {
    V4,
    V3,
    Stytch,
    Fiq,
}

const ALL: [Api; 4] = [Api::V4, Api::V3, Api::Stytch, Api::Fiq];

impl Api {
    fn stats_key(self, id: &str) -> String {
        let name = match self {
            Api::V4 => "fingerprint_v4",
            Api::V3 => "fingerprint_v3",
            Api::Stytch => "stytch",
            Api::Fiq => "fingerprintiq",
        };
        format!("{name}:{id}")
    }

    /// The requested id as the success body carries it.
    fn id_in(self, body: &Value) -> Value {
        match self {
            Api::V4 => body["event_id"].clone(),
            Api::V3 => body["products"]["identification"]["data"]["requestId"].clone(),
            Api::Stytch => body["telemetry_id"].clone(),
            Api::Fiq => body["requestId"].clone(),
        }
    }
}

struct Sim {
    running: SimRunning,
    client: Client,
}

impl Sim {
    async fn start(config: SimulatorConfig) -> Self {
        let running = start(&config).await.unwrap();
        assert!(running.addr.ip().is_loopback());
        Self {
            running,
            client: Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        }
    }

    async fn default() -> Self {
        Self::start(SimulatorConfig::default()).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.base_url())
    }

    /// The call without credentials.
    fn bare(&self, api: Api, id: &str) -> RequestBuilder {
        match api {
            Api::V4 => self.client.get(self.url(&format!("/v4/events/{id}"))),
            Api::V3 => self.client.get(self.url(&format!("/events/{id}"))),
            Api::Stytch => self
                .client
                .post(self.url("/v1/fingerprint/lookup"))
                .json(&json!({ "telemetry_id": id })),
            Api::Fiq => self.client.get(self.url(&format!("/v1/events/{id}"))),
        }
    }

    /// The call with well-formed credentials.
    fn call(&self, api: Api, id: &str) -> RequestBuilder {
        let req = self.bare(api, id);
        match api {
            Api::V4 => req.bearer_auth("sk_test_v4"),
            Api::V3 => req.header("Auth-API-Key", "sk_test_v3"),
            Api::Stytch => req.basic_auth("project-test-1", Some("secret-test-1")),
            Api::Fiq => req.bearer_auth("fiq_secret_test"),
        }
    }

    async fn get(&self, api: Api, id: &str) -> (u16, Value, reqwest::header::HeaderMap) {
        send(self.call(api, id)).await
    }

    async fn stats(&self) -> Value {
        let resp = self
            .client
            .get(self.url("/_sim/stats"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }
}

async fn send(req: RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    (status, body, headers)
}

async fn each_endpoint_answers_with_the_requested_id() {
    let sim = Sim::default().await;
    for api in ALL {
        let id = format!("clean-{api:?}-1708102555327.abc");
        let (status, body, headers) = sim.get(api, &id).await;
        assert_eq!(status, 200, "{api:?} {body}");
        assert_eq!(api.id_in(&body), json!(id), "{api:?}");
        assert!(headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
    }
    // v3 carries the id in every product that has one.
    let (_, body, _) = sim.get(Api::V3, "clean-both").await;
    assert_eq!(
        body["products"]["botd"]["data"]["requestId"],
        json!("clean-both")
    );
    // Fixture content comes through: the clean variants are the real examples.
    let (_, v4, _) = sim.get(Api::V4, "clean-x").await;
    assert_eq!(v4["identification"]["visitor_id"], "Ibk1527CUFmcnjLwIs4A9");
    assert_eq!(v4["vpn"], false);
    let (_, st, _) = sim.get(Api::Stytch, "clean-x").await;
    assert_eq!(st["verdict"]["action"], "ALLOW");
    assert!(st["request_id"].is_string());
    sim.running.shutdown().await.unwrap();
}

async fn credentials_are_required() {
    let sim = Sim::default().await;
    let (status, body, _) = send(sim.bare(Api::V4, "clean-1")).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "secret_api_key_required");
    let (status, body, _) = send(
        sim.bare(Api::V4, "clean-1")
            .header("Authorization", "Bearer "),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (403, json!("secret_api_key_required"))
    );

    let (status, body, _) = send(sim.bare(Api::V3, "clean-1")).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "TokenRequired");
    // v4's header does not open v3.
    let (status, _, _) = send(sim.bare(Api::V3, "clean-1").bearer_auth("sk")).await;
    assert_eq!(status, 403);

    let (status, body, _) = send(sim.bare(Api::Stytch, "clean-1")).await;
    assert_eq!(status, 401);
    assert_eq!(body["status_code"], 401);
    assert_eq!(body["error_type"], "unauthorized_credentials");
    let (status, _, _) = send(
        sim.bare(Api::Stytch, "clean-1")
            .basic_auth("project-only", None::<&str>),
    )
    .await;
    assert_eq!(status, 401);

    let (status, body, _) = send(sim.bare(Api::Fiq, "clean-1")).await;
    assert_eq!(status, 401);
    assert!(body["error"].is_string());
    for wrong in ["sk_live_1", "fiq_public_1", "fiq_secret_"] {
        let (status, _, _) = send(sim.bare(Api::Fiq, "clean-1").bearer_auth(wrong)).await;
        assert_eq!(status, 401, "{wrong}");
    }

    // Stytch: a body without telemetry_id is a Stytch-shaped 400.
    let resp = sim
        .client
        .post(sim.url("/v1/fingerprint/lookup"))
        .basic_auth("p", Some("s"))
        .json(&json!({}));
    let (status, body, _) = send(resp).await;
    assert_eq!((status, body["status_code"].clone()), (400, json!(400)));
    sim.running.shutdown().await.unwrap();
}

async fn notfound_and_forbidden_prefixes_answer_the_providers_errors() {
    let sim = Sim::default().await;
    let (status, body, _) = sim.get(Api::V4, "notfound-1").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("event_not_found"))
    );
    let (status, body, _) = sim.get(Api::V3, "notfound-1").await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("RequestNotFound"))
    );
    let (status, body, _) = sim.get(Api::Stytch, "notfound-1").await;
    assert_eq!(
        (status, body["error_type"].clone()),
        (404, json!("telemetry_id_not_found"))
    );
    let (status, body, _) = sim.get(Api::Fiq, "notfound-1").await;
    assert_eq!((status, body), (404, json!({"error": "Event not found"})));

    for api in ALL {
        let (status, body, _) = sim.get(api, "forbidden-1").await;
        assert_eq!(status, 403, "{api:?} {body}");
    }
    let (_, body, _) = sim.get(Api::V4, "forbidden-1").await;
    assert_eq!(body["error"]["code"], "secret_api_key_not_found");
    sim.running.shutdown().await.unwrap();
}

async fn ratelimit_answers_429_once_then_200() {
    let sim = Sim::default().await;
    for api in ALL {
        let (status, body, headers) = sim.get(api, "ratelimit-7").await;
        assert_eq!(status, 429, "{api:?} {body}");
        assert_eq!(headers["retry-after"], "1");
        let (status, body, _) = sim.get(api, "ratelimit-7").await;
        assert_eq!(status, 200, "{api:?}");
        assert_eq!(api.id_in(&body), json!("ratelimit-7"));
        let (status, _, _) = sim.get(api, "ratelimit-7").await;
        assert_eq!(status, 200);
    }
    let (_, body, _) = sim.get(Api::V4, "ratelimit-other").await;
    assert_eq!(body["error"]["code"], "too_many_requests");
    sim.running.shutdown().await.unwrap();
}

async fn flaky_answers_503_twice_then_200() {
    let sim = Sim::default().await;
    for api in ALL {
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(sim.get(api, "flaky-1").await.0);
        }
        assert_eq!(statuses, [503, 503, 200, 200], "{api:?}");
    }
    sim.running.shutdown().await.unwrap();
}

async fn slow_waits_before_answering() {
    let sim = Sim::start(SimulatorConfig {
        slow_ms: 400,
        ..SimulatorConfig::default()
    })
    .await;
    let started = Instant::now();
    let (status, body, _) = sim.get(Api::V4, "slow-1").await;
    assert_eq!(status, 200);
    assert_eq!(body["event_id"], "slow-1");
    assert!(started.elapsed() >= Duration::from_millis(400));
    let started = Instant::now();
    sim.get(Api::V4, "clean-fast").await;
    assert!(started.elapsed() < Duration::from_millis(400));
    sim.running.shutdown().await.unwrap();
}

async fn slow_is_three_seconds_by_default() {
    assert_eq!(SimulatorConfig::default().slow_ms, 3_000);
    assert_eq!(SimulatorConfig::default().timeout_hang_ms, 10_000);
}

async fn latency_is_added_to_every_answer() {
    let sim = Sim::start(SimulatorConfig {
        latency_ms: 250,
        ..SimulatorConfig::default()
    })
    .await;
    for api in ALL {
        let started = Instant::now();
        sim.get(api, "clean-1").await;
        assert!(started.elapsed() >= Duration::from_millis(250), "{api:?}");
    }
    sim.running.shutdown().await.unwrap();
}

async fn v3partial_is_a_200_with_product_errors() {
    let sim = Sim::default().await;
    let (status, body, _) = sim.get(Api::V3, "v3partial-1").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["products"]["botd"]["error"]["code"],
        json!("TooManyRequests")
    );
    assert!(body["products"]["identification"]["data"].is_null());
    sim.running.shutdown().await.unwrap();
}

async fn risky_and_clean_prefixes_pick_the_variant() {
    let sim = Sim::default().await;
    let (_, v4, _) = sim.get(Api::V4, "risky-1").await;
    assert_eq!(
        (
            v4["bot"].clone(),
            v4["vpn"].clone(),
            v4["tampering"].clone()
        ),
        (json!("bad"), json!(true), json!(true))
    );
    assert_eq!(v4["event_id"], "risky-1");
    let (_, v3, _) = sim.get(Api::V3, "risky-1").await;
    assert_eq!(v3["products"]["vpn"]["data"]["result"], true);
    assert_eq!(v3["products"]["botd"]["data"]["bot"]["result"], "bad");
    let (_, st, _) = sim.get(Api::Stytch, "risky-1").await;
    assert_eq!(st["verdict"]["action"], "BLOCK");
    assert_eq!(st["telemetry_id"], "risky-1");
    let (_, fiq, _) = sim.get(Api::Fiq, "risky-1").await;
    assert_eq!(fiq["verdicts"]["bot"]["result"], true);
    assert_eq!(fiq["verdicts"]["vpn"]["result"], true);
    assert_eq!(fiq["requestId"], "risky-1");
    let (_, fiq_clean, _) = sim.get(Api::Fiq, "clean-1").await;
    assert!(fiq["suspectScore"].as_f64() > fiq_clean["suspectScore"].as_f64());

    // A behaviour prefix keeps the variant choice after it.
    let (status, body, _) = sim.get(Api::Stytch, "ratelimit-risky-2").await;
    assert_eq!(status, 429, "{body}");
    let (_, body, _) = sim.get(Api::Stytch, "ratelimit-risky-2").await;
    assert_eq!(body["verdict"]["action"], "BLOCK");
    sim.running.shutdown().await.unwrap();
}

async fn risky_share_decides_unprefixed_ids_deterministically() {
    let none = Sim::start(SimulatorConfig {
        risky_share: 0.0,
        ..SimulatorConfig::default()
    })
    .await;
    let all = Sim::start(SimulatorConfig {
        risky_share: 1.0,
        ..SimulatorConfig::default()
    })
    .await;
    for api in ALL {
        let (_, clean, _) = none.get(api, "evt-123").await;
        let (_, risky, _) = all.get(api, "evt-123").await;
        assert_ne!(clean, risky, "{api:?}");
        assert_eq!(api.id_in(&clean), api.id_in(&risky));
    }
    let (_, st, _) = all.get(Api::Stytch, "evt-9").await;
    assert_eq!(st["verdict"]["action"], "BLOCK");
    let (_, st, _) = none.get(Api::Stytch, "evt-9").await;
    assert_eq!(st["verdict"]["action"], "ALLOW");
    none.running.shutdown().await.unwrap();
    all.running.shutdown().await.unwrap();

    // Half: the same id always answers the same, and both variants occur.
    let half = Sim::start(SimulatorConfig {
        risky_share: 0.5,
        ..SimulatorConfig::default()
    })
    .await;
    let mut risky = 0;
    for i in 0..40 {
        let id = format!("evt-{i}");
        let (_, first, _) = half.get(Api::V4, &id).await;
        let (_, again, _) = half.get(Api::V4, &id).await;
        assert_eq!(first, again, "{id}");
        if first["vpn"] == true {
            risky += 1;
        }
    }
    assert!((5..=35).contains(&risky), "{risky} of 40 risky");
    half.running.shutdown().await.unwrap();
}

async fn fault_rate_one_never_answers_200() {
    let sim = Sim::start(SimulatorConfig {
        fault_rate: 1.0,
        timeout_hang_ms: 20,
        ..SimulatorConfig::default()
    })
    .await;
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..60 {
        let api = ALL[i % 4];
        let (status, body, headers) = sim.get(api, &format!("clean-{i}")).await;
        assert_ne!(status, 200, "{api:?} {body}");
        assert!([429, 500, 503, 504].contains(&status), "{status}");
        if status == 429 {
            assert_eq!(headers["retry-after"], "1");
        }
        // Provider-shaped: every error body is a JSON object naming the error.
        assert!(
            body.get("error").is_some() || body.get("error_type").is_some(),
            "{body}"
        );
        seen.insert(status);
    }
    assert!(seen.contains(&429) && seen.contains(&504), "{seen:?}");
    assert!(seen.contains(&500) || seen.contains(&503), "{seen:?}");
    // Credentials are still checked first.
    let (status, _, _) = send(sim.bare(Api::Fiq, "clean-1")).await;
    assert_eq!(status, 401);
    sim.running.shutdown().await.unwrap();
}

async fn stats_count_calls_per_path_event_and_status() {
    let sim = Sim::default().await;
    sim.get(Api::V4, "clean-a").await;
    sim.get(Api::V4, "ratelimit-b").await;
    sim.get(Api::V4, "ratelimit-b").await;
    sim.get(Api::Stytch, "clean-a").await;
    sim.get(Api::Stytch, "clean-c").await;
    send(sim.bare(Api::Fiq, "clean-a")).await;
    let stats = sim.stats().await;
    assert_eq!(stats["total"], 6, "{stats}");
    assert_eq!(stats["statuses"], json!({"200": 4, "401": 1, "429": 1}));
    assert_eq!(stats["paths"]["/v4/events/clean-a"], json!({"200": 1}));
    assert_eq!(
        stats["paths"]["/v4/events/ratelimit-b"],
        json!({"200": 1, "429": 1})
    );
    assert_eq!(stats["paths"]["/v1/fingerprint/lookup"], json!({"200": 2}));
    assert_eq!(
        stats["events"][Api::V4.stats_key("clean-a")],
        json!({"200": 1})
    );
    assert_eq!(
        stats["events"][Api::Stytch.stats_key("clean-c")],
        json!({"200": 1})
    );
    assert_eq!(
        stats["events"][Api::Fiq.stats_key("clean-a")],
        json!({"401": 1})
    );

    // Reset clears the counters and the per-id state.
    let resp = sim
        .client
        .post(sim.url("/_sim/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(sim.stats().await["total"], 0);
    assert_eq!(sim.get(Api::V4, "ratelimit-b").await.0, 429);
    sim.running.shutdown().await.unwrap();
}

async fn unknown_paths_are_json_404s() {
    let sim = Sim::default().await;
    for path in ["/", "/v5/events/x", "/v1/identify/x"] {
        let (status, body, _) = send(sim.client.get(sim.url(path))).await;
        assert_eq!(
            (status, body),
            (404, json!({"error": "Not found"})),
            "{path}"
        );
    }
    let (status, body, _) = send(sim.client.get(sim.url("/v1/fingerprint/lookup"))).await;
    assert_eq!(
        (status, body),
        (405, json!({"error": "Method not allowed"}))
    );
    sim.running.shutdown().await.unwrap();
}

async fn shutdown_does_not_wait_for_held_calls() {
    let sim = Sim::start(SimulatorConfig {
        slow_ms: 60_000,
        ..SimulatorConfig::default()
    })
    .await;
    let pending = tokio::spawn(sim.call(Api::V4, "slow-held").send());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), sim.running.shutdown())
        .await
        .expect("shutdown finishes promptly")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let resp = pending.await.unwrap().unwrap();
    assert_eq!(resp.status(), 503);
}

fn flags_parse() {
    use clap::Parser;
    use riskgate::cli::{Cli, Command};

    let cli = Cli::try_parse_from([
        "riskgate",
        "simulate-providers",
        "--listen",
        "127.0.0.1:9999",
        "--latency-ms",
        "5",
        "--fault-rate",
        "0.25",
        "--risky-share",
        "1",
        "--timeout-hang-ms",
        "50",
    ])
    .unwrap();
    let Command::SimulateProviders(config) = cli.command else {
        panic!("not simulate-providers");
    };
    assert_eq!(config.listen.port(), 9999);
    assert_eq!(config.latency_ms, 5);
    assert_eq!(config.fault_rate, 0.25);
    assert_eq!(config.risky_share, 1.0);
    assert_eq!(config.timeout_hang_ms, 50);

    let cli = Cli::try_parse_from(["riskgate", "simulate-providers"]).unwrap();
    let Command::SimulateProviders(config) = cli.command else {
        panic!("not simulate-providers");
    };
    assert_eq!(config.listen.to_string(), "127.0.0.1:8090");
    assert_eq!(config.risky_share, 0.1);
    assert_eq!(config.fault_rate, 0.0);

    for (flag, bad) in [("--fault-rate", "1.5"), ("--risky-share", "-0.1")] {
        let arg = format!("{flag}={bad}");
        let Err(err) = Cli::try_parse_from(["riskgate", "simulate-providers", &arg]) else {
            panic!("{flag}={bad} was accepted");
        };
        let err = err.to_string();
        assert!(err.contains(flag) && err.contains("0 to 1"), "{err}");
    }
}

/// The built binary, run away from the repository, configured only by the
/// environment: the fixtures are inside it.
async fn the_binary_serves_from_environment_settings() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_riskgate"))
        .arg("simulate-providers")
        .current_dir(dir.path())
        .env("RISKGATE_SIM_LISTEN", "127.0.0.1:0")
        .env("RISKGATE_SIM_RISKY_SHARE", "1")
        .env("RISKGATE_SIM_LATENCY_MS", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let base = line
        .trim()
        .rsplit(' ')
        .next()
        .filter(|u| u.starts_with("http://127.0.0.1:"))
        .map(str::to_owned);
    let result = async {
        let base = base.ok_or_else(|| format!("unexpected first line {line:?}"))?;
        let resp = Client::new()
            .get(format!("{base}/v4/events/evt-42"))
            .bearer_auth("sk")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = resp.json().await.map_err(|e| e.to_string())?;
        Ok::<Value, String>(body)
    }
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let body = result.unwrap();
    assert_eq!(body["event_id"], "evt-42");
    assert_eq!(body["vpn"], true, "risky share 1 from the environment");
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        tokio => [
            each_endpoint_answers_with_the_requested_id,
            credentials_are_required,
            notfound_and_forbidden_prefixes_answer_the_providers_errors,
            ratelimit_answers_429_once_then_200,
            flaky_answers_503_twice_then_200,
            slow_waits_before_answering,
            slow_is_three_seconds_by_default,
            latency_is_added_to_every_answer,
            v3partial_is_a_200_with_product_errors,
            risky_and_clean_prefixes_pick_the_variant,
            risky_share_decides_unprefixed_ids_deterministically,
            fault_rate_one_never_answers_200,
            stats_count_calls_per_path_event_and_status,
            unknown_paths_are_json_404s,
            shutdown_does_not_wait_for_held_calls,
            the_binary_serves_from_environment_settings,
        ],
        sync => [
            flags_parse,
        ],
    }
}
