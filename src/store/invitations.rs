//! Invitations and the decision log.

use channels::model::Metric;
use channels::vocabulary::{DecisionOutcome, InvitationStatus};
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, Statement, Value,
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

/// The tenant's invitation `id`.
pub async fn by_id<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<invitation::Model>, DbErr> {
    let found =
        invitation::Entity::find_by_id(id).filter(invitation::Column::TenantId.eq(tenant_id));
    super::first(found, conn).await
}

/// The tenant's invitations sent with any of these provider references (an e-mail's
/// Message-IDs), through `ix_invitations_provider_ref`.
pub async fn by_provider_refs<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    refs: &[String],
) -> Result<Vec<invitation::Model>, DbErr> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    invitation::Entity::find()
        .filter(invitation::Column::TenantId.eq(tenant_id))
        .filter(invitation::Column::ProviderRef.is_in(refs.iter().cloned()))
        .all(conn)
        .await
}

/// Invitation `id` of whichever tenant: for a link whose signature is then checked with that
/// tenant's key (the id alone grants nothing).
pub async fn of_link<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
) -> Result<Option<invitation::Model>, DbErr> {
    super::first(invitation::Entity::find_by_id(id), conn).await
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
        .max_by_key(|i| (reply.invitation == Some(i.id), i.sent_at))
}

/// What a group of decisions looks at: per contact, its invitations since a time; per
/// (survey, ticket), the survey's invitations for the ticket, whoever they went to.
#[derive(Debug, Default)]
pub struct HistoryWanted {
    /// (tenant, contact, since)
    pub contacts: Vec<(Uuid, Uuid, DateTime<Utc>)>,
    /// (tenant, survey key, ticket ref)
    pub tickets: Vec<(Uuid, String, String)>,
}

/// One earlier invitation, with what [`HistoryWanted`] selects it by.
#[derive(Debug, Clone, PartialEq)]
pub struct PastRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub contact_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub past: Past,
}

impl PastRow {
    /// Whether a decision for `contact` (looking back to `since`) or for the survey's ticket
    /// looks at this invitation.
    pub fn concerns(
        &self,
        tenant_id: Uuid,
        contact_id: Uuid,
        since: DateTime<Utc>,
        survey_ticket: Option<(&str, &str)>,
    ) -> bool {
        self.tenant_id == tenant_id
            && ((self.contact_id == contact_id && self.created_at >= since)
                || survey_ticket.is_some_and(|(survey, ticket)| {
                    self.past.survey_key == survey
                        && self.past.ticket_ref.as_deref() == Some(ticket)
                }))
    }
}

/// The statement behind [`history`]; `wanted` names at least one contact or ticket. One
/// index-backed select per contact and per ticket joined by `UNION ALL`, each an equality on
/// its index's key: an `OR` across the two kinds makes both databases read every invitation
/// of the tenant, and an id list beside the time makes PostgreSQL without statistics read the
/// tenant's invitations by time.
pub fn history_statement(backend: DbBackend, wanted: &HistoryWanted) -> Statement {
    const COLUMNS: &str = "SELECT id, tenant_id, contact_id, created_at, survey_key, metric, \
                           ticket_ref, status, COALESCE(sent_at, send_at, created_at) AS at \
                           FROM invitations";
    let mut parts = Vec::new();
    let mut values = Vec::new();
    if !wanted.contacts.is_empty() {
        let (sql, v) = super::union_all(
            &format!("{COLUMNS} WHERE tenant_id = ? AND contact_id = ? AND created_at >= ?"),
            wanted
                .contacts
                .iter()
                .map(|(tenant, contact, since)| {
                    vec![(*tenant).into(), (*contact).into(), (*since).into()]
                })
                .collect(),
        );
        parts.push(sql);
        values.extend(v);
    }
    if !wanted.tickets.is_empty() {
        let (sql, v) = super::union_all(
            &format!("{COLUMNS} WHERE tenant_id = ? AND survey_key = ? AND ticket_ref = ?"),
            wanted
                .tickets
                .iter()
                .map(|(tenant, survey, ticket)| {
                    vec![
                        (*tenant).into(),
                        survey.clone().into(),
                        ticket.clone().into(),
                    ]
                })
                .collect(),
        );
        parts.push(sql);
        values.extend(v);
    }
    let sql = parts.join(" UNION ALL ");
    Statement::from_sql_and_values(backend, placeholders(backend, &sql), values)
}

