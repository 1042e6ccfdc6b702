//! Invitations and the decision log.

use channels::model::Metric;
use channels::vocabulary::{DecisionOutcome, InvitationStatus};
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, Set, Statement, Value,
};
use serde::Serialize;
use uuid::Uuid;

use super::entities::{invitation, policy_decision};
use super::placeholders;

/// An invitation as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InvitationView {
    pub id: Uuid,
    pub survey: String,
    pub contact_id: Uuid,
    pub status: String,
    /// The rule that suppressed it, or "quiet_hours" when its send time was deferred.
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub channel: Option<String>,
    pub send_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The provider's latest delivery report: queued, sending, sent, delivered, undelivered,
    /// failed.
    pub delivery_status: Option<String>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ticket_ref: Option<String>,
    pub agent_ref: Option<String>,
    pub team_ref: Option<String>,
    pub language: Option<String>,
    pub provider_ref: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<invitation::Model> for InvitationView {
    fn from(m: invitation::Model) -> Self {
        InvitationView {
            id: m.id,
            survey: m.survey_key,
            contact_id: m.contact_id,
            status: m.status,
            reason: m.reason,
            detail: m.detail,
            channel: m.channel,
            send_at: m.send_at,
            expires_at: m.expires_at,
            sent_at: m.sent_at,
            delivery_status: m.delivery_status,
            answered_at: m.answered_at,
            ticket_ref: m.ticket_ref,
            agent_ref: m.agent_ref,
            team_ref: m.team_ref,
            language: m.language,
            provider_ref: m.provider_ref,
            attempts: m.attempts,
            last_error: m.last_error,
            created_at: m.created_at,
        }
    }
}

/// One earlier invitation of the contact.
#[derive(Debug, Clone, PartialEq)]
pub struct Past {
    pub survey_key: String,
    pub metric: Metric,
    pub ticket_ref: Option<String>,
    pub status: InvitationStatus,
    /// When it was (or will be) sent: send_at for scheduled ones.
    pub at: DateTime<Utc>,
}

/// Serializes work on one contact (scheduling, replies) across transactions, connections and
/// replicas. On SQLite the single writer connection does that already.
pub async fn lock_contact<C: ConnectionTrait>(conn: &C, contact_id: Uuid) -> Result<(), DbErr> {
    lock_contacts(conn, &[contact_id]).await
}

/// [`lock_contact`] for several contacts in one statement, taken in id order so that two
/// transactions locking overlapping sets cannot wait for each other in a circle.
pub async fn lock_contacts<C: ConnectionTrait>(conn: &C, ids: &[Uuid]) -> Result<(), DbErr> {
    if conn.get_database_backend() != DbBackend::Postgres || ids.is_empty() {
        return Ok(());
    }
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let sql = format!(
        "SELECT id FROM contacts WHERE id IN ({}) ORDER BY id FOR UPDATE",
        super::padded_list(ids.len())
    );
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        super::placeholders(DbBackend::Postgres, &sql),
        super::padded_values(ids.into_iter().map(Value::from).collect()),
    ))
    .await?;
    Ok(())
}

/// `status IN ('…', …)` for `states` (words of the vocabulary, written into the SQL).
pub fn status_in(states: &[InvitationStatus]) -> String {
    let list: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
    format!("status IN ({})", list.join(", "))
}

/// The invitations of the given (tenant, contact) pairs that still take answers, in one
/// statement. A contact has few; [`newest_open_for`] picks the one a reply answers.
pub async fn open_of_contacts<C: ConnectionTrait>(
    conn: &C,
    contacts: &[(Uuid, Uuid)],
    now: DateTime<Utc>,
) -> Result<Vec<invitation::Model>, DbErr> {
    if contacts.is_empty() {
        return Ok(Vec::new());
    }
    let statement = open_of_contacts_statement(conn.get_database_backend(), contacts, now);
    invitation::Model::find_by_statement(statement)
        .all(conn)
        .await
}

/// The statement behind [`open_of_contacts`] (for a plan test); `contacts` is not empty.
pub fn open_of_contacts_statement(
    backend: DbBackend,
    contacts: &[(Uuid, Uuid)],
    now: DateTime<Utc>,
) -> Statement {
    // Per contact, an equality on ix_invitations_contact's whole key; the state and expiry in
    // a `CASE` no index answers, so that no plan reads the tenant's invitations by state.
    let branch = format!(
        "SELECT * FROM invitations WHERE tenant_id = ? AND contact_id = ? \
         AND CASE WHEN {} AND expires_at > ? THEN 1 ELSE 0 END = 1",
        status_in(InvitationStatus::OPEN)
    );
    let (sql, values) = super::union_all(
        &branch,
        contacts
            .iter()
            .map(|(tenant, contact)| vec![(*tenant).into(), (*contact).into(), now.into()])
            .collect(),
    );
    Statement::from_sql_and_values(backend, placeholders(backend, &sql), values)
}

