//! Master-key rotation: rewrap in memory with no lock held, then one short write transaction.

use super::{RotationReport, ROTATION_SCOPE};
use crate::access::Operation;
use crate::audit::{AuditAction, AUDIT_KEY_TENANT};
use crate::crypto::provider::{self, KeyProvider};
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::service::operation::Op;
use crate::service::{SecretStorage, Session};
use crate::store::{master_key_rotated, Store, StoreHeader, WrappedKey};
use foldhash::HashMap;
use std::sync::Arc;

/// The data keys rewrapped ahead of the commit, by (tenant, data key id): the wrapped form
/// they were made from and the new one.
type Prepared = HashMap<(String, u32), (Vec<u8>, WrappedKey)>;

/// The master-key rotation's operation descriptor (shared with its dry run).
pub(super) fn op<'s>() -> Op<'s> {
    Op::store_wide(
        Operation::Write,
        AuditAction::RotateMasterKey,
        "rotate the master key",
    )
}

/// The store header and every wrapped data key, read on one connection; WRONG_MASTER_KEY
/// when the store's master key is no longer the one this handle holds.
pub(super) fn snapshot(store: &SecretStorage) -> Result<(StoreHeader, Vec<(String, WrappedKey)>)> {
    let mut conn = store.backend.connection()?;
    let backend = conn.store();
    let header = checked_header(store, backend)?;
    Ok((header, backend.all_tenant_keys()?))
}

/// The store header, if its master key id is the one this handle holds.
fn checked_header(store: &SecretStorage, backend: &mut dyn Store) -> Result<StoreHeader> {
    let header = backend
        .header()?
        .ok_or_else(|| Error::integrity("the store has no header"))?;
    if header.kek_id != store.keyring.kek_id() {
        return Err(master_key_rotated());
    }
    Ok(header)
}

/// Tenant data keys in `keys` (the audit key is rewrapped too, but it is no tenant's).
pub(super) fn tenant_keys(keys: &[(String, WrappedKey)]) -> usize {
    keys.iter()
        .filter(|(tenant, _)| tenant != AUDIT_KEY_TENANT)
        .count()
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
        self.rotate_key_provider(Arc::new(new_key.clone()), progress)
    }

    /// Moves the master key to another provider (or another key of the same kind): every
    /// data key is unwrapped by the current provider and wrapped by `new_key`, calling
    /// `progress(done, total)`. See [`SecretStorage::rotate_key_provider`].
    pub fn rotate_key_provider(
        &self,
        new_key: Arc<dyn KeyProvider>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RotationReport> {
        let new_key = &new_key;
        self.change(op(), |store, change| {
            store.ensure_open()?;
            let (header, keys) = snapshot(store)?;
            let new_kek_id = header.kek_id + 1;
            let prepared = prepare(store, keys, new_key, new_kek_id, progress)?;
            let header = StoreHeader {
                kek_id: new_kek_id,
                key_check: provider::key_check(&**new_key, new_kek_id)?,
            };
            // Readers of this handle may meet keys wrapped by the new key once the commit is
            // visible, before `set_master` below.
            store.keyring.stage(new_key.clone(), new_kek_id);
            let committed = store.commit(ROTATION_SCOPE, change, |backend, change| {
                checked_header(store, backend)?;
                let mut rewrapped = Vec::with_capacity(prepared.len());
                for (tenant, wrapped) in backend.all_tenant_keys()? {
                    let ready = prepared
                        .get(&(tenant.clone(), wrapped.dek_id))
                        .filter(|(from, _)| *from == wrapped.blob);
                    let again = match ready {
                        Some((_, again)) => again.clone(),
                        // Added (or changed) since the snapshot: rewrapped here.
                        None => store
                            .keyring
                            .rewrap(&tenant, &wrapped, &**new_key, new_kek_id)?,
                    };
                    rewrapped.push((tenant, again));
                }
                backend.rewrap_tenant_keys(&rewrapped, &header)?;
                change.set_version(u64::from(new_kek_id));
                Ok(tenant_keys(&rewrapped))
            });
            match committed {
                Ok(keys) => {
                    store.keyring.set_master(new_key.clone(), new_kek_id);
                    Ok(RotationReport {
                        keys,
                        versions: 0,
                        key_id: new_kek_id,
                    })
                }
                Err(e) => {
                    store.keyring.unstage();
                    Err(e)
                }
            }
        })
    }
}

/// Rewraps every key of the snapshot under `new_key`, holding no connection.
fn prepare(
    store: &SecretStorage,
    keys: Vec<(String, WrappedKey)>,
    new_key: &Arc<dyn KeyProvider>,
    new_kek_id: u32,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Prepared> {
    let total = keys.len() as u64;
    let mut prepared = Prepared::default();
    prepared.reserve(keys.len());
    for (done, (tenant, wrapped)) in keys.into_iter().enumerate() {
        let again = store
            .keyring
            .rewrap(&tenant, &wrapped, &**new_key, new_kek_id)?;
        prepared.insert((tenant, wrapped.dek_id), (wrapped.blob, again));
        if done % 256 == 255 {
            progress(done as u64 + 1, total);
        }
    }
    progress(total, total);
    Ok(prepared)
}
