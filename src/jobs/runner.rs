//! The one loop every kind of job runs on: claim due jobs under a short lease,
//! run them with bounded concurrency, keep their leases alive while they run,
//! and sleep until new work, a finished job or the next due time wakes it.

use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rand::Rng;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

use crate::store::{duration_millis, now_millis, JobKind, JobRow, Millis, Store, StoreResult};

/// How long a claimed job is leased before anyone renews it. A job whose
/// process died is claimed again once this runs out.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often the keeper renews the leases of running jobs: three renewals fit
/// in a lease, so one slow store call does not lose it.
const RENEW_EVERY: Duration = Duration::from_secs(3);
/// Jobs claimed per store call: a backlog is taken in several short
/// statements rather than one that locks many rows at once.
const CLAIM_BATCH: usize = 32;
/// The longest the loop sleeps without looking for due jobs. New work in this
/// process wakes it at once; this finds what no wake announces (jobs enqueued
/// by another process on a shared PostgreSQL, leases that ran out).
const IDLE_POLL: Duration = Duration::from_secs(2);
/// The shortest sleep between looks, so a job that is due but not claimable
/// (or a store that keeps failing) does not spin the loop.
const MIN_SLEEP: Duration = Duration::from_millis(5);

/// What runs the jobs of one kind.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    fn kind(&self) -> JobKind;

    /// How many jobs of its kind this process may hold leased at once; the
    /// runner claims no more. A handler whose jobs spend most of their time
    /// waiting can lease more than it runs, and bound the work itself.
    fn leased(&self) -> usize;

    /// Runs one claimed job, whose lease the runner holds until this returns.
    /// It ends the job (`finish_job`) or puts it back in the queue
    /// (`retry_job`); a job it leaves running is claimed again when its lease
    /// runs out, so a handler that cannot record an outcome need do nothing.
    async fn run(&self, job: JobRow);
}

/// Runs [`Handler`]s on the store's job queue. Clones share the leases, so
/// one keeper renews them for every handler.
#[derive(Clone)]
pub struct Runner {
    store: Arc<dyn Store>,
    leases: Leases,
}

impl Runner {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            leases: Leases::default(),
        }
    }

    /// Crash recovery, once at start-up before any handler runs. On SQLite one
    /// process owns the file, so whatever was running when it last stopped (a
    /// crash, a kill -9) is due again now rather than when its lease would
    /// have run out; answers how many jobs it took back. On PostgreSQL other
    /// processes may be running those jobs: their leases are left to expire.
    pub async fn recover(&self) -> StoreResult<u64> {
        if self.store.backend() != "sqlite" {
            return Ok(0);
        }
        self.store.release_leases(now_millis()).await
    }

    /// Renews the leases of the running jobs of every handler until `stop`.
    pub async fn keep_leases(self, stop: watch::Receiver<bool>) {
        self.leases.keep(self.store, stop).await;
    }

    /// Runs `handler`'s jobs until `stop` turns true, then lets the jobs in
    /// flight finish. `wake` is notified by whoever records a job of its kind.
    pub async fn run<H: Handler>(
        self,
        handler: Arc<H>,
        wake: Arc<Notify>,
        mut stop: watch::Receiver<bool>,
    ) {
        let kind = handler.kind();
        let slots = Arc::new(Semaphore::new(handler.leased().max(1)));
        let mut running = JoinSet::new();
        loop {
            if stopped(&stop) {
                break;
            }
            let free = slots.available_permits().min(CLAIM_BATCH);
            let mut full = false;
            if free > 0 {
                let now = now_millis();
                match self
                    .store
                    .claim_jobs(kind.as_str(), free as i64, now, lease_until(now))
                    .await
                {
                    Ok(jobs) => {
                        full = jobs.len() >= free;
                        for job in jobs {
                            // Only this loop takes slots, so one is free for
                            // every job claimed.
                            let Ok(slot) = slots.clone().acquire_owned().await else {
                                break;
                            };
                            let held = self.leases.hold(&job.id);
                            let handler = handler.clone();
                            running.spawn(async move {
                                handler.run(job).await;
                                drop(held);
                                drop(slot);
                            });
                        }
                    }
                    Err(err) => {
                        tracing::warn!(kind = kind.as_str(), error = %err, "could not claim jobs")
                    }
                }
            }
            while running.try_join_next().is_some() {}
            if slots.available_permits() == 0 {
                // Every slot is taken: nothing can be claimed until a job ends.
                tokio::select! {
                    _ = running.join_next() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            if full {
                continue; // more may be due
            }
            let wait = self.until_due(kind).await;
            tokio::select! {
                _ = wake.notified() => {}
                // A job that ended may be due again sooner than the loop
                // would look (a retry), or have made room for a backlog.
                Some(_) = running.join_next(), if !running.is_empty() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
            }
        }
        // A job that finishes now is not run again after the restart.
        while running.join_next().await.is_some() {}
    }

    /// How long to sleep before the next look: until the next job of `kind`
    /// is due, at most [`IDLE_POLL`].
    async fn until_due(&self, kind: JobKind) -> Duration {
        let wait = match self.store.next_due(kind.as_str()).await {
            Ok(Some(at)) => Duration::from_millis(u64::try_from(at - now_millis()).unwrap_or(0)),
            _ => IDLE_POLL,
        };
        wait.clamp(MIN_SLEEP, IDLE_POLL)
    }
}

/// Whether the runner is to stop: told so, or its owner is gone.
fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// When a lease taken now runs out.
fn lease_until(now: Millis) -> Millis {
    now + duration_millis(LEASE)
}

/// How a kind of job waits between failed attempts, and when it gives up.
#[derive(Debug, Clone)]
pub enum Backoff {
    /// `base` doubling with every attempt, at most `max`, each wait drawn from
    /// 50–100 % of that; `attempts` in all.
    Doubling {
        base: Duration,
        max: Duration,
        attempts: i64,
    },
    /// The n-th wait after the n-th failed attempt, each varied by up to 10 %;
    /// the attempt after the last wait is the last.
    Schedule(Vec<Duration>),
}

impl Backoff {
    /// The wait before the next attempt of a job whose `attempts`-th attempt
    /// just failed, or `None` when that was its last.
    pub fn next(&self, attempts: i64) -> Option<Duration> {
        let (wait, spread) = match self {
            Self::Doubling {
                base,
                max,
                attempts: last,
            } => {
                if attempts >= *last {
                    return None;
                }
                let doublings =
                    u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
                (base.saturating_mul(1 << doublings).min(*max), 0.5..=1.0)
            }
            Self::Schedule(waits) => {
                let index = usize::try_from(attempts.saturating_sub(1)).unwrap_or(0);
                (*waits.get(index)?, 0.9..=1.1)
            }
        };
        Some(jitter(wait, spread))
    }
}

/// `delay` scaled by a random factor from `spread`, so retries of a burst
/// that failed together do not come back together.
fn jitter(delay: Duration, spread: RangeInclusive<f64>) -> Duration {
    delay.mul_f64(rand::thread_rng().gen_range(spread))
}

/// The jobs this process is running, whose leases it keeps alive.
#[derive(Clone, Default)]
struct Leases {
    running: Arc<Mutex<HashSet<String>>>,
    /// Notified as a job's lease is let go, so a keeper that is stopping sees
    /// the last one end without waiting out a renewal period.
    released: Arc<Notify>,
}

/// Holds one job's lease while it runs; the renewals stop when it drops.
struct Held {
    leases: Leases,
    id: String,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Ok(mut running) = self.leases.running.lock() {
            running.remove(&self.id);
        }
        self.leases.released.notify_one();
    }
}

