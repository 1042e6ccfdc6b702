//! Surveys, and what the dispatcher needs on invitations: a lease for claiming, attempts, the
//! last error and the rendered message. A ticket gets at most one live invitation per survey
//! (suppressed attempts are logged as invitations too, so the unique index leaves them out).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261124_000002_surveys"
    }
}

fn name(s: &str) -> Alias {
    Alias::new(s)
}

fn col(s: &str) -> ColumnDef {
    ColumnDef::new(name(s))
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(name("surveys"))
                    .col(col("id").uuid().not_null().primary_key())
                    .col(col("tenant_id").uuid().not_null())
                    .col(col("key").string().not_null())
                    .col(col("metric").string().not_null())
                    // {"da": "Hvor tilfreds…", "en": "How satisfied…"}
                    .col(col("question").json_binary().not_null())
                    .col(col("default_language").string().not_null())
                    // ["sms", "email"], in order of preference
                    .col(col("channels").json_binary().not_null())
                    .col(col("trigger").string().not_null())
                    // overrides of the tenant's policy defaults
                    .col(col("policy").json_binary().not_null())
                    .col(col("created_at").timestamp_with_time_zone().not_null())
                    .col(col("updated_at").timestamp_with_time_zone().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_surveys_tenant")
                            .from(name("surveys"), name("tenant_id"))
                            .to(name("tenants"), name("id"))
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_surveys_key")
                    .table(name("surveys"))
                    .col(name("tenant_id"))
                    .col(name("key"))
                    .unique()
                    .take(),
            )
            .await?;

        // SQLite takes one column per ALTER TABLE.
        for column in [
            // the survey's metric when it was sent: the rest period is per metric
            col("metric").string().not_null().default("csat").take(),
            col("detail").text().null().take(),
            col("attempts").integer().not_null().default(0).take(),
            col("locked_until").timestamp_with_time_zone().null().take(),
            col("locked_by").string().null().take(),
            col("last_error").text().null().take(),
            col("message").text().null().take(),
            col("address").string().null().take(),
            // the ticket_ref when the survey allows one invitation per ticket, else NULL: the
            // unique index below guards only those (NULLs never collide)
            col("ticket_guard").string().null().take(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(name("invitations"))
                        .add_column(column)
                        .take(),
                )
                .await?;
        }
        // Partial unique index: the same statement in SQLite and PostgreSQL.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_invitations_ticket ON invitations \
                 (tenant_id, survey_key, ticket_guard) WHERE status <> 'suppressed'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX ux_invitations_ticket")
            .await?;
        for c in [
            "ticket_guard",
            "address",
            "message",
            "last_error",
            "locked_by",
            "locked_until",
            "attempts",
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(name("invitations"))
                        .drop_column(name(c))
                        .take(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table(name("surveys")).take())
            .await
    }
}
