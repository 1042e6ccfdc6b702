//! Batched ingest writes: many accepted answers in one transaction with a handful of multi-row
//! statements, whatever the batch size.
//!
//! Why by hand: sqlx runs each SQLite statement through a channel to the connection's worker
//! thread, and the per-statement thread hand-off, not SQLite, bounds a single writer. Writing a
//! batch in ~8 statements instead of ~8 per answer is what lets one SQLite writer (and fewer
//! PostgreSQL round trips) keep up. Every statement is plain SQL both databases accept.

use std::collections::HashSet;

use channels::model::Feedback;
use channels::vocabulary::RawOutcome;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, Statement, Value};
use uuid::Uuid;

use super::placeholders;
use crate::events::Event;

/// `INSERT INTO table (cols) VALUES (?, …), (?, …) suffix`: for bulk loads (benchmarks, tests);
/// the gateway's own writes use [`fixed_insert`].
pub fn insert_sql(table: &str, columns: &[&str], rows: usize, suffix: &str) -> String {
    let one = format!("({})", vec!["?"; columns.len()].join(", "));
    let all = vec![one.as_str(); rows].join(", ");
    format!(
        "INSERT INTO {table} ({}) VALUES {all} {suffix}",
        columns.join(", ")
    )
}

/// Rows one [`fixed_insert`] statement takes at most.
pub const MAX_ROWS: usize = 512;

/// A multi-row insert whose shape does not follow the batch size: `values` (rows of
/// `columns.len()` values, flat) are padded with rows of NULLs up to the next power of two, and
/// the statement keeps only the real rows (`WHERE column1 IS NOT NULL`: the first column must
/// never be NULL in a real row):
///
/// `INSERT INTO table (cols) SELECT * FROM (VALUES (?, …), …) AS v WHERE column1 IS NOT NULL suffix`
///
/// Why: a statement per batch size meant hundreds of distinct statements under load, which
/// evicted each other from every connection's statement cache (100 entries in sqlx), so
/// SQLite parsed them anew and PostgreSQL paid a round trip more to prepare each. Padded, a
/// table is written by at most ten statements (1, 2, 4, … 512 rows), prepared once per
/// connection. Both databases name a VALUES list's columns `column1`, `column2`, ….
pub fn fixed_insert(
    table: &str,
    columns: &[&str],
    mut values: Vec<Value>,
    suffix: &str,
) -> (String, Vec<Value>) {
    let width = columns.len();
    let rows = values.len() / width;
    assert!(
        rows > 0 && rows <= MAX_ROWS && values.len() % width == 0,
        "fixed_insert takes 1 to {MAX_ROWS} whole rows"
    );
    let shape = rows.next_power_of_two();
    let nulls: Vec<Value> = values[..width].iter().map(Value::as_null).collect();
    for _ in rows..shape {
        values.extend(nulls.iter().cloned());
    }
    let one = format!("({})", vec!["?"; width].join(", "));
    let all = vec![one.as_str(); shape].join(", ");
    let sql = format!(
        "INSERT INTO {table} ({}) SELECT * FROM (VALUES {all}) AS v WHERE column1 IS NOT NULL {suffix}",
        columns.join(", ")
    );
    (sql, values)
}

/// Inserts rows (flat `values`, `columns.len()` a row) in [`fixed_insert`] statements of at most
/// [`MAX_ROWS`] rows; the rows each statement's `suffix` returns.
pub async fn insert_rows<C: ConnectionTrait>(
    conn: &C,
    table: &str,
    columns: &[&str],
    values: Vec<Value>,
    suffix: &str,
) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
    let mut returned = Vec::new();
    let mut rest = values;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(MAX_ROWS * columns.len()));
        let (sql, values) =
            fixed_insert(table, columns, std::mem::replace(&mut rest, tail), suffix);
        // Without `RETURNING` in `suffix` a statement returns no rows.
        returned.extend(query(conn, &sql, values).await?);
    }
    Ok(returned)
}

pub(super) async fn run<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<(), DbErr> {
    super::execute(conn, sql, values).await.map(|_| ())
}

pub(super) async fn query<C: ConnectionTrait>(
    conn: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
    let backend = conn.get_database_backend();
    conn.query_all_raw(Statement::from_sql_and_values(
        backend,
        placeholders(backend, sql),
        values,
    ))
    .await
}

