//! Group commit for work that reads before it writes: a delivery report (which invitation, in
//! which state?), a support platform's delivery (which surveys does it start?), a survey
//! trigger (was this contact asked lately?).
//!
//! Such work is not yet written as a handful of multi-row statements the way the API's answers
//! (`batch.rs`) and SMS replies (`ingest::reply_groups`) are: each request's decision depends
//! on what the one before it wrote. So writer
//! tasks take whatever requests are waiting and run them one after the other in one transaction,
//! committed once; each request is answered only after that commit. Two requests for one
//! contact in the same group are therefore decided in order, the second seeing the first's
//! writes. A request that fails rolls the group back, and every request of the group is then run
//! again alone, so one bad request fails only itself.
//!
//! Why: on SQLite every transaction costs the single write connection a checkout and two more
//! statements (BEGIN, COMMIT), each a hand-off to sqlx's worker thread; on PostgreSQL each
//! commit waits for its WAL flush. A group pays both once.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use tokio::sync::{mpsc, oneshot, Mutex};

/// What a request's work returns, type-erased for the queue.
type Done = Box<dyn Any + Send>;

/// A request's work on the group's transaction. Runs once in the group, and once more alone
/// if the group failed.
pub type WorkFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T, DbErr>> + Send + 't>>;
type Work = Arc<dyn for<'t> Fn(&'t DatabaseTransaction) -> WorkFuture<'t, Done> + Send + Sync>;

struct Job {
    work: Work,
    reply: oneshot::Sender<Result<Done, DbErr>>,
}

/// The queue of requests and its writer tasks.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts `writers` writer tasks on `db` (one on SQLite, which allows one writer), each
    /// committing up to `max_group` requests at a time. They end when the last clone of this
    /// handle is dropped.
    pub fn start(db: DatabaseConnection, writers: usize, max_group: usize) -> GroupCommit {
        let (queue, rx) = mpsc::channel::<Job>(max_group * 16);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..writers.max(1) {
            let (db, rx) = (db.clone(), rx.clone());
            tokio::spawn(async move {
                while let Some(jobs) = next_group(&rx, max_group).await {
                    run_group(&db, jobs).await;
                }
            });
        }
        GroupCommit { queue }
    }

    /// Runs `work` in the next group and answers once that group has committed.
    pub async fn run<T, F>(&self, work: F) -> Result<T, DbErr>
    where
        T: Send + 'static,
        F: for<'t> Fn(&'t DatabaseTransaction) -> WorkFuture<'t, T> + Send + Sync + 'static,
    {
        let work: Work = Arc::new(move |txn| {
            let done = work(txn);
            Box::pin(async move { done.await.map(|t| Box::new(t) as Done) })
        });
        let (reply, answer) = oneshot::channel();
        let stopped = || DbErr::Custom("the group writer has stopped".into());
        self.queue
            .send(Job { work, reply })
            .await
            .map_err(|_| stopped())?;
        let done = answer.await.map_err(|_| stopped())??;
        Ok(*done
            .downcast::<T>()
            .expect("a group answers each request with its own work's value"))
    }
}

/// The next request to arrive and whatever others wait behind it, up to `max`; `None` once
/// every sender is gone. Writers share the receiver, taking turns.
pub async fn next_group<J>(rx: &Mutex<mpsc::Receiver<J>>, max: usize) -> Option<Vec<J>> {
    let mut rx = rx.lock().await;
    let first = rx.recv().await?;
    let mut jobs = vec![first];
    while jobs.len() < max {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
    Some(jobs)
}

async fn run_group(db: &DatabaseConnection, jobs: Vec<Job>) {
    metrics::histogram!("group_commit_size").record(jobs.len() as f64);
    if jobs.len() > 1 {
        match together(db, &jobs).await {
            Ok(done) => {
                for (job, done) in jobs.into_iter().zip(done) {
                    let _ = job.reply.send(Ok(done));
                }
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, size = jobs.len(), "a group failed; its requests run alone");
            }
        }
    }
    for job in jobs {
        let done = alone(db, &job.work).await;
        let _ = job.reply.send(done);
    }
}

async fn together(db: &DatabaseConnection, jobs: &[Job]) -> Result<Vec<Done>, DbErr> {
    let txn = db.begin().await?;
    let mut done = Vec::with_capacity(jobs.len());
    for job in jobs {
        // On an error the transaction is dropped, which rolls it back.
        done.push((job.work)(&txn).await?);
    }
    txn.commit().await?;
    Ok(done)
}

async fn alone(db: &DatabaseConnection, work: &Work) -> Result<Done, DbErr> {
    let txn = db.begin().await?;
    let done = work(&txn).await?;
    txn.commit().await?;
    Ok(done)
}
