//! The shared limiter: one key per subscriber, `rg:{subscriber}:rate`,
//! holding its arrival time in microseconds of Redis's own clock, so that
//! processes whose clocks differ still share one limit.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use super::{Admission, Limiter, LimiterError, RateLimit};

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
/// A limiter that cannot answer within this admits the request (see
/// [`crate::service::rate_limits`]): checkout never waits on the limit.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(250);

pub struct RedisLimiter {
    conn: ConnectionManager,
    script: Script,
}

impl RedisLimiter {
    pub async fn connect(url: &str) -> Result<Self, LimiterError> {
        let client = ::redis::Client::open(url)
            .map_err(|err| LimiterError::Config(format!("invalid Redis URL: {err}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(LimiterError::Unavailable)?;
        Ok(Self {
            conn,
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
        let mut conn = self.conn.clone();
        let (admitted, wait_us): (i64, i64) = self
            .script
            .key(format!("rg:{subscriber_id}:rate"))
            .arg(limit.interval_us())
            .arg(limit.burst.max(1))
            .invoke_async(&mut conn)
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
