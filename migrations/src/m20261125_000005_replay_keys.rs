//! Replay protection on what a platform signed: a raw event keeps a digest of the signed content
//! (signature timestamp and body), unique per tenant and provider, so a signed delivery sent
//! again under a new (unsigned) delivery id is still stored once.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000005_replay_keys"
    }
}

const INDEX: &str = "ux_raw_events_signed_content";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("raw_events"))
                    .add_column(
                        ColumnDef::new(Alias::new("signed_sha256"))
                            .string_len(64)
                            .null(),
                    )
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Alias::new("raw_events"))
                    .col(Alias::new("tenant_id"))
                    .col(Alias::new("provider"))
                    .col(Alias::new("signed_sha256"))
                    .unique()
                    .take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(Alias::new("raw_events"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("raw_events"))
                    .drop_column(Alias::new("signed_sha256"))
                    .take(),
            )
            .await
    }
}
