//! The per-handle cache of current-version ciphertexts, keyed by tenant then name, so
//! lookups borrow `&str` keys and allocate nothing.
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

type TenantMap = HashMap<String, Arc<CachedValue>>;

/// Tenant → name → current value.
#[derive(Default)]
pub struct ValueCache {
    tenants: RwLock<HashMap<String, TenantMap>>,
}

impl ValueCache {
    /// The cached entry, if any.
    #[inline]
    pub fn get(&self, tenant: &str, name: &str) -> Option<Arc<CachedValue>> {
        self.tenants.read().get(tenant)?.get(name).cloned()
    }

    /// Runs `f` on the cached entry, if any, under the read lock.
    #[inline]
    pub fn with<R>(
        &self,
        tenant: &str,
        name: &str,
        f: impl FnOnce(&CachedValue) -> R,
    ) -> Option<R> {
        let tenants = self.tenants.read();
        tenants.get(tenant)?.get(name).map(|entry| f(entry))
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
        let mut tenants = self.tenants.write();
        if !still_current() {
            return None;
        }
        let map = match tenants.get_mut(tenant) {
            Some(map) => map,
            None => tenants.entry(tenant.to_owned()).or_default(),
        };
        map.insert(name.to_owned(), value)
            .and_then(|old| old.take_usage(tenant, name))
    }

    /// Drops one entry; usage counted on it is returned.
    pub fn remove(&self, tenant: &str, name: &str) -> Option<UsageUpdate> {
        let mut tenants = self.tenants.write();
        let map = tenants.get_mut(tenant)?;
        let old = map.remove(name)?;
        if map.is_empty() {
            tenants.remove(tenant);
        }
        old.take_usage(tenant, name)
    }

    /// Drops every entry; usage counted on them is returned.
    pub fn clear(&self) -> Vec<UsageUpdate> {
        let drained = std::mem::take(&mut *self.tenants.write());
        let mut usage = Vec::new();
        for (tenant, names) in drained {
            usage.extend(
                names
                    .iter()
                    .filter_map(|(name, entry)| entry.take_usage(&tenant, name)),
            );
        }
        usage
    }

    /// Harvests usage counted on every entry, leaving the entries in place.
    pub fn take_usage(&self) -> Vec<UsageUpdate> {
        let tenants = self.tenants.read();
        tenants
            .iter()
            .flat_map(|(tenant, names)| {
                names
                    .iter()
                    .filter_map(move |(name, entry)| entry.take_usage(tenant, name))
            })
            .collect()
    }
}