/// Tables whose rows a request may name by id, each row belonging to one tenant.
#[derive(Clone, Copy)]
pub enum Owned {
    Contacts,
    Invitations,
}

/// Of the given (tenant, id) pairs, those that exist in `table`: an id another tenant owns
/// is not among them.
pub async fn existing<C: ConnectionTrait>(
    conn: &C,
    table: Owned,
    pairs: &[(Uuid, Uuid)],
) -> Result<HashSet<(Uuid, Uuid)>, DbErr> {
    let table = match table {
        Owned::Contacts => "contacts",
        Owned::Invitations => "invitations",
    };
    if pairs.is_empty() {
        return Ok(HashSet::new());
    }
    let condition = vec!["(tenant_id = ? AND id = ?)"; pairs.len()].join(" OR ");
    let values = pairs
        .iter()
        .flat_map(|(t, c)| [Value::from(*t), Value::from(*c)])
        .collect();
    let rows = query(
        conn,
        &format!("SELECT tenant_id, id FROM {table} WHERE {condition}"),
        values,
    )
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("", "tenant_id")?, r.try_get("", "id")?)))
        .collect()
}

pub struct RawRow<'a> {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub provider: &'a str,
    pub provider_ref: Option<&'a str>,
    pub kind: &'a str,
    pub body_sha256: &'a str,
    /// Digest of the signed content, unique per tenant and provider where given.
    pub signed_sha256: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub payload: &'a str,
}

/// Inserts raw events, skipping those whose (tenant, provider, provider_ref) or (tenant,
/// provider, signed_sha256) is stored already (or appears earlier in the batch). Returns the ids
/// that were inserted.
pub async fn insert_raw_events<C: ConnectionTrait>(
    conn: &C,
    rows: &[RawRow<'_>],
    now: DateTime<Utc>,
) -> Result<HashSet<Uuid>, DbErr> {
    if rows.is_empty() {
        return Ok(HashSet::new());
    }
    let columns = [
        "id",
        "tenant_id",
        "provider",
        "provider_ref",
        "kind",
        "body_sha256",
        "signed_sha256",
        "content_type",
        "payload",
        "outcome",
        "received_at",
    ];
    let mut values = Vec::with_capacity(rows.len() * columns.len());
    for r in rows {
        // PostgreSQL's text type cannot hold U+0000 (a provider's form may carry one); the
        // body's hash keeps the exact bytes.
        let payload = if r.payload.contains('\0') {
            r.payload.replace('\0', "\u{FFFD}")
        } else {
            r.payload.to_owned()
        };
        values.extend([
            Value::from(r.id),
            r.tenant_id.into(),
            r.provider.into(),
            r.provider_ref.map(str::to_owned).into(),
            r.kind.into(),
            r.body_sha256.into(),
            r.signed_sha256.map(str::to_owned).into(),
            r.content_type.map(str::to_owned).into(),
            payload.into(),
            RawOutcome::Accepted.as_str().into(),
            now.into(),
        ]);
    }
    // Without a conflict target: either unique key makes the row a duplicate.
    let suffix = "ON CONFLICT DO NOTHING RETURNING id";
    insert_rows(conn, "raw_events", &columns, values, suffix)
        .await?
        .iter()
        .map(|r| r.try_get("", "id"))
        .collect()
}

pub async fn insert_feedback<C: ConnectionTrait>(
    conn: &C,
    rows: &[(&Feedback, Option<Uuid>)],
) -> Result<(), DbErr> {
    let columns = [
        "id",
        "tenant_id",
        "channel",
        "provider",
        "provider_ref",
        "raw_event_id",
        "contact_id",
        "invitation_id",
        "metric",
        "score",
        "scale",
        "comment",
        "language",
        "ticket_ref",
        "agent_ref",
        "team_ref",
        "occurred_at",
        "received_at",
        "updated_at",
        "metadata",
    ];
    let mut values = Vec::with_capacity(rows.len() * columns.len());
    for (f, raw_id) in rows {
        values.extend([
            Value::from(f.id),
            f.tenant_id.into(),
            f.channel.clone().into(),
            f.provider.clone().into(),
            f.provider_ref.clone().into(),
            (*raw_id).into(),
            f.contact_id.into(),
            f.invitation_id.into(),
            f.metric.as_str().into(),
            f.score.into(),
            f.scale.map(|s| s.as_str().to_owned()).into(),
            f.comment.clone().into(),
            f.language.clone().into(),
            f.ticket_ref.clone().into(),
            f.agent_ref.clone().into(),
            f.team_ref.clone().into(),
            f.occurred_at.into(),
            f.received_at.into(),
            f.received_at.into(),
            f.metadata.clone().into(),
        ]);
    }
    if !values.is_empty() {
        insert_rows(conn, "feedback", &columns, values, "").await?;
    }
    Ok(())
}

/// Where events are queued: a sink, and the event types it takes (`None`: all). A sink that
/// does not take a type gets no outbox row for it, so it costs no write.
#[derive(Clone, Copy)]
pub struct Route {
    pub sink: &'static str,
    pub types: Option<&'static [&'static str]>,
    /// `Some`: only events of the tenants it admits.
    pub tenants: Option<&'static super::endpoints::TenantGate>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("sink", &self.sink)
            .field("types", &self.types)
            .field("per_tenant", &self.tenants.is_some())
            .finish()
    }
}

