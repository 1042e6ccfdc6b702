//! Provider configuration per tenant: settings (shown by the API) and secrets (never shown,
//! never logged) in one row per (tenant, provider).

use sea_orm::{ConnectionTrait, DbErr};
use serde_json::Value as Json;
use uuid::Uuid;

use super::Db;

pub struct StoredConfig {
    pub settings: Json,
    pub secrets: Json,
}

/// Creates or replaces the tenant's configuration of `provider`.
pub async fn put(
    db: &Db,
    tenant_id: Uuid,
    provider: &str,
    settings: Json,
    secrets: Json,
) -> Result<(), DbErr> {
    let now = super::now();
    db.write
        .execute_raw(db.statement(
            "INSERT INTO channel_configs \
             (id, tenant_id, provider, settings, secrets, enabled, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (tenant_id, provider) DO UPDATE SET settings = excluded.settings, \
             secrets = excluded.secrets, enabled = excluded.enabled, \
             updated_at = excluded.updated_at",
            vec![
                channels::model::new_id().into(),
                tenant_id.into(),
                provider.into(),
                settings.into(),
                secrets.into(),
                true.into(),
                now.into(),
                now.into(),
            ],
        ))
        .await?;
    db.caches
        .credentials
        .invalidate(&(tenant_id, provider.to_owned()));
    Ok(())
}

pub async fn get(db: &Db, tenant_id: Uuid, provider: &str) -> Result<Option<StoredConfig>, DbErr> {
    let row = db
        .read
        .query_one_raw(db.statement(
            "SELECT settings, secrets FROM channel_configs \
             WHERE tenant_id = ? AND provider = ? AND enabled = ?",
            vec![tenant_id.into(), provider.into(), true.into()],
        ))
        .await?;
    row.map(|r| {
        Ok(StoredConfig {
            settings: r.try_get("", "settings")?,
            secrets: r.try_get("", "secrets")?,
        })
    })
    .transpose()
}

/// The tenant's credentials for a provider (a support platform or a messaging provider), if
/// configured. Cached, whether configured or not: the provider name is one of the tables'.
pub async fn credentials(
    db: &Db,
    tenant_id: Uuid,
    name: &str,
) -> Result<Option<channels::chat::Credentials>, DbErr> {
    db.caches
        .credentials
        .get_or_load(
            (tenant_id, name.to_owned()),
            || stored_credentials(db, tenant_id, name),
            |_| true,
        )
        .await
}

async fn stored_credentials(
    db: &Db,
    tenant_id: Uuid,
    name: &str,
) -> Result<Option<channels::chat::Credentials>, DbErr> {
    let Some(stored) = get(db, tenant_id, name).await? else {
        return Ok(None);
    };
    let secrets = serde_json::from_value(stored.secrets)
        .map_err(|e| DbErr::Json(format!("{name} configuration: {e}")))?;
    Ok(Some(channels::chat::Credentials {
        settings: stored.settings,
        secrets,
    }))
}
