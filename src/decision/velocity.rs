//! What the velocity counters are asked and what they answer, as the decision
//! core sees them. The counters themselves (memory or Redis) live in
//! `crate::velocity`; these are the types they speak.

use serde::{Deserialize, Serialize};

/// 5 minutes, in milliseconds.
pub const WINDOW_5M_MS: i64 = 5 * 60 * 1000;
/// 1 hour, in milliseconds.
pub const WINDOW_1H_MS: i64 = 60 * 60 * 1000;
/// 24 hours, in milliseconds; also the window of the distinct counts.
pub const WINDOW_24H_MS: i64 = 24 * 60 * 60 * 1000;
/// How long a key lives after its last write: 24 h plus a margin of one hour.
pub const RETENTION_MS: i64 = WINDOW_24H_MS + WINDOW_1H_MS;

/// One scored transaction, as the counters see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VelocityEvent {
    /// The merchant's user id.
    pub user: Option<String>,
    /// The card as `{bin}{last4}` (or any stable BIN+last4 form): never a full
    /// card number.
    pub card: Option<String>,
    /// The device's visitor id.
    pub device: Option<String>,
    pub ip: Option<String>,
    /// The amount in minor units (cents). Summed exactly on the embedded
    /// backend; on Redis exactly up to 2^53 minor units per sum.
    pub amount_minor: i64,
    /// Idempotency: recording the same `event_id` twice (within 25 h) counts
    /// once. Typically the decision id.
    pub event_id: String,
}

/// Count and amount of one dimension over each window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WindowCounts {
    pub count_5m: u64,
    pub amount_5m: i64,
    pub count_1h: u64,
    pub amount_1h: i64,
    pub count_24h: u64,
    pub amount_24h: i64,
}

/// What the counters say about one event's user, card, device and IP. A
/// dimension absent from the event is `None`, never zero counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VelocitySnapshot {
    pub user: Option<WindowCounts>,
    pub card: Option<WindowCounts>,
    pub device: Option<WindowCounts>,
    pub ip: Option<WindowCounts>,
    /// Distinct cards seen on the device over 24 h (present when the event has
    /// a device).
    pub distinct_cards_per_device: Option<u64>,
    /// Distinct cards seen for the user over 24 h (present when the event has
    /// a user).
    pub distinct_cards_per_user: Option<u64>,
    /// Distinct devices seen for the user over 24 h (present when the event has
    /// a user).
    pub distinct_devices_per_user: Option<u64>,
}
