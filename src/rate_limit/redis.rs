//! The shared limiter: one key per subscriber, `rg:{subscriber}:rate`,
//! holding its arrival time in microseconds of Redis's own clock, so that
//! processes whose clocks differ still share one limit.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::{Admission, Limiter, LimiterError, RateLimit};
use crate::redis_link::{RedisLink, RedisSettings};

/// The cell-rate step of [`super::gcra`] on Redis's clock. Answers
/// `{1, 0}` when admitted, `{0, wait_us}` when refused.
const ADMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next = tat + interval
if next - now > tolerance then
  return {0, math.ceil(next - tolerance - now)}
end
redis.call('SET', KEYS[1], string.format('%.0f', next), 'PX', math.ceil((next - now) / 1000) + 1000)
return {1, 0}
";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Calls go through a [`RedisLink`]: bounded by the Redis timeout, and
/// failing at once while its circuit is open, so a limiter that cannot
/// answer admits the request (see [`crate::service::rate_limits`]) without
/// making checkout wait.
pub struct RedisLimiter {
    link: RedisLink,
    script: Script,
}

impl RedisLimiter {
    pub async fn connect(url: &str, settings: &RedisSettings) -> Result<Self, LimiterError> {
        let link = RedisLink::connect(url, settings, CONNECT_TIMEOUT)
            .await
            .map_err(LimiterError::Unavailable)?;
        Ok(Self {
            link,
            script: Script::new(ADMIT),
        })
    }
}

#[async_trait]
impl Limiter for RedisLimiter {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn admit(
        &self,
        subscriber_id: &str,
        limit: &RateLimit,
    ) -> Result<Admission, LimiterError> {
        let mut invocation = self.script.key(format!("rg:{subscriber_id}:rate"));
        invocation.arg(limit.interval_us()).arg(limit.burst.max(1));
        let (admitted, wait_us): (i64, i64) = self
            .link
            .call(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await
            .map_err(LimiterError::Unavailable)?;
        Ok(if admitted == 1 {
            Admission::Admitted
        } else {
            Admission::Refused {
                retry_after: Duration::from_micros(u64::try_from(wait_us).unwrap_or(0)),
            }
        })
    }
}
