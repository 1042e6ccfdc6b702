//! Ingest: an accepted answer is written with its raw event, contact and outbox events in one
//! transaction, all or nothing, and only then acknowledged.
//!
//! Answers are written by writer tasks that take whatever requests are waiting (up to
//! `ingest.max_batch`) and commit them together (group commit): one SQLite writer keeps up with
//! thousands of answers a second this way. A request is answered only after its batch commits,
//! so an acknowledged answer survives a crash of the process.
//!
//! Idempotency rests on unique keys, not on a check before the write: a provider's retry (or an
//! `Idempotency-Key` sent twice, even concurrently, even to two replicas) meets the unique key on
//! (tenant, provider, provider_ref), and the later one answers with the stored record.

use std::collections::HashSet;
use std::sync::Arc;

use channels::model::{Feedback, FeedbackInput, InvalidValue};
use sea_orm::{DbErr, TransactionTrait};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, Notify};
use uuid::Uuid;

use crate::events::Event;
use crate::policy::schedule::Scheduler;
use crate::store::batch::{self, Owned, RawRow, Route};
use crate::store::cache::Caches;
use crate::store::feedback as rows;
use crate::store::group::{GroupCommit, SetCommit};
use crate::store::tenants::hex;
use crate::store::{self, Db};

pub mod delivery;
pub mod links;
pub mod mail;
pub mod platforms;
pub mod replies;
mod reply_groups;

pub use crate::events::{FEEDBACK_CREATED, FEEDBACK_UPDATED};

#[derive(Debug)]
pub enum Accepted {
    /// Stored now.
    Created(Feedback),
    /// Stored before under the same provider reference; nothing new was written.
    Replayed(Feedback),
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Invalid(#[from] InvalidValue),
    /// The provider reference was used before for a different request body.
    #[error("{0}")]
    Conflict(String),
    /// The database failed; `unavailable` when it could not be reached (worth a retry).
    #[error("storage: {message}")]
    Storage { unavailable: bool, message: String },
}

impl From<DbErr> for IngestError {
    fn from(e: DbErr) -> Self {
        IngestError::Storage {
            unavailable: store::is_unavailable(&e),
            message: e.to_string(),
        }
    }
}

/// The request as it arrived: stored verbatim beside the record it produced.
pub struct Received<'a> {
    pub kind: &'a str,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// [`Received`], owned: for work that runs in a group commit (and again alone if the group
/// fails).
pub struct OwnedReceived {
    kind: String,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl From<&Received<'_>> for OwnedReceived {
    fn from(r: &Received<'_>) -> Self {
        OwnedReceived {
            kind: r.kind.to_owned(),
            content_type: r.content_type.map(str::to_owned),
            body: r.body.to_vec(),
        }
    }
}

impl OwnedReceived {
    pub fn borrow(&self) -> Received<'_> {
        Received {
            kind: &self.kind,
            content_type: self.content_type.as_deref(),
            body: &self.body,
        }
    }
}

pub fn sha256_hex(body: &[u8]) -> String {
    hex(&Sha256::digest(body))
}

/// One answer waiting for its batch.
struct Job {
    tenant_id: Uuid,
    kind: String,
    content_type: Option<String>,
    payload: String,
    body_sha256: String,
    input: FeedbackInput,
    reply: oneshot::Sender<Result<Written, IngestError>>,
}

enum Written {
    Created(Box<Feedback>),
    /// The provider reference was stored already (before, or earlier in the same batch).
    Duplicate,
}

/// What ingest needs: the database (for replays) and the writer queue.
#[derive(Clone)]
pub struct Ingest {
    db: Db,
    sinks: Arc<[Route]>,
    writer: mpsc::Sender<Job>,
    /// Group commit for delivery reports, one after the other in a group's transaction.
    group: GroupCommit,
    /// Replies, a group at a time with set-based statements.
    replies: SetCommit<reply_groups::Replies>,
    /// Platform deliveries, a group at a time; the surveys they start decided together.
    deliveries: SetCommit<platforms::Deliveries>,
    relay_wake: Arc<Notify>,
}

