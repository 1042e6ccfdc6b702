//! Group commit: writer tasks take whatever requests are waiting and apply them in one
//! transaction, committed once; each request is answered only after that commit.
//!
//! A kind of request says how a group is applied by implementing [`SetWork`]: SMS replies
//! (`ingest::reply_groups`), survey triggers (`policy::schedule`) and platform deliveries
//! (`ingest::platforms`) gather what the whole group reads in a few statements, decide each
//! request in memory in arrival order, and write with one multi-row statement per table.
//! [`GroupCommit`] runs any closure's work, one request after the other in the group's
//! transaction (delivery reports).
//!
//! A group that fails is rolled back, and each of its requests is applied again alone, so one
//! bad request fails only itself. When the database is unreachable, every request of the group
//! gets that error at once instead: alone they would fail the same way, each after a timeout.
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

/// Work on a group's transaction.
pub type WorkFuture<'t, T> = Pin<Box<dyn Future<Output = Result<T, DbErr>> + Send + 't>>;

/// How a group of one kind of request is applied.
pub trait SetWork: Send + Sync + 'static {
    type Request: Send + Sync + 'static;
    type Answer: Send + 'static;

    /// The name the group-size histogram is labelled with.
    const KIND: &'static str;

    /// Applies `requests` in `txn`: one answer per request, in their order. An error rolls the
    /// group back; its requests are then applied alone.
    fn apply<'t>(
        &'t self,
        txn: &'t DatabaseTransaction,
        requests: &'t [&'t Self::Request],
    ) -> WorkFuture<'t, Vec<Self::Answer>>;

    /// Applies one request of a failed group on its own.
    fn apply_alone<'t>(
        &'t self,
        txn: &'t DatabaseTransaction,
        request: &'t Self::Request,
    ) -> WorkFuture<'t, Self::Answer> {
        Box::pin(async move {
            let one = [request];
            let mut answers = self.apply(txn, &one).await?;
            answers
                .pop()
                .ok_or_else(|| DbErr::Custom("a group answered no request".into()))
        })
    }
}

struct Job<W: SetWork> {
    request: W::Request,
    answer: oneshot::Sender<Result<W::Answer, DbErr>>,
}

/// The queue of one kind of request and its writer tasks.
pub struct SetCommit<W: SetWork> {
    queue: mpsc::Sender<Job<W>>,
}

impl<W: SetWork> Clone for SetCommit<W> {
    fn clone(&self) -> Self {
        SetCommit {
            queue: self.queue.clone(),
        }
    }
}

impl<W: SetWork> SetCommit<W> {
    /// Starts `writers` writer tasks on `db` (one on SQLite, which allows one writer), each
    /// applying up to `max_group` requests at a time. They end when the last clone of this
    /// handle is dropped.
    pub fn start(
        db: DatabaseConnection,
        work: Arc<W>,
        writers: usize,
        max_group: usize,
    ) -> SetCommit<W> {
        let (queue, rx) = mpsc::channel::<Job<W>>(max_group * 16);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..writers.max(1) {
            let (db, work, rx) = (db.clone(), work.clone(), rx.clone());
            tokio::spawn(async move {
                while let Some(jobs) = next_group(&rx, max_group).await {
                    run_group(&db, &*work, jobs).await;
                }
            });
        }
        SetCommit { queue }
    }

    /// Applies `request` in the next group and answers once that group has committed.
    pub async fn run(&self, request: W::Request) -> Result<W::Answer, DbErr> {
        let (answer, answered) = oneshot::channel();
        let stopped = || DbErr::Custom(format!("the {} writer has stopped", W::KIND));
        self.queue
            .send(Job { request, answer })
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
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

async fn run_group<W: SetWork>(db: &DatabaseConnection, work: &W, jobs: Vec<Job<W>>) {
    metrics::histogram!("group_commit_size", "kind" => W::KIND).record(jobs.len() as f64);
    let requests: Vec<&W::Request> = jobs.iter().map(|j| &j.request).collect();
    let failed = match together(db, work, &requests).await {
        Ok(answers) => {
            for (job, answer) in jobs.into_iter().zip(answers) {
                let _ = job.answer.send(Ok(answer));
            }
            return;
        }
        Err(e) => e,
    };
    if jobs.len() == 1 || super::is_unavailable(&failed) {
        let message = failed.to_string();
        let mut failed = Some(failed);
        for job in jobs {
            // DbErr is not Clone: the first request gets the error itself, the others its text
            // (an unavailable database stays recognizable by it).
            let e = failed
                .take()
                .unwrap_or_else(|| DbErr::Conn(sea_orm::RuntimeErr::Internal(message.clone())));
            let _ = job.answer.send(Err(e));
        }
        return;
    }
    tracing::debug!(kind = W::KIND, error = %failed, size = jobs.len(), "a group failed; its requests run alone");
    for job in jobs {
        let alone = async {
            let txn = db.begin().await?;
            let answer = work.apply_alone(&txn, &job.request).await?;
            txn.commit().await?;
            Ok(answer)
        };
        let _ = job.answer.send(alone.await);
    }
}

async fn together<W: SetWork>(
    db: &DatabaseConnection,
    work: &W,
    requests: &[&W::Request],
) -> Result<Vec<W::Answer>, DbErr> {
    let txn = db.begin().await?;
    // On an error the transaction is dropped, which rolls it back.
    let answers = work.apply(&txn, requests).await?;
    if answers.len() != requests.len() {
        return Err(DbErr::Custom(format!(
            "a {} group answered {} of {} requests",
            W::KIND,
            answers.len(),
            requests.len()
        )));
    }
    txn.commit().await?;
    Ok(answers)
}

/// What a closure's work returns, type-erased for the queue.
type Done = Box<dyn Any + Send>;
type Work = Arc<dyn for<'t> Fn(&'t DatabaseTransaction) -> WorkFuture<'t, Done> + Send + Sync>;

/// Requests whose work is a closure, applied one after the other in the group's transaction:
/// two requests for one contact in the same group are decided in order, the second seeing the
/// first's writes.
pub struct InTurn;

impl SetWork for InTurn {
    type Request = Work;
    type Answer = Done;
    const KIND: &'static str = "in_turn";

    fn apply<'t>(
        &'t self,
        txn: &'t DatabaseTransaction,
        requests: &'t [&'t Work],
    ) -> WorkFuture<'t, Vec<Done>> {
        Box::pin(async move {
            let mut done = Vec::with_capacity(requests.len());
            for work in requests {
                done.push(work(txn).await?);
            }
            Ok(done)
        })
    }
}

/// Group commit of closures' work ([`InTurn`]).
#[derive(Clone)]
pub struct GroupCommit {
    writer: SetCommit<InTurn>,
}

impl GroupCommit {
    pub fn start(db: DatabaseConnection, writers: usize, max_group: usize) -> GroupCommit {
        GroupCommit {
            writer: SetCommit::start(db, Arc::new(InTurn), writers, max_group),
        }
    }

    /// Runs `work` in the next group and answers once that group has committed. `work` runs
    /// once in the group, and once more alone if the group failed.
    pub async fn run<T, F>(&self, work: F) -> Result<T, DbErr>
    where
        T: Send + 'static,
        F: for<'t> Fn(&'t DatabaseTransaction) -> WorkFuture<'t, T> + Send + Sync + 'static,
    {
        let work: Work = Arc::new(move |txn| {
            let done = work(txn);
            Box::pin(async move { done.await.map(|t| Box::new(t) as Done) })
        });
        let done = self.writer.run(work).await?;
        Ok(*done
            .downcast::<T>()
            .expect("a group answers each request with its own work's value"))
    }
}
