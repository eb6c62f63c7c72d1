//! The device-signal cache contract, run against the embedded (moka) backend
//! and Redis (`RISKGATE_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`).
//!
//! Every test uses subscriber ids of its own, so runs never collide on a shared
//! Redis, and deletes its keys when it ends (even when it fails).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use crate::common::trials::Server;
use crate::common::{raw_redis, redis_url, CacheBackend};
use riskgate::cache::{self, CacheError, CachedEvent, EventStatus, MemoryCache, SignalCache};
use riskgate::decision::{DeviceSignals, ProviderVelocity};
use riskgate::secrets::random_id;

const TTL: Duration = Duration::from_secs(60);

/// One test's cache, with a fresh subscriber id (`sub`) and, on Redis, a raw
/// connection for looking under the hood.
struct Harness {
    backend: CacheBackend,
    cache: Arc<dyn SignalCache>,
    sub: String,
    raw: Option<redis::aio::MultiplexedConnection>,
}

impl Harness {
    async fn start(backend: CacheBackend) -> Self {
        Self::with_ttl(backend, TTL).await
    }

    async fn with_ttl(backend: CacheBackend, ttl: Duration) -> Self {
        let sub = format!("t{}", random_id(12));
        match backend {
            CacheBackend::Memory => Self {
                backend,
                cache: cache::connect(None, ttl).await.unwrap(),
                sub,
                raw: None,
            },
            CacheBackend::Redis => {
                let raw = raw_redis().await;
                let cache = cache::connect(Some(&redis_url()), ttl).await.unwrap();
                Self {
                    backend,
                    cache,
                    sub,
                    raw: Some(raw),
                }
            }
        }
    }

    /// Another subscriber id whose keys are cleaned up with this harness's.
    fn other_subscriber(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.sub)
    }

    fn raw(&mut self) -> &mut redis::aio::MultiplexedConnection {
        self.raw.as_mut().expect("a Redis harness")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if self.backend != CacheBackend::Redis {
            return;
        }
        // Best effort, with a blocking client: Drop cannot await.
        let pattern = format!("rg:{}*", self.sub);
        let cleanup = || -> redis::RedisResult<()> {
            let client = redis::Client::open(redis_url().as_str())?;
            let mut conn = client.get_connection()?;
            let keys: Vec<String> =
                redis::Commands::scan_match::<_, String>(&mut conn, &pattern)?.collect();
            if !keys.is_empty() {
                redis::cmd("DEL").arg(&keys).query::<()>(&mut conn)?;
            }
            Ok(())
        };
        if let Err(err) = cleanup() {
            eprintln!("could not delete {pattern}: {err}");
        }
    }
}

fn ready(request_id: &str, visitor_id: &str) -> CachedEvent {
    CachedEvent {
        request_id: request_id.to_owned(),
        provider: "fingerprint".to_owned(),
        status: EventStatus::Ready,
        signals: Some(DeviceSignals {
            visitor_id: Some(visitor_id.to_owned()),
            confidence: Some(0.99),
            vpn: Some(true),
            tor: Some(false),
            ip_address: Some("203.0.113.7".to_owned()),
            ..DeviceSignals::default()
        }),
        error: None,
        fetched_at: Some(1_708_102_555_327),
        attempts: 1,
    }
}

async fn reports_its_backend_and_answers_ping(backend: CacheBackend) {
    let h = Harness::start(backend).await;
    let expected = match backend {
        CacheBackend::Memory => "memory",
        CacheBackend::Redis => "redis",
    };
    assert_eq!(h.cache.backend(), expected);
    h.cache.ping().await.unwrap();
}

async fn put_then_get_by_request_session_and_user(backend: CacheBackend) {
    let h = Harness::start(backend).await;
    let (c, sub) = (&h.cache, h.sub.as_str());
    // Session and user ids are free text: spaces, `@`, `:` and non-ASCII included.
    let (session, user) = ("DEV-SESSION xyz:1 ✓", "user@example.com");
    let event = ready("1708102555327.NLOjmg", "visitor-a");
    c.put_event(sub, Some(session), Some(user), &event)
        .await
        .unwrap();

    let by_request = c.get_by_request(sub, &event.request_id).await.unwrap();
    assert_eq!(by_request.as_ref(), Some(&event));
    assert_eq!(
        c.get_by_session(sub, session).await.unwrap().as_ref(),
        Some(&event)
    );
    assert_eq!(
        c.get_by_user(sub, user).await.unwrap().as_ref(),
        Some(&event)
    );

    // Writing the same request again replaces its event.
    let mut retried = event.clone();
    retried.attempts = 2;
    c.put_event(sub, None, None, &retried).await.unwrap();
    assert_eq!(
        c.get_by_session(sub, session)
            .await
            .unwrap()
            .map(|e| e.attempts),
        Some(2)
    );
}

