#![allow(clippy::unwrap_used, clippy::expect_used)]

//! SPEC "Operations": card numbers are never stored or logged in full. The
//! real binary on a SQLite file, logging at `debug`, gets card numbers in
//! every caller-supplied string it keeps, keys by or logs (ingest and score
//! ids, the `Idempotency-Key` and `x-request-id` headers, path parameters,
//! the names operators give through the API and the command line); then the
//! raw database files and the log are searched for the digits.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::binary::{cli, Server};
use crate::common::{read, ADMIN_TOKEN};
use reqwest::Method;
use riskgate::store::DatabaseUrl;
use serde_json::{json, Value};

/// Test card numbers (Luhn-valid), each with the digits riskgate must never
/// keep: the whole number as sent and its digits alone.
const VISA: &str = "4111111111111111";
const VISA_SPACED: &str = "4111 1111 1111 1111";
const VISA_DASHED: &str = "4111-1111-1111-1111";
const MASTERCARD_SPACED: &str = "5555 5555 5555 4444";
const AMEX_DASHED: &str = "3782-822463-10005";
const VISA_4242: &str = "4242424242424242";
const DISCOVER: &str = "6011111111111117";
const MASTERCARD_2: &str = "5105105105105100";
const DINERS_DASHED: &str = "3056-930902-5904";

const SENT: &[&str] = &[
    VISA,
    VISA_SPACED,
    VISA_DASHED,
    MASTERCARD_SPACED,
    AMEX_DASHED,
    VISA_4242,
    DISCOVER,
    MASTERCARD_2,
    DINERS_DASHED,
];

/// Every spelling to search for: as sent, and the digits alone.
fn needles() -> Vec<String> {
    let mut needles: Vec<String> = SENT.iter().map(|s| (*s).to_owned()).collect();
    for sent in SENT {
        needles.push(sent.chars().filter(char::is_ascii_digit).collect());
        // As a path carries it.
        needles.push(sent.replace(' ', "%20"));
    }
    needles.sort();
    needles.dedup();
    needles
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn assert_clean(what: &str, bytes: &[u8]) {
    assert!(!bytes.is_empty(), "{what} is empty: nothing was checked");
    assert_no_pan(what, bytes);
}

/// For journal files, which SQLite may leave empty.
fn assert_no_pan(what: &str, bytes: &[u8]) {
    for needle in needles() {
        assert!(
            !contains(bytes, &needle),
            "{what} holds the card number {needle}"
        );
    }
}

/// The database and whatever journal files SQLite keeps beside it.
fn database_files(db: &Path) -> Vec<PathBuf> {
    let name = db.file_name().unwrap().to_str().unwrap().to_owned();
    std::fs::read_dir(db.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&name))
        })
        .collect()
}

/// The permission bits, in octal.
fn mode(path: &Path) -> String {
    format!(
        "{:o}",
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    )
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let headers = resp.headers().clone();
        let (status, body) = read(resp).await;
        (status, body, headers)
    }

    async fn admin(&self, method: Method, path: &str, body: Value) -> (u16, Value) {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let (status, body, _) = self
            .send(method, path, &[("Authorization", &auth)], Some(body))
            .await;
        (status, body)
    }
}

