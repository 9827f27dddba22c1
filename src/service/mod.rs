//! `SecretStorage`: the one service every surface translates onto (docs/ARCHITECTURE.md).
//!
//! Writes: validate → seal under the tenant data key → one backend transaction → invalidate
//! the cache. Reads of values: the hot path is a read-locked cache lookup plus one AES-GCM
//! open; SQLite is consulted only on a miss or when another connection has committed.

#[macro_use]
mod operation;
mod allow_list;
mod audit;
mod bundle;
mod cache;
mod clock;
mod commit;
mod deleted;
mod dynamic;
mod keyring;
mod materialize;
mod migrate;
mod options;
mod read;
mod references;
mod resolve;
mod rotation;
mod secrets;
mod session;
pub(crate) mod state;
mod value;

pub use materialize::MaterializeOptions;
pub use migrate::{migrate, MigrationReport};
pub use options::{StorageOptions, DEFAULT_DELETED_RETENTION};
pub use references::{validate_source_id, MAX_SOURCE_ID_BYTES};
#[cfg(feature = "jni")]
pub(crate) use resolve::Syntax;
pub use resolve::{
    write_private_atomically, write_private_atomically_with, DocumentFormat, ResolveOptions,
};
pub use rotation::{RotationPlan, RotationReport};
pub use session::Session;
pub use value::SecretValue;

use crate::audit::AuditLog;
use crate::crypto::provider::{self, KeyProvider};
use crate::crypto::{master_key_from_env, BlobContext};
use crate::error::{Error, ErrorCode, Result};
use crate::model::SecretType;
use crate::store::change_probe::SeenFingerprint;
#[cfg(feature = "postgres")]
use crate::store::postgres::PostgresBackend;
use crate::store::sqlite::{SqliteBackend, SqliteOptions};
use crate::store::{is_postgres_url, Backend, StoreHeader, UsageUpdate};
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
    /// Held by a usage flush from inside its transaction until it has recorded its own commit
    /// as seen (`read.rs`, `OwnCommit`); a reader that sees the change token move meanwhile
    /// reads through instead of deciding whether to clear the cache.
    own_commit: Mutex<()>,
    cache: ValueCache,
    keyring: Keyring,
    /// When set, unwrapped data keys (and the cache entries holding them) are wiped each time
    /// this interval passes (see [`StorageOptions::key_cache_ttl`]).
    key_expiry: Option<Throttle>,
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
    /// Seals and verifies audit records (whether or not this handle writes a log).
    audit_key: crate::crypto::MacKey,
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
    ///
    /// ```
    /// use tbsecrets::{ErrorCode, MasterKey, SecretStorage, StorageOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("tbsecrets.db");
    /// let key = MasterKey::generate();
    /// let store = SecretStorage::open(&path, StorageOptions::with_master_key(key.clone()))?;
    /// store.close()?;
    ///
    /// // Reopening needs the same key: another one is refused and changes nothing.
    /// let other_key = StorageOptions::with_master_key(MasterKey::generate());
    /// let wrong = SecretStorage::open(&path, other_key);
    /// assert_eq!(wrong.unwrap_err().code(), ErrorCode::WrongMasterKey);
    /// let store = SecretStorage::open(&path, StorageOptions::with_master_key(key))?;
    /// # store.close()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>, mut options: StorageOptions) -> Result<SecretStorage> {
        if options.harden_process {
            crate::hardening::harden_process()?;
        }
        let master = key_provider_of(&options)?;
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

    /// Opens a store over any backend (`open` and `migrate`).
    pub(crate) fn with_backend(
        backend: Box<dyn Backend>,
        master: Arc<dyn KeyProvider>,
        mut options: StorageOptions,
    ) -> Result<SecretStorage> {
        options.max_versions = options.max_versions.max(1);
        let mut conn = backend.connection()?;
        let store = conn.store();
        let new_store = store.is_empty()?;
        let header = match store.header()? {
            Some(header) => {
                provider::verify_key_check(&*master, &header.key_check)?;
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
                    key_check: provider::key_check(&*master, 1)?,
                };
                // Another process may have initialised it meanwhile: verify what won.
                let header = store.initialize(&fresh)?;
                provider::verify_key_check(&*master, &header.key_check)?;
                header
            }
        };
        let keyring = Keyring::new(master, header.kek_id);
        let reserved = keyring.active_key(store, crate::audit::AUDIT_KEY_TENANT)?;
        let state_key = reserved.derive_mac_key(state::STATE_KEY_LABEL);
        let audit_key = reserved.derive_mac_key(crate::audit::AUDIT_KEY_LABEL);
        let audit = if options.audit.enabled
            && (options.audit.path.is_some() || options.audit.sink.is_some())
        {
            Some(AuditLog::open(
                audit_key.clone(),
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
        // The keyring owns the key from here on.
        options.master_key = None;
        options.key_provider = None;
        let key_expiry = options.key_cache_ttl.map(|ttl| {
            let every_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
            Throttle::new(every_ms, clock::coarse_now_millis())
        });
        let storage = SecretStorage {
            seen,
            generation: AtomicU64::new(0),
            own_commit: Mutex::new(()),
            cache: ValueCache::default(),
            keyring,
            key_expiry,
            pending_usage: Mutex::new(Vec::new()),
            usage_flush_timer: Throttle::new(USAGE_FLUSH_INTERVAL_MS, clock::coarse_now_millis()),
            materializer: Materializer::new(options.materialize.clone()),
            closed: AtomicBool::new(false),
            policy: options.policy.clone().unwrap_or_default(),
            audit,
            state_key,
            audit_key,
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
            storage.purge_expired_on_open(store)?;
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
        if let Some(expiry) = &self.key_expiry {
            if expiry.due(clock::coarse_now_millis()) {
                self.forget_keys();
            }
        }
        Ok(())
    }

    /// Wipes every unwrapped data key this handle holds, and the cached ciphertexts that hold
    /// them: the next use of each key asks the key provider again. Done on its own when
    /// [`StorageOptions::key_cache_ttl`] runs out; a host may also call it (e.g. when a
    /// token is removed). The reserved key the audit and state seals derive from is kept.
    pub fn forget_keys(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let usage = self.cache.clear();
        if !usage.is_empty() {
            self.pending_usage.lock().extend(usage);
        }
        self.keyring.forget_unwrapped();
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

/// The master key's provider the options name, else the one `TBS_KEY_PROVIDER` names, else
/// the raw key of the environment.
fn key_provider_of(options: &StorageOptions) -> Result<Arc<dyn KeyProvider>> {
    match (&options.master_key, &options.key_provider) {
        (Some(_), Some(_)) => Err(Error::invalid(
            "both a master key and a key provider were given: pass one",
        )),
        (Some(key), None) => Ok(Arc::new(key.clone())),
        (None, Some(provider)) => Ok(provider.clone()),
        (None, None) => match provider::key_provider_from_env()? {
            Some(provider) => Ok(provider),
            None => raw_key_from_env(),
        },
    }
}

/// The `raw` default: the key from `TBS_MASTER_KEY` / `TBS_MASTER_KEY_FILE`.
fn raw_key_from_env() -> Result<Arc<dyn KeyProvider>> {
    match master_key_from_env()? {
            Some(key) => Ok(Arc::new(key)),
        None => Err(Error::invalid(
            "no master key: pass one in the options, set TBS_MASTER_KEY (base64) or TBS_MASTER_KEY_FILE, or name a key provider in TBS_KEY_PROVIDER",
        )),
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
