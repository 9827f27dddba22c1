//! `SecretStorage`: the one service every surface translates onto (DESIGN.md §1).
//!
//! Writes: validate → seal under the tenant data key → one backend transaction → invalidate
//! the cache. Reads of values: the hot path is a read-locked cache lookup plus one AES-GCM
//! open; SQLite is consulted only on a miss or when another connection has committed.

mod cache;
mod clock;
mod keyring;
mod materialize;
mod options;
mod resolve;
mod value;

pub use materialize::MaterializeOptions;
pub use options::StorageOptions;
pub use resolve::{
    validate_source_id, write_private_atomically, DocumentFormat, ResolveOptions,
    MAX_SOURCE_ID_BYTES,
};
pub use value::SecretValue;

use crate::crypto::{master_key_from_env, seal, BlobContext, MasterKey};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    now_millis, validate_description, validate_name, validate_tenant, validate_value, ListQuery,
    Page, SecretInfo, SecretType, VersionInfo,
};
use crate::store::change_probe::SeenFingerprint;
use crate::store::sqlite::{SqliteBackend, SqliteOptions};
use crate::store::{Backend, ChangeProbe, StoreHeader, StoredSecret, StoredVersion, UsageUpdate};
use cache::{CachedValue, ValueCache};
use keyring::Keyring;
use materialize::Materializer;
use parking_lot::{Mutex, MutexGuard};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

/// How often a write that lost a race with another process is retried.
const WRITE_RETRIES: usize = 5;
/// Usage counters are written at most this often from the read path (milliseconds).
const USAGE_FLUSH_INTERVAL_MS: i64 = 5_000;

/// An open secret store. `Send + Sync`: share one handle between threads (e.g. in an `Arc`).
pub struct SecretStorage {
    // Declared before `backend` so the -shm mapping is released before the connection.
    probe: Option<ChangeProbe>,
    seen: SeenFingerprint,
    cache: ValueCache,
    keyring: Keyring,
    pending_usage: Mutex<Vec<UsageUpdate>>,
    last_usage_flush: AtomicI64,
    materializer: Materializer,
    closed: AtomicBool,
    options: StorageOptions,
    backend: Mutex<Box<dyn Backend>>,
}

impl std::fmt::Debug for SecretStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStorage")
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .field("limits", &self.options.limits)
            .field("max_versions", &self.options.max_versions)
            .finish_non_exhaustive()
    }
}

impl SecretStorage {
    /// Opens (or creates) the SQLite store at `path`.
    ///
    /// Fails with WRONG_MASTER_KEY when the key does not match the store (nothing is changed),
    /// INTEGRITY when the file is not a store or is corrupt, INVALID_ARGUMENT when no master
    /// key is configured.
    pub fn open(path: impl AsRef<Path>, options: StorageOptions) -> Result<SecretStorage> {
        let path = path.as_ref();
        let master = match &options.master_key {
            Some(key) => key.clone(),
            None => master_key_from_env()?.ok_or_else(|| {
                Error::invalid(
                    "no master key: pass one in the options, or set TBS_MASTER_KEY (base64) or TBS_MASTER_KEY_FILE",
                )
            })?,
        };
        let backend = SqliteBackend::open(
            path,
            &SqliteOptions {
                create_if_missing: options.create_if_missing,
                busy_timeout: options.busy_timeout,
            },
        )?;
        SecretStorage::with_backend(Box::new(backend), master, options)
    }

    /// Opens a store over any backend (used by other backends and tests).
    pub fn with_backend(
        mut backend: Box<dyn Backend>,
        master: MasterKey,
        mut options: StorageOptions,
    ) -> Result<SecretStorage> {
        options.max_versions = options.max_versions.max(1);
        let header = match backend.header()? {
            Some(header) => {
                master.verify_key_check(&header.key_check)?;
                header
            }
            None => {
                let fresh = StoreHeader {
                    kek_id: 1,
                    key_check: master.key_check(1)?,
                };
                // Another process may have initialised it meanwhile: verify what won.
                let header = backend.initialize(&fresh)?;
                master.verify_key_check(&header.key_check)?;
                header
            }
        };
        let probe = backend.change_probe();
        let seen = SeenFingerprint::default();
        if let Some(probe) = &probe {
            seen.record(&probe.fingerprint());
        }
        options.master_key = None; // the keyring owns the key from here on
        Ok(SecretStorage {
            probe,
            seen,
            cache: ValueCache::default(),
            keyring: Keyring::new(master, header.kek_id),
            pending_usage: Mutex::new(Vec::new()),
            last_usage_flush: AtomicI64::new(clock::coarse_now_millis()),
            materializer: Materializer::new(options.materialize.clone()),
            closed: AtomicBool::new(false),
            options,
            backend: Mutex::new(backend),
        })
    }

