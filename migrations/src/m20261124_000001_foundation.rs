//! Tenants, keys, contacts, channel configuration, raw events, feedback, the outbox and its dead
//! letters, the scoring store's facts, invitations and the policy decision log.
//!
//! Unique keys carry the idempotency rules: a provider's reference is stored once per tenant
//! (`raw_events`, `feedback`), an identity belongs to one contact per tenant, an outbox event is
//! queued once per sink, and a ticket gets at most one invitation per survey.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261124_000001_foundation"
    }
}

fn name(s: &str) -> Alias {
    Alias::new(s)
}

fn col(s: &str) -> ColumnDef {
    ColumnDef::new(name(s))
}

fn id() -> ColumnDef {
    col("id").uuid().not_null().primary_key().take()
}

fn tenant_id(table: &str) -> (ColumnDef, ForeignKeyCreateStatement) {
    (
        col("tenant_id").uuid().not_null().take(),
        ForeignKey::create()
            .name(format!("fk_{table}_tenant"))
            .from(name(table), name("tenant_id"))
            .to(name("tenants"), name("id"))
            .on_delete(ForeignKeyAction::Cascade)
            .take(),
    )
}

fn ts(s: &str) -> ColumnDef {
    col(s).timestamp_with_time_zone().not_null().take()
}

fn ts_null(s: &str) -> ColumnDef {
    col(s).timestamp_with_time_zone().null().take()
}

fn text(s: &str) -> ColumnDef {
    col(s).string().not_null().take()
}

fn text_null(s: &str) -> ColumnDef {
    col(s).string().null().take()
}

fn json(s: &str) -> ColumnDef {
    col(s).json_binary().not_null().take()
}

fn table(table_name: &str) -> TableCreateStatement {
    Table::create().table(name(table_name)).take()
}

/// A table owned by a tenant: id, tenant_id with its foreign key, and the given columns.
fn tenant_table(table_name: &str, columns: Vec<ColumnDef>) -> TableCreateStatement {
    let (tenant, fk) = tenant_id(table_name);
    let mut stmt = table(table_name);
    stmt.col(id()).col(tenant).foreign_key(&mut fk.clone());
    for mut c in columns {
        stmt.col(&mut c);
    }
    stmt
}

