//! Group commit for the job writes on the hot path: recording a job (every
//! acknowledged ingest) and finishing one (every provider answer).
//!
//! Each must be durable before the caller goes on, and a durable commit costs
//! one disk flush. Committing concurrent writes together — one transaction,
//! one flush for the whole batch — multiplies throughput while each caller
//! still hears back only after its write is committed. Batches form by
//! themselves: while one commits, the next requests queue.

use std::sync::Arc;

use sqlx::{AnyConnection, AnyPool, Executor};
use tokio::sync::{mpsc, oneshot, Mutex};

use super::sql::{db_err, enqueue_on, finish_on};
use super::{Enqueued, JobOutcome, Millis, NewJob, StoreError, StoreResult};

const MAX_BATCH: usize = 128;
const QUEUE_DEPTH: usize = 4096;

enum Op {
    Enqueue { job: NewJob, done_since: Millis },
    Finish { job_id: String, outcome: JobOutcome },
}

#[derive(Clone)]
enum Done {
    Enqueued(Box<Enqueued>),
    Finished(bool),
}

impl Op {
    /// One total order over every row a batch touches: batches committing at
    /// once (PostgreSQL) take their locks in the same order and cannot deadlock.
    fn lock_order(&self) -> (&str, &str, &str) {
        match self {
            Op::Enqueue { job, .. } => (&job.subscriber_id, &job.kind, &job.dedupe_key),
            Op::Finish { job_id, .. } => ("", "", job_id),
        }
    }

    async fn apply(&self, conn: &mut AnyConnection) -> StoreResult<Done> {
        match self {
            Op::Enqueue { job, done_since } => enqueue_on(conn, job, *done_since)
                .await
                .map(|e| Done::Enqueued(Box::new(e))),
            Op::Finish { job_id, outcome } => {
                finish_on(conn, job_id, outcome).await.map(Done::Finished)
            }
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
            Done::Finished(_) => Err(StoreError::Corrupt("mismatched group-commit reply".into())),
        }
    }

    pub(super) async fn finish(&self, job_id: &str, outcome: &JobOutcome) -> StoreResult<bool> {
        let op = Op::Finish {
            job_id: job_id.to_owned(),
            outcome: outcome.clone(),
        };
        match self.submit(op).await? {
            Done::Finished(finished) => Ok(finished),
            Done::Enqueued(_) => Err(StoreError::Corrupt("mismatched group-commit reply".into())),
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
