//! Replies written a group at a time with set-based statements.
//!
//! A writer task takes whatever replies are waiting (up to `ingest.max_batch`) and applies them
//! in one transaction with about ten statements for the whole group, whatever its size: the raw
//! events in one insert, the senders' contacts resolved in one look-up and locked in one
//! statement, their open invitations read in one, those invitations' records in one; each reply
//! is then decided in memory by the same [`decide`] a reply applied alone goes through, and the
//! records, invitation transitions, answers and outbox events are written with one statement
//! each. Each reply is answered only after the commit.
//!
//! Only a contact's first reply in the group is decided this way. A second reply of the same
//! contact (two messages sent at once), and every keyword (STOP, START, HELP), is applied after
//! the set-based writes, one after the other in arrival order, reading what the first wrote.
//!
//! If the group fails, each reply runs again alone ([`apply_message`]), so a bad reply fails
//! only itself.
//!
//! Why: on SQLite each statement is a hand-off to the connection's worker thread, and a profile
//! of signed SMS replies showed the gateway spending about half its time in those hand-offs
//! (futex waits and wake-ups) when every reply issued its own nine statements.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use channels::model::{ContactRef, Feedback};
use sea_orm::{DatabaseTransaction, DbErr};
use uuid::Uuid;

use super::replies::{
    apply_known, apply_message, decide, Applied, Mark, RecordWrite, ReplyRequest,
};
use super::{feedback_event, sha256_hex, Outputs, FEEDBACK_CREATED, FEEDBACK_UPDATED};
use crate::lifecycle;
use crate::store::batch::{self, RawRow, Route};
use crate::store::cache::Caches;
use crate::store::group::{SetWork, WorkFuture};
use crate::store::{self, invitations};

/// Replies, applied a group at a time.
pub(super) struct Replies {
    pub sinks: Arc<[Route]>,
    pub caches: Arc<Caches>,
}

impl Replies {
    fn out(&self) -> Outputs<'_> {
        Outputs {
            sinks: &self.sinks,
            caches: &self.caches,
        }
    }
}

impl SetWork for Replies {
    type Request = ReplyRequest;
    type Answer = Applied;
    const KIND: &'static str = "replies";

    fn apply<'t>(
        &'t self,
        txn: &'t DatabaseTransaction,
        requests: &'t [&'t ReplyRequest],
    ) -> WorkFuture<'t, Vec<Applied>> {
        Box::pin(together(txn, self.out(), requests))
    }

    fn apply_alone<'t>(
        &'t self,
        txn: &'t DatabaseTransaction,
        request: &'t ReplyRequest,
    ) -> WorkFuture<'t, Applied> {
        Box::pin(apply_message(txn, self.out(), request))
    }
}

