//! `SecretStorage`: the one service every surface translates onto (DESIGN.md §1).
//!
//! Writes: validate → seal under the tenant data key → one backend transaction → invalidate
//! the cache. Reads of values: the hot path is a read-locked cache lookup plus one AES-GCM
//! open; SQLite is consulted only on a miss or when another connection has committed.

mod cache;
mod clock;
mod commit;
mod keyring;
mod materialize;
mod migrate;
mod options;
mod resolve;
mod rotation;
mod session;
pub(crate) mod state;
mod value;

pub use materialize::MaterializeOptions;
pub use migrate::{migrate, MigrationReport};
pub use options::StorageOptions;
pub use resolve::{
    validate_source_id, write_private_atomically, DocumentFormat, ResolveOptions,
    MAX_SOURCE_ID_BYTES,
};
pub use rotation::RotationReport;
pub use session::Session;
pub use value::SecretValue;

use crate::audit::AuditLog;
use crate::crypto::{master_key_from_env, seal, BlobContext, MasterKey};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    now_millis, validate_description, validate_name, validate_tenant, validate_value, ListQuery,
    Page, SecretInfo, SecretType, VersionInfo,
};
use crate::store::change_probe::SeenFingerprint;
#[cfg(feature = "postgres")]
use crate::store::postgres::PostgresBackend;
use crate::store::sqlite::{SqliteBackend, SqliteOptions};
use crate::store::{
    is_postgres_url, Backend, Store, StoreHeader, StoredSecret, StoredVersion, UsageUpdate,
};
use crate::throttle::Throttle;
use cache::{CachedValue, ValueCache};
use commit::{Change, STATE_SCOPE};
use keyring::Keyring;
use materialize::Materializer;
use parking_lot::Mutex;
use state::AnchorFile;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Usage counters are written at most this often from the read path (milliseconds).
const USAGE_FLUSH_INTERVAL_MS: i64 = 5_000;

/// An open secret store. `Send + Sync`: share one handle between threads (e.g. in an `Arc`).
pub struct SecretStorage {
    /// The backend's change token as of the last cache synchronisation.
    seen: SeenFingerprint,
    /// Bumped after every local write and every cache clear; a cache fill that raced one of
    /// them is not inserted (see `load_entry`).
    generation: AtomicU64,
    cache: ValueCache,
    keyring: Keyring,
    pending_usage: Mutex<Vec<UsageUpdate>>,
    usage_flush_timer: Throttle,
    materializer: Materializer,
    closed: AtomicBool,
    options: StorageOptions,
    policy: crate::access::Policy,
    /// `None` when auditing is off (or has nowhere to go).
    audit: Option<AuditLog>,
    /// Seals the store's state row and current-version pointers.
    state_key: crate::crypto::MacKey,
    /// The anchor file, if any (see `state`).
    anchor: Option<AnchorFile>,
    /// The latest failure to deliver committed audit records or raise the anchor.
    delivery_error: Mutex<Option<Error>>,
    backend: Box<dyn Backend>,
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
    /// Opens (or creates) a store: the SQLite file at `path`, or the PostgreSQL database
    /// when `path` is a `postgres://` / `postgresql://` URL (see `store::postgres`).
    ///
    /// Fails with WRONG_MASTER_KEY when the key does not match the store (nothing is changed),
    /// INTEGRITY when the file is not a store or is corrupt, INVALID_ARGUMENT when no master
    /// key is configured.
    pub fn open(path: impl AsRef<Path>, mut options: StorageOptions) -> Result<SecretStorage> {
        if options.harden_process {
            crate::hardening::harden_process()?;
        }
        let master = master_key_of(&options)?;
        let backend = open_backend(path.as_ref(), &options)?;
        if options.audit.enabled && options.audit.path.is_none() {
            options.audit.path = match std::env::var_os(crate::audit::AUDIT_LOG_ENV) {
                Some(env) if !env.is_empty() => Some(env.into()),
                _ if path.as_ref().to_str().is_some_and(is_postgres_url) => None,
                _ => Some(crate::audit::default_log_path(path.as_ref())),
            };
        }
        if options.anchor_path.is_none() {
            options.anchor_path = match std::env::var_os(state::ANCHOR_FILE_ENV) {
                Some(env) if !env.is_empty() => Some(env.into()),
                _ if path.as_ref().to_str().is_some_and(is_postgres_url) => None,
                _ => Some(state::default_anchor_path(path.as_ref())),
            };
        }
        SecretStorage::with_backend(backend, master, options)
    }

