//! The transactional outbox: events are queued in the same transaction as the business write,
//! one row per sink, and claimed by relays with a lease.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionSession,
    TransactionTrait, Value,
};
use uuid::Uuid;

use super::entities::{dead_letter, outbox};
use super::{placeholders, Db};

use crate::events::Event;

#[derive(Debug, Clone, FromQueryResult)]
pub struct Claimed {
    pub id: i64,
    pub sink: String,
    pub attempts: i32,
    pub payload: serde_json::Value,
}

impl Claimed {
    pub fn event(&self) -> Result<Event, serde_json::Error> {
        serde_json::from_value(self.payload.clone())
    }
}

/// Claims up to `limit` due rows for `worker` until `now + lease`, except rows of the sinks
/// named in `except` (those deliver in the database: [`take_due`]). On PostgreSQL concurrent
/// relays skip each other's rows (`FOR UPDATE SKIP LOCKED`); on SQLite the single writer
/// serializes claims.
pub async fn claim(
    db: &Db,
    worker: &str,
    now: DateTime<Utc>,
    lease: Duration,
    limit: u32,
    except: &[&str],
) -> Result<Vec<Claimed>, DbErr> {
    let mut due = "next_attempt_at <= ? AND (locked_until IS NULL OR locked_until < ?)".to_owned();
    if !except.is_empty() {
        due.push_str(&format!(
            " AND sink NOT IN ({})",
            vec!["?"; except.len()].join(", ")
        ));
    }
    let sql = super::claim_sql(
        db.backend(),
        "outbox",
        &due,
        "id",
        "id, sink, attempts, payload",
    );
    let mut values = vec![
        Value::from(now + lease),
        Value::from(worker.to_owned()),
        Value::from(now),
        Value::from(now),
    ];
    values.extend(except.iter().map(|&sink| Value::from(sink.to_owned())));
    values.push(Value::from(i64::from(limit)));
    let stmt = db.statement(&sql, values);
    let mut rows = Claimed::find_by_statement(stmt).all(&db.write).await?;
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}

/// Due rows of one sink, locked for the caller's transaction (`FOR UPDATE SKIP LOCKED` on
/// PostgreSQL, so another replica's relay takes other rows; SQLite's single writer serializes
/// rounds). For sinks that deliver inside that transaction: no lease is written, and the rows
/// are settled before the same commit.
pub async fn take_due<C: ConnectionTrait>(
    txn: &C,
    sink: &str,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<Claimed>, DbErr> {
    let backend = txn.get_database_backend();
    let lock = if backend == sea_orm::DbBackend::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let sql = format!(
        "SELECT id, sink, attempts, payload FROM outbox WHERE sink = ? AND next_attempt_at <= ? \
         AND (locked_until IS NULL OR locked_until < ?) ORDER BY id LIMIT ?{lock}"
    );
    let stmt = sea_orm::Statement::from_sql_and_values(
        backend,
        placeholders(backend, &sql),
        vec![
            Value::from(sink.to_owned()),
            Value::from(now),
            Value::from(now),
            Value::from(i64::from(limit)),
        ],
    );
    Claimed::find_by_statement(stmt).all(txn).await
}

/// Who holds a row being settled: a relay by its lease, or the caller's transaction, which
/// locked the row when it took it ([`take_due`]).
#[derive(Clone, Copy)]
pub enum Holder<'a> {
    Lease(&'a str),
    Transaction,
}

impl Holder<'_> {
    /// The condition that the row is still held, and its value.
    fn condition(self) -> (&'static str, Option<Value>) {
        match self {
            Holder::Lease(worker) => (" AND locked_by = ?", Some(worker.to_owned().into())),
            Holder::Transaction => ("", None),
        }
    }
}

/// Removes delivered rows still held by `holder`.
pub async fn delete_delivered<C: ConnectionTrait>(
    conn: &C,
    holder: Holder<'_>,
    ids: &[i64],
) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    let (held, by) = holder.condition();
    let sql = format!(
        "DELETE FROM outbox WHERE id IN ({}){held}",
        super::padded_list(ids.len())
    );
    let mut values = super::padded_values(ids.iter().map(|&id| id.into()).collect());
    values.extend(by);
    super::execute(conn, &sql, values).await.map(|_| ())
}

