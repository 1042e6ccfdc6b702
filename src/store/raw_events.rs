//! Raw events as the operator reads them: deliveries kept because they could not be read.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::entities::raw_event;

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
