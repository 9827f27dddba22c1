//! Key rotation, online: the expensive work (unwrapping and wrapping every data key, opening
//! and sealing every version) runs with no connection and no write lock held, and its results
//! are written in short transactions, so readers on this handle, on other handles and in
//! other processes keep their latency throughout.
//!
//! - Master key (`master.rs`): the wrapped data keys are read (one short read), rewrapped
//!   under the new key in memory, then written in one short write transaction that re-checks
//!   the store header's master key id, rewraps whatever was added or changed since the read
//!   and replaces the header (id, key check value). Values are not touched. An interrupted
//!   rotation leaves the store as it was (the old key opens it) or rotated (the new key opens
//!   it): never a mix. Afterwards only the new key opens the store.
//! - Tenant key (`tenant.rs`): a new data key is created for the tenant (one short
//!   transaction, with the audit record), then every kept version of the tenant's secrets is
//!   re-encrypted under it in batches of [`BATCH`] versions, each its own transaction, each
//!   version's reseal a compare-and-set on its stored (data key id, ciphertext) so that a
//!   concurrent update is never overwritten. The old data keys stay stored (wrapped), so every
//!   intermediate state reads correctly; an interrupted rotation is finished by running it
//!   again (a new key, re-encrypting every version not under it).
//! - Dry runs (`plan.rs`): [`RotationPlan`] says what a rotation would rewrap or re-encrypt
//!   and estimates its time from a timed sample of the same work; nothing is written.

mod master;
mod plan;
mod tenant;

pub use plan::RotationPlan;

use super::SecretStorage;
use crate::crypto::{KeyProvider, MasterKey};
use crate::error::Result;
use serde::Serialize;
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

/// Scope name that serialises rotations' transactions with each other.
const ROTATION_SCOPE: &str = "\u{1f}rotation";

/// Versions re-encrypted per transaction by a tenant-key rotation.
pub const BATCH: usize = 256;

host_operations! {
    /// Replaces the master key: rewraps every tenant data key under `new_key` (in memory,
    /// then written in one short transaction). Values are not re-encrypted; the old master
    /// key no longer opens the store. Audited as the host.
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

    /// Moves the master key to another provider, e.g. from a `raw` key to a PKCS#11 token
    /// when an HSM arrives: every data key is unwrapped by the current provider and wrapped by
    /// `new_key` (in memory, then written in one short transaction, like
    /// [`SecretStorage::rotate_master_key`]); `progress(done, total)` is called as keys are
    /// rewrapped. Afterwards only `new_key` opens the store. Audited as the host.
    fn rotate_key_provider(&self, new_key: Arc<dyn KeyProvider>,
        progress: &mut dyn FnMut(u64, u64)) -> Result<RotationReport>;

    /// Gives a tenant a new data key and re-encrypts every kept version of its secrets under
    /// it, in batches of [`BATCH`] versions (one transaction each). NOT_FOUND for a tenant
    /// that has no data key (it never stored a secret). Audited as the host.
    fn rotate_tenant_key(&self, tenant: &str) -> Result<RotationReport>;

    /// [`SecretStorage::rotate_tenant_key`], calling `progress(done, total)` as versions are
    /// re-encrypted.
    fn rotate_tenant_key_with_progress(&self, tenant: &str,
        progress: &mut dyn FnMut(u64, u64)) -> Result<RotationReport>;

    /// What [`SecretStorage::rotate_master_key`] would do, with an estimated time; writes
    /// nothing.
    ///
    /// ```
    /// use tbsecrets::{MasterKey, SecretStorage, SecretType, StorageOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let options = StorageOptions::with_master_key(MasterKey::generate());
    /// let store = SecretStorage::open(dir.path().join("tbsecrets.db"), options)?;
    /// store.create("tenant-a", "MyApiKey", SecretType::Text, b"s3cr3t", "")?;
    /// let plan = store.plan_master_key_rotation()?;
    /// assert_eq!((plan.tenants, plan.keys, plan.key_id), (1, 1, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn plan_master_key_rotation(&self) -> Result<RotationPlan>;

    /// What [`SecretStorage::rotate_tenant_key`] would do, with an estimated time; writes
    /// nothing. NOT_FOUND for a tenant that has no data key.
    fn plan_tenant_key_rotation(&self, tenant: &str) -> Result<RotationPlan>;
}
