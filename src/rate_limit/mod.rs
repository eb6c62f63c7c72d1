//! Per-subscriber request rates: how many requests a subscriber's keys may
//! make, as a sustained rate and a burst above it.
//!
//! The limit is a generic cell rate (GCRA, the leaky bucket kept as one
//! timestamp per subscriber): each admitted request moves the subscriber's
//! "theoretical arrival time" one interval (`1 / per_second`) later; a request
//! is refused while that time lies more than `burst` intervals ahead. It
//! needs one number per subscriber and one read-modify-write per request,
//! which Redis does in a script, so every process sharing it shares the
//! limit. Without Redis the timestamp lives in this process.

mod redis;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use self::redis::RedisLimiter;

/// A subscriber's limit, as the operator set it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Sustained requests per second (may be below 1).
    pub per_second: f64,
    /// Requests allowed at once above the sustained rate.
    pub burst: u32,
}

impl RateLimit {
    /// Microseconds between two requests at the sustained rate.
    fn interval_us(&self) -> f64 {
        1_000_000.0 / self.per_second
    }
}

/// Whether one request is admitted; when not, how long until one would be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    Refused { retry_after: Duration },
}

/// The cell-rate step: from the stored arrival time (or none) and now, both
/// in microseconds, the verdict and the arrival time to store when admitted.
pub fn gcra(limit: &RateLimit, stored_tat: Option<f64>, now_us: f64) -> (Admission, Option<f64>) {
    let interval = limit.interval_us();
    let tolerance = interval * f64::from(limit.burst.max(1));
    let tat = stored_tat.map_or(now_us, |t| t.max(now_us));
    let next = tat + interval;
    if next - now_us > tolerance {
        let wait_us = (next - tolerance - now_us).max(0.0);
        let retry_after = Duration::from_micros(wait_us.ceil() as u64);
        (Admission::Refused { retry_after }, None)
    } else {
        (Admission::Admitted, Some(next))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LimiterError {
    #[error("rate limiter unavailable")]
    Unavailable(#[source] ::redis::RedisError),
    #[error("invalid rate limiter configuration: {0}")]
    Config(String),
}

#[async_trait]
pub trait Limiter: Send + Sync + 'static {
    /// `local` or `redis`, for logs.
    fn backend(&self) -> &'static str;
    /// Counts one request of the subscriber against its limit.
    async fn admit(
        &self,
        subscriber_id: &str,
        limit: &RateLimit,
    ) -> Result<Admission, LimiterError>;
}

/// The limit of one process: arrival times in memory, forgotten once they
/// lie in the past (a subscriber idle that long is back to a full burst).
pub struct LocalLimiter {
    started: Instant,
    arrivals: Mutex<HashMap<String, f64>>,
}

/// Past this many remembered subscribers, the ones at rest are forgotten.
const LOCAL_PRUNE_AT: usize = 10_000;

impl Default for LocalLimiter {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            arrivals: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl Limiter for LocalLimiter {
    fn backend(&self) -> &'static str {
        "local"
    }

    async fn admit(
        &self,
        subscriber_id: &str,
        limit: &RateLimit,
    ) -> Result<Admission, LimiterError> {
        let now = self.started.elapsed().as_secs_f64() * 1e6;
        let mut arrivals = self.arrivals.lock().unwrap_or_else(PoisonError::into_inner);
        if arrivals.len() >= LOCAL_PRUNE_AT {
            arrivals.retain(|_, tat| *tat > now);
        }
        let (admission, next) = gcra(limit, arrivals.get(subscriber_id).copied(), now);
        if let Some(next) = next {
            arrivals.insert(subscriber_id.to_owned(), next);
        }
        Ok(admission)
    }
}

/// The shared limiter when a Redis URL is given, this process's otherwise.
pub async fn connect(
    redis_url: Option<&str>,
    settings: &crate::redis_link::RedisSettings,
) -> Result<Arc<dyn Limiter>, LimiterError> {
    Ok(match redis_url {
        Some(url) => Arc::new(RedisLimiter::connect(url, settings).await?),
        None => Arc::new(LocalLimiter::default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_admitted_then_the_sustained_rate() {
        let limit = RateLimit {
            per_second: 10.0,
            burst: 3,
        };
        let mut tat = None;
        let mut admitted = 0;
        for _ in 0..10 {
            let (admission, next) = gcra(&limit, tat, 0.0);
            if admission == Admission::Admitted {
                admitted += 1;
                tat = next;
            }
        }
        assert_eq!(admitted, 3, "the burst, all at one instant");
        let (refused, _) = gcra(&limit, tat, 0.0);
        assert_eq!(
            refused,
            Admission::Refused {
                retry_after: Duration::from_millis(100)
            }
        );
        // One interval later exactly one more is admitted.
        let (admission, next) = gcra(&limit, tat, 100_000.0);
        assert_eq!(admission, Admission::Admitted);
        assert_ne!(gcra(&limit, next, 100_000.0).0, Admission::Admitted);
        // Long idle: the whole burst again.
        let mut tat = next;
        for _ in 0..3 {
            let (admission, next) = gcra(&limit, tat, 10_000_000.0);
            assert_eq!(admission, Admission::Admitted);
            tat = next;
        }
    }
}
