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
//! Batches commit concurrently on PostgreSQL, so each takes its row locks in
//! one global order: first jobs and decisions (sorted by [`Op::lock_order`]),
//! then customer profiles (sorted by subscriber and user). A batch never waits
//! for a decision-level lock while holding a customer lock, and two updates of
//! one customer in a batch simply reuse the lock the first one took.

use std::sync::Arc;

use sqlx::{AnyConnection, AnyPool, Executor};
use tokio::sync::{mpsc, oneshot, Mutex};

use super::sql::{db_err, enqueue_on, finish_on, record_decision_on, touch_customer_on};
use super::{
    CustomerTouch, DecisionRecorded, Enqueued, JobOutcome, Millis, NewDecision, NewJob, StoreError,
    StoreResult,
};

const MAX_BATCH: usize = 128;
const QUEUE_DEPTH: usize = 4096;

enum Op {
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
enum Done {
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

    /// The first phase: everything but customer profiles.
    async fn apply(&self, conn: &mut AnyConnection) -> StoreResult<Done> {
        match self {
            Op::Enqueue { job, done_since } => enqueue_on(conn, job, *done_since)
                .await
                .map(|e| Done::Enqueued(Box::new(e))),
            Op::Finish { job_id, outcome } => {
                finish_on(conn, job_id, outcome).await.map(Done::Finished)
            }
            Op::Decision {
                decision,
                idempotent_since,
            } => record_decision_on(conn, decision, *idempotent_since)
                .await
                .map(|d| Done::Decision(Box::new(d))),
            Op::Touch { .. } => Ok(Done::Touched),
        }
    }

    /// The customer update the second phase applies for this op, once its
    /// first phase answered `done`: (subscriber, touch, seen at, counted action).
    fn customer_touch<'a>(
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
    pub(super) fn spawn(pool: AnyPool, writer: Option<Arc<Mutex<()>>>, committers: usize) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..committers {
            tokio::spawn(run(pool.clone(), writer.clone(), rx.clone()));
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

async fn run(
    pool: AnyPool,
    writer: Option<Arc<Mutex<()>>>,
    rx: Arc<Mutex<mpsc::Receiver<Request>>>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        let received = rx.lock().await.recv_many(&mut batch, MAX_BATCH).await;
        if received == 0 {
            return;
        }
        let _turn = match &writer {
            Some(writer) => Some(writer.lock().await),
            None => None,
        };
        match commit_batch(&pool, &batch, writer.is_some()).await {
            Ok(outcomes) => {
                for (request, outcome) in batch.drain(..).zip(outcomes) {
                    let _ = request.reply.send(Ok(outcome));
                }
            }
            // One bad request must not fail its neighbours: retry each alone.
            Err(_) => {
                for request in batch.drain(..) {
                    let outcome =
                        commit_batch(&pool, std::slice::from_ref(&request), writer.is_some())
                            .await
                            .map(|mut outcomes| outcomes.remove(0));
                    let _ = request.reply.send(outcome);
                }
            }
        }
    }
}

async fn commit_batch(pool: &AnyPool, batch: &[Request], sqlite: bool) -> StoreResult<Vec<Done>> {
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by(|&a, &b| batch[a].op.lock_order().cmp(&batch[b].op.lock_order()));
    let mut conn = pool.acquire().await.map_err(db_err)?;
    // SQLite: take the write lock up front. A deferred transaction that reads
    // first fails at once with SQLITE_BUSY when another process (the CLI)
    // writes meanwhile; BEGIN IMMEDIATE waits for the lock instead.
    let begin = if sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" };
    conn.execute(begin).await.map_err(db_err)?;
    let mut outcomes: Vec<Option<Done>> = vec![None; batch.len()];
    let mut written = Ok(());
    for i in order {
        match batch[i].op.apply(&mut conn).await {
            Ok(outcome) => outcomes[i] = Some(outcome),
            Err(err) => {
                written = Err(err);
                break;
            }
        }
    }
    if written.is_ok() {
        written = touch_customers(&mut conn, batch, &outcomes).await;
    }
    if let Err(err) = written {
        let _ = conn.execute("ROLLBACK").await;
        return Err(err);
    }
    if let Err(err) = conn.execute("COMMIT").await {
        let _ = conn.execute("ROLLBACK").await;
        return Err(db_err(err));
    }
    outcomes
        .into_iter()
        .map(|o| o.ok_or_else(|| StoreError::Corrupt("batch outcome missing".into())))
        .collect()
}

/// The second phase of a batch: the customer profile updates, in (subscriber,
/// user) order.
async fn touch_customers(
    conn: &mut AnyConnection,
    batch: &[Request],
    outcomes: &[Option<Done>],
) -> StoreResult<()> {
    let mut touches: Vec<_> = batch
        .iter()
        .zip(outcomes)
        .filter_map(|(request, done)| request.op.customer_touch(done.as_ref()?))
        .collect();
    touches.sort_by(|a, b| (a.0, &a.1.user_id).cmp(&(b.0, &b.1.user_id)));
    for (subscriber_id, touch, at, action) in touches {
        touch_customer_on(conn, subscriber_id, touch, at, action).await?;
    }
    Ok(())
}
