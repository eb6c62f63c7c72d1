//! `riskgate simulate-traffic` against a real `riskgate serve --demo`: every
//! planned transaction is scored and labelled with its truth, the report's
//! counts add up, and a seed always plans the same population. No catch or
//! false-positive threshold is asserted: those measure the rules, which are
//! tuned elsewhere.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::common::binary::Server;
use crate::common::{fresh_db, read, riskgate, Backend};

/// The API key `serve --demo` prints.
async fn demo_key(server: &Server) -> String {
    let started = std::time::Instant::now();
    loop {
        let printed = server.stdout.lock().unwrap().join("\n");
        if let Some(at) = printed.find("rg_live_") {
            return printed[at..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '\'')
                .collect();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no demo key printed: {printed}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn traffic(args: &[&str]) -> (bool, String, String) {
    let out = riskgate()
        .arg("simulate-traffic")
        .args(args)
        .env_remove("RISKGATE_TRAFFIC_API_KEY")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn count(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {v}"))
}

/// Plays traffic through a demo server with these extra flags; its JSON report.
async fn play(server: &Server, key: &str, flags: &[&str]) -> Value {
    let args: Vec<String> = ["--url", &server.base, "--api-key", key, "--json"]
        .iter()
        .chain(flags)
        .map(|a| a.to_string())
        .collect();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        traffic(&args)
    })
    .await
    .unwrap();
    assert!(ok, "{stderr}\n{stdout}");
    serde_json::from_str(&stdout).unwrap()
}

/// The decision riskgate stored for a row of the report.
async fn stored(server: &Server, key: &str, row: &Value) -> Value {
    let id = row["decision_id"].as_str().unwrap();
    let req = reqwest::Client::new()
        .get(format!("{}/risk/decisions/{id}", server.base))
        .header("X-API-Key", key);
    let (status, stored) = read(req.send().await.unwrap()).await;
    assert_eq!(status, 200, "{stored}");
    stored
}

async fn every_transaction_is_scored_and_labelled_with_its_truth(backend: Backend) {
    let db = fresh_db(backend).await;
    let server = Server::start(&db.url, &["--demo"]);
    let key = demo_key(&server).await;
    let report = play(
        &server,
        &key,
        &["--seed", "11", "--shoppers", "12", "--labels", "each"],
    )
    .await;
    let total = count(&report, "transactions");
    assert!(total >= 20, "{total} transactions for 12 shoppers");
    assert_eq!(count(&report, "scored"), total, "{report}");
    assert_eq!(count(&report, "labelled"), total);
    assert_eq!(count(&report, "errors"), 0);

    // The rows add up, to the transactions and within each row.
    let rows = report["scenarios"].as_array().unwrap();
    let mut summed = 0;
    for row in rows {
        let n = count(row, "transactions");
        let outcomes = ["allow", "review", "block", "errors"]
            .iter()
            .map(|f| count(row, f))
            .sum::<u64>();
        assert_eq!(outcomes, n, "{row}");
        summed += n;
    }
    assert_eq!(summed, total);
    let totals = &report["totals"];
    assert_eq!(
        count(totals, "good_transactions") + count(totals, "attack_transactions"),
        total
    );
    let attacks: Vec<&Value> = rows.iter().filter(|r| r["fraud"] == true).collect();
    assert!(attacks.len() >= 5, "{rows:?}");
    assert!(
        attacks.iter().all(|r| count(r, "transactions") > 0),
        "every attack kind is played even at this size: {rows:?}"
    );

    // Each decision's row, action and label agree with what riskgate stored.
    let decisions = report["decisions"].as_array().unwrap();
    assert_eq!(decisions.len() as u64, total);
    let fraud_rows: HashMap<&str, bool> = rows
        .iter()
        .map(|r| (r["scenario"].as_str().unwrap(), r["fraud"] == true))
        .collect();
    let mut checked = (0, 0);
    for d in decisions {
        let label = d["label"].as_str().unwrap();
        let fraud = fraud_rows[d["scenario"].as_str().unwrap()];
        assert_eq!(label, if fraud { "fraud" } else { "legit" }, "{d}");
        let wanted = if fraud {
            &mut checked.0
        } else {
            &mut checked.1
        };
        if *wanted >= 3 {
            continue;
        }
        *wanted += 1;
        let stored = stored(&server, &key, d).await;
        assert_eq!(stored["label"], label, "{stored}");
        assert_eq!(stored["request_id"], d["request_id"], "{stored}");
        assert_eq!(stored["result"]["action"], d["action"], "{stored}");
        // The persona's device reached the decision.
        assert_eq!(stored["input"]["device_status"], "ready", "{stored}");
        assert!(
            stored["input"]["device"]["visitor_id"].is_string(),
            "{stored}"
        );
    }
    assert_eq!(checked, (3, 3));
    server.stop();
}

/// What a new user sees: the default run labels every decision but the
/// reviewed ones, which are left in the console's review queue.
async fn by_default_the_reviewed_decisions_are_left_for_an_analyst(backend: Backend) {
    let db = fresh_db(backend).await;
    let server = Server::start(&db.url, &["--demo"]);
    let key = demo_key(&server).await;
    let report = play(&server, &key, &["--shoppers", "60"]).await;
    let decisions = report["decisions"].as_array().unwrap();
    let reviewed: Vec<&Value> = decisions
        .iter()
        .filter(|d| d["action"] == "review")
        .collect();
    assert!(
        !reviewed.is_empty(),
        "60 shoppers and their attacks: {report}"
    );
    assert_eq!(
        count(&report, "labelled"),
        (decisions.len() - reviewed.len()) as u64
    );
    assert!(decisions
        .iter()
        .all(|d| d["labelled"] == (d["action"] != "review")));
    for d in [
        reviewed[0],
        decisions.iter().find(|d| d["action"] != "review").unwrap(),
    ] {
        let stored = stored(&server, &key, d).await;
        let label = if d["action"] == "review" {
            Value::Null
        } else {
            d["label"].clone()
        };
        assert_eq!(stored["label"], label, "{stored}");
    }
    server.stop();
}

fn a_seed_plans_the_same_population() {
    let plan = |seed: &str| {
        let (ok, stdout, stderr) = traffic(&["--dry-run", "--seed", seed, "--shoppers", "30"]);
        assert!(ok, "{stderr}");
        stdout
    };
    let first = plan("5");
    assert_eq!(first, plan("5"));
    assert_ne!(first, plan("6"));
    let parsed: Value = serde_json::from_str(&first).unwrap();
    let planned = parsed["plan"].as_array().unwrap();
    assert_eq!(planned.len() as u64, count(&parsed, "transactions"));
    let per_scenario: u64 = parsed["scenarios"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(per_scenario, planned.len() as u64);
    assert!(planned
        .iter()
        .all(|t| t["request_id"].as_str().unwrap().starts_with("p~")));
}

fn bad_flags_and_a_missing_key_say_what_is_wrong() {
    let out = riskgate()
        .args(["simulate-traffic", "--shoppers", "0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--shoppers"), "{stderr}");
    let (ok, _, stderr) = traffic(&["--url", "http://127.0.0.1:9"]);
    assert!(!ok);
    assert!(stderr.contains("--api-key"), "{stderr}");
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        each(Backend::ALL) => [every_transaction_is_scored_and_labelled_with_its_truth],
        each(&[Backend::Sqlite]) => [by_default_the_reviewed_decisions_are_left_for_an_analyst],
        sync => [
            a_seed_plans_the_same_population,
            bad_flags_and_a_missing_key_say_what_is_wrong,
        ],
    }
}
