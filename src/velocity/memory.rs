//! The embedded backend: fine-bucketed windows per key, in process.
//!
//! Each dimension key keeps two tiers of buckets (count, amount sum): 10-second
//! buckets for the last 5 minutes, 1-minute buckets for the last 24 hours. A
//! bucket counts in a window when it overlaps `(now - window, now]` and starts
//! at or before `now`, so counts are never low and at most one bucket width
//! high: an event up to 10 s older than 5 minutes may still count in the 5-min
//! window, up to 60 s older than 1 h or 24 h in those. Amount sums are exact
//! `i64` (saturating).
//!
//! Memory is bounded: at most `max_keys` keys (LRU eviction, moka), each idle
//! key dropped after 25 h, and per key at most 31 fine + 1441 coarse buckets
//! and [`MAX_DISTINCT`] distinct members (the least recently seen go first).
//! The idempotency marks (one per event id, 25 h) are bounded to `4 × max_keys`;
//! a mark evicted early lets a replay count twice.
//!
//! The counters do NOT survive a restart in this version: they start empty.
//! Rebuilding them from stored decisions comes with the scoring endpoint.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use moka::future::Cache;
use moka::policy::EvictionPolicy;

use super::{
    check_event, dimension_key, distinct_key, seen_key, Dimension, VelocityError, VelocityEvent,
    VelocitySnapshot, VelocityStore, WindowCounts, DISTINCT, RETENTION_MS, WINDOW_1H_MS,
    WINDOW_24H_MS, WINDOW_5M_MS,
};

/// Default bound on keys (dimension and distinct-set keys together).
pub const DEFAULT_MAX_KEYS: u64 = 200_000;
/// Bound on members per distinct set (cards per device and so on).
pub const MAX_DISTINCT: usize = 1_000;

const FINE_MS: i64 = 10_000;
const COARSE_MS: i64 = 60_000;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    count: u64,
    amount: i64,
}

/// The state of one key: buckets for a dimension key, members for a distinct
/// set (only one of the two is used per key).
#[derive(Debug, Default)]
struct KeyState {
    fine: BTreeMap<i64, Bucket>,
    coarse: BTreeMap<i64, Bucket>,
    members: HashMap<String, i64>,
}

type Shared = Arc<Mutex<KeyState>>;

fn add(tier: &mut BTreeMap<i64, Bucket>, width: i64, now_ms: i64, amount: i64) {
    let bucket = tier.entry(now_ms.div_euclid(width)).or_default();
    bucket.count += 1;
    bucket.amount = bucket.amount.saturating_add(amount);
}

/// Drops buckets wholly older than `keep` before `now_ms`.
fn prune(tier: &mut BTreeMap<i64, Bucket>, width: i64, now_ms: i64, keep: i64) {
    // Bucket b ends at (b + 1) * width; it is useless once that is <= now - keep.
    let first_useful = (now_ms - keep).div_euclid(width);
    *tier = tier.split_off(&first_useful);
}

fn sum(tier: &BTreeMap<i64, Bucket>, width: i64, now_ms: i64, window: i64) -> (u64, i64) {
    // Buckets overlapping (now - window, now]: end > now - window, start <= now.
    let first = (now_ms - window).div_euclid(width);
    let last = now_ms.div_euclid(width);
    tier.range(first..=last).fold((0, 0), |(c, a), (_, b)| {
        (c + b.count, a.saturating_add(b.amount))
    })
}

impl KeyState {
    fn counts(&self, now_ms: i64) -> WindowCounts {
        let (count_5m, amount_5m) = sum(&self.fine, FINE_MS, now_ms, WINDOW_5M_MS);
        let (count_1h, amount_1h) = sum(&self.coarse, COARSE_MS, now_ms, WINDOW_1H_MS);
        let (count_24h, amount_24h) = sum(&self.coarse, COARSE_MS, now_ms, WINDOW_24H_MS);
        WindowCounts {
            count_5m,
            amount_5m,
            count_1h,
            amount_1h,
            count_24h,
            amount_24h,
        }
    }

    fn distinct(&self, now_ms: i64) -> u64 {
        let since = now_ms - WINDOW_24H_MS;
        self.members.values().filter(|&&t| t > since).count() as u64
    }