impl Ingest {
    /// Starts `writers` writer tasks (one on SQLite, which allows one writer at a time). They end
    /// when the last clone of this handle is dropped.
    pub fn start(
        db: Db,
        sinks: Arc<[Route]>,
        scheduler: Arc<Scheduler>,
        relay_wake: Arc<Notify>,
        writers: usize,
        max_batch: usize,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Job>(max_batch * 16);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..writers.max(1) {
            let (db, sinks, rx, wake) = (db.clone(), sinks.clone(), rx.clone(), relay_wake.clone());
            tokio::spawn(async move {
                while let Some(jobs) = crate::store::group::next_group(&rx, max_batch).await {
                    write_batch(&db, &sinks, jobs).await;
                    wake.notify_one();
                }
            });
        }
        let group = GroupCommit::start(db.write.clone(), writers, max_batch);
        let replies = SetCommit::start(
            db.write.clone(),
            Arc::new(reply_groups::Replies {
                sinks: sinks.clone(),
                caches: db.caches.clone(),
            }),
            writers,
            max_batch,
        );
        let deliveries = SetCommit::start(
            db.write.clone(),
            Arc::new(platforms::Deliveries {
                sinks: sinks.clone(),
                caches: db.caches.clone(),
                scheduler,
            }),
            writers,
            max_batch,
        );
        Ingest {
            db,
            sinks: sinks.clone(),
            writer: tx,
            group,
            replies,
            deliveries,
            relay_wake,
        }
    }

    pub fn wake_relay(&self) {
        self.relay_wake.notify_one();
    }

    pub async fn submit(
        &self,
        tenant_id: Uuid,
        received: Received<'_>,
        input: FeedbackInput,
    ) -> Result<Accepted, IngestError> {
        let (channel, provider) = (input.channel.clone(), input.provider.clone());
        let result = self.submit_inner(tenant_id, received, input).await;
        let outcome = match &result {
            Ok(Accepted::Created(_)) => "accepted",
            Ok(Accepted::Replayed(_)) => "duplicate",
            Err(IngestError::Invalid(_)) => "rejected",
            Err(IngestError::Conflict(_)) => "conflict",
            Err(IngestError::Storage { .. }) => "error",
        };
        metrics::counter!(
            "feedback_ingested_total",
            "channel" => channel,
            "provider" => provider,
            "outcome" => outcome,
        )
        .increment(1);
        result
    }

    async fn submit_inner(
        &self,
        tenant_id: Uuid,
        received: Received<'_>,
        input: FeedbackInput,
    ) -> Result<Accepted, IngestError> {
        input.check()?;
        let body_sha256 = sha256_hex(received.body);
        if let Some(reference) = &input.provider_ref {
            // A retry of something stored is answered without taking a writer's time.
            if let Some(done) = self
                .replay(tenant_id, &input.provider, reference, &body_sha256)
                .await?
            {
                return Ok(done);
            }
        }
        let (reply, answer) = oneshot::channel();
        let provider = input.provider.clone();
        let reference = input.provider_ref.clone();
        let job = Job {
            tenant_id,
            kind: received.kind.to_owned(),
            content_type: received.content_type.map(str::to_owned),
            payload: String::from_utf8_lossy(received.body).into_owned(),
            body_sha256: body_sha256.clone(),
            input,
            reply,
        };
        let stopped = || IngestError::Storage {
            unavailable: true,
            message: "ingest is shutting down".into(),
        };
        self.writer.send(job).await.map_err(|_| stopped())?;
        match answer.await.map_err(|_| stopped())?? {
            Written::Created(record) => Ok(Accepted::Created(*record)),
            Written::Duplicate => {
                let reference = reference.unwrap_or_default();
                self.replay(tenant_id, &provider, &reference, &body_sha256)
                    .await?
                    .ok_or_else(|| {
                        DbErr::RecordNotFound(format!("raw event {provider}/{reference}")).into()
                    })
            }
        }
    }

    /// The stored answer for a provider reference: replayed when the body is the same,
    /// a conflict when it is not, `None` when nothing is stored under it.
    async fn replay(
        &self,
        tenant_id: Uuid,
        provider: &str,
        reference: &str,
        body_sha256: &str,
    ) -> Result<Option<Accepted>, IngestError> {
        let Some(raw) = rows::find_raw_event(&self.db.read, tenant_id, provider, reference).await?
        else {
            return Ok(None);
        };
        if raw.body_sha256 != body_sha256 {
            return Err(IngestError::Conflict(format!(
                "the reference `{reference}` was used before for a different request"
            )));
        }
        let stored = rows::find_by_provider_ref(&self.db.read, tenant_id, provider, reference)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(format!("feedback for raw event {}", raw.id)))?;
        Ok(Some(Accepted::Replayed(stored)))
    }
}

