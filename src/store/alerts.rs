//! The closed loop's tables: alert rules (stored as the JSON the tenant put), the owner
//! directory, and alerts. Every status change is a conditional update that names the statuses
//! it may leave, so two replicas (or a person and the sweeper) never both make it.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value};
use uuid::Uuid;

use super::batch::{insert_rows, query};
use super::{execute, padded_list, padded_values, placeholders, union_all};

/// A rule as stored: its key and the JSON the tenant put.
pub type StoredRule = (String, serde_json::Value);

/// What the closed loop reads of a tenant for every answer, cached
/// ([`super::cache::Caches::alert_setup`]): its stored rules, and whether it has an owner
/// directory at all (without one, no owner is looked up).
#[derive(Debug, Clone, Default)]
pub struct AlertSetup {
    pub rules: Vec<StoredRule>,
    pub has_owners: bool,
}

/// A tenant's [`AlertSetup`], from the database.
pub async fn setup_of<C: ConnectionTrait>(conn: &C, tenant_id: Uuid) -> Result<AlertSetup, DbErr> {
    let rules = rules_of(conn, &[tenant_id])
        .await?
        .into_iter()
        .map(|(_, rule)| rule)
        .collect();
    let has_owners = !query(
        conn,
        "SELECT ref FROM owners WHERE tenant_id = ? LIMIT 1",
        vec![tenant_id.into()],
    )
    .await?
    .is_empty();
    Ok(AlertSetup { rules, has_owners })
}

/// The stored rules of these tenants (the default rule is not stored until a tenant changes it).
pub async fn rules_of<C: ConnectionTrait>(
    conn: &C,
    tenant_ids: &[Uuid],
) -> Result<Vec<(Uuid, StoredRule)>, DbErr> {
    if tenant_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT tenant_id, key, rule FROM alert_rules WHERE tenant_id IN ({}) ORDER BY key",
        padded_list(tenant_ids.len())
    );
    let values = padded_values(tenant_ids.to_vec())
        .into_iter()
        .map(Value::from)
        .collect();
    query(conn, &sql, values)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("", "tenant_id")?,
                (r.try_get("", "key")?, r.try_get("", "rule")?),
            ))
        })
        .collect()
}

pub async fn put_rule<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    key: &str,
    rule: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    execute(
        conn,
        "INSERT INTO alert_rules (tenant_id, key, rule, updated_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (tenant_id, key) DO UPDATE SET rule = excluded.rule, \
         updated_at = excluded.updated_at",
        vec![tenant_id.into(), key.into(), rule.into(), now.into()],
    )
    .await
    .map(|_| ())
}

pub async fn delete_rule<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    key: &str,
) -> Result<bool, DbErr> {
    execute(
        conn,
        "DELETE FROM alert_rules WHERE tenant_id = ? AND key = ?",
        vec![tenant_id.into(), key.into()],
    )
    .await
    .map(|n| n > 0)
}

