//! The closed loop: a tenant's alert rules, its owner directory, and the alerts that answers
//! open (one per answer at most: a unique key on the answer).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000009_alerts"
    }
}

fn col(s: &str) -> ColumnDef {
    ColumnDef::new(Alias::new(s))
}

fn tenant_key(table: &str) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_tenant"))
        .from(Alias::new(table), Alias::new("tenant_id"))
        .to(Alias::new("tenants"), Alias::new("id"))
        .on_delete(ForeignKeyAction::Cascade)
        .take()
}

fn index(name: &str, table: &str, columns: &[&str], unique: bool) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(Alias::new(table));
    for c in columns {
        index.col(Alias::new(*c));
    }
    if unique {
        index.unique();
    }
    index.take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("alert_rules"))
                    .col(col("tenant_id").uuid().not_null())
                    .col(col("key").string().not_null())
                    .col(col("rule").json_binary().not_null())
                    .col(col("updated_at").timestamp_with_time_zone().not_null())
                    .primary_key(
                        Index::create()
                            .col(Alias::new("tenant_id"))
                            .col(Alias::new("key")),
                    )
                    .foreign_key(&mut tenant_key("alert_rules"))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("owners"))
                    .col(col("tenant_id").uuid().not_null())
                    .col(col("ref").string().not_null())
                    .col(col("name").string().null())
                    .col(col("email").string().null())
                    .col(col("slack_webhook_url").text().null())
                    .col(col("teams_webhook_url").text().null())
                    .col(col("time_zone").string().null())
                    .col(col("escalate_to").string().null())
                    .col(col("is_default").boolean().not_null())
                    .col(col("created_at").timestamp_with_time_zone().not_null())
                    .col(col("updated_at").timestamp_with_time_zone().not_null())
                    .primary_key(
                        Index::create()
                            .col(Alias::new("tenant_id"))
                            .col(Alias::new("ref")),
                    )
                    .foreign_key(&mut tenant_key("owners"))
                    .take(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alias::new("alerts"))
                    .col(col("id").uuid().not_null().primary_key())
                    .col(col("tenant_id").uuid().not_null())
                    .col(col("feedback_id").uuid().not_null())
                    .col(col("rule_key").string().not_null())
                    .col(col("status").string().not_null())
                    .col(col("severity").string().not_null())
                    .col(col("owner_ref").string().null())
                    .col(col("agent_ref").string().null())
                    .col(col("team_ref").string().null())
                    .col(col("contact_id").uuid().null())
                    .col(col("metric").string().not_null())
                    .col(col("score").small_integer().null())
                    .col(col("scale").string().null())
                    .col(col("answered_at").timestamp_with_time_zone().not_null())
                    .col(col("opened_at").timestamp_with_time_zone().not_null())
                    .col(col("due_at").timestamp_with_time_zone().not_null())
                    .col(col("acknowledged_at").timestamp_with_time_zone().null())
                    .col(col("resolved_at").timestamp_with_time_zone().null())
                    .col(col("outcome").string().null())
                    .col(col("note").text().null())
                    .col(col("escalated_at").timestamp_with_time_zone().null())
                    // When the sweeper looks at it next: `due_at` while unresolved and not yet
                    // escalated, else NULL, so the sweep reads only rows that are due.
                    .col(col("escalate_at").timestamp_with_time_zone().null())
                    .col(col("updated_at").timestamp_with_time_zone().not_null())
                    .foreign_key(&mut tenant_key("alerts"))
                    .take(),
            )
            .await?;
        for (name, columns, unique) in [
            ("ux_alerts_feedback", &["feedback_id"][..], true),
            // `GET /v1/alerts`: a tenant's newest first, a page at a time.
            ("ix_alerts_tenant_id", &["tenant_id", "id"][..], false),
            (
                "ix_alerts_tenant_opened",
                &["tenant_id", "opened_at"][..],
                false,
            ),
            ("ix_alerts_escalate_at", &["escalate_at"][..], false),
            // The gauges (every tenant's unresolved alerts) and `GET /v1/alerts?status=`.
            ("ix_alerts_status", &["status", "tenant_id"][..], false),
        ] {
            manager
                .create_index(index(name, "alerts", columns, unique))
                .await?;
        }
        // The closed loop's effect: a contact's next answer to the same metric.
        manager
            .create_index(index(
                "ix_feedback_contact_metric",
                "feedback",
                &["tenant_id", "contact_id", "metric", "occurred_at"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "ix_owners_default",
                "owners",
                &["tenant_id", "is_default"],
                false,
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("ix_feedback_contact_metric")
                    .table(Alias::new("feedback"))
                    .to_owned(),
            )
            .await?;
        for table in ["alerts", "owners", "alert_rules"] {
            manager
                .drop_table(Table::drop().table(Alias::new(table)).if_exists().take())
                .await?;
        }
        Ok(())
    }
}