    /// The value limits in force.
    pub fn options(&self) -> &StorageOptions {
        &self.options
    }

    /// Creates a secret (version 1). ALREADY_EXISTS if the name is taken in the tenant.
    pub fn create(
        &self,
        tenant: &str,
        name: &str,
        secret_type: SecretType,
        value: &[u8],
        description: &str,
    ) -> Result<SecretInfo> {
        self.ensure_open()?;
        validate_tenant(tenant)?;
        validate_name(name)?;
        validate_description(description)?;
        validate_value(secret_type, value, &self.options.limits)?;
        let mut backend = self.backend.lock();
        let key = self.keyring.active_key(backend.as_mut(), tenant)?;
        let now = now_millis();
        let blob = seal(
            key.cipher(),
            key.id(),
            &value_context(tenant, name, secret_type, 1),
            value,
        )?;
        let secret = StoredSecret {
            tenant: tenant.to_owned(),
            name: name.to_owned(),
            secret_type,
            description: description.to_owned(),
            version: 1,
            created_at: now,
            updated_at: now,
            value_updated_at: now,
            last_used_at: None,
            use_count: 0,
        };
        let stored = StoredVersion {
            version: 1,
            dek_id: key.id(),
            blob,
            created_at: now,
        };
        backend.create(&secret, &stored)?;
        self.forget(tenant, name);
        Ok(info_of(secret))
    }

    /// Writes a new version of a secret's value.
    ///
    /// With `expected_version`, the write happens only if the current version equals it
    /// (check-and-set), else CONFLICT. Returns the updated metadata.
    pub fn update_value(
        &self,
        tenant: &str,
        name: &str,
        value: &[u8],
        expected_version: Option<u64>,
    ) -> Result<SecretInfo> {
        self.ensure_open()?;
        validate_tenant(tenant)?;
        validate_name(name)?;
        self.write_version(tenant, name, expected_version, |secret, _backend| {
            validate_value(secret.secret_type, value, &self.options.limits)?;
            Ok(zeroize::Zeroizing::new(value.to_vec()))
        })
    }

    /// Writes a new version equal to the kept version `version`.
    pub fn rollback(&self, tenant: &str, name: &str, version: u64) -> Result<SecretInfo> {
        self.ensure_open()?;
        validate_tenant(tenant)?;
        validate_name(name)?;
        self.write_version(tenant, name, None, |secret, backend| {
            let old = backend.version(tenant, name, version)?.ok_or_else(|| {
                Error::new(
                    ErrorCode::NotFound,
                    format!(
                        "version {version} of secret '{name}' is not kept (current version {})",
                        secret.version
                    ),
                )
            })?;
            let key = self.keyring.key(backend, tenant, old.dek_id)?;
            crate::crypto::open(
                key.cipher(),
                &value_context(tenant, name, secret.secret_type, version),
                &old.blob,
            )
        })
    }