/// A person (or a team's shared inbox) alerts are assigned to, by the ref the platforms send
/// as `agent_ref` or `team_ref`.
#[derive(Debug, Clone, PartialEq)]
pub struct Owner {
    pub tenant_id: Uuid,
    pub reference: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub slack_webhook_url: Option<String>,
    pub teams_webhook_url: Option<String>,
    pub time_zone: Option<String>,
    /// The owner an overdue alert of this owner's (or team's) escalates to.
    pub escalate_to: Option<String>,
    /// The tenant's default owner: alerts whose answer names no known agent or team.
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const OWNER_COLUMNS: &str = "tenant_id, ref, name, email, slack_webhook_url, teams_webhook_url, \
                             time_zone, escalate_to, is_default, created_at, updated_at";

impl Owner {
    fn from_row(r: &QueryResult) -> Result<Owner, DbErr> {
        Ok(Owner {
            tenant_id: r.try_get("", "tenant_id")?,
            reference: r.try_get("", "ref")?,
            name: r.try_get("", "name")?,
            email: r.try_get("", "email")?,
            slack_webhook_url: r.try_get("", "slack_webhook_url")?,
            teams_webhook_url: r.try_get("", "teams_webhook_url")?,
            time_zone: r.try_get("", "time_zone")?,
            escalate_to: r.try_get("", "escalate_to")?,
            is_default: r.try_get("", "is_default")?,
            created_at: r.try_get("", "created_at")?,
            updated_at: r.try_get("", "updated_at")?,
        })
    }
}

/// Creates or replaces an owner; a new default owner takes the place of the old one.
pub async fn put_owner<C: ConnectionTrait>(conn: &C, owner: &Owner) -> Result<(), DbErr> {
    if owner.is_default {
        execute(
            conn,
            "UPDATE owners SET is_default = ? WHERE tenant_id = ? AND is_default = ? AND ref <> ?",
            vec![
                false.into(),
                owner.tenant_id.into(),
                true.into(),
                owner.reference.clone().into(),
            ],
        )
        .await?;
    }
    execute(
        conn,
        &format!(
            "INSERT INTO owners ({OWNER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (tenant_id, ref) DO UPDATE SET name = excluded.name, \
             email = excluded.email, slack_webhook_url = excluded.slack_webhook_url, \
             teams_webhook_url = excluded.teams_webhook_url, time_zone = excluded.time_zone, \
             escalate_to = excluded.escalate_to, is_default = excluded.is_default, \
             updated_at = excluded.updated_at"
        ),
        vec![
            owner.tenant_id.into(),
            owner.reference.clone().into(),
            owner.name.clone().into(),
            owner.email.clone().into(),
            owner.slack_webhook_url.clone().into(),
            owner.teams_webhook_url.clone().into(),
            owner.time_zone.clone().into(),
            owner.escalate_to.clone().into(),
            owner.is_default.into(),
            owner.created_at.into(),
            owner.updated_at.into(),
        ],
    )
    .await
    .map(|_| ())
}

pub async fn owners<C: ConnectionTrait>(conn: &C, tenant_id: Uuid) -> Result<Vec<Owner>, DbErr> {
    query(
        conn,
        &format!("SELECT {OWNER_COLUMNS} FROM owners WHERE tenant_id = ? ORDER BY ref LIMIT 1000"),
        vec![tenant_id.into()],
    )
    .await?
    .iter()
    .map(Owner::from_row)
    .collect()
}

pub async fn delete_owner<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    reference: &str,
) -> Result<bool, DbErr> {
    execute(
        conn,
        "DELETE FROM owners WHERE tenant_id = ? AND ref = ?",
        vec![tenant_id.into(), reference.into()],
    )
    .await
    .map(|n| n > 0)
}

/// The owners of these (tenant, ref) pairs that exist, and every listed tenant's default
/// owner: one statement, each branch an equality on an index's full key.
pub async fn directory<C: ConnectionTrait>(
    conn: &C,
    refs: &[(Uuid, &str)],
    tenants: &[Uuid],
) -> Result<Vec<Owner>, DbErr> {
    let mut parts = Vec::new();
    let mut values = Vec::new();
    if !refs.is_empty() {
        let branch = format!("SELECT {OWNER_COLUMNS} FROM owners WHERE tenant_id = ? AND ref = ?");
        let lookups = refs
            .iter()
            .map(|(t, r)| vec![Value::from(*t), Value::from(*r)])
            .collect();
        let (sql, more) = union_all(&branch, lookups);
        parts.push(sql);
        values.extend(more);
    }
    if !tenants.is_empty() {
        let branch =
            format!("SELECT {OWNER_COLUMNS} FROM owners WHERE tenant_id = ? AND is_default = ?");
        let lookups = tenants
            .iter()
            .map(|t| vec![Value::from(*t), Value::from(true)])
            .collect();
        let (sql, more) = union_all(&branch, lookups);
        parts.push(sql);
        values.extend(more);
    }
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    let mut found = query(conn, &parts.join(" UNION ALL "), values)
        .await?
        .iter()
        .map(Owner::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    found.sort_by(|a, b| (a.tenant_id, &a.reference).cmp(&(b.tenant_id, &b.reference)));
    found.dedup_by(|a, b| a.tenant_id == b.tenant_id && a.reference == b.reference);
    Ok(found)
}

/// The survey key of each of these invitations (for rules that filter by survey).
pub async fn survey_keys<C: ConnectionTrait>(
    conn: &C,
    invitation_ids: &[Uuid],
) -> Result<Vec<(Uuid, String)>, DbErr> {
    if invitation_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT i.id AS id, s.key AS key FROM invitations i JOIN surveys s ON s.id = i.survey_id \
         WHERE i.id IN ({})",
        padded_list(invitation_ids.len())
    );
    let values = padded_values(invitation_ids.to_vec())
        .into_iter()
        .map(Value::from)
        .collect();
    query(conn, &sql, values)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("", "id")?, r.try_get("", "key")?)))
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub feedback_id: Uuid,
    pub rule_key: String,
    pub status: String,
    pub severity: String,
    pub owner_ref: Option<String>,
    pub agent_ref: Option<String>,
    pub team_ref: Option<String>,
    pub contact_id: Option<Uuid>,
    pub metric: String,
    pub score: Option<i16>,
    /// The answer's scale (`good-bad` for a platform's thumbs).
    pub scale: Option<String>,
    pub answered_at: DateTime<Utc>,
    pub opened_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub note: Option<String>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