/// Every invitation [`HistoryWanted`] names, each once.
pub async fn history<C: ConnectionTrait>(
    conn: &C,
    wanted: &HistoryWanted,
) -> Result<Vec<PastRow>, DbErr> {
    if wanted.contacts.is_empty() && wanted.tickets.is_empty() {
        return Ok(Vec::new());
    }
    let rows = conn
        .query_all_raw(history_statement(conn.get_database_backend(), wanted))
        .await?;
    let mut seen = std::collections::HashSet::new();
    let mut history = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: Uuid = r.try_get("", "id")?;
        if !seen.insert(id) {
            continue;
        }
        let status: String = r.try_get("", "status")?;
        let metric: String = r.try_get("", "metric")?;
        // A state or metric this build does not know (a newer replica's) is no fatigue fact.
        let (Some(status), Ok(metric)) = (InvitationStatus::parse(&status), metric.parse()) else {
            continue;
        };
        history.push(PastRow {
            id,
            tenant_id: r.try_get("", "tenant_id")?,
            contact_id: r.try_get("", "contact_id")?,
            created_at: r.try_get("", "created_at")?,
            past: Past {
                survey_key: r.try_get("", "survey_key")?,
                metric,
                ticket_ref: r.try_get("", "ticket_ref")?,
                status,
                at: r.try_get("", "at")?,
            },
        });
    }
    Ok(history)
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

/// Inserts invitations with one statement per [`super::batch::MAX_ROWS`]; the rows as stored.
pub async fn insert_all<C: ConnectionTrait>(
    conn: &C,
    new: &[NewInvitation<'_>],
    now: DateTime<Utc>,
) -> Result<Vec<invitation::Model>, DbErr> {
    const COLUMNS: [&str; 19] = [
        "id",
        "tenant_id",
        "survey_key",
        "metric",
        "contact_id",
        "channel",
        "ticket_ref",
        "ticket_guard",
        "agent_ref",
        "team_ref",
        "language",
        "status",
        "reason",
        "detail",
        "send_at",
        "expires_at",
        "attempts",
        "created_at",
        "updated_at",
    ];
    let owned = |s: Option<&str>| s.map(str::to_owned);
    let models: Vec<invitation::Model> = new
        .iter()
        .map(|inv| invitation::Model {
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
            // The partial unique index on it refuses a second live invitation for the ticket.
            ticket_guard: owned(inv.ticket_ref.filter(|_| inv.one_per_ticket)),
            sender: None,
            delivery_status: None,
            clarified_at: None,
        })
        .collect();
    if models.is_empty() {
        return Ok(models);
    }
    let mut values = Vec::with_capacity(models.len() * COLUMNS.len());
    for m in &models {
        values.extend([
            Value::from(m.id),
            m.tenant_id.into(),
            m.survey_key.clone().into(),
            m.metric.clone().into(),
            m.contact_id.into(),
            m.channel.clone().into(),
            m.ticket_ref.clone().into(),
            m.ticket_guard.clone().into(),
            m.agent_ref.clone().into(),
            m.team_ref.clone().into(),
            m.language.clone().into(),
            m.status.clone().into(),
            m.reason.clone().into(),
            m.detail.clone().into(),
            m.send_at.into(),
            m.expires_at.into(),
            m.attempts.into(),
            m.created_at.into(),
            m.updated_at.into(),
        ]);
    }
    super::batch::insert_rows(conn, "invitations", &COLUMNS, values, "").await?;
    Ok(models)
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

/// Writes decision log entries with one statement per [`super::batch::MAX_ROWS`].
pub async fn insert_decisions<C: ConnectionTrait>(
    conn: &C,
    decisions: Vec<NewDecision<'_>>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    const COLUMNS: [&str; 10] = [
        "id",
        "tenant_id",
        "contact_id",
        "survey_key",
        "invitation_id",
        "outcome",
        "rule",
        "detail",
        "inputs",
        "decided_at",
    ];
    if decisions.is_empty() {
        return Ok(());
    }
    let mut values = Vec::with_capacity(decisions.len() * COLUMNS.len());
    for d in decisions {
        values.extend([
            Value::from(channels::model::new_id()),
            d.tenant_id.into(),
            d.contact_id.into(),
            d.survey_key.to_owned().into(),
            d.invitation_id.into(),
            d.outcome.as_str().into(),
            d.rule.map(str::to_owned).into(),
            d.detail.map(str::to_owned).into(),
            d.inputs.into(),
            now.into(),
        ]);
    }
    super::batch::insert_rows(conn, "policy_decisions", &COLUMNS, values, "").await?;
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
