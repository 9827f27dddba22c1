//! The CRUD operations: create, update, rollback, describe, info, list, unused/stale
//! and history, with the helpers they share (delete, undelete and destroy: `deleted.rs`). Each is one [`Session`] method (policy check
//! and audit record from `operation.rs`); the host's `SecretStorage` methods are declared
//! below, one line each.

use super::operation::Op;
use super::state::Pointer;
use super::{state, value_context, Change, SecretStorage, Session};
use crate::audit::AuditAction;
use crate::crypto::seal;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    now_millis, validate_description, validate_name, validate_tenant, validate_value, ListQuery,
    Page, SecretInfo, SecretType, VersionInfo,
};
use crate::store::{NextVersion, Store, StoredSecret, StoredVersion};
use std::time::Duration;

host_operations! {
    /// Creates a secret (version 1). ALREADY_EXISTS if the name is taken in the tenant.
    /// Audited as the host; see [`Session::create`] to act as a principal.
    ///
    /// ```
    /// use tbsecrets::{ErrorCode, MasterKey, SecretStorage, SecretType, StorageOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let options = StorageOptions::with_master_key(MasterKey::generate());
    /// let store = SecretStorage::open(dir.path().join("tbsecrets.db"), options)?;
    ///
    /// let info = store.create("tenant-a", "MyApiKey", SecretType::Text, b"s3cr3t", "API key")?;
    /// assert_eq!(info.version, 1);
    /// let again = store.create("tenant-a", "MyApiKey", SecretType::Text, b"other", "");
    /// assert_eq!(again.unwrap_err().code(), ErrorCode::AlreadyExists);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn create(&self, tenant: &str, name: &str, secret_type: SecretType, value: &[u8],
        description: &str) -> Result<SecretInfo>;

    /// Writes a new version of a secret's value.
    ///
    /// With `expected_version`, the write happens only if the current version equals it
    /// (check-and-set), else CONFLICT. Returns the updated metadata. Audited as the host.
    fn update_value(&self, tenant: &str, name: &str, value: &[u8],
        expected_version: Option<u64>) -> Result<SecretInfo>;

    /// Writes a new version equal to the kept version `version`. Audited as the host.
    fn rollback(&self, tenant: &str, name: &str, version: u64) -> Result<SecretInfo>;

    /// Changes a secret's description (no new version). Audited as the host.
    fn update_description(&self, tenant: &str, name: &str, description: &str)
        -> Result<SecretInfo>;

    /// Metadata of one secret (never the value).
    fn info(&self, tenant: &str, name: &str) -> Result<SecretInfo>;

    /// A page of a tenant's secrets in name order, optionally filtered by a name substring.
    fn list(&self, tenant: &str, query: &ListQuery) -> Result<Page<SecretInfo>>;

    /// Secrets of a tenant not read or resolved for at least `age` (never used counts), in
    /// name order. Usage counters are flushed first.
    fn unused(&self, tenant: &str, age: Duration) -> Result<Vec<SecretInfo>>;

    /// Secrets of a tenant whose value was last written at least `age` ago (candidates for
    /// rotation), in name order.
    fn stale(&self, tenant: &str, age: Duration) -> Result<Vec<SecretInfo>>;

    /// Kept versions of a secret, newest first (no values).
    fn history(&self, tenant: &str, name: &str) -> Result<Vec<VersionInfo>>;
}