pub const OPEN: &str = "open";
pub const ACKNOWLEDGED: &str = "acknowledged";
pub const RESOLVED: &str = "resolved";
pub const SELF_RESOLVED: &str = "self_resolved";
pub const STATUSES: [&str; 4] = [OPEN, ACKNOWLEDGED, RESOLVED, SELF_RESOLVED];

const COLUMNS: [&str; 23] = [
    "id",
    "tenant_id",
    "feedback_id",
    "rule_key",
    "status",
    "severity",
    "owner_ref",
    "agent_ref",
    "team_ref",
    "contact_id",
    "metric",
    "score",
    "scale",
    "answered_at",
    "opened_at",
    "due_at",
    "acknowledged_at",
    "resolved_at",
    "outcome",
    "note",
    "escalated_at",
    "escalate_at",
    "updated_at",
];

fn columns() -> String {
    COLUMNS.join(", ")
}

impl Alert {
    fn from_row(r: &QueryResult) -> Result<Alert, DbErr> {
        Ok(Alert {
            id: r.try_get("", "id")?,
            tenant_id: r.try_get("", "tenant_id")?,
            feedback_id: r.try_get("", "feedback_id")?,
            rule_key: r.try_get("", "rule_key")?,
            status: r.try_get("", "status")?,
            severity: r.try_get("", "severity")?,
            owner_ref: r.try_get("", "owner_ref")?,
            agent_ref: r.try_get("", "agent_ref")?,
            team_ref: r.try_get("", "team_ref")?,
            contact_id: r.try_get("", "contact_id")?,
            metric: r.try_get("", "metric")?,
            score: r.try_get("", "score")?,
            scale: r.try_get("", "scale")?,
            answered_at: r.try_get("", "answered_at")?,
            opened_at: r.try_get("", "opened_at")?,
            due_at: r.try_get("", "due_at")?,
            acknowledged_at: r.try_get("", "acknowledged_at")?,
            resolved_at: r.try_get("", "resolved_at")?,
            outcome: r.try_get("", "outcome")?,
            note: r.try_get("", "note")?,
            escalated_at: r.try_get("", "escalated_at")?,
            updated_at: r.try_get("", "updated_at")?,
        })
    }

    pub fn is_unresolved(&self) -> bool {
        self.status == OPEN || self.status == ACKNOWLEDGED
    }
}

fn rows(found: Vec<QueryResult>) -> Result<Vec<Alert>, DbErr> {
    found.iter().map(Alert::from_row).collect()
}

/// Inserts new alerts; the ids of those inserted. An answer that has an alert already (opened
/// by another replica at the same moment) keeps it: the unique key on the answer decides.
pub async fn insert<C: ConnectionTrait>(
    conn: &C,
    alerts: &[Alert],
) -> Result<std::collections::HashSet<Uuid>, DbErr> {
    if alerts.is_empty() {
        return Ok(Default::default());
    }
    let mut values = Vec::with_capacity(alerts.len() * COLUMNS.len());
    for a in alerts {
        values.extend([
            Value::from(a.id),
            a.tenant_id.into(),
            a.feedback_id.into(),
            a.rule_key.clone().into(),
            a.status.clone().into(),
            a.severity.clone().into(),
            a.owner_ref.clone().into(),
            a.agent_ref.clone().into(),
            a.team_ref.clone().into(),
            a.contact_id.into(),
            a.metric.clone().into(),
            a.score.into(),
            a.scale.clone().into(),
            a.answered_at.into(),
            a.opened_at.into(),
            a.due_at.into(),
            a.acknowledged_at.into(),
            a.resolved_at.into(),
            a.outcome.clone().into(),
            a.note.clone().into(),
            a.escalated_at.into(),
            Some(a.due_at).into(),
            a.updated_at.into(),
        ]);
    }
    insert_rows(
        conn,
        "alerts",
        &COLUMNS,
        values,
        "ON CONFLICT (feedback_id) DO NOTHING RETURNING id",
    )
    .await?
    .iter()
    .map(|r| r.try_get("", "id"))
    .collect()
}

