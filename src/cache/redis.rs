//! The Redis backend, shared by every riskgate process of a deployment.
//!
//! Values are plain strings, readable with `redis-cli GET`: the request key
//! holds the event as JSON, the session and user keys hold a request id. Every
//! write is `SET … EX <ttl>`.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{RedisResult, Script};
use async_trait::async_trait;

use super::{
    decode, request_key, session_key, user_key, CacheError, CacheResult, CachedEvent, SignalCache,
};

/// Resolves a session or user pointer and reads the event it names, in one
/// round trip. `KEYS[1]` is the pointer key, `ARGV[1]` the subscriber's
/// request-key prefix (`rg:{subscriber}:fp:req:`).
///
/// Why a script rather than two GETs: the read sits on the synchronous scoring
/// path, so it costs one round trip instead of two, and the pair is read
/// atomically — the pointer cannot move to a newer request between the two
/// reads. The event key is built inside the script and so not declared in
/// `KEYS`; that is fine on a standalone (or replicated) Redis, which is what a
/// `redis://` URL names, but would need hash-tagged key names on Redis Cluster.
const FOLLOW_POINTER: &str = r"
local id = redis.call('GET', KEYS[1])
if not id then
  return false
end
return redis.call('GET', ARGV[1] .. id)
";

/// Bounds on talking to Redis, so a hung server fails a request instead of
/// stalling it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct RedisCache {
    conn: ConnectionManager,
    /// The TTL in whole seconds (rounded up, at least 1), as `SET … EX` takes it.
    ttl_secs: u64,
    follow_pointer: Script,
}

impl RedisCache {
    /// Connects (the [`ConnectionManager`] reconnects by itself afterwards).
    pub async fn connect(url: &str, ttl: Duration) -> CacheResult<Self> {
        let client = ::redis::Client::open(url)
            .map_err(|err| CacheError::Config(format!("invalid Redis URL: {err}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        let ttl_secs = (ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)).max(1);
        Ok(Self {
            conn,
            ttl_secs,
            follow_pointer: Script::new(FOLLOW_POINTER),
        })
    }

    /// Adds `SET <pointer> <request_id> EX <ttl>` for each pointer given.
    fn add_pointers(
        &self,
        pipe: &mut ::redis::Pipeline,
        subscriber_id: &str,
        request_id: &str,
        session_id: Option<&str>,
        user_id: Option<&str>,
    ) {
        let keys = [
            session_id.map(|id| session_key(subscriber_id, id)),
            user_id.map(|id| user_key(subscriber_id, id)),
        ];
        for key in keys.into_iter().flatten() {
            pipe.cmd("SET")
                .arg(key)
                .arg(request_id)
                .arg("EX")
                .arg(self.ttl_secs)
                .ignore();
        }
    }

    async fn follow(
        &self,
        subscriber_id: &str,
        pointer_key: &str,
    ) -> CacheResult<Option<CachedEvent>> {
        let mut conn = self.conn.clone();
        let raw = self
            .follow_pointer
            .key(pointer_key)
            .arg(request_key(subscriber_id, ""))
            .invoke_async(&mut conn)
            .await;
        read(pointer_key, raw)
    }
}

/// A read's answer: a value that does not parse, or a key of another Redis
/// type, is logged and counts as a miss; only a failure of Redis is an error.
fn read(key: &str, raw: RedisResult<Option<Vec<u8>>>) -> CacheResult<Option<CachedEvent>> {
    match raw {
        Ok(raw) => Ok(raw.and_then(|raw| decode(key, &raw))),
        Err(err) if err.code() == Some("WRONGTYPE") => {
            tracing::warn!(%key, error = %err, "cache key of the wrong Redis type, treated as a miss");
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}

#[async_trait]
impl SignalCache for RedisCache {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> CacheResult<()> {
        let mut conn = self.conn.clone();
        ::redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await?;
        Ok(())
    }

    /// One `MULTI`/`EXEC` transaction: readers see the event and its pointers
    /// together or not at all.
    async fn put_event(
        &self,
        subscriber_id: &str,
        session_id: Option<&str>,
        user_id: Option<&str>,
        event: &CachedEvent,
    ) -> CacheResult<()> {
        let json = serde_json::to_string(event)?;
        let mut pipe = ::redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(request_key(subscriber_id, &event.request_id))
            .arg(json)
            .arg("EX")
            .arg(self.ttl_secs)
            .ignore();
        self.add_pointers(
            &mut pipe,
            subscriber_id,
            &event.request_id,
            session_id,
            user_id,
        );
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    async fn point(
        &self,
        subscriber_id: &str,
        request_id: &str,
        session_id: Option<&str>,
        user_id: Option<&str>,
    ) -> CacheResult<()> {
        if session_id.is_none() && user_id.is_none() {
            return Ok(());
        }
        let mut pipe = ::redis::pipe();
        pipe.atomic();
        self.add_pointers(&mut pipe, subscriber_id, request_id, session_id, user_id);
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    async fn get_by_request(
        &self,
        subscriber_id: &str,
        request_id: &str,
    ) -> CacheResult<Option<CachedEvent>> {
        let key = request_key(subscriber_id, request_id);
        let mut conn = self.conn.clone();
        let raw = ::redis::cmd("GET")
            .arg(&key)
            .query_async::<Option<Vec<u8>>>(&mut conn)
            .await;
        read(&key, raw)
    }

    async fn get_by_session(
        &self,
        subscriber_id: &str,
        session_id: &str,
    ) -> CacheResult<Option<CachedEvent>> {
        self.follow(subscriber_id, &session_key(subscriber_id, session_id))
            .await
    }

    async fn get_by_user(
        &self,
        subscriber_id: &str,
        user_id: &str,
    ) -> CacheResult<Option<CachedEvent>> {
        self.follow(subscriber_id, &user_key(subscriber_id, user_id))
            .await
    }
}
