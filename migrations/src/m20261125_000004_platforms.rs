//! Support-platform webhooks: a survey triggered by "ticket closed" may be limited to the
//! platforms named in its `sources` list (null: every platform).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000004_platforms"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("surveys"))
                    .add_column(ColumnDef::new(Alias::new("sources")).json_binary().null())
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("surveys"))
                    .drop_column(Alias::new("sources"))
                    .take(),
            )
            .await
    }
}
