//! Read caches for what every request, webhook and dispatch round reads and tenants rarely
//! change: the tenant by API key and by slug, a provider's configuration, the survey list. A
//! write through this process drops its entry at once; another replica's write is seen within
//! the time to live (`database.cache_ttl_ms`), after which an entry is read again.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use channels::chat::Credentials;
use moka::sync::Cache;
use sea_orm::DbErr;
use uuid::Uuid;

use super::surveys::Survey;
use super::tenants::Tenant;

/// One cache. A load that raced with an invalidation is answered but not kept: the generation
/// moved while the database was read, so the value may be the one just replaced.
pub struct ReadCache<K, V> {
    entries: Cache<K, V>,
    /// Bumped by every invalidation; guarded with the insert so neither slips between.
    generation: Mutex<u64>,
}

impl<K, V> ReadCache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn new(capacity: u64, ttl: Duration) -> Self {
        ReadCache {
            entries: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl.max(Duration::from_millis(1)))
                .build(),
            generation: Mutex::new(0),
        }
    }

    /// The cached value, else `load`'s, kept when `keep` says so (unknown tenants are not
    /// kept: random slugs must not fill the cache).
    pub async fn get_or_load<Fut>(
        &self,
        key: K,
        load: impl FnOnce() -> Fut,
        keep: impl FnOnce(&V) -> bool,
    ) -> Result<V, DbErr>
    where
        Fut: Future<Output = Result<V, DbErr>>,
    {
        if let Some(value) = self.entries.get(&key) {
            return Ok(value);
        }
        let before = *self.generation.lock().unwrap_or_else(|e| e.into_inner());
        let value = load().await?;
        if keep(&value) {
            let generation = self.generation.lock().unwrap_or_else(|e| e.into_inner());
            if *generation == before {
                self.entries.insert(key, value.clone());
            }
        }
        Ok(value)
    }

    /// The cached value, if any; reads nothing.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.get(key)
    }

    pub fn invalidate(&self, key: &K) {
        let mut generation = self.generation.lock().unwrap_or_else(|e| e.into_inner());
        *generation += 1;
        self.entries.invalidate(key);
    }
}

/// The gateway's read caches, shared by every clone of [`super::Db`].
pub struct Caches {
    pub tenants_by_slug: ReadCache<String, Option<Tenant>>,
    /// By the SHA-256 of the API key.
    pub tenants_by_key: ReadCache<String, Option<Tenant>>,
    /// Hashes of API keys that authenticated within the last [`KEY_REMEMBERED`]: when such a
    /// key's cache entry has expired, its look-up is not one of a client's throttled guesses
    /// (every request of a busy integration misses the cache at once when the entry expires).
    /// It grants nothing: the key is still looked up, so a revoked key still fails.
    pub recent_keys: Cache<String, ()>,
    pub credentials: ReadCache<(Uuid, String), Option<Credentials>>,
    pub surveys: ReadCache<Uuid, Arc<Vec<Survey>>>,
    /// Each tenant's link key: set once, never changed, so kept without a time to live.
    pub link_keys: Cache<Uuid, Arc<[u8]>>,
    /// Each tenant's alert rules and whether it has owners: read for every answer, changed
    /// rarely (through `/v1/alert-rules` and `/v1/owners`, which drop the entry).
    pub alert_setup: ReadCache<Uuid, Arc<super::alerts::AlertSetup>>,
    /// Widget sites by their public site key: read by every widget request, changed through
    /// `/v1/sites` (which drops the entry).
    pub sites: ReadCache<String, Option<Arc<super::sites::Site>>>,
    /// The tenants that have HTTP endpoints (see [`super::endpoints::TenantGate`]): kept for
    /// the life of the process, as the outbox routes refer to it.
    pub endpoint_tenants: &'static super::endpoints::TenantGate,
}

/// How long a key that authenticated is exempt from the look-up throttle.
pub const KEY_REMEMBERED: Duration = Duration::from_secs(3600);

impl Caches {
    pub fn new(ttl: Duration) -> Caches {
        Caches {
            tenants_by_slug: ReadCache::new(10_000, ttl),
            tenants_by_key: ReadCache::new(10_000, ttl),
            recent_keys: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(KEY_REMEMBERED)
                .build(),
            credentials: ReadCache::new(50_000, ttl),
            surveys: ReadCache::new(10_000, ttl),
            link_keys: Cache::builder().max_capacity(10_000).build(),
            alert_setup: ReadCache::new(10_000, ttl),
            sites: ReadCache::new(10_000, ttl),
            // One per database connection made (a process, or a test), never freed: small.
            endpoint_tenants: Box::leak(Box::default()),
        }
    }
}

impl fmt::Debug for Caches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caches").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_load_that_raced_an_invalidation_is_not_kept() {
        let cache: ReadCache<u32, &str> = ReadCache::new(10, Duration::from_secs(60));
        let stale = cache
            .get_or_load(
                1,
                || async {
                    // A write in this process lands while the old value is being read.
                    cache.invalidate(&1);
                    Ok("old")
                },
                |_| true,
            )
            .await
            .unwrap();
        assert_eq!(stale, "old");
        let fresh = cache
            .get_or_load(1, || async { Ok("new") }, |_| true)
            .await
            .unwrap();
        assert_eq!(fresh, "new", "the raced value was not kept");
        let cached = cache
            .get_or_load(1, || async { Ok("newer") }, |_| true)
            .await
            .unwrap();
        assert_eq!(cached, "new", "a quiet load is kept");
        cache.invalidate(&1);
        let reloaded = cache
            .get_or_load(1, || async { Ok("newer") }, |_| true)
            .await
            .unwrap();
        assert_eq!(reloaded, "newer", "an invalidation drops the entry");
    }

    #[tokio::test]
    async fn entries_expire_after_their_time_to_live() {
        let cache: ReadCache<u32, u32> = ReadCache::new(10, Duration::from_millis(50));
        cache
            .get_or_load(1, || async { Ok(1) }, |_| true)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        let after = cache
            .get_or_load(1, || async { Ok(2) }, |_| true)
            .await
            .unwrap();
        assert_eq!(after, 2, "another replica's change is read after the TTL");
        let skipped = cache
            .get_or_load(7, || async { Ok(0) }, |v| *v != 0)
            .await
            .unwrap();
        assert_eq!(skipped, 0);
        let loaded = cache
            .get_or_load(7, || async { Ok(3) }, |v| *v != 0)
            .await
            .unwrap();
        assert_eq!(loaded, 3, "a value `keep` refused was not cached");
    }
}
