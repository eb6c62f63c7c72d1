//! Group commit for the writes on the hot path: recording a job (every
//! acknowledged ingest), finishing one (every provider answer), recording a
//! scoring decision and updating a customer profile.
//!
//! Each must be durable before the caller goes on, and a durable commit costs
//! one disk flush. Committing concurrent writes together — one transaction,
//! one flush for the whole batch — multiplies throughput while each caller
//! still hears back only after its write is committed. Batches form by
//! themselves: while one commits, the next requests queue.
//!
//! The queue, the batching and the lock order live here; each backend's
//! [`Committer`] applies one batch in one transaction on its own connection
//! type (on SQLite, the one connection that owns writes). Statements are per
//! batch, not per write, where the rows cannot collide: the batch's
//! decisions without an idempotency key go in one multi-row insert, the
//! callback jobs of its new decisions in another, and its customer updates
//! are merged per customer (and per device, per card) into one multi-row
//! upsert each, and the payment references of its new decisions go in one
//! multi-row upsert, and the batch's new decisions are added to the hourly
//! counters the console charts (see [`decision_counts`](super::decision_counts))
//! in one more. A write the caller described is not read back.
//!
//! Batches commit concurrently on PostgreSQL, so each takes its row locks in
//! one global order: first jobs and decisions (sorted by [`Op::lock_order`]),
//! then payment references (sorted by subscriber and reference), then
//! customer profiles (sorted by subscriber and user), last the decision
//! counters (sorted by subscriber, hour and action, and each committer task
//! has a shard of its own). A batch never waits for a decision-level lock
//! while holding a customer lock, and two updates of one customer in a batch
//! simply reuse the lock the first one took.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::customer_memory::CustomerMemory;
use super::decision_counts::{self, HourCount};
use super::gateway_refs::{distinct_refs, RefRow};
use super::shared::inserted_decision;
pub(super) use super::touches::Touches;
use super::{
    CustomerTouch, DecisionRecorded, Enqueued, JobOutcome, Millis, NewDecision, NewJob, StoreError,
    StoreResult,
};

const MAX_BATCH: usize = 128;
const QUEUE_DEPTH: usize = 4096;
/// The bound on one batch's transaction on a shared database. A connection
/// the network froze (no reset, no answer) would otherwise hold the batch,
/// and every score waiting on it, for good; the statement timeout cannot
/// help when the server never sees the statement. A batch that runs out is
/// answered unavailable, which promises nothing: whether it committed or
/// not, no caller was told it did.
const COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

pub(super) enum Op {
    Enqueue {
        job: NewJob,
        done_since: Millis,
    },
    Finish {
        job_id: String,
        outcome: JobOutcome,
    },
    Decision {
        decision: Box<NewDecision>,
        idempotent_since: Millis,
    },
    Touch {
        subscriber_id: String,
        touch: CustomerTouch,
        at: Millis,
    },
}

#[derive(Clone)]
pub(super) enum Done {
    Enqueued(Box<Enqueued>),
    Finished(bool),
    Decision(Box<DecisionRecorded>),
    Touched,
}

fn mismatched() -> StoreError {
    StoreError::Corrupt("mismatched group-commit reply".into())
}

impl Op {
    /// One total order over every row a batch touches: batches committing at
    /// once (PostgreSQL) take their locks in the same order and cannot deadlock.
    ///
    /// A decision's first-phase locks are the rows of its (subscriber,
    /// idempotency key): the older decision whose key it clears and the unique
    /// index entry it inserts; without a key, only its own new row. Its
    /// callback job, if any, is keyed by the new decision's id, which no other
    /// writer can hold. Customer locks come in the second phase, see
    /// [`Op::customer_touch`].
    fn lock_order(&self) -> (u8, &str, &str, &str) {
        match self {
            Op::Enqueue { job, .. } => (0, &job.subscriber_id, &job.kind, &job.dedupe_key),
            Op::Finish { job_id, .. } => (0, "", "", job_id),
            Op::Decision { decision, .. } => match &decision.idempotency_key {
                Some(key) => (1, &decision.subscriber_id, "key", key),
                None => (1, &decision.subscriber_id, "id", &decision.id),
            },
            Op::Touch {
                subscriber_id,
                touch,
                ..
            } => (2, subscriber_id, &touch.user_id, ""),
        }
    }

