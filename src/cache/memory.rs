//! The embedded backend: two bounded in-process caches (events, and
//! session/user pointers) with the cache TTL, keyed by the same names as Redis.

use std::time::Duration;

use async_trait::async_trait;
use moka::future::Cache;
use moka::policy::EvictionPolicy;

use super::{request_key, session_key, user_key, CacheResult, CachedEvent, SignalCache};

/// Default bound on cached events; pointers are bounded to twice as many (one
/// session and one user key per event).
pub const DEFAULT_MAX_EVENTS: u64 = 1_000_000;

pub struct MemoryCache {
    events: Cache<String, CachedEvent>,
    pointers: Cache<String, String>,
}

impl MemoryCache {
    /// A cache holding at most `max_events` events, each key for `ttl` after
    /// its last write.
    ///
    /// Eviction is least-recently-used rather than moka's default TinyLFU:
    /// TinyLFU may refuse to admit a new key into a full cache, and here the
    /// newest event (ingested a moment before the payment is scored) is the
    /// one most likely to be read.
    pub fn new(ttl: Duration, max_events: u64) -> Self {
        let max_events = max_events.max(1);
        Self {
            events: Cache::builder()
                .max_capacity(max_events)
                .time_to_live(ttl)
                .eviction_policy(EvictionPolicy::lru())
                .build(),
            pointers: Cache::builder()
                .max_capacity(max_events.saturating_mul(2))
                .time_to_live(ttl)
                .eviction_policy(EvictionPolicy::lru())
                .build(),
        }
    }

    /// How many events are cached, after pending evictions and expirations
    /// have been applied.
    pub async fn event_count(&self) -> u64 {
        self.events.run_pending_tasks().await;
        self.events.entry_count()
    }

    async fn set_pointers(
        &self,
        subscriber_id: &str,
        request_id: &str,
        session_id: Option<&str>,
        user_id: Option<&str>,
    ) {
        if let Some(session_id) = session_id {
            self.pointers
                .insert(
                    session_key(subscriber_id, session_id),
                    request_id.to_owned(),
                )
                .await;
        }
        if let Some(user_id) = user_id {
            self.pointers
                .insert(user_key(subscriber_id, user_id), request_id.to_owned())
                .await;
        }
    }

    async fn follow(&self, subscriber_id: &str, pointer_key: &str) -> Option<CachedEvent> {
        let request_id = self.pointers.get(pointer_key).await?;
        self.events
            .get(&request_key(subscriber_id, &request_id))
            .await
    }
}

#[async_trait]
impl SignalCache for MemoryCache {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> CacheResult<()> {
        Ok(())
    }

    async fn put_event(
        &self,
        subscriber_id: &str,
        session_id: Option<&str>,
        user_id: Option<&str>,
        event: &CachedEvent,
    ) -> CacheResult<()> {
        // The event first, so a reader that sees the new pointer finds it.
        self.events
            .insert(request_key(subscriber_id, &event.request_id), event.clone())
            .await;
        self.set_pointers(subscriber_id, &event.request_id, session_id, user_id)
            .await;
        Ok(())
    }

    async fn point(
        &self,
        subscriber_id: &str,
        request_id: &str,
        session_id: Option<&str>,
        user_id: Option<&str>,
    ) -> CacheResult<()> {
        self.set_pointers(subscriber_id, request_id, session_id, user_id)
            .await;
        Ok(())
    }

    async fn get_by_request(
        &self,
        subscriber_id: &str,
        request_id: &str,
    ) -> CacheResult<Option<CachedEvent>> {
        Ok(self
            .events
            .get(&request_key(subscriber_id, request_id))
            .await)
    }

    async fn get_by_session(
        &self,
        subscriber_id: &str,
        session_id: &str,
    ) -> CacheResult<Option<CachedEvent>> {
        Ok(self
            .follow(subscriber_id, &session_key(subscriber_id, session_id))
            .await)
    }

    async fn get_by_user(
        &self,
        subscriber_id: &str,
        user_id: &str,
    ) -> CacheResult<Option<CachedEvent>> {
        Ok(self
            .follow(subscriber_id, &user_key(subscriber_id, user_id))
            .await)
    }
}
