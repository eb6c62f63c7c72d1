//! Each subscriber's rule set, compiled once per version and shared by every
//! decision that uses it.
//!
//! A `PUT` in this process takes effect at once. Which version is current is
//! otherwise looked up again:
//! - on a store that counts other processes' writes (SQLite, where the CLI is
//!   the only other writer), only after such a write: scoring reads no rule
//!   set from the file;
//! - elsewhere, at most once per [`LOOKUP_TTL`](crate::ttl_cache::LOOKUP_TTL)
//!   per subscriber, so another process's change shows within that time.
//!
//! Compiled sets are kept per (subscriber, version), so a lookup that finds
//! the same version never compiles again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::decision::rules::{compile, default_rule_set, CompiledRuleSet, RuleSet};
use crate::store::{Store, StoreError};
use crate::ttl_cache::{TtlCache, LOOKUP_TTL};

const MAX_SUBSCRIBERS: usize = 100_000;

pub struct RuleBook {
    current: TtlCache<Arc<CompiledRuleSet>>,
    default: Arc<CompiledRuleSet>,
    /// The store's count of foreign writes when `current` was last known
    /// to be exact.
    foreign_writes: AtomicU64,
    /// Counts invalidations, so a lookup that raced one does not keep what
    /// it read before the change.
    epoch: AtomicU64,
}

impl RuleBook {
    /// Fails when the embedded default pack does not compile.
    pub fn new() -> Result<Self, String> {
        let pack = default_rule_set()?;
        let default = compile(pack, 0).map_err(|e| format!("default rule pack: {e}"))?;
        Ok(Self {
            current: TtlCache::new(LOOKUP_TTL, MAX_SUBSCRIBERS),
            default: Arc::new(default),
            foreign_writes: AtomicU64::new(u64::MAX),
            epoch: AtomicU64::new(0),
        })
    }

    /// The subscriber's current compiled rule set (the default pack, version
    /// 0, until one is stored).
    pub async fn current(
        &self,
        store: &dyn Store,
        subscriber_id: &str,
    ) -> Result<Arc<CompiledRuleSet>, StoreError> {
        let cached = match store.foreign_writes() {
            Some(count) => {
                if self.foreign_writes.swap(count, Ordering::AcqRel) != count {
                    self.epoch.fetch_add(1, Ordering::AcqRel);
                    self.current.remove_where(|_, _| true);
                }
                self.current.get_stale(subscriber_id)
            }
            None => self.current.get(subscriber_id),
        };
        if let Some(set) = cached {
            return Ok(set);
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let set = match store.current_rule_set(subscriber_id).await? {
            None => self.default.clone(),
            Some(row) => {
                let previous = self.current.get_stale(subscriber_id);
                match previous {
                    Some(set) if set.version == row.version => set,
                    _ => {
                        let rules: RuleSet = serde_json::from_str(&row.body)
                            .map_err(|e| StoreError::Corrupt(format!("rule set: {e}")))?;
                        // Every stored version compiled when it was stored.
                        Arc::new(compile(&rules, row.version).map_err(StoreError::Corrupt)?)
                    }
                }
            }
        };
        self.current.put(subscriber_id, set.clone());
        if self.epoch.load(Ordering::Acquire) != epoch {
            // Changed while it was read: whatever was read may be the old one.
            self.current.remove_where(|id, _| id == subscriber_id);
        }
        Ok(set)
    }

    /// Makes the next decision of the subscriber read the stored version.
    pub fn invalidate(&self, subscriber_id: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.current.remove_where(|id, _| id == subscriber_id);
    }
}
