//! Tenants' HTTP endpoints for forwarded events (`PUT /v1/sinks/{name}`), and the record of
//! each delivery attempt to them (`GET /v1/sinks/{name}/attempts`).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000008_webhook_endpoints"
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
                    .table(Alias::new("webhook_endpoints"))
                    .col(col("id").uuid().not_null().primary_key())
                    .col(col("tenant_id").uuid().not_null())
                    .col(col("name").string().not_null())
                    .col(col("url").text().not_null())
                    .col(col("event_types").json_binary().not_null())
                    .col(col("include_personal_data").boolean().not_null())
                    .col(col("secret").string().not_null())
                    .col(col("previous_secret").string().null())
                    .col(
                        col("previous_secret_until")
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(col("disabled_at").timestamp_with_time_zone().null())
                    .col(col("disabled_reason").text().null())
                    .col(col("created_at").timestamp_with_time_zone().not_null())
                    .col(col("updated_at").timestamp_with_time_zone().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_endpoints_tenant")
                            .from(Alias::new("webhook_endpoints"), Alias::new("tenant_id"))
                            .to(Alias::new("tenants"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_webhook_endpoints_tenant_name")
                    .table(Alias::new("webhook_endpoints"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("name"))
                    .unique()
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("webhook_attempts"))
                    .col(
                        col("id")
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(col("endpoint_id").uuid().not_null())
                    .col(col("event_id").uuid().not_null())
                    .col(col("event_type").string().not_null())
                    .col(col("attempted_at").timestamp_with_time_zone().not_null())
                    .col(col("status_code").integer().null())
                    .col(col("duration_ms").integer().not_null())
                    .col(col("outcome").string().not_null())
                    .col(col("response_excerpt").text().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_attempts_endpoint")
                            .from(Alias::new("webhook_attempts"), Alias::new("endpoint_id"))
                            .to(Alias::new("webhook_endpoints"), Alias::new("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_webhook_attempts_endpoint")
                    .table(Alias::new("webhook_attempts"))
                    .col(Alias::new("endpoint_id"))
                    .col(Alias::new("id"))
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["webhook_attempts", "webhook_endpoints"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).if_exists().take())
                .await?;
        }
        Ok(())
    }
}
