//! The device-signal cache: the normalized result of one provider fetch,
//! readable by request id, and by the latest request of a session or user.
//!
//! Three keys per ingest, the same names on both backends (they are promised to
//! subscribers as `redis_keys` in the `POST /fingerprint/ingest` response):
//!
//! | key | value |
//! |---|---|
//! | `rg:{subscriber}:fp:req:{request_id}` | the [`CachedEvent`] as JSON |
//! | `rg:{subscriber}:fp:session:{session_id}` | the session's latest request id |
//! | `rg:{subscriber}:fp:user:{user_id}` | the user's latest request id |
//!
//! Every key lives for the cache TTL from its last write. A session or user key
//! whose request key is gone (expired, evicted, not yet written) reads as a miss.
//!
//! Two backends implement [`SignalCache`]: [`MemoryCache`] (embedded, bounded,
//! one process) and [`RedisCache`] (shared by any number of processes). One
//! contract suite (`tests/it/signal_cache.rs`) runs against both.

mod memory;
mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::decision::{DeviceEvidence, DeviceSignals, DeviceSource};

pub use self::memory::{MemoryCache, DEFAULT_MAX_EVENTS};
pub use self::redis::RedisCache;

/// `rg:{subscriber_id}:fp:req:{request_id}`: the cached event.
pub fn request_key(subscriber_id: &str, request_id: &str) -> String {
    format!("rg:{subscriber_id}:fp:req:{request_id}")
}

/// `rg:{subscriber_id}:fp:session:{session_id}`: the session's latest request id.
pub fn session_key(subscriber_id: &str, session_id: &str) -> String {
    format!("rg:{subscriber_id}:fp:session:{session_id}")
}

/// `rg:{subscriber_id}:fp:user:{user_id}`: the user's latest request id.
pub fn user_key(subscriber_id: &str, user_id: &str) -> String {
    format!("rg:{subscriber_id}:fp:user:{user_id}")
}

/// Where a provider fetch stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// Accepted; the provider has not answered yet.
    Pending,
    /// The provider answered; `signals` holds the normalized result.
    Ready,
    /// The fetch failed for good (for example the provider answered 403/404);
    /// `error` says why.
    Failed,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }
}

impl CachedEvent {
    /// The event as the decision core reads it, found by `source`.
    pub fn evidence(&self, source: DeviceSource) -> DeviceEvidence<'_> {
        DeviceEvidence {
            request_id: &self.request_id,
            provider: &self.provider,
            status: self.status.as_str(),
            signals: self.signals.as_ref(),
            source,
        }
    }
}

/// One provider event as cached under its request key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CachedEvent {
    #[schema(example = "1708102555327.NLOjmg")]
    pub request_id: String,
    /// `fingerprint`, `stytch` or `fingerprintiq`.
    #[schema(example = "fingerprint")]
    pub provider: String,
    pub status: EventStatus,
    /// The normalized signals; present when `status` is `ready`.
    #[serde(default)]
    pub signals: Option<DeviceSignals>,
    /// Why the fetch failed; present when `status` is `failed`.
    #[serde(default)]
    pub error: Option<String>,
    /// Unix milliseconds of the provider's answer.
    #[serde(default)]
    pub fetched_at: Option<i64>,
    /// Provider calls made so far for this event.
    #[serde(default)]
    pub attempts: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache server could not be reached (refused, dropped, timed out).
    #[error("cache unavailable")]
    Unavailable(#[source] ::redis::RedisError),
    /// The cache server answered with an error.
    #[error("cache error")]
    Redis(#[source] ::redis::RedisError),
    /// An event could not be encoded as JSON.
    #[error("cache encoding failed")]
    Encode(#[from] serde_json::Error),
    /// A bad cache URL or setting.
    #[error("invalid cache configuration: {0}")]
    Config(String),
}

/// Whether a Redis error means the server could not be reached (worth a retry
/// or a 503) rather than an answer that was an error.
pub fn redis_unreachable(err: &::redis::RedisError) -> bool {
    crate::redis_link::is_unreachable(err)
}

impl From<::redis::RedisError> for CacheError {
    fn from(err: ::redis::RedisError) -> Self {
        if redis_unreachable(&err) {
            Self::Unavailable(err)
        } else {
            Self::Redis(err)
        }
    }
}

pub type CacheResult<T> = Result<T, CacheError>;

/// The device-signal cache contract. Reads answer `Ok(None)` for a miss,
/// including a dangling session/user pointer and a stored value that does not
/// parse; `Err` means the cache itself failed.
#[async_trait]
pub trait SignalCache: Send + Sync + 'static {
    /// Which backend this is (`memory` or `redis`), for logs and `/readyz`.
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> CacheResult<()>;
    /// Whether the backend is reachable as far as its last call knows
    /// (without a call: for `/metrics`).
    fn healthy(&self) -> bool {
        true
    }

    /// Writes the event under its request key and, for each of `session_id` and
    /// `user_id` given, points that key at `event.request_id` (the latest
    /// request wins). Every key written gets the full cache TTL.
    async fn put_event(
        &self,
        subscriber_id: &str,
        session_id: Option<&str>,
        user_id: Option<&str>,
        event: &CachedEvent,
    ) -> CacheResult<()>;

    /// Points the session and/or user key at `request_id` without writing an
    /// event (done at ingest time, before the provider answered).
    async fn point(
        &self,
        subscriber_id: &str,
        request_id: &str,
        session_id: Option<&str>,
        user_id: Option<&str>,
    ) -> CacheResult<()>;

    async fn get_by_request(
        &self,
        subscriber_id: &str,
        request_id: &str,
    ) -> CacheResult<Option<CachedEvent>>;
    /// The event of the session's latest request.
    async fn get_by_session(
        &self,
        subscriber_id: &str,
        session_id: &str,
    ) -> CacheResult<Option<CachedEvent>>;
    /// The event of the user's latest request.
    async fn get_by_user(
        &self,
        subscriber_id: &str,
        user_id: &str,
    ) -> CacheResult<Option<CachedEvent>>;
}

/// The Redis backend when a URL is given, the embedded one (bounded to
/// [`DEFAULT_MAX_EVENTS`] events) otherwise.
pub async fn connect(redis_url: Option<&str>, ttl: Duration) -> CacheResult<Arc<dyn SignalCache>> {
    connect_with(redis_url, ttl, &crate::redis_link::RedisSettings::default()).await
}

/// [`connect`] with the given bounds on Redis calls and where to report its health.
pub async fn connect_with(
    redis_url: Option<&str>,
    ttl: Duration,
    settings: &crate::redis_link::RedisSettings,
) -> CacheResult<Arc<dyn SignalCache>> {
    if ttl.is_zero() {
        return Err(CacheError::Config("the cache TTL must be positive".into()));
    }
    Ok(match redis_url {
        Some(url) => Arc::new(RedisCache::connect(url, ttl, settings).await?),
        None => Arc::new(MemoryCache::new(ttl, DEFAULT_MAX_EVENTS)),
    })
}

/// Parses a stored event; a value that does not parse is logged and read as a
/// miss, so bad data in a shared cache never fails a request.
fn decode(key: &str, raw: &[u8]) -> Option<CachedEvent> {
    match serde_json::from_slice(raw) {
        Ok(event) => Some(event),
        Err(err) => {
            tracing::warn!(%key, error = %err, "unreadable cached event, treated as a miss");
            None
        }
    }
}