/// The alerts of these answers.
pub async fn of_answers<C: ConnectionTrait>(
    conn: &C,
    feedback_ids: &[Uuid],
) -> Result<Vec<Alert>, DbErr> {
    if feedback_ids.is_empty() {
        return Ok(Vec::new());
    }
    let statement = of_answers_statement(conn.get_database_backend(), feedback_ids);
    rows(conn.query_all_raw(statement).await?)
}

/// [`of_answers`]' statement (through `ux_alerts_feedback`).
pub fn of_answers_statement(backend: DbBackend, feedback_ids: &[Uuid]) -> Statement {
    let sql = format!(
        "SELECT {} FROM alerts WHERE feedback_id IN ({})",
        columns(),
        padded_list(feedback_ids.len())
    );
    let values: Vec<Value> = padded_values(feedback_ids.to_vec())
        .into_iter()
        .map(Value::from)
        .collect();
    Statement::from_sql_and_values(backend, placeholders(backend, &sql), values)
}

pub async fn get<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<Alert>, DbErr> {
    let sql = format!(
        "SELECT {} FROM alerts WHERE id = ? AND tenant_id = ?",
        columns()
    );
    Ok(rows(query(conn, &sql, vec![id.into(), tenant_id.into()]).await?)?.pop())
}

/// The tenant of an alert (an acknowledge link names the alert only).
pub async fn tenant_of<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Option<Uuid>, DbErr> {
    query(
        conn,
        "SELECT tenant_id FROM alerts WHERE id = ?",
        vec![id.into()],
    )
    .await?
    .first()
    .map(|r| r.try_get("", "tenant_id"))
    .transpose()
}

/// A change of an alert, made only from the statuses in `from`; the alert as it is after, or
/// `None` when it was in none of them (or is not the tenant's).
pub struct Change<'a> {
    pub from: &'a [&'a str],
    /// Assignments with one `?` each (`status = ?`, `acknowledged_at = COALESCE(acknowledged_at, ?)`)
    /// and their values.
    pub set: Vec<(&'static str, Value)>,
}

pub async fn change<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
    change: Change<'_>,
    now: DateTime<Utc>,
) -> Result<Option<Alert>, DbErr> {
    let mut assignments: Vec<String> = change
        .set
        .iter()
        .map(|(assignment, _)| (*assignment).to_owned())
        .collect();
    assignments.push("updated_at = ?".into());
    let mut values: Vec<Value> = change.set.into_iter().map(|(_, v)| v).collect();
    values.extend([now.into(), id.into(), tenant_id.into()]);
    values.extend(change.from.iter().map(|s| Value::from(*s)));
    let sql = format!(
        "UPDATE alerts SET {} WHERE id = ? AND tenant_id = ? AND status IN ({}) RETURNING {}",
        assignments.join(", "),
        vec!["?"; change.from.len()].join(", "),
        columns()
    );
    Ok(rows(query(conn, &sql, values).await?)?.pop())
}

/// Filters of `GET /v1/alerts`.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub status: Option<String>,
    pub owner: Option<String>,
    pub severity: Option<String>,
    /// Unresolved and past due at this instant.
    pub overdue_at: Option<DateTime<Utc>>,
    pub before_id: Option<Uuid>,
    pub limit: u64,
}

/// Newest first (ids are UUIDv7).
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    f: &ListFilter,
) -> Result<Vec<Alert>, DbErr> {
    let statement = list_statement(conn.get_database_backend(), tenant_id, f);
    rows(conn.query_all_raw(statement).await?)
}

/// [`list`]'s statement: a page of the tenant's alerts through `ix_alerts_tenant_id`, newest
/// first, whatever else the filters ask.
pub fn list_statement(backend: DbBackend, tenant_id: Uuid, f: &ListFilter) -> Statement {
    let mut conditions = vec!["tenant_id = ?".to_owned()];
    let mut values = vec![Value::from(tenant_id)];
    if let Some(status) = &f.status {
        conditions.push("status = ?".into());
        values.push(status.clone().into());
    }
    if let Some(owner) = &f.owner {
        conditions.push("owner_ref = ?".into());
        values.push(owner.clone().into());
    }
    if let Some(severity) = &f.severity {
        conditions.push("severity = ?".into());
        values.push(severity.clone().into());
    }
    if let Some(at) = f.overdue_at {
        conditions.push("status IN (?, ?) AND due_at < ?".into());
        values.extend([OPEN.into(), ACKNOWLEDGED.into(), at.into()]);
    }
    if let Some(before) = f.before_id {
        conditions.push("id < ?".into());
        values.push(before.into());
    }
    values.push((f.limit as i64).into());
    let sql = format!(
        "SELECT {} FROM alerts WHERE {} ORDER BY id DESC LIMIT ?",
        columns(),
        conditions.join(" AND ")
    );
    Statement::from_sql_and_values(backend, placeholders(backend, &sql), values)
}

