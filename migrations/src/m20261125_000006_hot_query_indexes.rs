//! Indexes that bound the rows two hot queries read, whatever the size of the tenant's data:
//! the first record of an invitation (filtered by invitation, ordered by id), and a ticket's
//! earlier invitations of a survey (the one-per-ticket rule).

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000006_hot_query_indexes"
    }
}

const INDEXES: &[(&str, &str, &[&str])] = &[
    (
        "feedback",
        "ix_feedback_invitation_id",
        &["tenant_id", "invitation_id", "id"],
    ),
    (
        "invitations",
        "ix_invitations_survey_ticket",
        &["tenant_id", "survey_key", "ticket_ref"],
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, index, columns) in INDEXES {
            let mut stmt = Index::create()
                .name(*index)
                .table(Alias::new(*table))
                .take();
            for c in *columns {
                stmt.col(Alias::new(*c));
            }
            manager.create_index(stmt).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, index, _) in INDEXES {
            manager
                .drop_index(
                    Index::drop()
                        .name(*index)
                        .table(Alias::new(*table))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
