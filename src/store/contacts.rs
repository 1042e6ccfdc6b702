//! Contacts as the API shows them, the facts a policy decision needs, and opt-outs.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use serde::Serialize;
use uuid::Uuid;

use super::entities::{contact, contact_identity};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IdentityView {
    pub kind: String,
    pub value: String,
    pub status: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ContactView {
    pub id: Uuid,
    pub locale: Option<String>,
    pub time_zone: Option<String>,
    /// Channels the contact opted out of; "all" for every channel.
    pub opt_outs: Vec<String>,
    pub identities: Vec<IdentityView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn get<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
) -> Result<Option<ContactView>, DbErr> {
    let Some(c) = contact::Entity::find_by_id(id)
        .filter(contact::Column::TenantId.eq(tenant_id))
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    let identities = contact_identity::Entity::find()
        .filter(contact_identity::Column::ContactId.eq(id))
        .order_by_asc(contact_identity::Column::CreatedAt)
        .all(conn)
        .await?
        .into_iter()
        .map(|i| IdentityView {
            kind: i.kind,
            value: i.value,
            status: i.status,
        })
        .collect();
    Ok(Some(ContactView {
        id: c.id,
        locale: c.locale,
        time_zone: c.time_zone,
        opt_outs: serde_json::from_value(c.opt_outs).unwrap_or_default(),
        identities,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }))
}

/// Adds (`opt_out`) or removes a channel from the contact's opt-outs. Opting in to "all"
/// clears every opt-out. Returns false when the tenant has no such contact.
pub async fn set_opt_out<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    id: Uuid,
    channel: &str,
    opt_out: bool,
) -> Result<bool, DbErr> {
    let Some(c) = contact::Entity::find_by_id(id)
        .filter(contact::Column::TenantId.eq(tenant_id))
        .one(conn)
        .await?
    else {
        return Ok(false);
    };
    let mut opt_outs: Vec<String> = serde_json::from_value(c.opt_outs.clone()).unwrap_or_default();
    if opt_out {
        if !opt_outs.iter().any(|o| o == channel) {
            opt_outs.push(channel.to_owned());
        }
    } else if channel == "all" {
        opt_outs.clear();
    } else {
        opt_outs.retain(|o| o != channel);
    }
    opt_outs.sort();
    let mut active: contact::ActiveModel = c.into();
    active.opt_outs = Set(serde_json::json!(opt_outs));
    active.updated_at = Set(super::now());
    active.update(conn).await?;
    Ok(true)
}

/// Marks an address the provider cannot deliver to, so it is not chosen again.
pub async fn mark_identity_invalid<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    kind: &str,
    value: &str,
) -> Result<(), DbErr> {
    contact_identity::Entity::update_many()
        .col_expr(
            contact_identity::Column::Status,
            sea_orm::sea_query::Expr::value("invalid"),
        )
        .filter(contact_identity::Column::TenantId.eq(tenant_id))
        .filter(contact_identity::Column::Kind.eq(kind))
        .filter(contact_identity::Column::Value.eq(value))
        .exec(conn)
        .await?;
    Ok(())
}