/// Marks up to `limit` unresolved alerts whose follow-up was due by `now` as escalated, and
/// returns them: each is returned once, whichever replica's sweep takes it.
pub async fn take_overdue<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Alert>, DbErr> {
    let statement = take_overdue_statement(conn.get_database_backend(), now, limit);
    rows(conn.query_all_raw(statement).await?)
}

/// [`take_overdue`]'s statement (through `ix_alerts_escalate_at`).
pub fn take_overdue_statement(backend: DbBackend, now: DateTime<Utc>, limit: u64) -> Statement {
    let lock = if backend == DbBackend::Postgres {
        "FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let sql = format!(
        "UPDATE alerts SET escalated_at = ?, escalate_at = NULL, updated_at = ? \
         WHERE id IN (SELECT id FROM alerts WHERE escalate_at <= ? ORDER BY escalate_at \
         LIMIT ? {lock}) AND status IN (?, ?) RETURNING {}",
        columns()
    );
    let values: Vec<Value> = vec![
        now.into(),
        now.into(),
        now.into(),
        (limit as i64).into(),
        OPEN.into(),
        ACKNOWLEDGED.into(),
    ];
    Statement::from_sql_and_values(backend, placeholders(backend, &sql), values)
}

/// Open (unacknowledged) and overdue (unresolved, past due at `now`) alerts per tenant slug,
/// for the gauges. Reads unresolved alerts only (`ix_alerts_status`).
pub async fn counts<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
) -> Result<Vec<(String, i64, i64)>, DbErr> {
    let sql = "SELECT t.slug AS slug, \
               SUM(CASE WHEN a.status = ? THEN 1 ELSE 0 END) AS open, \
               SUM(CASE WHEN a.due_at < ? THEN 1 ELSE 0 END) AS overdue \
               FROM alerts a JOIN tenants t ON t.id = a.tenant_id \
               WHERE a.status IN (?, ?) GROUP BY t.slug";
    query(
        conn,
        sql,
        vec![OPEN.into(), now.into(), OPEN.into(), ACKNOWLEDGED.into()],
    )
    .await?
    .iter()
    .map(|r| {
        Ok((
            r.try_get("", "slug")?,
            r.try_get::<i64>("", "open")?,
            r.try_get::<i64>("", "overdue")?,
        ))
    })
    .collect()
}

/// An alert opened in a period, with the same contact's next answer to the same metric, if
/// there was one: what the statistics need.
#[derive(Debug, Clone)]
pub struct Measured {
    pub alert: Alert,
    pub next_score: Option<i16>,
    pub next_scale: Option<String>,
}

/// Alerts opened in `[from, to)`, at most `limit`, each with the contact's next answer (one
/// indexed look-up per alert through `ix_feedback_contact_metric`).
pub async fn opened_between<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Measured>, DbErr> {
    let statement =
        opened_between_statement(conn.get_database_backend(), tenant_id, from, to, limit);
    conn.query_all_raw(statement)
        .await?
        .iter()
        .map(|r| {
            Ok(Measured {
                alert: Alert::from_row(r)?,
                next_score: r.try_get("", "next_score")?,
                next_scale: r.try_get("", "next_scale")?,
            })
        })
        .collect()
}

/// [`opened_between`]'s statement.
pub fn opened_between_statement(
    backend: DbBackend,
    tenant_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: u64,
) -> Statement {
    let next = |column: &str| {
        format!(
            "(SELECT n.{column} FROM feedback n WHERE n.tenant_id = a.tenant_id \
             AND n.contact_id = a.contact_id AND n.metric = a.metric \
             AND n.occurred_at > a.answered_at AND n.score IS NOT NULL \
             ORDER BY n.occurred_at LIMIT 1)"
        )
    };
    let alert_columns: Vec<String> = COLUMNS.iter().map(|c| format!("a.{c}")).collect();
    let sql = format!(
        "SELECT {}, {} AS next_score, {} AS next_scale \
         FROM alerts a WHERE a.tenant_id = ? AND a.opened_at >= ? AND a.opened_at < ? \
         ORDER BY a.opened_at LIMIT ?",
        alert_columns.join(", "),
        next("score"),
        next("scale"),
    );
    let values: Vec<Value> = vec![
        tenant_id.into(),
        from.into(),
        to.into(),
        (limit as i64).into(),
    ];
    Statement::from_sql_and_values(backend, placeholders(backend, &sql), values)
}
