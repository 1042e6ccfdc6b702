//! The invitation lifecycle: the one module that moves `invitations.status`. Scheduling,
//! dispatch, replies, delivery reports and opt-outs call these named transitions; none of them
//! writes a status itself.
//!
//! ```text
//!             ┌── send ──────▶ sent ── answer ──▶ answered ── answer again ─┐
//!             │                 │ ├── expire ──▶ expired                     │
//!  scheduled ─┤                 │ └── undelivered ──▶ failed      answered ◀─┘
//!             ├── cancel (opted out, no address, erased, survey gone) ──▶ cancelled
//!             └── fail (refused for good, attempts spent) ──▶ failed
//!  suppressed: decided at creation, never moves.
//! ```
//!
//! Each transition is one conditional `UPDATE` that names the states it leaves from, so a late
//! or repeated call (a delivery report after the answer, a second worker after a lost lease)
//! changes nothing instead of moving an invitation backwards. Transitions of a claimed
//! invitation also require the dispatcher's claim. Every function answers whether the row moved.
//!
//! A transition that moved queues its event (`survey.scheduled`, `survey.suppressed`,
//! `survey.sent`, `survey.delivered`, `survey.failed`, `survey.expired`) in the same
//! transaction, for the sinks that take it; with none, nothing more is written.

use channels::model::DeliveryState;
use channels::vocabulary::InvitationStatus;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, Statement, TransactionTrait, Value};
use serde_json::json;
use uuid::Uuid;

use crate::events::{
    Event, SURVEY_DELIVERED, SURVEY_EXPIRED, SURVEY_FAILED, SURVEY_SCHEDULED, SURVEY_SENT,
    SURVEY_SUPPRESSED,
};
use crate::store::batch::{self, Route};
use crate::store::entities::invitation;
use crate::store::invitations::{self, NewInvitation};
use crate::store::{self, Db};

/// An invitation's event: the invitation as sinks know it (`address`, the phone number or
/// e-mail address, is personal data), with `extra` fields of the transition on top.
fn survey_event(
    event_type: &'static str,
    inv: &invitation::Model,
    now: DateTime<Utc>,
    extra: serde_json::Value,
) -> Event {
    let mut data = json!({
        "invitation_id": inv.id,
        "survey": inv.survey_key,
        "contact_id": inv.contact_id,
        "channel": inv.channel,
        "metric": inv.metric,
        "language": inv.language,
        "ticket_ref": inv.ticket_ref,
        "agent_ref": inv.agent_ref,
        "team_ref": inv.team_ref,
        "send_at": inv.send_at,
        "expires_at": inv.expires_at,
    });
    if let (Some(data), serde_json::Value::Object(extra)) = (data.as_object_mut(), extra) {
        data.extend(extra);
    }
    Event {
        id: channels::model::new_id(),
        event_type: event_type.to_owned(),
        tenant_id: inv.tenant_id,
        aggregate_id: inv.id,
        created_at: now,
        data,
    }
}

/// `UPDATE invitations SET {set}, updated_at = ? WHERE {condition}`, with the values of `set`
/// first and those of `condition` after `updated_at`.
async fn update<C: ConnectionTrait>(
    conn: &C,
    set: &[(&str, Value)],
    condition: &str,
    condition_values: Vec<Value>,
) -> Result<u64, DbErr> {
    let statement = update_statement(
        conn.get_database_backend(),
        set,
        condition,
        condition_values,
    );
    Ok(conn.execute_raw(statement).await?.rows_affected())
}

fn update_statement(
    backend: DbBackend,
    set: &[(&str, Value)],
    condition: &str,
    condition_values: Vec<Value>,
) -> Statement {
    let mut sql = String::from("UPDATE invitations SET ");
    let mut values = Vec::with_capacity(set.len() + 1 + condition_values.len());
    for (column, value) in set {
        sql.push_str(column);
        sql.push_str(" = ?, ");
        values.push(value.clone());
    }
    sql.push_str("updated_at = ? WHERE ");
    sql.push_str(condition);
    values.push(store::now().into());
    values.extend(condition_values);
    Statement::from_sql_and_values(backend, store::placeholders(backend, &sql), values)
}

