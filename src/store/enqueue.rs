//! Group commit for job records.
//!
//! Every acknowledged ingest needs its job row durable before the `202`, and a
//! durable commit costs one disk flush. Committing concurrent ingests together
//! — one transaction, one flush for the whole batch — multiplies throughput
//! while each caller still hears back only after its row is committed.
//! Batches form by themselves: while one commits, the next requests queue.

use std::sync::Arc;

use sqlx::AnyPool;
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
        match commit_batch(&pool, &batch).await {
            Ok(outcomes) => {
                for (request, outcome) in batch.drain(..).zip(outcomes) {
                    let _ = request.reply.send(Ok(outcome));
                }
            }
            // One bad request must not fail its neighbours: retry each alone.
            Err(_) => {
                for request in batch.drain(..) {
                    let outcome = commit_batch(&pool, std::slice::from_ref(&request))
                        .await
                        .map(|mut outcomes| outcomes.remove(0));
                    let _ = request.reply.send(outcome);
                }
            }
        }
    }
}

async fn commit_batch(pool: &AnyPool, batch: &[Request]) -> StoreResult<Vec<Enqueued>> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for request in batch {
        outcomes.push(enqueue_on(&mut tx, &request.job, request.done_since).await?);
    }
    tx.commit().await.map_err(db_err)?;
    Ok(outcomes)
}
