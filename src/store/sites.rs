//! The web widget's sites. A site is found by its public site key on every widget request
//! (cached: [`super::cache::Caches::sites`]) and by its tenant's key on the tenant API.

use std::sync::Arc;

use channels::widget::SiteSettings;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, QueryResult};
use uuid::Uuid;

use super::batch::query;
use super::tenants::random_secret;
use super::{execute, Db};

/// The public key's prefix: recognisable in an embed snippet and in logs.
const SITE_KEY_PREFIX: &str = "ws_";
const SECRET_PREFIX: &str = "wss_";

#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub tenant_id: Uuid,
    pub key: String,
    pub site_key: String,
    /// Signs impressions and verifies visitors' user hashes; shown once, on creation (and on
    /// rotation).
    pub secret: String,
    /// The secret before the last rotation, and until when it still verifies.
    pub previous_secret: Option<(String, DateTime<Utc>)>,
    pub settings: SiteSettings,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The columns a site is created with; it is read with the rotated secret besides.
const COLUMNS: &str =
    "tenant_id, key, site_key, secret, survey_key, settings, created_at, updated_at";

/// The site, or sites, `condition` selects.
fn select(condition: &str) -> String {
    format!("SELECT {COLUMNS}, previous_secret, previous_secret_until FROM sites WHERE {condition}")
}

impl Site {
    fn from_row(r: &QueryResult) -> Result<Site, DbErr> {
        let settings: serde_json::Value = r.try_get("", "settings")?;
        let key: String = r.try_get("", "key")?;
        Ok(Site {
            tenant_id: r.try_get("", "tenant_id")?,
            settings: serde_json::from_value(settings)
                .map_err(|e| DbErr::Type(format!("site {key}: settings: {e}")))?,
            key,
            site_key: r.try_get("", "site_key")?,
            secret: r.try_get("", "secret")?,
            previous_secret: r
                .try_get::<Option<String>>("", "previous_secret")?
                .zip(r.try_get::<Option<DateTime<Utc>>>("", "previous_secret_until")?),
            created_at: r.try_get("", "created_at")?,
            updated_at: r.try_get("", "updated_at")?,
        })
    }

    /// The secrets that verify now: the current one, then the previous one within its overlap.
    pub fn secrets(&self, now: DateTime<Utc>) -> impl Iterator<Item = &str> {
        std::iter::once(self.secret.as_str()).chain(
            self.previous_secret
                .as_ref()
                .filter(|(_, until)| *until > now)
                .map(|(secret, _)| secret.as_str()),
        )
    }
}

/// Creates the site or changes its settings (its keys stay). `true` when it was created.
pub async fn put(
    db: &Db,
    tenant_id: Uuid,
    key: &str,
    settings: &SiteSettings,
    now: DateTime<Utc>,
) -> Result<(Site, bool), DbErr> {
    let json = serde_json::to_value(settings).map_err(|e| DbErr::Json(e.to_string()))?;
    // Two PUTs of a new key at once: one inserts (and shows the secret), the other updates.
    let inserted = execute(
        &db.write,
        &format!(
            "INSERT INTO sites ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (tenant_id, key) DO NOTHING"
        ),
        vec![
            tenant_id.into(),
            key.into(),
            format!("{SITE_KEY_PREFIX}{}", random_secret()).into(),
            format!("{SECRET_PREFIX}{}", random_secret()).into(),
            settings.survey.clone().into(),
            json.clone().into(),
            now.into(),
            now.into(),
        ],
    )
    .await?;
    if inserted == 0 {
        execute(
            &db.write,
            "UPDATE sites SET survey_key = ?, settings = ?, updated_at = ? \
             WHERE tenant_id = ? AND key = ?",
            vec![
                settings.survey.clone().into(),
                json.into(),
                now.into(),
                tenant_id.into(),
                key.into(),
            ],
        )
        .await?;
    }
    let site = get(&db.write, tenant_id, key)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("site {key}")))?;
    db.caches.sites.invalidate(&site.site_key);
    Ok((site, inserted > 0))
}

pub async fn get<C: ConnectionTrait>(
    conn: &C,
    tenant_id: Uuid,
    key: &str,
) -> Result<Option<Site>, DbErr> {
    query(
        conn,
        &select("tenant_id = ? AND key = ?"),
        vec![tenant_id.into(), key.into()],
    )
    .await?
    .first()
    .map(Site::from_row)
    .transpose()
}

pub async fn list<C: ConnectionTrait>(conn: &C, tenant_id: Uuid) -> Result<Vec<Site>, DbErr> {
    query(
        conn,
        &select("tenant_id = ? ORDER BY key LIMIT 1000"),
        vec![tenant_id.into()],
    )
    .await?
    .iter()
    .map(Site::from_row)
    .collect()
}

/// Gives the site a new secret; the old one verifies until `until`. The site as it is now.
pub async fn rotate_secret(
    db: &Db,
    tenant_id: Uuid,
    key: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<Site>, DbErr> {
    execute(
        &db.write,
        "UPDATE sites SET previous_secret = secret, previous_secret_until = ?, secret = ?, \
         updated_at = ? WHERE tenant_id = ? AND key = ?",
        vec![
            until.into(),
            format!("{SECRET_PREFIX}{}", random_secret()).into(),
            now.into(),
            tenant_id.into(),
            key.into(),
        ],
    )
    .await?;
    let site = get(&db.write, tenant_id, key).await?;
    if let Some(site) = &site {
        db.caches.sites.invalidate(&site.site_key);
    }
    Ok(site)
}

pub async fn delete(db: &Db, tenant_id: Uuid, key: &str) -> Result<bool, DbErr> {
    let Some(site) = get(&db.write, tenant_id, key).await? else {
        return Ok(false);
    };
    let deleted = execute(
        &db.write,
        "DELETE FROM sites WHERE tenant_id = ? AND key = ?",
        vec![tenant_id.into(), key.into()],
    )
    .await?;
    db.caches.sites.invalidate(&site.site_key);
    Ok(deleted > 0)
}

/// The site a widget request names (cached; unknown keys are not kept, so random keys cannot
/// fill the cache).
pub async fn by_site_key(db: &Db, site_key: &str) -> Result<Option<Arc<Site>>, DbErr> {
    if !site_key.starts_with(SITE_KEY_PREFIX) || site_key.len() > 64 {
        return Ok(None);
    }
    db.caches
        .sites
        .get_or_load(
            site_key.to_owned(),
            || async {
                Ok(
                    query(&db.read, &select("site_key = ?"), vec![site_key.into()])
                        .await?
                        .first()
                        .map(Site::from_row)
                        .transpose()?
                        .map(Arc::new),
                )
            },
            Option::is_some,
        )
        .await
}