    fn see(&mut self, member: &str, now_ms: i64) {
        let since = now_ms - WINDOW_24H_MS;
        self.members.retain(|_, t| *t > since);
        match self.members.get_mut(member) {
            Some(t) => *t = (*t).max(now_ms),
            None => {
                if self.members.len() >= MAX_DISTINCT {
                    if let Some(oldest) = self
                        .members
                        .iter()
                        .min_by_key(|(_, t)| **t)
                        .map(|(m, _)| m.clone())
                    {
                        self.members.remove(&oldest);
                    }
                }
                self.members.insert(member.to_owned(), now_ms);
            }
        }
    }
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, KeyState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct MemoryVelocity {
    keys: Cache<String, Shared>,
    seen: Cache<String, ()>,
}

impl MemoryVelocity {
    /// Adds the event to its dimensions' windows and distinct sets.
    async fn count(&self, subscriber_id: &str, event: &VelocityEvent, now_ms: i64) {
        for dimension in Dimension::ALL {
            let Some(value) = dimension.value(event) else {
                continue;
            };
            let state = self
                .state(dimension_key(subscriber_id, dimension, value))
                .await;
            let mut s = lock(&state);
            add(&mut s.fine, FINE_MS, now_ms, event.amount_minor);
            add(&mut s.coarse, COARSE_MS, now_ms, event.amount_minor);
            prune(&mut s.fine, FINE_MS, now_ms, WINDOW_5M_MS);
            prune(&mut s.coarse, COARSE_MS, now_ms, WINDOW_24H_MS);
        }
        for (set, owner, member) in DISTINCT {
            let (Some(owner), Some(member)) = (owner.value(event), member.value(event)) else {
                continue;
            };
            let state = self.state(distinct_key(subscriber_id, set, owner)).await;
            lock(&state).see(member, now_ms);
        }
    }

    /// A store holding at most `max_keys` keys.
    pub fn new(max_keys: u64) -> Self {
        let max_keys = max_keys.max(1);
        let retention = Duration::from_millis(RETENTION_MS.unsigned_abs());
        Self {
            keys: Cache::builder()
                .max_capacity(max_keys)
                .time_to_idle(retention)
                .eviction_policy(EvictionPolicy::lru())
                .build(),
            seen: Cache::builder()
                .max_capacity(max_keys.saturating_mul(4))
                .time_to_live(retention)
                .eviction_policy(EvictionPolicy::lru())
                .build(),
        }
    }

    /// How many keys are held, after pending evictions have been applied.
    pub async fn key_count(&self) -> u64 {
        self.keys.run_pending_tasks().await;
        self.keys.entry_count()
    }

    async fn state(&self, key: String) -> Shared {
        self.keys
            .get_with(key, async { Arc::new(Mutex::new(KeyState::default())) })
            .await
    }

    async fn snapshot(
        &self,
        subscriber_id: &str,
        event: &VelocityEvent,
        now_ms: i64,
    ) -> VelocitySnapshot {
        let mut snapshot = VelocitySnapshot::default();
        for dimension in Dimension::ALL {
            let Some(value) = dimension.value(event) else {
                continue;
            };
            let key = dimension_key(subscriber_id, dimension, value);
            let counts = match self.keys.get(&key).await {
                Some(state) => lock(&state).counts(now_ms),
                None => WindowCounts::default(),
            };
            snapshot.set_dimension(dimension, counts);
        }
        for (set, owner, _) in DISTINCT {
            let Some(owner) = owner.value(event) else {
                continue;
            };
            let key = distinct_key(subscriber_id, set, owner);
            let count = match self.keys.get(&key).await {
                Some(state) => lock(&state).distinct(now_ms),
                None => 0,
            };
            snapshot.set_distinct(set, count);
        }
        snapshot
    }
}

#[async_trait]
impl VelocityStore for MemoryVelocity {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn record_and_read(
        &self,
        subscriber_id: &str,
        event: &VelocityEvent,
        now_ms: i64,
    ) -> Result<VelocitySnapshot, VelocityError> {
        self.record(subscriber_id, event, now_ms).await?;
        Ok(self.snapshot(subscriber_id, event, now_ms).await)
    }

    async fn record(
        &self,
        subscriber_id: &str,
        event: &VelocityEvent,
        now_ms: i64,
    ) -> Result<(), VelocityError> {
        check_event(event)?;
        // The first caller counts the event inside the entry's initialiser;
        // moka runs it once and makes concurrent callers with the same event
        // id wait for it, so a repeat never answers before its event counts.
        self.seen
            .entry(seen_key(subscriber_id, &event.event_id))
            .or_insert_with(self.count(subscriber_id, event, now_ms))
            .await;
        Ok(())
    }

    async fn read(
        &self,
        subscriber_id: &str,
        event: &VelocityEvent,
        now_ms: i64,
    ) -> Result<VelocitySnapshot, VelocityError> {
        Ok(self.snapshot(subscriber_id, event, now_ms).await)
    }
}
