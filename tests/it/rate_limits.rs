//! Per-subscriber rate limits: off by default; once the operator sets one,
//! requests past the burst answer `429` with `Retry-After` and `{"error"}`,
//! are counted in `/metrics`, and on Redis one limit holds across processes.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::trials::Server;
use crate::common::{read, redis_url, Backend, TestApp, ADMIN_TOKEN};

/// A subscriber id no other run shares (the Redis limiter's keys outlive a test).
fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        riskgate::secrets::random_id(12).to_lowercase()
    )
}

/// One subscriber request (any route counts; this one answers 404).
async fn request(client: &reqwest::Client, base: &str, key: &str) -> (u16, Option<String>, Value) {
    let resp = client
        .get(format!("{base}/fingerprint/events/nothing-here"))
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = read(resp).await;
    (status, retry_after, body)
}

async fn limit(app: &TestApp, id: &str, body: Value) -> (u16, Value) {
    app.admin(
        Method::PUT,
        &format!("/admin/subscribers/{id}/rate-limit"),
        Some(body),
    )
    .await
}

async fn refuses_past_the_burst_with_429(app: TestApp) {
    let (id, other) = (unique("limited"), unique("unlimited"));
    let key = app.subscriber_with_key(&id).await;
    let other_key = app.subscriber_with_key(&other).await;
    // Off by default.
    for _ in 0..20 {
        assert_eq!(request(&app.client, &app.base, &key).await.0, 404);
    }
    let (status, shown) = app
        .admin(
            Method::GET,
            &format!("/admin/subscribers/{id}/rate-limit"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["requests_per_second"], Value::Null);

    // Three at once, then one every 100 s: nothing refills during the test.
    let (status, set) = limit(&app, &id, json!({"requests_per_second": 0.01, "burst": 3})).await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(
        set,
        json!({"subscriber_id": id, "requests_per_second": 0.01, "burst": 3})
    );
    let mut answers = Vec::new();
    for _ in 0..6 {
        answers.push(request(&app.client, &app.base, &key).await);
    }
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(statuses, [404, 404, 404, 429, 429, 429]);
    for (_, retry_after, body) in &answers[3..] {
        let seconds: u64 = retry_after.as_deref().unwrap().parse().unwrap();
        assert!((1..=100).contains(&seconds), "Retry-After {seconds}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("Rate limit exceeded"),
            "{body}"
        );
    }
    // Another subscriber is not held back.
    assert_eq!(request(&app.client, &app.base, &other_key).await.0, 404);
    // A wrong key is refused as before, and does not count.
    let (status, _, _) = request(&app.client, &app.base, "rg_live_nope.nope").await;
    assert_eq!(status, 401);

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = format!("riskgate_rate_limited_total{{subscriber_id=\"{id}\"}} 3");
    assert!(metrics.contains(&line), "no {line} in /metrics");

    let (status, removed) = app
        .admin(
            Method::DELETE,
            &format!("/admin/subscribers/{id}/rate-limit"),
            None,
        )
        .await;
    assert_eq!(
        (status, &removed["burst"]),
        (200, &Value::Null),
        "{removed}"
    );
    assert_eq!(request(&app.client, &app.base, &key).await.0, 404);
    app.stop().await;
}

async fn refuses_past_the_burst_locally(backend: Backend) {
    refuses_past_the_burst_with_429(TestApp::start(backend).await).await;
}

async fn refuses_past_the_burst_on_redis(backend: Backend) {
    let app = TestApp::start_with(backend, |config| config.redis_url = Some(redis_url())).await;
    refuses_past_the_burst_with_429(app).await;
}

/// The operator's settings are checked: a clear 400 naming the field.
async fn bad_limits_are_refused_naming_the_field(backend: Backend) {
    let app = TestApp::start(backend).await;
    let id = unique("bad-limits");
    app.subscriber_with_key(&id).await;
    let cases = [
        (json!({}), "Missing 'requests_per_second' in request body"),
        (
            json!({"requests_per_second": 0}),
            "Invalid 'requests_per_second'",
        ),
        (
            json!({"requests_per_second": -5}),
            "Invalid 'requests_per_second'",
        ),
        (
            json!({"requests_per_second": "10"}),
            "Invalid 'requests_per_second'",
        ),
        (
            json!({"requests_per_second": 10, "burst": 0}),
            "Invalid 'burst'",
        ),
        (
            json!({"requests_per_second": 10, "burst": 2.5}),
            "Invalid 'burst'",
        ),
        (
            json!({"requests_per_second": 10, "bursts": 5}),
            "Unknown field 'bursts'",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = limit(&app, &id, body.clone()).await;
        assert_eq!(status, 400, "{body} -> {answer}");
        assert!(
            answer["error"].as_str().unwrap().starts_with(expected),
            "{body} -> {answer}"
        );
    }
    let (status, set) = limit(&app, &id, json!({"requests_per_second": 20.5})).await;
    assert_eq!(
        (status, &set["burst"]),
        (200, &json!(21)),
        "the default burst: {set}"
    );
    let (status, _) = limit(&app, "nobody-here", json!({"requests_per_second": 1})).await;
    assert_eq!(status, 404);
    app.stop().await;
}

/// Two processes on one database and one Redis share one limit: requests
/// spread over both are admitted only as many times as the burst allows.
async fn processes_sharing_redis_share_the_limit() {
    let first = TestApp::start_with(Backend::Postgres, |config| {
        config.redis_url = Some(redis_url())
    })
    .await;
    let mut config = riskgate::config::ServeConfig::for_database(first.db.url.clone());
    config.admin_token = Some(ADMIN_TOKEN.to_owned());
    config.db.secrets_key = Some(crate::common::SECRETS_KEY.to_owned());
    config.redis_url = Some(redis_url());
    let second = riskgate::app::start(&config, false).await.unwrap();
    let second_base = format!("http://{}", second.addr);

    let id = unique("shared");
    let key = first.subscriber_with_key(&id).await;
    let (status, _) = limit(
        &first,
        &id,
        json!({"requests_per_second": 0.01, "burst": 4}),
    )
    .await;
    assert_eq!(status, 200);
    let mut admitted = 0;
    for n in 0..10 {
        let base = if n % 2 == 0 {
            &first.base
        } else {
            &second_base
        };
        let (status, _, body) = request(&first.client, base, &key).await;
        match status {
            404 => admitted += 1,
            429 => {}
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(admitted, 4, "one burst of 4 across both processes");
    second.shutdown().await.unwrap();
    first.stop().await;
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        each(Backend::ALL) => [
            refuses_past_the_burst_locally,
            bad_limits_are_refused_naming_the_field,
        ],
        each(Backend::ALL).needs(Server::Redis) => [
            refuses_past_the_burst_on_redis,
        ],
        tokio.needs(Server::Postgres).needs(Server::Redis) => [
            processes_sharing_redis_share_the_limit,
        ],
    }
}