    /// Shared path of update and rollback: produce the plaintext, seal it as version n+1 and
    /// append it with check-and-set, retrying when another process won a race (unless the
    /// caller asked for a specific version).
    fn write_version(
        &self,
        tenant: &str,
        name: &str,
        expected_version: Option<u64>,
        plaintext: impl Fn(&StoredSecret, &mut dyn Backend) -> Result<zeroize::Zeroizing<Vec<u8>>>,
    ) -> Result<SecretInfo> {
        let mut backend = self.backend.lock();
        let mut attempt = 0;
        loop {
            let secret = backend
                .secret(tenant, name)?
                .ok_or_else(|| Error::secret_not_found(tenant, name))?;
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
            let value = plaintext(&secret, backend.as_mut())?;
            let key = self.keyring.active_key(backend.as_mut(), tenant)?;
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
            match backend.append_version(
                tenant,
                name,
                secret.version,
                &stored,
                self.options.max_versions,
            ) {
                Ok(()) => {
                    self.forget(tenant, name);
                    return Ok(info_of(StoredSecret {
                        version,
                        updated_at: now,
                        value_updated_at: now,
                        ..secret
                    }));
                }
                Err(e)
                    if e.code() == ErrorCode::Conflict
                        && expected_version.is_none()
                        && attempt < WRITE_RETRIES =>
                {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Changes a secret's description (no new version).
    pub fn update_description(
        &self,
        tenant: &str,
        name: &str,
        description: &str,
    ) -> Result<SecretInfo> {
        self.ensure_open()?;
        validate_tenant(tenant)?;
        validate_name(name)?;
        validate_description(description)?;
        let mut backend = self.backend.lock();
        backend.set_description(tenant, name, description, now_millis())?;
        self.info_locked(&mut backend, tenant, name)
    }

    /// Deletes a secret with all its versions. Fails with IN_USE, naming the sources, while
    /// any tracked source references it; see [`SecretStorage::delete_with`] to force.
    pub fn delete(&self, tenant: &str, name: &str) -> Result<()> {
        self.delete_with(tenant, name, false)
    }

    /// Deletes a secret; with `force`, even while sources reference it (their references
    /// stay in the index, so `where_used` still shows what will break).
    pub fn delete_with(&self, tenant: &str, name: &str, force: bool) -> Result<()> {
        self.ensure_open()?;
        validate_tenant(tenant)?;
        validate_name(name)?;
        let mut backend = self.backend.lock();
        backend.delete(tenant, name, force)?;
        self.forget(tenant, name);
        Ok(())
    }

    /// Metadata of one secret (never the value).
    pub fn info(&self, tenant: &str, name: &str) -> Result<SecretInfo> {
        self.ensure_open()?;
        validate_tenant(tenant)?;
        validate_name(name)?;
        let mut backend = self.backend.lock();
        self.flush_usage_locked(&mut backend)?;
        self.info_locked(&mut backend, tenant, name)
    }

    fn info_locked(
        &self,
        backend: &mut MutexGuard<'_, Box<dyn Backend>>,
        tenant: &str,
        name: &str,
    ) -> Result<SecretInfo> {
        backend
            .secret(tenant, name)?
            .map(info_of)
            .ok_or_else(|| Error::secret_not_found(tenant, name))
    }

    /// A page of a tenant's secrets in name order, optionally filtered by a name substring.
    pub fn list(&self, tenant: &str, query: &ListQuery) -> Result<Page<SecretInfo>> {
        self.ensure_open()?;
        validate_tenant(tenant)?;
        let mut backend = self.backend.lock();
        self.flush_usage_locked(&mut backend)?;
        let page = backend.list(tenant, query)?;
        Ok(Page {
            items: page.items.into_iter().map(info_of).collect(),
            total: page.total,
            has_more: page.has_more,
        })
    }

    /// Kept versions of a secret, newest first (no values).
    pub fn history(&self, tenant: &str, name: &str) -> Result<Vec<VersionInfo>> {
        self.ensure_open()?;
        validate_tenant(tenant)?;
        validate_name(name)?;
        let mut backend = self.backend.lock();
        let secret = backend
            .secret(tenant, name)?
            .ok_or_else(|| Error::secret_not_found(tenant, name))?;
        Ok(backend
            .versions(tenant, name)?
            .into_iter()
            .map(|(version, created_at)| VersionInfo {
                version,
                created_at,
                current: version == secret.version,
            })
            .collect())
    }

    /// Decrypts the current value of a secret. The returned holder zeroizes on drop.
    ///
    /// The hot path takes no write lock and does not touch the database.
    pub fn get_value(&self, tenant: &str, name: &str) -> Result<SecretValue> {
        let entry = self.current_entry(tenant, name)?;
        self.mark_used(&entry);
        entry.open()
    }

    /// Counts a use of a cache entry and, at most every few seconds, writes the batched
    /// counters (only if the backend is free: the read path never waits for it).
    #[inline]
    fn mark_used(&self, entry: &CachedValue) {
        let now = clock::coarse_now_millis();
        entry.mark_used(now);
        let last = self.last_usage_flush.load(Ordering::Relaxed);
        if now - last >= USAGE_FLUSH_INTERVAL_MS
            && self
                .last_usage_flush
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            if let Some(mut backend) = self.backend.try_lock() {
                // Statistics only: a failure keeps the counts pending for the next flush.
                let _ = self.flush_usage_locked(&mut backend);
            }
        }
    }

    /// The cache entry for a secret, loading it on a miss.
    fn current_entry(&self, tenant: &str, name: &str) -> Result<Arc<CachedValue>> {
        self.ensure_open()?;
        self.sync_external_changes()?;
        if let Some(entry) = self.cache.get(tenant, name) {
            return Ok(entry);
        }
        validate_tenant(tenant)?;
        validate_name(name)?;
        let mut backend = self.backend.lock();
        // Filled under the backend lock, so a concurrent local write cannot be overtaken.
        if let Some(entry) = self.cache.get(tenant, name) {
            return Ok(entry);
        }
        let (secret, stored) = backend
            .current(tenant, name)?
            .ok_or_else(|| Error::secret_not_found(tenant, name))?;
        let key = self.keyring.key(backend.as_mut(), tenant, stored.dek_id)?;
        let header_len = crate::crypto::blob::HEADER_LEN.min(stored.blob.len());
        let aad = value_context(tenant, name, secret.secret_type, secret.version)
            .aad(&stored.blob[..header_len]);
        let entry = Arc::new(CachedValue::new(
            secret.secret_type,
            secret.version,
            aad,
            stored.blob,
            key,
        ));
        if let Some(usage) = self.cache.insert(tenant, name, entry.clone()) {
            self.pending_usage.lock().push(usage);
        }
        Ok(entry)
    }

    /// Drops cache entries when another connection committed. Lock-free when nothing changed.
    #[inline]
    fn sync_external_changes(&self) -> Result<()> {
        let fingerprint = match &self.probe {
            Some(probe) => {
                let now = probe.fingerprint();
                if !self.seen.differs(&now) {
                    return Ok(());
                }
                Some(now)
            }
            None => None,
        };
        let mut backend = self.backend.lock();
        // Read the fingerprint before asking SQLite, so a commit after this point moves it.
        let fingerprint = fingerprint.and(self.probe.as_ref().map(ChangeProbe::fingerprint));
        if backend.changed_elsewhere()? {
            let usage = self.cache.clear();
            self.pending_usage.lock().extend(usage);
        }
        if let Some(fingerprint) = fingerprint {
            self.seen.record(&fingerprint);
        }
        Ok(())
    }

    /// Writes batched usage counters to the store.
    pub fn flush_usage(&self) -> Result<()> {
        self.ensure_open()?;
        let mut backend = self.backend.lock();
        self.flush_usage_locked(&mut backend)
    }

    fn flush_usage_locked(&self, backend: &mut MutexGuard<'_, Box<dyn Backend>>) -> Result<()> {
        let mut updates = std::mem::take(&mut *self.pending_usage.lock());
        updates.extend(self.cache.take_usage());
        if updates.is_empty() {
            return Ok(());
        }
        if let Err(e) = backend.record_usage(&updates) {
            // Keep the counts for the next attempt rather than losing them.
            self.pending_usage.lock().extend(updates);
            return Err(e);
        }
        Ok(())
    }

    /// Flushes usage counters and closes the handle. Later calls fail with CLOSED.
    /// Closing twice is allowed.
    pub fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let materialized = self.materializer.close();
        let mut backend = self.backend.lock();
        self.flush_usage_locked(&mut backend)?;
        materialized
    }

    /// Whether [`SecretStorage::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    #[inline]
    fn ensure_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorCode::Closed, "the store handle is closed"));
        }
        Ok(())
    }

    /// Drops the cache entry of a secret after a local write, keeping its usage counts.
    fn forget(&self, tenant: &str, name: &str) {
        if let Some(usage) = self.cache.remove(tenant, name) {
            self.pending_usage.lock().push(usage);
        }
    }
}

impl Drop for SecretStorage {
    fn drop(&mut self) {
        // Best effort: usage counters are statistics, a failure here loses no secret.
        let _ = self.close();
    }
}

fn value_context<'a>(
    tenant: &'a str,
    name: &'a str,
    secret_type: SecretType,
    version: u64,
) -> BlobContext<'a> {
    BlobContext::Value {
        tenant,
        name,
        secret_type,
        version,
    }
}

fn info_of(secret: StoredSecret) -> SecretInfo {
    SecretInfo {
        tenant: secret.tenant,
        name: secret.name,
        secret_type: secret.secret_type,
        description: secret.description,
        version: secret.version,
        created_at: secret.created_at,
        updated_at: secret.updated_at,
        value_updated_at: secret.value_updated_at,
        last_used_at: secret.last_used_at,
        use_count: secret.use_count,
    }
}