fn index(
    table_name: &str,
    index_name: &str,
    columns: &[&str],
    unique: bool,
) -> IndexCreateStatement {
    let mut stmt = Index::create()
        .name(index_name)
        .table(name(table_name))
        .take();
    for c in columns {
        stmt.col(name(c));
    }
    if unique {
        stmt.unique();
    }
    stmt
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                table("tenants")
                    .col(id())
                    .col(col("slug").string().not_null().unique_key())
                    .col(text_null("name"))
                    .col(text_null("default_region"))
                    .col(text_null("time_zone"))
                    .col(ts("created_at"))
                    .take(),
            )
            .await?;

        manager
            .create_table(tenant_table(
                "api_keys",
                vec![
                    text("key_prefix"),
                    // SHA-256 of the whole key; the key itself is shown once and never stored.
                    col("key_hash").string().not_null().unique_key().take(),
                    text_null("label"),
                    ts("created_at"),
                    ts_null("revoked_at"),
                ],
            ))
            .await?;

        manager
            .create_table(tenant_table(
                "contacts",
                vec![
                    text_null("locale"),
                    text_null("time_zone"),
                    json("opt_outs"),
                    ts("created_at"),
                    ts("updated_at"),
                ],
            ))
            .await?;
        manager
            .create_index(index(
                "contacts",
                "ix_contacts_tenant",
                &["tenant_id"],
                false,
            ))
            .await?;

        let mut identities = tenant_table(
            "contact_identities",
            vec![
                col("contact_id").uuid().not_null().take(),
                // phone (E.164), email, external
                text("kind"),
                text("value"),
                // valid, or invalid once a provider says the address cannot be reached
                col("status").string().not_null().default("valid").take(),
                ts("created_at"),
            ],
        );
        identities.foreign_key(
            ForeignKey::create()
                .name("fk_contact_identities_contact")
                .from(name("contact_identities"), name("contact_id"))
                .to(name("contacts"), name("id"))
                .on_delete(ForeignKeyAction::Cascade),
        );
        manager.create_table(identities).await?;
        manager
            .create_index(index(
                "contact_identities",
                "ux_contact_identities_value",
                &["tenant_id", "kind", "value"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "contact_identities",
                "ix_contact_identities_contact",
                &["contact_id"],
                false,
            ))
            .await?;

        manager
            .create_table(tenant_table(
                "channel_configs",
                vec![
                    text("provider"),
                    json("settings"),
                    json("secrets"),
                    col("enabled").boolean().not_null().default(true).take(),
                    ts("created_at"),
                    ts("updated_at"),
                ],
            ))
            .await?;
        manager
            .create_index(index(
                "channel_configs",
                "ux_channel_configs_provider",
                &["tenant_id", "provider"],
                true,
            ))
            .await?;

        manager
            .create_table(tenant_table(
                "raw_events",
                vec![
                    text("provider"),
                    text_null("provider_ref"),
                    text("kind"),
                    // hex SHA-256 of the body: tells a replay from a different request that
                    // reuses an idempotency key
                    text("body_sha256"),
                    text_null("content_type"),
                    col("payload").text().not_null().take(),
                    // accepted, duplicate, rejected
                    text("outcome"),
                    col("response_status").integer().null().take(),
                    col("response_body").text().null().take(),
                    ts("received_at"),
                ],
            ))
            .await?;
        manager
            .create_index(index(
                "raw_events",
                "ux_raw_events_provider_ref",
                &["tenant_id", "provider", "provider_ref"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "raw_events",
                "ix_raw_events_received",
                &["received_at"],
                false,
            ))
            .await?;

        let mut feedback = tenant_table(
            "feedback",
            vec![
                text("channel"),
                text("provider"),
                text_null("provider_ref"),
                col("raw_event_id").uuid().null().take(),
                col("contact_id").uuid().null().take(),
                col("invitation_id").uuid().null().take(),
                text("metric"),
                col("score").small_integer().null().take(),
                text_null("scale"),
                col("comment").text().null().take(),
                text_null("language"),
                text_null("ticket_ref"),
                text_null("agent_ref"),
                text_null("team_ref"),
                ts("occurred_at"),
                ts("received_at"),
                ts("updated_at"),
                json("metadata"),
            ],
        );
        feedback.foreign_key(
            ForeignKey::create()
                .name("fk_feedback_contact")
                .from(name("feedback"), name("contact_id"))
                .to(name("contacts"), name("id"))
                .on_delete(ForeignKeyAction::SetNull),
        );
        manager.create_table(feedback).await?;
        manager
            .create_index(index(
                "feedback",
                "ux_feedback_provider_ref",
                &["tenant_id", "provider", "provider_ref"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "feedback",
                "ix_feedback_tenant_id",
                &["tenant_id", "id"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "feedback",
                "ix_feedback_contact",
                &["tenant_id", "contact_id"],
                false,
            ))
            .await?;

        manager
            .create_table(
                table("outbox")
                    .col(
                        col("id")
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(col("tenant_id").uuid().not_null())
                    .col(col("event_id").uuid().not_null())
                    .col(text("event_type"))
                    .col(text("sink"))
                    .col(col("aggregate_id").uuid().not_null())
                    .col(json("payload"))
                    .col(col("attempts").integer().not_null().default(0))
                    .col(ts("next_attempt_at"))
                    .col(ts_null("locked_until"))
                    .col(text_null("locked_by"))
                    .col(col("last_error").text().null())
                    .col(ts("created_at"))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "outbox",
                "ux_outbox_event_sink",
                &["event_id", "sink"],
                true,
            ))
            .await?;
        manager
            .create_index(index(
                "outbox",
                "ix_outbox_due",
                &["next_attempt_at"],
                false,
            ))
            .await?;

        manager
            .create_table(tenant_table(
                "dead_letters",
                vec![
                    col("event_id").uuid().not_null().take(),
                    text("event_type"),
                    text("sink"),
                    col("aggregate_id").uuid().not_null().take(),
                    json("payload"),
                    col("attempts").integer().not_null().take(),
                    col("last_error").text().null().take(),
                    ts("created_at"),
                    ts("failed_at"),
                    ts_null("replayed_at"),
                ],
            ))
            .await?;

        manager
            .create_table(
                table("score_facts")
                    .col(col("feedback_id").uuid().not_null().primary_key())
                    .col(col("tenant_id").uuid().not_null())
                    .col(text("metric"))
                    .col(text("channel"))
                    .col(col("score").small_integer().not_null())
                    .col(text("scale"))
                    .col(text_null("agent_ref"))
                    .col(text_null("team_ref"))
                    .col(ts("occurred_at"))
                    // the feedback version this fact reflects: an older event delivered late
                    // never overwrites a newer one
                    .col(ts("source_updated_at"))
                    .take(),
            )
            .await?;
        manager
            .create_index(index(
                "score_facts",
                "ix_score_facts_query",
                &["tenant_id", "metric", "occurred_at"],
                false,
            ))
            .await?;

        let mut invitations = tenant_table(
            "invitations",
            vec![
                text("survey_key"),
                col("contact_id").uuid().not_null().take(),
                text_null("channel"),
                text_null("ticket_ref"),
                text_null("agent_ref"),
                text_null("team_ref"),
                text_null("language"),
                // scheduled, sent, answered, suppressed, expired, failed
                text("status"),
                text_null("reason"),
                ts_null("send_at"),
                ts_null("sent_at"),
                ts_null("answered_at"),
                ts_null("expires_at"),
                text_null("provider_ref"),
                ts("created_at"),
                ts("updated_at"),
            ],
        );
        invitations.foreign_key(
            ForeignKey::create()
                .name("fk_invitations_contact")
                .from(name("invitations"), name("contact_id"))
                .to(name("contacts"), name("id"))
                .on_delete(ForeignKeyAction::Cascade),
        );
        manager.create_table(invitations).await?;
        manager
            .create_index(index(
                "invitations",
                "ix_invitations_contact",
                &["tenant_id", "contact_id"],
                false,
            ))
            .await?;
        manager
            .create_index(index(
                "invitations",
                "ix_invitations_due",
                &["status", "send_at"],
                false,
            ))
            .await?;

        manager
            .create_table(tenant_table(
                "policy_decisions",
                vec![
                    col("contact_id").uuid().null().take(),
                    text("survey_key"),
                    col("invitation_id").uuid().null().take(),
                    // scheduled, deferred, suppressed
                    text("outcome"),
                    text_null("rule"),
                    col("detail").text().null().take(),
                    json("inputs"),
                    ts("decided_at"),
                ],
            ))
            .await?;
        manager
            .create_index(index(
                "policy_decisions",
                "ix_policy_decisions_contact",
                &["tenant_id", "contact_id"],
                false,
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            "policy_decisions",
            "invitations",
            "score_facts",
            "dead_letters",
            "outbox",
            "feedback",
            "raw_events",
            "channel_configs",
            "contact_identities",
            "contacts",
            "api_keys",
            "tenants",
        ] {
            manager
                .drop_table(Table::drop().table(name(t)).if_exists().take())
                .await?;
        }
        Ok(())
    }
}