/// Creates invitations: scheduled, or suppressed with the rule that stopped them.
pub async fn create_all<C: ConnectionTrait>(
    conn: &C,
    routes: &[Route],
    new: &[NewInvitation<'_>],
    now: DateTime<Utc>,
) -> Result<Vec<invitation::Model>, DbErr> {
    debug_assert!(new.iter().all(|n| matches!(
        n.status,
        InvitationStatus::Scheduled | InvitationStatus::Suppressed
    )));
    let rows = invitations::insert_all(conn, new, now).await?;
    let events: Vec<Event> = rows
        .iter()
        .filter_map(|inv| {
            if inv.status == InvitationStatus::Suppressed.as_str() {
                batch::any_takes(routes, SURVEY_SUPPRESSED).then(|| {
                    survey_event(
                        SURVEY_SUPPRESSED,
                        inv,
                        now,
                        json!({"rule": inv.reason, "detail": inv.detail}),
                    )
                })
            } else {
                batch::any_takes(routes, SURVEY_SCHEDULED)
                    .then(|| survey_event(SURVEY_SCHEDULED, inv, now, json!({})))
            }
        })
        .collect();
    batch::enqueue(conn, &events, routes).await?;
    Ok(rows)
}

/// Invitations the web widget shows at once (the visitor is on the site now): from scheduled
/// to sent in the transaction that created them, each with its `survey.sent` event. `rows` are
/// updated to match.
pub async fn shown_in_widget<C: ConnectionTrait>(
    conn: &C,
    routes: &[Route],
    rows: &mut [&mut invitation::Model],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let condition = format!(
        "id IN ({}) AND {}",
        store::padded_list(rows.len()),
        invitations::status_in(&[InvitationStatus::Scheduled])
    );
    let ids = store::padded_values(rows.iter().map(|r| r.id.into()).collect());
    let sent = [
        ("status", InvitationStatus::Sent.as_str().into()),
        ("sent_at", now.into()),
    ];
    update(conn, &sent, &condition, ids).await?;
    for row in rows.iter_mut() {
        row.status = InvitationStatus::Sent.as_str().to_owned();
        row.sent_at = Some(now);
    }
    if batch::any_takes(routes, SURVEY_SENT) {
        let events: Vec<Event> = rows
            .iter()
            .map(|inv| survey_event(SURVEY_SENT, inv, now, json!({})))
            .collect();
        batch::enqueue(conn, &events, routes).await?;
    }
    Ok(())
}

/// The dispatcher's hold on a claimed invitation: transitions through it happen only while the
/// claim is this worker's, and release it.
pub struct Claim<'a> {
    pub db: &'a Db,
    pub worker: &'a str,
    /// The invitation as claimed.
    pub invitation: &'a invitation::Model,
}

impl Claim<'_> {
    /// Sets `columns` (and the status, when given) and releases the claim, if the claim still
    /// holds and the invitation is still scheduled; then queues `event` (its type and the
    /// transition's fields), in the same transaction.
    async fn settle(
        &self,
        status: Option<InvitationStatus>,
        columns: &[(&str, Value)],
        event: Option<(&'static str, serde_json::Value)>,
    ) -> Result<bool, DbErr> {
        let mut set: Vec<(&str, Value)> = columns.to_vec();
        if let Some(status) = status {
            set.push(("status", status.as_str().into()));
        }
        set.push(("locked_until", Value::ChronoDateTimeUtc(None)));
        set.push(("locked_by", Value::String(None)));
        let condition = format!(
            "id = ? AND locked_by = ? AND {}",
            invitations::status_in(&[InvitationStatus::Scheduled])
        );
        let values = vec![self.invitation.id.into(), self.worker.into()];
        let routes = self.db.routes();
        let Some((event_type, extra)) = event.filter(|(t, _)| batch::any_takes(routes, t)) else {
            return Ok(update(&self.db.write, &set, &condition, values).await? == 1);
        };
        let txn = self.db.write.begin().await?;
        let moved = update(&txn, &set, &condition, values).await? == 1;
        if moved {
            let event = survey_event(event_type, self.invitation, store::now(), extra);
            batch::enqueue(&txn, &[event], routes).await?;
        }
        txn.commit().await?;
        Ok(moved)
    }

    /// scheduled → sent: the provider took the message.
    pub async fn mark_sent(&self, sent: &Sent<'_>) -> Result<bool, DbErr> {
        self.settle(
            Some(InvitationStatus::Sent),
            &[
                ("sent_at", sent.at.into()),
                ("expires_at", sent.expires_at.into()),
                ("provider_ref", sent.provider_ref.into()),
                ("sender", sent.sender.map(str::to_owned).into()),
                ("delivery_status", DeliveryState::Queued.as_str().into()),
                ("address", sent.address.into()),
                ("message", sent.message.into()),
                ("attempts", sent.attempts.into()),
                ("last_error", Value::String(None)),
            ],
            Some((
                SURVEY_SENT,
                json!({"sent_at": sent.at, "expires_at": sent.expires_at,
                       "provider_ref": sent.provider_ref, "address": sent.address}),
            )),
        )
        .await
    }

    /// Stays scheduled, at a later time (paced, or retried after `last_error`), with its
    /// expiry moved by the same amount so the reply window stays whole.
    pub async fn postpone(
        &self,
        send_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
        retry: Option<(i32, &str)>,
    ) -> Result<bool, DbErr> {
        let mut columns: Vec<(&str, Value)> = vec![
            ("send_at", send_at.into()),
            ("expires_at", expires_at.into()),
        ];
        if let Some((attempts, error)) = retry {
            columns.push(("attempts", attempts.into()));
            columns.push(("last_error", error.into()));
        }
        self.settle(None, &columns, None).await
    }

    /// scheduled → cancelled at send time (opted out, no address, contact erased, survey gone).
    pub async fn cancel(&self, reason: &str, detail: &str) -> Result<bool, DbErr> {
        self.settle(
            Some(InvitationStatus::Cancelled),
            &[("reason", reason.into()), ("detail", detail.into())],
            None,
        )
        .await
    }

    /// scheduled → failed: refused for good, or every attempt spent.
    pub async fn fail(&self, attempts: i32, error: &str) -> Result<bool, DbErr> {
        self.settle(
            Some(InvitationStatus::Failed),
            &[("attempts", attempts.into()), ("last_error", error.into())],
            Some((
                SURVEY_FAILED,
                json!({"reason": "refused", "error": channels::scrub::excerpt(error),
                       "attempts": attempts}),
            )),
        )
        .await
    }
}

