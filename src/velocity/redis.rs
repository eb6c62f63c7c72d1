//! The Redis backend: exact sliding windows from sorted sets, one Lua script
//! call (one round trip) per `record_and_read` or `read`.
//!
//! - a dimension key (`rg:{sub}:vel:user:{user}` …) is a sorted set whose
//!   members are `{amount_minor}:{event_id}` scored by the event's time;
//! - a distinct set (`rg:{sub}:vel:device_cards:{device}` …) is a sorted set of
//!   members (card or device) scored by when each was last seen;
//! - `rg:{sub}:vel:seen:{event_id}` is set (`NX`) when an event is counted, so a
//!   replay of the same event id within 25 h is not counted again.
//!
//! Every write trims entries older than 24 h and sets the key's TTL to 25 h.
//! Amount sums are computed in Lua (doubles): exact up to 2^53 minor units.
//! The script builds no key names of its own; every key it touches is in
//! `KEYS`, so it would also run on Redis Cluster given hash-tagged names.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::Script;
use async_trait::async_trait;

use super::{
    check_event, dimension_key, distinct_key, seen_key, Dimension, VelocityError, VelocityEvent,
    VelocitySnapshot, VelocityStore, WindowCounts, DISTINCT, RETENTION_MS, WINDOW_1H_MS,
    WINDOW_24H_MS, WINDOW_5M_MS,
};

/// `KEYS[1]` the seen key, `KEYS[2..5]` user, card, device, IP keys,
/// `KEYS[6..8]` device_cards, user_cards, user_devices (an empty name means
/// "absent"). `ARGV`: record (`1`/`0`), now, amount, event id, retention ms,
/// windows 5m / 1h / 24h, then the members for the three distinct sets (empty
/// when absent).
///
/// Replies with 1 + 4 × 6 + 3 integers: whether the event was counted now, the
/// six window figures per dimension, the three distinct counts.
const RECORD_AND_READ: &str = r"
local record = ARGV[1] == '1'
local now = tonumber(ARGV[2])
local retention = tonumber(ARGV[5])
local w5, w1h, w24 = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local since = now - w24
local fresh = 0
if record then
  if redis.call('SET', KEYS[1], '1', 'NX', 'PX', retention) then
    fresh = 1
  end
end
if fresh == 1 then
  local member = ARGV[3] .. ':' .. ARGV[4]
  for i = 2, 5 do
    if KEYS[i] ~= '' then
      redis.call('ZADD', KEYS[i], now, member)
      redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', since)
      redis.call('PEXPIRE', KEYS[i], retention)
    end
  end
  for i = 6, 8 do
    local m = ARGV[3 + i]
    if KEYS[i] ~= '' and m ~= '' then
      local old = redis.call('ZSCORE', KEYS[i], m)
      if (not old) or tonumber(old) < now then
        redis.call('ZADD', KEYS[i], now, m)
      end
      redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', since)
      redis.call('PEXPIRE', KEYS[i], retention)
    end
  end
end
local out = {fresh}
for i = 2, 5 do
  local c5, a5, c1, a1, c24, a24 = 0, 0, 0, 0, 0, 0
  if KEYS[i] ~= '' then
    local entries = redis.call('ZRANGEBYSCORE', KEYS[i], '(' .. since, now, 'WITHSCORES')
    for j = 1, #entries, 2 do
      local m = entries[j]
      local t = tonumber(entries[j + 1])
      local colon = string.find(m, ':', 1, true)
      local amount = colon and tonumber(string.sub(m, 1, colon - 1)) or 0
      c24 = c24 + 1
      a24 = a24 + amount
      if t > now - w1h then
        c1 = c1 + 1
        a1 = a1 + amount
      end
      if t > now - w5 then
        c5 = c5 + 1
        a5 = a5 + amount
      end
    end
  end
  table.insert(out, c5)
  table.insert(out, a5)
  table.insert(out, c1)
  table.insert(out, a1)
  table.insert(out, c24)
  table.insert(out, a24)
