//! Durable background work: fetching a device's analysis from its provider
//! after an ingest, and delivering a decision's signed callback.
//!
//! Both lease jobs from the store and share what makes leasing safe: a short
//! lease that the [`Leases`] keeper renews while a job runs, so a job whose
//! process died is taken again within seconds rather than minutes, and one
//! jittered backoff.

pub mod callbacks;
pub mod device_fetch;

use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::watch;

use crate::store::{duration_millis, now_millis, Millis, Store};

pub use self::callbacks::{CallbackConfig, CallbackWorker};
pub use self::device_fetch::{PrefetchConfig, Prefetcher, Upstream};

/// How long a claimed job is leased before anyone renews it. A job whose
/// process died is claimed again once this runs out.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often the keeper renews the leases of running jobs: three renewals fit
/// in a lease, so one slow store call does not lose it.
const RENEW_EVERY: Duration = Duration::from_secs(3);

/// When a lease taken now runs out.
pub fn lease_until(now: Millis) -> Millis {
    now + duration_millis(LEASE)
}

/// `delay` scaled by a random factor from `spread`, so retries of a burst
/// that failed together do not come back together.
pub fn jitter(delay: Duration, spread: RangeInclusive<f64>) -> Duration {
    delay.mul_f64(rand::thread_rng().gen_range(spread))
}

/// The jobs this process is running, whose leases it keeps alive.
#[derive(Clone, Default)]
pub struct Leases {
    running: Arc<Mutex<HashSet<String>>>,
}

/// Holds one job's lease while it runs; the renewals stop when it drops.
pub struct Held {
    leases: Leases,
    id: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Ok(mut running) = self.leases.running.lock() {
            running.remove(&self.id);
        }
    }
}

impl Leases {
    pub fn hold(&self, job_id: &str) -> Held {
        if let Ok(mut running) = self.running.lock() {
            running.insert(job_id.to_owned());
        }
        Held {
            leases: self.clone(),
            id: job_id.to_owned(),
        }
    }

    fn ids(&self) -> Vec<String> {
        self.running
            .lock()
            .map(|running| running.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Renews the leases of the running jobs until `stop`, and once more
    /// after it, while the last jobs finish.
    pub async fn keep(self, store: Arc<dyn Store>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(RENEW_EVERY) => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
            let ids = self.ids();
            if ids.is_empty() {
                continue;
            }
            if let Err(err) = store.renew_leases(&ids, lease_until(now_millis())).await {
                tracing::warn!(error = %err, jobs = ids.len(), "could not renew job leases");
            }
        }
    }
}