/// Applies the group in one transaction; each reply's result in order.
async fn together(
    txn: &DatabaseTransaction,
    out: Outputs<'_>,
    requests: &[&ReplyRequest],
) -> Result<Vec<Applied>, DbErr> {
    let now = store::now();

    // Raw events: a redelivery (its reference stored before, or earlier in the group) is not
    // inserted, and applies nothing.
    let raw_ids: Vec<Uuid> = requests.iter().map(|_| channels::model::new_id()).collect();
    let payloads: Vec<String> = requests
        .iter()
        .map(|r| String::from_utf8_lossy(&r.received.body).into_owned())
        .collect();
    let digests: Vec<String> = requests
        .iter()
        .map(|r| sha256_hex(&r.received.body))
        .collect();
    let rows: Vec<RawRow> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| RawRow {
            id: raw_ids[i],
            tenant_id: r.tenant.id,
            provider: &r.message.provider,
            provider_ref: Some(&r.message.provider_ref),
            kind: &r.received.kind,
            body_sha256: &digests[i],
            signed_sha256: None,
            content_type: r.received.content_type.as_deref(),
            payload: &payloads[i],
        })
        .collect();
    let inserted = batch::insert_raw_events(txn, &rows, now).await?;
    let fresh: Vec<usize> = (0..requests.len())
        .filter(|&i| inserted.contains(&raw_ids[i]))
        .collect();

    // The senders' contacts, found or created in one look-up, and locked.
    let senders: Vec<ContactRef> = fresh
        .iter()
        .map(|&i| ContactRef {
            identities: vec![requests[i].message.from.clone()],
            ..ContactRef::default()
        })
        .collect();
    let wanted: Vec<(Uuid, &ContactRef)> = fresh
        .iter()
        .zip(&senders)
        .map(|(&i, c)| (requests[i].tenant.id, c))
        .collect();
    let contacts: Vec<Uuid> = store::contacts::resolve_contacts(txn, &wanted, now)
        .await?
        .into_iter()
        .map(|c| c.ok_or_else(|| DbErr::RecordNotFound("the contact of a reply".into())))
        .collect::<Result<_, _>>()?;
    invitations::lock_contacts(txn, &contacts).await?;

    // A contact's first reply is decided with the group; keywords and further replies of the
    // same contact after it, in turn.
    let mut seen = HashSet::new();
    let (mut first, mut in_turn) = (Vec::new(), Vec::new());
    for (k, &i) in fresh.iter().enumerate() {
        let is_first = seen.insert(contacts[k]);
        if is_first && requests[i].message.keyword.is_none() {
            first.push(k);
        } else {
            in_turn.push(k);
        }
    }

    // What the first replies are read against: open invitations, and their records.
    let of_contacts: Vec<(Uuid, Uuid)> = first
        .iter()
        .map(|&k| (requests[fresh[k]].tenant.id, contacts[k]))
        .collect();
    let open = invitations::open_of_contacts(txn, &of_contacts, now).await?;
    let answering: Vec<_> = first
        .iter()
        .map(|&k| {
            let r = &requests[fresh[k]];
            invitations::newest_open_for(&open, r.tenant.id, contacts[k], &r.message)
        })
        .collect();
    let of_invitations: Vec<(Uuid, Uuid)> = answering
        .iter()
        .flatten()
        .map(|inv| (inv.tenant_id, inv.id))
        .collect();
    let mut records: HashMap<Uuid, Feedback> =
        store::feedback::first_for_invitations(txn, &of_invitations).await?;

    let mut applied: Vec<Applied> = vec![None; requests.len()];
    let mut inserts = Vec::new();
    let mut updates = Vec::new();
    let mut marks: BTreeMap<Mark, Vec<Uuid>> = BTreeMap::new();
    let mut answers = Vec::new();
    for (&k, open) in first.iter().zip(answering) {
        let i = fresh[k];
        let existing = open.and_then(|inv| records.remove(&inv.id));
        let decided = decide(requests[i], contacts[k], open, existing, now);
        let wrote = !matches!(decided.record, RecordWrite::Nothing);
        match decided.record {
            RecordWrite::Nothing => {}
            RecordWrite::Insert(record) => inserts.push(record),
            RecordWrite::Update(record) => updates.push(record),
        }
        if let Some((id, mark)) = decided.invitation {
            marks.entry(mark).or_default().push(id);
        }
        answers.push((raw_ids[i], decided.answer.clone()));
        applied[i] = Some((
            super::replies::Replied {
                answer: decided.answer,
                outcome: decided.outcome,
            },
            wrote,
        ));
    }
    let refs: Vec<(&Feedback, Option<Uuid>)> = inserts.iter().map(|f| (f, None)).collect();
    batch::insert_feedback(txn, &refs).await?;
    for record in &updates {
        store::feedback::update_answer(txn, record, now).await?;
    }
    for (mark, ids) in &marks {
        match mark {
            Mark::Answered => lifecycle::mark_answered_all(txn, ids, now).await?,
            Mark::Clarified => lifecycle::mark_clarified_all(txn, ids, now).await?,
        };
    }
    store::raw_events::set_answers(txn, &answers).await?;
    let mut events = Vec::with_capacity(inserts.len() + updates.len());
    for record in &inserts {
        events.push(feedback_event(FEEDBACK_CREATED, record, now)?);
    }
    for record in &updates {
        events.push(feedback_event(FEEDBACK_UPDATED, record, now)?);
    }
    super::queue_answers(txn, out, &events, now).await?;

    for k in in_turn {
        let i = fresh[k];
        let done = apply_known(txn, out, requests[i], raw_ids[i], contacts[k], now).await?;
        applied[i] = Some(done);
    }
    Ok(applied)
}
