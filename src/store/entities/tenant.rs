//! `tenants` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub slug: String,
    pub name: Option<String>,
    pub default_region: Option<String>,
    pub time_zone: Option<String>,
    pub created_at: DateTimeUtc,
    /// Base64 of the key that signs the tenant's e-mail links; set on first use.
    pub link_key: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
