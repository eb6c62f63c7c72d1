#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The storage contract, run against every backend: SQLite and the real
//! PostgreSQL server. A backend passes only if it behaves exactly like the other.

use std::sync::Arc;

use crate::common::{fresh_db, Backend};
use riskgate::store::*;
use serde_json::Value;

/// The actor of the contract's changes (the audit tests vary it).
const OP: Actor = Actor::Operator;

async fn open(backend: Backend) -> (Arc<dyn Store>, crate::common::TestDb) {
    let db = fresh_db(backend).await;
    let store = connect(&db.url).await.expect("connect and migrate");
    (store, db)
}

fn subscriber(id: &str) -> SubscriberRow {
    let now = now_millis();
    SubscriberRow {
        id: id.into(),
        name: format!("{id} Inc"),
        status: SubscriberStatus::Active,
        webhook_secret_sealed: "v1.sealed".into(),
        created_at: now,
        updated_at: now,
        previous_webhook_secret_sealed: None,
        previous_secret_expires_at: None,
        signing_scheme: SigningScheme::V1,
        signing_key_sealed: None,
        signing_public_key: None,
        previous_signing_key_sealed: None,
        previous_signing_key_expires_at: None,
        previous_scheme_expires_at: None,
    }
}

fn key(key_id: &str, subscriber_id: &str) -> ApiKeyRow {
    ApiKeyRow {
        key_id: key_id.into(),
        subscriber_id: subscriber_id.into(),
        name: Some("ci".into()),
        key_hash: "ab".repeat(32),
        created_at: now_millis(),
        revoked_at: None,
    }
}

fn job(id: &str, subscriber_id: &str, request_id: &str) -> NewJob {
    NewJob {
        id: id.into(),
        kind: "device_fetch".into(),
        subscriber_id: subscriber_id.into(),
        dedupe_key: request_id.into(),
        payload: r#"{"request_id":"x"}"#.into(),
        run_at: None,
    }
}

async fn migrations_apply_once_and_data_survives_reconnect(backend: Backend) {
    let (store, db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    store.close().await;
    // A second start runs the migrator again: nothing to do, data intact.
    let again = connect(&db.url).await.unwrap();
    assert_eq!(
        again.get_subscriber("12").await.unwrap().unwrap().name,
        "12 Inc"
    );
    again.ping().await.unwrap();
}

async fn settings_insert_if_absent_keeps_the_first_value(backend: Backend) {
    let (store, _db) = open(backend).await;
    assert_eq!(store.get_setting("k").await.unwrap(), None);
    assert!(store.insert_setting_if_absent("k", "first").await.unwrap());
    assert!(!store.insert_setting_if_absent("k", "second").await.unwrap());
    assert_eq!(
        store.get_setting("k").await.unwrap().as_deref(),
        Some("first")
    );
    store.put_setting("k", "third").await.unwrap();
    assert_eq!(
        store.get_setting("k").await.unwrap().as_deref(),
        Some("third")
    );
}

async fn subscribers_are_unique_listed_and_updated(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("a"), &OP)
        .await
        .unwrap();
    store
        .create_subscriber(&subscriber("b"), &OP)
        .await
        .unwrap();
    let dup = store.create_subscriber(&subscriber("a"), &OP).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let ids: Vec<_> = store
        .list_subscribers()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["a", "b"]);

    let renamed = store
        .update_subscriber("a", Some("Renamed"), None, &OP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.status),
        ("Renamed", SubscriberStatus::Active)
    );
    let suspended = store
        .update_subscriber("a", None, Some(SubscriberStatus::Suspended), &OP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (suspended.name.as_str(), suspended.status),
        ("Renamed", SubscriberStatus::Suspended)
    );
    assert!(store
        .update_subscriber("nope", Some("x"), None, &OP)
        .await
        .unwrap()
        .is_none());
    assert!(store.get_subscriber("nope").await.unwrap().is_none());
}

async fn key_auth_reflects_revocation_and_suspension(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    store
        .create_subscriber(&subscriber("13"), &OP)
        .await
        .unwrap();
    store.create_api_key(&key("k1", "12"), &OP).await.unwrap();
    store.create_api_key(&key("k2", "12"), &OP).await.unwrap();

    let auth = store.find_key_for_auth("k1").await.unwrap().unwrap();
    assert_eq!(auth.subscriber_id, "12");
    assert!(!auth.revoked);
    assert_eq!(auth.subscriber_status, SubscriberStatus::Active);
    assert!(store.find_key_for_auth("k9").await.unwrap().is_none());

    // Another tenant cannot revoke this key.
    assert!(store
        .revoke_api_key("13", "k1", &OP)
        .await
        .unwrap()
        .is_none());
    let revoked = store
        .revoke_api_key("12", "k1", &OP)
        .await
        .unwrap()
        .unwrap();
    let first_revocation = revoked.revoked_at.unwrap();
    assert!(
        store
            .find_key_for_auth("k1")
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    let again = store
        .revoke_api_key("12", "k1", &OP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.revoked_at,
        Some(first_revocation),
        "revoking twice keeps the first time"
    );

    store
        .update_subscriber("12", None, Some(SubscriberStatus::Suspended), &OP)
        .await
        .unwrap();
    let k2 = store.find_key_for_auth("k2").await.unwrap().unwrap();
    assert!(!k2.revoked);
    assert_eq!(k2.subscriber_status, SubscriberStatus::Suspended);

    let listed: Vec<_> = store
        .list_api_keys("12")
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.key_id)
        .collect();
    assert_eq!(listed, ["k1", "k2"]);
    assert!(store.list_api_keys("13").await.unwrap().is_empty());
}

async fn provider_credentials_keep_first_configured_order(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    let row = |provider: &str, sealed: &str, at: i64| ProviderCredentialRow {
        subscriber_id: "12".into(),
        provider: provider.into(),
        sealed: sealed.into(),
        settings: "{}".into(),
        created_at: at,
        updated_at: at,
    };
    store
        .put_provider_credentials(&row("stytch", "s1", 1_000), &OP)
        .await
        .unwrap();
    store
        .put_provider_credentials(&row("fingerprint", "f1", 2_000), &OP)
        .await
        .unwrap();
    // Rotating the first provider's secret must not change which one is default.
    store
        .put_provider_credentials(&row("stytch", "s2", 3_000), &OP)
        .await
        .unwrap();
    let rows = store.list_provider_credentials("12").await.unwrap();
    let summary: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.provider.as_str(),
                r.sealed.as_str(),
                r.created_at,
                r.updated_at,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("stytch", "s2", 1_000, 3_000),
            ("fingerprint", "f1", 2_000, 2_000)
        ]
    );
}

fn rules(body: &str) -> NewRuleSet<'_> {
    NewRuleSet {
        body,
        note: None,
        rules: 0,
    }
}

async fn rule_sets_are_versioned(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    store
        .create_subscriber(&subscriber("13"), &OP)
        .await
        .unwrap();
    let op = Actor::Operator;
    assert!(store.current_rule_set("12").await.unwrap().is_none());
    let (first, previous) = store
        .put_rule_set("12", rules("{\"v\":1}"), &op)
        .await
        .unwrap();
    assert_eq!(
        (first.version, first.status, previous),
        (1, RuleStatus::Live, None)
    );
    assert_eq!(first.author, "operator");
    assert!(first.published_at.is_some());
    let (second, previous) = store
        .put_rule_set("12", rules("{\"v\":2}"), &op)
        .await
        .unwrap();
    assert_eq!((second.version, previous), (2, Some(1)));
    assert_eq!(
        store
            .put_rule_set("13", rules("{\"v\":1}"), &op)
            .await
            .unwrap()
            .0
            .version,
        1
    );
    let current = store.current_rule_set("12").await.unwrap().unwrap();
    assert_eq!((current.version, current.body.as_str()), (2, "{\"v\":2}"));
    let old = store.rule_set_version("12", 1).await.unwrap().unwrap();
    assert_eq!(old.status, RuleStatus::Retired);

    // Concurrent writers each get a version of their own; drafts and
    // published versions share the numbering.
    let writes = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let body = format!("{{\"w\":{i}}}");
            if i % 2 == 0 {
                store
                    .put_rule_set("12", rules(&body), &Actor::Operator)
                    .await
                    .unwrap()
                    .0
                    .version
            } else {
                store
                    .draft_rule_set("12", rules(&body), &Actor::Operator)
                    .await
                    .unwrap()
                    .version
            }
        })
    });
    let mut versions: Vec<i64> = futures_join(writes).await;
    versions.sort();
    assert_eq!(versions, (3..=10).collect::<Vec<_>>());
    let all = store.list_rule_sets("12").await.unwrap();
    assert_eq!(all.len(), 10);
    assert!(
        all.windows(2).all(|w| w[0].version > w[1].version),
        "newest first"
    );
    let live: Vec<i64> = all
        .iter()
        .filter(|r| r.status == RuleStatus::Live)
        .map(|r| r.version)
        .collect();
    assert_eq!(live.len(), 1, "one live version: {live:?}");
    assert_eq!(
        all.iter().filter(|r| r.status == RuleStatus::Draft).count(),
        4
    );
}

async fn rule_set_transitions_keep_one_live_and_one_shadow(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    let op = Actor::Operator;
    let status = |v: i64| {
        let store = store.clone();
        async move {
            store
                .rule_set_version("12", v)
                .await
                .unwrap()
                .unwrap()
                .status
        }
    };
    store.put_rule_set("12", rules("{}"), &op).await.unwrap();
    let draft = store
        .draft_rule_set(
            "12",
            NewRuleSet {
                body: "{}",
                note: Some("try"),
                rules: 0,
            },
            &op,
        )
        .await
        .unwrap();
    assert_eq!(
        (
            draft.version,
            draft.status,
            draft.note.as_deref(),
            draft.published_at
        ),
        (2, RuleStatus::Draft, Some("try"), None)
    );
    assert!(matches!(
        store.shadow_rule_set("12", 2, &op).await.unwrap(),
        RuleTransition::Done { replaced: None, .. }
    ));
    let active = store.active_rule_sets("12").await.unwrap();
    assert_eq!(
        (
            active.live.map(|r| r.version),
            active.shadow.map(|r| r.version)
        ),
        (Some(1), Some(2))
    );
    assert!(matches!(
        store.shadow_rule_set("12", 1, &op).await.unwrap(),
        RuleTransition::Refused(RuleStatus::Live)
    ));
    assert!(matches!(
        store.shadow_rule_set("12", 9, &op).await.unwrap(),
        RuleTransition::Missing
    ));
    // Publishing the shadow stops it.
    assert!(matches!(
        store.publish_rule_set("12", 2, &op).await.unwrap(),
        RuleTransition::Done {
            replaced: Some(1),
            ..
        }
    ));
    assert_eq!(
        (status(1).await, status(2).await),
        (RuleStatus::Retired, RuleStatus::Live)
    );
    assert!(store.active_rule_sets("12").await.unwrap().shadow.is_none());
    assert!(matches!(
        store.stop_shadow("12", &op).await.unwrap(),
        RuleTransition::Missing
    ));
    // A retired version may be the shadow; stopped, it is retired again.
    store.shadow_rule_set("12", 1, &op).await.unwrap();
    assert_eq!(status(1).await, RuleStatus::Shadow);
    let RuleTransition::Done { row, .. } = store.stop_shadow("12", &op).await.unwrap() else {
        panic!("a shadow was running")
    };
    assert_eq!((row.version, row.status), (1, RuleStatus::Retired));
    assert!(matches!(
        store.publish_rule_set("12", 2, &op).await.unwrap(),
        RuleTransition::Refused(RuleStatus::Live)
    ));
    // Every change left its entry (entries of one millisecond have no order).
    let mut actions: Vec<String> = store
        .audit_log("12", None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        [
            "rules.draft",
            "rules.publish",
            "rules.publish",
            "rules.shadow.start",
            "rules.shadow.start",
            "rules.shadow.stop",
            "subscriber.create",
        ]
    );
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

async fn enqueue_unique_reports_queued_in_flight_and_done(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    store
        .create_subscriber(&subscriber("13"), &OP)
        .await
        .unwrap();
    let far_past = 0;

    let Enqueued::Queued(first) = store
        .enqueue_unique(&job("j1", "12", "req"), far_past)
        .await
        .unwrap()
    else {
        panic!("a new request id is queued");
    };
    assert_eq!((first.state, first.attempts), (JobState::Pending, 0));
    let Enqueued::InFlight(live) = store
        .enqueue_unique(&job("j2", "12", "req"), far_past)
        .await
        .unwrap()
    else {
        panic!("a pending job makes the next ingest in_flight");
    };
    assert_eq!(live.id, "j1");
    // Another tenant's identical request id is a job of its own.
    assert!(matches!(
        store
            .enqueue_unique(&job("j3", "13", "req"), far_past)
            .await
            .unwrap(),
        Enqueued::Queued(_)
    ));

    assert!(store
        .finish_job(
            "j1",
            &JobOutcome::Succeeded {
                result: "{\"ok\":true}".into()
            }
        )
        .await
        .unwrap());
    assert!(
        !store
            .finish_job(
                "j1",
                &JobOutcome::Failed {
                    error: "late".into()
                }
            )
            .await
            .unwrap(),
        "a finished job stays finished"
    );
    let Enqueued::Done(done) = store
        .enqueue_unique(&job("j4", "12", "req"), far_past)
        .await
        .unwrap()
    else {
        panic!("a fresh success makes the next ingest cached");
    };
    assert_eq!(
        (done.id.as_str(), done.result.as_deref()),
        ("j1", Some("{\"ok\":true}"))
    );
    // Once the result is older than the freshness bound, the id is fetched again.
    let future = now_millis() + 60_000;
    assert!(matches!(
        store
            .enqueue_unique(&job("j5", "12", "req"), future)
            .await
            .unwrap(),
        Enqueued::Queued(_)
    ));

    // A failed job does not block a retry by a later ingest.
    store
        .enqueue_unique(&job("j6", "12", "other"), far_past)
        .await
        .unwrap();
    store
        .finish_job(
            "j6",
            &JobOutcome::Failed {
                error: "404".into(),
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .enqueue_unique(&job("j7", "12", "other"), far_past)
            .await
            .unwrap(),
        Enqueued::Queued(_)
    ));
}

async fn concurrent_ingests_of_one_id_record_one_job(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    let tries = (0..16).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .enqueue_unique(&job(&format!("j{i}"), "12", "same"), 0)
                .await
                .unwrap()
        })
    });
    let outcomes = futures_join(tries).await;
    let queued = outcomes
        .iter()
        .filter(|o| matches!(o, Enqueued::Queued(_)))
        .count();
    let in_flight = outcomes
        .iter()
        .filter(|o| matches!(o, Enqueued::InFlight(_)))
        .count();
    assert_eq!((queued, in_flight), (1, 15));
    let filter = JobFilter {
        subscriber_id: Some("12".into()),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(store.list_jobs(&filter).await.unwrap().len(), 1);
}