async fn card_numbers_are_never_stored_keyed_or_logged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("riskgate.db");
    let url = DatabaseUrl::Sqlite {
        path: db.to_str().unwrap().to_owned(),
    };
    let server = Server::start_with_env(&url, &[], &[("RUST_LOG", "debug")]);
    let api = Client {
        http: reqwest::Client::new(),
        base: server.base.clone(),
    };

    // Operator names, through the API.
    let (status, body) = api
        .admin(
            Method::POST,
            "/admin/subscribers",
            json!({"id": VISA, "name": "card id"}),
        )
        .await;
    assert_eq!(status, 400, "a card number as a subscriber id: {body}");
    assert!(body["error"].as_str().unwrap().contains("'id'"), "{body}");
    let (status, body) = api
        .admin(
            Method::POST,
            "/admin/subscribers",
            json!({"id": "cards", "name": format!("Acme {VISA_SPACED}")}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "Acme 4111 1111 **** 1111", "{body}");
    let (status, body) = api
        .admin(
            Method::PATCH,
            "/admin/subscribers/cards",
            json!({"name": MASTERCARD_SPACED}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "5555 5555 **** 4444", "{body}");
    let (status, body) = api
        .admin(
            Method::PUT,
            "/admin/subscribers/cards/providers/fingerprint",
            json!({"secret_key": "fp_secret_test"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, key) = api
        .admin(
            Method::POST,
            "/admin/subscribers/cards/keys",
            json!({"name": format!("key {DISCOVER}")}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    assert_eq!(key["name"], "key 60111111****1117", "{key}");
    let api_key = key["api_key"].as_str().unwrap().to_owned();
    let (status, body) = api
        .admin(
            Method::PUT,
            "/admin/subscribers/cards/rules",
            json!({"rules": [{"name": format!("Card {VISA_4242}"),
                              "description": format!("was {MASTERCARD_2}"),
                              "expression": "amount > 100000", "weight": 0.1}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rules"][0]["name"], "Card 42424242****4242", "{body}");

    // Operator names, through the command line.
    let (ok, shown, err) = cli(&url, &["key", "create", "cards", "--name", AMEX_DASHED]);
    assert!(ok, "{shown} {err}");
    assert_eq!(shown["name"], "3782-82****-*0005", "{shown}");
    let (ok, shown, err) = cli(
        &url,
        &["subscriber", "rename", "cards", "--name", VISA_DASHED],
    );
    assert!(ok, "{shown} {err}");
    assert_eq!(shown["name"], "4111-1111-****-1111", "{shown}");

    // An ingest whose ids are card numbers.
    let key_header = ("X-API-Key", api_key.as_str());
    let (status, ingested, headers) = api
        .send(
            Method::POST,
            "/fingerprint/ingest",
            &[key_header, ("x-request-id", VISA_SPACED)],
            Some(json!({"request_id": VISA, "subscriber_id": "cards",
                        "session_id": DINERS_DASHED, "user_id": VISA_DASHED})),
        )
        .await;
    assert_eq!(status, 202, "{ingested}");
    assert_eq!(ingested["request_id"], "41111111****1111", "{ingested}");
    assert_eq!(ingested["session_id"], "3056-93****-5904", "{ingested}");
    assert_eq!(ingested["user_id"], "4111-1111-****-1111", "{ingested}");
    assert_eq!(
        ingested["redis_keys"],
        json!([
            "rg:cards:fp:req:41111111****1111",
            "rg:cards:fp:session:3056-93****-5904",
            "rg:cards:fp:user:4111-1111-****-1111"
        ]),
        "{ingested}"
    );
    assert_clean("the ingest answer", ingested.to_string().as_bytes());
    assert_eq!(headers["x-request-id"], "4111 1111 **** 1111");
    // The event is found by the id as the caller knows it.
    let (status, event, _) = api
        .send(
            Method::GET,
            &format!("/fingerprint/events/{VISA}"),
            &[key_header],
            None,
        )
        .await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(event["request_id"], "41111111****1111", "{event}");

    // A score with the same request id finds the ingested device (and no
    // session or user to find it by otherwise).
    let score = json!({"request_id": VISA, "subscriber_id": "cards",
                       "payload": {"transaction_amount": 10, "currency": "USD",
                                   "user_id": MASTERCARD_SPACED,
                                   "session_id": VISA_SPACED,
                                   "external_transaction_number": 4_242_424_242_424_242_u64}});
    let headers = [
        key_header,
        ("Idempotency-Key", DISCOVER),
        ("x-request-id", AMEX_DASHED),
    ];
    let (status, scored, echoed) = api
        .send(
            Method::POST,
            "/risk/bin/score",
            &headers,
            Some(score.clone()),
        )
        .await;
    assert_eq!(status, 200, "{scored}");
    assert_clean("the score answer", scored.to_string().as_bytes());
    assert_eq!(echoed["x-request-id"], "3782-82****-*0005");
    assert_eq!(scored["input"]["request_id"], "41111111****1111");
    assert_ne!(
        scored["input"]["device_status"], "none",
        "the score did not find the ingested device: {scored}"
    );
    // The masked key still makes a repeat a replay, and a change a conflict.
    let (status, replayed, _) = api
        .send(
            Method::POST,
            "/risk/bin/score",
            &headers,
            Some(score.clone()),
        )
        .await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed["decision_id"], scored["decision_id"]);
    let mut changed = score.clone();
    changed["payload"]["transaction_amount"] = json!(11);
    let (status, conflict, _) = api
        .send(Method::POST, "/risk/bin/score", &headers, Some(changed))
        .await;
    assert_eq!(status, 409, "{conflict}");
    assert_clean("the conflict answer", conflict.to_string().as_bytes());
    // Path parameters reach the request log.
    let encoded = VISA_SPACED.replace(' ', "%20");
    let (status, customer, _) = api
        .send(
            Method::GET,
            &format!("/customers/{encoded}"),
            &[key_header],
            None,
        )
        .await;
    assert!(status == 200 || status == 404, "{status} {customer}");
    assert_clean("the customer answer", customer.to_string().as_bytes());

    // While the server runs, the rows may still be in the WAL.
    let files = database_files(&db);
    assert!(
        files.iter().any(|f| f.to_str().unwrap().ends_with("-wal")),
        "no WAL beside the database: {files:?}"
    );
    assert_clean("the database", &std::fs::read(&db).unwrap());
    for file in &files {
        assert_eq!(mode(file), "600", "{} is not owner-only", file.display());
        assert_no_pan(&file.display().to_string(), &std::fs::read(file).unwrap());
    }
    let log = server.stop();
    assert!(
        log.contains("41111111****1111") && log.contains("3782-82****-*0005"),
        "the log shows neither the masked request id nor the masked x-request-id \
         (nothing to check it by): {log}"
    );
    assert_clean("the log", log.as_bytes());
    // After the last connection closed, the WAL was checkpointed into the file.
    assert_clean("the database", &std::fs::read(&db).unwrap());
    for file in database_files(&db) {
        assert_eq!(mode(&file), "600", "{} is not owner-only", file.display());
        assert_no_pan(&file.display().to_string(), &std::fs::read(&file).unwrap());
    }
}

/// A database an older version left readable by others is made owner-only at
/// the next start, its journal files too.
fn a_world_readable_database_is_made_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("riskgate.db");
    let url = DatabaseUrl::Sqlite {
        path: db.to_str().unwrap().to_owned(),
    };
    let (ok, shown, err) = cli(&url, &["subscriber", "create", "--name", "legacy"]);
    assert!(ok, "{shown} {err}");
    assert_eq!(mode(&db), "600");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, shown, err) = cli(&url, &["subscriber", "list"]);
    assert!(ok, "{shown} {err}");
    for file in database_files(&db) {
        assert_eq!(mode(&file), "600", "{} is not owner-only", file.display());
    }
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        tokio => [card_numbers_are_never_stored_keyed_or_logged],
        sync => [a_world_readable_database_is_made_owner_only],
    }
}