async fn unknown_ids_are_misses(backend: CacheBackend) {
    let h = Harness::start(backend).await;
    let (c, sub) = (&h.cache, h.sub.as_str());
    c.put_event(sub, Some("s1"), Some("u1"), &ready("r1", "v"))
        .await
        .unwrap();
    assert_eq!(c.get_by_request(sub, "r2").await.unwrap(), None);
    assert_eq!(c.get_by_session(sub, "s2").await.unwrap(), None);
    assert_eq!(c.get_by_user(sub, "u2").await.unwrap(), None);
    // A session id is not a user id, nor a request id.
    assert_eq!(c.get_by_user(sub, "s1").await.unwrap(), None);
    assert_eq!(c.get_by_request(sub, "s1").await.unwrap(), None);
}

async fn every_status_round_trips(backend: CacheBackend) {
    let h = Harness::start(backend).await;
    let (c, sub) = (&h.cache, h.sub.as_str());
    let pending = CachedEvent {
        request_id: "pending-1".to_owned(),
        provider: "stytch".to_owned(),
        status: EventStatus::Pending,
        signals: None,
        error: None,
        fetched_at: None,
        attempts: 0,
    };
    let failed = CachedEvent {
        request_id: "failed-1".to_owned(),
        provider: "fingerprintiq".to_owned(),
        status: EventStatus::Failed,
        signals: None,
        error: Some("provider answered 404: event not found".to_owned()),
        fetched_at: Some(1_700_000_000_000),
        attempts: 3,
    };
    let mut full = ready("ready-1", "visitor-full");
    if let Some(signals) = full.signals.as_mut() {
        signals.bot = Some("bad".to_owned());
        signals.suspect_score = Some(0.42);
        signals.verdict_reasons = vec!["vpn".to_owned(), "tampering".to_owned()];
        signals.velocity = Some(ProviderVelocity {
            events_5m: Some(3),
            distinct_ip_24h: Some(7),
            ..ProviderVelocity::default()
        });
        signals.event_time = Some(1_708_102_555_000);
    }
    for event in [&pending, &failed, &full] {
        c.put_event(sub, None, None, event).await.unwrap();
    }
    for event in [&pending, &failed, &full] {
        assert_eq!(
            c.get_by_request(sub, &event.request_id)
                .await
                .unwrap()
                .as_ref(),
            Some(event)
        );
    }
}

async fn the_latest_request_wins_the_session_and_user_pointers(backend: CacheBackend) {
    let h = Harness::start(backend).await;
    let (c, sub) = (&h.cache, h.sub.as_str());
    let (a, b) = (ready("req-a", "visitor-a"), ready("req-b", "visitor-b"));
    c.put_event(sub, Some("s"), Some("u"), &a).await.unwrap();
    c.put_event(sub, Some("s"), Some("u"), &b).await.unwrap();
    assert_eq!(c.get_by_session(sub, "s").await.unwrap().as_ref(), Some(&b));
    assert_eq!(c.get_by_user(sub, "u").await.unwrap().as_ref(), Some(&b));
    // The older event stays readable by its request id.
    assert_eq!(
        c.get_by_request(sub, "req-a").await.unwrap().as_ref(),
        Some(&a)
    );

    // Moving one pointer leaves the other alone.
    c.point(sub, "req-a", None, Some("u")).await.unwrap();
    assert_eq!(c.get_by_user(sub, "u").await.unwrap().as_ref(), Some(&a));
    assert_eq!(c.get_by_session(sub, "s").await.unwrap().as_ref(), Some(&b));

    // An event written without pointers does not move them.
    let d = ready("req-d", "visitor-d");
    c.put_event(sub, None, None, &d).await.unwrap();
    assert_eq!(c.get_by_session(sub, "s").await.unwrap().as_ref(), Some(&b));
    assert_eq!(c.get_by_user(sub, "u").await.unwrap().as_ref(), Some(&a));
}