async fn jobs_are_listed_filtered_and_counted(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    store
        .create_subscriber(&subscriber("13"), &OP)
        .await
        .unwrap();
    for i in 0..5 {
        store
            .enqueue_unique(&job(&format!("a{i}"), "12", &format!("r{i}")), 0)
            .await
            .unwrap();
    }
    store
        .enqueue_unique(&job("b0", "13", "r0"), 0)
        .await
        .unwrap();
    store
        .finish_job(
            "a0",
            &JobOutcome::Succeeded {
                result: "{}".into(),
            },
        )
        .await
        .unwrap();
    store
        .finish_job(
            "a1",
            &JobOutcome::Failed {
                error: "gone".into(),
            },
        )
        .await
        .unwrap();

    let list = |subscriber: Option<&str>, state: Option<JobState>, limit: i64| JobFilter {
        subscriber_id: subscriber.map(str::to_owned),
        kind: None,
        state,
        limit,
    };
    assert_eq!(
        store
            .list_jobs(&list(Some("12"), None, 100))
            .await
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        store.list_jobs(&list(None, None, 100)).await.unwrap().len(),
        6
    );
    assert_eq!(
        store
            .list_jobs(&list(Some("12"), None, 2))
            .await
            .unwrap()
            .len(),
        2
    );
    let failed = store
        .list_jobs(&list(Some("12"), Some(JobState::Failed), 100))
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        (failed[0].id.as_str(), failed[0].last_error.as_deref()),
        ("a1", Some("gone"))
    );
    assert!(failed[0].finished_at.is_some());

    let mut counts = store.job_counts().await.unwrap();
    counts.sort_by_key(|(_, state, _)| state.as_str());
    let counts: Vec<_> = counts
        .iter()
        .map(|(k, s, n)| (k.as_str(), s.as_str(), *n))
        .collect();
    assert_eq!(
        counts,
        [
            ("device_fetch", "failed", 1),
            ("device_fetch", "pending", 4),
            ("device_fetch", "succeeded", 1)
        ]
    );

    let latest = store
        .latest_job("12", "device_fetch", "r0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(latest.state, JobState::Succeeded);
    assert!(store
        .latest_job("12", "device_fetch", "zz")
        .await
        .unwrap()
        .is_none());
}

async fn jobs_are_leased_retried_and_reclaimed_after_a_crash(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    for i in 0..3 {
        store
            .enqueue_unique(&job(&format!("j{i}"), "12", &format!("r{i}")), 0)
            .await
            .unwrap();
    }
    let now = now_millis();
    assert!(store.next_due("device_fetch").await.unwrap().unwrap() <= now);
    let claimed = store
        .claim_jobs("device_fetch", 2, now, now + 60_000)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed
        .iter()
        .all(|j| j.state == JobState::Running && j.attempts == 1));
    // Leased jobs are not handed out twice.
    let rest = store
        .claim_jobs("device_fetch", 10, now, now + 60_000)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert!(store
        .claim_jobs("device_fetch", 10, now, now + 60_000)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.next_due("device_fetch").await.unwrap(), None);

    // A retry puts the job back for later; a refunded one keeps its attempt count.
    assert!(store
        .retry_job(&claimed[0].id, now + 5_000, "503", false)
        .await
        .unwrap());
    assert!(store
        .retry_job(&claimed[1].id, now + 5_000, "breaker open", true)
        .await
        .unwrap());
    assert_eq!(
        store.next_due("device_fetch").await.unwrap(),
        Some(now + 5_000)
    );
    assert!(store
        .claim_jobs("device_fetch", 10, now + 1_000, now + 61_000)
        .await
        .unwrap()
        .is_empty());
    let again = store
        .claim_jobs("device_fetch", 10, now + 5_000, now + 65_000)
        .await
        .unwrap();
    let mut attempts: Vec<_> = again.iter().map(|j| (j.id.clone(), j.attempts)).collect();
    attempts.sort();
    let mut expected = vec![(claimed[0].id.clone(), 2), (claimed[1].id.clone(), 1)];
    expected.sort();
    assert_eq!(attempts, expected);
    assert!(again.iter().all(|j| j.last_error.is_some()));

    // A process that died holding a lease: once it expires, the job is claimed again.
    let orphan = &rest[0];
    assert!(store
        .claim_jobs("device_fetch", 10, now + 59_000, now + 119_000)
        .await
        .unwrap()
        .is_empty());
    let reclaimed = store
        .claim_jobs("device_fetch", 10, now + 60_001, now + 120_000)
        .await
        .unwrap();
    assert!(
        reclaimed
            .iter()
            .any(|j| j.id == orphan.id && j.attempts == 2),
        "{reclaimed:?}"
    );
    // Only live jobs can be retried; finished ones stay finished.
    store
        .finish_job(
            &orphan.id,
            &JobOutcome::Succeeded {
                result: "{}".into(),
            },
        )
        .await
        .unwrap();
    assert!(!store
        .retry_job(&orphan.id, now, "late", false)
        .await
        .unwrap());
}

async fn leases_are_renewed_for_running_jobs_only(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    for i in 0..3 {
        store
            .enqueue_unique(&job(&format!("j{i}"), "12", &format!("r{i}")), 0)
            .await
            .unwrap();
    }
    let now = now_millis();
    let claimed = store
        .claim_jobs("device_fetch", 3, now, now + 1_000)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let ids: Vec<String> = claimed.iter().map(|j| j.id.clone()).collect();
    // One finishes and one goes back to the queue before the renewal.
    store
        .finish_job(
            &ids[0],
            &JobOutcome::Succeeded {
                result: "{}".into(),
            },
        )
        .await
        .unwrap();
    assert!(store
        .retry_job(&ids[1], now + 50_000, "503", false)
        .await
        .unwrap());
    store
        .renew_leases(
            &[ids.clone(), vec!["unknown".into()]].concat(),
            now + 30_000,
        )
        .await
        .unwrap();
    store.renew_leases(&[], now + 90_000).await.unwrap();
    let by_id = |id: &str| {
        let store = store.clone();
        let id = id.to_owned();
        async move {
            store
                .list_jobs(&JobFilter {
                    limit: 10,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_iter()
                .find(|j| j.id == id)
                .unwrap()
        }
    };
    let finished = by_id(&ids[0]).await;
    assert_eq!(
        (finished.state, finished.lease_expires_at),
        (JobState::Succeeded, None)
    );
    let retried = by_id(&ids[1]).await;
    assert_eq!(
        (retried.state, retried.lease_expires_at, retried.run_at),
        (JobState::Pending, None, now + 50_000)
    );
    let renewed = by_id(&ids[2]).await;
    assert_eq!(
        (renewed.state, renewed.lease_expires_at),
        (JobState::Running, Some(now + 30_000))
    );
    // Past the old lease but within the renewed one, nobody else claims it.
    assert!(store
        .claim_jobs("device_fetch", 10, now + 2_000, now + 3_000)
        .await
        .unwrap()
        .is_empty());
    let reclaimed = store
        .claim_jobs("device_fetch", 10, now + 30_001, now + 40_000)
        .await
        .unwrap();
    assert_eq!(
        reclaimed.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        [ids[2].as_str()]
    );
}

async fn released_leases_make_running_jobs_due_without_counting_the_attempt(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    for i in 0..3 {
        store
            .enqueue_unique(&job(&format!("j{i}"), "12", &format!("r{i}")), 0)
            .await
            .unwrap();
    }
    let now = now_millis();
    let first = store
        .claim_jobs("device_fetch", 3, now, now + 60_000)
        .await
        .unwrap();
    assert_eq!(first.len(), 3);
    // j0 failed once already (a counted attempt), j1 finished, j2 runs.
    let ids = ["j0", "j1", "j2"].map(String::from);
    assert!(store.retry_job(&ids[0], now, "503", false).await.unwrap());
    store
        .finish_job(
            &ids[1],
            &JobOutcome::Failed {
                error: "gone".into(),
            },
        )
        .await
        .unwrap();
    let second = store
        .claim_jobs("device_fetch", 3, now, now + 60_000)
        .await
        .unwrap();
    assert_eq!(
        second
            .iter()
            .map(|j| (j.id.as_str(), j.attempts))
            .collect::<Vec<_>>(),
        [(ids[0].as_str(), 2)]
    );

    // The restarted process takes back both leases at once.
    let later = now + 1_000;
    assert_eq!(store.release_leases(later).await.unwrap(), 2);
    assert_eq!(
        store.release_leases(later).await.unwrap(),
        0,
        "nothing left"
    );
    assert_eq!(store.next_due("device_fetch").await.unwrap(), Some(later));
    let jobs = store
        .list_jobs(&JobFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut states: Vec<_> = jobs
        .iter()
        .map(|j| (j.id.clone(), j.state, j.attempts, j.lease_expires_at))
        .collect();
    states.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        states,
        [
            (ids[0].clone(), JobState::Pending, 1, None),
            (ids[1].clone(), JobState::Failed, 1, None),
            (ids[2].clone(), JobState::Pending, 0, None),
        ]
    );
    // Claimed again, each counts the attempt it makes now, once.
    let mut again: Vec<_> = store
        .claim_jobs("device_fetch", 10, later, later + 60_000)
        .await
        .unwrap()
        .into_iter()
        .map(|j| (j.id, j.attempts))
        .collect();
    again.sort();
    assert_eq!(again, [(ids[0].clone(), 2), (ids[2].clone(), 1)]);
}

async fn concurrent_finishes_of_one_job_finish_it_once(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    for i in 0..4 {
        store
            .enqueue_unique(&job(&format!("j{i}"), "12", &format!("r{i}")), 0)
            .await
            .unwrap();
    }
    let now = now_millis();
    store
        .claim_jobs("device_fetch", 4, now, now + 60_000)
        .await
        .unwrap();
    // Every job finished four times at once: the batches that form see
    // repeats of one id side by side.
    let finishes = (0..16).map(|n| {
        let store = store.clone();
        tokio::spawn(async move {
            let id = format!("j{}", n % 4);
            let outcome = JobOutcome::Succeeded {
                result: format!("{{\"n\":{n}}}"),
            };
            (id.clone(), store.finish_job(&id, &outcome).await.unwrap())
        })
    });
    let mut finished = Vec::new();
    for handle in finishes {
        let (id, won) = handle.await.unwrap();
        if won {
            finished.push(id);
        }
    }
    finished.sort();
    assert_eq!(finished, ["j0", "j1", "j2", "j3"]);
    let jobs = store
        .list_jobs(&JobFilter {
            state: Some(JobState::Succeeded),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(jobs.len(), 4);
    assert!(jobs
        .iter()
        .all(|j| j.result.is_some() && j.finished_at.is_some() && j.lease_expires_at.is_none()));
}

async fn conflicts_carry_the_store_description_not_the_database_text(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    let Err(StoreError::Conflict(what)) = store.create_subscriber(&subscriber("12"), &OP).await
    else {
        panic!("a second subscriber 12 conflicts");
    };
    assert_eq!(what, "subscriber already exists");
    store.create_api_key(&key("k1", "12"), &OP).await.unwrap();
    let Err(StoreError::Conflict(what)) = store.create_api_key(&key("k1", "12"), &OP).await else {
        panic!("a second key k1 conflicts");
    };
    assert_eq!(what, "API key already exists");
}

async fn concurrent_claims_never_share_a_job(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    for i in 0..60 {
        store
            .enqueue_unique(&job(&format!("j{i}"), "12", &format!("r{i}")), 0)
            .await
            .unwrap();
    }
    let now = now_millis();
    let claimers = (0..6).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store
                    .claim_jobs("device_fetch", 4, now, now + 60_000)
                    .await
                    .unwrap();
                if got.is_empty() {
                    break mine;
                }
                mine.extend(got.into_iter().map(|j| j.id));
            }
        })
    });
    let all: Vec<String> = futures_join(claimers).await.into_iter().flatten().collect();
    let distinct: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!((all.len(), distinct.len()), (60, 60));
}

