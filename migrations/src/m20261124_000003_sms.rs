//! What replies and delivery reports need on invitations: the number the survey was sent from
//! (a reply is matched on the (customer, sending number) pair), the provider's delivery status,
//! and when the customer was asked again for one number (at most once). Indexes for finding an
//! invitation by the provider's message id and a contact's open invitations and answers.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261124_000003_sms"
    }
}

fn name(s: &str) -> Alias {
    Alias::new(s)
}

fn col(s: &str) -> ColumnDef {
    ColumnDef::new(name(s))
}

const INDEXES: &[(&str, &str, &[&str])] = &[
    (
        "invitations",
        "ix_invitations_provider_ref",
        &["tenant_id", "provider_ref"],
    ),
    (
        "feedback",
        "ix_feedback_invitation",
        &["tenant_id", "invitation_id"],
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            col("sender").string().null().take(),
            col("delivery_status").string().null().take(),
            col("clarified_at").timestamp_with_time_zone().null().take(),
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
        for (table, index, columns) in INDEXES {
            let mut stmt = Index::create().name(*index).table(name(table)).take();
            for c in *columns {
                stmt.col(name(c));
            }
            manager.create_index(stmt).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, index, _) in INDEXES {
            manager
                .drop_index(Index::drop().name(*index).table(name(table)).to_owned())
                .await?;
        }
        for c in ["clarified_at", "delivery_status", "sender"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(name("invitations"))
                        .drop_column(name(c))
                        .take(),
                )
                .await?;
        }
        Ok(())
    }
}