async fn point_moves_only_the_pointers(backend: CacheBackend) {
    let h = Harness::start(backend).await;
    let (c, sub) = (&h.cache, h.sub.as_str());
    // At ingest time: pointers first, no event yet.
    c.point(sub, "req-1", Some("s"), Some("u")).await.unwrap();
    assert_eq!(c.get_by_request(sub, "req-1").await.unwrap(), None);
    assert_eq!(c.get_by_session(sub, "s").await.unwrap(), None);
    assert_eq!(c.get_by_user(sub, "u").await.unwrap(), None);
    // With neither pointer given, nothing happens.
    c.point(sub, "req-2", None, None).await.unwrap();

    // The fetch lands: the pointers now resolve.
    let event = ready("req-1", "visitor-1");
    c.put_event(sub, None, None, &event).await.unwrap();
    assert_eq!(
        c.get_by_session(sub, "s").await.unwrap().as_ref(),
        Some(&event)
    );
    assert_eq!(
        c.get_by_user(sub, "u").await.unwrap().as_ref(),
        Some(&event)
    );
}

async fn a_dangling_pointer_is_a_miss(backend: CacheBackend) {
    let h = Harness::start(backend).await;
    let (c, sub) = (&h.cache, h.sub.as_str());
    c.put_event(sub, Some("s"), Some("u"), &ready("req-1", "v1"))
        .await
        .unwrap();
    // A newer ingest moves the session to a request not fetched yet: the
    // session reads as a miss, not as the older request's event.
    c.point(sub, "req-2", Some("s"), None).await.unwrap();
    assert_eq!(c.get_by_session(sub, "s").await.unwrap(), None);
    assert_eq!(
        c.get_by_user(sub, "u").await.unwrap().map(|e| e.request_id),
        Some("req-1".to_owned())
    );
}

async fn entries_expire_after_the_ttl(backend: CacheBackend) {
    let h = Harness::with_ttl(backend, Duration::from_secs(1)).await;
    let (c, sub) = (&h.cache, h.sub.as_str());
    let event = ready("req-ttl", "visitor-ttl");
    c.put_event(sub, Some("s"), Some("u"), &event)
        .await
        .unwrap();
    c.point(sub, "req-other", None, Some("u2")).await.unwrap();
    assert!(c.get_by_request(sub, "req-ttl").await.unwrap().is_some());
    assert!(c.get_by_session(sub, "s").await.unwrap().is_some());

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(c.get_by_request(sub, "req-ttl").await.unwrap(), None);
    assert_eq!(c.get_by_session(sub, "s").await.unwrap(), None);
    assert_eq!(c.get_by_user(sub, "u").await.unwrap(), None);
    if backend == CacheBackend::Redis {
        // Pointers expire too, not only the events they name.
        let mut h = h;
        let keys = riskgate::service::ingest::cache_keys(&h.sub, "req-ttl", "s", "u");
        let other = cache::user_key(&h.sub, "u2");
        let existing: i64 = redis::cmd("EXISTS")
            .arg(&keys[..])
            .arg(&other)
            .query_async(h.raw())
            .await
            .unwrap();
        assert_eq!(existing, 0);
    }
}

async fn tenants_are_isolated(backend: CacheBackend) {
    let h = Harness::start(backend).await;
    let c = &h.cache;
    let (one, two, three) = (
        h.sub.clone(),
        h.other_subscriber("b"),
        h.other_subscriber("c"),
    );
    // The same request, session and user ids under two subscribers.
    let (a, b) = (ready("req-1", "visitor-a"), ready("req-1", "visitor-b"));
    c.put_event(&one, Some("s"), Some("u"), &a).await.unwrap();
    c.put_event(&two, Some("s"), Some("u"), &b).await.unwrap();
    for (sub, expected) in [(&one, &a), (&two, &b)] {
        assert_eq!(
            c.get_by_request(sub, "req-1").await.unwrap().as_ref(),
            Some(expected)
        );
        assert_eq!(
            c.get_by_session(sub, "s").await.unwrap().as_ref(),
            Some(expected)
        );
        assert_eq!(
            c.get_by_user(sub, "u").await.unwrap().as_ref(),
            Some(expected)
        );
    }
    assert_eq!(c.get_by_request(&three, "req-1").await.unwrap(), None);
    assert_eq!(c.get_by_session(&three, "s").await.unwrap(), None);
    assert_eq!(c.get_by_user(&three, "u").await.unwrap(), None);

    // Moving one tenant's pointer leaves the other's alone.
    c.point(&two, "req-2", Some("s"), Some("u")).await.unwrap();
    assert_eq!(
        c.get_by_session(&one, "s").await.unwrap().as_ref(),
        Some(&a)
    );
    assert_eq!(c.get_by_user(&one, "u").await.unwrap().as_ref(), Some(&a));
    // A subscriber id that prefixes another's is still another subscriber.
    assert_eq!(
        c.get_by_request(&format!("{one}-"), "req-1").await.unwrap(),
        None
    );
}