    /// Opens a store over any backend (used by other backends and tests).
    pub fn with_backend(
        backend: Box<dyn Backend>,
        master: MasterKey,
        mut options: StorageOptions,
    ) -> Result<SecretStorage> {
        options.max_versions = options.max_versions.max(1);
        let mut conn = backend.connection()?;
        let store = conn.store();
        let new_store = store.is_empty()?;
        let header = match store.header()? {
            Some(header) => {
                master.verify_key_check(&header.key_check)?;
                header
            }
            // A store holding data keys or secrets lost its key check: never write a new one.
            None if !new_store => {
                return Err(Error::integrity(
                    "the store's key check is missing although it holds keys or secrets: the database was edited",
                ))
            }
            None => {
                let fresh = StoreHeader {
                    kek_id: 1,
                    key_check: master.key_check(1)?,
                };
                // Another process may have initialised it meanwhile: verify what won.
                let header = store.initialize(&fresh)?;
                master.verify_key_check(&header.key_check)?;
                header
            }
        };
        let keyring = Keyring::new(master, header.kek_id);
        let reserved = keyring.active_key(store, crate::audit::AUDIT_KEY_TENANT)?;
        let state_key = reserved.derive_mac_key(state::STATE_KEY_LABEL);
        let audit = if options.audit.enabled
            && (options.audit.path.is_some() || options.audit.sink.is_some())
        {
            Some(AuditLog::open(
                reserved.derive_mac_key(crate::audit::AUDIT_KEY_LABEL),
                options.audit.path.as_deref(),
                options.audit.sink.clone(),
                options.audit.batch_uses,
            )?)
        } else {
            None
        };
        drop(reserved);
        let anchor = options
            .anchor_path
            .as_deref()
            .map(AnchorFile::open)
            .transpose()?;
        drop(conn);
        let seen = SeenFingerprint::default();
        if let Some(token) = backend.change_token() {
            seen.record(&token);
        }
        options.master_key = None; // the keyring owns the key from here on
        let storage = SecretStorage {
            seen,
            generation: AtomicU64::new(0),
            cache: ValueCache::default(),
            keyring,
            pending_usage: Mutex::new(Vec::new()),
            usage_flush_timer: Throttle::new(USAGE_FLUSH_INTERVAL_MS, clock::coarse_now_millis()),
            materializer: Materializer::new(options.materialize.clone()),
            closed: AtomicBool::new(false),
            policy: options.policy.clone().unwrap_or_default(),
            audit,
            state_key,
            anchor,
            delivery_error: Mutex::new(None),
            options,
            backend,
        };
        {
            let mut conn = storage.backend.connection()?;
            let store = conn.store();
            if store.meta(crate::store::STATE_KEY)?.is_none() {
                storage.establish_state(store)?;
            }
            storage.check_rollback(store, storage.options.accept_restore)?;
            // Records a killed process committed but never delivered.
            if let Some(audit) = &storage.audit {
                if let Err(e) = audit.deliver(store, &[]) {
                    storage.keep_delivery_error(e);
                }
            }
        }
        storage.notify_sink();
        Ok(storage)
    }

    /// The value limits in force.
    pub fn options(&self) -> &StorageOptions {
        &self.options
    }

    /// Creates a secret (version 1). ALREADY_EXISTS if the name is taken in the tenant.
    /// Audited as the host; see [`Session::create`] to act as a principal.
    pub fn create(
        &self,
        tenant: &str,
        name: &str,
        secret_type: SecretType,
        value: &[u8],
        description: &str,
    ) -> Result<SecretInfo> {
        self.host()
            .create(tenant, name, secret_type, value, description)
    }