impl Session<'_> {
    /// Creates a secret (version 1); needs WRITE. See [`SecretStorage::create`].
    pub fn create(
        &self,
        tenant: &str,
        name: &str,
        secret_type: SecretType,
        value: &[u8],
        description: &str,
    ) -> Result<SecretInfo> {
        self.change(
            Op::write(AuditAction::Create, tenant, &[name]),
            |store, change| {
                store.ensure_open()?;
                validate_tenant(tenant)?;
                validate_name(name)?;
                validate_description(description)?;
                validate_value(secret_type, value, &store.options.limits)?;
                let secret =
                    store.commit(&write_scope(tenant, name), change, |backend, change| {
                        let key = store.keyring.active_key(backend, tenant)?;
                        let now = now_millis();
                        let blob = seal(
                            key.cipher(),
                            key.id(),
                            &value_context(tenant, name, secret_type, 1),
                            value,
                        )?;
                        let secret = StoredSecret::first_version(
                            tenant,
                            name,
                            secret_type,
                            description,
                            now,
                        );
                        let stored = StoredVersion {
                            version: 1,
                            dek_id: key.id(),
                            blob,
                            created_at: now,
                        };
                        backend.create(&secret, &stored)?;
                        change.moved_pointer(tenant, name, Pointer::live(secret_type, 1));
                        change.set_version(1);
                        Ok(secret)
                    })?;
                store.forget(tenant, name);
                Ok(info_of(secret))
            },
        )
    }

    /// Writes a new value version; needs WRITE. See [`SecretStorage::update_value`].
    pub fn update_value(
        &self,
        tenant: &str,
        name: &str,
        value: &[u8],
        expected_version: Option<u64>,
    ) -> Result<SecretInfo> {
        self.change(
            Op::write(AuditAction::Update, tenant, &[name]),
            |store, change| {
                store.write_version(change, tenant, name, expected_version, |secret, _| {
                    validate_value(secret.secret_type, value, &store.options.limits)?;
                    Ok(zeroize::Zeroizing::new(value.to_vec()))
                })
            },
        )
    }

    /// Makes a kept version current again; needs WRITE. See [`SecretStorage::rollback`].
    pub fn rollback(&self, tenant: &str, name: &str, version: u64) -> Result<SecretInfo> {
        self.change(
            Op::write(AuditAction::Rollback, tenant, &[name]),
            |store, change| {
                store.write_version(change, tenant, name, None, |secret, backend| {
                    let old = backend.version(tenant, name, version)?.ok_or_else(|| {
                        Error::new(
                            ErrorCode::NotFound,
                            format!(
                            "version {version} of secret '{name}' is not kept (current version {})",
                            secret.version
                        ),
                        )
                    })?;
                    let key = store.keyring.key(backend, tenant, old.dek_id)?;
                    crate::crypto::open(
                        key.cipher(),
                        &value_context(tenant, name, secret.secret_type, version),
                        &old.blob,
                    )
                })
            },
        )
    }

    /// Changes a description; needs WRITE. See [`SecretStorage::update_description`].
    pub fn update_description(
        &self,
        tenant: &str,
        name: &str,
        description: &str,
    ) -> Result<SecretInfo> {
        self.change(
            Op::write(AuditAction::Describe, tenant, &[name]),
            |store, change| {
                store.ensure_open()?;
                validate_tenant(tenant)?;
                validate_name(name)?;
                validate_description(description)?;
                store.commit(&write_scope(tenant, name), change, |backend, _| {
                    backend.set_description(tenant, name, description, now_millis())?;
                    info_from(backend, tenant, name)
                })
            },
        )
    }

    /// A secret's metadata; needs READ. See [`SecretStorage::info`].
    pub fn info(&self, tenant: &str, name: &str) -> Result<SecretInfo> {
        self.read(Op::read(tenant, &[name]), |store| {
            store.ensure_open()?;
            validate_tenant(tenant)?;
            validate_name(name)?;
            store.with_flushed_usage(|backend| info_from(backend, tenant, name))
        })
    }

    /// A page of a tenant's secrets; needs READ. See [`SecretStorage::list`].
    pub fn list(&self, tenant: &str, query: &ListQuery) -> Result<Page<SecretInfo>> {
        self.read(Op::read(tenant, &[]), |store| {
            store.ensure_open()?;
            validate_tenant(tenant)?;
            let page = store.with_flushed_usage(|backend| backend.list(tenant, query))?;
            Ok(Page {
                items: page.items.into_iter().map(info_of).collect(),
                total: page.total,
                has_more: page.has_more,
                next_after: page.next_after,
            })
        })
    }

    /// Secrets not used for `age`; needs READ. See [`SecretStorage::unused`].
    pub fn unused(&self, tenant: &str, age: Duration) -> Result<Vec<SecretInfo>> {
        let cutoff = now_millis().saturating_sub(age.as_millis() as i64);
        self.all_where(tenant, |s| s.last_used_at.is_none_or(|used| used <= cutoff))
    }

    /// Secrets whose value is older than `age`; needs READ. See [`SecretStorage::stale`].
    pub fn stale(&self, tenant: &str, age: Duration) -> Result<Vec<SecretInfo>> {
        let cutoff = now_millis().saturating_sub(age.as_millis() as i64);
        self.all_where(tenant, |s| s.value_updated_at <= cutoff)
    }

    /// A secret's kept versions; needs READ. See [`SecretStorage::history`].
    pub fn history(&self, tenant: &str, name: &str) -> Result<Vec<VersionInfo>> {
        self.read(Op::read(tenant, &[name]), |store| {
            store.ensure_open()?;
            validate_tenant(tenant)?;
            validate_name(name)?;
            let mut conn = store.backend.connection()?;
            let backend = conn.store();
            let secret = live(backend.secret(tenant, name)?, tenant, name)?;
            Ok(backend
                .versions(tenant, name)?
                .into_iter()
                .map(|(version, created_at)| VersionInfo {
                    version,
                    created_at,
                    current: version == secret.version,
                })
                .collect())
        })
    }

    /// Every secret of a tenant that `keep` keeps, in name order (needs READ).
    fn all_where(
        &self,
        tenant: &str,
        keep: impl Fn(&SecretInfo) -> bool,
    ) -> Result<Vec<SecretInfo>> {
        let mut all = self.list(tenant, &ListQuery::default())?.items;
        all.retain(keep);
        Ok(all)
    }
}

