//! The Redis backend, shared by every riskgate process of a deployment.
//!
//! Values are plain strings, readable with `redis-cli GET`: the request key
//! holds the event as JSON, the session and user keys hold a request id. Every
//! write is `SET … EX <ttl>`.

use std::time::Duration;

use ::redis::{RedisResult, Script};
use async_trait::async_trait;

use crate::redis_link::{RedisLink, RedisSettings};

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

/// How long the first connection at start-up may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct RedisCache {
    link: RedisLink,
    /// The TTL in whole seconds (rounded up, at least 1), as `SET … EX` takes it.
    ttl_secs: u64,
    follow_pointer: Script,
}

impl RedisCache {
    /// Connects; afterwards every call is bounded by `settings.call_timeout`
    /// and fails at once while Redis is known to be down.
    pub async fn connect(url: &str, ttl: Duration, settings: &RedisSettings) -> CacheResult<Self> {
        ::redis::Client::open(url)
            .map_err(|err| CacheError::Config(format!("invalid Redis URL: {err}")))?;
        let link = RedisLink::connect(url, settings, CONNECT_TIMEOUT).await?;
        let ttl_secs = (ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)).max(1);
        Ok(Self {
            link,
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
        let mut invocation = self.follow_pointer.key(pointer_key);
        invocation.arg(request_key(subscriber_id, ""));
        let raw = self
            .link
            .call(|mut conn| async move { invocation.invoke_async(&mut conn).await })
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

    fn healthy(&self) -> bool {
        self.link.healthy()
    }

    async fn ping(&self) -> CacheResult<()> {
        self.link
            .call(|mut conn| async move {
                ::redis::cmd("PING").query_async::<String>(&mut conn).await
            })
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
        self.link
            .call(|mut conn| async move { pipe.query_async::<()>(&mut conn).await })
            .await?;
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
        self.link
            .call(|mut conn| async move { pipe.query_async::<()>(&mut conn).await })
            .await?;
        Ok(())
    }

    async fn get_by_request(
        &self,
        subscriber_id: &str,
        request_id: &str,
    ) -> CacheResult<Option<CachedEvent>> {
        let key = request_key(subscriber_id, request_id);
        let mut get = ::redis::cmd("GET");
        get.arg(&key);
        let raw = self
            .link
            .call(|mut conn| async move { get.query_async::<Option<Vec<u8>>>(&mut conn).await })
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
