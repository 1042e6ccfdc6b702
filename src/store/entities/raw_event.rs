//! `raw_events` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "raw_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub provider: String,
    pub provider_ref: Option<String>,
    pub kind: String,
    pub body_sha256: String,
    /// Digest of what the platform signed (signature timestamp and body), for replay protection
    /// that does not rest on an unsigned delivery id.
    pub signed_sha256: Option<String>,
    pub content_type: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    pub outcome: String,
    pub response_status: Option<i32>,
    #[sea_orm(column_type = "Text", nullable)]
    pub response_body: Option<String>,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
