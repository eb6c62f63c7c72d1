//! The analyst console over plain HTTP, on every backend: cookie flags,
//! CSRF refusal, tenant isolation, roles, the sign-in throttle, session
//! expiry and sign-out, the operator's user API, the lists pages and their
//! one-step add from a decision, changing one's password, and the rules
//! pages (draft, backtest, shadow, publish, rollback) for admins only.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{read, Backend, TestApp};

const PASSWORD: &str = "a-long-password-1";

/// A client that does not follow redirects (the tests read them).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn user(app: &TestApp, sub: &str, email: &str, role: &str) -> Value {
    let (status, body) = app
        .admin(
            Method::POST,
            &format!("/admin/subscribers/{sub}/users"),
            Some(json!({"email": email, "role": role, "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// Signs in; the session cookie's value and the whole `Set-Cookie` line.
async fn sign_in(app: &TestApp, form: &[(&str, &str)]) -> (String, String) {
    let resp = client()
        .post(app.url("/console/login"))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "sign-in");
    let line = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    let value = line
        .strip_prefix("rg_session=")
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    (value, line)
}

async fn sign_in_user(app: &TestApp, email: &str) -> String {
    sign_in(
        app,
        &[("kind", "user"), ("email", email), ("password", PASSWORD)],
    )
    .await
    .0
}

async fn get(app: &TestApp, cookie: &str, path: &str) -> (StatusCode, String, Option<String>) {
    let resp = client()
        .get(app.url(path))
        .header("cookie", format!("rg_session={cookie}"))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let location = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (status, resp.text().await.unwrap(), location)
}

async fn post(
    app: &TestApp,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
    origin: Option<&str>,
) -> StatusCode {
    let mut req = client()
        .post(app.url(path))
        .header("cookie", format!("rg_session={cookie}"))
        .form(form);
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    req.send().await.unwrap().status()
}

fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a token")
        + 19;
    page[at..at + 32].to_owned()
}

/// A scored decision of the subscriber (action `review` or not).
async fn decision(app: &TestApp, key: &str, sub: &str, user: &str) -> String {
    let body = json!({"request_id": format!("r-{user}"), "subscriber_id": sub,
        "payload": {"transaction_amount": 20, "currency": "USD", "user_id": user,
                    "bin": "411111", "last4": "1111"}});
    let resp = app
        .client
        .post(app.url("/risk/bin/score"))
        .header("X-API-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, 200, "{body}");
    body["decision_id"].as_str().unwrap().to_owned()
}

async fn console_users_are_created_listed_and_disabled(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.subscriber_with_key("shop").await;
    let (status, created) = app
        .admin(
            Method::POST,
            "/admin/subscribers/shop/users",
            Some(json!({"email": "Ann@Example.com", "role": "analyst"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["user"]["email"], "ann@example.com");
    let generated = created["password"].as_str().unwrap().to_owned();
    assert!(generated.len() >= 16, "a generated password is shown once");
    let id = created["user"]["id"].as_str().unwrap().to_owned();
    for (body, status) in [
        (json!({"email": "ann@example.com", "role": "analyst"}), 409),
        (json!({"email": "not-an-email", "role": "analyst"}), 400),
        (json!({"email": "b@example.com", "role": "root"}), 400),
        (
            json!({"email": "b@example.com", "role": "admin", "password": "short"}),
            400,
        ),
    ] {
        let (got, answer) = app
            .admin(
                Method::POST,
                "/admin/subscribers/shop/users",
                Some(body.clone()),
            )
            .await;
        assert_eq!(got, status, "{body} -> {answer}");
    }
    let (status, _) = app
        .admin(
            Method::POST,
            "/admin/subscribers/nope/users",
            Some(json!({"email": "c@x.io", "role": "admin"})),
        )
        .await;
    assert_eq!(status, 404);
    let (_, list) = app
        .admin(Method::GET, "/admin/subscribers/shop/users", None)
        .await;
    assert_eq!(list["users"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains("argon2"), "no hash is listed");

    let (cookie, _) = sign_in(
        &app,
        &[
            ("kind", "user"),
            ("email", "ANN@example.com"),
            ("password", &generated),
        ],
    )
    .await;
    assert_eq!(
        get(&app, &cookie, "/console/overview").await.0,
        StatusCode::OK
    );
    let (status, view) = app
        .admin(
            Method::PATCH,
            &format!("/admin/subscribers/shop/users/{id}"),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!((status, view["status"].as_str()), (200, Some("disabled")));
    let (status, _, location) = get(&app, &cookie, "/console/overview").await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "a disabled user is signed out"
    );
    assert_eq!(location.as_deref(), Some("/console/login"));
    let refused = client()
        .post(app.url("/console/login"))
        .form(&[
            ("email", "ann@example.com"),
            ("password", generated.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let (_, audit) = app
        .admin(Method::GET, "/admin/subscribers/shop/audit", None)
        .await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"console_user.create") && actions.contains(&"console_user.status"),
        "{actions:?}"
    );
    app.stop().await;
}

async fn console_cookies_are_httponly_strict_and_expire(backend: Backend) {
    let app = TestApp::start_with(backend, |c| c.console_secure_cookies = true).await;
    app.subscriber_with_key("shop").await;
    user(&app, "shop", "ann@example.com", "analyst").await;
    let (cookie, line) = sign_in(
        &app,
        &[
            ("kind", "user"),
            ("email", "ann@example.com"),
            ("password", PASSWORD),
        ],
    )
    .await;
    for flag in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=43200",
        "Secure",
    ] {
        assert!(line.contains(flag), "{flag} in {line}");
    }
    let (status, page, _) = get(&app, &cookie, "/console/overview").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<svg"), "the overview draws its chart");
    // The database holds only the token's hash.
    let hash = riskgate::secrets::sha256_hex(&cookie);
    let now = riskgate::store::now_millis();
    let store = app.store();
    assert!(store
        .console_session(&hash, now, 0)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .console_session(&cookie, now, 0)
        .await
        .unwrap()
        .is_none());

    // A session past its absolute end, and one idle for too long, are gone.
    for (created, last_seen, expires) in [
        (now - 1000, now, now - 1),
        (now - 3 * 3_600_000, now - 3 * 3_600_000, now + 3_600_000),
    ] {
        let token = format!("rgs_{}", riskgate::secrets::random_id(43));
        store
            .create_console_session(&riskgate::store::ConsoleSession {
                token_hash: riskgate::secrets::sha256_hex(&token),
                user_id: None,
                subscriber_id: Some("shop".into()),
                role: "operator".into(),
                csrf_token: riskgate::secrets::random_id(32),
                created_at: created,
                last_seen_at: last_seen,
                expires_at: expires,
            })
            .await
            .unwrap();
        let (status, _, location) = get(&app, &token, "/console/overview").await;
        assert_eq!(
            (status, location.as_deref()),
            (StatusCode::SEE_OTHER, Some("/console/login"))
        );
    }

    // Signing out deletes the session: the same cookie no longer works.
    let page = get(&app, &cookie, "/console/overview").await.1;
    assert_eq!(
        post(
            &app,
            &cookie,
            "/console/logout",
            &[("csrf", &csrf_of(&page))],
            None
        )
        .await,
        StatusCode::SEE_OTHER
    );
    let (status, _, location) = get(&app, &cookie, "/console/overview").await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/console/login"))
    );
    app.stop().await;
}

async fn console_forms_need_their_csrf_token_and_the_same_site(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("shop").await;
    user(&app, "shop", "ann@example.com", "analyst").await;
    let id = decision(&app, &key, "shop", "u-1").await;
    let cookie = sign_in_user(&app, "ann@example.com").await;
    let page = get(&app, &cookie, &format!("/console/decisions/{id}"))
        .await
        .1;
    let csrf = csrf_of(&page);
    let path = format!("/console/decisions/{id}/label");
    let forged = [
        (vec![("label", "fraud")], None),
        (
            vec![
                ("label", "fraud"),
                ("csrf", "0123456789abcdef0123456789abcdef"),
            ],
            None,
        ),
        (
            vec![("label", "fraud"), ("csrf", csrf.as_str())],
            Some("https://evil.example"),
        ),
        (
            vec![("label", "fraud"), ("csrf", csrf.as_str())],
            Some("null"),
        ),
    ];
    for (form, origin) in &forged {
        assert_eq!(
            post(&app, &cookie, &path, form, *origin).await,
            StatusCode::FORBIDDEN,
            "{form:?} {origin:?}"
        );
    }
    let api = |id: &str| {
        app.client
            .get(app.url(&format!("/risk/decisions/{id}")))
            .header("X-API-Key", &key)
            .send()
    };
    let (_, body) = read(api(&id).await.unwrap()).await;
    assert_eq!(body["label"], Value::Null, "no forged request labelled it");
    let own_origin = app.base.clone();
    let ok = post(
        &app,
        &cookie,
        &path,
        &[
            ("label", "fraud"),
            ("csrf", &csrf),
            ("next", "/console/review"),
        ],
        Some(&own_origin),
    )
    .await;
    assert_eq!(ok, StatusCode::SEE_OTHER);
    let (_, body) = read(api(&id).await.unwrap()).await;
    assert_eq!(body["label"], "fraud");
    // Sign-in itself refuses another site's form.
    let cross = client()
        .post(app.url("/console/login"))
        .header("sec-fetch-site", "cross-site")
        .form(&[("email", "ann@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

async fn console_users_see_only_their_subscriber(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key_a = app.subscriber_with_key("a").await;
    app.subscriber_with_key("b").await;
    user(&app, "b", "bob@b.example", "admin").await;
    let id = decision(&app, &key_a, "a", "u-a").await;
    let bob = sign_in_user(&app, "bob@b.example").await;
    assert_eq!(
        get(&app, &bob, &format!("/console/decisions/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, &bob, "/console/customers/u-a").await.0,
        StatusCode::NOT_FOUND
    );
    let page = get(&app, &bob, "/console/decisions").await.1;
    assert!(!page.contains(&id), "A's decision is not listed to B");
    let csrf = csrf_of(&page);
    let label = post(
        &app,
        &bob,
        &format!("/console/decisions/{id}/label"),
        &[("label", "legit"), ("csrf", &csrf)],
        None,
    )
    .await;
    assert_eq!(label, StatusCode::NOT_FOUND);
    // B may not pick another subscriber either: only the operator picks.
    let pick = post(
        &app,
        &bob,
        "/console/subscribers",
        &[("subscriber_id", "a"), ("csrf", &csrf)],
        None,
    )
    .await;
    assert_eq!(pick, StatusCode::FORBIDDEN);
    assert_eq!(
        get(&app, &bob, &format!("/console/decisions/{id}")).await.0,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

async fn console_roles_gate_admin_pages(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.subscriber_with_key("shop").await;
    user(&app, "shop", "ann@example.com", "analyst").await;
    user(&app, "shop", "ada@example.com", "admin").await;
    let ann = sign_in_user(&app, "ann@example.com").await;
    let ada = sign_in_user(&app, "ada@example.com").await;
    for path in ["/console/users", "/console/rules", "/console/subscribers"] {
        let (status, page, _) = get(&app, &ann, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.contains("Not allowed"));
    }
    assert_eq!(get(&app, &ada, "/console/users").await.0, StatusCode::OK);
    assert_eq!(get(&app, &ada, "/console/rules").await.0, StatusCode::OK);
    assert!(
        !get(&app, &ann, "/console/overview")
            .await
            .1
            .contains("/console/users"),
        "no admin link for analysts"
    );

    // The operator signs in with the admin token and picks a subscriber.
    let (op, _) = sign_in(
        &app,
        &[("kind", "operator"), ("token", crate::common::ADMIN_TOKEN)],
    )
    .await;
    let (status, _, location) = get(&app, &op, "/console/overview").await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/console/subscribers"))
    );
    let page = get(&app, &op, "/console/subscribers").await.1;
    assert_eq!(
        post(
            &app,
            &op,
            "/console/subscribers",
            &[("subscriber_id", "shop"), ("csrf", &csrf_of(&page))],
            None
        )
        .await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(get(&app, &op, "/console/users").await.0, StatusCode::OK);
    let bad = client()
        .post(app.url("/console/login"))
        .form(&[("kind", "operator"), ("token", "rgadm_wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

async fn console_sign_in_failures_are_throttled(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.subscriber_with_key("shop").await;
    user(&app, "shop", "ann@example.com", "analyst").await;
    let attempt = |password: &'static str| {
        client()
            .post(app.url("/console/login"))
            .form(&[("email", "ann@example.com"), ("password", password)])
            .send()
    };
    for _ in 0..riskgate::service::console::ACCOUNT_FAILURES {
        assert_eq!(
            attempt("wrong-password-00").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let throttled = attempt(PASSWORD).await.unwrap();
    assert_eq!(
        throttled.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert!(throttled.headers().contains_key("retry-after"));
    app.stop().await;
}

/// The store's console reads: the search's filters (card and device through
/// the customers seen with them, exact JSON matches), its paging, the queue.
async fn console_store_searches_decisions_exactly(backend: Backend) {
    use riskgate::store::DecisionFilter;
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("shop").await;
    let other = app.subscriber_with_key("other").await;
    let mut ids = Vec::new();
    for (i, (user, bin, last4, ip)) in [
        ("u1", "411111", "1111", "10.0.0.1"),
        ("u2", "411111", "2222", "10.0.0.10"),
        ("u3", "550000", "1111", "10.0.0.1"),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"request_id": format!("r{i}"), "subscriber_id": "shop",
            "payload": {"transaction_amount": 5, "currency": "USD", "user_id": user,
                        "bin": bin, "last4": last4, "ip_address": ip, "email": format!("{user}@Shop.example")}});
        let resp = app
            .client
            .post(app.url("/risk/bin/score"))
            .header("X-API-Key", &key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, body) = read(resp).await;
        assert_eq!(status, 200, "{body}");
        ids.push(body["decision_id"].as_str().unwrap().to_owned());
    }
    // Another subscriber's decision with the same card is never found.
    decision(&app, &other, "other", "u1").await;
    let store = app.store();
    let search = |filter: DecisionFilter| {
        let store = store.clone();
        async move {
            let rows = store
                .search_decisions("shop", &filter, None, 50)
                .await
                .unwrap();
            let mut found: Vec<String> = rows.into_iter().map(|r| r.id).collect();
            found.sort();
            found
        }
    };
    let sorted = |picked: &[usize]| {
        let mut v: Vec<String> = picked.iter().map(|i| ids[*i].clone()).collect();
        v.sort();
        v
    };
    let card = |bin: Option<&str>, last4: Option<&str>| DecisionFilter {
        bin: bin.map(str::to_owned),
        last4: last4.map(str::to_owned),
        ..DecisionFilter::default()
    };
    assert_eq!(
        search(card(Some("411111"), Some("1111"))).await,
        sorted(&[0])
    );
    assert_eq!(search(card(Some("411111"), None)).await, sorted(&[0, 1]));
    assert_eq!(search(card(None, Some("1111"))).await, sorted(&[0, 2]));
    let ip = DecisionFilter {
        ip: Some("10.0.0.1".into()),
        ..DecisionFilter::default()
    };
    assert_eq!(
        search(ip).await,
        sorted(&[0, 2]),
        "10.0.0.1 is not 10.0.0.10"
    );
    let domain = DecisionFilter {
        email_domain: Some("shop.example".into()),
        ..DecisionFilter::default()
    };
    assert_eq!(
        search(domain).await.len(),
        3,
        "the domain is stored lower case"
    );
    let user = DecisionFilter {
        user_id: Some("u2".into()),
        ..DecisionFilter::default()
    };
    assert_eq!(search(user).await, sorted(&[1]));
    let wide = DecisionFilter {
        rule: Some("no such rule".into()),
        ..DecisionFilter::default()
    };
    assert!(search(wide).await.is_empty());
    // Paging newest first by (created_at, id): two pages hold all three, once.
    let first = store
        .search_decisions("shop", &DecisionFilter::default(), None, 2)
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let last = first.last().unwrap();
    let rest = store
        .search_decisions(
            "shop",
            &DecisionFilter::default(),
            Some((last.created_at, last.id.clone())),
            2,
        )
        .await
        .unwrap();
    let mut all: Vec<String> = first
        .iter()
        .chain(rest.iter())
        .map(|r| r.id.clone())
        .collect();
    all.sort();
    assert_eq!(all, sorted(&[0, 1, 2]));
    app.stop().await;
}

// ---- rules (admins) -------------------------------------------------------

/// Posts a form; the status, the body and the redirect target.
async fn submit(
    app: &TestApp,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String, Option<String>) {
    let resp = client()
        .post(app.url(path))
        .header("cookie", format!("rg_session={cookie}"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let location = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (status, resp.text().await.unwrap(), location)
}

/// The draft editor's fields for these rules (name, expression, weight,
/// action), all enabled.
fn draft_form<'a>(
    csrf: &'a str,
    rules: &[(&'a str, &'a str, &'a str, &'a str)],
) -> Vec<(String, String)> {
    let mut form = vec![
        ("csrf".to_owned(), csrf.to_owned()),
        ("rows".to_owned(), rules.len().to_string()),
        ("review_threshold".to_owned(), "0.3".to_owned()),
        ("block_threshold".to_owned(), "0.7".to_owned()),
    ];
    for (i, (name, expression, weight, action)) in rules.iter().enumerate() {
        for (k, v) in [
            ("name", *name),
            ("expression", *expression),
            ("weight", *weight),
            ("action", *action),
            ("enabled", "on"),
        ] {
            form.push((format!("r{i}_{k}"), v.to_owned()));
        }
    }
    form
}

fn as_pairs(form: &[(String, String)]) -> Vec<(&str, &str)> {
    form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The status of each stored version, by the operator's JSON API.
async fn version_statuses(app: &TestApp, sub: &str) -> Vec<(i64, String)> {
    let (status, body) = app
        .admin(
            Method::GET,
            &format!("/admin/subscribers/{sub}/rules/versions"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut all: Vec<(i64, String)> = body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    all.sort();
    all
}

async fn score_amount(app: &TestApp, key: &str, n: &str, amount: u32) -> Value {
    let body = json!({"request_id": format!("r-{n}"), "subscriber_id": "shop",
        "payload": {"transaction_amount": amount, "currency": "USD", "user_id": format!("u-{n}")}});
    let resp = app
        .client
        .post(app.url("/risk/bin/score"))
        .header("X-API-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// `2025-01-31T09:30`, as a `datetime-local` input sends it.
fn local_time(ms: i64) -> String {
    riskgate::clock::rfc3339(ms)[..16].to_owned()
}

async fn console_admins_draft_backtest_shadow_and_publish_rules(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("shop").await;
    let ada = user(&app, "shop", "ada@example.com", "admin").await;
    let ada_id = ada["user"]["id"].as_str().unwrap().to_owned();
    let small = score_amount(&app, &key, "small", 20).await;
    let big = score_amount(&app, &key, "big", 900).await;
    let big_id = big["decision_id"].as_str().unwrap().to_owned();
    assert_eq!(
        big["result"]["action"], "allow",
        "the default pack lets it through"
    );
    let cookie = sign_in_user(&app, "ada@example.com").await;

    let (status, page, _) = get(&app, &cookie, "/console/rules").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("default rule pack"), "{page}");
    let (status, editor, _) = get(&app, &cookie, "/console/rules/draft").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        editor.contains("<textarea") && editor.contains("data-validate"),
        "one field per rule, checked as typed"
    );
    let csrf = csrf_of(&editor);

    // A broken expression: nothing stored, the error next to its rule, the
    // text kept.
    let broken = draft_form(
        &csrf,
        &[
            ("big amount", "amount > 500", "0.9", "block"),
            ("half typed", "amount >", "0.1", ""),
        ],
    );
    let (status, page, _) = submit(&app, &cookie, "/console/rules/draft", &as_pairs(&broken)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let at = page.find("id=\"r1_errors\"").expect("rule 2's error line");
    assert!(
        page[at..]
            .starts_with("id=\"r1_errors\" aria-live=\"polite\">the expression does not compile"),
        "{}",
        &page[at..at + 200]
    );
    assert!(
        !page.contains("id=\"r0_errors\" aria-live=\"polite\">the"),
        "rule 1 is fine"
    );
    assert!(page.contains(">amount &gt;</textarea>"), "the text is kept");
    assert!(version_statuses(&app, "shop").await.is_empty());

    // The endpoint the editor's script calls answers each rule's errors.
    let resp = client()
        .post(app.url("/console/rules/validate"))
        .header("cookie", format!("rg_session={cookie}"))
        .form(&as_pairs(&broken))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, answer) = read(resp).await;
    assert_eq!(answer["valid"], false, "{answer}");
    assert_eq!(answer["rules"][0]["row"], 0);
    assert_eq!(answer["rules"][0]["errors"], json!([]), "{answer}");
    assert_eq!(answer["rules"][1]["row"], 1);
    assert!(
        answer["rules"][1]["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("the expression does not compile"),
        "{answer}"
    );

    // Fixed, it is stored as a draft by this user.
    let fixed = draft_form(
        &csrf,
        &[
            ("big amount", "amount > 500", "0.9", "block"),
            ("huge amount", "amount > 100000", "0.1", ""),
        ],
    );
    let (status, _, location) =
        submit(&app, &cookie, "/console/rules/draft", &as_pairs(&fixed)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/console/rules/versions/1"));
    assert_eq!(version_statuses(&app, "shop").await, [(1, "draft".into())]);
    let (_, one) = app
        .admin(
            Method::GET,
            "/admin/subscribers/shop/rules/versions/1",
            None,
        )
        .await;
    assert_eq!(one["author"], format!("user:{ada_id}"));
    assert_eq!(one["rules"].as_array().unwrap().len(), 2);
    let (status, page, _) = get(&app, &cookie, "/console/rules/versions/1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("big amount") && page.contains("tag d-added"),
        "a diff against live"
    );
    assert!(page.contains("ada@example.com"), "the author by email");

    // A backtest started from the version's page completes; its page shows
    // live beside the candidate and links the decision it changes.
    let now = riskgate::store::now_millis();
    let (from, to) = (local_time(now - 3_600_000), local_time(now + 120_000));
    let (status, _, location) = submit(
        &app,
        &cookie,
        "/console/rules/backtests",
        &[
            ("csrf", &csrf),
            ("version", "1"),
            ("from", &from),
            ("to", &to),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = location.unwrap();
    assert!(
        location.starts_with("/console/rules/backtests/bt_"),
        "{location}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let done = loop {
        let (status, page, _) = get(&app, &cookie, &location).await;
        assert_eq!(status, StatusCode::OK);
        if page.contains("tag b-done") {
            break page;
        }
        assert!(!page.contains("tag b-failed"), "{page}");
        assert!(std::time::Instant::now() < deadline, "not done in 30 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(done.contains("Live and candidate, side by side"));
    assert!(done.contains("Flagged (review or block) against the labels"));
    assert!(
        done.contains(&format!("/console/decisions/{big_id}")),
        "the blocked big payment is a changed decision"
    );
    assert!(
        !done.contains(small["decision_id"].as_str().unwrap()),
        "the small one does not change"
    );
    let (_, overview, _) = get(&app, &cookie, "/console/rules").await;
    assert!(overview.contains(&location), "recent backtests are listed");

    // Shadow, stopped.
    let (status, _, _) = submit(
        &app,
        &cookie,
        "/console/rules/versions/1/shadow",
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(version_statuses(&app, "shop").await, [(1, "shadow".into())]);
    let (_, overview, _) = get(&app, &cookie, "/console/rules").await;
    assert!(overview.contains("Stop shadow"));
    let shadowed = score_amount(&app, &key, "shadowed", 800).await;
    assert_eq!(
        shadowed["result"]["action"], "allow",
        "the shadow never acts"
    );
    let (status, stats, _) = get(&app, &cookie, "/console/rules/stats?range=1h").await;
    assert_eq!(status, StatusCode::OK);
    assert!(stats.contains("Shadow: v1"), "{stats}");
    let (status, _, _) = submit(
        &app,
        &cookie,
        "/console/rules/shadow/stop",
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(version_statuses(&app, "shop").await, [(1, "draft".into())]);

    // Publishing: a confirmation page first, then live.
    let (status, confirm, _) = get(&app, &cookie, "/console/rules/versions/1/publish").await;
    assert_eq!(status, StatusCode::OK);
    assert!(confirm.contains("Yes, publish version 1"));
    assert_eq!(
        version_statuses(&app, "shop").await,
        [(1, "draft".into())],
        "asking is not doing"
    );
    let (status, _, _) = submit(
        &app,
        &cookie,
        "/console/rules/versions/1/publish",
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(version_statuses(&app, "shop").await, [(1, "live".into())]);
    let blocked = score_amount(&app, &key, "after", 700).await;
    assert_eq!(
        (
            blocked["result"]["action"].as_str(),
            blocked["result"]["rules_version"].as_i64()
        ),
        (Some("block"), Some(1)),
        "{blocked}"
    );

    // A second version published, then a rollback to the first.
    let second = draft_form(&csrf, &[("big amount", "amount > 5000", "0.9", "block")]);
    let (status, _, location) =
        submit(&app, &cookie, "/console/rules/draft", &as_pairs(&second)).await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/console/rules/versions/2"))
    );
    let (_, page, _) = get(&app, &cookie, "/console/rules/versions/2").await;
    assert!(
        page.contains("amount &gt; 5000") && page.contains("tag d-changed"),
        "changed against live"
    );
    submit(
        &app,
        &cookie,
        "/console/rules/versions/2/publish",
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(
        version_statuses(&app, "shop").await,
        [(1, "retired".into()), (2, "live".into())]
    );
    let (_, page, _) = get(&app, &cookie, "/console/rules/versions/1").await;
    assert!(page.contains("Roll back to this version"));
    let (_, confirm, _) = get(&app, &cookie, "/console/rules/versions/1/publish").await;
    assert!(confirm.contains("Yes, roll back to version 1"));
    let (status, _, _) = submit(
        &app,
        &cookie,
        "/console/rules/versions/1/publish",
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        version_statuses(&app, "shop").await,
        [(1, "live".into()), (2, "retired".into())]
    );
    let (_, audit) = app
        .admin(Method::GET, "/admin/subscribers/shop/audit", None)
        .await;
    let by_ada = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == format!("user:{ada_id}"))
        .count();
    assert!(
        by_ada >= 7,
        "drafts, backtest, shadow, publishes by the user: {audit}"
    );
    app.stop().await;
}

async fn console_rules_are_for_admins_and_need_csrf(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.subscriber_with_key("shop").await;
    user(&app, "shop", "ann@example.com", "analyst").await;
    user(&app, "shop", "ada@example.com", "admin").await;
    let (status, _) = app
        .admin(
            Method::POST,
            "/admin/subscribers/shop/rules/versions",
            Some(json!({"rules": [{"name": "a", "expression": "amount > 1", "weight": 0.1}]})),
        )
        .await;
    assert_eq!(status, 201);
    let ann = sign_in_user(&app, "ann@example.com").await;
    let ada = sign_in_user(&app, "ada@example.com").await;
    for path in [
        "/console/rules",
        "/console/rules/draft",
        "/console/rules/versions/1",
        "/console/rules/versions/1/publish",
        "/console/rules/stats",
        "/console/rules/backtests/bt_unknown",
    ] {
        let (status, page, _) = get(&app, &ann, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.contains("Not allowed"), "{path}");
    }
    let ann_csrf = csrf_of(&get(&app, &ann, "/console/overview").await.1);
    let ada_csrf = csrf_of(&get(&app, &ada, "/console/overview").await.1);
    let now = riskgate::store::now_millis();
    let (from, to) = (local_time(now - 60_000), local_time(now));
    let posts: [(&str, Vec<(&str, &str)>); 6] = [
        (
            "/console/rules/draft",
            vec![
                ("rows", "1"),
                ("r0_name", "b"),
                ("r0_expression", "amount > 2"),
                ("r0_weight", "0.1"),
            ],
        ),
        ("/console/rules/validate", vec![("rows", "0")]),
        ("/console/rules/versions/1/publish", vec![]),
        ("/console/rules/versions/1/shadow", vec![]),
        ("/console/rules/shadow/stop", vec![]),
        (
            "/console/rules/backtests",
            vec![("version", "1"), ("from", &from), ("to", &to)],
        ),
    ];
    for (path, form) in &posts {
        let mut with_token = form.clone();
        with_token.push(("csrf", &ann_csrf));
        let (status, _, _) = submit(&app, &ann, path, &with_token).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "an analyst: {path}");
        let (status, _, _) = submit(&app, &ada, path, form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "no token: {path}");
        let mut wrong = form.clone();
        wrong.push(("csrf", "0123456789abcdef0123456789abcdef"));
        let (status, _, _) = submit(&app, &ada, path, &wrong).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "a wrong token: {path}");
        let mut right = form.clone();
        right.push(("csrf", &ada_csrf));
        assert_eq!(
            post(&app, &ada, path, &right, Some("https://evil.example")).await,
            StatusCode::FORBIDDEN,
            "another site: {path}"
        );
    }
    assert_eq!(
        version_statuses(&app, "shop").await,
        [(1, "draft".into())],
        "nothing changed"
    );
    let (_, list) = app
        .admin(Method::GET, "/admin/subscribers/shop/backtests", None)
        .await;
    assert_eq!(list["backtests"], json!([]), "no backtest queued");
    app.stop().await;
}

/// The subscriber API's view of a list.
async fn api_list(app: &TestApp, key: &str, name: &str) -> (u16, Value) {
    let resp = app
        .client
        .get(app.url(&format!("/lists/{name}")))
        .header("X-API-Key", key)
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    (status, body)
}

async fn audit_actions(app: &TestApp, sub: &str) -> Vec<String> {
    let (_, audit) = app
        .admin(
            Method::GET,
            &format!("/admin/subscribers/{sub}/audit"),
            None,
        )
        .await;
    audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

async fn console_analysts_edit_lists(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("shop").await;
    user(&app, "shop", "ann@example.com", "analyst").await;
    let ann = sign_in_user(&app, "ann@example.com").await;
    let (status, page, _) = get(&app, &ann, "/console/lists").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("No list yet"), "{page}");
    assert!(
        page.contains("href=\"/console/lists\""),
        "the navigation leads analysts to the lists"
    );
    let csrf = csrf_of(&page);

    // A name that cannot be a list's: the form again, with what was typed.
    let (status, page, _) = submit(
        &app,
        &ann,
        "/console/lists",
        &[
            ("csrf", &csrf),
            ("name", "Stolen Cards"),
            ("kind", "card"),
            ("description", "from the bank"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("role=\"alert\""), "{page}");
    assert!(page.contains("value=\"Stolen Cards\"") && page.contains("value=\"from the bank\""));
    let (status, _, location) = submit(
        &app,
        &ann,
        "/console/lists",
        &[
            ("csrf", &csrf),
            ("name", "stolen_cards"),
            ("kind", "card"),
            ("description", "from the bank"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/console/lists/stolen_cards"));
    let (_, page, _) = get(&app, &ann, "/console/lists").await;
    assert!(
        page.contains("No live rule reads it"),
        "its meaning: none yet"
    );

    // A value that does not fit the kind: 400, the message, the value kept.
    let entries = "/console/lists/stolen_cards/entries";
    let (status, page, _) = submit(
        &app,
        &ann,
        entries,
        &[
            ("csrf", &csrf),
            ("value", "not-a-card"),
            ("reason", "r1"),
            ("expiry", "7d"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("not a value for a card list"), "{page}");
    assert!(page.contains("value=\"not-a-card\"") && page.contains("value=\"r1\""));
    assert!(
        page.contains("<option value=\"7d\" selected>"),
        "the expiry kept"
    );
    assert_eq!(
        api_list(&app, &key, "stolen_cards").await.1["entries_total"],
        0
    );

    for (value, expiry) in [("4111 1111 1111 1111", "30d"), ("550000:0004", "never")] {
        let (status, _, location) = submit(
            &app,
            &ann,
            entries,
            &[
                ("csrf", &csrf),
                ("value", value),
                ("reason", "reported"),
                ("expiry", expiry),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{value}");
        assert_eq!(location.as_deref(), Some("/console/lists/stolen_cards"));
    }
    let (status, list) = api_list(&app, &key, "stolen_cards").await;
    assert_eq!(status, 200);
    let e = &list["entries"];
    assert_eq!(e.as_array().unwrap().len(), 2, "{list}");
    assert_eq!(e[0]["value"], "411111:1111", "only BIN and last4 are kept");
    let in_30_days = riskgate::store::now_millis() + 30 * 86_400_000;
    let expires =
        riskgate::service::lists::parse_rfc3339(e[0]["expires_at"].as_str().unwrap()).unwrap();
    assert!((in_30_days - expires).abs() < 60_000, "{list}");
    assert_eq!(e[1]["expires_at"], Value::Null);
    assert!(e[1]["author"].as_str().unwrap().starts_with("user:usr_"));
    let (_, page, _) = get(&app, &ann, "/console/lists/stolen_cards").await;
    assert!(
        page.contains("411111:1111") && page.contains("ann@example.com"),
        "{page}"
    );
    assert!(!page.contains("tag bad\">expired"), "nothing expired yet");

    // A rule that reads the list: both pages say what being on it does.
    let (status, body) = app
        .admin(
            Method::PUT,
            "/admin/subscribers/shop/rules",
            Some(
                json!({"rules": [{"name": "Stolen card", "expression": "lists.stolen_cards",
                "weight": 0.5, "action": "block", "final": true}]}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, page, _) = get(&app, &ann, "/console/lists").await;
    assert!(
        page.contains("<q>Stolen card</q> when it hits: blocks"),
        "{page}"
    );

    // Expired now: kept on the list, shown expired, no longer matching.
    let card =
        json!({"transaction_amount": 5, "currency": "USD", "bin": "55000000", "last4": "0004"});
    let score = |payload: Value| {
        let body = json!({"request_id": format!("r-{}", riskgate::secrets::random_id(8)),
            "subscriber_id": "shop", "payload": payload});
        let req = app
            .client
            .post(app.url("/risk/bin/score"))
            .header("X-API-Key", &key)
            .json(&body)
            .send();
        async move { read(req.await.unwrap()).await.1 }
    };
    assert_eq!(score(card.clone()).await["result"]["action"], "block");
    let (status, _, _) = submit(
        &app,
        &ann,
        "/console/lists/stolen_cards/expire",
        &[("csrf", &csrf), ("value", "550000:0004")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let resp = score(card.clone()).await;
    assert_eq!(
        resp["input"]["lists"],
        json!({}),
        "an expired entry does not match: {resp}"
    );
    let (_, list) = api_list(&app, &key, "stolen_cards").await;
    let expired = &list["entries"][1];
    assert_eq!(expired["value"], "550000:0004");
    assert_eq!(expired["reason"], "reported", "the entry keeps its reason");
    assert!(expired["expires_at"].is_string());
    let (_, page, _) = get(&app, &ann, "/console/lists/stolen_cards").await;
    assert!(page.contains("<tr class=\"expired\">") && page.contains("tag bad\">expired"));

    let (status, _, _) = submit(
        &app,
        &ann,
        "/console/lists/stolen_cards/remove",
        &[("csrf", &csrf), ("value", "550000:0004")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, list) = api_list(&app, &key, "stolen_cards").await;
    assert_eq!(list["entries_total"], 1, "{list}");
    let (status, _, _) = submit(
        &app,
        &ann,
        "/console/lists/stolen_cards/remove",
        &[("csrf", &csrf), ("value", "550000:0004")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "removed already");
    let actions = audit_actions(&app, "shop").await;
    for want in [
        "list.create",
        "list.entry.add",
        "list.entry.expire",
        "list.entry.remove",
    ] {
        assert!(actions.iter().any(|a| a == want), "{want} in {actions:?}");
    }
    app.stop().await;
}

async fn console_adds_a_decisions_card_to_a_list_in_one_step(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key = app.subscriber_with_key("shop").await;
    user(&app, "shop", "ann@example.com", "analyst").await;
    let ann = sign_in_user(&app, "ann@example.com").await;
    let id = decision(&app, &key, "shop", "u-1").await;
    let href = format!("/console/decisions/{id}");
    let (status, page, _) = get(&app, &ann, &href).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("411111…1111"), "the card is offered");
    assert!(page.contains("blocked_cards (new list)"), "{page}");
    let csrf = csrf_of(&page);
    // A list that is neither the subscriber's nor the kind's default.
    let (status, _, _) = submit(
        &app,
        &ann,
        "/console/add-to-list",
        &[
            ("csrf", &csrf),
            ("decision", &id),
            ("kind", "card"),
            ("list", "vip_cards"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A `next` off the console is not followed.
    let (status, _, location) = submit(
        &app,
        &ann,
        "/console/add-to-list",
        &[
            ("csrf", &csrf),
            ("decision", &id),
            ("kind", "card"),
            ("list", "blocked_cards"),
            ("next", "https://evil.example/"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some(href.as_str()));
    let (status, list) = api_list(&app, &key, "blocked_cards").await;
    assert_eq!(status, 200, "the default list was created: {list}");
    assert_eq!(list["kind"], "card");
    assert_eq!(list["entries"][0]["value"], "411111:1111");
    assert_eq!(list["entries"][0]["reason"], format!("from decision {id}"));
    let (_, page, _) = get(&app, &ann, &href).await;
    assert!(
        page.contains("on blocked_cards"),
        "the page says it is on the list"
    );

    // The next payment with that card is on the list.
    let body = json!({"request_id": "r-next", "subscriber_id": "shop",
        "payload": {"transaction_amount": 9, "currency": "USD", "bin": "411111", "last4": "1111"}});
    let resp = app
        .client
        .post(app.url("/risk/bin/score"))
        .header("X-API-Key", &key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (_, scored) = read(resp).await;
    assert_eq!(
        scored["input"]["lists"],
        json!({"blocked_cards": true}),
        "{scored}"
    );

    // The review queue's form names value and list in one field.
    let other = decision(&app, &key, "shop", "u-2").await;
    let (status, _, location) = submit(
        &app,
        &ann,
        "/console/add-to-list",
        &[
            ("csrf", &csrf),
            ("decision", &other),
            ("target", "card:blocked_cards"),
            ("next", "/console/review"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/console/review"));
    let (_, list) = api_list(&app, &key, "blocked_cards").await;
    assert_eq!(list["entries_total"], 1, "the same card: one entry");
    assert_eq!(
        list["entries"][0]["reason"],
        format!("from decision {other}")
    );
    // A kind the decision has no value of.
    let (status, _, _) = submit(
        &app,
        &ann,
        "/console/add-to-list",
        &[
            ("csrf", &csrf),
            ("decision", &id),
            ("target", "email:blocked_emails"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.stop().await;
}

async fn console_lists_are_the_subscribers_own(backend: Backend) {
    let app = TestApp::start(backend).await;
    let key_a = app.subscriber_with_key("a").await;
    app.subscriber_with_key("b").await;
    user(&app, "a", "ann@a.example", "analyst").await;
    user(&app, "b", "bob@b.example", "analyst").await;
    let ann = sign_in_user(&app, "ann@a.example").await;
    let bob = sign_in_user(&app, "bob@b.example").await;
    let id = decision(&app, &key_a, "a", "u-a").await;
    let csrf_a = csrf_of(&get(&app, &ann, "/console/lists").await.1);
    let (status, _, _) = submit(
        &app,
        &ann,
        "/console/lists",
        &[("csrf", &csrf_a), ("name", "a_cards"), ("kind", "card")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = submit(
        &app,
        &ann,
        "/console/lists/a_cards/entries",
        &[("csrf", &csrf_a), ("value", "411111:1111")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    let page = get(&app, &bob, "/console/lists").await.1;
    assert!(!page.contains("a_cards"), "A's list is not listed to B");
    assert_eq!(
        get(&app, &bob, "/console/lists/a_cards").await.0,
        StatusCode::NOT_FOUND
    );
    let csrf = csrf_of(&page);
    for (path, form) in [
        (
            "/console/lists/a_cards/entries",
            vec![("value", "550000:0004")],
        ),
        (
            "/console/lists/a_cards/expire",
            vec![("value", "411111:1111")],
        ),
        (
            "/console/lists/a_cards/remove",
            vec![("value", "411111:1111")],
        ),
        (
            "/console/add-to-list",
            vec![
                ("decision", id.as_str()),
                ("kind", "card"),
                ("list", "blocked_cards"),
            ],
        ),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        assert_eq!(
            submit(&app, &bob, path, &form).await.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let (_, list) = api_list(&app, &key_a, "a_cards").await;
    assert_eq!(list["entries_total"], 1, "{list}");
    assert_eq!(list["entries"][0]["expires_at"], Value::Null);
    assert_eq!(api_list(&app, &key_a, "blocked_cards").await.0, 404);

    // Without the token, or from another site, nothing of the new forms runs.
    for (path, form) in [
        (
            "/console/lists",
            vec![("name", "x_cards"), ("kind", "card")],
        ),
        (
            "/console/lists/a_cards/entries",
            vec![("value", "550000:0004")],
        ),
        (
            "/console/lists/a_cards/expire",
            vec![("value", "411111:1111")],
        ),
        (
            "/console/lists/a_cards/remove",
            vec![("value", "411111:1111")],
        ),
        (
            "/console/add-to-list",
            vec![
                ("decision", id.as_str()),
                ("kind", "card"),
                ("list", "blocked_cards"),
            ],
        ),
        (
            "/console/account/password",
            vec![
                ("current", PASSWORD),
                ("new", "another-password-1"),
                ("repeat", "another-password-1"),
            ],
        ),
    ] {
        assert_eq!(
            post(&app, &ann, path, &form, None).await,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        let mut with_token = form.clone();
        with_token.push(("csrf", &csrf_a));
        assert_eq!(
            post(&app, &ann, path, &with_token, Some("https://evil.example")).await,
            StatusCode::FORBIDDEN,
            "{path} cross-site"
        );
    }
    let (_, list) = api_list(&app, &key_a, "a_cards").await;
    assert_eq!(list["entries_total"], 1, "no forged change: {list}");
    assert_eq!(list["entries"][0]["expires_at"], Value::Null);
    assert_eq!(api_list(&app, &key_a, "x_cards").await.0, 404);
    assert_eq!(
        get(&app, &ann, "/console/overview").await.0,
        StatusCode::OK,
        "the password did not change"
    );
    app.stop().await;
}

async fn console_users_change_their_password(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.subscriber_with_key("shop").await;
    user(&app, "shop", "ann@example.com", "analyst").await;
    let here = sign_in_user(&app, "ann@example.com").await;
    let elsewhere = sign_in_user(&app, "ann@example.com").await;
    let (status, page, _) = get(&app, &here, "/console/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Change password"), "{page}");
    assert!(
        page.contains("href=\"/console/account\""),
        "the header links to it"
    );
    let csrf = csrf_of(&page);
    let new = "a-new-password-2";
    let change = |current: &'static str, new: &'static str, repeat: &'static str| {
        let csrf = csrf.clone();
        let here = here.clone();
        let app = &app;
        async move {
            submit(
                app,
                &here,
                "/console/account/password",
                &[
                    ("csrf", &csrf),
                    ("current", current),
                    ("new", new),
                    ("repeat", repeat),
                ],
            )
            .await
        }
    };
    let (status, page, _) = change("wrong-password-00", new, new).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("The current password is wrong."), "{page}");
    let (status, page, _) = change(PASSWORD, new, "a-new-password-3").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("differ"), "{page}");
    let (status, _, _) = change(PASSWORD, "short", "short").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, location) = change(PASSWORD, new, new).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/console/account?changed=1"));

    assert_eq!(
        get(&app, &here, "/console/overview").await.0,
        StatusCode::OK,
        "this session stays"
    );
    let (status, _, location) = get(&app, &elsewhere, "/console/overview").await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/console/login")),
        "the other session ended"
    );
    let old = client()
        .post(app.url("/console/login"))
        .form(&[("email", "ann@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        old.status(),
        StatusCode::UNAUTHORIZED,
        "the old password is refused"
    );
    sign_in(
        &app,
        &[
            ("kind", "user"),
            ("email", "ann@example.com"),
            ("password", new),
        ],
    )
    .await;
    assert!(audit_actions(&app, "shop")
        .await
        .iter()
        .any(|a| a == "console_user.password"));

    // Guessing the current password is throttled as sign-ins are.
    for _ in 0..riskgate::service::console::ACCOUNT_FAILURES {
        assert_eq!(
            change("wrong-password-00", "x-new-password-9", "x-new-password-9")
                .await
                .0,
            StatusCode::BAD_REQUEST
        );
    }
    let (status, _, _) = change(new, "x-new-password-9", "x-new-password-9").await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );

    // The operator has no password to change.
    let (op, _) = sign_in(
        &app,
        &[("kind", "operator"), ("token", crate::common::ADMIN_TOKEN)],
    )
    .await;
    let page = get(&app, &op, "/console/account").await.1;
    assert!(page.contains("no password to change"), "{page}");
    let (status, _, _) = submit(
        &app,
        &op,
        "/console/account/password",
        &[
            ("csrf", &csrf_of(&page)),
            ("current", "x"),
            ("new", new),
            ("repeat", new),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}

/// An IP or email domain search reads indexed columns: it finds exactly
/// the decisions with that value, in any time range.
async fn console_searches_by_ip_and_domain_beyond_12_hours(backend: Backend) {
    use riskgate::store::NewDecision;
    let app = TestApp::start(backend).await;
    app.subscriber_with_key("shop").await;
    app.subscriber_with_key("other").await;
    user(&app, "shop", "ann@example.com", "analyst").await;
    let store = app.store();
    let day = 86_400_000;
    let now = riskgate::store::now_millis();
    let old = |id: &str, sub: &str, ip: Option<&str>, domain: Option<&str>, age: i64| NewDecision {
        id: id.into(),
        subscriber_id: sub.into(),
        request_id: format!("req-{id}"),
        idempotency_key: None,
        request_hash: "h".into(),
        input: json!({"ip_address": ip, "email_domain": domain})
            .to_string()
            .into(),
        result: json!({"action": "allow", "rule_hits": []})
            .to_string()
            .into(),
        risk_score: 0.1,
        risk_level: "low".into(),
        action: "allow".into(),
        rules_version: 0,
        callback_url: None,
        user_id: None,
        duration_us: 1,
        created_at: now - age,
        shadow: None,
        ip_address: ip.map(str::to_owned),
        email_domain: domain.map(str::to_owned),
        customer: None,
        callback: None,
        references: Vec::new(),
    };
    for d in [
        old(
            "dec_ip3d",
            "shop",
            Some("10.0.0.1"),
            Some("a.example"),
            3 * day,
        ),
        old("dec_ip30d", "shop", Some("10.0.0.1"), None, 30 * day),
        old(
            "dec_ip10",
            "shop",
            Some("10.0.0.10"),
            Some("b.example"),
            2 * day,
        ),
        old(
            "dec_theirs",
            "other",
            Some("10.0.0.1"),
            Some("a.example"),
            2 * day,
        ),
    ] {
        store.record_decision(&d, 0).await.unwrap();
    }
    let ann = sign_in_user(&app, "ann@example.com").await;
    let found = |page: &str| {
        let mut ids: Vec<String> = page
            .match_indices("/console/decisions/dec_")
            .map(|(at, _)| page[at + 19..].split('"').next().unwrap().to_owned())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let (status, page, _) = get(&app, &ann, "/console/decisions?ip=10.0.0.1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found(&page), ["dec_ip30d", "dec_ip3d"], "{page}");
    assert!(!page.contains("12 hours"), "no time limit is announced");
    let page = get(&app, &ann, "/console/decisions?email_domain=A.example")
        .await
        .1;
    assert_eq!(found(&page), ["dec_ip3d"]);
    let page = get(
        &app,
        &ann,
        "/console/decisions?ip=10.0.0.1&from=2000-01-01T00:00",
    )
    .await
    .1;
    assert_eq!(found(&page).len(), 2, "a wide explicit range is fine");
    // A rule alone still reads the JSON, 12 hours at most.
    let (status, _, _) = get(
        &app,
        &ann,
        "/console/decisions?rule=x&from=2000-01-01T00:00",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.stop().await;
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        each(Backend::ALL) => [
            console_users_are_created_listed_and_disabled,
            console_cookies_are_httponly_strict_and_expire,
            console_forms_need_their_csrf_token_and_the_same_site,
            console_users_see_only_their_subscriber,
            console_roles_gate_admin_pages,
            console_sign_in_failures_are_throttled,
            console_store_searches_decisions_exactly,
            console_admins_draft_backtest_shadow_and_publish_rules,
            console_rules_are_for_admins_and_need_csrf,
            console_analysts_edit_lists,
            console_adds_a_decisions_card_to_a_list_in_one_step,
            console_lists_are_the_subscribers_own,
            console_users_change_their_password,
            console_searches_by_ip_and_domain_beyond_12_hours,
        ],
    }
}
