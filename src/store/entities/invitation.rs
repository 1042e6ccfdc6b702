//! `invitations` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "invitations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub survey_key: String,
    pub contact_id: Uuid,
    pub channel: Option<String>,
    pub ticket_ref: Option<String>,
    pub agent_ref: Option<String>,
    pub team_ref: Option<String>,
    pub language: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub send_at: Option<DateTimeUtc>,
    pub sent_at: Option<DateTimeUtc>,
    pub answered_at: Option<DateTimeUtc>,
    pub expires_at: Option<DateTimeUtc>,
    pub provider_ref: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub metric: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub detail: Option<String>,
    pub attempts: i32,
    pub locked_until: Option<DateTimeUtc>,
    pub locked_by: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub message: Option<String>,
    pub address: Option<String>,
    pub ticket_guard: Option<String>,
    pub sender: Option<String>,
    pub delivery_status: Option<String>,
    pub clarified_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
