//! `surveys` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "surveys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub key: String,
    pub metric: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub question: Json,
    pub default_language: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub channels: Json,
    pub trigger: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub policy: Json,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub sources: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
