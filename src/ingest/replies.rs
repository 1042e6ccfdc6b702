//! Replies: a customer's message on a channel (an SMS today) becomes the answer to the
//! invitation it belongs to, that answer's comment, or unsolicited free-text feedback.
//!
//! A reply's raw event, contact, record and outbox event commit together, with whatever replies
//! arrived at the same time (`reply_groups`: set-based statements for the group). Within a
//! group a contact's replies are applied in turn; across groups (PostgreSQL's several writers)
//! the contact's row is locked first. Either way two replies from one customer that arrive at
//! once ("5 tak!" and "hurtig og venlig hjælp") are applied in turn and land in one record.

use std::collections::BTreeMap;

use channels::model::{
    ContactRef, Feedback, Identity, Keyword, Metric, ReplyText, Scale, TicketRefs,
};
use channels::reply::{self, Reading};
use channels::vocabulary::ReplyOutcome;
use chrono::{DateTime, Duration, Utc};
use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::{Ingest, IngestError, Outputs, OwnedReceived, Received};
use crate::events::Event;
use crate::lifecycle;
use crate::store::entities::invitation;
use crate::store::tenants::Tenant;
use crate::store::{self, invitations};

/// A tenant's reply settings for one channel.
pub struct ReplySettings {
    /// Text within this time after a score becomes that score's comment.
    pub comment_window: Duration,
    /// Answer to a first score, per language.
    pub thank_you: BTreeMap<String, String>,
    /// Answer to a request for help, per language.
    pub help_text: BTreeMap<String, String>,
}

/// A reply as its group runs it (and runs it again, alone, if the group fails).
pub(super) struct ReplyRequest {
    pub tenant: Tenant,
    pub message: ReplyText,
    pub received: OwnedReceived,
    pub settings: ReplySettings,
}

/// What became of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replied {
    /// What to answer the customer on the same channel, if anything.
    pub answer: Option<String>,
    /// For a redelivery, `Duplicate`, and `answer` is the first delivery's.
    pub outcome: ReplyOutcome,
}

/// What a reply does to the invitation's record, decided from what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// The first score. `remark`: the text says more than the score; keep it as comment.
    Score { value: i16, remark: bool },
    /// A score different from the recorded one: the record is updated, not doubled.
    Rescore { value: i16, remark: bool },
    /// Text after the score, within the comment window.
    Comment,
    /// No usable score yet: the text is kept; `ask` the customer once for one number.
    Unreadable { ask: bool },
    /// Text long after the score: feedback of its own.
    Unsolicited,
    /// The recorded score again, nothing more.
    Repeat,
}

/// `scored`: the recorded score and when it came. `clarified`: the customer was asked for one
/// number before.
fn plan(
    scored: Option<(i16, DateTime<Utc>)>,
    reading: Reading,
    remark: bool,
    clarified: bool,
    now: DateTime<Utc>,
    comment_window: Duration,
) -> Plan {
    let within_window = |at: DateTime<Utc>| now - at <= comment_window;
    match (reading, scored) {
        (Reading::Score(value), None) => Plan::Score { value, remark },
        (Reading::Score(value), Some((old, _))) if value != old => Plan::Rescore { value, remark },
        (Reading::Score(_), Some((_, at))) if remark && within_window(at) => Plan::Comment,
        (Reading::Score(_), Some(_)) if remark => Plan::Unsolicited,
        (Reading::Score(_), Some(_)) => Plan::Repeat,
        (_, Some((_, at))) if within_window(at) => Plan::Comment,
        (_, Some(_)) => Plan::Unsolicited,
        (_, None) => Plan::Unreadable { ask: !clarified },
    }
}

fn join_comment(existing: Option<&str>, text: &str) -> String {
    match existing.filter(|c| !c.is_empty()) {
        Some(c) => format!("{c}\n{text}"),
        None => text.to_owned(),
    }
}

impl Ingest {
    /// Applies a customer's message: a keyword (opt-out, opt-in, help) or a reply. A
    /// redelivery (same provider reference) changes nothing and answers what the first delivery
    /// answered.
    pub async fn receive_message(
        &self,
        tenant: &Tenant,
        message: &ReplyText,
        received: Received<'_>,
        settings: ReplySettings,
    ) -> Result<Replied, IngestError> {
        let request = ReplyRequest {
            tenant: tenant.clone(),
            message: message.clone(),
            received: OwnedReceived::from(&received),
            settings,
        };
        match self.replies.run(request).await? {
            Some((replied, wrote_events)) => {
                if wrote_events {
                    self.wake_relay();
                }
                Ok(replied)
            }
            None => Ok(Replied {
                answer: super::stored_answer(
                    &self.db,
                    tenant.id,
                    &message.provider,
                    &message.provider_ref,
                )
                .await?,
                outcome: ReplyOutcome::Duplicate,
            }),
        }
    }
}

