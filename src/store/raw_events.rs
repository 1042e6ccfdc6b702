//! Raw events after they are stored: the answer given for them, deliveries kept because they
//! could not be read, and their replays.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement, Value,
};
use uuid::Uuid;

use super::entities::raw_event;
use super::execute;

/// Whether a delivery was stored before: under the platform's delivery id, or with the same
/// signed content (a replay under a new, unsigned delivery id).
pub async fn delivered_before<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    provider: &str,
    delivery_ref: Option<&str>,
    signed_sha256: Option<&str>,
) -> Result<bool, DbErr> {
    let backend = conn.get_database_backend();
    let Some(statement) =
        delivered_before_statement(backend, tenant_id, provider, delivery_ref, signed_sha256)
    else {
        return Ok(false);
    };
    Ok(conn.query_one_raw(statement).await?.is_some())
}

/// The statement behind [`delivered_before`]; `None` when there is nothing to recognise the
/// delivery by. One select per key joined by `UNION ALL`, each the whole key of a unique index:
/// an `OR` of the two lets PostgreSQL read every raw event of the tenant and provider.
pub fn delivered_before_statement(
    backend: DbBackend,
    tenant_id: Uuid,
    provider: &str,
    delivery_ref: Option<&str>,
    signed_sha256: Option<&str>,
) -> Option<Statement> {
    let branches: Vec<(&str, &str)> = [
        ("provider_ref", delivery_ref),
        ("signed_sha256", signed_sha256),
    ]
    .into_iter()
    .filter_map(|(column, value)| value.map(|v| (column, v)))
    .collect();
    if branches.is_empty() {
        return None;
    }
    let mut values: Vec<Value> = Vec::new();
    let selects: Vec<String> = branches
        .iter()
        .map(|(column, value)| {
            values.extend([tenant_id.into(), provider.into(), (*value).into()]);
            format!(
                "SELECT 1 AS hit FROM raw_events WHERE tenant_id = ? AND provider = ? AND {column} = ?"
            )
        })
        .collect();
    let sql = format!("{} LIMIT 1", selects.join(" UNION ALL "));
    Some(Statement::from_sql_and_values(
        backend,
        super::placeholders(backend, &sql),
        values,
    ))
}

/// The tenant's raw events with this outcome, newest first.
pub async fn with_outcome<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    outcome: &str,
    limit: u64,
) -> Result<Vec<raw_event::Model>, DbErr> {
    raw_event::Entity::find()
        .filter(raw_event::Column::TenantId.eq(tenant_id))
        .filter(raw_event::Column::Outcome.eq(outcome))
        .order_by_desc(raw_event::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// Keeps what the gateway answered the provider, so a redelivery gets the same answer.
pub async fn set_answer<C: ConnectionTrait>(
    conn: &C,
    raw_id: Uuid,
    answer: Option<&str>,
) -> Result<(), DbErr> {
    set_answers(conn, &[(raw_id, answer.map(str::to_owned))]).await
}

/// [`set_answer`] for several raw events: one statement per distinct answer (a group of
/// replies mostly answers the same thank-you).
pub async fn set_answers<C: ConnectionTrait>(
    conn: &C,
    answers: &[(Uuid, Option<String>)],
) -> Result<(), DbErr> {
    let mut by_answer: std::collections::BTreeMap<Option<&str>, Vec<Value>> = Default::default();
    for (id, answer) in answers {
        by_answer
            .entry(answer.as_deref())
            .or_default()
            .push((*id).into());
    }
    for (answer, ids) in by_answer {
        let sql = format!(
            "UPDATE raw_events SET response_status = ?, response_body = ? WHERE id IN ({})",
            super::padded_list(ids.len())
        );
        let mut values = vec![200i32.into(), answer.map(str::to_owned).into()];
        values.extend(super::padded_values(ids));
        execute(conn, &sql, values).await?;
    }
    Ok(())
}

/// Marks a raw event kept because it could not be read, with the reason it was answered.
pub async fn mark_unreadable<C: ConnectionTrait>(
    conn: &C,
    raw_id: Uuid,
    reason: &serde_json::Value,
) -> Result<(), DbErr> {
    execute(
        conn,
        "UPDATE raw_events SET outcome = 'unreadable', response_status = 202, \
         response_body = ? WHERE id = ?",
        vec![reason.to_string().into(), raw_id.into()],
    )
    .await
    .map(|_| ())
}

/// Sets a stored raw event's outcome (an automatic e-mail reply: kept, not read).
pub async fn set_outcome<C: ConnectionTrait>(
    conn: &C,
    raw_id: Uuid,
    outcome: channels::vocabulary::RawOutcome,
) -> Result<(), DbErr> {
    execute(
        conn,
        "UPDATE raw_events SET outcome = ? WHERE id = ?",
        vec![outcome.as_str().into(), raw_id.into()],
    )
    .await
    .map(|_| ())
}

/// Marks a kept, unreadable raw event as replayed; `false` when it is not (any more) one:
/// another replay took it first.
pub async fn claim_unreadable<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    raw_id: Uuid,
) -> Result<bool, DbErr> {
    let moved = execute(
        conn,
        "UPDATE raw_events SET outcome = 'replayed' \
         WHERE id = ? AND tenant_id = ? AND outcome = 'unreadable'",
        vec![raw_id.into(), tenant_id.into()],
    )
    .await?;
    Ok(moved == 1)
}

/// One of the tenant's raw events.
pub async fn find<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<raw_event::Model>, DbErr> {
    raw_event::Entity::find_by_id(id)
        .filter(raw_event::Column::TenantId.eq(tenant_id))
        .one(conn)
        .await
}
