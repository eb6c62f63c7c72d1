//! The velocity-counter contract, run against the embedded backend and Redis
//! (`RISKGATE_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`).
//!
//! Every test uses subscriber ids of its own, so runs never collide on a shared
//! Redis, and deletes its keys when it ends (even when it fails).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::common::trials::Server;
use crate::common::{raw_redis, redis_url, CacheBackend};
use riskgate::secrets::random_id;
use riskgate::velocity::{
    self, MemoryVelocity, VelocityError, VelocityEvent, VelocitySnapshot, VelocityStore,
    WindowCounts,
};

/// A fixed "now" far from the epoch; tests move time explicitly from here.
const T0: i64 = 1_763_900_000_000;
const SEC: i64 = 1_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;

/// One test's store, with a fresh subscriber id (`sub`).
struct Harness {
    backend: CacheBackend,
    store: Arc<dyn VelocityStore>,
    sub: String,
    raw: Option<redis::aio::MultiplexedConnection>,
}

impl Harness {
    async fn start(backend: CacheBackend) -> Self {
        let sub = format!("t{}", random_id(12));
        match backend {
            CacheBackend::Memory => Self {
                backend,
                store: velocity::connect(None).await.unwrap(),
                sub,
                raw: None,
            },
            CacheBackend::Redis => {
                let raw = raw_redis().await;
                let store = velocity::connect(Some(&redis_url())).await.unwrap();
                Self {
                    backend,
                    store,
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

    async fn record(&self, event: &VelocityEvent, now_ms: i64) -> VelocitySnapshot {
        self.store
            .record_and_read(&self.sub, event, now_ms)
            .await
            .unwrap()
    }

    async fn read(&self, event: &VelocityEvent, now_ms: i64) -> VelocitySnapshot {
        self.store.read(&self.sub, event, now_ms).await.unwrap()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if self.backend != CacheBackend::Redis {
            return;
        }
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

fn event(id: &str, amount_minor: i64) -> VelocityEvent {
    VelocityEvent {
        user: Some("user@example.com".to_owned()),
        card: Some("4242424242".to_owned()),
        device: Some("visitor-a".to_owned()),
        ip: Some("203.0.113.7".to_owned()),
        amount_minor,
        event_id: id.to_owned(),
    }
}

fn counts(c5: u64, a5: i64, c1: u64, a1: i64, c24: u64, a24: i64) -> WindowCounts {
    WindowCounts {
        count_5m: c5,
        amount_5m: a5,
        count_1h: c1,
        amount_1h: a1,
        count_24h: c24,
        amount_24h: a24,
    }
}

async fn reports_its_backend(backend: CacheBackend) {
    let h = Harness::start(backend).await;
    let expected = match backend {
        CacheBackend::Memory => "memory",
        CacheBackend::Redis => "redis",
    };
    assert_eq!(h.store.backend(), expected);
}

async fn record_and_read_includes_the_event(backend: CacheBackend) {
    let h = Harness::start(backend).await;
    let first = h.record(&event("e1", 1_000), T0).await;
    let one = Some(counts(1, 1_000, 1, 1_000, 1, 1_000));
    assert_eq!(first.user, one);
    assert_eq!(first.card, one);
    assert_eq!(first.device, one);
    assert_eq!(first.ip, one);
    assert_eq!(first.distinct_cards_per_device, Some(1));
    assert_eq!(first.distinct_cards_per_user, Some(1));
    assert_eq!(first.distinct_devices_per_user, Some(1));

    let second = h.record(&event("e2", 250), T0 + SEC).await;
    let two = Some(counts(2, 1_250, 2, 1_250, 2, 1_250));
    assert_eq!(second.user, two);
    assert_eq!(second.ip, two);
    // Same card and device: still one distinct.
    assert_eq!(second.distinct_cards_per_device, Some(1));
}

async fn windows_slide_with_time(backend: CacheBackend) {
    let h = Harness::start(backend).await;
    // 23 h old, 6 min old, 1 min old, now.
    h.record(&event("old-23h", 1), T0 - 23 * HOUR).await;
    h.record(&event("old-6m", 10), T0 - 6 * MIN).await;
    h.record(&event("old-1m", 100), T0 - MIN).await;
    let now = h.record(&event("now", 1_000), T0).await;
    assert_eq!(now.card, Some(counts(2, 1_100, 3, 1_110, 4, 1_111)));

    // Two hours later: only the 24-h window still holds the three recent ones
    // (the 23-h-old one is now 25 h old).
    let later = h.read(&event("probe", 0), T0 + 2 * HOUR).await;
    assert_eq!(later.user, Some(counts(0, 0, 0, 0, 3, 1_110)));
    // A day and a minute after: nothing.
    let gone = h.read(&event("probe", 0), T0 + 24 * HOUR + 2 * MIN).await;
    assert_eq!(gone.user, Some(WindowCounts::default()));
    assert_eq!(gone.distinct_cards_per_user, Some(0));
    // Reading a moment in the past does not count events after that time.
    let before = h.read(&event("probe", 0), T0 - 30 * SEC).await;
    assert_eq!(before.user, Some(counts(1, 100, 2, 110, 3, 111)));
}

async fn every_dimension_counts_on_its_own(backend: CacheBackend) {
    let h = Harness::start(backend).await;
    h.record(&event("a", 500), T0).await;
    // Same user, another card, device and IP.
    let mut other = event("b", 700);
    other.card = Some("5555554444".to_owned());
    other.device = Some("visitor-b".to_owned());
    other.ip = Some("198.51.100.1".to_owned());
    let snap = h.record(&other, T0 + SEC).await;
    assert_eq!(snap.user, Some(counts(2, 1_200, 2, 1_200, 2, 1_200)));
    let one = Some(counts(1, 700, 1, 700, 1, 700));
    assert_eq!(snap.card, one);
    assert_eq!(snap.device, one);
    assert_eq!(snap.ip, one);
}

async fn distinct_counts_over_24_hours(backend: CacheBackend) {
    let h = Harness::start(backend).await;
    let ev = |id: &str, user: &str, card: &str, device: &str| VelocityEvent {
        user: Some(user.to_owned()),
        card: Some(card.to_owned()),
        device: Some(device.to_owned()),
        ip: None,
        amount_minor: 100,
        event_id: id.to_owned(),
    };
    // Card testing on one device: three cards, two users.
    h.record(&ev("1", "u1", "c1", "d1"), T0 - 20 * HOUR).await;
    h.record(&ev("2", "u1", "c2", "d1"), T0 - MIN).await;
    h.record(&ev("3", "u2", "c3", "d1"), T0 - SEC).await;
    // u1 on a second device, with a card seen before.
    let snap = h.record(&ev("4", "u1", "c1", "d2"), T0).await;
    assert_eq!(snap.distinct_cards_per_device, Some(1)); // d2: c1
    assert_eq!(snap.distinct_cards_per_user, Some(2)); // u1: c1, c2
    assert_eq!(snap.distinct_devices_per_user, Some(2)); // u1: d1, d2

    let d1 = h.read(&ev("p", "u2", "c9", "d1"), T0).await;
    assert_eq!(d1.distinct_cards_per_device, Some(3));
    assert_eq!(d1.distinct_cards_per_user, Some(1));
    assert_eq!(d1.distinct_devices_per_user, Some(1));

    // 5 h later c1 on d1 (last seen 25 h before) has left the window.
    let d1 = h.read(&ev("p", "u2", "c9", "d1"), T0 + 5 * HOUR).await;
    assert_eq!(d1.distinct_cards_per_device, Some(2));
    // u1 saw c1 again at T0 (on d2), so it still counts for u1.
    let u1 = h.read(&ev("p", "u1", "c9", "d9"), T0 + 5 * HOUR).await;
    assert_eq!(u1.distinct_cards_per_user, Some(2));
    assert_eq!(u1.distinct_devices_per_user, Some(2));
}

async fn the_same_event_id_counts_once(backend: CacheBackend) {
    let h = Harness::start(backend).await;
    let first = h.record(&event("dup", 900), T0).await;
    // A retry of the same decision, even a little later: not counted again,
    // and the answer still includes it.
    let again = h.record(&event("dup", 900), T0 + SEC).await;
    assert_eq!(first.user, Some(counts(1, 900, 1, 900, 1, 900)));
    assert_eq!(again, first);
    let mut moved = event("dup", 900);
    moved.card = Some("other-card".to_owned());
    let moved = h.record(&moved, T0 + 2 * SEC).await;
    assert_eq!(moved.card, Some(WindowCounts::default()));
    assert_eq!(moved.distinct_cards_per_user, Some(1));
    let next = h.record(&event("next", 100), T0 + 3 * SEC).await;
    assert_eq!(next.user, Some(counts(2, 1_000, 2, 1_000, 2, 1_000)));
}

async fn concurrent_replays_count_once(backend: CacheBackend) {
    let h = Harness::start(backend).await;
    // Eight concurrent retries of one decision and eight distinct decisions.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (store, sub) = (h.store.clone(), h.sub.clone());
        let id = if i % 2 == 0 {
            "same".to_owned()
        } else {
            format!("other-{i}")
        };
        tasks.push(tokio::spawn(async move {
            store
                .record_and_read(&sub, &event(&id, 10), T0)
                .await
                .unwrap()
        }));
    }
    for task in tasks {
        let snap = task.await.unwrap();
        // Every answer includes its own event.
        assert!(snap.user.unwrap().count_5m >= 1);
    }
    let total = h.read(&event("probe", 0), T0).await;
    assert_eq!(total.user, Some(counts(9, 90, 9, 90, 9, 90)));
}

async fn read_does_not_record(backend: CacheBackend) {
    let h = Harness::start(backend).await;
    let empty = h.read(&event("r", 500), T0).await;
    let zero = Some(WindowCounts::default());
    assert_eq!(empty.user, zero);
    assert_eq!(empty.card, zero);
    assert_eq!(empty.distinct_cards_per_device, Some(0));
    assert_eq!(empty.distinct_devices_per_user, Some(0));
    assert_eq!(h.read(&event("r", 500), T0).await, empty);
    // Reading first does not mark the event id as counted.
    let recorded = h.record(&event("r", 500), T0).await;
    assert_eq!(recorded.user, Some(counts(1, 500, 1, 500, 1, 500)));
    assert_eq!(h.read(&event("r", 500), T0).await, recorded);
}

async fn tenants_are_isolated(backend: CacheBackend) {
    let h = Harness::start(backend).await;
    let (one, two, three) = (
        h.sub.clone(),
        h.other_subscriber("b"),
        h.other_subscriber("c"),
    );
    let s = &h.store;
    // The same event id and identifiers under two subscribers: each counts it.
    let a = s.record_and_read(&one, &event("e", 100), T0).await.unwrap();
    let b = s.record_and_read(&two, &event("e", 300), T0).await.unwrap();
    assert_eq!(a.user, Some(counts(1, 100, 1, 100, 1, 100)));
    assert_eq!(b.user, Some(counts(1, 300, 1, 300, 1, 300)));
    s.record_and_read(&two, &event("f", 300), T0).await.unwrap();
    let a = s.read(&one, &event("x", 0), T0).await.unwrap();
    assert_eq!(a.user, Some(counts(1, 100, 1, 100, 1, 100)));
    let c = s.read(&three, &event("x", 0), T0).await.unwrap();
    assert_eq!(c.user, Some(WindowCounts::default()));
    assert_eq!(c.distinct_cards_per_device, Some(0));
    // A subscriber id that prefixes another's is still another subscriber.
    let prefix = s
        .read(&format!("{one}-"), &event("x", 0), T0)
        .await
        .unwrap();
    assert_eq!(prefix.user, Some(WindowCounts::default()));
}

async fn absent_dimensions_have_no_counts(backend: CacheBackend) {
    let h = Harness::start(backend).await;
    let ip_only = VelocityEvent {
        ip: Some("203.0.113.9".to_owned()),
        amount_minor: 42,
        event_id: "ip-only".to_owned(),
        ..VelocityEvent::default()
    };
    let snap = h.record(&ip_only, T0).await;
    assert_eq!(snap.ip, Some(counts(1, 42, 1, 42, 1, 42)));
    assert_eq!(snap.user, None);
    assert_eq!(snap.card, None);
    assert_eq!(snap.device, None);
    assert_eq!(snap.distinct_cards_per_device, None);
    assert_eq!(snap.distinct_cards_per_user, None);
    assert_eq!(snap.distinct_devices_per_user, None);

    // An empty string is absent too; a device without a card has 0 cards.
    let device_only = VelocityEvent {
        device: Some("visitor-z".to_owned()),
        card: Some(String::new()),
        amount_minor: 1,
        event_id: "device-only".to_owned(),
        ..VelocityEvent::default()
    };
    let snap = h.record(&device_only, T0).await;
    assert_eq!(snap.card, None);
    assert_eq!(snap.device, Some(counts(1, 1, 1, 1, 1, 1)));
    assert_eq!(snap.distinct_cards_per_device, Some(0));
    assert_eq!(snap.distinct_cards_per_user, None);

    // Nothing at all: an empty snapshot.
    let nothing = VelocityEvent {
        event_id: "nothing".to_owned(),
        ..VelocityEvent::default()
    };
    assert_eq!(h.record(&nothing, T0).await, VelocitySnapshot::default());
}

async fn an_empty_event_id_is_refused(backend: CacheBackend) {
    let h = Harness::start(backend).await;
    let result = h.store.record_and_read(&h.sub, &event("", 1), T0).await;
    assert!(matches!(result, Err(VelocityError::Invalid(_))));
}

// ---- Redis only: what is stored ----

async fn redis_keys_are_namespaced_and_expire() {
    let mut h = Harness::start(CacheBackend::Redis).await;
    h.record(&event("e1", 1_000), T0).await;
    let sub = h.sub.clone();
    let raw = h.raw.as_mut().unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("rg:{sub}:*"))
        .query_async(raw)
        .await
        .unwrap();
    keys.sort();
    let mut expected = vec![
        format!("rg:{sub}:vel:card:4242424242"),
        format!("rg:{sub}:vel:device:visitor-a"),
        format!("rg:{sub}:vel:device_cards:visitor-a"),
        format!("rg:{sub}:vel:ip:203.0.113.7"),
        format!("rg:{sub}:vel:seen:e1"),
        format!("rg:{sub}:vel:user:user@example.com"),
        format!("rg:{sub}:vel:user_cards:user@example.com"),
        format!("rg:{sub}:vel:user_devices:user@example.com"),
    ];
    expected.sort();
    assert_eq!(keys, expected);
    for key in &keys {
        let ttl: i64 = redis::cmd("TTL").arg(key).query_async(raw).await.unwrap();
        assert!(
            (24 * 3600..=25 * 3600).contains(&ttl),
            "{key} has TTL {ttl}"
        );
    }
    let members: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("rg:{sub}:vel:user:user@example.com"))
        .arg(0)
        .arg(-1)
        .query_async(raw)
        .await
        .unwrap();
    // The running total (zero-padded), the amount, the event id.
    assert_eq!(members, ["0000000000001000:1000:e1"]);
}

/// Sums stay exact over a key holding thousands of events (they come from
/// running totals, not a scan), including events sharing a millisecond and
/// windows read at any moment.
async fn redis_sums_are_exact_over_a_hot_key() {
    let h = Harness::start(CacheBackend::Redis).await;
    let mut events = Vec::new();
    let mut t = T0 - 25 * HOUR;
    for i in 0..3_000_i64 {
        // Irregular gaps, some zero (same millisecond), over about 26 hours.
        t += (i * 7919) % 61_000;
        let amount = (i * 104_729) % 100_000;
        h.record(&event(&format!("hot-{i}"), amount), t).await;
        events.push((t, amount));
    }
    let last = t;
    for now in [last, last - 3 * MIN, last - 2 * HOUR, last - 20 * HOUR] {
        // Events more than 24 h older than the latest write are trimmed.
        let kept = |at: i64| at > last - 24 * HOUR;
        let expect = |w: i64| {
            let inside = events
                .iter()
                .filter(|(at, _)| kept(*at) && *at > now - w && *at <= now);
            (
                inside.clone().count() as u64,
                inside.map(|(_, a)| a).sum::<i64>(),
            )
        };
        let (c5, a5) = expect(5 * MIN);
        let (c1, a1) = expect(HOUR);
        let (c24, a24) = expect(24 * HOUR);
        let read = h.read(&event("probe", 0), now).await;
        assert_eq!(
            read.card,
            Some(counts(c5, a5, c1, a1, c24, a24)),
            "at {now}"
        );
    }
}

// ---- backend-independent ----

async fn connect_picks_the_backend_and_refuses_bad_urls() {
    assert_eq!(velocity::connect(None).await.unwrap().backend(), "memory");
    assert!(matches!(
        velocity::connect(Some("http://127.0.0.1:6379")).await,
        Err(VelocityError::Config(_))
    ));
}

async fn the_embedded_store_is_bounded() {
    let store = MemoryVelocity::new(100);
    for i in 0..1_000 {
        let ev = VelocityEvent {
            ip: Some(format!("10.0.{}.{}", i / 256, i % 256)),
            amount_minor: 1,
            event_id: format!("e{i}"),
            ..VelocityEvent::default()
        };
        store.record_and_read("12", &ev, T0 + i).await.unwrap();
    }
    assert!(store.key_count().await <= 100);
}

async fn the_embedded_buckets_err_by_at_most_one_bucket() {
    let store = MemoryVelocity::new(100);
    let ev = |id: &str| VelocityEvent {
        user: Some("u".to_owned()),
        amount_minor: 1,
        event_id: id.to_owned(),
        ..VelocityEvent::default()
    };
    // 5 min + 15 s old: outside the 5-min window even with 10-s buckets.
    store
        .record_and_read("12", &ev("a"), T0 - 5 * MIN - 15 * SEC)
        .await
        .unwrap();
    // 61 min + 5 s old: outside the hour even with 1-min buckets.
    store
        .record_and_read("12", &ev("b"), T0 - HOUR - MIN - 5 * SEC)
        .await
        .unwrap();
    let snap = store.read("12", &ev("p"), T0).await.unwrap();
    let user = snap.user.unwrap();
    assert_eq!((user.count_5m, user.count_1h, user.count_24h), (0, 1, 2));
}

pub fn trials() -> Vec<libtest_mimic::Trial> {
    crate::common::trials! {
        each(CacheBackend::ALL) => [
            reports_its_backend,
            record_and_read_includes_the_event,
            windows_slide_with_time,
            every_dimension_counts_on_its_own,
            distinct_counts_over_24_hours,
            the_same_event_id_counts_once,
            read_does_not_record,
            concurrent_replays_count_once,
            tenants_are_isolated,
            absent_dimensions_have_no_counts,
            an_empty_event_id_is_refused,
        ],
        tokio.threads(2).needs(Server::Redis) => [
            redis_keys_are_namespaced_and_expire,
            redis_sums_are_exact_over_a_hot_key,
        ],
        tokio => [
            connect_picks_the_backend_and_refuses_bad_urls,
            the_embedded_store_is_bounded,
            the_embedded_buckets_err_by_at_most_one_bucket,
        ],
    }
}