fn decision(id: &str, subscriber_id: &str, key: Option<&str>, created_at: Millis) -> NewDecision {
    NewDecision {
        id: id.into(),
        subscriber_id: subscriber_id.into(),
        request_id: format!("req-{id}"),
        idempotency_key: key.map(str::to_owned),
        request_hash: "h1".into(),
        input: format!(r#"{{"id":"{id}"}}"#).into(),
        result: r#"{"action":"allow"}"#.into(),
        risk_score: 12.5,
        risk_level: "low".into(),
        action: "allow".into(),
        rules_version: 3,
        callback_url: Some("https://example.test/cb".into()),
        user_id: None,
        duration_us: 1_234,
        created_at,
        shadow: None,
        ip_address: None,
        email_domain: None,
        customer: None,
        callback: None,
        references: Vec::new(),
    }
}

/// A decision for `user` with the customer update that goes with it.
fn customer_decision(
    id: &str,
    user: &str,
    action: &str,
    at: Millis,
    visitor: Option<&str>,
    card: Option<(&str, &str)>,
    amount: Option<f64>,
) -> NewDecision {
    NewDecision {
        action: action.into(),
        user_id: Some(user.into()),
        customer: Some(CustomerTouch {
            user_id: user.into(),
            visitor_id: visitor.map(str::to_owned),
            card: card.map(|(b, l)| (b.to_owned(), l.to_owned())),
            amount,
            action: Some(action.into()),
        }),
        ..decision(id, "12", None, at)
    }
}

fn inserted(recorded: DecisionRecorded) -> DecisionRow {
    match recorded {
        DecisionRecorded::Inserted(row) => row,
        DecisionRecorded::Existing(row) => panic!("expected a new decision, got {row:?}"),
    }
}

async fn all_decisions(store: &Arc<dyn Store>) -> Vec<DecisionReplay> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store.decisions_since(0, after.clone(), 3).await.unwrap();
        let Some(last) = page.last() else { break out };
        after = Some((last.created_at, last.id.clone()));
        out.extend(page);
    }
}

async fn decisions_are_recorded_and_tenant_scoped(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    store
        .create_subscriber(&subscriber("13"), &OP)
        .await
        .unwrap();
    let mut new = decision("d1", "12", Some("k1"), 1_000);
    new.user_id = Some("u1".into());
    let row = inserted(store.record_decision(&new, 0).await.unwrap());
    let got = store.get_decision("12", "d1").await.unwrap().unwrap();
    for row in [&row, &got] {
        assert_eq!(row.id, "d1");
        assert_eq!(row.subscriber_id, "12");
        assert_eq!(row.request_id, "req-d1");
        assert_eq!(row.idempotency_key.as_deref(), Some("k1"));
        assert_eq!(row.request_hash, "h1");
        assert_eq!(row.input, r#"{"id":"d1"}"#);
        assert_eq!(row.result, r#"{"action":"allow"}"#);
        assert_eq!(row.risk_score, 12.5);
        assert_eq!(row.risk_level, "low");
        assert_eq!(row.action, "allow");
        assert_eq!(row.rules_version, 3);
        assert_eq!(row.callback_url.as_deref(), Some("https://example.test/cb"));
        assert_eq!(row.user_id.as_deref(), Some("u1"));
        assert_eq!(row.duration_us, 1_234);
        assert_eq!(row.created_at, 1_000);
        assert_eq!((row.label, row.labeled_at), (None, None));
        assert_eq!(
            (&row.final_input, &row.final_result, row.final_at),
            (&None, &None, None)
        );
    }
    // Another tenant sees nothing of it.
    assert!(store.get_decision("13", "d1").await.unwrap().is_none());
    assert!(store.get_decision("12", "nope").await.unwrap().is_none());
    assert!(store
        .find_decision_by_idempotency("13", "k1", 0)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .label_decision("13", "d1", Label::Fraud, 2_000, &OP, Value::Null)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .find_decision_by_idempotency("12", "k1", 1_000)
            .await
            .unwrap()
            .unwrap()
            .id,
        "d1"
    );
    assert!(store
        .find_decision_by_idempotency("12", "k1", 1_001)
        .await
        .unwrap()
        .is_none());
    // The same key is free for another tenant.
    inserted(
        store
            .record_decision(&decision("d2", "13", Some("k1"), 1_000), 0)
            .await
            .unwrap(),
    );
    // A decision for an unknown subscriber is refused.
    assert!(store
        .record_decision(&decision("d3", "99", None, 1_000), 0)
        .await
        .is_err());
}

async fn idempotency_keys_answer_within_the_window_only(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    let mut first = customer_decision("d1", "u1", "block", 1_000, Some("v1"), None, Some(10.0));
    first.idempotency_key = Some("k".into());
    inserted(store.record_decision(&first, 0).await.unwrap());

    // Within the window: the first decision, and nothing written.
    let mut retry = customer_decision("d2", "u1", "allow", 2_000, Some("v2"), None, Some(99.0));
    retry.idempotency_key = Some("k".into());
    retry.request_hash = "h2".into();
    let DecisionRecorded::Existing(existing) = store.record_decision(&retry, 1_000).await.unwrap()
    else {
        panic!("a key within the window answers with the first decision");
    };
    assert_eq!(
        (
            existing.id.as_str(),
            existing.action.as_str(),
            existing.request_hash.as_str()
        ),
        ("d1", "block", "h1")
    );
    assert!(store.get_decision("12", "d2").await.unwrap().is_none());
    assert_eq!(all_decisions(&store).await.len(), 1);
    let profile = store.get_customer("12", "u1").await.unwrap().unwrap();
    let c = &profile.customer;
    assert_eq!(
        (
            c.decisions_allow,
            c.decisions_block,
            c.amount_count,
            c.last_seen
        ),
        (0, 1, 1, 1_000)
    );
    assert_eq!(
        profile.devices_total, 1,
        "the retry's device is not recorded"
    );

    // Past the window: a new decision takes the key, the old one stays.
    let renewed = inserted(store.record_decision(&retry, 1_001).await.unwrap());
    assert_eq!(
        (renewed.id.as_str(), renewed.idempotency_key.as_deref()),
        ("d2", Some("k"))
    );
    let old = store.get_decision("12", "d1").await.unwrap().unwrap();
    assert_eq!((old.action.as_str(), old.idempotency_key), ("block", None));
    assert_eq!(
        store
            .find_decision_by_idempotency("12", "k", 0)
            .await
            .unwrap()
            .unwrap()
            .id,
        "d2"
    );
    let c = store
        .get_customer("12", "u1")
        .await
        .unwrap()
        .unwrap()
        .customer;
    assert_eq!(
        (
            c.decisions_allow,
            c.decisions_block,
            c.amount_count,
            c.last_seen
        ),
        (1, 1, 2, 2_000)
    );
    assert_eq!(all_decisions(&store).await.len(), 2);
}

async fn concurrent_decisions_with_one_key_record_one(backend: Backend) {
    let (store, db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    // A second process on the same database: its batches race the first's.
    let other = connect(&db.url).await.unwrap();
    let now = now_millis();
    let tries = (0..20).map(|i| {
        let store = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        tokio::spawn(async move {
            let mut new =
                customer_decision(&format!("d{i}"), "u1", "review", now, None, None, Some(5.0));
            new.idempotency_key = Some("same".into());
            store.record_decision(&new, now - 60_000).await.unwrap()
        })
    });
    let outcomes = futures_join(tries).await;
    let winners: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o, DecisionRecorded::Inserted(_)))
        .map(|o| o.row().id.clone())
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| o.row().id == winners[0]));
    assert_eq!(all_decisions(&store).await.len(), 1);
    let c = store
        .get_customer("12", "u1")
        .await
        .unwrap()
        .unwrap()
        .customer;
    assert_eq!((c.decisions_review, c.amount_count), (1, 1), "counted once");
}

const HOUR: Millis = 3_600_000;

/// The overview's counts, as (bucket start, action, count).
async fn counts(
    store: &Arc<dyn Store>,
    from: Millis,
    bucket: Millis,
) -> Vec<(Millis, String, i64)> {
    let mut counts: Vec<_> = store
        .action_buckets("13", from, bucket)
        .await
        .unwrap()
        .into_iter()
        .map(|b| (b.bucket, b.action, b.count))
        .collect();
    counts.sort();
    counts
}

/// The same, counted one by one from what was sent.
fn expected(sent: &[(Millis, &str)], from: Millis, bucket: Millis) -> Vec<(Millis, String, i64)> {
    let mut counts = std::collections::BTreeMap::new();
    for (at, action) in sent {
        *counts
            .entry(((at - from) / bucket * bucket + from, action.to_string()))
            .or_insert(0) += 1;
    }
    counts.into_iter().map(|((b, a), n)| (b, a, n)).collect()
}