end
for i = 6, 8 do
  local n = 0
  if KEYS[i] ~= '' then
    n = redis.call('ZCOUNT', KEYS[i], '(' .. since, '+inf')
  end
  table.insert(out, n)
end
return out
";

const REPLY_LEN: usize = 1 + 4 * 6 + 3;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct RedisVelocity {
    conn: ConnectionManager,
    script: Script,
}

impl RedisVelocity {
    /// Connects (the [`ConnectionManager`] reconnects by itself afterwards).
    pub async fn connect(url: &str) -> Result<Self, VelocityError> {
        let client = ::redis::Client::open(url)
            .map_err(|err| VelocityError::Config(format!("invalid Redis URL: {err}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self {
            conn,
            script: Script::new(RECORD_AND_READ),
        })
    }

    async fn call(
        &self,
        subscriber_id: &str,
        event: &VelocityEvent,
        now_ms: i64,
        record: bool,
    ) -> Result<VelocitySnapshot, VelocityError> {
        let mut invocation = self.script.prepare_invoke();
        invocation.key(seen_key(subscriber_id, &event.event_id));
        for dimension in Dimension::ALL {
            invocation.key(
                dimension
                    .value(event)
                    .map(|v| dimension_key(subscriber_id, dimension, v))
                    .unwrap_or_default(),
            );
        }
        for (set, owner, _) in DISTINCT {
            invocation.key(
                owner
                    .value(event)
                    .map(|o| distinct_key(subscriber_id, set, o))
                    .unwrap_or_default(),
            );
        }
        invocation
            .arg(if record { "1" } else { "0" })
            .arg(now_ms)
            .arg(event.amount_minor)
            .arg(&event.event_id)
            .arg(RETENTION_MS)
            .arg(WINDOW_5M_MS)
            .arg(WINDOW_1H_MS)
            .arg(WINDOW_24H_MS);
        for (_, _, member) in DISTINCT {
            invocation.arg(member.value(event).unwrap_or_default());
        }
        let mut conn = self.conn.clone();
        let reply: Vec<i64> = invocation.invoke_async(&mut conn).await?;
        if reply.len() != REPLY_LEN {
            return Err(VelocityError::Redis(::redis::RedisError::from((
                ::redis::ErrorKind::TypeError,
                "unexpected velocity script reply length",
            ))));
        }

        let mut snapshot = VelocitySnapshot::default();
        for (i, dimension) in Dimension::ALL.into_iter().enumerate() {
            if dimension.value(event).is_none() {
                continue;
            }
            let r = &reply[1 + i * 6..1 + (i + 1) * 6];
            let count = |v: i64| u64::try_from(v).unwrap_or(0);
            snapshot.set_dimension(
                dimension,
                WindowCounts {
                    count_5m: count(r[0]),
                    amount_5m: r[1],
                    count_1h: count(r[2]),
                    amount_1h: r[3],
                    count_24h: count(r[4]),
                    amount_24h: r[5],
                },
            );
        }
        for (i, (set, owner, _)) in DISTINCT.into_iter().enumerate() {
            if owner.value(event).is_some() {
                snapshot.set_distinct(set, u64::try_from(reply[25 + i]).unwrap_or(0));
            }
        }
        Ok(snapshot)
    }
}

#[async_trait]
impl VelocityStore for RedisVelocity {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn record_and_read(
        &self,
        subscriber_id: &str,
        event: &VelocityEvent,
        now_ms: i64,
    ) -> Result<VelocitySnapshot, VelocityError> {
        check_event(event)?;
        self.call(subscriber_id, event, now_ms, true).await
    }

    async fn read(
        &self,
        subscriber_id: &str,
        event: &VelocityEvent,
        now_ms: i64,
    ) -> Result<VelocitySnapshot, VelocityError> {
        self.call(subscriber_id, event, now_ms, false).await
    }
}