/// Of `open` ([`open_of_contacts`]), the contact's newest invitation that a message from
/// `reply.from` to `reply.to` on `reply.channel` answers: sent to that address, from that
/// sending number or from none named.
pub fn newest_open_for<'a>(
    open: &'a [invitation::Model],
    tenant_id: Uuid,
    contact_id: Uuid,
    reply: &channels::model::ReplyText,
) -> Option<&'a invitation::Model> {
    open.iter()
        .filter(|i| {
            i.tenant_id == tenant_id
                && i.contact_id == contact_id
                && i.channel.as_deref() == Some(reply.channel.as_str())
                && i.address.as_deref() == Some(reply.from.value())
                && i.sender.as_deref().is_none_or(|s| s == reply.to.as_str())
        })
        .max_by_key(|i| i.sent_at)
}

/// The contact's invitations since `since`, and any invitation of the survey for the ticket
/// (whoever it went to): everything the fatigue rules look at.
/// The statement behind [`history`]: the contact's invitations since `since`, and (for the
/// one-per-ticket rule) the survey's invitations for the ticket, whoever they went to. Two
/// index-backed selects joined by `UNION`, not one `OR`: an `OR` across the two makes both
/// databases read every invitation of the tenant.
pub fn history_statement(
    backend: sea_orm::DbBackend,
    tenant_id: Uuid,
    contact_id: Uuid,
    since: DateTime<Utc>,
    survey_ticket: Option<(&str, &str)>,
) -> Statement {
    const COLUMNS: &str = "SELECT id, survey_key, metric, ticket_ref, status, \
                           COALESCE(sent_at, send_at, created_at) AS at FROM invitations";
    let mut sql = format!("{COLUMNS} WHERE tenant_id = ? AND contact_id = ? AND created_at >= ?");
    let mut values = vec![tenant_id.into(), contact_id.into(), since.into()];
    if let Some((survey, ticket)) = survey_ticket {
        sql.push_str(&format!(
            " UNION {COLUMNS} WHERE tenant_id = ? AND survey_key = ? AND ticket_ref = ?"
        ));
        values.extend([tenant_id.into(), survey.into(), ticket.into()]);
    }
    Statement::from_sql_and_values(backend, placeholders(backend, &sql), values)
}

pub async fn history<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    contact_id: Uuid,
    since: DateTime<Utc>,
    survey_ticket: Option<(&str, &str)>,
) -> Result<Vec<Past>, DbErr> {
    let backend = conn.get_database_backend();
    let rows = conn
        .query_all_raw(history_statement(
            backend,
            tenant_id,
            contact_id,
            since,
            survey_ticket,
        ))
        .await?;
    rows.iter()
        .filter_map(|r| {
            let status: String = r.try_get("", "status").ok()?;
            let metric: String = r.try_get("", "metric").ok()?;
            Some(Ok(Past {
                survey_key: r.try_get("", "survey_key").ok()?,
                metric: metric.parse::<Metric>().ok()?,
                ticket_ref: r.try_get("", "ticket_ref").ok()?,
                status: InvitationStatus::parse(&status)?,
                at: match r.try_get("", "at") {
                    Ok(at) => at,
                    Err(e) => return Some(Err(e)),
                },
            }))
        })
        .collect()
}

pub struct NewInvitation<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub survey_key: &'a str,
    pub metric: Metric,
    pub contact_id: Uuid,
    pub channel: Option<&'a str>,
    pub ticket_ref: Option<&'a str>,
    /// Whether the survey allows one invitation per ticket: the database then refuses a second
    /// live one for the same ticket, also across replicas.
    pub one_per_ticket: bool,
    pub agent_ref: Option<&'a str>,
    pub team_ref: Option<&'a str>,
    pub language: Option<&'a str>,
    pub status: InvitationStatus,
    pub reason: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub send_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    inv: &NewInvitation<'_>,
    now: DateTime<Utc>,
) -> Result<invitation::Model, DbErr> {
    let owned = |s: Option<&str>| s.map(str::to_owned);
    let model = invitation::Model {
        id: inv.id,
        tenant_id: inv.tenant_id,
        survey_key: inv.survey_key.to_owned(),
        contact_id: inv.contact_id,
        channel: owned(inv.channel),
        ticket_ref: owned(inv.ticket_ref),
        agent_ref: owned(inv.agent_ref),
        team_ref: owned(inv.team_ref),
        language: owned(inv.language),
        status: inv.status.as_str().to_owned(),
        reason: owned(inv.reason),
        send_at: inv.send_at,
        sent_at: None,
        answered_at: None,
        expires_at: inv.expires_at,
        provider_ref: None,
        created_at: now,
        updated_at: now,
        metric: inv.metric.as_str().to_owned(),
        detail: owned(inv.detail),
        attempts: 0,
        locked_until: None,
        locked_by: None,
        last_error: None,
        message: None,
        address: None,
        ticket_guard: owned(inv.ticket_ref.filter(|_| inv.one_per_ticket)),
        sender: None,
        delivery_status: None,
        clarified_at: None,
    };
    let active: invitation::ActiveModel = model.clone().into();
    invitation::Entity::insert(active)
        .exec_without_returning(conn)
        .await?;
    Ok(model)
}