    /// The customer update the second phase applies for this op, once its
    /// first phase answered `done`: (subscriber, touch, seen at, counted action).
    pub(super) fn customer_touch<'a>(
        &'a self,
        done: &'a Done,
    ) -> Option<(&'a str, &'a CustomerTouch, Millis, Option<&'a str>)> {
        match (self, done) {
            (Op::Decision { decision, .. }, Done::Decision(recorded)) => {
                match (&decision.customer, recorded.as_ref()) {
                    (Some(touch), DecisionRecorded::Inserted(_)) => Some((
                        &decision.subscriber_id,
                        touch,
                        decision.created_at,
                        Some(&decision.action),
                    )),
                    _ => None,
                }
            }
            (
                Op::Touch {
                    subscriber_id,
                    touch,
                    at,
                },
                _,
            ) => Some((subscriber_id, touch, *at, touch.action.as_deref())),
            _ => None,
        }
    }
}

/// One backend's way to apply a batch: a transaction on its own connection.
#[async_trait]
pub(super) trait Committer: Send + Sync + 'static {
    type Tx: Send;
    /// Opens the batch's transaction (on SQLite, taking the write lock first).
    async fn begin(&self) -> StoreResult<Self::Tx>;
    /// The first phase of one op: everything but customer profiles, and but
    /// the inserts below.
    async fn apply(&self, tx: &mut Self::Tx, op: &Op) -> StoreResult<Done>;
    /// Finishes live jobs (distinct ids); answers the ids this call finished.
    async fn finish_jobs(
        &self,
        tx: &mut Self::Tx,
        jobs: &[(&str, &JobOutcome)],
    ) -> StoreResult<Vec<String>>;
    /// Inserts decisions that have no idempotency key, so cannot collide.
    async fn insert_decisions(
        &self,
        tx: &mut Self::Tx,
        decisions: &[&NewDecision],
    ) -> StoreResult<()>;
    /// Inserts jobs as pending; keyed by new decisions, they cannot collide.
    async fn insert_jobs(&self, tx: &mut Self::Tx, jobs: &[&NewJob]) -> StoreResult<()>;
    /// Records the new decisions' payment references (distinct, in key order).
    async fn insert_refs(&self, tx: &mut Self::Tx, refs: &[RefRow<'_>]) -> StoreResult<()>;
    /// The second phase: the customer profile updates.
    async fn touch(&self, tx: &mut Self::Tx, touches: &Touches<'_>) -> StoreResult<()>;
    /// Adds the batch's new decisions to the hourly counters.
    async fn count_decisions(&self, tx: &mut Self::Tx, counts: &[HourCount<'_>])
        -> StoreResult<()>;
    /// Commits; a transaction dropped without it is rolled back.
    async fn commit(&self, tx: Self::Tx) -> StoreResult<()>;
    /// The in-memory copy of customer features to update after each commit,
    /// where the backend keeps one (SQLite).
    fn memory(&self) -> Option<&CustomerMemory>;
}

struct Request {
    op: Op,
    reply: oneshot::Sender<StoreResult<Done>>,
}

pub(super) struct GroupCommit {
    tx: mpsc::Sender<Request>,
}

fn stopped() -> StoreError {
    StoreError::Unavailable(sqlx::Error::PoolClosed)
}

impl GroupCommit {
    /// Starts `committers` tasks that drain one queue; they stop when the
    /// store (the last sender) is dropped.
    pub(super) fn spawn<C: Committer>(committer: C, committers: usize) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let rx = Arc::new(Mutex::new(rx));
        let committer = Arc::new(committer);
        for shard in 0..committers {
            tokio::spawn(run(committer.clone(), rx.clone(), shard as i64));
        }
        Self { tx }
    }

    async fn submit(&self, op: Op) -> StoreResult<Done> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request { op, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    pub(super) async fn enqueue(&self, job: NewJob, done_since: Millis) -> StoreResult<Enqueued> {
        match self.submit(Op::Enqueue { job, done_since }).await? {
            Done::Enqueued(outcome) => Ok(*outcome),
            _ => Err(mismatched()),
        }
    }

    pub(super) async fn finish(&self, job_id: &str, outcome: &JobOutcome) -> StoreResult<bool> {
        let op = Op::Finish {
            job_id: job_id.to_owned(),
            outcome: outcome.clone(),
        };
        match self.submit(op).await? {
            Done::Finished(finished) => Ok(finished),
            _ => Err(mismatched()),
        }
    }

    pub(super) async fn record_decision(
        &self,
        decision: &NewDecision,
        idempotent_since: Millis,
    ) -> StoreResult<DecisionRecorded> {
        let op = Op::Decision {
            decision: Box::new(decision.clone()),
            idempotent_since,
        };
        match self.submit(op).await? {
            Done::Decision(recorded) => Ok(*recorded),
            _ => Err(mismatched()),
        }
    }

    pub(super) async fn touch_customer(
        &self,
        subscriber_id: &str,
        touch: &CustomerTouch,
        at: Millis,
    ) -> StoreResult<()> {
        let op = Op::Touch {
            subscriber_id: subscriber_id.to_owned(),
            touch: touch.clone(),
            at,
        };
        match self.submit(op).await? {
            Done::Touched => Ok(()),
            _ => Err(mismatched()),
        }
    }
}

async fn run<C: Committer>(committer: Arc<C>, rx: Arc<Mutex<mpsc::Receiver<Request>>>, shard: i64) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let received = rx.lock().await.recv_many(&mut batch, MAX_BATCH).await;
        if received == 0 {
            return;
        }
        match bounded_commit(committer.as_ref(), &batch, shard).await {
            Ok(outcomes) => {
                for (request, outcome) in batch.drain(..).zip(outcomes) {
                    let _ = request.reply.send(Ok(outcome));
                }
            }
            // The database is gone: trying each alone would only wait again.
            Err(StoreError::Unavailable(_)) => {
                for request in batch.drain(..) {
                    let _ = request.reply.send(Err(super::timed_out()));
                }
            }
            // One bad request must not fail its neighbours: retry each alone.
            Err(_) => {
                for request in batch.drain(..) {
                    let outcome =
                        bounded_commit(committer.as_ref(), std::slice::from_ref(&request), shard)
                            .await
                            .map(|mut outcomes| outcomes.remove(0));
                    let _ = request.reply.send(outcome);
                }
            }
        }
    }
}

/// [`commit_batch`], bounded by [`COMMIT_TIMEOUT`] on a backend that keeps
/// no copy. One that does (SQLite, a local file) runs every batch to its end:
/// the copy must follow what the file committed.
async fn bounded_commit<C: Committer>(
    committer: &C,
    batch: &[Request],
    shard: i64,
) -> StoreResult<Vec<Done>> {
    if committer.memory().is_some() {
        return commit_batch(committer, batch, shard).await;
    }
    tokio::time::timeout(COMMIT_TIMEOUT, commit_batch(committer, batch, shard))
        .await
        .unwrap_or_else(|_| Err(super::timed_out()))
}

async fn commit_batch<C: Committer>(
    committer: &C,
    batch: &[Request],
    shard: i64,
) -> StoreResult<Vec<Done>> {
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by(|&a, &b| batch[a].op.lock_order().cmp(&batch[b].op.lock_order()));
    let memory = committer.memory();
    // Taken before the transaction, released after the copy is updated: the
    // copy applies writes in the order the file committed them.
    let _order = match memory {
        Some(memory) => Some(memory.write_order().await),
        None => None,
    };
    let mut tx = committer.begin().await?;
    let mut outcomes: Vec<Option<Done>> = vec![None; batch.len()];
    // The batch's job finishes take one statement, after the other jobs and
    // keyed decisions (every batch takes its locks in that order): the first
    // finish of a job in the batch may succeed, a repeat cannot.
    let mut finishes: Vec<(usize, &str, &JobOutcome)> = Vec::new();
    // A decision without an idempotency key locks only its own new row: it
    // joins the batch's one multi-row insert, whatever its place in the order.
    let mut keyless = Vec::new();
    for i in order {
        let outcome = match &batch[i].op {
            Op::Finish { job_id, outcome } => {
                finishes.push((i, job_id, outcome));
                continue;
            }
            Op::Decision { decision, .. } if decision.idempotency_key.is_none() => {
                keyless.push(decision.as_ref());
                Done::Decision(Box::new(DecisionRecorded::Inserted(inserted_decision(
                    decision,
                ))))
            }
            op => committer.apply(&mut tx, op).await?,
        };
        outcomes[i] = Some(outcome);
    }
    if !finishes.is_empty() {
        let mut distinct: Vec<(&str, &JobOutcome)> = Vec::with_capacity(finishes.len());
        for (_, job_id, outcome) in &finishes {
            if !distinct.iter().any(|(id, _)| id == job_id) {
                distinct.push((job_id, outcome));
            }
        }
        let mut finished = committer.finish_jobs(&mut tx, &distinct).await?;
        for (i, job_id, _) in finishes {
            // Answered once per id: a repeat finds the job finished already.
            let first = finished.iter().position(|id| id == job_id);
            outcomes[i] = Some(Done::Finished(
                first.map(|at| finished.swap_remove(at)).is_some(),
            ));
        }
    }
    committer.insert_decisions(&mut tx, &keyless).await?;
    // The decisions this batch inserts (an idempotent repeat inserts none):
    // their callback jobs and payment references go with them.
    let inserted: Vec<&NewDecision> = batch
        .iter()
        .zip(&outcomes)
        .filter_map(|(request, done)| match (&request.op, done) {
            (Op::Decision { decision, .. }, Some(Done::Decision(recorded)))
                if matches!(recorded.as_ref(), DecisionRecorded::Inserted(_)) =>
            {
                Some(decision.as_ref())
            }
            _ => None,
        })
        .collect();
    let callbacks: Vec<&NewJob> = inserted
        .iter()
        .filter_map(|decision| decision.callback.as_ref())
        .collect();
    committer.insert_jobs(&mut tx, &callbacks).await?;
    // After every decision lock, before any customer lock (the lock order).
    let refs = distinct_refs(inserted.iter().copied());
    if !refs.is_empty() {
        committer.insert_refs(&mut tx, &refs).await?;
    }
    let touches = Touches::gather(
        batch
            .iter()
            .zip(&outcomes)
            .filter_map(|(request, done)| request.op.customer_touch(done.as_ref()?)),
    );
    committer.touch(&mut tx, &touches).await?;
    let counts = decision_counts::gather(&inserted, shard);
    if !counts.is_empty() {
        committer.count_decisions(&mut tx, &counts).await?;
    }
    committer.commit(tx).await?;
    // This runs on the committer's task, which no caller can cancel: a
    // committed batch always reaches the copy.
    if let Some(memory) = memory {
        memory.touched(&touches);
    }
    outcomes
        .into_iter()
        .map(|o| o.ok_or_else(|| StoreError::Corrupt("batch outcome missing".into())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::touches::CustomerDelta;

    fn touch(user: &str, visitor: Option<&str>, amount: Option<f64>) -> CustomerTouch {
        CustomerTouch {
            user_id: user.into(),
            visitor_id: visitor.map(str::to_owned),
            card: Some(("411111".into(), "1111".into())),
            amount,
            action: None,
        }
    }

    #[test]
    fn touches_of_one_customer_merge_as_if_applied_one_by_one() {
        let a = touch("u1", Some("v1"), Some(10.0));
        let b = touch("u1", Some("v2"), Some(f64::NAN));
        let c = touch("u1", Some("v1"), Some(25.5));
        let d = touch("u2", None, None);
        let merged = Touches::gather(
            [
                ("s", &a, 300, Some("allow")),
                ("s", &b, 100, Some("block")),
                ("s", &c, 200, Some("allow")),
                ("s", &d, 50, Some("other")),
            ]
            .into_iter(),
        );
        assert_eq!(
            merged.customers,
            [
                CustomerDelta {
                    subscriber_id: "s",
                    user_id: "u1",
                    first_seen: 100,
                    last_seen: 300,
                    decisions_allow: 2,
                    decisions_review: 0,
                    decisions_block: 1,
                    amount_count: 2,
                    amount_total: 35.5,
                    amount_max: Some(25.5),
                },
                CustomerDelta {
                    subscriber_id: "s",
                    user_id: "u2",
                    first_seen: 50,
                    last_seen: 50,
                    decisions_allow: 0,
                    decisions_review: 0,
                    decisions_block: 0,
                    amount_count: 0,
                    amount_total: 0.0,
                    amount_max: None,
                },
            ]
        );
        let devices: Vec<_> = merged
            .devices
            .iter()
            .map(|d| (d.user_id, d.key, d.first_seen, d.last_seen))
            .collect();
        assert_eq!(devices, [("u1", "v1", 200, 300), ("u1", "v2", 100, 100)]);
        let cards: Vec<_> = merged
            .cards
            .iter()
            .map(|k| (k.user_id, k.key, k.first_seen, k.last_seen))
            .collect();
        assert_eq!(
            cards,
            [
                ("u1", ("411111", "1111"), 100, 300),
                ("u2", ("411111", "1111"), 50, 50)
            ]
        );
    }
}
