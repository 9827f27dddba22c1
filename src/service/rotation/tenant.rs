//! Tenant-key rotation: a new data key, then the tenant's versions re-encrypted in batches,
//! each version's reseal a compare-and-set.

use super::{RotationReport, BATCH, ROTATION_SCOPE};
use crate::audit::AuditAction;
use crate::crypto::{open, seal, DataKey};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{validate_tenant, SecretType};
use crate::service::operation::Op;
use crate::service::{value_context, SecretStorage, Session};
use crate::store::{Reseal, Store, StoredVersion, WrappedKey};
use foldhash::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The tenant-key rotation's operation descriptor (shared with its dry run).
pub(super) fn op(tenant: &str) -> Op<'_> {
    Op::write(AuditAction::RotateTenantKey, tenant, &[])
}

/// The tenant's newest data key; NOT_FOUND when it has none (it never stored a secret).
pub(super) fn active_key(backend: &mut dyn Store, tenant: &str) -> Result<WrappedKey> {
    backend.active_tenant_key(tenant)?.ok_or_else(|| {
        Error::new(
            ErrorCode::NotFound,
            format!("tenant '{tenant}' has no data key to rotate (it never stored a secret)"),
        )
    })
}

/// A page of a tenant's versions with the data keys that sealed them.
pub(super) type Page = (
    Vec<(String, SecretType, StoredVersion)>,
    HashMap<u32, Arc<DataKey>>,
);

/// Up to `limit` versions of `tenant` not sealed by `except_dek`, after `after`, with their
/// data keys unwrapped (one connection, held only for the reads).
pub(super) fn page(
    store: &SecretStorage,
    tenant: &str,
    except_dek: u32,
    after: Option<(&str, u64)>,
    limit: usize,
) -> Result<Page> {
    let mut conn = store.backend.connection()?;
    let backend = conn.store();
    let rows = backend.tenant_versions_page(tenant, except_dek, after, limit)?;
    let mut keys = HashMap::default();
    for (_, _, version) in &rows {
        if let std::collections::hash_map::Entry::Vacant(slot) = keys.entry(version.dek_id) {
            slot.insert(store.keyring.key(backend, tenant, version.dek_id)?);
        }
    }
    Ok((rows, keys))
}

/// Opens `old` with its data key from `keys` and seals the plaintext under `key`.
pub(super) fn reseal_one(
    tenant: &str,
    name: &str,
    secret_type: SecretType,
    old: &StoredVersion,
    keys: &HashMap<u32, Arc<DataKey>>,
    key: &DataKey,
) -> Result<Vec<u8>> {
    let old_key = keys.get(&old.dek_id).ok_or_else(|| {
        Error::internal(format!(
            "data key {} of tenant '{tenant}' was not loaded",
            old.dek_id
        ))
    })?;
    let context = value_context(tenant, name, secret_type, old.version);
    let plaintext = open(old_key.cipher(), &context, &old.blob)?;
    seal(key.cipher(), key.id(), &context, &plaintext)
}

impl Session<'_> {
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
        self.change(op(tenant), |store, change| {
            store.ensure_open()?;
            validate_tenant(tenant)?;
            let key = store.commit(ROTATION_SCOPE, change, |backend, change| {
                let next_id = active_key(backend, tenant)?.dek_id + 1;
                let key = Arc::new(DataKey::generate(next_id));
                let wrapped = store.keyring.wrap(tenant, &key)?;
                if !backend.insert_tenant_key(tenant, &wrapped)? {
                    return Err(Error::new(
                        ErrorCode::Conflict,
                        format!("another rotation of tenant '{tenant}' is under way"),
                    ));
                }
                change.set_version(u64::from(next_id));
                Ok(key)
            })?;
            // Only once committed: an id from a rolled-back rotation may be reused with another key.
            store.keyring.remember_new(tenant, key.clone());
            // The rotation's one record committed with its key: a later failure adds none.
            *change = Default::default();
            let versions = reencrypt(store, tenant, &key, progress);
            // Cached ciphertexts of this tenant are under old keys (still readable: those
            // stay stored); dropped so that reads pick up the new ones.
            store.generation.fetch_add(1, Ordering::AcqRel);
            let usage = store.cache.clear();
            if !usage.is_empty() {
                store.pending_usage.lock().extend(usage);
            }
            Ok(RotationReport {
                keys: 1,
                versions: versions?,
                key_id: key.id(),
            })
        })
    }
}

/// Re-encrypts every version of `tenant` not under `key`, [`BATCH`] a transaction, holding
/// no connection while it opens and seals; returns how many versions it replaced.
fn reencrypt(
    store: &SecretStorage,
    tenant: &str,
    key: &DataKey,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<usize> {
    let total = store
        .backend
        .connection()?
        .store()
        .count_tenant_versions(tenant)?
        .1;
    let (mut after, mut seen, mut replaced) = (None::<(String, u64)>, 0u64, 0usize);
    loop {
        let cursor = after
            .as_ref()
            .map(|(name, version)| (name.as_str(), *version));
        let (rows, keys) = page(store, tenant, key.id(), cursor, BATCH)?;
        let Some((name, _, last)) = rows.last() else {
            break;
        };
        after = Some((name.clone(), last.version));
        let full = rows.len() == BATCH;
        let mut batch = Vec::with_capacity(rows.len());
        for (name, secret_type, old) in rows {
            let blob = reseal_one(tenant, &name, secret_type, &old, &keys, key)?;
            batch.push(Reseal {
                name,
                old,
                dek_id: key.id(),
                blob,
            });
        }
        seen += batch.len() as u64;
        let mut conn = store.backend.connection()?;
        replaced += conn.store().reseal_versions(tenant, &batch)?;
        drop(conn);
        progress(seen, total.max(seen));
        if !full {
            break;
        }
    }
    progress(seen, total.max(seen));
    Ok(replaced)
}
