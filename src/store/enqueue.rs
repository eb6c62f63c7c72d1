//! Group commit for job records.
//!
//! Every acknowledged ingest needs its job row durable before the `202`, and a
//! durable commit costs one disk flush. Committing concurrent ingests together
//! — one transaction, one flush for the whole batch — multiplies throughput
//! while each caller still hears back only after its row is committed.
//! Batches form by themselves: while one commits, the next requests queue.

use std::sync::Arc;

use sqlx::{AnyPool, Executor};
use tokio::sync::{mpsc, oneshot, Mutex};

use super::sql::{db_err, enqueue_on};
use super::{Enqueued, Millis, NewJob, StoreError, StoreResult};

const MAX_BATCH: usize = 128;
const QUEUE_DEPTH: usize = 4096;

struct Request {
    job: NewJob,
    done_since: Millis,
    reply: oneshot::Sender<StoreResult<Enqueued>>,
}

pub(super) struct Enqueuer {
    tx: mpsc::Sender<Request>,
}

impl Enqueuer {
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

    pub(super) async fn enqueue(&self, job: NewJob, done_since: Millis) -> StoreResult<Enqueued> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable(sqlx::Error::PoolClosed);
        self.tx
            .send(Request {
                job,
                done_since,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
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

async fn commit_batch(
    pool: &AnyPool,
    batch: &[Request],
    sqlite: bool,
) -> StoreResult<Vec<Enqueued>> {
    // Rows are written in key order, so two batches committing at once (on
    // PostgreSQL) take their index locks in the same order and cannot deadlock.
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| {
            let job = &batch[i].job;
            (&job.subscriber_id, &job.kind, &job.dedupe_key)
        };
        key(a).cmp(&key(b))
    });
    let mut conn = pool.acquire().await.map_err(db_err)?;
    // SQLite: take the write lock up front. A deferred transaction that reads
    // first fails at once with SQLITE_BUSY when another process (the CLI)
    // writes meanwhile; BEGIN IMMEDIATE waits for the lock instead.
    let begin = if sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" };
    conn.execute(begin).await.map_err(db_err)?;
    let mut outcomes: Vec<Option<Enqueued>> = vec![None; batch.len()];
    let mut written = Ok(());
    for i in order {
        match enqueue_on(&mut conn, &batch[i].job, batch[i].done_since).await {
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
