//! The per-handle cache of current-version ciphertexts, keyed by (tenant, name) in one map:
//! a lookup borrows its `&str` pair, hashes it once and allocates nothing.
//!
//! Entries hold ciphertext and a prepared data key, never plaintext: each `get`
//! decrypts afresh. Each entry also counts its uses, harvested in batches by the service.

use crate::crypto::{open_with_aad, DataKey};
use crate::error::Result;
use crate::model::SecretType;
use crate::service::value::SecretValue;
use crate::store::UsageUpdate;
use foldhash::HashMap;
use parking_lot::RwLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// The current version of one secret, ready to open.
pub struct CachedValue {
    /// Secret type.
    pub secret_type: SecretType,
    /// Current version.
    pub version: u64,
    aad: Vec<u8>,
    blob: Vec<u8>,
    key: Arc<DataKey>,
    uses: AtomicU64,
    last_used_at: AtomicI64,
}

impl CachedValue {
    /// A cache entry for a sealed blob with its precomputed AAD.
    pub fn new(
        secret_type: SecretType,
        version: u64,
        aad: Vec<u8>,
        blob: Vec<u8>,
        key: Arc<DataKey>,
    ) -> Self {
        CachedValue {
            secret_type,
            version,
            aad,
            blob,
            key,
            uses: AtomicU64::new(0),
            last_used_at: AtomicI64::new(0),
        }
    }

    /// Decrypts the value.
    #[inline]
    pub fn open(&self) -> Result<SecretValue> {
        let bytes = open_with_aad(self.key.cipher(), &self.aad, &self.blob)?;
        Ok(SecretValue::new(self.secret_type, self.version, bytes))
    }

    /// Counts one use at `now` (milliseconds since the epoch).
    #[inline]
    pub fn mark_used(&self, now: i64) {
        self.uses.fetch_add(1, Ordering::Relaxed);
        // The coarse clock moves every few ms: usually a plain load, no read-modify-write.
        if self.last_used_at.load(Ordering::Relaxed) < now {
            self.last_used_at.fetch_max(now, Ordering::Relaxed);
        }
    }

    fn take_usage(&self, tenant: &str, name: &str) -> Option<UsageUpdate> {
        let uses = self.uses.swap(0, Ordering::Relaxed);
        (uses > 0).then(|| UsageUpdate {
            tenant: tenant.to_owned(),
            name: name.to_owned(),
            last_used_at: self.last_used_at.load(Ordering::Relaxed),
            uses,
        })
    }
}

/// What the cache is keyed by: a secret's tenant and name. Implemented by the owned key the
/// map stores and by a pair of borrowed `&str` a lookup builds for free, so that a lookup
/// hashes the pair once, in one map, and allocates nothing.
trait SecretKey {
    /// The tenant.
    fn tenant(&self) -> &str;
    /// The name.
    fn name(&self) -> &str;
}

/// The owned key.
#[derive(PartialEq, Eq, Hash)]
struct OwnedKey {
    tenant: Box<str>,
    name: Box<str>,
}

impl SecretKey for OwnedKey {
    fn tenant(&self) -> &str {
        &self.tenant
    }
    fn name(&self) -> &str {
        &self.name
    }
}

/// A borrowed key for lookups.
struct BorrowedKey<'a>(&'a str, &'a str);

impl SecretKey for BorrowedKey<'_> {
    fn tenant(&self) -> &str {
        self.0
    }
    fn name(&self) -> &str {
        self.1
    }
}

impl<'a> std::borrow::Borrow<dyn SecretKey + 'a> for OwnedKey {
    fn borrow(&self) -> &(dyn SecretKey + 'a) {
        self
    }
}

// The owned key's derived `Hash` hashes its fields in order, as this does: equal keys of
// either kind hash alike, as `Borrow` requires.
impl std::hash::Hash for dyn SecretKey + '_ {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.tenant().hash(state);
        self.name().hash(state);
    }
}

impl PartialEq for dyn SecretKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name() && self.tenant() == other.tenant()
    }
}

impl Eq for dyn SecretKey + '_ {}

/// (tenant, name) → current value.
#[derive(Default)]
pub struct ValueCache {
    entries: RwLock<HashMap<OwnedKey, Arc<CachedValue>>>,
}

impl ValueCache {
    /// The cached entry, if any.
    #[inline]
    pub fn get(&self, tenant: &str, name: &str) -> Option<Arc<CachedValue>> {
        self.with(tenant, name, |entry| entry.clone())
    }

    /// Runs `f` on the cached entry, if any, under the read lock.
    #[inline]
    pub fn with<R>(
        &self,
        tenant: &str,
        name: &str,
        f: impl FnOnce(&Arc<CachedValue>) -> R,
    ) -> Option<R> {
        let key = BorrowedKey(tenant, name);
        self.entries.read().get(&key as &dyn SecretKey).map(f)
    }

    /// Inserts or replaces an entry if `still_current()` holds under the write lock; usage
    /// counted on a replaced entry is returned.
    pub fn insert_if(
        &self,
        tenant: &str,
        name: &str,
        value: Arc<CachedValue>,
        still_current: impl FnOnce() -> bool,
    ) -> Option<UsageUpdate> {
        let mut entries = self.entries.write();
        if !still_current() {
            return None;
        }
        let key = OwnedKey {
            tenant: tenant.into(),
            name: name.into(),
        };
        entries
            .insert(key, value)
            .and_then(|old| old.take_usage(tenant, name))
    }

    /// Drops one entry; usage counted on it is returned.
    pub fn remove(&self, tenant: &str, name: &str) -> Option<UsageUpdate> {
        let key = BorrowedKey(tenant, name);
        let old = self.entries.write().remove(&key as &dyn SecretKey)?;
        old.take_usage(tenant, name)
    }

    /// Drops every entry; usage counted on them is returned.
    pub fn clear(&self) -> Vec<UsageUpdate> {
        let drained = std::mem::take(&mut *self.entries.write());
        drained
            .iter()
            .filter_map(|(key, entry)| entry.take_usage(&key.tenant, &key.name))
            .collect()
    }

    /// How many entries are cached (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.read().len()
    }

    /// Harvests usage counted on every entry, leaving the entries in place.
    pub fn take_usage(&self) -> Vec<UsageUpdate> {
        self.entries
            .read()
            .iter()
            .filter_map(|(key, entry)| entry.take_usage(&key.tenant, &key.name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::DataKey;

    fn entry() -> Arc<CachedValue> {
        Arc::new(CachedValue::new(
            SecretType::Text,
            1,
            Vec::new(),
            Vec::new(),
            Arc::new(DataKey::generate(1)),
        ))
    }

    #[test]
    fn keys_are_tenant_and_name_pairs() {
        let cache = ValueCache::default();
        assert!(cache.insert_if("ab", "c", entry(), || true).is_none());
        assert!(cache.get("ab", "c").is_some());
        // Field boundaries count: ("a", "bc") is another secret.
        assert!(cache.get("a", "bc").is_none());
        assert!(cache.get("ab", "d").is_none());
        assert!(cache.insert_if("x", "y", entry(), || false).is_none());
        assert!(cache.get("x", "y").is_none(), "not inserted when stale");
        cache.with("ab", "c", |e| e.mark_used(5)).expect("cached");
        let usage = cache.remove("ab", "c").expect("counted");
        assert_eq!((usage.tenant.as_str(), usage.name.as_str()), ("ab", "c"));
        assert_eq!((usage.uses, usage.last_used_at), (1, 5));
        assert!(cache.get("ab", "c").is_none());
    }
}
