//! The Redis backend: exact sliding windows from sorted sets, one Lua script
//! call (one round trip) per `record_and_read` or `read`, each a handful of
//! logarithmic lookups however many events a key holds (a device under
//! attack can hold thousands; scanning them made every score wait).
//!
//! - a dimension key (`rg:{sub}:vel:user:{user}` …) is a sorted set whose
//!   members are `{running total}:{amount_minor}:{event_id}` scored by the
//!   event's time; a window's sum is the difference of the running totals at
//!   its ends, its count a `ZCOUNT`. Events are kept in time order: one
//!   stamped before the key's latest (clock skew between processes) counts at
//!   the latest time;
//! - a distinct set (`rg:{sub}:vel:device_cards:{device}` …) is a sorted set of
//!   members (card or device) scored by when each was last seen;
//! - `rg:{sub}:vel:seen:{event_id}` is set (`NX`) when an event is counted, so a
//!   replay of the same event id within 25 h is not counted again.
//!
//! Every write trims entries older than 24 h and sets the key's TTL to 25 h.
//! Running totals are Lua doubles: exact up to 2^53 minor units per key.
//! The script builds no key names of its own; every key it touches is in
//! `KEYS`, so it would also run on Redis Cluster given hash-tagged names.

use std::time::Duration;

use ::redis::Script;
use async_trait::async_trait;

use crate::redis_link::{RedisLink, RedisSettings};

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
local amount = tonumber(ARGV[3])
local retention = tonumber(ARGV[5])
local w5, w1h, w24 = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local since = now - w24
-- A member is '{running total}:{amount}:{event id}', the running total
-- zero-padded so that members of equal time sort in insertion order.
local function parse(m)
  local a = string.find(m, ':', 1, true)
  local b = a and string.find(m, ':', a + 1, true)
  if not b then return 0, 0 end
  return tonumber(string.sub(m, 1, a - 1)) or 0, tonumber(string.sub(m, a + 1, b - 1)) or 0
end
local fresh = 0
if record then
  if redis.call('SET', KEYS[1], '1', 'NX', 'PX', retention) then
    fresh = 1
  end
end
if fresh == 1 then
  for i = 2, 5 do
    if KEYS[i] ~= '' then
      local t, total = now, 0
      local last = redis.call('ZREVRANGE', KEYS[i], 0, 0, 'WITHSCORES')
      if #last > 0 then
        total = parse(last[1])
        -- Keep the set in time order (totals rise with time): an event
        -- stamped a moment before the latest one (clock skew between
        -- processes) is placed at the latest time.
        local lt = tonumber(last[2])
        if lt > t then t = lt end
      end
      total = total + amount
      redis.call('ZADD', KEYS[i], t, string.format('%016.0f', total) .. ':' .. ARGV[3] .. ':' .. ARGV[4])
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
-- Count and sum over (now - w, now]: the count from the index, the sum from
-- the running totals of the window's first and last members. Each is a
-- logarithmic lookup, whatever the number of events the key holds.
local function window(key, w)
  local from = '(' .. (now - w)
  local c = redis.call('ZCOUNT', key, from, now)
  if c == 0 then return 0, 0 end
  local first = redis.call('ZRANGEBYSCORE', key, from, now, 'LIMIT', 0, 1)
  local last = redis.call('ZREVRANGEBYSCORE', key, now, from, 'LIMIT', 0, 1)
  local ft, fa = parse(first[1])
  local lt = parse(last[1])
  return c, lt - (ft - fa)
end
local out = {fresh}
for i = 2, 5 do
  local c5, a5, c1, a1, c24, a24 = 0, 0, 0, 0, 0, 0
  if KEYS[i] ~= '' then
    c5, a5 = window(KEYS[i], w5)
    c1, a1 = window(KEYS[i], w1h)
    c24, a24 = window(KEYS[i], w24)
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

/// How long the first connection at start-up may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct RedisVelocity {
    link: RedisLink,
    script: Script,
}

impl RedisVelocity {
    /// Connects; afterwards every call is bounded by `settings.call_timeout`
    /// and fails at once while Redis is known to be down.
    pub async fn connect(url: &str, settings: &RedisSettings) -> Result<Self, VelocityError> {
        ::redis::Client::open(url)
            .map_err(|err| VelocityError::Config(format!("invalid Redis URL: {err}")))?;
        let link = RedisLink::connect(url, settings, CONNECT_TIMEOUT).await?;
        Ok(Self {
            link,
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
        let reply: Vec<i64> = self
            .link
            .call(|mut conn| async move { invocation.invoke_async(&mut conn).await })
            .await?;
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

    fn healthy(&self) -> bool {
        self.link.healthy()
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
