//! `feedback` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "feedback")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub channel: String,
    pub provider: String,
    pub provider_ref: Option<String>,
    pub raw_event_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    pub invitation_id: Option<Uuid>,
    pub metric: String,
    pub score: Option<i16>,
    pub scale: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub comment: Option<String>,
    pub language: Option<String>,
    pub ticket_ref: Option<String>,
    pub agent_ref: Option<String>,
    pub team_ref: Option<String>,
    pub occurred_at: DateTimeUtc,
    pub received_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(column_type = "JsonBinary")]
    pub metadata: Json,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