/// What the provider's acceptance of a message records.
pub struct Sent<'a> {
    pub at: DateTime<Utc>,
    /// One reply window after `at`.
    pub expires_at: DateTime<Utc>,
    pub provider_ref: &'a str,
    /// The number it went from; `None` when the provider picked it.
    pub sender: Option<&'a str>,
    pub address: &'a str,
    pub message: &'a str,
    pub attempts: i32,
}

/// sent | answered → answered: a score arrived (again, when the customer changes it).
pub async fn mark_answered<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    Ok(mark_answered_all(conn, &[id], now).await? == 1)
}

/// [`mark_answered`] for several invitations in one statement; how many moved.
pub async fn mark_answered_all<C: ConnectionTrait>(
    conn: &C,
    ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    update_open(conn, ids, &answered(now)).await
}

fn answered(now: DateTime<Utc>) -> [(&'static str, Value); 2] {
    [
        ("status", InvitationStatus::Answered.as_str().into()),
        ("answered_at", now.into()),
    ]
}

/// The statement behind [`mark_answered_all`] (for a plan test); `ids` is not empty.
pub fn answered_statement(backend: DbBackend, ids: &[Uuid], now: DateTime<Utc>) -> Statement {
    let (condition, ids) = open_ones(ids);
    update_statement(backend, &answered(now), &condition, ids)
}

/// Notes that the customer was asked once for a single number (no status change).
pub async fn mark_clarified<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    Ok(mark_clarified_all(conn, &[id], now).await? == 1)
}

/// [`mark_clarified`] for several invitations in one statement; how many were marked.
pub async fn mark_clarified_all<C: ConnectionTrait>(
    conn: &C,
    ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    update_open(conn, ids, &[("clarified_at", now.into())]).await
}

/// Sets `columns` on the invitations of `ids` that still take answers.
async fn update_open<C: ConnectionTrait>(
    conn: &C,
    ids: &[Uuid],
    columns: &[(&str, Value)],
) -> Result<u64, DbErr> {
    if ids.is_empty() {
        return Ok(0);
    }
    let (condition, ids) = open_ones(ids);
    update(conn, columns, &condition, ids).await
}

/// The condition (and its values) for those of `ids` that still take answers. The state is
/// tested in a `CASE` that no index can answer: given `status IN (…)` beside a long id list, a
/// planner without statistics (SQLite's) reads every invitation in those states through
/// `ix_invitations_due` instead of looking the ids up.
fn open_ones(ids: &[Uuid]) -> (String, Vec<Value>) {
    let condition = format!(
        "id IN ({}) AND CASE WHEN {} THEN 1 ELSE 0 END = 1",
        store::padded_list(ids.len()),
        invitations::status_in(InvitationStatus::OPEN)
    );
    let ids = store::padded_values(ids.iter().map(|&id| id.into()).collect());
    (condition, ids)
}

