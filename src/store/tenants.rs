//! Tenants and their API keys.
//!
//! A key is 32 random bytes shown once; the database keeps only its SHA-256. A slow password
//! hash is not needed: the key has 256 bits of entropy, so a stolen hash cannot be brute-forced,
//! and a lookup by hash stays one indexed query per request.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use channels::vocabulary::check_slug;
use chrono::Utc;
use rand::RngCore;
use std::sync::Arc;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, Set, TransactionTrait,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::entities::{api_key, tenant};
use super::Db;

pub const KEY_PREFIX: &str = "fgw_";

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Tenant {
    pub id: Uuid,
    pub slug: String,
}

impl From<tenant::Model> for Tenant {
    fn from(m: tenant::Model) -> Self {
        Tenant {
            id: m.id,
            slug: m.slug,
        }
    }
}

/// A tenant just created, with the only copy of its API key.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedTenant {
    pub id: Uuid,
    pub slug: String,
    pub api_key: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateTenantError {
    #[error("slug: {0}")]
    InvalidSlug(&'static str),
    #[error("a tenant with slug `{0}` exists already")]
    Exists(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// 32 random bytes, base64url: the secret of an API key, and a tenant's link key.
/// 32 random bytes, base64url: API keys, link keys, site keys and secrets.
pub(crate) fn random_secret() -> String {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    URL_SAFE_NO_PAD.encode(secret)
}

fn new_key() -> String {
    format!("{KEY_PREFIX}{}", random_secret())
}

/// The key that signs the tenant's e-mail links (`channels::email::links`). A tenant created
/// before keys existed gets one on first use; whichever replica writes first wins, and every
/// one reads that.
pub async fn link_key(db: &Db, tenant_id: Uuid) -> Result<Option<Arc<[u8]>>, DbErr> {
    if let Some(key) = db.caches.link_keys.get(&tenant_id) {
        return Ok(Some(key));
    }
    let read = || async {
        let row = db
            .write
            .query_one_raw(db.statement(
                "SELECT link_key FROM tenants WHERE id = ?",
                vec![tenant_id.into()],
            ))
            .await?;
        row.map(|r| r.try_get::<Option<String>>("", "link_key"))
            .transpose()
    };
    let stored = match read().await? {
        None => return Ok(None),
        Some(Some(key)) => key,
        Some(None) => {
            db.write
                .execute_raw(db.statement(
                    "UPDATE tenants SET link_key = ? WHERE id = ? AND link_key IS NULL",
                    vec![random_secret().into(), tenant_id.into()],
                ))
                .await?;
            read().await?.flatten().ok_or_else(|| {
                DbErr::RecordNotFound(format!("the link key of tenant {tenant_id}"))
            })?
        }
    };
    let key: Arc<[u8]> = URL_SAFE_NO_PAD
        .decode(stored.as_bytes())
        .map_err(|e| DbErr::Custom(format!("the link key of tenant {tenant_id}: {e}")))?
        .into();
    db.caches.link_keys.insert(tenant_id, key.clone());
    Ok(Some(key))
}

pub async fn create(db: &Db, slug: &str) -> Result<CreatedTenant, CreateTenantError> {
    check_slug(slug).map_err(CreateTenantError::InvalidSlug)?;
    let now = Utc::now();
    let tenant_id = channels::model::new_id();
    let key = new_key();
    let txn = db.write.begin().await?;
    let inserted = tenant::ActiveModel {
        id: Set(tenant_id),
        slug: Set(slug.to_owned()),
        name: Set(None),
        default_region: Set(None),
        time_zone: Set(None),
        created_at: Set(now),
        link_key: Set(Some(random_secret())),
    }
    .insert(&txn)
    .await;
    match inserted {
        Err(e) if super::is_unique_violation(&e) => {
            return Err(CreateTenantError::Exists(slug.to_owned()))
        }
        other => other?,
    };
    api_key::ActiveModel {
        id: Set(channels::model::new_id()),
        tenant_id: Set(tenant_id),
        key_prefix: Set(key[..KEY_PREFIX.len() + 6].to_owned()),
        key_hash: Set(hash_key(&key)),
        label: Set(Some("initial".into())),
        created_at: Set(now),
        revoked_at: Set(None),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(CreatedTenant {
        id: tenant_id,
        slug: slug.to_owned(),
        api_key: key,
    })
}

/// The tenant an API key belongs to, if the key is known and not revoked; `key_hash` is the
/// key's [`hash_key`], computed once by the caller. Cached by that hash: only keys that
/// authenticated are kept (unknown keys cannot grow the cache), and a key revoked in the
/// database stops working within the cache's time to live (`database.cache_ttl_ms`) on every
/// replica.
pub async fn authenticate(db: &Db, key: &str, key_hash: &str) -> Result<Option<Tenant>, DbErr> {
    if !key.starts_with(KEY_PREFIX) {
        return Ok(None);
    }
    let load = || async {
        let Some(key) = super::first(
            api_key::Entity::find()
                .filter(api_key::Column::KeyHash.eq(key_hash))
                .filter(api_key::Column::RevokedAt.is_null()),
            &db.read,
        )
        .await?
        else {
            return Ok(None);
        };
        Ok(tenant::Entity::find_by_id(key.tenant_id)
            .one(&db.read)
            .await?
            .map(Tenant::from))
    };
    let tenant = db
        .caches
        .tenants_by_key
        .get_or_load(key_hash.to_owned(), load, Option::is_some)
        .await?;
    match tenant {
        Some(_) => db.caches.recent_keys.insert(key_hash.to_owned(), ()),
        None => db.caches.recent_keys.invalidate(key_hash),
    }
    Ok(tenant)
}

/// Whether this key authenticated recently (see [`super::cache::Caches::recent_keys`]).
pub fn recently_valid(db: &Db, key_hash: &str) -> bool {
    db.caches.recent_keys.contains_key(key_hash)
}

/// The tenant of an API key that authenticated within the cache's time to live, by the key's
/// hash; `None` when it must be read from the database.
pub fn cached_by_key(db: &Db, key_hash: &str) -> Option<Tenant> {
    db.caches.tenants_by_key.get(key_hash).flatten()
}

/// The tenant with this slug. Cached (known tenants only: a flood of made-up slugs is read
/// from the database, and throttled before that by the hook rate limit).
pub async fn find_by_slug(db: &Db, slug: &str) -> Result<Option<Tenant>, DbErr> {
    db.caches
        .tenants_by_slug
        .get_or_load(
            slug.to_owned(),
            || async {
                Ok(tenant::Entity::find()
                    .filter(tenant::Column::Slug.eq(slug))
                    .one(&db.read)
                    .await?
                    .map(Tenant::from))
            },
            Option::is_some,
        )
        .await
}

/// The slug of a tenant, by id.
pub async fn slug_of(db: &Db, id: Uuid) -> Result<Option<String>, DbErr> {
    Ok(tenant::Entity::find_by_id(id)
        .one(&db.read)
        .await?
        .map(|t| t.slug))
}

pub async fn count(db: &Db) -> Result<u64, DbErr> {
    tenant::Entity::find().count(&db.read).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_url_safe() {
        assert!(check_slug("acme").is_ok());
        assert!(check_slug("acme-dk-2").is_ok());
        for bad in [
            "",
            "a",
            "Acme",
            "acme corp",
            "acme/x",
            "-acme",
            "acme-",
            "æøå",
        ] {
            assert!(check_slug(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keys_are_random_prefixed_and_hashed() {
        let a = new_key();
        let b = new_key();
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(hash_key(&a).len(), 64);
        assert_ne!(hash_key(&a), hash_key(&b));
    }
}
