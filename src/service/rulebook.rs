//! Each subscriber's live rule set and its shadow, if one runs, compiled once
//! per version and shared by every decision that uses them.
//!
//! A change in this process (a `PUT`, a publish, a shadow started or
//! stopped) takes effect at once. Which versions act is otherwise looked up
//! again (one query for both): Which version is current is
//! - on a store that counts other processes' writes (SQLite, where the CLI is
//!   the only other writer), only after such a write: scoring reads no rule
//!   set from the file;
//! - elsewhere, at most once per [`LOOKUP_TTL`](crate::ttl_cache::LOOKUP_TTL)
//!   per subscriber, so another process's change shows within that time.
//!
//! A lookup that finds a version it has compiled (live or shadow before)
//! does not compile it again, so publishing the shadow compiles nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::decision::rules::{compile, default_rule_set, CompiledRuleSet, RuleSet};
use crate::store::{RuleSetRow, Store, StoreError};
use crate::ttl_cache::{TtlCache, LOOKUP_TTL};

const MAX_SUBSCRIBERS: usize = 100_000;

/// The compiled sets that act on a subscriber's decisions.
pub struct ActiveRules {
    /// The set that decides.
    pub live: Arc<CompiledRuleSet>,
    /// The set evaluated beside it, whose outcome is stored and never acts.
    pub shadow: Option<Arc<CompiledRuleSet>>,
}

pub struct RuleBook {
    current: TtlCache<Arc<ActiveRules>>,
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

    /// The subscriber's live compiled rule set (the default pack, version
    /// 0, until one is published).
    pub async fn current(
        &self,
        store: &dyn Store,
        subscriber_id: &str,
    ) -> Result<Arc<CompiledRuleSet>, StoreError> {
        Ok(self.active(store, subscriber_id).await?.live.clone())
    }

    /// The subscriber's live compiled rule set and its shadow, if any.
    pub async fn active(
        &self,
        store: &dyn Store,
        subscriber_id: &str,
    ) -> Result<Arc<ActiveRules>, StoreError> {
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
        let rows = store.active_rule_sets(subscriber_id).await?;
        let previous = self.current.get_stale(subscriber_id);
        let compiled = |row: &RuleSetRow| -> Result<Arc<CompiledRuleSet>, StoreError> {
            let known = previous.as_ref().and_then(|p| {
                std::iter::once(&p.live)
                    .chain(&p.shadow)
                    .find(|set| set.version == row.version)
            });
            if let Some(set) = known {
                return Ok(set.clone());
            }
            let rules: RuleSet = serde_json::from_str(&row.body)
                .map_err(|e| StoreError::Corrupt(format!("rule set: {e}")))?;
            // Every stored version compiled when it was stored.
            Ok(Arc::new(
                compile(&rules, row.version).map_err(StoreError::Corrupt)?,
            ))
        };
        let set = Arc::new(ActiveRules {
            live: match &rows.live {
                Some(row) => compiled(row)?,
                None => self.default.clone(),
            },
            shadow: rows.shadow.as_ref().map(compiled).transpose()?,
        });
        self.current.put(subscriber_id, set.clone());
        if self.epoch.load(Ordering::Acquire) != epoch {
            // Changed while it was read: whatever was read may be the old one.
            self.current.remove_where(|id, _| id == subscriber_id);
        }
        Ok(set)
    }

    /// Makes the next decision of the subscriber read the stored versions.
    pub fn invalidate(&self, subscriber_id: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.current.remove_where(|id, _| id == subscriber_id);
    }
}
