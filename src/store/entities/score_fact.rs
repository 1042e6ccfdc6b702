//! `score_facts` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "score_facts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub feedback_id: Uuid,
    pub tenant_id: Uuid,
    pub metric: String,
    pub channel: String,
    pub score: i16,
    pub scale: String,
    pub agent_ref: Option<String>,
    pub team_ref: Option<String>,
    pub occurred_at: DateTimeUtc,
    pub source_updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