/// Removes delivered rows; only rows this worker still holds, so a row whose lease ran out and
/// was claimed again is not removed under the other worker.
pub async fn complete(db: &Db, worker: &str, ids: &[i64]) -> Result<(), DbErr> {
    delete_delivered(&db.write, Holder::Lease(worker), ids).await
}

/// Puts a failed row back in the queue for another attempt at `next_attempt_at`.
pub async fn retry_later<C: ConnectionTrait>(
    conn: &C,
    holder: Holder<'_>,
    id: i64,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    error: &str,
) -> Result<(), DbErr> {
    let (held, by) = holder.condition();
    let sql = format!(
        "UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ?, \
         locked_until = NULL, locked_by = NULL WHERE id = ?{held}"
    );
    let mut values = vec![
        attempts.into(),
        next_attempt_at.into(),
        error.to_owned().into(),
        id.into(),
    ];
    values.extend(by);
    super::execute(conn, &sql, values).await.map(|_| ())
}

/// Moves a row that has used all its attempts to the dead letters, in one transaction (the
/// caller's, or one of its own on a plain connection).
pub async fn dead_letter<C: TransactionTrait>(
    conn: &C,
    holder: Holder<'_>,
    id: i64,
    attempts: i32,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let txn = conn.begin().await?;
    let mut row = outbox::Entity::find_by_id(id);
    if let Holder::Lease(worker) = holder {
        row = row.filter(outbox::Column::LockedBy.eq(worker));
    }
    let Some(row) = row.one(&txn).await? else {
        return Ok(());
    };
    dead_letter::ActiveModel {
        id: Set(channels::model::new_id()),
        tenant_id: Set(row.tenant_id),
        event_id: Set(row.event_id),
        event_type: Set(row.event_type),
        sink: Set(row.sink),
        aggregate_id: Set(row.aggregate_id),
        payload: Set(row.payload),
        attempts: Set(attempts),
        last_error: Set(Some(error.to_owned())),
        created_at: Set(row.created_at),
        failed_at: Set(now),
        replayed_at: Set(None),
    }
    .insert(&txn)
    .await?;
    outbox::Entity::delete_by_id(id).exec(&txn).await?;
    txn.commit().await
}

/// Rows waiting for delivery, across sinks.
pub async fn depth(db: &Db) -> Result<u64, DbErr> {
    outbox::Entity::find().count(&db.read).await
}

/// The next time a row falls due, to sleep exactly until then.
pub async fn next_due(db: &Db) -> Result<Option<DateTime<Utc>>, DbErr> {
    Ok(outbox::Entity::find()
        .order_by_asc(outbox::Column::NextAttemptAt)
        .one(&db.read)
        .await?
        .map(|r| {
            r.locked_until
                .map_or(r.next_attempt_at, |l| l.max(r.next_attempt_at))
        }))
}

pub async fn dead_letters(
    db: &Db,
    tenant_id: Uuid,
    limit: u64,
) -> Result<Vec<dead_letter::Model>, DbErr> {
    dead_letter::Entity::find()
        .filter(dead_letter::Column::TenantId.eq(tenant_id))
        .order_by_desc(dead_letter::Column::FailedAt)
        .limit(limit)
        .all(&db.read)
        .await
}

/// Puts a dead letter back in the outbox for its sink, with fresh attempts. Returns false when
/// the tenant has no such dead letter or it was replayed already.
pub async fn replay_dead_letter(
    db: &Db,
    tenant_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let txn = db.write.begin().await?;
    let Some(row) = dead_letter::Entity::find_by_id(id)
        .filter(dead_letter::Column::TenantId.eq(tenant_id))
        .filter(dead_letter::Column::ReplayedAt.is_null())
        .one(&txn)
        .await?
    else {
        return Ok(false);
    };
    outbox::ActiveModel {
        tenant_id: Set(row.tenant_id),
        event_id: Set(row.event_id),
        event_type: Set(row.event_type.clone()),
        sink: Set(row.sink.clone()),
        aggregate_id: Set(row.aggregate_id),
        payload: Set(row.payload.clone()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        locked_until: Set(None),
        locked_by: Set(None),
        last_error: Set(None),
        created_at: Set(row.created_at),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let mut active: dead_letter::ActiveModel = row.into();
    active.replayed_at = Set(Some(now));
    active.update(&txn).await?;
    txn.commit().await?;
    Ok(true)
}
