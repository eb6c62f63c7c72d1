//! Velocity counters: per subscriber, how many transactions (and how much
//! money) one user, card (BIN + last4), device (visitor id) and IP made over
//! the last 5 minutes, hour and 24 hours, plus distinct cards per device,
//! distinct cards per user and distinct devices per user over 24 hours.
//!
//! Two backends implement [`VelocityStore`]: [`MemoryVelocity`] (embedded,
//! bucketed, bounded, one process) and [`RedisVelocity`] (sorted sets shared by
//! any number of processes, one round trip per call). One contract suite
//! (`tests/it/velocity.rs`) runs against both.
//!
//! Key names, the same on both backends (`{value}` is the raw id):
//!
//! | key | holds |
//! |---|---|
//! | `rg:{subscriber}:vel:user:{user}` (also `card`, `device`, `ip`) | the dimension's events (time, amount) |
//! | `rg:{subscriber}:vel:device_cards:{device}` | cards seen on the device, with last-seen time |
//! | `rg:{subscriber}:vel:user_cards:{user}` | cards seen for the user, with last-seen time |
//! | `rg:{subscriber}:vel:user_devices:{user}` | devices seen for the user, with last-seen time |
//! | `rg:{subscriber}:vel:seen:{event_id}` | marks an event as counted (idempotency) |
//!
//! Windows are `(now - window, now]`: an event exactly one window old is out,
//! an event later than `now` is not counted. Times are Unix milliseconds given
//! by the caller (`now_ms`), so a decision is counted at the time it was made.

mod memory;
mod redis;

use std::sync::Arc;

use async_trait::async_trait;

pub use self::memory::{MemoryVelocity, DEFAULT_MAX_KEYS};
pub use self::redis::RedisVelocity;

pub use crate::decision::velocity::{
    VelocityEvent, VelocitySnapshot, WindowCounts, RETENTION_MS, WINDOW_1H_MS, WINDOW_24H_MS,
    WINDOW_5M_MS,
};

/// The dimensions an event is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    User,
    Card,
    Device,
    Ip,
}

impl Dimension {
    pub const ALL: [Dimension; 4] = [Self::User, Self::Card, Self::Device, Self::Ip];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Card => "card",
            Self::Device => "device",
            Self::Ip => "ip",
        }
    }

    /// The event's value for this dimension, if any (an empty string counts
    /// as absent).
    pub fn value(self, event: &VelocityEvent) -> Option<&str> {
        let value = match self {
            Self::User => event.user.as_deref(),
            Self::Card => event.card.as_deref(),
            Self::Device => event.device.as_deref(),
            Self::Ip => event.ip.as_deref(),
        };
        value.filter(|v| !v.is_empty())
    }
}

/// The distinct-count sets: (name, owner dimension, member dimension).
pub(crate) const DISTINCT: [(&str, Dimension, Dimension); 3] = [
    ("device_cards", Dimension::Device, Dimension::Card),
    ("user_cards", Dimension::User, Dimension::Card),
    ("user_devices", Dimension::User, Dimension::Device),
];

/// `rg:{subscriber_id}:vel:{dimension}:{value}`.
pub fn dimension_key(subscriber_id: &str, dimension: Dimension, value: &str) -> String {
    format!("rg:{subscriber_id}:vel:{}:{value}", dimension.as_str())
}

/// `rg:{subscriber_id}:vel:{set}:{owner}` for `device_cards`, `user_cards`,
/// `user_devices`.
pub fn distinct_key(subscriber_id: &str, set: &str, owner: &str) -> String {
    format!("rg:{subscriber_id}:vel:{set}:{owner}")
}

/// `rg:{subscriber_id}:vel:seen:{event_id}`.
pub fn seen_key(subscriber_id: &str, event_id: &str) -> String {
    format!("rg:{subscriber_id}:vel:seen:{event_id}")
}