/// A provider's delivery report: records the state; a failure while the invitation is still
/// only sent closes it (an answer already proves the message arrived, whatever a late report
/// says). The caller has checked that the report is newer than the recorded state.
pub async fn record_delivery<C: ConnectionTrait>(
    conn: &C,
    routes: &[Route],
    inv: &invitation::Model,
    state: DeliveryState,
    error: Option<&str>,
) -> Result<bool, DbErr> {
    let id = inv.id;
    let now = store::now();
    let delivery = [("delivery_status", Value::from(state.as_str()))];
    if state.is_failure() {
        let error = error.unwrap_or(state.as_str());
        let failed = [
            ("delivery_status", Value::from(state.as_str())),
            ("status", InvitationStatus::Failed.as_str().into()),
            ("reason", "undelivered".into()),
            ("last_error", error.into()),
        ];
        let condition = format!(
            "id = ? AND {}",
            invitations::status_in(&[InvitationStatus::Sent])
        );
        if update(conn, &failed, &condition, vec![id.into()]).await? == 1 {
            if batch::any_takes(routes, SURVEY_FAILED) {
                let extra = json!({"reason": "undelivered", "delivery_status": state.as_str(),
                                   "error": channels::scrub::excerpt(error)});
                let event = survey_event(SURVEY_FAILED, inv, now, extra);
                batch::enqueue(conn, &[event], routes).await?;
            }
            return Ok(true);
        }
    }
    let moved = update(conn, &delivery, "id = ?", vec![id.into()]).await? == 1;
    if moved && state == DeliveryState::Delivered && batch::any_takes(routes, SURVEY_DELIVERED) {
        let extra = json!({"delivery_status": state.as_str(), "delivered_at": now});
        let event = survey_event(SURVEY_DELIVERED, inv, now, extra);
        batch::enqueue(conn, &[event], routes).await?;
    }
    Ok(moved)
}

/// sent → expired for every invitation whose reply window has passed. Returns how many.
pub async fn expire_open(db: &Db, now: DateTime<Utc>) -> Result<u64, DbErr> {
    let condition = format!(
        "{} AND expires_at < ?",
        invitations::status_in(&[InvitationStatus::Sent])
    );
    let set = [("status", Value::from(InvitationStatus::Expired.as_str()))];
    let routes = db.routes();
    if !batch::any_takes(routes, SURVEY_EXPIRED) {
        return update(&db.write, &set, &condition, vec![now.into()]).await;
    }
    // The expired rows come back from the update itself, for their events.
    let mut statement = update_statement(db.backend(), &set, &condition, vec![now.into()]);
    statement.sql.push_str(" RETURNING *");
    let txn = db.write.begin().await?;
    let expired = invitation::Entity::find()
        .from_raw_sql(statement)
        .all(&txn)
        .await?;
    // Recorded now, whatever time the windows were compared with.
    let recorded = store::now();
    let events: Vec<Event> = expired
        .iter()
        .map(|inv| survey_event(SURVEY_EXPIRED, inv, recorded, json!({})))
        .collect();
    batch::enqueue(&txn, &events, routes).await?;
    txn.commit().await?;
    Ok(expired.len() as u64)
}

/// scheduled → cancelled for the contact's invitations on `channel` (or every channel for
/// `all`): an opt-out is absolute and immediate. An invitation a dispatcher holds right now is
/// left to it: it cancels it through its claim (the provider's own STOP), or checks the opt-out
/// again when its lease ends. Returns how many.
pub async fn cancel_on_opt_out<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    contact_id: Uuid,
    channel: &str,
) -> Result<u64, DbErr> {
    let condition = format!(
        "tenant_id = ? AND contact_id = ? AND {} AND (channel = ? OR ? = 'all') \
         AND (locked_by IS NULL OR locked_until < ?)",
        invitations::status_in(&[InvitationStatus::Scheduled])
    );
    update(
        conn,
        &[
            ("status", InvitationStatus::Cancelled.as_str().into()),
            ("reason", "opt_out".into()),
            (
                "detail",
                format!("the contact opted out of {channel}").into(),
            ),
        ],
        &condition,
        vec![
            tenant_id.into(),
            contact_id.into(),
            channel.into(),
            channel.into(),
            store::now().into(),
        ],
    )
    .await
}