/// Writes a batch in one transaction and answers every job: its own validation error, its
/// record, a duplicate, or, when the transaction fails, the storage error.
///
/// A transaction that fails for a reason other than an unreachable database was failed by one
/// of its jobs (a value the database refuses); the batch is then written again one job per
/// transaction, so that every good job is stored and only the bad one fails.
async fn write_batch(db: &Db, sinks: &[Route], jobs: Vec<Job>) {
    let mut outcomes: Vec<Option<Result<Written, IngestError>>> =
        jobs.iter().map(|_| None).collect();
    if let Err(e) = write_transaction(db, sinks, &jobs, &mut outcomes).await {
        let unavailable = store::is_unavailable(&e);
        if unavailable {
            tracing::warn!(error = %e, batch = jobs.len(), "ingest batch failed: database unavailable");
            fail_all(&mut outcomes, &e);
        } else if jobs.len() == 1 {
            tracing::error!(error = %e, "ingest write failed");
            fail_all(&mut outcomes, &e);
        } else {
            tracing::warn!(error = %e, batch = jobs.len(), "ingest batch failed; writing its answers one by one");
            for i in 0..jobs.len() {
                outcomes[i] = None;
                let one = &mut outcomes[i..=i];
                if let Err(e) = write_transaction(db, sinks, &jobs[i..=i], one).await {
                    if !store::is_unavailable(&e) {
                        tracing::error!(error = %e, "ingest write failed");
                    }
                    fail_all(one, &e);
                }
            }
        }
    }
    for (job, outcome) in jobs.into_iter().zip(outcomes) {
        let _ = job.reply.send(outcome.unwrap_or(Err(IngestError::Storage {
            unavailable: false,
            message: "job left unanswered".into(),
        })));
    }
}

/// Answers every job of a failed transaction with its error. Validation errors found before
/// the failure stay: they are the job's own answer whatever happened to the others.
fn fail_all(outcomes: &mut [Option<Result<Written, IngestError>>], e: &DbErr) {
    let unavailable = store::is_unavailable(e);
    for outcome in outcomes.iter_mut() {
        if !matches!(outcome, Some(Err(IngestError::Invalid(_)))) {
            *outcome = Some(Err(IngestError::Storage {
                unavailable,
                message: e.to_string(),
            }));
        }
    }
}

async fn write_transaction(
    db: &Db,
    sinks: &[Route],
    jobs: &[Job],
    outcomes: &mut [Option<Result<Written, IngestError>>],
) -> Result<(), DbErr> {
    let now = store::now();
    let txn = db.write.begin().await?;

    // A named contact or invitation must be one of the tenant's.
    type NamedId = fn(&FeedbackInput) -> Option<Uuid>;
    let checks: [(Owned, &'static str, NamedId); 2] = [
        (Owned::Contacts, "contact.id", |i| i.contact.id),
        (Owned::Invitations, "invitation_id", |i| i.invitation_id),
    ];
    for (table, field, id_of) in checks {
        let named: Vec<(Uuid, Uuid)> = jobs
            .iter()
            .filter_map(|j| id_of(&j.input).map(|id| (j.tenant_id, id)))
            .collect();
        if named.is_empty() {
            continue;
        }
        let known = batch::existing(&txn, table, &named).await?;
        for (i, job) in jobs.iter().enumerate() {
            match id_of(&job.input) {
                Some(id) if outcomes[i].is_none() && !known.contains(&(job.tenant_id, id)) => {
                    outcomes[i] = Some(Err(InvalidValue::new(
                        field,
                        format!("{id} does not exist"),
                    )
                    .into()));
                }
                _ => {}
            }
        }
    }

    let live: Vec<usize> = (0..jobs.len()).filter(|&i| outcomes[i].is_none()).collect();
    let raw_ids: Vec<Uuid> = live.iter().map(|_| channels::model::new_id()).collect();
    let raw_rows: Vec<RawRow> = live
        .iter()
        .zip(&raw_ids)
        .map(|(&i, id)| {
            let j = &jobs[i];
            RawRow {
                id: *id,
                tenant_id: j.tenant_id,
                provider: &j.input.provider,
                provider_ref: j.input.provider_ref.as_deref(),
                kind: &j.kind,
                body_sha256: &j.body_sha256,
                signed_sha256: None,
                content_type: j.content_type.as_deref(),
                payload: &j.payload,
            }
        })
        .collect();
    let inserted: HashSet<Uuid> = batch::insert_raw_events(&txn, &raw_rows, now).await?;

    let mut winners = Vec::new();
    for (&i, raw_id) in live.iter().zip(&raw_ids) {
        if inserted.contains(raw_id) {
            winners.push((i, *raw_id));
        } else {
            outcomes[i] = Some(Ok(Written::Duplicate));
        }
    }
    let requests: Vec<(Uuid, &channels::model::ContactRef)> = winners
        .iter()
        .map(|&(i, _)| (jobs[i].tenant_id, &jobs[i].input.contact))
        .collect();
    let contacts = crate::store::contacts::resolve_contacts(&txn, &requests, now).await?;

    let records: Vec<(Feedback, Uuid)> = winners
        .iter()
        .zip(contacts)
        .map(|(&(i, raw_id), contact_id)| (new_record(&jobs[i], contact_id, now), raw_id))
        .collect();
    let refs: Vec<(&Feedback, Option<Uuid>)> = records.iter().map(|(f, r)| (f, Some(*r))).collect();
    batch::insert_feedback(&txn, &refs).await?;
    let events = records
        .iter()
        .map(|(f, _)| feedback_event(FEEDBACK_CREATED, f, now))
        .collect::<Result<Vec<_>, DbErr>>()?;
    let out = Outputs {
        sinks,
        caches: &db.caches,
    };
    queue_answers(&txn, out, &events, now).await?;
    txn.commit().await?;

    for ((i, _), (record, _)) in winners.iter().zip(records) {
        outcomes[*i] = Some(Ok(Written::Created(Box::new(record))));
    }
    Ok(())
}

/// The outbox event that carries a record to the sinks.
fn feedback_event(
    kind: &str,
    record: &Feedback,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Event, DbErr> {
    Ok(Event {
        id: channels::model::new_id(),
        event_type: kind.to_owned(),
        tenant_id: record.tenant_id,
        aggregate_id: record.id,
        created_at: now,
        data: serde_json::to_value(record).map_err(|e| DbErr::Json(e.to_string()))?,
    })
}

/// Where the consequences of a written answer go: its events' sinks, and the closed loop
/// (with the cached alert rules and owner directory it reads).
#[derive(Clone, Copy)]
struct Outputs<'a> {
    sinks: &'a [Route],
    caches: &'a Caches,
}

impl Ingest {
    fn out(&self) -> Outputs<'_> {
        Outputs {
            sinks: &self.sinks,
            caches: &self.db.caches,
        }
    }
}