    pub(super) fn create_inner(
        &self,
        change: &mut Change,
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
        let scope = write_scope(tenant, name);
        let secret = self.commit(&scope, change, |backend, change| {
            let key = self.keyring.active_key(backend, tenant)?;
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
                seal_seq: 0,
                seal: Vec::new(),
            };
            let stored = StoredVersion {
                version: 1,
                dek_id: key.id(),
                blob,
                created_at: now,
            };
            backend.create(&secret, &stored)?;
            change.moved_pointer(tenant, name, secret_type, 1);
            change.set_version(1);
            Ok(secret)
        })?;
        self.forget(tenant, name);
        Ok(info_of(secret))
    }

    /// Writes a new version of a secret's value.
    ///
    /// With `expected_version`, the write happens only if the current version equals it
    /// (check-and-set), else CONFLICT. Returns the updated metadata. Audited as the host.
    pub fn update_value(
        &self,
        tenant: &str,
        name: &str,
        value: &[u8],
        expected_version: Option<u64>,
    ) -> Result<SecretInfo> {
        self.host()
            .update_value(tenant, name, value, expected_version)
    }

    pub(super) fn update_value_inner(
        &self,
        change: &mut Change,
        tenant: &str,
        name: &str,
        value: &[u8],
        expected_version: Option<u64>,
    ) -> Result<SecretInfo> {
        self.ensure_open()?;
        validate_tenant(tenant)?;
        validate_name(name)?;
        self.write_version(
            change,
            tenant,
            name,
            expected_version,
            |secret, _backend| {
                validate_value(secret.secret_type, value, &self.options.limits)?;
                Ok(zeroize::Zeroizing::new(value.to_vec()))
            },
        )
    }

    /// Writes a new version equal to the kept version `version`. Audited as the host.
    pub fn rollback(&self, tenant: &str, name: &str, version: u64) -> Result<SecretInfo> {
        self.host().rollback(tenant, name, version)
    }

    pub(super) fn rollback_inner(
        &self,
        change: &mut Change,
        tenant: &str,
        name: &str,
        version: u64,
    ) -> Result<SecretInfo> {
        self.ensure_open()?;
        validate_tenant(tenant)?;
        validate_name(name)?;
        self.write_version(change, tenant, name, None, |secret, backend| {
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
        plaintext: impl Fn(&StoredSecret, &mut dyn Store) -> Result<zeroize::Zeroizing<Vec<u8>>>,
    ) -> Result<SecretInfo> {
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
            backend.append_version(
                tenant,
                name,
                secret.version,
                &stored,
                self.options.max_versions,
            )?;
            change.moved_pointer(tenant, name, secret.secret_type, version);
            change.set_version(version);
            Ok(info_of(StoredSecret {
                version,
                updated_at: now,
                value_updated_at: now,
                ..secret
            }))
        })?;
        self.forget(tenant, name);
        Ok(written)
    }

    /// A secret's metadata, its current-version pointer authenticated (INTEGRITY when it was
    /// moved in the database); NOT_FOUND when there is no such secret.
    fn authentic_secret(
        &self,
        backend: &mut dyn Store,
        tenant: &str,
        name: &str,
    ) -> Result<StoredSecret> {
        let secret = backend
            .secret(tenant, name)?
            .ok_or_else(|| Error::secret_not_found(tenant, name))?;
        state::verify_pointer(&self.state_key, &secret)?;
        Ok(secret)
    }

    /// Changes a secret's description (no new version). Audited as the host.
    pub fn update_description(
        &self,
        tenant: &str,
        name: &str,
        description: &str,
    ) -> Result<SecretInfo> {
        self.host().update_description(tenant, name, description)
    }

    pub(super) fn update_description_inner(
        &self,
        change: &mut Change,
        tenant: &str,
        name: &str,
        description: &str,
    ) -> Result<SecretInfo> {
        self.ensure_open()?;
        validate_tenant(tenant)?;
        validate_name(name)?;
        validate_description(description)?;
        self.commit(&write_scope(tenant, name), change, |backend, _| {
            backend.set_description(tenant, name, description, now_millis())?;
            info_from(backend, tenant, name)
        })
    }

    /// Deletes a secret with all its versions. Fails with IN_USE, naming the sources, while
    /// any tracked source references it; see [`SecretStorage::delete_with`] to force.
    pub fn delete(&self, tenant: &str, name: &str) -> Result<()> {
        self.delete_with(tenant, name, false)
    }

    /// Deletes a secret; with `force`, even while sources reference it (their references
    /// stay in the index, so `where_used` still shows what will break).
    /// Audited as the host.
    pub fn delete_with(&self, tenant: &str, name: &str, force: bool) -> Result<()> {
        self.host().delete_with(tenant, name, force)
    }

    pub(super) fn delete_inner(
        &self,
        change: &mut Change,
        tenant: &str,
        name: &str,
        force: bool,
    ) -> Result<()> {
        self.ensure_open()?;
        validate_tenant(tenant)?;
        validate_name(name)?;
        self.commit(&write_scope(tenant, name), change, |backend, _| {
            backend.delete(tenant, name, force)
        })?;
        self.discard_usage(tenant, name);
        Ok(())
    }

    /// Metadata of one secret (never the value).
    pub fn info(&self, tenant: &str, name: &str) -> Result<SecretInfo> {
        self.ensure_open()?;
        validate_tenant(tenant)?;
        validate_name(name)?;
        let mut conn = self.backend.connection()?;
        let backend = conn.store();
        self.flush_usage_to(backend)?;
        let info = info_from(backend, tenant, name);
        drop(conn);
        self.notify_sink();
        info
    }

    /// A page of a tenant's secrets in name order, optionally filtered by a name substring.
    pub fn list(&self, tenant: &str, query: &ListQuery) -> Result<Page<SecretInfo>> {
        self.ensure_open()?;
        validate_tenant(tenant)?;
        let mut conn = self.backend.connection()?;
        let backend = conn.store();
        self.flush_usage_to(backend)?;
        let page = backend.list(tenant, query);
        drop(conn);
        self.notify_sink();
        let page = page?;
        Ok(Page {
            items: page.items.into_iter().map(info_of).collect(),
            total: page.total,
            has_more: page.has_more,
        })
    }

    /// Secrets of a tenant not read or resolved for at least `age` (never used counts), in
    /// name order. Usage counters are flushed first.
    pub fn unused(&self, tenant: &str, age: std::time::Duration) -> Result<Vec<SecretInfo>> {
        let cutoff = now_millis().saturating_sub(age.as_millis() as i64);
        Ok(self
            .list(tenant, &ListQuery::default())?
            .items
            .into_iter()
            .filter(|s| s.last_used_at.is_none_or(|used| used <= cutoff))
            .collect())
    }

    /// Secrets of a tenant whose value was last written at least `age` ago (candidates for
    /// rotation), in name order.
    pub fn stale(&self, tenant: &str, age: std::time::Duration) -> Result<Vec<SecretInfo>> {
        let cutoff = now_millis().saturating_sub(age.as_millis() as i64);
        Ok(self
            .list(tenant, &ListQuery::default())?
            .items
            .into_iter()
            .filter(|s| s.value_updated_at <= cutoff)
            .collect())
    }

    /// Kept versions of a secret, newest first (no values).
    pub fn history(&self, tenant: &str, name: &str) -> Result<Vec<VersionInfo>> {
        self.ensure_open()?;
        validate_tenant(tenant)?;
        validate_name(name)?;
        let mut conn = self.backend.connection()?;
        let backend = conn.store();
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
    /// The hot path takes no write lock and does not touch the database. The use is audited
    /// (batched) as the host; see [`Session::get_value`] to act as a principal.
    #[inline]
    pub fn get_value(&self, tenant: &str, name: &str) -> Result<SecretValue> {
        self.host().get_value(tenant, name)
    }

    #[inline]
    fn get_value_inner(&self, tenant: &str, name: &str, now: i64) -> Result<SecretValue> {
        self.ensure_open()?;
        // Opened under the cache's read lock: no reference count traffic on the hot path.
        let cacheable = self.sync_external_changes();
        let cached = if cacheable {
            self.cache.with(tenant, name, |entry| {
                entry.mark_used(now);
                entry.open()
            })
        } else {
            None
        };
        let value = match cached {
            Some(value) => value?,
            None => {
                let entry = self.load_entry(tenant, name, cacheable)?;
                entry.mark_used(now);
                entry.open()?
            }
        };
        self.maybe_flush_usage(now);
        Ok(value)
    }

    /// Counts a use of a cache entry (see [`SecretStorage::maybe_flush_usage`]).
    fn mark_used(&self, entry: &CachedValue) {
        let now = clock::coarse_now_millis();
        entry.mark_used(now);
        self.maybe_flush_usage(now);
    }

    /// At most every few seconds, writes the batched usage counters — only if the backend is
    /// free: the read path never waits for it.
    #[inline]
    fn maybe_flush_usage(&self, now: i64) {
        if self.usage_flush_timer.due(now) {
            if let Some(mut conn) = self.backend.try_connection() {
                // Statistics only: a failure keeps the counts pending for the next flush.
                let _ = self.flush_usage_to(conn.store());
                drop(conn);
                self.notify_sink();
            }
        }
    }

    /// The cache entry for a secret, loading it on a miss — or reading through, uncached,
    /// while the backend cannot report changes.
    fn current_entry(&self, tenant: &str, name: &str) -> Result<Arc<CachedValue>> {
        self.ensure_open()?;
        if !self.sync_external_changes() {
            return self.load_entry(tenant, name, false);
        }
        match self.cache.get(tenant, name) {
            Some(entry) => Ok(entry),
            None => self.load_entry(tenant, name, true),
        }
    }

    /// The slow path: reads the current version from the backend, into the cache if
    /// `cache`. An uncached read counts its use at once (nothing else would).
    fn load_entry(&self, tenant: &str, name: &str, cache: bool) -> Result<Arc<CachedValue>> {
        validate_tenant(tenant)?;
        validate_name(name)?;
        // A local write or a cache clear after this point makes the read below possibly stale.
        let generation = self.generation.load(Ordering::Acquire);
        let mut conn = self.backend.connection()?;
        let backend = conn.store();
        let (secret, stored) = backend
            .current(tenant, name)?
            .ok_or_else(|| Error::secret_not_found(tenant, name))?;
        state::verify_pointer(&self.state_key, &secret)?;
        let key = self.keyring.key(backend, tenant, stored.dek_id)?;
        drop(conn);
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
        if cache {
            let current = || self.generation.load(Ordering::Acquire) == generation;
            if let Some(usage) = self.cache.insert_if(tenant, name, entry.clone(), current) {
                self.pending_usage.lock().push(usage);
            }
        } else {
            self.pending_usage.lock().push(UsageUpdate {
                tenant: tenant.to_owned(),
                name: name.to_owned(),
                last_used_at: clock::coarse_now_millis(),
                uses: 1,
            });
        }
        Ok(entry)
    }

    /// Drops every cache entry when the backend's change token moved (anyone committed).
    /// Lock-free when nothing changed. Returns false when the backend cannot report changes
    /// right now: the caller must read through.
    #[inline]
    fn sync_external_changes(&self) -> bool {
        if !self.options.cache_values {
            return false;
        }
        let Some(token) = self.backend.change_token() else {
            return false;
        };
        if self.seen.differs(&token) {
            self.generation.fetch_add(1, Ordering::AcqRel);
            let usage = self.cache.clear();
            if !usage.is_empty() {
                self.pending_usage.lock().extend(usage);
            }
            self.seen.record(&token);
        }
        true
    }

    /// Reads and decrypts a secret's current value straight from the backend, bypassing the
    /// cache and usage counting (for verification, not for use).
    fn read_uncounted(&self, tenant: &str, name: &str) -> Result<SecretValue> {
        let mut conn = self.backend.connection()?;
        let backend = conn.store();
        let (secret, stored) = backend
            .current(tenant, name)?
            .ok_or_else(|| Error::secret_not_found(tenant, name))?;
        state::verify_pointer(&self.state_key, &secret)?;
        let key = self.keyring.key(backend, tenant, stored.dek_id)?;
        let bytes = crate::crypto::open(
            key.cipher(),
            &value_context(tenant, name, secret.secret_type, secret.version),
            &stored.blob,
        )?;
        Ok(SecretValue::new(secret.secret_type, secret.version, bytes))
    }

    /// Writes batched usage counters to the store and batched use records to the audit log.
    pub fn flush_usage(&self) -> Result<()> {
        self.ensure_open()?;
        let flushed = self.flush_usage_to(self.backend.connection()?.store());
        self.notify_sink();
        flushed
    }

    /// Counts a use of a value in the audit log (batched).
    #[inline]
    fn note_use(
        &self,
        actor: &crate::access::Actor,
        action: crate::audit::AuditAction,
        tenant: &str,
        name: &str,
        outcome: ErrorCode,
    ) {
        let now = clock::coarse_now_millis();
        self.note_use_at(actor, action, tenant, name, outcome, now);
    }

    /// [`SecretStorage::note_use`] at a time the caller already read.
    #[inline]
    fn note_use_at(
        &self,
        actor: &crate::access::Actor,
        action: crate::audit::AuditAction,
        tenant: &str,
        name: &str,
        outcome: ErrorCode,
        now: i64,
    ) {
        if outcome == ErrorCode::Closed {
            return;
        }
        if let Some(audit) = &self.audit {
            if audit.note_use(actor, action, tenant, name, outcome, now) {
                // Due: written with the usage counters, only if the backend is free.
                if let Some(mut conn) = self.backend.try_connection() {
                    let _ = self.flush_usage_to(conn.store());
                    drop(conn);
                    self.notify_sink();
                }
            }
        }
    }

    /// Commits audit records that go with no change (denials, failed calls): sealed into
    /// the chain in a transaction of their own, then delivered.
    fn audit_record(&self, entry: crate::audit::AuditEntry) -> Result<()> {
        if self.audit.is_none() {
            return Ok(());
        }
        self.commit(STATE_SCOPE, &mut Change::new(Some(entry)), |_, _| Ok(()))
    }

    /// The latest failure to deliver committed audit records to the log file or sink (they
    /// wait in the store's outbox and go out with the next delivery) or to raise the anchor
    /// file, if any since the last call. The changes themselves were committed.
    pub fn audit_delivery_error(&self) -> Option<Error> {
        self.delivery_error.lock().take()
    }

    /// The audit log file this handle writes, if any.
    pub fn audit_log_path(&self) -> Option<std::path::PathBuf> {
        self.audit.as_ref().and_then(AuditLog::path)
    }

    /// Verifies an audit log (`path`, else this handle's) with this store's audit key:
    /// every line's MAC, sequence and link to the line before. The result names the first
    /// bad line, if any ([`crate::audit::AuditVerification::into_result`] turns that into an
    /// INTEGRITY error). Batched uses are written first; the verification is audited (after
    /// it ran) as the host's `VERIFY_AUDIT_LOG`.
    pub fn verify_audit_log(&self, path: Option<&Path>) -> Result<crate::audit::AuditVerification> {
        self.verify_audit_log_with_progress(path, &mut |_, _| {})
    }

    /// [`SecretStorage::verify_audit_log`], calling `progress(bytes_read, total_bytes)`.
    pub fn verify_audit_log_with_progress(
        &self,
        path: Option<&Path>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<crate::audit::AuditVerification> {
        self.host().verify_audit_log_with_progress(path, progress)
    }

    pub(super) fn verify_audit_log_inner(
        &self,
        path: Option<&Path>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<crate::audit::AuditVerification> {
        self.ensure_open()?;
        let own = self.audit_log_path();
        let path = path.or(own.as_deref()).ok_or_else(|| {
            Error::invalid("this handle writes no audit log file: name the log to verify")
        })?;
        let mut conn = self.backend.connection()?;
        let store = conn.store();
        // Everything committed so far goes out first, so the check covers it.
        self.flush_usage_to(store)?;
        let key = match &self.audit {
            Some(audit) => {
                audit.deliver(store, &[])?;
                audit.key().clone()
            }
            None => audit_key(&self.keyring, store)?,
        };
        let sealed = self.current_state(store)?.audit;
        // The store's side: every current-version pointer must carry its seal.
        let unsealed = store
            .all_secrets()?
            .iter()
            .find_map(|secret| state::verify_pointer(&self.state_key, secret).err());
        drop(conn);
        self.notify_sink();
        let mut report = crate::audit::verify_file(path, &key, &sealed, progress)?;
        if let (None, Some(e)) = (&report.problem, unsealed) {
            report.problem = Some(crate::audit::AuditProblem {
                line: 0,
                reason: e.message().to_owned(),
            });
        }
        Ok(report)
    }

    /// Writes usage counters and batched use records, in one transaction.
    fn flush_usage_to(&self, backend: &mut dyn Store) -> Result<()> {
        let mut updates = std::mem::take(&mut *self.pending_usage.lock());
        updates.extend(self.cache.take_usage());
        let uses = self
            .audit
            .as_ref()
            .map(AuditLog::take_uses)
            .unwrap_or_default();
        if updates.is_empty() && uses.is_empty() {
            return Ok(());
        }
        let written = if uses.is_empty() {
            backend.record_usage(&updates)
        } else {
            let mut change = Change::with_records(uses);
            let written = self.commit_on(backend, STATE_SCOPE, &mut change, |tx, _| {
                tx.record_usage(&updates)
            });
            if written.is_err() {
                if let Some(audit) = &self.audit {
                    audit.restore_uses(change.into_records());
                }
            }
            written
        };
        if let Err(e) = written {
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
        let mut conn = self.backend.connection()?;
        let store = conn.store();
        self.flush_usage_to(store)?;
        if let Some(audit) = &self.audit {
            audit.deliver(store, &[])?;
            audit.prune(store)?;
        }
        drop(conn);
        self.notify_sink();
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
        // Bumped before the removal: a fill that read the old row cannot re-insert it.
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(usage) = self.cache.remove(tenant, name) {
            self.pending_usage.lock().push(usage);
        }
    }

    /// Drops the cache entry and the unflushed usage counts of a secret being deleted: they
    /// die with it, rather than being added to a secret created later under the same name.
    fn discard_usage(&self, tenant: &str, name: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let _ = self.cache.remove(tenant, name);
        self.pending_usage
            .lock()
            .retain(|u| u.tenant != tenant || u.name != name);
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

/// The write-lock scope of one secret.
fn write_scope(tenant: &str, name: &str) -> String {
    format!("{tenant}\u{1f}{name}")
}

/// The store's audit MAC key, derived from its reserved data key (created on first use).
fn audit_key(keyring: &Keyring, store: &mut dyn Store) -> Result<crate::crypto::MacKey> {
    let key = keyring.active_key(store, crate::audit::AUDIT_KEY_TENANT)?;
    Ok(key.derive_mac_key(crate::audit::AUDIT_KEY_LABEL))
}

/// The master key the options name, else the environment's.
fn master_key_of(options: &StorageOptions) -> Result<MasterKey> {
    match &options.master_key {
        Some(key) => Ok(key.clone()),
        None => master_key_from_env()?.ok_or_else(|| {
            Error::invalid(
                "no master key: pass one in the options, or set TBS_MASTER_KEY (base64) or TBS_MASTER_KEY_FILE",
            )
        }),
    }
}

/// The backend a location names: a `postgres://` URL or a SQLite file path.
fn open_backend(location: &Path, options: &StorageOptions) -> Result<Box<dyn Backend>> {
    Ok(match location.to_str() {
        #[cfg(feature = "postgres")]
        Some(url) if is_postgres_url(url) => {
            Box::new(PostgresBackend::open(url, options.busy_timeout)?)
        }
        #[cfg(not(feature = "postgres"))]
        Some(url) if is_postgres_url(url) => {
            return Err(Error::invalid(
                "this build of tbsecrets has no PostgreSQL support: rebuild with the Cargo feature `postgres`",
            ))
        }
        _ => Box::new(SqliteBackend::open(
            location,
            &SqliteOptions {
                create_if_missing: options.create_if_missing,
                busy_timeout: options.busy_timeout,
            },
        )?),
    })
}

/// Metadata of one secret read through `backend`.
fn info_from(backend: &mut dyn Store, tenant: &str, name: &str) -> Result<SecretInfo> {
    backend
        .secret(tenant, name)?
        .map(info_of)
        .ok_or_else(|| Error::secret_not_found(tenant, name))
}
