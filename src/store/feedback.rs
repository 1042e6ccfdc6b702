//! Reading feedback and raw events back: replays, single records, lists. (Ingest writes them in
//! batches: see `batch`.)

use channels::model::{Feedback, Metric};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect,
};
use uuid::Uuid;

use super::entities::{feedback, raw_event};

pub async fn find_raw_event<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    provider: &str,
    provider_ref: &str,
) -> Result<Option<raw_event::Model>, DbErr> {
    let by_reference = raw_event::Entity::find()
        .filter(raw_event::Column::TenantId.eq(tenant_id))
        .filter(raw_event::Column::Provider.eq(provider))
        .filter(raw_event::Column::ProviderRef.eq(provider_ref));
    super::first(by_reference, conn).await
}

/// The first record answering an invitation: read through `ix_feedback_invitation_id`, which
/// holds both the filter and the order, so the cost does not grow with the tenant's feedback.
pub fn first_for_invitation(
    tenant_id: Uuid,
    invitation_id: Uuid,
) -> sea_orm::Select<feedback::Entity> {
    use sea_orm::QueryOrder;
    feedback::Entity::find()
        .filter(feedback::Column::TenantId.eq(tenant_id))
        .filter(feedback::Column::InvitationId.eq(invitation_id))
        .order_by_asc(feedback::Column::Id)
}

/// [`first_for_invitation`] for several (tenant, invitation) pairs in one statement: each
/// invitation's first record, by invitation id.
pub async fn first_for_invitations<C: ConnectionTrait>(
    conn: &C,
    invitations: &[(Uuid, Uuid)],
) -> Result<HashMap<Uuid, Feedback>, DbErr> {
    let mut first: HashMap<Uuid, Feedback> = HashMap::new();
    if invitations.is_empty() {
        return Ok(first);
    }
    let statement = first_for_invitations_statement(conn.get_database_backend(), invitations);
    let rows = feedback::Model::find_by_statement(statement)
        .all(conn)
        .await?;
    for row in rows {
        let record = from_row(row)?;
        let Some(invitation) = record.invitation_id else {
            continue;
        };
        match first.get(&invitation) {
            Some(have) if have.id < record.id => {}
            _ => {
                first.insert(invitation, record);
            }
        }
    }
    Ok(first)
}

/// The statement behind [`first_for_invitations`] (for a plan test): every record of the
/// invitations, through `ix_feedback_invitation_id`; `invitations` is not empty.
pub fn first_for_invitations_statement(
    backend: sea_orm::DbBackend,
    invitations: &[(Uuid, Uuid)],
) -> sea_orm::Statement {
    // Per invitation, an equality on ix_feedback_invitation_id's leading columns.
    let (sql, values) = super::union_all(
        "SELECT * FROM feedback WHERE tenant_id = ? AND invitation_id = ?",
        invitations
            .iter()
            .map(|(tenant, invitation)| vec![(*tenant).into(), (*invitation).into()])
            .collect(),
    );
    sea_orm::Statement::from_sql_and_values(backend, super::placeholders(backend, &sql), values)
}

pub fn from_row(m: feedback::Model) -> Result<Feedback, DbErr> {
    let corrupt = |what: &str| DbErr::Type(format!("feedback {}: bad {what}", m.id));
    Ok(Feedback {
        id: m.id,
        tenant_id: m.tenant_id,
        metric: m.metric.parse().map_err(|_| corrupt("metric"))?,
        scale: m
            .scale
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|_| corrupt("scale"))?,
        channel: m.channel,
        provider: m.provider,
        provider_ref: m.provider_ref,
        contact_id: m.contact_id,
        invitation_id: m.invitation_id,
        score: m.score,
        comment: m.comment,
        language: m.language,
        ticket_ref: m.ticket_ref,
        agent_ref: m.agent_ref,
        team_ref: m.team_ref,
        occurred_at: m.occurred_at,
        received_at: m.received_at,
        metadata: m.metadata,
    })
}

pub async fn find_by_provider_ref<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    provider: &str,
    provider_ref: &str,
) -> Result<Option<Feedback>, DbErr> {
    let by_reference = feedback::Entity::find()
        .filter(feedback::Column::TenantId.eq(tenant_id))
        .filter(feedback::Column::Provider.eq(provider))
        .filter(feedback::Column::ProviderRef.eq(provider_ref));
    super::first(by_reference, conn)
        .await?
        .map(from_row)
        .transpose()
}

pub async fn get<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<Feedback>, DbErr> {
    feedback::Entity::find_by_id(id)
        .filter(feedback::Column::TenantId.eq(tenant_id))
        .one(conn)
        .await?
        .map(from_row)
        .transpose()
}

#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub metric: Option<Metric>,
    pub channel: Option<String>,
    pub contact_id: Option<Uuid>,
    pub ticket_ref: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only records older (by id) than this one: the cursor of the previous page.
    pub before_id: Option<Uuid>,
    pub limit: u64,
}

/// Newest first; ids are UUIDv7, so id order is creation order and makes a stable cursor.
pub async fn list<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    filter: &ListFilter,
) -> Result<Vec<Feedback>, DbErr> {
    let mut q = feedback::Entity::find().filter(feedback::Column::TenantId.eq(tenant_id));
    if let Some(m) = filter.metric {
        q = q.filter(feedback::Column::Metric.eq(m.as_str()));
    }
    if let Some(c) = &filter.channel {
        q = q.filter(feedback::Column::Channel.eq(c.as_str()));
    }
    if let Some(c) = filter.contact_id {
        q = q.filter(feedback::Column::ContactId.eq(c));
    }
    if let Some(t) = &filter.ticket_ref {
        q = q.filter(feedback::Column::TicketRef.eq(t.as_str()));
    }
    if let Some(from) = filter.from {
        q = q.filter(feedback::Column::OccurredAt.gte(from));
    }
    if let Some(to) = filter.to {
        q = q.filter(feedback::Column::OccurredAt.lt(to));
    }
    if let Some(before) = filter.before_id {
        q = q.filter(feedback::Column::Id.lt(before));
    }
    q.order_by_desc(feedback::Column::Id)
        .limit(filter.limit)
        .all(conn)
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

/// Writes a record's answer again (score, metric, comment, metadata) after a later reply or a
/// changed platform rating.
pub async fn update_answer<C: ConnectionTrait>(
    conn: &C,
    record: &Feedback,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    conn.execute_raw(sea_orm::Statement::from_sql_and_values(
        backend,
        super::placeholders(
            backend,
            "UPDATE feedback SET metric = ?, score = ?, scale = ?, comment = ?, metadata = ?, \
             updated_at = ? WHERE id = ? AND tenant_id = ?",
        ),
        [
            record.metric.as_str().into(),
            record.score.into(),
            record.scale.map(|s| s.as_str()).into(),
            record.comment.clone().into(),
            record.metadata.clone().into(),
            now.into(),
            record.id.into(),
            record.tenant_id.into(),
        ],
    ))
    .await?;
    Ok(())
}