async fn decisions_are_counted_per_hour_and_action_once_each(backend: Backend) {
    let (store, db) = open(backend).await;
    for id in ["13", "14"] {
        store.create_subscriber(&subscriber(id), &OP).await.unwrap();
    }
    let other = connect(&db.url).await.unwrap();
    let start = (now_millis() / HOUR - 20) * HOUR;
    let actions = ["allow", "review", "block"];
    // Keyless and keyed decisions from two processes at once, over 14 hours;
    // each keyed one is sent twice, once by each process.
    let sent: Vec<(Millis, &str)> = (0..60)
        .map(|i: i64| {
            (
                start + (i % 14) * HOUR + i * 7_000,
                actions[(i % 3) as usize],
            )
        })
        .collect();
    let sends = sent.iter().enumerate().flat_map(|(i, &(at, action))| {
        let keyed = i % 2 == 0;
        let twice = if keyed { 2 } else { 1 };
        (0..twice).map({
            let (store, other) = (store.clone(), other.clone());
            move |copy| {
                let store = if (i + copy) % 2 == 0 {
                    store.clone()
                } else {
                    other.clone()
                };
                let mut new =
                    customer_decision(&format!("d{i}-{copy}"), "u1", action, at, None, None, None);
                new.subscriber_id = "13".into();
                if keyed {
                    new.idempotency_key = Some(format!("key{i}"));
                }
                tokio::spawn(async move { store.record_decision(&new, at - 60_000).await.unwrap() })
            }
        })
    });
    let mut elsewhere = customer_decision("t", "u1", "allow", start, None, None, None);
    elsewhere.subscriber_id = "14".into();
    store.record_decision(&elsewhere, 0).await.unwrap();
    futures_join(sends.collect::<Vec<_>>().into_iter()).await;

    let hourly = counts(&store, start, HOUR).await;
    assert_eq!(
        hourly,
        expected(&sent, start, HOUR),
        "each decision once, per hour"
    );
    assert_eq!(
        counts(&other, start, 6 * HOUR).await,
        expected(&sent, start, 6 * HOUR),
        "the same counts in 6-hour buckets"
    );
    assert_eq!(
        counts(&store, start + 1_234, HOUR).await,
        hourly,
        "a start within an hour counts that hour whole"
    );
    assert_eq!(counts(&store, start + 14 * HOUR, HOUR).await, []);

    // A database upgraded from before the counters gets them from its decisions.
    drop((store, other));
    let mut raw = OtherProcess::connect(&db.url).await;
    raw.execute(
        "DROP TABLE decision_counts; \
         CREATE INDEX decisions_overview ON decisions (subscriber_id, created_at, action, duration_us); \
         DELETE FROM _sqlx_migrations WHERE version = 12",
    )
    .await;
    drop(raw);
    let upgraded = connect(&db.url).await.unwrap();
    assert_eq!(
        counts(&upgraded, start, HOUR).await,
        hourly,
        "counted on upgrade"
    );
}

/// A second process's own connection to the test database, outside any store.
enum OtherProcess {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl OtherProcess {
    async fn connect(url: &DatabaseUrl) -> Self {
        use sqlx::Connection;
        match url {
            DatabaseUrl::Sqlite { path } => Self::Sqlite(
                sqlx::SqliteConnection::connect(&format!("sqlite://{path}"))
                    .await
                    .unwrap(),
            ),
            DatabaseUrl::Postgres { url } => {
                Self::Postgres(sqlx::PgConnection::connect(url).await.unwrap())
            }
        }
    }

    async fn execute(&mut self, sql: &str) {
        match self {
            Self::Sqlite(conn) => sqlx::raw_sql(sql).execute(conn).await.map(drop),
            Self::Postgres(conn) => sqlx::raw_sql(sql).execute(conn).await.map(drop),
        }
        .unwrap();
    }
}

async fn a_decision_racing_another_process_for_its_key_ends_existing(backend: Backend) {
    let (store, db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    // Another process holds an uncommitted decision with the key.
    let mut other = OtherProcess::connect(&db.url).await;
    let begin = match backend {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => "BEGIN",
    };
    other.execute(begin).await;
    let now = now_millis();
    other
        .execute(&format!(
            "INSERT INTO decisions (id, subscriber_id, request_id, idempotency_key, request_hash, \
             input, result, risk_score, risk_level, action, rules_version, created_at) \
             VALUES ('theirs', '12', 'r', 'k', 'h', '{{}}', '{{}}', 1.0, 'low', 'allow', 1, {now})"
        ))
        .await;

    let ours = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut new = customer_decision("ours", "u1", "allow", now, None, None, None);
            new.idempotency_key = Some("k".into());
            store.record_decision(&new, now - 60_000).await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!ours.is_finished(), "waits for the other transaction");
    other.execute("COMMIT").await;
    let DecisionRecorded::Existing(existing) = ours.await.unwrap().unwrap() else {
        panic!("the other process's decision wins");
    };
    assert_eq!(existing.id, "theirs");
    assert!(store.get_decision("12", "ours").await.unwrap().is_none());
    assert!(
        store.get_customer("12", "u1").await.unwrap().is_none(),
        "nothing written"
    );
}

async fn concurrent_decisions_for_shared_customers_neither_deadlock_nor_lose_counts(
    backend: Backend,
) {
    let (store, db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    let stores = [store, connect(&db.url).await.unwrap()];
    // Batches mixing decisions, touches and keys for a few shared customers in
    // every order: PostgreSQL batches commit concurrently and must not deadlock.
    let writes = (0..120).map(|i: i64| {
        let store = stores[(i % 2) as usize].clone();
        tokio::spawn(async move {
            let user = format!("u{}", (i * 7) % 5);
            let visitor = format!("v{}", i % 3);
            if i % 4 == 3 {
                let touch = CustomerTouch {
                    user_id: user,
                    visitor_id: Some(visitor),
                    ..Default::default()
                };
                store.touch_customer("12", &touch, 1_000 + i).await.unwrap();
            } else {
                let mut new = customer_decision(
                    &format!("d{i}"),
                    &user,
                    "allow",
                    1_000 + i,
                    Some(&visitor),
                    None,
                    Some(1.0),
                );
                new.idempotency_key = Some(format!("k{}", i % 30));
                store.record_decision(&new, 0).await.unwrap();
            }
        })
    });
    futures_join(writes).await;
    let decisions = all_decisions(&stores[0]).await.len() as i64;
    assert_eq!(decisions, 30, "one decision per key");
    let mut counted = 0;
    for u in 0..5 {
        let c = stores[0]
            .get_customer("12", &format!("u{u}"))
            .await
            .unwrap()
            .unwrap()
            .customer;
        assert_eq!(c.decisions_allow, c.amount_count);
        counted += c.decisions_allow;
    }
    assert_eq!(counted, decisions, "each recorded decision counted once");
}

async fn labels_keep_fraud_counts_consistent(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    for (id, at) in [("d1", 1_000), ("d2", 2_000)] {
        store
            .record_decision(
                &customer_decision(id, "u1", "allow", at, None, None, None),
                0,
            )
            .await
            .unwrap();
    }
    async fn labels(store: &Arc<dyn Store>, user: &str) -> i64 {
        store
            .get_customer("12", user)
            .await
            .unwrap()
            .unwrap()
            .customer
            .fraud_labels
    }
    let labeled = store
        .label_decision("12", "d1", Label::Fraud, 5_000, &OP, Value::Null)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (labeled.label, labeled.labeled_at),
        (Some(Label::Fraud), Some(5_000))
    );
    assert_eq!(labels(&store, "u1").await, 1);
    // Labelling fraud again changes nothing.
    store
        .label_decision("12", "d1", Label::Fraud, 5_500, &OP, Value::Null)
        .await
        .unwrap();
    assert_eq!(labels(&store, "u1").await, 1);
    store
        .label_decision("12", "d1", Label::Legit, 6_000, &OP, Value::Null)
        .await
        .unwrap();
    assert_eq!(labels(&store, "u1").await, 0);
    let relabeled = store
        .label_decision("12", "d1", Label::Chargeback, 7_000, &OP, Value::Null)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (relabeled.label, relabeled.labeled_at),
        (Some(Label::Chargeback), Some(7_000))
    );
    assert_eq!(labels(&store, "u1").await, 1);
    store
        .label_decision("12", "d2", Label::Fraud, 8_000, &OP, Value::Null)
        .await
        .unwrap();
    assert_eq!(labels(&store, "u1").await, 2);
    let got = store.get_decision("12", "d1").await.unwrap().unwrap();
    assert_eq!(got.label, Some(Label::Chargeback));

    // A decision whose customer was never recorded: the label creates it.
    let mut orphan = decision("d3", "12", None, 3_000);
    orphan.user_id = Some("u2".into());
    store.record_decision(&orphan, 0).await.unwrap();
    assert!(store.get_customer("12", "u2").await.unwrap().is_none());
    store
        .label_decision("12", "d3", Label::Chargeback, 9_000, &OP, Value::Null)
        .await
        .unwrap();
    let c = store
        .get_customer("12", "u2")
        .await
        .unwrap()
        .unwrap()
        .customer;
    assert_eq!(
        (c.fraud_labels, c.first_seen, c.last_seen),
        (1, 3_000, 3_000)
    );
    // A decision without a user counts nowhere.
    store
        .record_decision(&decision("d4", "12", None, 4_000), 0)
        .await
        .unwrap();
    assert!(store
        .label_decision("12", "d4", Label::Fraud, 9_000, &OP, Value::Null)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .label_decision("12", "nope", Label::Fraud, 9_000, &OP, Value::Null)
        .await
        .unwrap()
        .is_none());
}

async fn customers_accumulate_decisions_devices_and_cards(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    let card_a = Some(("424242", "4242"));
    let card_b = Some(("555555", "4444"));
    let decisions = [
        customer_decision("d1", "u1", "allow", 5_000, Some("v1"), card_a, Some(10.0)),
        customer_decision("d2", "u1", "review", 3_000, Some("v2"), card_a, Some(250.5)),
        customer_decision("d3", "u1", "block", 9_000, Some("v1"), card_b, None),
        customer_decision("d4", "u1", "allow", 7_000, None, None, Some(40.0)),
        customer_decision("d5", "u2", "allow", 8_000, Some("v1"), None, Some(1.0)),
    ];
    for d in &decisions {
        inserted(store.record_decision(d, 0).await.unwrap());
    }
    let profile = store.get_customer("12", "u1").await.unwrap().unwrap();
    let c = &profile.customer;
    assert_eq!((c.subscriber_id.as_str(), c.user_id.as_str()), ("12", "u1"));
    assert_eq!(c.status, CustomerStatus::Normal);
    assert_eq!((c.first_seen, c.last_seen), (3_000, 9_000));
    assert_eq!(
        (c.decisions_allow, c.decisions_review, c.decisions_block),
        (2, 1, 1)
    );
    assert_eq!(c.amount_count, 3);
    assert!((c.amount_total - 300.5).abs() < 1e-9, "{}", c.amount_total);
    assert_eq!(c.amount_max, Some(250.5));
    assert_eq!((c.fraud_labels, c.status_updated_at), (0, None));
    let devices: Vec<_> = profile
        .devices
        .iter()
        .map(|d| (d.visitor_id.as_str(), d.first_seen, d.last_seen))
        .collect();
    assert_eq!(devices, [("v1", 5_000, 9_000), ("v2", 3_000, 3_000)]);
    let cards: Vec<_> = profile
        .cards
        .iter()
        .map(|k| (k.bin.as_str(), k.last4.as_str(), k.first_seen, k.last_seen))
        .collect();
    assert_eq!(
        cards,
        [
            ("555555", "4444", 9_000, 9_000),
            ("424242", "4242", 3_000, 5_000)
        ]
    );
    assert_eq!((profile.devices_total, profile.cards_total), (2, 2));

    // Another customer's device is not this one's.
    let u2 = store.get_customer("12", "u2").await.unwrap().unwrap();
    assert_eq!(
        (u2.devices_total, u2.cards_total, u2.customer.amount_max),
        (1, 0, Some(1.0))
    );
    assert!(store.get_customer("12", "u3").await.unwrap().is_none());
    store
        .create_subscriber(&subscriber("13"), &OP)
        .await
        .unwrap();
    assert!(store.get_customer("13", "u1").await.unwrap().is_none());

    // The lists are bounded, the totals are not.
    for i in 0..105 {
        store
            .touch_customer(
                "12",
                &CustomerTouch {
                    user_id: "many".into(),
                    visitor_id: Some(format!("v{i:03}")),
                    ..Default::default()
                },
                10_000 + i,
            )
            .await
            .unwrap();
    }
    let many = store.get_customer("12", "many").await.unwrap().unwrap();
    assert_eq!((many.devices.len(), many.devices_total), (100, 105));
    assert_eq!(many.devices[0].visitor_id, "v104", "latest first");
}

