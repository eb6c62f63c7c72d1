#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The storage contract, run against every backend: SQLite and the real
//! PostgreSQL server. A backend passes only if it behaves exactly like the other.

mod common;

use std::sync::Arc;

use common::{fresh_db, Backend};
use riskgate::store::*;

async fn open(backend: Backend) -> Option<(SqlStore, common::TestDb)> {
    let db = fresh_db(backend).await?;
    let store = SqlStore::connect(&db.url)
        .await
        .expect("connect and migrate");
    Some((store, db))
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
    }
}

async fn migrations_apply_once_and_data_survives_reconnect(backend: Backend) {
    let Some((store, db)) = open(backend).await else {
        return;
    };
    store.create_subscriber(&subscriber("12")).await.unwrap();
    store.close().await;
    // A second start runs the migrator again: nothing to do, data intact.
    let again = SqlStore::connect(&db.url).await.unwrap();
    assert_eq!(
        again.get_subscriber("12").await.unwrap().unwrap().name,
        "12 Inc"
    );
    again.ping().await.unwrap();
}

async fn settings_insert_if_absent_keeps_the_first_value(backend: Backend) {
    let Some((store, _db)) = open(backend).await else {
        return;
    };
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
    let Some((store, _db)) = open(backend).await else {
        return;
    };
    store.create_subscriber(&subscriber("a")).await.unwrap();
    store.create_subscriber(&subscriber("b")).await.unwrap();
    let dup = store.create_subscriber(&subscriber("a")).await;
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
        .update_subscriber("a", Some("Renamed"), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.status),
        ("Renamed", SubscriberStatus::Active)
    );
    let suspended = store
        .update_subscriber("a", None, Some(SubscriberStatus::Suspended))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (suspended.name.as_str(), suspended.status),
        ("Renamed", SubscriberStatus::Suspended)
    );
    assert!(store
        .update_subscriber("nope", Some("x"), None)
        .await
        .unwrap()
        .is_none());
    assert!(store.get_subscriber("nope").await.unwrap().is_none());
}

async fn key_auth_reflects_revocation_and_suspension(backend: Backend) {
    let Some((store, _db)) = open(backend).await else {
        return;
    };
    store.create_subscriber(&subscriber("12")).await.unwrap();
    store.create_subscriber(&subscriber("13")).await.unwrap();
    store.create_api_key(&key("k1", "12")).await.unwrap();
    store.create_api_key(&key("k2", "12")).await.unwrap();

    let auth = store.find_key_for_auth("k1").await.unwrap().unwrap();
    assert_eq!(auth.subscriber_id, "12");
    assert!(!auth.revoked);
    assert_eq!(auth.subscriber_status, SubscriberStatus::Active);
    assert!(store.find_key_for_auth("k9").await.unwrap().is_none());

    // Another tenant cannot revoke this key.
    assert!(store.revoke_api_key("13", "k1").await.unwrap().is_none());
    let revoked = store.revoke_api_key("12", "k1").await.unwrap().unwrap();
    let first_revocation = revoked.revoked_at.unwrap();
    assert!(
        store
            .find_key_for_auth("k1")
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    let again = store.revoke_api_key("12", "k1").await.unwrap().unwrap();
    assert_eq!(
        again.revoked_at,
        Some(first_revocation),
        "revoking twice keeps the first time"
    );

    store
        .update_subscriber("12", None, Some(SubscriberStatus::Suspended))
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
    let Some((store, _db)) = open(backend).await else {
        return;
    };
    store.create_subscriber(&subscriber("12")).await.unwrap();
    let row = |provider: &str, sealed: &str, at: i64| ProviderCredentialRow {
        subscriber_id: "12".into(),
        provider: provider.into(),
        sealed: sealed.into(),
        settings: "{}".into(),
        created_at: at,
        updated_at: at,
    };
    store
        .put_provider_credentials(&row("stytch", "s1", 1_000))
        .await
        .unwrap();
    store
        .put_provider_credentials(&row("fingerprint", "f1", 2_000))
        .await
        .unwrap();
    // Rotating the first provider's secret must not change which one is default.
    store
        .put_provider_credentials(&row("stytch", "s2", 3_000))
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

async fn rule_sets_are_versioned(backend: Backend) {
    let Some((store, _db)) = open(backend).await else {
        return;
    };
    store.create_subscriber(&subscriber("12")).await.unwrap();
    store.create_subscriber(&subscriber("13")).await.unwrap();
    assert!(store.current_rule_set("12").await.unwrap().is_none());
    assert_eq!(
        store.put_rule_set("12", "{\"v\":1}").await.unwrap().version,
        1
    );
    assert_eq!(
        store.put_rule_set("12", "{\"v\":2}").await.unwrap().version,
        2
    );
    assert_eq!(
        store.put_rule_set("13", "{\"v\":1}").await.unwrap().version,
        1
    );
    let current = store.current_rule_set("12").await.unwrap().unwrap();
    assert_eq!((current.version, current.body.as_str()), (2, "{\"v\":2}"));

    // Concurrent writers each get a version of their own.
    let store = Arc::new(store);
    let writes = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .put_rule_set("12", &format!("{{\"w\":{i}}}"))
                .await
                .unwrap()
                .version
        })
    });
    let mut versions: Vec<i64> = futures_join(writes).await;
    versions.sort();
    assert_eq!(versions, (3..=10).collect::<Vec<_>>());
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
    let Some((store, _db)) = open(backend).await else {
        return;
    };
    store.create_subscriber(&subscriber("12")).await.unwrap();
    store.create_subscriber(&subscriber("13")).await.unwrap();
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
    let Some((store, _db)) = open(backend).await else {
        return;
    };
    store.create_subscriber(&subscriber("12")).await.unwrap();
    let store = Arc::new(store);
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
    let Some((store, _db)) = open(backend).await else {
        return;
    };
    store.create_subscriber(&subscriber("12")).await.unwrap();
    store.create_subscriber(&subscriber("13")).await.unwrap();
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
    let Some((store, _db)) = open(backend).await else {
        return;
    };
    store.create_subscriber(&subscriber("12")).await.unwrap();
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

async fn concurrent_claims_never_share_a_job(backend: Backend) {
    let Some((store, _db)) = open(backend).await else {
        return;
    };
    store.create_subscriber(&subscriber("12")).await.unwrap();
    for i in 0..60 {
        store
            .enqueue_unique(&job(&format!("j{i}"), "12", &format!("r{i}")), 0)
            .await
            .unwrap();
    }
    let store = Arc::new(store);
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

on_every_backend!(
    jobs_are_leased_retried_and_reclaimed_after_a_crash,
    concurrent_claims_never_share_a_job,
    migrations_apply_once_and_data_survives_reconnect,
    settings_insert_if_absent_keeps_the_first_value,
    subscribers_are_unique_listed_and_updated,
    key_auth_reflects_revocation_and_suspension,
    provider_credentials_keep_first_configured_order,
    rule_sets_are_versioned,
    enqueue_unique_reports_queued_in_flight_and_done,
    concurrent_ingests_of_one_id_record_one_job,
    jobs_are_listed_filtered_and_counted,
);
