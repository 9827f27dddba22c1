//! Copying a store to another backend (SQLite file → PostgreSQL, or back) with
//! verification: ciphertexts move as they are, the copy must open with the same master key,
//! and every secret's current value must decrypt to the same bytes on both sides.

use super::{key_provider_of, open_backend, SecretStorage, SecretValue, StorageOptions};
use crate::error::{Error, ErrorCode, Result};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;

/// What a migration copied and checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationReport {
    /// Tenants with a data key.
    pub tenants: usize,
    /// Secrets copied.
    pub secrets: usize,
    /// Kept versions copied.
    pub versions: usize,
    /// Reference index entries copied.
    pub references: usize,
    /// Secrets whose current value opened on the target and equalled the source.
    pub verified: usize,
}

/// Copies the store at `source` into the new, empty store at `target` (each a file path or a
/// `postgres://` URL) and verifies the copy. The master key comes from `options` (or the
/// environment) and must open the source; the target must not hold anything yet.
pub fn migrate(
    source: impl AsRef<Path>,
    target: impl AsRef<Path>,
    options: StorageOptions,
) -> Result<MigrationReport> {
    let master = key_provider_of(&options)?;
    let source_options = StorageOptions {
        master_key: None,
        key_provider: Some(master.clone()),
        create_if_missing: false,
        ..options.clone()
    };
    let from = SecretStorage::open(source, source_options)?;
    let dump = from.backend.connection()?.store().dump()?;
    let target_options = StorageOptions {
        master_key: None,
        key_provider: Some(master.clone()),
        create_if_missing: true,
        ..options
    };
    let backend = open_backend(target.as_ref(), &target_options)?;
    backend.connection()?.store().load(&dump)?;
    let to = SecretStorage::with_backend(backend, master, target_options)?;
    // The copy continues the source's write counter (its pointer seals) but not its audit
    // chain: the target's log starts at record 1.
    to.restart_audit_chain()?;
    let mut verified = 0;
    for secret in &dump.secrets {
        let expected = from.read_uncounted(&secret.tenant, &secret.name)?;
        let copied = to.read_uncounted(&secret.tenant, &secret.name)?;
        if !same(&expected, &copied) {
            return Err(Error::new(
                ErrorCode::Integrity,
                format!(
                    "secret '{}' of tenant '{}' differs on the target after migration",
                    secret.name, secret.tenant
                ),
            ));
        }
        verified += 1;
    }
    Ok(MigrationReport {
        tenants: dump
            .tenant_keys
            .iter()
            .map(|(tenant, _)| tenant)
            .filter(|tenant| *tenant != crate::audit::AUDIT_KEY_TENANT)
            .collect::<BTreeSet<_>>()
            .len(),
        secrets: dump.secrets.len(),
        versions: dump.versions.len(),
        references: dump.references.len(),
        verified,
    })
}

fn same(a: &SecretValue, b: &SecretValue) -> bool {
    a.secret_type() == b.secret_type() && a.version() == b.version() && a.as_bytes() == b.as_bytes()
}