/// Queues the events of the answers a transaction wrote, and opens, raises or closes the
/// alerts those answers trigger (the closed loop), in that transaction: every path that
/// writes an answer ends here.
async fn queue_answers<C: sea_orm::ConnectionTrait>(
    conn: &C,
    out: Outputs<'_>,
    events: &[Event],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    batch::enqueue(conn, events, out.sinks).await?;
    crate::alerts::on_answers(conn, out.caches, out.sinks, events, now).await
}

/// Stores one record written outside the batch writer, with its `feedback.created` event.
async fn insert_record<C: sea_orm::ConnectionTrait>(
    conn: &C,
    record: &Feedback,
    events: &mut Vec<Event>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    batch::insert_feedback(conn, &[(record, None)]).await?;
    events.push(feedback_event(FEEDBACK_CREATED, record, now)?);
    Ok(())
}

/// Writes a record's changed answer, with its `feedback.updated` event.
async fn update_record<C: sea_orm::ConnectionTrait>(
    conn: &C,
    record: &Feedback,
    events: &mut Vec<Event>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    rows::update_answer(conn, record, now).await?;
    events.push(feedback_event(FEEDBACK_UPDATED, record, now)?);
    Ok(())
}

fn new_record(job: &Job, contact_id: Option<Uuid>, now: chrono::DateTime<chrono::Utc>) -> Feedback {
    let input = &job.input;
    Feedback {
        id: channels::model::new_id(),
        tenant_id: job.tenant_id,
        channel: input.channel.clone(),
        provider: input.provider.clone(),
        provider_ref: input.provider_ref.clone(),
        contact_id,
        invitation_id: input.invitation_id,
        metric: input.metric,
        score: input.score.map(|s| s.value()),
        scale: input.score.map(|s| s.scale()),
        comment: input.comment.clone(),
        language: input.language.clone(),
        ticket_ref: input.tickets.ticket_ref.clone(),
        agent_ref: input.tickets.agent_ref.clone(),
        team_ref: input.tickets.team_ref.clone(),
        occurred_at: store::to_db_precision(input.occurred_at),
        received_at: now,
        metadata: input.metadata.clone(),
    }
}

/// Stores a webhook's raw event under the provider's reference and the digest of its signed
/// content, in the caller's transaction. `None` when either is stored already: the provider
/// delivered it again, or someone replayed it. Without both the event is always stored.
async fn insert_raw<C: sea_orm::ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    provider: &str,
    provider_ref: Option<&str>,
    signed_sha256: Option<&str>,
    received: &Received<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Uuid>, DbErr> {
    let id = channels::model::new_id();
    let payload = String::from_utf8_lossy(received.body);
    let row = RawRow {
        id,
        tenant_id,
        provider,
        provider_ref,
        kind: received.kind,
        body_sha256: &sha256_hex(received.body),
        signed_sha256,
        content_type: received.content_type,
        payload: &payload,
    };
    let inserted = batch::insert_raw_events(conn, &[row], now).await?;
    Ok(inserted.contains(&id).then_some(id))
}

/// The answer given to the first delivery of a provider reference.
async fn stored_answer(
    db: &Db,
    tenant_id: Uuid,
    provider: &str,
    provider_ref: &str,
) -> Result<Option<String>, DbErr> {
    Ok(
        rows::find_raw_event(&db.write, tenant_id, provider, provider_ref)
            .await?
            .and_then(|raw| raw.response_body),
    )
}