async fn customer_features_know_devices_and_cards(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    store
        .create_subscriber(&subscriber("13"), &OP)
        .await
        .unwrap();
    assert!(store
        .customer_features("12", "u1", Some("v1"), None)
        .await
        .unwrap()
        .is_none());
    store
        .record_decision(
            &customer_decision(
                "d1",
                "u1",
                "allow",
                1_000,
                Some("v1"),
                Some(("424242", "4242")),
                Some(20.0),
            ),
            0,
        )
        .await
        .unwrap();
    store
        .record_decision(
            &customer_decision("d2", "u1", "block", 2_000, Some("v2"), None, Some(30.0)),
            0,
        )
        .await
        .unwrap();
    store
        .record_decision(
            &customer_decision(
                "d3",
                "u2",
                "allow",
                2_000,
                Some("v9"),
                Some(("111111", "1111")),
                None,
            ),
            0,
        )
        .await
        .unwrap();
    store
        .label_decision("12", "d2", Label::Fraud, 3_000, &OP, Value::Null)
        .await
        .unwrap();

    let f = store
        .customer_features("12", "u1", Some("v1"), Some(("424242", "4242")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.status, CustomerStatus::Normal);
    assert_eq!((f.first_seen, f.last_seen), (1_000, 2_000));
    assert_eq!(
        (f.decisions_allow, f.decisions_review, f.decisions_block),
        (1, 0, 1)
    );
    assert_eq!(
        (f.amount_count, f.amount_total, f.amount_max),
        (2, 50.0, Some(30.0))
    );
    assert_eq!((f.fraud_labels, f.devices, f.cards), (1, 2, 1));
    assert!(f.known_device && f.known_card);

    // Unknown device, a card seen only with the same BIN, nothing given, and
    // another customer's device and card.
    let cases = [
        (Some("v3"), Some(("424242", "0000")), false, false),
        (None, None, false, false),
        (Some("v9"), Some(("111111", "1111")), false, false),
        (Some("v2"), None, true, false),
    ];
    for (visitor, card, known_device, known_card) in cases {
        let f = store
            .customer_features("12", "u1", visitor, card)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (f.known_device, f.known_card),
            (known_device, known_card),
            "{visitor:?} {card:?}"
        );
    }
    // Tenant-scoped.
    assert!(store
        .customer_features("13", "u1", Some("v1"), None)
        .await
        .unwrap()
        .is_none());
    // A customer with nothing recorded yet but a status.
    store
        .set_customer_status("12", "u5", CustomerStatus::Blocked, 4_000, &OP)
        .await
        .unwrap();
    let f = store
        .customer_features("12", "u5", Some("v1"), Some(("424242", "4242")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.status, CustomerStatus::Blocked);
    assert_eq!(
        (
            f.devices,
            f.cards,
            f.amount_count,
            f.amount_total,
            f.amount_max
        ),
        (0, 0, 0, 0.0, None)
    );
    assert!(!f.known_device && !f.known_card);
}

async fn customer_status_is_upserted_per_tenant(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    store
        .create_subscriber(&subscriber("13"), &OP)
        .await
        .unwrap();
    // Blocking a user before they are seen.
    let blocked = store
        .set_customer_status("12", "u1", CustomerStatus::Blocked, 1_000, &OP)
        .await
        .unwrap();
    assert_eq!(
        (
            blocked.status,
            blocked.first_seen,
            blocked.last_seen,
            blocked.status_updated_at
        ),
        (CustomerStatus::Blocked, 1_000, 1_000, Some(1_000))
    );
    assert!(store.get_customer("13", "u1").await.unwrap().is_none());
    let other = store
        .set_customer_status("13", "u1", CustomerStatus::Trusted, 1_500, &OP)
        .await
        .unwrap();
    assert_eq!(other.status, CustomerStatus::Trusted);

    store
        .record_decision(
            &customer_decision("d1", "u1", "allow", 2_000, None, None, Some(5.0)),
            0,
        )
        .await
        .unwrap();
    let trusted = store
        .set_customer_status("12", "u1", CustomerStatus::Trusted, 3_000, &OP)
        .await
        .unwrap();
    assert_eq!(
        (
            trusted.status,
            trusted.first_seen,
            trusted.last_seen,
            trusted.status_updated_at,
            trusted.decisions_allow,
            trusted.amount_count
        ),
        (CustomerStatus::Trusted, 1_000, 2_000, Some(3_000), 1, 1),
        "the status changes, the counters stay"
    );
    let normal = store
        .set_customer_status("12", "u1", CustomerStatus::Normal, 4_000, &OP)
        .await
        .unwrap();
    assert_eq!(normal.status, CustomerStatus::Normal);
    assert_eq!(
        store
            .get_customer("13", "u1")
            .await
            .unwrap()
            .unwrap()
            .customer
            .status,
        CustomerStatus::Trusted
    );
    assert!(store
        .set_customer_status("99", "u1", CustomerStatus::Blocked, 1_000, &OP)
        .await
        .is_err());
    assert_eq!(
        CustomerStatus::parse("blocked"),
        Some(CustomerStatus::Blocked)
    );
    assert_eq!(CustomerStatus::parse("Blocked"), None);
    assert_eq!(Label::parse("chargeback"), Some(Label::Chargeback));
    assert_eq!(
        serde_json::to_string(&CustomerStatus::Trusted).unwrap(),
        "\"trusted\""
    );
}

async fn touches_record_sightings_without_counting_decisions(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    let seen = |visitor: Option<&str>| CustomerTouch {
        user_id: "u1".into(),
        visitor_id: visitor.map(str::to_owned),
        ..Default::default()
    };
    store
        .touch_customer("12", &seen(None), 5_000)
        .await
        .unwrap();
    store
        .touch_customer("12", &seen(Some("v1")), 6_000)
        .await
        .unwrap();
    store
        .touch_customer("12", &seen(Some("v1")), 4_000)
        .await
        .unwrap();
    let profile = store.get_customer("12", "u1").await.unwrap().unwrap();
    let c = &profile.customer;
    assert_eq!((c.first_seen, c.last_seen), (4_000, 6_000));
    assert_eq!(
        (
            c.decisions_allow,
            c.decisions_review,
            c.decisions_block,
            c.amount_count
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(c.amount_max, None);
    assert_eq!(
        profile
            .devices
            .iter()
            .map(|d| (d.visitor_id.as_str(), d.first_seen, d.last_seen))
            .collect::<Vec<_>>(),
        [("v1", 4_000, 6_000)]
    );

    // With an action, an amount and a card, a touch counts them; a non-finite
    // amount is ignored.
    let counted = CustomerTouch {
        user_id: "u1".into(),
        visitor_id: None,
        card: Some(("424242".into(), "4242".into())),
        amount: Some(f64::NAN),
        action: Some("review".into()),
    };
    store.touch_customer("12", &counted, 7_000).await.unwrap();
    let profile = store.get_customer("12", "u1").await.unwrap().unwrap();
    assert_eq!(
        (
            profile.customer.decisions_review,
            profile.customer.amount_count,
            profile.customer.last_seen,
            profile.cards_total
        ),
        (1, 0, 7_000, 1)
    );
    // A touch for an unknown subscriber fails (and fails alone).
    assert!(store.touch_customer("99", &seen(None), 1).await.is_err());

    // Many concurrent touches of one customer in shared batches.
    let touches = (0..40).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let touch = CustomerTouch {
                user_id: format!("c{}", i % 4),
                visitor_id: Some(format!("v{}", i % 3)),
                card: Some(("400000".into(), format!("{:04}", (i / 4) % 2))),
                amount: Some(1.0),
                action: Some("allow".into()),
            };
            store
                .touch_customer("12", &touch, 10_000 + i)
                .await
                .unwrap()
        })
    });
    futures_join(touches).await;
    for c in 0..4 {
        let profile = store
            .get_customer("12", &format!("c{c}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                profile.customer.decisions_allow,
                profile.customer.amount_count,
                profile.devices_total,
                profile.cards_total
            ),
            (10, 10, 3, 2)
        );
    }
}

async fn decisions_since_pages_through_every_decision_once(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    store
        .create_subscriber(&subscriber("13"), &OP)
        .await
        .unwrap();
    assert!(store.decisions_since(0, None, 10).await.unwrap().is_empty());
    // Equal timestamps across pages and subscribers.
    let mut expected = Vec::new();
    for (i, at) in [
        500, 1_000, 1_000, 1_000, 1_000, 2_000, 2_000, 3_000, 3_000, 3_000, 4_000,
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("d{:02}", 20 - i);
        let sub = if i % 2 == 0 { "12" } else { "13" };
        store
            .record_decision(&decision(&id, sub, None, at), 0)
            .await
            .unwrap();
        expected.push((at, id, sub.to_owned()));
    }
    expected.sort();
    let got: Vec<_> = all_decisions(&store)
        .await
        .into_iter()
        .map(|d| {
            assert_eq!(d.input, format!(r#"{{"id":"{}"}}"#, d.id));
            (d.created_at, d.id, d.subscriber_id)
        })
        .collect();
    assert_eq!(got, expected);

    // `since` bounds the start; pages are at most `limit` long.
    let from = store.decisions_since(2_000, None, 100).await.unwrap();
    assert_eq!(from.len(), 6);
    assert!(from.iter().all(|d| d.created_at >= 2_000));
    let page = store
        .decisions_since(0, Some((1_000, expected[2].1.clone())), 2)
        .await
        .unwrap();
    let ids: Vec<_> = page.iter().map(|d| d.id.clone()).collect();
    assert_eq!(ids, [expected[3].1.clone(), expected[4].1.clone()]);
}

/// The callback job of decision `decision_id`, as the decision handler builds it.
fn callback_job(decision_id: &str, subscriber_id: &str, run_at: Option<Millis>) -> NewJob {
    NewJob {
        id: format!("cb-{decision_id}"),
        kind: JobKind::DecisionCallback.as_str().into(),
        subscriber_id: subscriber_id.into(),
        dedupe_key: decision_id.into(),
        payload: format!(r#"{{"decision_id":"{decision_id}"}}"#),
        run_at,
    }
}

fn with_callback(mut new: NewDecision, run_at: Option<Millis>) -> NewDecision {
    new.callback = Some(callback_job(&new.id, &new.subscriber_id, run_at));
    new
}

async fn callback_jobs(store: &Arc<dyn Store>, subscriber_id: &str) -> Vec<JobRow> {
    let filter = JobFilter {
        subscriber_id: Some(subscriber_id.into()),
        kind: Some(JobKind::DecisionCallback.as_str().into()),
        state: None,
        limit: 1000,
    };
    store.list_jobs(&filter).await.unwrap()
}

async fn a_decision_and_its_callback_job_are_recorded_together(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    store
        .create_subscriber(&subscriber("13"), &OP)
        .await
        .unwrap();
    assert_eq!(JobKind::DecisionCallback.as_str(), "decision_callback");

    let before = now_millis();
    let first = with_callback(decision("d1", "12", Some("k1"), before), None);
    inserted(store.record_decision(&first, 0).await.unwrap());
    let after = now_millis();
    let job = store
        .latest_job("12", "decision_callback", "d1")
        .await
        .unwrap()
        .expect("the callback job is recorded with its decision");
    assert_eq!(
        (
            job.id.as_str(),
            job.kind.as_str(),
            job.subscriber_id.as_str(),
            job.payload.as_str(),
            job.state,
            job.attempts
        ),
        (
            "cb-d1",
            "decision_callback",
            "12",
            r#"{"decision_id":"d1"}"#,
            JobState::Pending,
            0
        )
    );
    assert!(
        (before..=after).contains(&job.run_at),
        "due at once: {job:?}"
    );
    assert!((before..=after).contains(&job.created_at));
    assert_eq!(
        (
            job.lease_expires_at,
            job.finished_at,
            job.result,
            job.last_error
        ),
        (None, None, None, None)
    );
    // Tenant-scoped like every job.
    assert!(store
        .latest_job("13", "decision_callback", "d1")
        .await
        .unwrap()
        .is_none());

    // An idempotent repeat answers with the first decision and records no job.
    let repeat = with_callback(decision("d2", "12", Some("k1"), after), None);
    let DecisionRecorded::Existing(existing) = store.record_decision(&repeat, 0).await.unwrap()
    else {
        panic!("a repeat within the window is the first decision");
    };
    assert_eq!(existing.id, "d1");
    assert!(store
        .latest_job("12", "decision_callback", "d2")
        .await
        .unwrap()
        .is_none());
    assert_eq!(callback_jobs(&store, "12").await.len(), 1);

    // A decision without a callback records no job.
    inserted(
        store
            .record_decision(&decision("d3", "12", None, after), 0)
            .await
            .unwrap(),
    );
    assert_eq!(callback_jobs(&store, "12").await.len(), 1);

    // A later first run: the job waits for it.
    let later = after + 60_000;
    inserted(
        store
            .record_decision(
                &with_callback(decision("d4", "12", None, after), Some(later)),
                0,
            )
            .await
            .unwrap(),
    );
    let job = store
        .latest_job("12", "decision_callback", "d4")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.run_at, job.state), (later, JobState::Pending));
    let now = now_millis();
    let claimed = store
        .claim_jobs("decision_callback", 10, now, now + 30_000)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        ["cb-d1"],
        "only the due callback is claimed"
    );
    assert_eq!(
        store.next_due("decision_callback").await.unwrap(),
        Some(later)
    );

    // Atomic: when the job cannot be recorded, neither is the decision.
    let mut clash = with_callback(decision("d5", "12", None, after), None);
    clash.callback.as_mut().unwrap().id = "cb-d1".into();
    assert!(store.record_decision(&clash, 0).await.is_err());
    assert!(store.get_decision("12", "d5").await.unwrap().is_none());
    assert!(store
        .latest_job("12", "decision_callback", "d5")
        .await
        .unwrap()
        .is_none());
    // ...and when the decision cannot be recorded, neither is the job.
    let orphan = with_callback(decision("d6", "99", None, after), None);
    assert!(store.record_decision(&orphan, 0).await.is_err());
    let all = store
        .list_jobs(&JobFilter {
            kind: Some("decision_callback".into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut ids: Vec<_> = all.iter().map(|j| j.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["cb-d1", "cb-d4"]);
}

async fn concurrent_repeats_of_a_decision_record_one_callback(backend: Backend) {
    let (store, db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    let stores = [store, connect(&db.url).await.unwrap()];
    let now = now_millis();
    let tries = (0..16).map(|i| {
        let store = stores[i % 2].clone();
        tokio::spawn(async move {
            let new = with_callback(decision(&format!("d{i}"), "12", Some("same"), now), None);
            store.record_decision(&new, now - 60_000).await.unwrap()
        })
    });
    let outcomes = futures_join(tries).await;
    let winners: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o, DecisionRecorded::Inserted(_)))
        .map(|o| o.row().id.clone())
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let jobs = callback_jobs(&stores[0], "12").await;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].dedupe_key, winners[0]);
}

