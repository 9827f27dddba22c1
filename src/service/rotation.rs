//! Key rotation, online: readers keep working throughout (each rotation is one transaction,
//! so other connections read the old state until it commits, and an interrupted rotation —
//! a crash, a kill, a lost connection — rolls back with nothing lost).
//!
//! - Master key: every tenant data key is unwrapped with the current master key and wrapped
//!   again under the new one, and the store header (id, key check value) is replaced. Values
//!   are not touched. Afterwards only the new key opens the store.
//! - Tenant key: a new data key is created for the tenant and every kept version of every
//!   secret of the tenant is re-encrypted under it. The old data keys stay stored (wrapped), so
//!   a write that raced the rotation on another node stays readable.

use super::commit::Change;
use super::keyring::Keyring;
use super::{value_context, SecretStorage};
use crate::crypto::{open, seal, DataKey, MasterKey};
use crate::error::{Error, Result};
use crate::model::validate_tenant;
use crate::store::{StoreHeader, StoredVersion};
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotationReport {
    /// Tenant data keys rewrapped (master rotation) or created (tenant rotation).
    pub keys: usize,
    /// Kept versions re-encrypted (tenant rotation only).
    pub versions: usize,
    /// The new key's id (master key id, or the tenant's new data key id).
    pub key_id: u32,
}

/// Scope name that serialises rotations with each other.
const ROTATION_SCOPE: &str = "\u{1f}rotation";

impl SecretStorage {
    /// Replaces the master key: rewraps every tenant data key under `new_key` in one
    /// transaction. Values are not re-encrypted; the old master key no longer opens the store.
    /// Audited as the host.
    ///
    /// ```
    /// use tbsecrets::{ErrorCode, MasterKey, SecretStorage, SecretType, StorageOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("tbsecrets.db");
    /// let (old_key, new_key) = (MasterKey::generate(), MasterKey::generate());
    /// let store = SecretStorage::open(&path, StorageOptions::with_master_key(old_key.clone()))?;
    /// store.create("tenant-a", "MyApiKey", SecretType::Text, b"s3cr3t", "")?;
    /// store.rotate_master_key(&new_key)?;
    /// store.close()?;
    ///
    /// let old = SecretStorage::open(&path, StorageOptions::with_master_key(old_key));
    /// assert_eq!(old.unwrap_err().code(), ErrorCode::WrongMasterKey);
    /// let store = SecretStorage::open(&path, StorageOptions::with_master_key(new_key))?;
    /// assert_eq!(store.get("tenant-a", "MyApiKey")?.as_str()?, "s3cr3t");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rotate_master_key(&self, new_key: &MasterKey) -> Result<RotationReport> {
        self.host().rotate_master_key(new_key)
    }

    /// [`SecretStorage::rotate_master_key`], calling `progress(done, total)` as data keys are
    /// rewrapped (the commit follows the last call).
    pub fn rotate_master_key_with_progress(
        &self,
        new_key: &MasterKey,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RotationReport> {
        self.host()
            .rotate_master_key_with_progress(new_key, progress)
    }

    pub(super) fn rotate_master_key_inner(
        &self,
        change: &mut Change,
        new_key: &MasterKey,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RotationReport> {
        self.ensure_open()?;
        let report = self.commit(ROTATION_SCOPE, change, |store, change| {
            let header = store
                .header()?
                .ok_or_else(|| Error::integrity("the store has no header"))?;
            if header.kek_id != self.keyring.kek_id() {
                return Err(crate::store::master_key_rotated());
            }
            let new_kek_id = header.kek_id + 1;
            let mut rewrapped = Vec::new();
            let keys = store.all_tenant_keys()?;
            let total = keys.len() as u64;
            for (done, (tenant, wrapped)) in keys.into_iter().enumerate() {
                let key = self.keyring.unwrap(&tenant, &wrapped)?;
                let again =
                    Keyring::rewrap_under(new_key, new_kek_id, &tenant, &key, wrapped.created_at)?;
                rewrapped.push((tenant, again));
                if done % 256 == 255 {
                    progress(done as u64 + 1, total);
                }
            }
            progress(total, total);
            let header = StoreHeader {
                kek_id: new_kek_id,
                key_check: new_key.key_check(new_kek_id)?,
            };
            store.rewrap_tenant_keys(&rewrapped, &header)?;
            change.set_version(u64::from(new_kek_id));
            Ok(RotationReport {
                // The audit key is rewrapped too, but it is no tenant's.
                keys: rewrapped
                    .iter()
                    .filter(|(tenant, _)| tenant != crate::audit::AUDIT_KEY_TENANT)
                    .count(),
                versions: 0,
                key_id: new_kek_id,
            })
        })?;
        self.keyring.set_master(new_key.clone(), report.key_id);
        Ok(report)
    }

    /// Gives a tenant a new data key and re-encrypts every kept version of its secrets under
    /// it, in one transaction. Audited as the host.
    pub fn rotate_tenant_key(&self, tenant: &str) -> Result<RotationReport> {
        self.host().rotate_tenant_key(tenant)
    }

    pub(super) fn rotate_tenant_key_inner(
        &self,
        change: &mut Change,
        tenant: &str,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RotationReport> {
        self.ensure_open()?;
        validate_tenant(tenant)?;
        let mut new_key = None;
        let report = self.commit(ROTATION_SCOPE, change, |store, change| {
            let next_id = store
                .active_tenant_key(tenant)?
                .map_or(1, |active| active.dek_id + 1);
            let key = Arc::new(DataKey::generate(next_id));
            let wrapped = self.keyring.wrap(tenant, &key)?;
            if !store.insert_tenant_key(tenant, &wrapped)? {
                return Err(Error::new(
                    crate::ErrorCode::Conflict,
                    format!("another rotation of tenant '{tenant}' is under way"),
                ));
            }
            let mut versions = 0;
            let kept = store.tenant_versions(tenant)?;
            let total = kept.len() as u64;
            for (name, secret_type, stored) in kept {
                let context = value_context(tenant, &name, secret_type, stored.version);
                let old = self.keyring.key(store, tenant, stored.dek_id)?;
                let plaintext = open(old.cipher(), &context, &stored.blob)?;
                let resealed = StoredVersion {
                    dek_id: key.id(),
                    blob: seal(key.cipher(), key.id(), &context, &plaintext)?,
                    ..stored
                };
                store.reseal_version(tenant, &name, &resealed)?;
                versions += 1;
                if versions % 64 == 0 {
                    progress(versions as u64, total);
                }
            }
            progress(total, total);
            new_key = Some(key.clone());
            change.set_version(u64::from(next_id));
            Ok(RotationReport {
                keys: 1,
                versions,
                key_id: next_id,
            })
        })?;
        // Only once committed: an id from a rolled-back rotation may be reused with another key.
        if let Some(key) = new_key {
            self.keyring.remember_new(tenant, key);
        }
        // Cached ciphertexts of this tenant are stale now.
        self.generation.fetch_add(1, Ordering::AcqRel);
        let usage = self.cache.clear();
        if !usage.is_empty() {
            self.pending_usage.lock().extend(usage);
        }
        Ok(report)
    }
}
