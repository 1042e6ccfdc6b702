//! A site's secret can be rotated: the previous one keeps verifying visitors' user hashes and
//! the impressions it signed until `previous_secret_until`, so a site's backend can switch
//! without a gap.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000011_site_secret_rotation"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("sites"))
                    .add_column(
                        ColumnDef::new(Alias::new("previous_secret"))
                            .string()
                            .null(),
                    )
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("sites"))
                    .add_column(
                        ColumnDef::new(Alias::new("previous_secret_until"))
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["previous_secret_until", "previous_secret"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new("sites"))
                        .drop_column(Alias::new(column))
                        .take(),
                )
                .await?;
        }
        Ok(())
    }
}