impl Leases {
    fn hold(&self, job_id: &str) -> Held {
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

    /// Renews the leases of the running jobs until `stop`, and after it while
    /// the jobs in flight finish: a lease that ran out during a slow last
    /// delivery would let another process run it a second time.
    async fn keep(self, store: Arc<dyn Store>, mut stop: watch::Receiver<bool>) {
        loop {
            let stopping = stopped(&stop);
            if stopping && self.ids().is_empty() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(RENEW_EVERY) => {}
                _ = stop.wait_for(|stop| *stop), if !stopping => continue,
                _ = self.released.notified(), if stopping => continue,
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use super::*;
    use crate::store::{
        JobOutcome, JobState, NewJob, SqliteStore, SubscriberRow, SubscriberStatus,
    };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubling_backoff_doubles_to_its_ceiling_and_stops_at_the_last_attempt() {
        let backoff = Backoff::Doubling {
            base: ms(500),
            max: ms(60_000),
            attempts: 8,
        };
        for (attempts, ceiling) in [(1, 500), (2, 1_000), (3, 2_000), (7, 32_000)] {
            for _ in 0..50 {
                let wait = backoff.next(attempts).unwrap();
                assert!(
                    wait >= ms(ceiling / 2) && wait <= ms(ceiling),
                    "attempt {attempts}: {wait:?}"
                );
            }
        }
        let capped = Backoff::Doubling {
            base: ms(500),
            max: ms(3_000),
            attempts: 100,
        };
        let wait = capped.next(60).unwrap();
        assert!(wait >= ms(1_500) && wait <= ms(3_000), "{wait:?}");
        assert!(backoff.next(8).is_none());
        assert!(backoff.next(9).is_none());
    }

    #[test]
    fn a_schedule_waits_its_nth_step_within_ten_percent_then_gives_up() {
        let backoff = Backoff::Schedule(vec![ms(1_000), ms(5_000)]);
        for _ in 0..50 {
            let first = backoff.next(1).unwrap();
            assert!(first >= ms(900) && first <= ms(1_100), "{first:?}");
            let second = backoff.next(2).unwrap();
            assert!(second >= ms(4_500) && second <= ms(5_500), "{second:?}");
        }
        assert!(backoff.next(3).is_none());
        assert!(Backoff::Schedule(Vec::new()).next(1).is_none());
    }

    #[test]
    fn job_kinds_read_back_from_their_stored_names() {
        for kind in JobKind::ALL {
            assert_eq!(JobKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(JobKind::DeviceFetch.as_str(), "device_fetch");
        assert_eq!(JobKind::DecisionCallback.as_str(), "decision_callback");
        assert_eq!(JobKind::parse("device-fetch"), None);
    }

    /// Runs each job for a while, counting how many run at once; the first
    /// run of a job named `retry-*` puts it back due shortly.
    struct Counting {
        store: Arc<dyn Store>,
        leased: usize,
        now: AtomicUsize,
        most: AtomicUsize,
        runs: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Handler for Counting {
        fn kind(&self) -> JobKind {
            JobKind::DeviceFetch
        }

        fn leased(&self) -> usize {
            self.leased
        }

        async fn run(&self, job: JobRow) {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(ms(40)).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
            self.runs.lock().unwrap().push(job.id.clone());
            if job.id.starts_with("retry-") && job.attempts == 1 {
                let at = now_millis() + 150;
                self.store
                    .retry_job(&job.id, at, "again", false)
                    .await
                    .unwrap();
                return;
            }
            let outcome = JobOutcome::Succeeded {
                result: "{}".into(),
            };
            self.store.finish_job(&job.id, &outcome).await.unwrap();
        }
    }

    impl Counting {
        fn runs(&self, id: &str) -> usize {
            self.runs
                .lock()
                .unwrap()
                .iter()
                .filter(|r| *r == id)
                .count()
        }
    }

    async fn enqueue(store: &dyn Store, id: &str) {
        let job = NewJob {
            id: id.into(),
            kind: JobKind::DeviceFetch.as_str().into(),
            subscriber_id: "s1".into(),
            dedupe_key: id.into(),
            payload: "{}".into(),
            run_at: None,
        };
        store.enqueue_unique(&job, now_millis()).await.unwrap();
    }

    async fn wait_until(what: &str, within: Duration, done: impl Fn() -> bool) {
        let deadline = Instant::now() + within;
        while !done() {
            assert!(Instant::now() < deadline, "{what} within {within:?}");
            tokio::time::sleep(ms(5)).await;
        }
    }

    #[tokio::test]
    async fn the_runner_bounds_its_jobs_wakes_on_new_work_and_retries_due_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.db");
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::connect(path.to_str().unwrap()).await.unwrap());
        let now = now_millis();
        store
            .create_subscriber(
                &SubscriberRow {
                    id: "s1".into(),
                    name: "s1".into(),
                    status: SubscriberStatus::Active,
                    webhook_secret_sealed: "v1.sealed".into(),
                    created_at: now,
                    updated_at: now,
                    previous_webhook_secret_sealed: None,
                    previous_secret_expires_at: None,
                    signing_scheme: crate::store::SigningScheme::V1,
                    signing_key_sealed: None,
                    signing_public_key: None,
                    previous_signing_key_sealed: None,
                    previous_signing_key_expires_at: None,
                    previous_scheme_expires_at: None,
                },
                &crate::store::Actor::Operator,
            )
            .await
            .unwrap();
        for i in 0..10 {
            enqueue(store.as_ref(), &format!("job-{i}")).await;
        }
        let handler = Arc::new(Counting {
            store: store.clone(),
            leased: 3,
            now: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            runs: Mutex::new(Vec::new()),
        });
        let runner = Runner::new(store.clone());
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(runner.run(handler.clone(), wake.clone(), stopped));

        wait_until("the backlog runs", Duration::from_secs(5), || {
            handler.runs.lock().unwrap().len() == 10
        })
        .await;
        assert_eq!(handler.most.load(Ordering::SeqCst), 3, "at most 3 at once");

        // Idle now: new work is run on the wake, not on the 2 s poll.
        tokio::time::sleep(ms(50)).await;
        let started = Instant::now();
        enqueue(store.as_ref(), "late").await;
        wake.notify_one();
        wait_until("the woken job runs", ms(1_000), || {
            handler.runs("late") == 1
        })
        .await;
        assert!(started.elapsed() < ms(1_000));

        // A job put back due in 150 ms runs again then, not on the poll.
        enqueue(store.as_ref(), "retry-1").await;
        wake.notify_one();
        wait_until("the retry runs", ms(1_500), || handler.runs("retry-1") == 2).await;

        // Stopping lets the job in flight finish.
        enqueue(store.as_ref(), "last").await;
        wake.notify_one();
        wait_until("the last job starts", ms(1_000), || {
            handler.now.load(Ordering::SeqCst) == 1
        })
        .await;
        stop.send(true).unwrap();
        task.await.unwrap();
        assert_eq!(handler.runs("last"), 1);
        let last = store
            .latest_job("s1", JobKind::DeviceFetch.as_str(), "last")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(last.state, JobState::Succeeded);
    }
}