/// One reply's work in a transaction of its own (or in turn within its group). `None`: a
/// redelivery, which wrote nothing. Else what to answer, and whether events were queued for
/// the relay.
pub(super) async fn apply_message(
    txn: &DatabaseTransaction,
    out: Outputs<'_>,
    request: &ReplyRequest,
) -> Result<Applied, DbErr> {
    let ReplyRequest {
        tenant,
        message,
        received,
        ..
    } = request;
    let now = store::now();
    let Some(raw_id) = super::insert_raw(
        txn,
        tenant.id,
        &message.provider,
        Some(&message.provider_ref),
        None,
        &received.borrow(),
        now,
    )
    .await?
    else {
        return Ok(None);
    };
    let contact_id = contact_of(txn, tenant.id, &message.from, now).await?;
    invitations::lock_contacts(txn, &[contact_id]).await?;
    apply_known(txn, out, request, raw_id, contact_id, now)
        .await
        .map(Some)
}

/// What a reply's work answers: `None` for a redelivery; else what to tell the customer, and
/// whether events were queued.
pub(super) type Applied = Option<(Replied, bool)>;

/// A reply whose raw event is stored and whose contact is known and locked: a keyword, or an
/// answer read against what is stored.
pub(super) async fn apply_known(
    txn: &DatabaseTransaction,
    out: Outputs<'_>,
    request: &ReplyRequest,
    raw_id: Uuid,
    contact_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(Replied, bool), DbErr> {
    let ReplyRequest {
        tenant,
        message,
        settings,
        ..
    } = request;
    let mut events = Vec::new();
    let channel = message.channel.as_str();
    let (outcome, answer) = match message.keyword {
        Some(keyword @ (Keyword::OptOut | Keyword::OptIn)) => {
            let opt_out = keyword == Keyword::OptOut;
            crate::policy::opt_out::apply(txn, out.sinks, tenant.id, contact_id, channel, opt_out)
                .await?;
            // The provider confirms opt-out and opt-in itself (Twilio answers STOP).
            (
                if opt_out {
                    ReplyOutcome::OptOut
                } else {
                    ReplyOutcome::OptIn
                },
                None,
            )
        }
        Some(Keyword::Help) => {
            let language = newest_language(txn, tenant.id, contact_id, channel).await?;
            let text = reply::localized(&settings.help_text, language.as_deref())
                .or_else(|| settings.help_text.values().next().map(String::as_str));
            (ReplyOutcome::Help, text.map(str::to_owned))
        }
        None => {
            let open = if message.text.trim().is_empty() {
                None
            } else {
                open_invitation(txn, tenant.id, contact_id, message, now).await?
            };
            let existing = match &open {
                Some(inv) => store::first(
                    store::feedback::first_for_invitation(tenant.id, inv.id),
                    txn,
                )
                .await?
                .map(store::feedback::from_row)
                .transpose()?,
                None => None,
            };
            let decided = decide(request, contact_id, open.as_ref(), existing, now);
            decided.write(txn, &mut events, now).await?;
            (decided.outcome, decided.answer)
        }
    };
    store::raw_events::set_answer(txn, raw_id, answer.as_deref()).await?;
    super::queue_answers(txn, out, &events, now).await?;
    Ok((Replied { answer, outcome }, !events.is_empty()))
}

/// What a reply does, decided from what is stored: the same for a reply applied alone and for
/// one applied with its group's set-based statements.
pub(super) struct Decision {
    pub outcome: ReplyOutcome,
    /// What to answer the customer.
    pub answer: Option<String>,
    pub record: RecordWrite,
    /// The invitation answered, or whose customer was asked for one number.
    pub invitation: Option<(Uuid, Mark)>,
}

pub(super) enum RecordWrite {
    Nothing,
    Insert(Feedback),
    Update(Feedback),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Mark {
    Answered,
    Clarified,
}

impl Decision {
    /// Writes the decision one statement at a time (a group writes many with one each).
    async fn write(
        &self,
        txn: &DatabaseTransaction,
        events: &mut Vec<Event>,
        now: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        match &self.record {
            RecordWrite::Nothing => {}
            RecordWrite::Insert(record) => super::insert_record(txn, record, events, now).await?,
            RecordWrite::Update(record) => super::update_record(txn, record, events, now).await?,
        }
        match self.invitation {
            Some((id, Mark::Answered)) => {
                lifecycle::mark_answered(txn, id, now).await?;
            }
            Some((id, Mark::Clarified)) => {
                lifecycle::mark_clarified(txn, id, now).await?;
            }
            None => {}
        }
        Ok(())
    }
}

/// The reply's effect given the contact's open invitation (if any) and that invitation's
/// record (if any). Pure: reads nothing.
pub(super) fn decide(
    request: &ReplyRequest,
    contact_id: Uuid,
    open: Option<&invitation::Model>,
    existing: Option<Feedback>,
    now: DateTime<Utc>,
) -> Decision {
    let ReplyRequest {
        tenant,
        message: r,
        settings,
        ..
    } = request;
    let done = |outcome, answer, record, invitation| Decision {
        outcome,
        answer,
        record,
        invitation,
    };
    let text = r.text.trim();
    if text.is_empty() {
        // A picture without words: kept as the raw event only.
        return done(ReplyOutcome::Empty, None, RecordWrite::Nothing, None);
    }
    let scale = open.and_then(|inv| {
        inv.metric
            .parse::<Metric>()
            .ok()
            .and_then(Metric::numeric_scale)
    });
    let unsolicited = || {
        let record = new_record(tenant.id, contact_id, r, None, Metric::Text, text, now);
        done(
            ReplyOutcome::Unsolicited,
            None,
            RecordWrite::Insert(record),
            None,
        )
    };
    let (Some(inv), Some(scale)) = (open, scale) else {
        return unsolicited();
    };
    let language = inv.language.as_deref();
    let read = reply::read(text, scale, language);
    let scored = existing.as_ref().and_then(|f| f.score).zip(inv.answered_at);
    let decided = plan(
        scored,
        read.reading,
        read.has_remark,
        inv.clarified_at.is_some(),
        now,
        settings.comment_window,
    );
    let metric: Metric = inv.metric.parse().unwrap_or(Metric::Text);
    let score_of = |value: i16| (Some(value), Some(scale));
    let thanks = || reply::localized(&settings.thank_you, language).map(str::to_owned);
    let answered = Some((inv.id, Mark::Answered));
    match (decided, existing) {
        (Plan::Score { value, remark }, None) => {
            let mut record = new_record(tenant.id, contact_id, r, Some(inv), metric, text, now);
            (record.score, record.scale) = score_of(value);
            if !remark {
                record.comment = None;
            }
            done(
                ReplyOutcome::Answered,
                thanks(),
                RecordWrite::Insert(record),
                answered,
            )
        }
        (Plan::Score { value, remark }, Some(mut record)) => {
            // The text came first; now the score.
            record.metric = metric;
            (record.score, record.scale) = score_of(value);
            if remark {
                record.comment = Some(join_comment(record.comment.as_deref(), text));
            }
            done(
                ReplyOutcome::Answered,
                thanks(),
                RecordWrite::Update(record),
                answered,
            )
        }
        (Plan::Rescore { value, remark }, Some(mut record)) => {
            (record.score, record.scale) = score_of(value);
            if remark {
                record.comment = Some(join_comment(record.comment.as_deref(), text));
            }
            done(
                ReplyOutcome::Rescored,
                None,
                RecordWrite::Update(record),
                answered,
            )
        }
        (Plan::Comment, Some(mut record)) => {
            record.comment = Some(join_comment(record.comment.as_deref(), text));
            done(
                ReplyOutcome::Comment,
                None,
                RecordWrite::Update(record),
                None,
            )
        }
        (Plan::Unreadable { ask }, existing) => {
            let record = match existing {
                Some(mut record) => {
                    record.comment = Some(join_comment(record.comment.as_deref(), text));
                    RecordWrite::Update(record)
                }
                None => RecordWrite::Insert(new_record(
                    tenant.id,
                    contact_id,
                    r,
                    Some(inv),
                    Metric::Text,
                    text,
                    now,
                )),
            };
            let question = ask.then(|| reply::ask_for_one_number(language, scale));
            let clarified = ask.then_some((inv.id, Mark::Clarified));
            done(ReplyOutcome::Unreadable, question, record, clarified)
        }
        (Plan::Repeat, _) => done(ReplyOutcome::Repeat, None, RecordWrite::Nothing, None),
        // Unsolicited, or a plan that needs a record when none is stored (cannot happen:
        // a recorded score implies the record).
        _ => unsolicited(),
    }
}

/// Finds or creates the contact of an address.
pub(super) async fn contact_of(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    address: &Identity,
    now: DateTime<Utc>,
) -> Result<Uuid, DbErr> {
    let contact = ContactRef {
        identities: vec![address.clone()],
        ..ContactRef::default()
    };
    crate::store::contacts::resolve_contacts(txn, &[(tenant_id, &contact)], now)
        .await?
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(|| DbErr::RecordNotFound("the contact of a reply".into()))
}

/// The contact's newest invitation on this (customer, sending number) pair that still takes
/// answers: the same reading as a group's ([`invitations::newest_open_for`]).
async fn open_invitation(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    contact_id: Uuid,
    r: &ReplyText,
    now: DateTime<Utc>,
) -> Result<Option<invitation::Model>, DbErr> {
    let open = invitations::open_of_contacts(txn, &[(tenant_id, contact_id)], now).await?;
    Ok(invitations::newest_open_for(&open, tenant_id, contact_id, r).cloned())
}

/// The language the contact was last asked in on a channel.
async fn newest_language(
    txn: &DatabaseTransaction,
    tenant_id: Uuid,
    contact_id: Uuid,
    channel: &str,
) -> Result<Option<String>, DbErr> {
    let newest = invitation::Entity::find()
        .filter(invitation::Column::TenantId.eq(tenant_id))
        .filter(invitation::Column::ContactId.eq(contact_id))
        .filter(invitation::Column::Channel.eq(channel))
        .filter(invitation::Column::SentAt.is_not_null())
        .order_by_desc(invitation::Column::SentAt);
    Ok(store::first(newest, txn).await?.and_then(|i| i.language))
}

pub(super) fn new_record(
    tenant_id: Uuid,
    contact_id: Uuid,
    r: &ReplyText,
    invitation: Option<&invitation::Model>,
    metric: Metric,
    text: &str,
    now: DateTime<Utc>,
) -> Feedback {
    let tickets = invitation
        .map(|i| TicketRefs {
            ticket_ref: i.ticket_ref.clone(),
            agent_ref: i.agent_ref.clone(),
            team_ref: i.team_ref.clone(),
        })
        .unwrap_or_default();
    Feedback {
        id: channels::model::new_id(),
        tenant_id,
        channel: r.channel.clone(),
        provider: r.provider.clone(),
        provider_ref: Some(r.provider_ref.clone()),
        contact_id: Some(contact_id),
        invitation_id: invitation.map(|i| i.id),
        metric,
        score: None,
        scale: None::<Scale>,
        comment: Some(text.to_owned()),
        language: invitation.and_then(|i| i.language.clone()),
        ticket_ref: tickets.ticket_ref,
        agent_ref: tickets.agent_ref,
        team_ref: tickets.team_ref,
        occurred_at: now,
        received_at: now,
        metadata: serde_json::json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::minutes(minutes)
    }

    #[test]
    fn plans_follow_what_is_stored() {
        let window = Duration::minutes(30);
        let scored = Some((5, at(0)));
        // (stored score and when, reading, has a remark, already clarified, minutes later, plan)
        type Case = (Option<(i16, DateTime<Utc>)>, Reading, bool, bool, i64, Plan);
        let cases: &[Case] = &[
            // First answer.
            (
                None,
                Reading::Score(5),
                false,
                false,
                1,
                Plan::Score {
                    value: 5,
                    remark: false,
                },
            ),
            (
                None,
                Reading::Score(8),
                true,
                false,
                1,
                Plan::Score {
                    value: 8,
                    remark: true,
                },
            ),
            // Text before any score: kept, asked once.
            (
                None,
                Reading::NoScore,
                true,
                false,
                1,
                Plan::Unreadable { ask: true },
            ),
            (
                None,
                Reading::Ambiguous,
                false,
                false,
                1,
                Plan::Unreadable { ask: true },
            ),
            (
                None,
                Reading::OutOfRange(6),
                false,
                true,
                1,
                Plan::Unreadable { ask: false },
            ),
            // After a score: text within the window is its comment, later text stands alone.
            (scored, Reading::NoScore, true, false, 1, Plan::Comment),
            (scored, Reading::NoScore, true, false, 30, Plan::Comment),
            (scored, Reading::NoScore, true, false, 31, Plan::Unsolicited),
            (scored, Reading::Ambiguous, true, false, 10, Plan::Comment),
            // Another score updates the answer, whenever it comes in the reply window.
            (
                scored,
                Reading::Score(4),
                false,
                false,
                1,
                Plan::Rescore {
                    value: 4,
                    remark: false,
                },
            ),
            (
                scored,
                Reading::Score(1),
                true,
                false,
                600,
                Plan::Rescore {
                    value: 1,
                    remark: true,
                },
            ),
            // The same score again.
            (scored, Reading::Score(5), false, false, 1, Plan::Repeat),
            (scored, Reading::Score(5), true, false, 1, Plan::Comment),
            (
                scored,
                Reading::Score(5),
                true,
                false,
                60,
                Plan::Unsolicited,
            ),
        ];
        for (stored, reading, remark, clarified, minutes, expected) in cases {
            assert_eq!(
                plan(*stored, *reading, *remark, *clarified, at(*minutes), window),
                *expected,
                "{stored:?} {reading:?} remark={remark} clarified={clarified} +{minutes}m"
            );
        }
    }
}