async fn the_first_final_body_of_a_decision_wins(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    store
        .create_subscriber(&subscriber("13"), &OP)
        .await
        .unwrap();
    inserted(
        store
            .record_decision(&decision("d1", "12", None, 1_000), 0)
            .await
            .unwrap(),
    );
    // The worker's read, unscoped.
    let row = store.get_decision_by_id("d1").await.unwrap().unwrap();
    assert_eq!((row.id.as_str(), row.subscriber_id.as_str()), ("d1", "12"));
    assert_eq!(
        (row.final_input, row.final_result, row.final_at),
        (None, None, None)
    );
    assert!(store.get_decision_by_id("nope").await.unwrap().is_none());

    assert!(store
        .set_decision_final("d1", r#"{"in":1}"#, r#"{"out":1}"#, 5_000)
        .await
        .unwrap());
    assert!(
        !store
            .set_decision_final("d1", r#"{"in":2}"#, r#"{"out":2}"#, 6_000)
            .await
            .unwrap(),
        "a retry does not change the body"
    );
    assert!(!store
        .set_decision_final("nope", "{}", "{}", 6_000)
        .await
        .unwrap());
    for row in [
        store.get_decision_by_id("d1").await.unwrap().unwrap(),
        store.get_decision("12", "d1").await.unwrap().unwrap(),
    ] {
        assert_eq!(
            (
                row.final_input.as_deref(),
                row.final_result.as_deref(),
                row.final_at
            ),
            (Some(r#"{"in":1}"#), Some(r#"{"out":1}"#), Some(5_000))
        );
        // The decision as first answered is untouched.
        assert_eq!(
            (row.input.as_str(), row.result.as_str()),
            (r#"{"id":"d1"}"#, r#"{"action":"allow"}"#)
        );
    }
    assert!(store.get_decision("13", "d1").await.unwrap().is_none());

    // Concurrent workers: exactly one sets the body, and it is the stored one.
    inserted(
        store
            .record_decision(&decision("d2", "12", None, 1_000), 0)
            .await
            .unwrap(),
    );
    let writers = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let set = store
                .set_decision_final("d2", &format!("in{i}"), &format!("out{i}"), 7_000 + i)
                .await
                .unwrap();
            (i, set)
        })
    });
    let winners: Vec<_> = futures_join(writers)
        .await
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(winners.len(), 1);
    let w = winners[0];
    let row = store.get_decision_by_id("d2").await.unwrap().unwrap();
    assert_eq!(
        (row.final_input, row.final_result, row.final_at),
        (
            Some(format!("in{w}")),
            Some(format!("out{w}")),
            Some(7_000 + w)
        )
    );
}

async fn callback_attempts_are_recorded_listed_and_replaced(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    for id in ["d1", "d2"] {
        inserted(
            store
                .record_decision(&decision(id, "12", None, 1_000), 0)
                .await
                .unwrap(),
        );
    }
    assert!(store.callback_attempts("d1").await.unwrap().is_empty());
    let attempt = |n: i64, status: Option<i64>, error: Option<&str>| CallbackAttempt {
        decision_id: "d1".into(),
        attempt: n,
        at: 10_000 + n,
        status_code: status,
        error: error.map(str::to_owned),
        duration_ms: 40 + n,
        webhook_id: format!("msg_d1_{n}"),
    };
    // Recorded out of order, with and without a status (NULL then a value
    // then NULL again on the same statement).
    let second = attempt(2, Some(503), Some("HTTP 503"));
    let first = attempt(1, None, Some("connection refused"));
    let third = attempt(3, None, Some("timed out"));
    for a in [&second, &first, &third] {
        store.record_callback_attempt(a).await.unwrap();
    }
    assert_eq!(
        store.callback_attempts("d1").await.unwrap(),
        [first.clone(), second.clone(), third.clone()]
    );
    // Recording an attempt again replaces it.
    let third_again = attempt(3, Some(200), None);
    store.record_callback_attempt(&third_again).await.unwrap();
    store.record_callback_attempt(&third_again).await.unwrap();
    assert_eq!(
        store.callback_attempts("d1").await.unwrap(),
        [first, second, third_again]
    );
    // Per decision.
    assert!(store.callback_attempts("d2").await.unwrap().is_empty());
    let other = CallbackAttempt {
        decision_id: "d2".into(),
        ..attempt(1, Some(204), None)
    };
    store.record_callback_attempt(&other).await.unwrap();
    assert_eq!(store.callback_attempts("d2").await.unwrap(), [other]);
    assert_eq!(store.callback_attempts("d1").await.unwrap().len(), 3);
    // Only a recorded decision has attempts.
    let unknown = CallbackAttempt {
        decision_id: "nope".into(),
        ..attempt(1, None, None)
    };
    assert!(store.record_callback_attempt(&unknown).await.is_err());
    assert!(store.callback_attempts("nope").await.unwrap().is_empty());
}

async fn only_a_failed_job_is_requeued(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    store
        .create_subscriber(&subscriber("13"), &OP)
        .await
        .unwrap();
    let cb = "decision_callback";
    let now = now_millis();
    assert!(matches!(
        store.requeue_failed_job(cb, "12", "d1", now).await.unwrap(),
        Requeued::Missing
    ));
    inserted(
        store
            .record_decision(&with_callback(decision("d1", "12", None, now), None), 0)
            .await
            .unwrap(),
    );
    // Pending: left alone.
    let Requeued::NotFailed(pending) = store
        .requeue_failed_job(cb, "12", "d1", now + 9_999)
        .await
        .unwrap()
    else {
        panic!("a pending job is not failed");
    };
    assert_eq!(
        (pending.id.as_str(), pending.state),
        ("cb-d1", JobState::Pending)
    );
    assert!(pending.run_at <= now_millis());

    // Running, then failed for good.
    let claimed = store
        .claim_jobs(cb, 10, now_millis(), now_millis() + 30_000)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(matches!(
        store.requeue_failed_job(cb, "12", "d1", now).await.unwrap(),
        Requeued::NotFailed(JobRow {
            state: JobState::Running,
            ..
        })
    ));
    assert!(store
        .retry_job("cb-d1", 0, "HTTP 500", false)
        .await
        .unwrap());
    let claimed = store
        .claim_jobs(cb, 10, now_millis(), now_millis() + 30_000)
        .await
        .unwrap();
    assert_eq!(claimed[0].attempts, 2);
    assert!(store
        .finish_job(
            "cb-d1",
            &JobOutcome::Failed {
                error: "HTTP 502".into()
            }
        )
        .await
        .unwrap());

    // Another tenant's key and another kind find nothing.
    for (kind, sub) in [(cb, "13"), ("device_fetch", "12")] {
        assert!(matches!(
            store
                .requeue_failed_job(kind, sub, "d1", now)
                .await
                .unwrap(),
            Requeued::Missing
        ));
    }
    let run_at = now + 5_000;
    let Requeued::Requeued(back) = store
        .requeue_failed_job(cb, "12", "d1", run_at)
        .await
        .unwrap()
    else {
        panic!("a failed job is requeued");
    };
    assert_eq!(
        (
            back.id.as_str(),
            back.state,
            back.attempts,
            back.run_at,
            back.last_error.as_deref(),
            back.finished_at,
            back.lease_expires_at
        ),
        (
            "cb-d1",
            JobState::Pending,
            0,
            run_at,
            Some("HTTP 502"),
            None,
            None
        )
    );
    assert_eq!(
        store
            .latest_job("12", cb, "d1")
            .await
            .unwrap()
            .unwrap()
            .state,
        JobState::Pending
    );
    // Twice: the second finds it pending.
    assert!(matches!(
        store
            .requeue_failed_job(cb, "12", "d1", run_at)
            .await
            .unwrap(),
        Requeued::NotFailed(JobRow {
            state: JobState::Pending,
            ..
        })
    ));
    // The worker machinery takes it from there: due at run_at, attempts from 1.
    assert!(store
        .claim_jobs(cb, 10, run_at - 1, run_at + 30_000)
        .await
        .unwrap()
        .is_empty());
    let again = store
        .claim_jobs(cb, 10, run_at, run_at + 30_000)
        .await
        .unwrap();
    assert_eq!(
        again
            .iter()
            .map(|j| (j.id.as_str(), j.attempts))
            .collect::<Vec<_>>(),
        [("cb-d1", 1)]
    );
    store
        .finish_job(
            "cb-d1",
            &JobOutcome::Succeeded {
                result: "{}".into(),
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .requeue_failed_job(cb, "12", "d1", run_at)
            .await
            .unwrap(),
        Requeued::NotFailed(JobRow {
            state: JobState::Succeeded,
            ..
        })
    ));

    // Only the latest job of a key counts.
    store
        .enqueue_unique(&job("j1", "12", "r"), 0)
        .await
        .unwrap();
    store
        .finish_job(
            "j1",
            &JobOutcome::Failed {
                error: "old".into(),
            },
        )
        .await
        .unwrap();
    store
        .enqueue_unique(&job("j2", "12", "r"), 0)
        .await
        .unwrap();
    let Requeued::NotFailed(live) = store
        .requeue_failed_job("device_fetch", "12", "r", now)
        .await
        .unwrap()
    else {
        panic!("the latest job of the key is pending");
    };
    assert_eq!(live.id, "j2");
    store
        .finish_job(
            "j2",
            &JobOutcome::Failed {
                error: "new".into(),
            },
        )
        .await
        .unwrap();
    let Requeued::Requeued(requeued) = store
        .requeue_failed_job("device_fetch", "12", "r", now)
        .await
        .unwrap()
    else {
        panic!("the latest failed job is requeued");
    };
    assert_eq!(
        (requeued.id.as_str(), requeued.last_error.as_deref()),
        ("j2", Some("new"))
    );

    // Concurrent requeues of one failed job: one wins, the others find it pending.
    store
        .enqueue_unique(&job("j3", "12", "race"), 0)
        .await
        .unwrap();
    store
        .finish_job("j3", &JobOutcome::Failed { error: "x".into() })
        .await
        .unwrap();
    let tries = (0..6).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .requeue_failed_job("device_fetch", "12", "race", now)
                .await
                .unwrap()
        })
    });
    let outcomes = futures_join(tries).await;
    let requeued = outcomes
        .iter()
        .filter(|o| matches!(o, Requeued::Requeued(_)))
        .count();
    let pending = outcomes
        .iter()
        .filter(|o| {
            matches!(
                o,
                Requeued::NotFailed(JobRow {
                    state: JobState::Pending,
                    ..
                })
            )
        })
        .count();
    assert_eq!((requeued, pending), (1, 5), "{outcomes:?}");
}

