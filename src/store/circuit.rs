//! The database's circuit breaker (PostgreSQL): while the database does not
//! answer, calls fail at once with [`StoreError::Unavailable`](super::StoreError)
//! instead of each waiting out the pool's acquire timeout.
//!
//! A probe of its own (one connection outside the pool) runs `SELECT 1`
//! every [`PROBE_EVERY`], bounded by [`PROBE_TIMEOUT`]. One failed probe opens
//! the circuit; the first one that succeeds closes it, so recovery follows
//! the database's return within a probe interval, with no restart. The
//! probe, not request errors, decides: one slow query under load never
//! turns writes away, and a request never waits on the probe.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};

const PROBE_EVERY: Duration = Duration::from_millis(250);
/// Longer than any healthy `SELECT 1`, so a loaded database is not mistaken
/// for a lost one.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(super) struct Circuit {
    open: AtomicBool,
}

impl Circuit {
    /// Whether calls should fail at once.
    pub(super) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    fn set(&self, open: bool) {
        if self.open.swap(open, Ordering::AcqRel) != open {
            if open {
                tracing::warn!("database did not answer its probe: failing calls at once");
            } else {
                tracing::info!("database answers again");
            }
        }
    }

    /// Starts the probe; it ends when the circuit is dropped.
    pub(super) fn spawn_probe(options: PgConnectOptions) -> Arc<Self> {
        let circuit = Arc::new(Self::default());
        let weak: Weak<Self> = Arc::downgrade(&circuit);
        tokio::spawn(async move {
            let mut conn: Option<PgConnection> = None;
            let mut tick = tokio::time::interval(PROBE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(circuit) = weak.upgrade() else {
                    return;
                };
                let up = tokio::time::timeout(PROBE_TIMEOUT, probe(&mut conn, &options))
                    .await
                    .unwrap_or(false);
                if !up {
                    // A connection that failed (or timed out mid-query) is
                    // not trusted again.
                    conn = None;
                }
                circuit.set(!up);
            }
        });
        circuit
    }
}

async fn probe(conn: &mut Option<PgConnection>, options: &PgConnectOptions) -> bool {
    if conn.is_none() {
        match options.connect().await {
            Ok(fresh) => *conn = Some(fresh),
            Err(_) => return false,
        }
    }
    match conn {
        Some(c) => c.ping().await.is_ok(),
        None => false,
    }
}
