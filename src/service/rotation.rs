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

use super::keyring::Keyring;
use super::operation::Op;
use super::{value_context, SecretStorage, Session};
use crate::access::Operation;
use crate::audit::AuditAction;
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

host_operations! {
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
    fn rotate_master_key(&self, new_key: &MasterKey) -> Result<RotationReport>;

    /// [`SecretStorage::rotate_master_key`], calling `progress(done, total)` as data keys are
    /// rewrapped (the commit follows the last call).
    fn rotate_master_key_with_progress(&self, new_key: &MasterKey,
        progress: &mut dyn FnMut(u64, u64)) -> Result<RotationReport>;

    /// Gives a tenant a new data key and re-encrypts every kept version of its secrets under
    /// it, in one transaction. Audited as the host.
    fn rotate_tenant_key(&self, tenant: &str) -> Result<RotationReport>;
}

impl Session<'_> {
    /// Replaces the master key; needs WRITE in every tenant (by default: only SYS_ADMIN).
    /// See [`SecretStorage::rotate_master_key`].
    pub fn rotate_master_key(&self, new_key: &MasterKey) -> Result<RotationReport> {
        self.rotate_master_key_with_progress(new_key, &mut |_, _| {})
    }

    /// [`Session::rotate_master_key`], calling `progress(done, total)` as keys are rewrapped.
    pub fn rotate_master_key_with_progress(
        &self,
        new_key: &MasterKey,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RotationReport> {
        self.change(
            Op::store_wide(
                Operation::Write,
                AuditAction::RotateMasterKey,
                "rotate the master key",
            ),
            |store, change| {
                store.ensure_open()?;
                let report = store.commit(ROTATION_SCOPE, change, |backend, change| {
                    let header = backend
                        .header()?
                        .ok_or_else(|| Error::integrity("the store has no header"))?;
                    if header.kek_id != store.keyring.kek_id() {
                        return Err(crate::store::master_key_rotated());
                    }
                    let new_kek_id = header.kek_id + 1;
                    let mut rewrapped = Vec::new();
                    let keys = backend.all_tenant_keys()?;
                    let total = keys.len() as u64;
                    for (done, (tenant, wrapped)) in keys.into_iter().enumerate() {
                        let key = store.keyring.unwrap(&tenant, &wrapped)?;
                        let again = Keyring::rewrap_under(
                            new_key,
                            new_kek_id,
                            &tenant,
                            &key,
                            wrapped.created_at,
                        )?;
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
                    backend.rewrap_tenant_keys(&rewrapped, &header)?;
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
                store.keyring.set_master(new_key.clone(), report.key_id);
                Ok(report)
            },
        )
    }

    /// Gives a tenant a new data key and re-encrypts its versions; needs WRITE in the tenant.
    /// See [`SecretStorage::rotate_tenant_key`].
    pub fn rotate_tenant_key(&self, tenant: &str) -> Result<RotationReport> {
        self.rotate_tenant_key_with_progress(tenant, &mut |_, _| {})
    }

    /// [`Session::rotate_tenant_key`], calling `progress(done, total)` as versions are
    /// re-encrypted.
    pub fn rotate_tenant_key_with_progress(
        &self,
        tenant: &str,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RotationReport> {
        self.change(
            Op::write(AuditAction::RotateTenantKey, tenant, &[]),
            |store, change| {
                store.ensure_open()?;
                validate_tenant(tenant)?;
                let mut new_key = None;
                let report = store.commit(ROTATION_SCOPE, change, |backend, change| {
                    let next_id = backend
                        .active_tenant_key(tenant)?
                        .map_or(1, |active| active.dek_id + 1);
                    let key = Arc::new(DataKey::generate(next_id));
                    let wrapped = store.keyring.wrap(tenant, &key)?;
                    if !backend.insert_tenant_key(tenant, &wrapped)? {
                        return Err(Error::new(
                            crate::ErrorCode::Conflict,
                            format!("another rotation of tenant '{tenant}' is under way"),
                        ));
                    }
                    let mut versions = 0;
                    let kept = backend.tenant_versions(tenant)?;
                    let total = kept.len() as u64;
                    for (name, secret_type, stored) in kept {
                        let context = value_context(tenant, &name, secret_type, stored.version);
                        let old = store.keyring.key(backend, tenant, stored.dek_id)?;
                        let plaintext = open(old.cipher(), &context, &stored.blob)?;
                        let resealed = StoredVersion {
                            dek_id: key.id(),
                            blob: seal(key.cipher(), key.id(), &context, &plaintext)?,
                            ..stored
                        };
                        backend.reseal_version(tenant, &name, &resealed)?;
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
                    store.keyring.remember_new(tenant, key);
                }
                // Cached ciphertexts of this tenant are stale now.
                store.generation.fetch_add(1, Ordering::AcqRel);
                let usage = store.cache.clear();
                if !usage.is_empty() {
                    store.pending_usage.lock().extend(usage);
                }
                Ok(report)
            },
        )
    }
}