async fn oldest_live_job_is_the_oldest_pending_or_running(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    let kind = "device_fetch";
    assert_eq!(store.oldest_live_job(kind).await.unwrap(), None);
    let mut created = Vec::new();
    for i in 0..3 {
        let Enqueued::Queued(row) = store
            .enqueue_unique(&job(&format!("j{i}"), "12", &format!("r{i}")), 0)
            .await
            .unwrap()
        else {
            panic!("queued");
        };
        created.push(row.created_at);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(created[0] < created[1] && created[1] < created[2]);
    assert_eq!(store.oldest_live_job(kind).await.unwrap(), Some(created[0]));
    // Running still counts.
    let now = now_millis();
    let claimed = store.claim_jobs(kind, 1, now, now + 30_000).await.unwrap();
    assert_eq!(claimed[0].id, "j0");
    assert_eq!(store.oldest_live_job(kind).await.unwrap(), Some(created[0]));
    // Finished ones do not, whatever the outcome.
    store
        .finish_job("j0", &JobOutcome::Failed { error: "x".into() })
        .await
        .unwrap();
    assert_eq!(store.oldest_live_job(kind).await.unwrap(), Some(created[1]));
    store
        .finish_job(
            "j1",
            &JobOutcome::Succeeded {
                result: "{}".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(store.oldest_live_job(kind).await.unwrap(), Some(created[2]));
    // Per kind.
    assert_eq!(
        store.oldest_live_job("decision_callback").await.unwrap(),
        None
    );
    inserted(
        store
            .record_decision(&with_callback(decision("d1", "12", None, now), None), 0)
            .await
            .unwrap(),
    );
    let cb = store
        .latest_job("12", "decision_callback", "d1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.oldest_live_job("decision_callback").await.unwrap(),
        Some(cb.created_at)
    );
    assert_eq!(store.oldest_live_job(kind).await.unwrap(), Some(created[2]));
    store
        .finish_job(
            "j2",
            &JobOutcome::Succeeded {
                result: "{}".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(store.oldest_live_job(kind).await.unwrap(), None);
}

async fn rotating_a_webhook_secret_keeps_only_the_latest_previous(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    store
        .create_subscriber(&subscriber("13"), &OP)
        .await
        .unwrap();
    let fresh = store.get_subscriber("12").await.unwrap().unwrap();
    assert_eq!(
        (
            fresh.previous_webhook_secret_sealed,
            fresh.previous_secret_expires_at
        ),
        (None, None)
    );

    let once = store
        .rotate_webhook_secret("12", "v2.sealed", 10_000, &OP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            once.webhook_secret_sealed.as_str(),
            once.previous_webhook_secret_sealed.as_deref(),
            once.previous_secret_expires_at
        ),
        ("v2.sealed", Some("v1.sealed"), Some(10_000))
    );
    assert!(once.updated_at >= fresh.updated_at);
    assert_eq!(once.created_at, fresh.created_at);

    let twice = store
        .rotate_webhook_secret("12", "v3.sealed", 20_000, &OP)
        .await
        .unwrap()
        .unwrap();
    let stored = store.get_subscriber("12").await.unwrap().unwrap();
    for row in [&twice, &stored] {
        assert_eq!(
            (
                row.webhook_secret_sealed.as_str(),
                row.previous_webhook_secret_sealed.as_deref(),
                row.previous_secret_expires_at
            ),
            ("v3.sealed", Some("v2.sealed"), Some(20_000))
        );
    }
    // Other subscribers are untouched; an unknown one is `None`.
    let other = store.get_subscriber("13").await.unwrap().unwrap();
    assert_eq!(
        (
            other.webhook_secret_sealed.as_str(),
            other.previous_webhook_secret_sealed
        ),
        ("v1.sealed", None)
    );
    assert!(store
        .rotate_webhook_secret("nope", "x", 1, &OP)
        .await
        .unwrap()
        .is_none());
    // Listing carries the rotation; renaming keeps it.
    let listed = store.list_subscribers().await.unwrap();
    assert_eq!(
        listed[0].previous_webhook_secret_sealed.as_deref(),
        Some("v2.sealed")
    );
    let renamed = store
        .update_subscriber("12", Some("Renamed"), None, &OP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            renamed.webhook_secret_sealed.as_str(),
            renamed.previous_webhook_secret_sealed.as_deref(),
            renamed.previous_secret_expires_at
        ),
        ("v3.sealed", Some("v2.sealed"), Some(20_000))
    );
    // A subscriber created with a previous secret keeps it.
    let mut imported = subscriber("14");
    imported.previous_webhook_secret_sealed = Some("v0.sealed".into());
    imported.previous_secret_expires_at = Some(30_000);
    store.create_subscriber(&imported, &OP).await.unwrap();
    let got = store.get_subscriber("14").await.unwrap().unwrap();
    assert_eq!(
        (
            got.previous_webhook_secret_sealed.as_deref(),
            got.previous_secret_expires_at
        ),
        (Some("v0.sealed"), Some(30_000))
    );
}

async fn signing_scheme_and_key_rotation_are_stored(backend: Backend) {
    let (store, _db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    store
        .create_subscriber(&subscriber("13"), &OP)
        .await
        .unwrap();
    let fresh = store.get_subscriber("12").await.unwrap().unwrap();
    assert_eq!(fresh.signing_scheme, SigningScheme::V1);
    assert_eq!(
        (fresh.signing_key_sealed, fresh.signing_public_key),
        (None, None)
    );

    // The first switch to v1a stores the key pair and starts the grace period.
    let first = store
        .set_signing_scheme(
            "12",
            SigningScheme::V1a,
            Some(("k1.sealed", "whpk_1")),
            5_000,
            &OP,
        )
        .await
        .unwrap()
        .unwrap();
    let summary = |row: &SubscriberRow| {
        (
            row.signing_scheme,
            row.signing_key_sealed.clone(),
            row.signing_public_key.clone(),
            row.previous_scheme_expires_at,
        )
    };
    let want = (
        SigningScheme::V1a,
        Some("k1.sealed".to_owned()),
        Some("whpk_1".to_owned()),
        Some(5_000),
    );
    assert_eq!(summary(&first), want);
    assert_eq!(
        summary(&store.get_subscriber("12").await.unwrap().unwrap()),
        want
    );
    // The same scheme again changes neither the key pair nor the grace period.
    let same = store
        .set_signing_scheme(
            "12",
            SigningScheme::V1a,
            Some(("k2.sealed", "whpk_2")),
            9_000,
            &OP,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(summary(&same), want);
    // Back to v1: the key pair stays, a new grace period starts.
    let back = store
        .set_signing_scheme("12", SigningScheme::V1, None, 7_000, &OP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        summary(&back),
        (
            SigningScheme::V1,
            Some("k1.sealed".into()),
            Some("whpk_1".into()),
            Some(7_000)
        )
    );
    assert_eq!(back.webhook_secret_sealed, "v1.sealed");

    // Rotation: the current pair becomes the previous one.
    let rotated = store
        .rotate_signing_key("12", "k3.sealed", "whpk_3", 20_000, &OP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            rotated.signing_key_sealed.as_deref(),
            rotated.signing_public_key.as_deref(),
            rotated.previous_signing_key_sealed.as_deref(),
            rotated.previous_signing_key_expires_at
        ),
        (
            Some("k3.sealed"),
            Some("whpk_3"),
            Some("k1.sealed"),
            Some(20_000)
        )
    );
    // Rotating a subscriber that never had a pair leaves no previous one.
    let first_pair = store
        .rotate_signing_key("13", "k9.sealed", "whpk_9", 20_000, &OP)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            first_pair.signing_scheme,
            first_pair.signing_key_sealed.as_deref(),
            first_pair.previous_signing_key_sealed,
            first_pair.previous_signing_key_expires_at
        ),
        (SigningScheme::V1, Some("k9.sealed"), None, None)
    );
    for unknown in [
        store
            .set_signing_scheme("nope", SigningScheme::V1a, Some(("x", "y")), 1, &OP)
            .await
            .unwrap(),
        store
            .rotate_signing_key("nope", "x", "y", 1, &OP)
            .await
            .unwrap(),
    ] {
        assert!(unknown.is_none());
    }
    // A subscriber created on v1a keeps what it was created with.
    let mut created = subscriber("14");
    created.signing_scheme = SigningScheme::V1a;
    created.signing_key_sealed = Some("k14.sealed".into());
    created.signing_public_key = Some("whpk_14".into());
    store.create_subscriber(&created, &OP).await.unwrap();
    let got = store.get_subscriber("14").await.unwrap().unwrap();
    assert_eq!(
        summary(&got),
        (
            SigningScheme::V1a,
            Some("k14.sealed".into()),
            Some("whpk_14".into()),
            None
        )
    );
}

/// Every `customer_features` question the rebuild test asks, with its answer.
async fn features_of(store: &Arc<dyn Store>) -> Vec<(String, Option<CustomerFeatures>)> {
    let mut answers = Vec::new();
    for subscriber_id in ["12", "13"] {
        for user in ["u0", "u1", "u2", "u3", "u4", "u5", "u6", "nobody"] {
            for visitor in [None, Some("v0"), Some("v1"), Some("v2"), Some("v9")] {
                for card in [
                    None,
                    Some(("424242", "4242")),
                    Some(("424242", "0000")),
                    Some(("555555", "4444")),
                ] {
                    let f = store
                        .customer_features(subscriber_id, user, visitor, card)
                        .await
                        .unwrap();
                    answers.push((format!("{subscriber_id} {user} {visitor:?} {card:?}"), f));
                }
            }
        }
    }
    answers
}

async fn customer_features_survive_a_restart_unchanged(backend: Backend) {
    let (store, db) = open(backend).await;
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    store
        .create_subscriber(&subscriber("13"), &OP)
        .await
        .unwrap();
    let cards = [None, Some(("424242", "4242")), Some(("555555", "4444"))];
    let visitors = [None, Some("v0"), Some("v1"), Some("v2")];
    let actions = ["allow", "review", "block"];
    // Concurrent decisions and touches, so batches merge several updates of
    // one customer; amounts whose f64 sums depend on the order of addition.
    let mut tasks = Vec::new();
    for i in 0..48_usize {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let user = format!("u{}", i % 4);
            let at = 1_000 + (i as i64 * 7919) % 500;
            let amount = Some(0.1 * (i % 5) as f64 + 1e-3 * i as f64);
            if i % 3 == 0 {
                let touch = CustomerTouch {
                    user_id: user,
                    visitor_id: visitors[i % 4].map(str::to_owned),
                    card: cards[(i / 4) % 3].map(|(b, l)| (b.to_owned(), l.to_owned())),
                    amount,
                    action: Some(actions[i % 3].into()),
                };
                store.touch_customer("12", &touch, at).await.unwrap();
            } else {
                let d = customer_decision(
                    &format!("d{i}"),
                    &user,
                    actions[i % 3],
                    at,
                    visitors[i % 4],
                    cards[(i / 4) % 3],
                    amount,
                );
                inserted(store.record_decision(&d, 0).await.unwrap());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // Labels, relabels and a label that creates its customer.
    store
        .label_decision("12", "d1", Label::Fraud, 2_000, &OP, Value::Null)
        .await
        .unwrap();
    store
        .label_decision("12", "d2", Label::Chargeback, 2_000, &OP, Value::Null)
        .await
        .unwrap();
    store
        .label_decision("12", "d1", Label::Legit, 2_100, &OP, Value::Null)
        .await
        .unwrap();
    store
        .label_decision("12", "d1", Label::Fraud, 2_200, &OP, Value::Null)
        .await
        .unwrap();
    let mut orphan = decision("orphan", "12", None, 900);
    orphan.user_id = Some("u5".into());
    store.record_decision(&orphan, 0).await.unwrap();
    store
        .label_decision("12", "orphan", Label::Fraud, 2_300, &OP, Value::Null)
        .await
        .unwrap();
    // Status changes of known and unknown customers, then later sightings.
    store
        .set_customer_status("12", "u0", CustomerStatus::Blocked, 3_000, &OP)
        .await
        .unwrap();
    store
        .set_customer_status("12", "u6", CustomerStatus::Trusted, 3_100, &OP)
        .await
        .unwrap();
    store
        .set_customer_status("13", "u1", CustomerStatus::Blocked, 3_200, &OP)
        .await
        .unwrap();
    let later = CustomerTouch {
        user_id: "u6".into(),
        visitor_id: Some("v9".into()),
        amount: Some(12.5),
        ..Default::default()
    };
    store.touch_customer("12", &later, 2_500).await.unwrap();
    // A write that fails changes nothing.
    assert!(store
        .set_customer_status("99", "u1", CustomerStatus::Blocked, 3_300, &OP)
        .await
        .is_err());

    let before = features_of(&store).await;
    // The sequence above leaves what the contract says it does.
    let u0 = store
        .customer_features("12", "u0", Some("v0"), Some(("424242", "4242")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u0.status, CustomerStatus::Blocked);
    assert_eq!(
        u0.decisions_allow + u0.decisions_review + u0.decisions_block,
        12
    );
    // u0 is every fourth write: never with a device, with two of the cards.
    assert_eq!((u0.amount_count, u0.devices, u0.cards), (12, 0, 2));
    assert!(!u0.known_device && u0.known_card);
    let u1 = store
        .customer_features("12", "u1", None, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u1.fraud_labels, 1);
    let u5 = store
        .customer_features("12", "u5", None, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (u5.first_seen, u5.last_seen, u5.fraud_labels),
        (900, 900, 1)
    );
    let u6 = store
        .customer_features("12", "u6", Some("v9"), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            u6.status,
            u6.first_seen,
            u6.last_seen,
            u6.amount_max,
            u6.known_device
        ),
        (CustomerStatus::Trusted, 2_500, 3_100, Some(12.5), true)
    );
    assert!(store
        .customer_features("99", "u1", None, None)
        .await
        .unwrap()
        .is_none());

    store.close().await;
    drop(store);
    let again = connect(&db.url).await.unwrap();
    let after = features_of(&again).await;
    assert_eq!(before.len(), after.len());
    for ((question, was), (_, is)) in before.iter().zip(&after) {
        assert_eq!(was, is, "{question}");
    }
}

/// Payment references recorded with decisions find them again: in one batch
/// or many, the most specific first, the later decision taking a shared
/// reference over, per subscriber; an idempotent repeat records none.
async fn gateway_references_find_their_decision(backend: Backend) {
    let (store, _db) = open(backend).await;
    for id in ["12", "13"] {
        store.create_subscriber(&subscriber(id), &OP).await.unwrap();
    }
    let refs = |v: &[&str]| v.iter().map(|r| (*r).to_owned()).collect::<Vec<String>>();
    // Concurrent decisions share group-commit batches.
    let tries = (0..12).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut new = decision(&format!("d{i}"), "12", None, 1_000 + i);
            new.references = vec![format!("ch_{i}"), format!("pi_{i}"), "order-1".into()];
            store.record_decision(&new, 0).await.unwrap()
        })
    });
    futures_join(tries).await;
    let found = |subscriber: &'static str, wanted: Vec<String>| {
        let store = store.clone();
        async move {
            store
                .decision_by_reference(subscriber, &wanted)
                .await
                .unwrap()
                .map(|row| row.id)
        }
    };
    for i in 0..12 {
        assert_eq!(
            found("12", refs(&[&format!("pi_{i}")])).await,
            Some(format!("d{i}"))
        );
    }
    // The first reference that names a decision wins.
    assert_eq!(
        found("12", refs(&["ch_nope", "ch_3", "pi_4"]))
            .await
            .as_deref(),
        Some("d3")
    );
    // A shared reference names the latest decision.
    assert_eq!(
        found("12", refs(&["order-1"])).await.as_deref(),
        Some("d11")
    );
    let mut later = decision("d20", "12", Some("k1"), 5_000);
    later.references = refs(&["order-1", "ch_20"]);
    store.record_decision(&later, 0).await.unwrap();
    assert_eq!(
        found("12", refs(&["order-1"])).await.as_deref(),
        Some("d20")
    );
    // An idempotent repeat is the first decision: its references go nowhere.
    let mut repeat = decision("d21", "12", Some("k1"), 5_100);
    repeat.references = refs(&["ch_21"]);
    assert!(matches!(
        store.record_decision(&repeat, 0).await.unwrap(),
        DecisionRecorded::Existing(_)
    ));
    assert_eq!(found("12", refs(&["ch_21"])).await, None);
    // Per subscriber.
    assert_eq!(found("13", refs(&["ch_1", "order-1"])).await, None);
    let mut theirs = decision("d30", "13", None, 6_000);
    theirs.references = refs(&["order-1"]);
    store.record_decision(&theirs, 0).await.unwrap();
    assert_eq!(
        found("13", refs(&["order-1"])).await.as_deref(),
        Some("d30")
    );
    assert_eq!(
        found("12", refs(&["order-1"])).await.as_deref(),
        Some("d20")
    );
    assert_eq!(found("12", Vec::new()).await, None);
}

