//! Raw events after they are stored: the answer given for them, deliveries kept because they
//! could not be read, and their replays.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::entities::raw_event;
use super::execute;

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
    execute(
        conn,
        "UPDATE raw_events SET response_status = ?, response_body = ? WHERE id = ?",
        vec![
            200i32.into(),
            answer.map(str::to_owned).into(),
            raw_id.into(),
        ],
    )
    .await
    .map(|_| ())
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