impl VelocitySnapshot {
    fn set_dimension(&mut self, dimension: Dimension, counts: WindowCounts) {
        let slot = match dimension {
            Dimension::User => &mut self.user,
            Dimension::Card => &mut self.card,
            Dimension::Device => &mut self.device,
            Dimension::Ip => &mut self.ip,
        };
        *slot = Some(counts);
    }

    fn set_distinct(&mut self, set: &str, count: u64) {
        match set {
            "device_cards" => self.distinct_cards_per_device = Some(count),
            "user_cards" => self.distinct_cards_per_user = Some(count),
            _ => self.distinct_devices_per_user = Some(count),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VelocityError {
    /// The Redis server could not be reached (refused, dropped, timed out).
    #[error("velocity store unavailable")]
    Unavailable(#[source] ::redis::RedisError),
    /// The Redis server answered with an error, or an unexpected reply.
    #[error("velocity store error")]
    Redis(#[source] ::redis::RedisError),
    /// The event cannot be counted (for example an empty `event_id`).
    #[error("invalid velocity event: {0}")]
    Invalid(String),
    /// A bad URL or setting.
    #[error("invalid velocity configuration: {0}")]
    Config(String),
}

impl From<::redis::RedisError> for VelocityError {
    fn from(err: ::redis::RedisError) -> Self {
        if crate::cache::redis_unreachable(&err) {
            Self::Unavailable(err)
        } else {
            Self::Redis(err)
        }
    }
}

/// The velocity-counter contract.
#[async_trait]
pub trait VelocityStore: Send + Sync + 'static {
    /// Which backend this is (`memory` or `redis`).
    fn backend(&self) -> &'static str;

    /// Whether the backend is reachable as far as its last call knows.
    fn healthy(&self) -> bool {
        true
    }

    /// Counts the event at `now_ms` under each dimension it has (once per
    /// `event_id`: a repeat is not counted again) and returns the counters
    /// INCLUDING this event, read at `now_ms`.
    async fn record_and_read(
        &self,
        subscriber_id: &str,
        event: &VelocityEvent,
        now_ms: i64,
    ) -> Result<VelocitySnapshot, VelocityError>;

    /// Counts the event like [`record_and_read`](Self::record_and_read),
    /// without reading the counters back (the start-up rebuild).
    async fn record(
        &self,
        subscriber_id: &str,
        event: &VelocityEvent,
        now_ms: i64,
    ) -> Result<(), VelocityError> {
        self.record_and_read(subscriber_id, event, now_ms)
            .await
            .map(|_| ())
    }

    /// The counters for the event's dimensions at `now_ms`, without counting
    /// it (so they include it only if it was recorded before).
    async fn read(
        &self,
        subscriber_id: &str,
        event: &VelocityEvent,
        now_ms: i64,
    ) -> Result<VelocitySnapshot, VelocityError>;
}

/// The Redis backend when a URL is given, the embedded one (bounded to
/// [`DEFAULT_MAX_KEYS`] keys) otherwise.
pub async fn connect(redis_url: Option<&str>) -> Result<Arc<dyn VelocityStore>, VelocityError> {
    connect_with(redis_url, &crate::redis_link::RedisSettings::default()).await
}

/// [`connect`] with the given bounds on Redis calls and where to report its health.
pub async fn connect_with(
    redis_url: Option<&str>,
    settings: &crate::redis_link::RedisSettings,
) -> Result<Arc<dyn VelocityStore>, VelocityError> {
    Ok(match redis_url {
        Some(url) => Arc::new(RedisVelocity::connect(url, settings).await?),
        None => Arc::new(MemoryVelocity::new(DEFAULT_MAX_KEYS)),
    })
}

fn check_event(event: &VelocityEvent) -> Result<(), VelocityError> {
    if event.event_id.is_empty() {
        return Err(VelocityError::Invalid("event_id is empty".into()));
    }
    Ok(())
}
