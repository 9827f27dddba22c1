//! Options given when a store is opened.

use super::materialize::MaterializeOptions;
use crate::crypto::{KeyProvider, MasterKey};
use crate::model::{Limits, DEFAULT_MAX_VERSIONS};
use std::sync::Arc;
use std::time::Duration;

/// The default [`StorageOptions::deleted_retention`]: 30 days.
pub const DEFAULT_DELETED_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// The master key; when `None`, `TBS_MASTER_KEY` then `TBS_MASTER_KEY_FILE` are used.
    pub master_key: Option<MasterKey>,
    /// The master key's holder when it is not raw bytes: a PKCS#11 token, a key program, the
    /// host's own KMS client ([`KeyProvider`]). Exclusive with `master_key`; when both are
    /// `None`, `TBS_KEY_PROVIDER` names one, else the raw key comes from the environment.
    pub key_provider: Option<Arc<dyn KeyProvider>>,
    /// How long an unwrapped data key stays in (locked, wiped) memory before the provider is
    /// asked again. `None` (the default): for the handle's life. A cache clear happens at the
    /// first operation after the time ran out, or by [`crate::SecretStorage::forget_keys`].
    pub key_cache_ttl: Option<Duration>,
    /// Value size limits.
    pub limits: Limits,
    /// How many versions of each secret are kept (at least 1).
    pub max_versions: u32,
    /// Create the store when it does not exist.
    pub create_if_missing: bool,
    /// How long a writer waits for another process's write lock.
    pub busy_timeout: Duration,
    /// The access policy of sessions ([`crate::service::Session`]); `None`: the default
    /// ThingsBoard roles ([`crate::access::Policy::default`]).
    pub policy: Option<crate::access::Policy>,
    /// Keep current ciphertexts in memory so hot reads skip the database (default true).
    /// Off, every read goes to the backend.
    pub cache_values: bool,
    /// Where materialised TEXT_FILE values go; `None`: a private temporary directory that
    /// is removed when the handle closes.
    pub materialize: Option<MaterializeOptions>,
    /// The audit log (default: on, in `<store>.audit.jsonl` for SQLite).
    pub audit: crate::audit::AuditOptions,
    /// The anchor file: the newest store state this machine has seen, to detect a database
    /// restored from an older copy. `None`: the file `TBS_ANCHOR_FILE` names, else beside a
    /// SQLite store (`<store>.anchor`); a PostgreSQL store has no other default.
    pub anchor_path: Option<std::path::PathBuf>,
    /// Open a store that is older than its anchor file or audit log (a deliberate restore)
    /// instead of failing with ROLLBACK_DETECTED: the store is moved past both, in one audited
    /// change (`ACCEPT_RESTORE`). Default false.
    pub accept_restore: bool,
    /// How long a deleted secret stays recoverable with `undelete` before it is erased
    /// (default 30 days). Expired deleted secrets are erased when a store is opened and by
    /// every delete. Zero: a delete erases at once, as `destroy` does.
    pub deleted_retention: Duration,
    /// Harden the whole process when the store opens (default false): no core dumps
    /// (`RLIMIT_CORE` 0, `PR_SET_DUMPABLE` 0), see [`crate::hardening::harden_process`].
    /// Process-wide and irreversible, hence off for a library; the CLI always hardens. Key
    /// material is in locked, wiped memory whether or not this is set.
    pub harden_process: bool,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            master_key: None,
            key_provider: None,
            key_cache_ttl: None,
            limits: Limits::default(),
            max_versions: DEFAULT_MAX_VERSIONS,
            create_if_missing: true,
            busy_timeout: Duration::from_secs(10),
            materialize: None,
            cache_values: true,
            policy: None,
            audit: crate::audit::AuditOptions::default(),
            anchor_path: None,
            accept_restore: false,
            deleted_retention: DEFAULT_DELETED_RETENTION,
            harden_process: false,
        }
    }
}

impl StorageOptions {
    /// Options with an explicit master key and defaults otherwise.
    pub fn with_master_key(master_key: MasterKey) -> Self {
        StorageOptions {
            master_key: Some(master_key),
            ..StorageOptions::default()
        }
    }

    /// Options with a key provider holding the master key and defaults otherwise.
    pub fn with_key_provider(provider: Arc<dyn KeyProvider>) -> Self {
        StorageOptions {
            key_provider: Some(provider),
            ..StorageOptions::default()
        }
    }
}
