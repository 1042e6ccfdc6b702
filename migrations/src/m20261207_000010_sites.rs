//! The web widget's sites: where a tenant embeds the widget, under a public site key, with the
//! secret its backend signs visitors' identities with.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000010_sites"
    }
}

fn col(s: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(s))
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("sites"))
                    .col(col("tenant_id").uuid().not_null())
                    .col(col("key").string().not_null())
                    // Public (in the embed snippet); every widget request names it.
                    .col(col("site_key").string().not_null().unique_key())
                    // Kept readable: the gateway verifies HMACs with it, as it does with a
                    // tenant's link key.
                    .col(col("secret").string().not_null())
                    .col(col("survey_key").string().not_null())
                    .col(col("settings").json_binary().not_null())
                    .col(col("created_at").timestamp_with_time_zone().not_null())
                    .col(col("updated_at").timestamp_with_time_zone().not_null())
                    .primary_key(
                        Index::create()
                            .col(Alias::new("tenant_id"))
                            .col(Alias::new("key")),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_sites_tenant")
                            .from(Alias::new("sites"), Alias::new("tenant_id"))
                            .to(Alias::new("tenants"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("sites")).if_exists().take())
            .await
    }
}