// ---- Redis only: what is stored, as other clients see it ----

async fn redis_keys_are_the_documented_names_and_readable_raw() {
    let mut h = Harness::start(CacheBackend::Redis).await;
    let sub = h.sub.clone();
    let event = ready("1708102555327.NLOjmg", "visitor-raw");
    h.cache
        .put_event(
            &sub,
            Some("DEV-SESSION-XYZ"),
            Some("user@example.com"),
            &event,
        )
        .await
        .unwrap();

    // The names the ingest response promises.
    let keys = riskgate::service::ingest::cache_keys(
        &sub,
        &event.request_id,
        "DEV-SESSION-XYZ",
        "user@example.com",
    );
    assert_eq!(keys[0], format!("rg:{sub}:fp:req:1708102555327.NLOjmg"));
    let raw = h.raw();
    let json: String = redis::cmd("GET")
        .arg(&keys[0])
        .query_async(raw)
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["request_id"], "1708102555327.NLOjmg");
    assert_eq!(value["provider"], "fingerprint");
    assert_eq!(value["status"], "ready");
    assert_eq!(value["signals"]["visitor_id"], "visitor-raw");
    assert_eq!(value["signals"]["vpn"], true);
    assert_eq!(value["attempts"], 1);
    assert_eq!(serde_json::from_value::<CachedEvent>(value).unwrap(), event);
    for pointer in &keys[1..] {
        let target: String = redis::cmd("GET")
            .arg(pointer)
            .query_async(raw)
            .await
            .unwrap();
        assert_eq!(target, event.request_id, "{pointer}");
    }
    // Every key carries the cache TTL.
    for key in &keys {
        let ttl: i64 = redis::cmd("TTL").arg(key).query_async(raw).await.unwrap();
        assert!((1..=60).contains(&ttl), "{key} has TTL {ttl}");
    }
    // Nothing else was written.
    let written: Vec<String> = redis::cmd("KEYS")
        .arg(format!("rg:{sub}:*"))
        .query_async(raw)
        .await
        .unwrap();
    assert_eq!(written.len(), 3, "{written:?}");
}