impl SecretStorage {
    /// Runs `read` on a connection after writing the batched usage counters (so metadata
    /// shows them), then hands batched use records to the sink.
    fn with_flushed_usage<T>(&self, read: impl FnOnce(&mut dyn Store) -> Result<T>) -> Result<T> {
        let mut conn = self.backend.connection()?;
        let backend = conn.store();
        self.flush_usage_to(backend)?;
        let result = read(backend);
        drop(conn);
        self.notify_sink();
        result
    }

    /// Shared path of update and rollback: under the store's write lock, read the current
    /// version, produce the plaintext, seal it as version n+1 and append it. No other
    /// connection can commit between the read and the append, so a write conflicts only
    /// when the caller asked for a specific version.
    fn write_version(
        &self,
        change: &mut Change,
        tenant: &str,
        name: &str,
        expected_version: Option<u64>,
        plaintext: impl Fn(&StoredSecret, &mut dyn Store) -> Result<zeroize::Zeroizing<Vec<u8>>> + Sync,
    ) -> Result<SecretInfo> {
        self.ensure_open()?;
        validate_tenant(tenant)?;
        validate_name(name)?;
        let written = self.commit(&write_scope(tenant, name), change, |backend, change| {
            let secret = self.authentic_secret(backend, tenant, name)?;
            if let Some(expected) = expected_version {
                if expected != secret.version {
                    return Err(Error::new(
                        ErrorCode::Conflict,
                        format!(
                            "secret '{name}' is at version {}, not the expected version {expected}",
                            secret.version
                        ),
                    ));
                }
            }
            let value = plaintext(&secret, backend)?;
            let key = self.keyring.active_key(backend, tenant)?;
            let version = secret.version + 1;
            let now = now_millis();
            let stored = StoredVersion {
                version,
                dek_id: key.id(),
                blob: seal(
                    key.cipher(),
                    key.id(),
                    &value_context(tenant, name, secret.secret_type, version),
                    &value,
                )?,
                created_at: now,
            };
            backend.append_version(&NextVersion {
                tenant,
                name,
                expected_current: secret.version,
                value: &stored,
                max_versions: self.options.max_versions,
            })?;
            change.moved_pointer(tenant, name, Pointer::live(secret.secret_type, version));
            change.set_version(version);
            Ok(SecretInfo {
                version,
                updated_at: now,
                value_updated_at: now,
                ..secret.info
            })
        })?;
        self.forget(tenant, name);
        Ok(written)
    }

    /// A secret's metadata, its current-version pointer authenticated (INTEGRITY when it was
    /// moved in the database); NOT_FOUND when there is no such secret.
    pub(super) fn authentic_secret(
        &self,
        backend: &mut dyn Store,
        tenant: &str,
        name: &str,
    ) -> Result<StoredSecret> {
        let secret = backend
            .secret(tenant, name)?
            .ok_or_else(|| Error::secret_not_found(tenant, name))?;
        state::verify_pointer(&self.state_key, &secret)?;
        live(Some(secret), tenant, name)
    }
}

fn info_of(secret: StoredSecret) -> SecretInfo {
    secret.info
}

/// The write-lock scope of one secret.
pub(super) fn write_scope(tenant: &str, name: &str) -> String {
    format!("{tenant}\u{1f}{name}")
}

/// Metadata of one secret read through `backend`.
fn info_from(backend: &mut dyn Store, tenant: &str, name: &str) -> Result<SecretInfo> {
    live(backend.secret(tenant, name)?, tenant, name).map(info_of)
}

/// The secret if it exists and is not deleted; NOT_FOUND otherwise (a deleted secret is
/// missing to every operation but `undelete`, `destroy` and a listing of deleted secrets).
pub(super) fn live(secret: Option<StoredSecret>, tenant: &str, name: &str) -> Result<StoredSecret> {
    secret
        .filter(|s| s.deleted_at.is_none())
        .ok_or_else(|| Error::secret_not_found(tenant, name))
}