impl Route {
    pub fn takes(&self, event_type: &str) -> bool {
        self.types.is_none_or(|types| types.contains(&event_type))
    }

    fn takes_event(&self, event: &Event) -> bool {
        self.takes(&event.event_type) && self.tenants.is_none_or(|t| t.admits(event.tenant_id))
    }
}

/// Whether any of `routes` takes `event_type`: if none does, the event need not be built.
pub fn any_takes(routes: &[Route], event_type: &str) -> bool {
    routes.iter().any(|r| r.takes(event_type))
}

/// Queues each event once per sink that takes its type.
pub async fn enqueue<C: ConnectionTrait>(
    conn: &C,
    events: &[Event],
    sinks: &[Route],
) -> Result<(), DbErr> {
    let queued: Vec<(&Event, &str)> = events
        .iter()
        .flat_map(|event| {
            sinks
                .iter()
                .filter(|r| r.takes_event(event))
                .map(move |r| (event, r.sink))
        })
        .collect();
    enqueue_to(conn, &queued).await
}

/// Queues each event under the sink name beside it, due now. (Not at the event's own time: an
/// event may carry a clock's time that is not the database's, as the closed loop's does.)
pub async fn enqueue_to<C: ConnectionTrait>(
    conn: &C,
    queued: &[(&Event, &str)],
) -> Result<(), DbErr> {
    let now = super::now();
    let columns = [
        "tenant_id",
        "event_id",
        "event_type",
        "sink",
        "aggregate_id",
        "payload",
        "attempts",
        "next_attempt_at",
        "created_at",
    ];
    let mut values = Vec::new();
    for (event, sink) in queued {
        let payload = serde_json::to_value(event).map_err(|e| DbErr::Json(e.to_string()))?;
        values.extend([
            Value::from(event.tenant_id),
            event.id.into(),
            event.event_type.clone().into(),
            (*sink).into(),
            event.aggregate_id.into(),
            payload.into(),
            0i32.into(),
            now.into(),
            now.into(),
        ]);
    }
    if !values.is_empty() {
        insert_rows(conn, "outbox", &columns, values, "").await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_inserts_pad_to_a_power_of_two_with_rows_the_statement_drops() {
        let row = |n: i32| [Value::from(n), Value::from(Some(format!("r{n}")))];
        let values: Vec<Value> = (1..=3).flat_map(row).collect();
        let (sql, padded) = fixed_insert("t", &["a", "b"], values, "RETURNING a");
        assert_eq!(
            sql,
            "INSERT INTO t (a, b) SELECT * FROM (VALUES (?, ?), (?, ?), (?, ?), (?, ?)) AS v \
             WHERE column1 IS NOT NULL RETURNING a"
        );
        assert_eq!(padded.len(), 8);
        assert_eq!(&padded[6..], &[Value::Int(None), Value::String(None)]);
        // Every size from 1 to MAX_ROWS is written by one of ten statements.
        let shapes: std::collections::HashSet<String> = (1..=MAX_ROWS)
            .map(|n| fixed_insert("t", &["a"], vec![Value::from(1); n], "").0)
            .collect();
        assert_eq!(shapes.len(), 10);
    }

    #[test]
    fn insert_sql_repeats_the_row_shape() {
        assert_eq!(
            insert_sql("t", &["a", "b"], 2, "RETURNING a"),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) RETURNING a"
        );
    }
}