async fn redis_bad_values_read_as_misses() {
    let mut h = Harness::start(CacheBackend::Redis).await;
    let sub = h.sub.clone();
    let event = ready("req-bad", "visitor");
    h.cache
        .put_event(&sub, Some("s"), Some("u"), &event)
        .await
        .unwrap();
    let key = cache::request_key(&sub, "req-bad");

    let misses = |h: &Harness| {
        let (c, sub) = (h.cache.clone(), sub.clone());
        async move {
            assert_eq!(c.get_by_request(&sub, "req-bad").await.unwrap(), None);
            assert_eq!(c.get_by_session(&sub, "s").await.unwrap(), None);
            assert_eq!(c.get_by_user(&sub, "u").await.unwrap(), None);
        }
    };

    // Not JSON.
    redis::cmd("SET")
        .arg(&key)
        .arg("not json")
        .query_async::<()>(h.raw())
        .await
        .unwrap();
    misses(&h).await;
    // JSON, but not an event.
    redis::cmd("SET")
        .arg(&key)
        .arg(r#"{"status":"weird"}"#)
        .query_async::<()>(h.raw())
        .await
        .unwrap();
    misses(&h).await;
    // Not UTF-8.
    redis::cmd("SET")
        .arg(&key)
        .arg(&[0xff_u8, 0xfe, 0x00][..])
        .query_async::<()>(h.raw())
        .await
        .unwrap();
    misses(&h).await;
    // Another Redis type under the key.
    redis::cmd("DEL")
        .arg(&key)
        .query_async::<()>(h.raw())
        .await
        .unwrap();
    redis::cmd("HSET")
        .arg(&key)
        .arg("f")
        .arg("v")
        .query_async::<()>(h.raw())
        .await
        .unwrap();
    misses(&h).await;
    // A pointer of another type too.
    let session = cache::session_key(&sub, "s");
    redis::cmd("DEL")
        .arg(&session)
        .query_async::<()>(h.raw())
        .await
        .unwrap();
    redis::cmd("RPUSH")
        .arg(&session)
        .arg("x")
        .query_async::<()>(h.raw())
        .await
        .unwrap();
    assert_eq!(h.cache.get_by_session(&sub, "s").await.unwrap(), None);

    // A good write repairs all three keys.
    h.cache
        .put_event(&sub, Some("s"), Some("u"), &event)
        .await
        .unwrap();
    assert_eq!(
        h.cache.get_by_session(&sub, "s").await.unwrap().as_ref(),
        Some(&event)
    );
    assert_eq!(
        h.cache
            .get_by_request(&sub, "req-bad")
            .await
            .unwrap()
            .as_ref(),
        Some(&event)
    );
}

// ---- backend-independent ----

fn ingest_keys_are_the_cache_keys() {
    assert_eq!(
        riskgate::service::ingest::cache_keys(
            "12",
            "1708102555327.NLOjmg",
            "DEV-SESSION-XYZ",
            "user@example.com"
        ),
        [
            "rg:12:fp:req:1708102555327.NLOjmg".to_owned(),
            "rg:12:fp:session:DEV-SESSION-XYZ".to_owned(),
            "rg:12:fp:user:user@example.com".to_owned(),
        ]
    );
    assert_eq!(cache::request_key("12", "r"), "rg:12:fp:req:r");
    assert_eq!(cache::session_key("12", "s"), "rg:12:fp:session:s");
    assert_eq!(cache::user_key("12", "u"), "rg:12:fp:user:u");
}

async fn connect_picks_the_backend_and_refuses_bad_settings() {
    let memory = cache::connect(None, TTL).await.unwrap();
    assert_eq!(memory.backend(), "memory");
    assert!(matches!(
        cache::connect(None, Duration::ZERO).await,
        Err(CacheError::Config(_))
    ));
    assert!(matches!(
        cache::connect(Some("http://127.0.0.1:6379"), TTL).await,
        Err(CacheError::Config(_))
    ));
}

async fn connect_to_a_redis_url_picks_redis() {
    let redis = cache::connect(Some(&redis_url()), TTL).await.unwrap();
    assert_eq!(redis.backend(), "redis");
}

async fn the_embedded_cache_is_bounded_and_keeps_the_newest() {
    let cache = MemoryCache::new(TTL, 100);
    for i in 0..1000 {
        cache
            .put_event("12", Some("s"), None, &ready(&format!("req-{i}"), "v"))
            .await
            .unwrap();
    }
    assert!(cache.event_count().await <= 100);
    assert_eq!(
        cache
            .get_by_session("12", "s")
            .await
            .unwrap()
            .map(|e| e.request_id),
        Some("req-999".to_owned())
    );
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        each(CacheBackend::ALL) => [
            reports_its_backend_and_answers_ping,
            put_then_get_by_request_session_and_user,
            unknown_ids_are_misses,
            every_status_round_trips,
            the_latest_request_wins_the_session_and_user_pointers,
            point_moves_only_the_pointers,
            a_dangling_pointer_is_a_miss,
            entries_expire_after_the_ttl,
            tenants_are_isolated,
        ],
        tokio.threads(2).needs(Server::Redis) => [
            redis_keys_are_the_documented_names_and_readable_raw,
            redis_bad_values_read_as_misses,
        ],
        sync => [
            ingest_keys_are_the_cache_keys,
        ],
        tokio => [
            connect_picks_the_backend_and_refuses_bad_settings,
            the_embedded_cache_is_bounded_and_keeps_the_newest,
        ],
        tokio.needs(Server::Redis) => [
            connect_to_a_redis_url_picks_redis,
        ],
    }
}