pub struct NewDecision<'a> {
    pub tenant_id: Uuid,
    pub contact_id: Option<Uuid>,
    pub survey_key: &'a str,
    pub invitation_id: Option<Uuid>,
    pub outcome: DecisionOutcome,
    pub rule: Option<&'a str>,
    pub detail: Option<&'a str>,
    pub inputs: serde_json::Value,
}

pub async fn insert_decision<C: ConnectionTrait>(
    conn: &C,
    d: NewDecision<'_>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    policy_decision::Entity::insert(policy_decision::ActiveModel {
        id: Set(channels::model::new_id()),
        tenant_id: Set(d.tenant_id),
        contact_id: Set(d.contact_id),
        survey_key: Set(d.survey_key.to_owned()),
        invitation_id: Set(d.invitation_id),
        outcome: Set(d.outcome.as_str().to_owned()),
        rule: Set(d.rule.map(str::to_owned)),
        detail: Set(d.detail.map(str::to_owned)),
        inputs: Set(d.inputs),
        decided_at: Set(now),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Default)]
pub struct ListFilter {
    pub status: Option<InvitationStatus>,
    pub contact_id: Option<Uuid>,
    pub survey_key: Option<String>,
    pub before_id: Option<Uuid>,
    pub limit: u64,
}

/// Newest first.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    f: &ListFilter,
) -> Result<Vec<InvitationView>, DbErr> {
    let mut q = invitation::Entity::find().filter(invitation::Column::TenantId.eq(tenant_id));
    if let Some(s) = &f.status {
        q = q.filter(invitation::Column::Status.eq(s.as_str()));
    }
    if let Some(c) = f.contact_id {
        q = q.filter(invitation::Column::ContactId.eq(c));
    }
    if let Some(s) = &f.survey_key {
        q = q.filter(invitation::Column::SurveyKey.eq(s.as_str()));
    }
    if let Some(b) = f.before_id {
        q = q.filter(invitation::Column::Id.lt(b));
    }
    Ok(q.order_by_desc(invitation::Column::Id)
        .limit(f.limit)
        .all(conn)
        .await?
        .into_iter()
        .map(InvitationView::from)
        .collect())
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DecisionView {
    pub id: Uuid,
    pub survey: String,
    pub invitation_id: Option<Uuid>,
    pub outcome: String,
    pub rule: Option<String>,
    pub detail: Option<String>,
    pub inputs: serde_json::Value,
    pub decided_at: DateTime<Utc>,
}

pub async fn decisions<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    contact_id: Uuid,
    limit: u64,
) -> Result<Vec<DecisionView>, DbErr> {
    Ok(policy_decision::Entity::find()
        .filter(policy_decision::Column::TenantId.eq(tenant_id))
        .filter(policy_decision::Column::ContactId.eq(contact_id))
        .order_by_desc(policy_decision::Column::DecidedAt)
        .order_by_desc(policy_decision::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|d| DecisionView {
            id: d.id,
            survey: d.survey_key,
            invitation_id: d.invitation_id,
            outcome: d.outcome,
            rule: d.rule,
            detail: d.detail,
            inputs: d.inputs,
            decided_at: d.decided_at,
        })
        .collect())
}

/// Claims up to `limit` scheduled invitations that are due, for `worker` until `now + lease`.
/// PostgreSQL replicas skip each other's rows; SQLite's single writer serializes claims.
pub async fn claim_due(
    db: &super::Db,
    worker: &str,
    now: DateTime<Utc>,
    lease: chrono::Duration,
    limit: u32,
) -> Result<Vec<invitation::Model>, DbErr> {
    use sea_orm::FromQueryResult;
    let sql = super::claim_sql(
        db.backend(),
        "invitations",
        "status = 'scheduled' AND send_at <= ? AND (locked_until IS NULL OR locked_until < ?)",
        "send_at",
        "*",
    );
    let stmt = db.statement(
        &sql,
        vec![
            (now + lease).into(),
            worker.into(),
            now.into(),
            now.into(),
            i64::from(limit).into(),
        ],
    );
    let mut rows = invitation::Model::find_by_statement(stmt)
        .all(&db.write)
        .await?;
    rows.sort_by_key(|r| r.send_at);
    Ok(rows)
}