/// A change and its audit entry commit together: a change that fails leaves
/// no entry, one that changes nothing writes none.
async fn changes_write_their_audit_entry_in_their_transaction(backend: Backend) {
    let (store, _db) = open(backend).await;
    let key_actor = Actor::ApiKey("k9".into());
    store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .unwrap();
    assert!(store
        .create_subscriber(&subscriber("12"), &OP)
        .await
        .is_err());
    store.create_api_key(&key("k1", "12"), &OP).await.unwrap();
    assert!(store.create_api_key(&key("k1", "12"), &OP).await.is_err());
    store
        .revoke_api_key("12", "k1", &OP)
        .await
        .unwrap()
        .unwrap();
    store
        .revoke_api_key("12", "k1", &OP)
        .await
        .unwrap()
        .unwrap();
    assert!(store
        .revoke_api_key("12", "nokey", &OP)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .update_subscriber("nobody", Some("x"), None, &OP)
        .await
        .unwrap()
        .is_none());
    store
        .set_customer_status("12", "u1", CustomerStatus::Blocked, 2_000, &key_actor)
        .await
        .unwrap();
    store
        .set_customer_status("12", "u1", CustomerStatus::Blocked, 2_100, &key_actor)
        .await
        .unwrap();
    store
        .record_decision(&decision("d1", "12", None, 1_000), 0)
        .await
        .unwrap();
    for _ in 0..2 {
        store
            .label_decision(
                "12",
                "d1",
                Label::Fraud,
                3_000,
                &key_actor,
                serde_json::json!({"dispute_id": "dp_1"}),
            )
            .await
            .unwrap()
            .unwrap();
    }
    let audit = |v: &'static str| NewAudit::new("12", &OP, v, "rate-limit", serde_json::json!({}));
    assert!(!store
        .change_setting("rate_limit:12", None, &audit("rate_limit.remove"))
        .await
        .unwrap());
    assert!(store
        .change_setting("rate_limit:12", Some("{}"), &audit("rate_limit.set"))
        .await
        .unwrap());
    let log = store.audit_log("12", None, 100).await.unwrap();
    let got: Vec<(&str, &str)> = log
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("rate_limit.set", "operator"),
            ("key.revoke", "operator"),
            ("key.create", "operator"),
            ("subscriber.create", "operator"),
            // Dated by the label's and the status's own time (given here).
            ("decision.label", "api_key:k9"),
            ("customer.status", "api_key:k9"),
        ]
    );
    let label: serde_json::Value = serde_json::from_str(&log[4].summary).unwrap();
    assert_eq!(
        label,
        serde_json::json!({"label": "fraud", "previous": null, "dispute_id": "dp_1"})
    );
    assert_eq!((log[4].at, log[5].at), (3_000, 2_000));
    // Paging by (time, id) goes on exactly after the last entry read.
    let first = store.audit_log("12", None, 2).await.unwrap();
    let last = first.last().unwrap();
    let rest = store
        .audit_log("12", Some((last.at, last.id.clone())), 100)
        .await
        .unwrap();
    let ids: Vec<&str> = first.iter().chain(&rest).map(|e| e.id.as_str()).collect();
    assert_eq!(ids, log.iter().map(|e| e.id.as_str()).collect::<Vec<_>>());
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        each(Backend::ALL) => [
            jobs_are_leased_retried_and_reclaimed_after_a_crash,
            leases_are_renewed_for_running_jobs_only,
            released_leases_make_running_jobs_due_without_counting_the_attempt,
            conflicts_carry_the_store_description_not_the_database_text,
            concurrent_finishes_of_one_job_finish_it_once,
            concurrent_claims_never_share_a_job,
            migrations_apply_once_and_data_survives_reconnect,
            settings_insert_if_absent_keeps_the_first_value,
            subscribers_are_unique_listed_and_updated,
            key_auth_reflects_revocation_and_suspension,
            provider_credentials_keep_first_configured_order,
            rule_sets_are_versioned,
            rule_set_transitions_keep_one_live_and_one_shadow,
            enqueue_unique_reports_queued_in_flight_and_done,
            concurrent_ingests_of_one_id_record_one_job,
            jobs_are_listed_filtered_and_counted,
            decisions_are_recorded_and_tenant_scoped,
            idempotency_keys_answer_within_the_window_only,
            concurrent_decisions_with_one_key_record_one,
            decisions_are_counted_per_hour_and_action_once_each,
            a_decision_racing_another_process_for_its_key_ends_existing,
            concurrent_decisions_for_shared_customers_neither_deadlock_nor_lose_counts,
            labels_keep_fraud_counts_consistent,
            customers_accumulate_decisions_devices_and_cards,
            customer_features_know_devices_and_cards,
            customer_features_survive_a_restart_unchanged,
            customer_status_is_upserted_per_tenant,
            touches_record_sightings_without_counting_decisions,
            decisions_since_pages_through_every_decision_once,
            a_decision_and_its_callback_job_are_recorded_together,
            concurrent_repeats_of_a_decision_record_one_callback,
            the_first_final_body_of_a_decision_wins,
            callback_attempts_are_recorded_listed_and_replaced,
            only_a_failed_job_is_requeued,
            oldest_live_job_is_the_oldest_pending_or_running,
            rotating_a_webhook_secret_keeps_only_the_latest_previous,
            signing_scheme_and_key_rotation_are_stored,
            gateway_references_find_their_decision,
            changes_write_their_audit_entry_in_their_transaction,
        ],
    }
}
