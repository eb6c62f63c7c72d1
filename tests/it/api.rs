#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The HTTP API as a client sees it: the wire contract of the subscriber
//! endpoints and the operator API, on every backend, against the real app.

use crate::common::{read, Backend, TestApp, ADMIN_TOKEN};
use reqwest::Method;
use riskgate::store::{JobOutcome, JobState};
use serde_json::{json, Value};

fn ingest_body(subscriber: Value, request_id: &str) -> String {
    json!({"request_id": request_id, "subscriber_id": subscriber, "session_id": "sess-1", "user_id": "user@example.com"})
        .to_string()
}

async fn wire_contract_rejections(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let ok = ingest_body(json!(12), "req-1");

    assert_eq!(
        app.ingest(None, ok.clone()).await,
        (401, json!({"error": "Missing API key"}))
    );
    let blank = app
        .client
        .post(app.url("/fingerprint/ingest"))
        .header("X-API-Key", "")
        .body(ok.clone());
    assert_eq!(
        read(blank.send().await.unwrap()).await,
        (401, json!({"error": "Missing API key"}))
    );
    for bad in [
        "nope",
        "rg_live_aaaaaaaaaaaa_forged",
        &key[..key.len() - 1],
        &format!("{key}x"),
    ] {
        assert_eq!(
            app.ingest(Some(bad), ok.clone()).await,
            (401, json!({"error": "Invalid API key"})),
            "{bad}"
        );
    }

    // Anything that is not a JSON object, whatever the Content-Type says.
    for body in [
        "",
        "{",
        "request_id=1&subscriber_id=12",
        "[1,2]",
        "\"text\"",
        "null",
        "12",
        "{\"a\":1}}",
    ] {
        let (status, err) = app.ingest(Some(&key), body).await;
        assert_eq!(status, 400, "{body:?}");
        assert!(
            err["error"].as_str().unwrap().starts_with("Invalid JSON: "),
            "{body:?} -> {err}"
        );
    }
    let form = app
        .client
        .post(app.url("/fingerprint/ingest"))
        .header("X-API-Key", &key)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(ok.clone());
    assert_eq!(
        read(form.send().await.unwrap()).await.0,
        202,
        "curl's default Content-Type is accepted"
    );

    for field in ["request_id", "subscriber_id", "session_id", "user_id"] {
        let mut body: Value = serde_json::from_str(&ok).unwrap();
        body.as_object_mut().unwrap().remove(field);
        let expected = json!({"error": format!("Missing '{field}' in request body")});
        assert_eq!(
            app.ingest(Some(&key), body.to_string()).await,
            (400, expected.clone())
        );
        body[field] = Value::Null;
        assert_eq!(
            app.ingest(Some(&key), body.to_string()).await,
            (400, expected),
            "null is missing"
        );
    }

    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(1024 * 1024 + 1));
    assert_eq!(
        app.ingest(Some(&key), big).await,
        (413, json!({"error": "Request body too large"}))
    );

    for other in [json!(13), json!("13"), json!("012")] {
        assert_eq!(
            app.ingest(Some(&key), ingest_body(other, "req-2")).await,
            (
                403,
                json!({"error": "subscriber_id does not match API key"})
            )
        );
    }

    let (status, body) = read(
        app.client
            .get(app.url("/no/such/route"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (404, json!({"error": "Not found"})));
    let (status, body) = read(
        app.client
            .get(app.url("/fingerprint/ingest"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body),
        (405, json!({"error": "Method not allowed"}))
    );
    app.stop().await;
}

async fn integer_and_string_subscriber_ids_are_the_same(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let (status, first) = app.ingest(Some(&key), ingest_body(json!(12), "fp-1")).await;
    assert_eq!(status, 202);
    let (status, second) = app
        .ingest(Some(&key), ingest_body(json!("12"), "fp-1"))
        .await;
    assert_eq!(status, 202);
    assert_eq!(
        (first["mode"].as_str(), second["mode"].as_str()),
        (Some("queued"), Some("in_flight"))
    );
    app.stop().await;
}

async fn ingest_answers_202_with_keys_and_modes(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let (status, body) = app
        .ingest(Some(&key), ingest_body(json!(12), "1708102555327.NLOjmg"))
        .await;
    assert_eq!(status, 202);
    assert_eq!(
        body,
        json!({
            "status": "accepted",
            "mode": "queued",
            "redis_keys": ["rg:12:fp:req:1708102555327.NLOjmg", "rg:12:fp:session:sess-1", "rg:12:fp:user:user@example.com"],
            "request_id": "1708102555327.NLOjmg",
            "user_id": "user@example.com",
            "session_id": "sess-1"
        })
    );
    let (_, again) = app
        .ingest(Some(&key), ingest_body(json!(12), "1708102555327.NLOjmg"))
        .await;
    assert_eq!(again["mode"], "in_flight");

    // The job is durable and visible to the operator.
    let (status, jobs) = app
        .admin(Method::GET, "/admin/subscribers/12/jobs", None)
        .await;
    assert_eq!(status, 200);
    let jobs = jobs["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "a repeat ingest records no second job");
    // No provider is reachable in this test: the worker may be retrying it.
    assert!(
        matches!(jobs[0]["state"].as_str(), Some("pending" | "running")),
        "{}",
        jobs[0]
    );
    assert_eq!(jobs[0]["payload"]["provider"], "fingerprint");

    // Once the worker has stored a result, a repeat ingest is `cached`.
    let job_id = jobs[0]["id"].as_str().unwrap();
    let finished = app
        .store()
        .finish_job(
            job_id,
            &JobOutcome::Succeeded {
                result: "{}".into(),
            },
        )
        .await
        .unwrap();
    assert!(finished);
    let (_, cached) = app
        .ingest(Some(&key), ingest_body(json!(12), "1708102555327.NLOjmg"))
        .await;
    assert_eq!(cached["mode"], "cached");
    let (_, pending) = app
        .admin(
            Method::GET,
            "/admin/subscribers/12/jobs?state=pending",
            None,
        )
        .await;
    assert_eq!(pending["jobs"].as_array().unwrap().len(), 0);
    app.stop().await;
}

async fn ingest_validates_fields_and_providers(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let with = |patch: Value| {
        let mut body: Value = serde_json::from_str(&ingest_body(json!(12), "req-9")).unwrap();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body.to_string()
    };
    for (patch, field) in [
        (json!({"request_id": ""}), "request_id"),
        (json!({"request_id": 17}), "request_id"),
        (json!({"request_id": ".."}), "request_id"),
        (json!({"request_id": "x".repeat(257)}), "request_id"),
        (json!({"session_id": "   "}), "session_id"),
        (json!({"user_id": {"a": 1}}), "user_id"),
        (json!({"user_id": "a\u{0000}b"}), "user_id"),
        (json!({"subscriber_id": 1.5}), "subscriber_id"),
        (json!({"subscriber_id": "a b"}), "subscriber_id"),
        (json!({"provider": "acme"}), "provider"),
    ] {
        let (status, body) = app.ingest(Some(&key), with(patch.clone())).await;
        assert_eq!(status, 400, "{patch}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains(&format!("'{field}'")),
            "{patch} -> {body}"
        );
    }
    let (status, body) = app
        .ingest(Some(&key), with(json!({"provider": "stytch"})))
        .await;
    assert_eq!(
        (status, body),
        (
            422,
            json!({"error": "Provider 'stytch' is not configured for this subscriber"})
        )
    );
    let (status, body) = app
        .ingest(Some(&key), with(json!({"provider": "fingerprint"})))
        .await;
    assert_eq!((status, body["mode"].as_str()), (202, Some("queued")));

    // A subscriber without providers gets the documented 422.
    app.admin(
        Method::POST,
        "/admin/subscribers",
        Some(json!({"id": "bare", "name": "Bare"})),
    )
    .await;
    let bare = app.new_key("bare").await;
    let (status, body) = app
        .ingest(Some(&bare), ingest_body(json!("bare"), "req-1"))
        .await;
    assert_eq!(
        (status, body),
        (
            422,
            json!({"error": "No device provider configured for this subscriber"})
        )
    );
    app.stop().await;
}

async fn revocation_and_suspension_apply_on_the_next_request(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let other = app.new_key("12").await;
    assert_eq!(
        app.ingest(Some(&key), ingest_body(json!(12), "a")).await.0,
        202
    );

    let (_, keys) = app
        .admin(Method::GET, "/admin/subscribers/12/keys", None)
        .await;
    let key_id = riskgate::secrets::key_id_of(&key).unwrap();
    assert!(
        !keys.to_string().contains(&key),
        "listing never shows a key"
    );
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2);
    let (status, revoked) = app
        .admin(
            Method::DELETE,
            &format!("/admin/subscribers/12/keys/{key_id}"),
            None,
        )
        .await;
    assert_eq!((status, revoked["status"].as_str()), (200, Some("revoked")));
    assert_eq!(
        app.ingest(Some(&key), ingest_body(json!(12), "b")).await,
        (401, json!({"error": "Invalid API key"}))
    );
    assert_eq!(
        app.ingest(Some(&other), ingest_body(json!(12), "b"))
            .await
            .0,
        202,
        "other keys keep working"
    );

    let (status, _) = app
        .admin(
            Method::PATCH,
            "/admin/subscribers/12",
            Some(json!({"status": "suspended"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        app.ingest(Some(&other), ingest_body(json!(12), "c")).await,
        (401, json!({"error": "Invalid API key"}))
    );
    app.admin(
        Method::PATCH,
        "/admin/subscribers/12",
        Some(json!({"status": "active"})),
    )
    .await;
    assert_eq!(
        app.ingest(Some(&other), ingest_body(json!(12), "c"))
            .await
            .0,
        202
    );

    let (status, _) = app
        .admin(Method::DELETE, "/admin/subscribers/12/keys/nosuchkey", None)
        .await;
    assert_eq!(status, 404);
    app.stop().await;
}

async fn operator_api_requires_the_admin_token(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    let get = |auth: Option<(&str, String)>| {
        let mut req = app.client.get(app.url("/admin/subscribers"));
        if let Some((name, value)) = auth {
            req = req.header(name, value);
        }
        req
    };
    let cases = [
        (None, "Missing admin token"),
        (Some(("X-API-Key", key.clone())), "Missing admin token"),
        (
            Some(("Authorization", format!("Bearer {key}"))),
            "Invalid admin token",
        ),
        (
            Some(("Authorization", "Bearer wrong-token-0123456789".into())),
            "Invalid admin token",
        ),
        (
            Some(("Authorization", format!("Basic {ADMIN_TOKEN}"))),
            "Invalid admin token",
        ),
    ];
    for (auth, message) in cases {
        let (status, body) = read(get(auth.clone()).send().await.unwrap()).await;
        assert_eq!((status, body), (401, json!({"error": message})), "{auth:?}");
    }
    let (status, _) = read(
        get(Some(("Authorization", format!("Bearer {ADMIN_TOKEN}"))))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    app.stop().await;
}

async fn operator_manages_subscribers(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (status, created) = app
        .admin(
            Method::POST,
            "/admin/subscribers",
            Some(json!({"name": "Acme"})),
        )
        .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(riskgate::fields::is_subscriber_id(&id), "{id}");
    let secret = created["webhook_secret"].as_str().unwrap();
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    assert!(raw.len() >= 24);

    // A key needs no body, but a body that is not JSON is refused: a form
    // feed is white space to Rust, not to JSON.
    for (body, expected) in [("", 201), (" \n\t\r", 201), ("\x0c", 400)] {
        let resp = app
            .client
            .post(app.url(&format!("/admin/subscribers/{id}/keys")))
            .bearer_auth(crate::common::ADMIN_TOKEN)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), expected, "{body:?}");
    }

    let (status, shown) = app
        .admin(Method::GET, &format!("/admin/subscribers/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(shown["name"], "Acme");
    assert!(
        shown.get("webhook_secret").is_none(),
        "the secret is shown once"
    );

    let (status, body) = app
        .admin(
            Method::POST,
            "/admin/subscribers",
            Some(json!({"id": id, "name": "Again"})),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            409,
            json!({"error": format!("Subscriber '{id}' already exists")})
        )
    );
    let (status, body) = app
        .admin(
            Method::POST,
            "/admin/subscribers",
            Some(json!({"id": "bad id", "name": "x"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .admin(Method::POST, "/admin/subscribers", Some(json!({"id": 7})))
        .await;
    assert_eq!(
        (status, body),
        (400, json!({"error": "Missing 'name' in request body"}))
    );

    let (status, renamed) = app
        .admin(
            Method::PATCH,
            &format!("/admin/subscribers/{id}"),
            Some(json!({"name": "Acme EU"})),
        )
        .await;
    assert_eq!(
        (status, renamed["name"].as_str(), renamed["status"].as_str()),
        (200, Some("Acme EU"), Some("active"))
    );
    let (status, _) = app
        .admin(
            Method::PATCH,
            &format!("/admin/subscribers/{id}"),
            Some(json!({"status": "deleted"})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .admin(
            Method::PATCH,
            &format!("/admin/subscribers/{id}"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .admin(Method::GET, "/admin/subscribers/nobody", None)
        .await;
    assert_eq!(status, 404);

    app.admin(
        Method::POST,
        "/admin/subscribers",
        Some(json!({"id": 12, "name": "Twelve"})),
    )
    .await;
    let (_, list) = app.admin(Method::GET, "/admin/subscribers", None).await;
    let ids: Vec<_> = list["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    assert_eq!(ids, [json!(id), json!("12")]);
    app.stop().await;
}

async fn provider_credentials_are_validated_and_never_shown(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.admin(
        Method::POST,
        "/admin/subscribers",
        Some(json!({"id": 12, "name": "Acme"})),
    )
    .await;
    let put = |provider: &'static str, body: Value| {
        let app = &app;
        async move {
            app.admin(
                Method::PUT,
                &format!("/admin/subscribers/12/providers/{provider}"),
                Some(body),
            )
            .await
        }
    };
    assert_eq!(
        put("stytch", json!({"project_id": "project-test-1"})).await,
        (400, json!({"error": "Missing 'secret' in request body"}))
    );
    assert_eq!(
        put(
            "fingerprint",
            json!({"secret_key": "k", "api_version": "v9"})
        )
        .await
        .0,
        400
    );
    assert_eq!(put("acme", json!({"secret_key": "k"})).await.0, 404);

    let (status, stytch) = put(
        "stytch",
        json!({"project_id": "project-test-1", "secret": "secret-test-STYTCH-xyz", "extra": 1}),
    )
    .await;
    assert_eq!((status, stytch["is_default"].as_bool()), (200, Some(true)));
    let (status, fp) = put(
        "fingerprint",
        json!({"secret_key": "fp-SECRET-abc123", "region": "eu"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(fp["settings"], json!({"region": "eu", "api_version": "v4"}));
    assert_eq!(
        fp["is_default"], false,
        "the first configured provider stays the default"
    );
    let (_, iq) = put("fingerprintiq", json!({"secret_key": "fiq_secret_QQQ"})).await;
    let (_, sub) = app.admin(Method::GET, "/admin/subscribers/12", None).await;
    assert_eq!(
        sub["providers"],
        json!(["stytch", "fingerprint", "fingerprintiq"])
    );
    assert_eq!(sub["default_provider"], "stytch");

    let shown = format!("{stytch}{fp}{iq}{sub}");
    let secrets = [
        "secret-test-STYTCH-xyz",
        "fp-SECRET-abc123",
        "fiq_secret_QQQ",
    ];
    for secret in secrets {
        assert!(!shown.contains(secret), "{secret} was returned");
    }
    // A dump of the database does not show them either.
    let rows = app.store().list_provider_credentials("12").await.unwrap();
    let dump = format!("{rows:?}");
    for secret in secrets {
        assert!(!dump.contains(secret), "{secret} stored in clear");
    }
    let sealer = &app.running.as_ref().unwrap().state.sealer;
    let opened = sealer
        .open(
            &rows[1].sealed,
            &riskgate::service::operator::credentials_context(
                "12",
                riskgate::providers::Provider::Fingerprint,
            ),
        )
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&opened).unwrap()["secret_key"],
        "fp-SECRET-abc123"
    );
    app.stop().await;
}

async fn rule_sets_are_validated_and_versioned(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.admin(
        Method::POST,
        "/admin/subscribers",
        Some(json!({"id": 12, "name": "Acme"})),
    )
    .await;
    let (status, initial) = app
        .admin(Method::GET, "/admin/subscribers/12/rules", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            initial["version"].as_i64(),
            initial["review_threshold"].as_f64()
        ),
        (Some(0), Some(0.3))
    );

    let good = json!({"review_threshold": 0.4, "block_threshold": 0.8, "rules": [
        {"name": "Big amount", "expression": "amount > 1000", "weight": 0.25},
        {"name": "Trusted", "expression": "customer.status == 'trusted'", "weight": -0.5, "action": "allow"}
    ]});
    let (status, stored) = app
        .admin(
            Method::PUT,
            "/admin/subscribers/12/rules",
            Some(good.clone()),
        )
        .await;
    assert_eq!((status, stored["version"].as_i64()), (200, Some(1)));
    let bad = json!({"rules": [{"name": "Oops", "expression": "x", "weight": 3}]});
    let (status, body) = app
        .admin(Method::PUT, "/admin/subscribers/12/rules", Some(bad))
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "Invalid rule 'Oops': 'weight' must lie in [-1, 1]"})
        )
    );
    let (_, current) = app
        .admin(Method::GET, "/admin/subscribers/12/rules", None)
        .await;
    assert_eq!(
        current["version"], 1,
        "a rejected set leaves the previous version in force"
    );
    assert_eq!(current["rules"][1]["action"], "allow");
    assert_eq!(current["block_threshold"], 0.8);
    let (_, next) = app
        .admin(Method::PUT, "/admin/subscribers/12/rules", Some(good))
        .await;
    assert_eq!(next["version"], 2);
    app.stop().await;
}

async fn tenants_are_isolated(backend: Backend) {
    let app = TestApp::start(backend).await;
    let a = app.subscriber_with_key("a").await;
    let b = app.subscriber_with_key("b").await;
    assert_eq!(
        app.ingest(Some(&a), ingest_body(json!("a"), "shared-id"))
            .await
            .1["mode"],
        "queued"
    );
    // The same provider request id under another tenant is that tenant's own job.
    assert_eq!(
        app.ingest(Some(&b), ingest_body(json!("b"), "shared-id"))
            .await
            .1["mode"],
        "queued"
    );
    assert_eq!(
        app.ingest(Some(&b), ingest_body(json!("a"), "x")).await.0,
        403
    );
    app.stop().await;
}

async fn operations_endpoints(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("12").await;
    app.ingest(Some(&key), ingest_body(json!(12), "m-1")).await;
    app.ingest(None, "{}").await;
    let get = |path: &str| app.client.get(app.url(path)).send();
    assert_eq!(
        read(get("/healthz").await.unwrap()).await,
        (200, json!({"status": "ok"}))
    );
    let (status, ready) = read(get("/readyz").await.unwrap()).await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ready")));
    let resp = get("/metrics").await.unwrap();
    let id = resp.headers().get("x-request-id").cloned();
    assert!(id.is_some(), "every response carries a request id");
    let metrics = resp.text().await.unwrap();
    for line in [
        r#"riskgate_http_requests_total{method="POST",route="/fingerprint/ingest",status="202"} 1"#,
        r#"riskgate_http_requests_total{method="POST",route="/fingerprint/ingest",status="401"} 1"#,
        r#"riskgate_ingest_total{mode="queued"} 1"#,
        r#"riskgate_http_request_duration_seconds_count{method="POST",route="/fingerprint/ingest"} 2"#,
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    // The one job is somewhere in its life (the worker may be retrying it: no
    // provider is reachable here); every state has a series.
    let jobs: i64 = metrics
        .lines()
        .filter(|l| l.starts_with(r#"riskgate_jobs{kind="device_fetch""#))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(jobs, 1, "{metrics}");
    for state in ["pending", "running", "succeeded", "failed"] {
        let series = format!(r#"riskgate_jobs{{kind="device_fetch",state="{state}"}}"#);
        assert!(metrics.contains(&series), "missing {series}");
    }
    app.stop().await;
}

/// Every route the router serves is in `/openapi.json`, with its methods.
async fn openapi_documents_every_route() {
    let app = TestApp::start(Backend::Sqlite).await;
    let (status, doc) = read(
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/fingerprint/ingest", "post"),
        ("/fingerprint/events/{request_id}", "get"),
        ("/admin/subscribers", "post"),
        ("/admin/subscribers", "get"),
        ("/admin/subscribers/{id}", "get"),
        ("/admin/subscribers/{id}", "patch"),
        ("/admin/subscribers/{id}/keys", "post"),
        ("/admin/subscribers/{id}/keys", "get"),
        ("/admin/subscribers/{id}/keys/{key_id}", "delete"),
        ("/admin/subscribers/{id}/providers/fingerprint", "put"),
        ("/admin/subscribers/{id}/providers/stytch", "put"),
        ("/admin/subscribers/{id}/providers/fingerprintiq", "put"),
        ("/admin/subscribers/{id}/rate-limit", "get"),
        ("/admin/subscribers/{id}/rate-limit", "put"),
        ("/admin/subscribers/{id}/rate-limit", "delete"),
        ("/admin/subscribers/{id}/rules", "get"),
        ("/admin/subscribers/{id}/rules", "put"),
        ("/admin/subscribers/{id}/rules/versions", "post"),
        ("/admin/subscribers/{id}/rules/versions", "get"),
        ("/admin/subscribers/{id}/rules/versions/{v}", "get"),
        ("/admin/subscribers/{id}/rules/versions/{v}/publish", "post"),
        ("/admin/subscribers/{id}/rules/versions/{v}/shadow", "post"),
        ("/admin/subscribers/{id}/rules/shadow", "delete"),
        ("/admin/subscribers/{id}/rules/stats", "get"),
        ("/admin/subscribers/{id}/jobs", "get"),
        ("/admin/subscribers/{id}/backtests", "post"),
        ("/admin/subscribers/{id}/backtests", "get"),
        ("/admin/subscribers/{id}/backtests/{backtest_id}", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
        ("/risk/bin/score", "post"),
        ("/risk/decisions/{decision_id}", "get"),
        ("/risk/decisions/{decision_id}/feedback", "post"),
        ("/risk/feedback/gateway", "post"),
        ("/admin/subscribers/{id}/audit", "get"),
        ("/admin/subscribers/{id}/users", "post"),
        ("/admin/subscribers/{id}/users", "get"),
        ("/admin/subscribers/{id}/users/{user_id}", "patch"),
        ("/customers/{user_id}", "get"),
        ("/customers/{user_id}", "patch"),
        ("/admin/subscribers/{id}/webhook-secret/rotate", "post"),
        ("/admin/subscribers/{id}/signing-scheme", "put"),
        ("/admin/subscribers/{id}/signing-key/rotate", "post"),
        (
            "/admin/subscribers/{id}/callbacks/{decision_id}/retry",
            "post",
        ),
        ("/lists", "get"),
        ("/lists/{name}", "get"),
        ("/lists/{name}", "put"),
        ("/lists/{name}", "delete"),
        ("/lists/{name}/entries", "post"),
        ("/lists/{name}/entries/{value}", "delete"),
        ("/admin/subscribers/{id}/lists", "get"),
        ("/admin/subscribers/{id}/lists/{name}", "get"),
        ("/admin/subscribers/{id}/lists/{name}", "put"),
        ("/admin/subscribers/{id}/lists/{name}", "delete"),
        ("/admin/subscribers/{id}/lists/{name}/entries", "post"),
        (
            "/admin/subscribers/{id}/lists/{name}/entries/{value}",
            "delete",
        ),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} undocumented"
        );
    }
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        documented,
        expected.len(),
        "documented routes: {:?}",
        paths.keys().collect::<Vec<_>>()
    );
    let ingest = &paths["/fingerprint/ingest"]["post"];
    assert!(ingest["responses"]["202"].is_object());
    for schema in ["SigningSchemeSet", "RotatedSigningKey"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    let view = &doc["components"]["schemas"]["SubscriberView"]["properties"];
    assert!(
        view["signing_scheme"].is_object() && view["public_key"].is_object(),
        "{view}"
    );
    assert!(doc["components"]["schemas"]["IngestResponse"].is_object());
    app.stop().await;
}

/// What a client generator or a contract test needs from the document: every
/// error an operation can answer, with the `{"error"}` schema, and request
/// bodies that say which fields are required and what they accept.
async fn openapi_lists_every_error_and_types_every_body() {
    let doc = serde_json::to_value(riskgate::app::openapi()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let resolve = |schema: &Value| -> Value {
        match schema["$ref"].as_str() {
            Some(r) => schemas[r.trim_start_matches("#/components/schemas/")].clone(),
            None => schema.clone(),
        }
    };
    let error_ref = "#/components/schemas/ErrorBody";
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let what = format!("{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            let statuses: Vec<u16> = responses.keys().map(|s| s.parse().unwrap()).collect();
            for (status, response) in responses {
                let schema = &response["content"]["application/json"]["schema"];
                if status == "204" {
                    assert!(response.get("content").is_none(), "{what} 204 has a body");
                    continue;
                }
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(schema["$ref"], error_ref, "{what} {status}");
                } else if path != "/metrics" && path != "/openapi.json" {
                    let schema = resolve(schema);
                    assert!(
                        schema["properties"].is_object() || schema["allOf"].is_array(),
                        "{what} {status}: untyped response {schema}"
                    );
                }
            }
            let security = op["security"].to_string();
            let mut expected = Vec::new();
            if security.contains("api_key") {
                expected.extend([401, 429, 503]);
            }
            if security.contains("admin_token") {
                expected.extend([401, 503]);
            }
            if path.starts_with("/admin/subscribers/{id}") {
                expected.push(404);
            }
            if let Some(body) = op.get("requestBody") {
                expected.extend([400, 413]);
                let schema = resolve(&body["content"]["application/json"]["schema"]);
                let typed = schema["properties"].is_object()
                    || schema["allOf"].is_array()
                    || schema["anyOf"].is_array()
                    || schema["oneOf"].as_array().is_some_and(|alternatives| {
                        alternatives
                            .iter()
                            .all(|a| resolve(a)["properties"].is_object())
                    });
                assert!(typed, "{what}: untyped request body {schema}");
            }
            for status in expected {
                assert!(statuses.contains(&status), "{what} does not list {status}");
            }
        }
    }
    // The documented score payload: every feature a request may carry, the
    // two the parser requires, and extras accepted.
    let payload = &schemas["ScorePayload"];
    let fields = payload["properties"].as_object().unwrap();
    for feature in riskgate::decision::features::FEATURES {
        let request = feature.origin == riskgate::decision::features::Origin::Request;
        if request && !matches!(feature.name, "subscriber_id" | "request_id") {
            assert!(
                fields.contains_key(feature.name),
                "payload lacks {}",
                feature.name
            );
        }
    }
    assert_eq!(
        payload["required"],
        json!(["transaction_amount", "currency"])
    );
    assert_ne!(payload["additionalProperties"], json!(false));
    let score = &schemas["ScoreRequest"];
    assert_eq!(
        score["required"],
        json!(["request_id", "subscriber_id", "payload"])
    );
    let feedback = &schemas["Label"];
    assert_eq!(feedback["enum"], json!(["fraud", "legit", "chargeback"]));
}

/// Hostile bodies and headers get 4xx JSON, never a 5xx or a dropped connection.
async fn hostile_inputs_never_cause_server_errors() {
    let app = TestApp::start(Backend::Sqlite).await;
    let key = app.subscriber_with_key("12").await;
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let deep_obj = format!(
        "{{\"request_id\": {}1{}}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    let bodies = vec![
        deep,
        deep_obj,
        "{\"request_id\": 1e999999}".to_owned(),
        "{\"subscriber_id\": 99999999999999999999999999999, \"request_id\": \"a\", \"session_id\": \"s\", \"user_id\": \"u\"}".to_owned(),
        "{\"subscriber_id\": -1, \"request_id\": \"a\", \"session_id\": \"s\", \"user_id\": \"u\"}".to_owned(),
        "\u{feff}{}".to_owned(),
        "{\"request_id\": \"\\ud800\"}".to_owned(),
        String::from_utf8_lossy(&[0xff, 0xfe, 0x00, 0x7b]).into_owned(),
        json!({"request_id": "é".repeat(300), "subscriber_id": 12, "session_id": "s", "user_id": "u"}).to_string(),
        json!({"request_id": "ok", "subscriber_id": 12, "session_id": "s", "user_id": "u", "provider": ["x"]}).to_string(),
    ];
    for body in bodies {
        let (status, resp) = app.ingest(Some(&key), body.clone()).await;
        assert!(
            (400..500).contains(&status),
            "{status} {resp} for {}",
            &body[..body.len().min(80)]
        );
        assert!(resp["error"].is_string());
    }
    let long = "x".repeat(10_000);
    let weird_keys: [&[u8]; 4] = [
        b"rg_live_\xe9\xff",
        b"rg_live_aaaaaaaaaaaa_",
        b"\t rg_live_ \t",
        long.as_bytes(),
    ];
    for weird in weird_keys {
        let header = reqwest::header::HeaderValue::from_bytes(weird).unwrap();
        let req = app
            .client
            .post(app.url("/fingerprint/ingest"))
            .header("X-API-Key", header)
            .body("{}");
        let (status, _) = read(req.send().await.unwrap()).await;
        assert_eq!(status, 401, "{weird:?}");
    }
    let bad_query = app
        .client
        .get(app.url("/admin/subscribers/12/jobs?limit=abc"))
        .bearer_auth(ADMIN_TOKEN);
    let (status, body) = read(bad_query.send().await.unwrap()).await;
    assert_eq!(status, 400, "{body}");
    let bad_state = app
        .client
        .get(app.url("/admin/subscribers/12/jobs?state=zombie"))
        .bearer_auth(ADMIN_TOKEN);
    assert_eq!(read(bad_state.send().await.unwrap()).await.0, 400);
    // Admin bodies are held to the same contract.
    let raw = app
        .client
        .post(app.url("/admin/subscribers"))
        .bearer_auth(ADMIN_TOKEN)
        .body("[]");
    assert_eq!(
        read(raw.send().await.unwrap()).await,
        (
            400,
            json!({"error": "Invalid JSON: expected an object, got an array"})
        )
    );
    // The service is still healthy.
    let ok = app
        .ingest(Some(&key), ingest_body(json!(12), "after"))
        .await;
    assert_eq!(ok.0, 202);
    let pending = app
        .store()
        .list_jobs(&riskgate::store::JobFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    // Over an empty list the check below would hold whatever the state.
    assert!(
        !pending.is_empty(),
        "the ingest after the hostile ones queued no job"
    );
    assert!(pending
        .iter()
        .all(|j| matches!(j.state, JobState::Pending | JobState::Running)));
    app.stop().await;
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        each(Backend::ALL) => [
            wire_contract_rejections,
            integer_and_string_subscriber_ids_are_the_same,
            ingest_answers_202_with_keys_and_modes,
            ingest_validates_fields_and_providers,
            revocation_and_suspension_apply_on_the_next_request,
            operator_api_requires_the_admin_token,
            operator_manages_subscribers,
            provider_credentials_are_validated_and_never_shown,
            rule_sets_are_validated_and_versioned,
            tenants_are_isolated,
            operations_endpoints,
        ],
        tokio => [
            openapi_documents_every_route,
            openapi_lists_every_error_and_types_every_body,
            hostile_inputs_never_cause_server_errors,
        ],
    }
}
