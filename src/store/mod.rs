//! Storage backends (docs/FORMATS.md, "Database schema"). A backend stores only ciphertext,
//! wrapped keys and metadata; every mutation is one transaction. The service layer above does
//! all crypto.

pub mod change_probe;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sqlite;

use crate::error::{Error, ErrorCode, Result};
use crate::model::{ListQuery, Page, SecretInfo, SecretType};

pub use change_probe::{ChangeProbe, Fingerprint};

/// Whether a store location names a PostgreSQL database (`postgres://` or `postgresql://`).
/// Answered in every build, also one without the `postgres` feature, so such a build can
/// refuse the URL clearly instead of taking it for a file name.
pub fn is_postgres_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// The metadata key of the sealed store state (see `service::state`).
pub(crate) const STATE_KEY: &str = "state";

/// Metadata row of a secret: the metadata users see and the seal of its current-version
/// pointer. Reads of the metadata's fields go through to [`SecretInfo`] (`Deref`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    /// The metadata (never the value).
    pub info: SecretInfo,
    /// The store write counter of the change that last moved the current-version pointer
    /// (0: never sealed, a store from before authenticated state).
    pub seal_seq: u64,
    /// The pointer's MAC over (tenant, name, type, version, `seal_seq`) under the store's state
    /// key (empty: never sealed).
    pub seal: Vec<u8>,
}

impl StoredSecret {
    /// The metadata row of a secret being created at `now`: version 1, never used, not yet
    /// sealed (the change's commit seals its pointer).
    pub fn first_version(
        tenant: &str,
        name: &str,
        secret_type: SecretType,
        description: &str,
        now: i64,
    ) -> StoredSecret {
        StoredSecret {
            info: SecretInfo {
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
                deleted_at: None,
            },
            seal_seq: 0,
            seal: Vec::new(),
        }
    }
}

impl std::ops::Deref for StoredSecret {
    type Target = SecretInfo;

    fn deref(&self) -> &SecretInfo {
        &self.info
    }
}

/// A version to append to a secret (see [`SecretRows::append_version`]).
#[derive(Debug, Clone, Copy)]
pub struct NextVersion<'a> {
    /// Tenant id.
    pub tenant: &'a str,
    /// Secret name.
    pub name: &'a str,
    /// The version the secret must still be at.
    pub expected_current: u64,
    /// The new version.
    pub value: &'a StoredVersion,
    /// How many versions to keep, the new one included.
    pub max_versions: u32,
}

/// One stored version of a value: ciphertext only.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredVersion {
    /// Version number.
    pub version: u64,
    /// Id of the tenant data key that sealed it.
    pub dek_id: u32,
    /// The sealed blob.
    pub blob: Vec<u8>,
    /// When it was written (ms since epoch).
    pub created_at: i64,
}

/// One version re-encrypted by a tenant-key rotation: a compare-and-set of its ciphertext.
pub struct Reseal {
    /// The secret's name.
    pub name: String,
    /// The version as read (version number, data key id and ciphertext expected in the store).
    pub old: StoredVersion,
    /// The data key that sealed `blob`.
    pub dek_id: u32,
    /// The new ciphertext.
    pub blob: Vec<u8>,
}

impl std::fmt::Debug for StoredVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredVersion")
            .field("version", &self.version)
            .field("dek_id", &self.dek_id)
            .field("blob_len", &self.blob.len())
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A tenant data key wrapped by the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// Data key id within the tenant.
    pub dek_id: u32,
    /// Master key id that wrapped it.
    pub kek_id: u32,
    /// The wrapped key blob.
    pub blob: Vec<u8>,
    /// When it was created (ms since epoch).
    pub created_at: i64,
}

/// A batch of usage counters to add to stored secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageUpdate {
    /// Tenant id.
    pub tenant: String,
    /// Secret name.
    pub name: String,
    /// Latest use time (ms since epoch).
    pub last_used_at: i64,
    /// Uses to add.
    pub uses: u64,
}

/// One entry of the exact reference index: a source (rule node, integration, file) uses a
/// secret, optionally with an expected type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredReference {
    /// The referencing source's id.
    pub source_id: String,
    /// The referenced secret's name.
    pub name: String,
    /// The type the placeholder asked for, if any.
    #[serde(rename = "type")]
    pub secret_type: Option<SecretType>,
}

/// Everything a store holds, exactly as stored: ciphertexts, wrapped keys and metadata.
/// Moving it to another backend needs no key; opening the copy needs the same master key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreDump {
    /// The store header (master key id and key check value).
    pub header: Option<StoreHeader>,
    /// The sealed state row (write counter and audit chain head), as stored.
    pub state: Option<Vec<u8>>,
    /// Every wrapped tenant data key, with its tenant.
    pub tenant_keys: Vec<(String, WrappedKey)>,
    /// Every secret's metadata.
    pub secrets: Vec<StoredSecret>,
    /// Every kept version, with its tenant and secret name.
    pub versions: Vec<(String, String, StoredVersion)>,
    /// The reference index, with tenants.
    pub references: Vec<(String, StoredReference)>,
}

/// Store-wide metadata recorded at initialisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreHeader {
    /// Id of the current master key.
    pub kek_id: u32,
    /// Key check value sealed by the current master key.
    pub key_check: Vec<u8>,
}

/// A storage backend: hands out connections and tells when others may have committed.
///
/// Shared by every thread of a handle; a backend decides how many connections it keeps
/// (SQLite: a writer and a reader, each behind a mutex; PostgreSQL: a pool).
pub trait Backend: Send + Sync {
    /// A connection for a few operations; waits for one if all are busy.
    fn connection(&self) -> Result<Box<dyn StoreGuard + '_>>;
    /// A connection if one is free right now (for best-effort background work).
    fn try_connection(&self) -> Option<Box<dyn StoreGuard + '_>>;
    /// A connection for one deferred change ([`Store::with_write_lock_deferred`]), which may
    /// continue a transaction that the change before it left open for it (SQLite's batches).
    /// Default: `connection`.
    fn change_connection(&self) -> Result<Box<dyn StoreGuard + '_>> {
        self.connection()
    }
    /// Runs `change` as one deferred change ([`Store::with_write_lock_deferred`] under
    /// `scope`) on a connection of the backend. SQLite may run it on another thread while
    /// this one waits (`store/sqlite/combine.rs`), hence `Send` — unless `anywhere` (asked
    /// once, as the change queues) says it must run on this one (it may call a key provider
    /// outside the process). Default: on a [`Backend::change_connection`], kept when the
    /// commit is durable already.
    fn run_change(
        &self,
        scope: &str,
        change: &mut ChangeFn<'_>,
        anywhere: &dyn Fn() -> bool,
    ) -> Result<ChangeRun<'_>> {
        let _ = anywhere;
        let mut conn = self.change_connection()?;
        match conn.store().with_write_lock_deferred(scope, change)? {
            Some(ticket) => Ok(ChangeRun::Deferred(ticket)),
            None => Ok(ChangeRun::Durable(conn)),
        }
    }
    /// A connection for a read of committed data on the get path, which never waits for a
    /// write transaction of this handle where the backend can avoid it (SQLite: a second,
    /// read-only connection reading the WAL while the writer writes). Default: `connection`.
    fn read_connection(&self) -> Result<Box<dyn StoreGuard + '_>> {
        self.connection()
    }
    /// A cheap token that changes whenever anyone may have committed. `None` means the
    /// backend cannot tell right now (e.g. its notification link is down): read through.
    fn change_token(&self) -> Option<Fingerprint>;
    /// Returns once every commit up to `ticket` (from [`Store::with_write_lock_deferred`]) is
    /// durable, sharing one sync with the writers that wait at the same time (group commit).
    /// Call it with no connection held. A backend whose tickets order durability (SQLite's
    /// batches) calls `hooks` on the way; others need not.
    fn sync_commits(&self, ticket: u64, hooks: &dyn SyncHooks) -> Result<()> {
        let _ = (ticket, hooks);
        Ok(())
    }
}

/// The work of one deferred change ([`Backend::run_change`]).
pub type ChangeFn<'a> = dyn FnMut(&mut dyn Store) -> Result<()> + Send + 'a;

/// How a change that [`Backend::run_change`] ran committed.
pub enum ChangeRun<'a> {
    /// Visible, and durable once [`Backend::sync_commits`] returns for this ticket.
    Deferred(u64),
    /// Durable already, on this connection, still held for what follows the commit.
    Durable(Box<dyn StoreGuard + 'a>),
}

/// What a change waiting in [`Backend::sync_commits`] does at the two points only the backend
/// sees, so that one change can finish the work of the others its sync covered (the audit
/// delivers the records of all of them in one append). `()` does nothing.
pub trait SyncHooks {
    /// The commit of the change's `ticket` succeeded; called before it waits for a sync.
    fn committed(&self, ticket: u64) {
        let _ = ticket;
    }
    /// A sync this change ran made every successful commit up to ticket `through` durable;
    /// called before the changes that sync covered are woken.
    fn durable(&self, through: u64) {
        let _ = through;
    }
}

impl SyncHooks for () {}

/// A borrowed connection.
pub trait StoreGuard {
    /// The operations on this connection.
    fn store(&mut self) -> &mut dyn Store;
}

/// Secrets and their versions, on one connection (each backend's `secrets.rs`).
pub trait SecretRows {
    /// Metadata of one secret.
    fn secret(&mut self, tenant: &str, name: &str) -> Result<Option<StoredSecret>>;
    /// Metadata and current value of one secret, read together.
    fn current(
        &mut self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<(StoredSecret, StoredVersion)>>;
    /// One kept version of a secret.
    fn version(&mut self, tenant: &str, name: &str, version: u64) -> Result<Option<StoredVersion>>;
    /// Kept versions (number, creation time), newest first.
    fn versions(&mut self, tenant: &str, name: &str) -> Result<Vec<(u64, i64)>>;
    /// Creates a secret with its first version; ALREADY_EXISTS if the name is taken.
    fn create(&mut self, secret: &StoredSecret, value: &StoredVersion) -> Result<()>;
    /// Appends `value` if the current version is still `expected_current` (else CONFLICT),
    /// then prunes versions beyond `max_versions`.
    fn append_version(&mut self, next: &NextVersion<'_>) -> Result<()>;
    /// Changes the description; NOT_FOUND if the secret does not exist.
    fn set_description(&mut self, tenant: &str, name: &str, text: &str, now: i64) -> Result<()>;
    /// Erases a secret, live or deleted, and all its versions: their ciphertexts are
    /// overwritten with zeros before the rows are deleted. NOT_FOUND if there is no such row.
    /// (Whether tracked sources hold the secret is the service's check, made before in the same
    /// transaction: `service/dynamic.rs`.)
    fn delete(&mut self, tenant: &str, name: &str) -> Result<()>;
    /// Marks a live secret deleted at `at` (ms since the epoch), keeping its versions;
    /// NOT_FOUND if there is no live secret of that name.
    fn mark_deleted(&mut self, tenant: &str, name: &str, at: i64) -> Result<()>;
    /// Makes a deleted secret live again; NOT_FOUND if there is no deleted secret of that name.
    fn undelete(&mut self, tenant: &str, name: &str) -> Result<()>;
    /// The (tenant, name) of every secret deleted at or before `cutoff`, in order.
    fn deleted_before(&mut self, cutoff: i64) -> Result<Vec<(String, String)>>;
    /// A page of secrets of a tenant in name order: the live ones, or with
    /// [`ListQuery::deleted`] the deleted ones.
    fn list(&mut self, tenant: &str, query: &ListQuery) -> Result<Page<StoredSecret>>;
    /// Adds usage counters (batched by the caller), in one transaction (or in the transaction
    /// [`Store::with_write_lock`] holds).
    fn record_usage(&mut self, updates: &[UsageUpdate]) -> Result<()>;
    /// Sets the seal of a secret's current-version pointer (see [`StoredSecret::seal`]).
    fn seal_pointer(&mut self, tenant: &str, name: &str, seal_seq: u64, seal: &[u8]) -> Result<()>;
    /// Every secret's metadata, in (tenant, name) order.
    fn all_secrets(&mut self) -> Result<Vec<StoredSecret>>;
}

/// Wrapped tenant data keys and the re-encryption of versions (each backend's `keys.rs`).
pub trait KeyRows {
    /// The newest data key of a tenant.
    fn active_tenant_key(&mut self, tenant: &str) -> Result<Option<WrappedKey>>;
    /// A specific data key of a tenant.
    fn tenant_key(&mut self, tenant: &str, dek_id: u32) -> Result<Option<WrappedKey>>;
    /// Inserts a data key; returns false when that id already exists (another writer won).
    fn insert_tenant_key(&mut self, tenant: &str, key: &WrappedKey) -> Result<bool>;
    /// Every tenant data key, in (tenant, id) order (for master-key rotation).
    fn all_tenant_keys(&mut self) -> Result<Vec<(String, WrappedKey)>>;
    /// Replaces the wrapped form of each listed data key and the store header (master-key
    /// rotation; call inside [`Store::with_write_lock`]). Blocks concurrent key inserts.
    fn rewrap_tenant_keys(
        &mut self,
        keys: &[(String, WrappedKey)],
        header: &StoreHeader,
    ) -> Result<()>;
    /// Up to `limit` kept versions of a tenant's secrets that `except_dek` did not seal,
    /// with the secret's name and type, in (name, version) order after `after` (a page of a
    /// tenant-key rotation; `None`: from the start).
    fn tenant_versions_page(
        &mut self,
        tenant: &str,
        except_dek: u32,
        after: Option<(&str, u64)>,
        limit: usize,
    ) -> Result<Vec<(String, SecretType, StoredVersion)>>;
    /// The tenant's secrets and kept versions, counted (a rotation plan).
    fn count_tenant_versions(&mut self, tenant: &str) -> Result<(u64, u64)>;
    /// Replaces the ciphertext and data key id of each listed version whose stored
    /// (data key id, ciphertext) is still the one the reseal was made from, in one
    /// transaction; returns how many were replaced (a version updated, pruned or deleted
    /// meanwhile is left alone).
    fn reseal_versions(&mut self, tenant: &str, batch: &[Reseal]) -> Result<usize>;
}

/// The reference index (each backend's `references.rs`).
pub trait ReferenceRows {
    /// Replaces the set of secrets a source references.
    fn replace_references(
        &mut self,
        tenant: &str,
        source_id: &str,
        references: &[StoredReference],
    ) -> Result<()>;
    /// Forgets every reference of a source; returns how many were removed.
    fn remove_references(&mut self, tenant: &str, source_id: &str) -> Result<usize>;
    /// The sources referencing a secret, in source order.
    fn where_used(&mut self, tenant: &str, name: &str) -> Result<Vec<StoredReference>>;
    /// The references of a tenant whose name is a per-message pattern (holds `{{`), in
    /// source order (see `placeholder::pattern_matches`).
    fn pattern_references(&mut self, tenant: &str) -> Result<Vec<StoredReference>>;
}

/// The whole store as stored, for migration (each backend's `dump.rs`).
pub trait DumpRows {
    /// Every kept version, with its tenant and secret name, in (tenant, name, version) order.
    fn all_versions(&mut self) -> Result<Vec<(String, String, StoredVersion)>>;
    /// The whole reference index, with tenants, in (tenant, source, name) order.
    fn all_references(&mut self) -> Result<Vec<(String, StoredReference)>>;
    /// Loads a dump into an empty store in one transaction; ALREADY_EXISTS if the store
    /// already holds a header or secrets.
    fn load(&mut self, dump: &StoreDump) -> Result<()>;
}

/// The operations the service needs from one connection of a storage backend: the
/// concern traits above plus the store's metadata, outbox and write lock (each backend's
/// `store_impl.rs`).
///
/// Each method is atomic (one transaction), except inside [`Store::with_write_lock`].
pub trait Store: SecretRows + KeyRows + ReferenceRows + DumpRows + Send {
    /// The store header, or `None` for a store that was never initialised.
    fn header(&mut self) -> Result<Option<StoreHeader>>;
    /// Writes the header if none exists yet; returns the header now in force.
    fn initialize(&mut self, header: &StoreHeader) -> Result<StoreHeader>;
    /// A metadata value by key.
    fn meta(&mut self, key: &str) -> Result<Option<Vec<u8>>>;
    /// A metadata value by key, locked against other writers until the transaction that
    /// [`Store::with_write_lock`] holds ends (PostgreSQL: `FOR UPDATE`; SQLite's write
    /// transaction already excludes every other writer).
    fn lock_meta(&mut self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Sets a metadata value (insert or replace).
    fn put_meta(&mut self, key: &str, value: &[u8]) -> Result<()>;
    /// Whether the store holds neither data keys nor secrets.
    fn is_empty(&mut self) -> Result<bool>;
    /// Adds a sealed audit line to the outbox: written in the transaction of the change it
    /// records, copied to the log file after the commit.
    fn outbox_push(&mut self, seq: u64, line: &str) -> Result<()>;
    /// Outbox lines with a sequence number above `after`, in order, at most `limit`.
    fn outbox_after(&mut self, after: u64, limit: usize) -> Result<Vec<(u64, String)>>;
    /// Removes the outbox lines up to and including `through` (they are in a synced log).
    fn outbox_prune(&mut self, through: u64) -> Result<()>;
    /// Writes what closes a change (`service/commit.rs`) in the transaction
    /// [`Store::with_write_lock`] holds, after the change's own work: its pointer seals, its
    /// sealed audit lines, the outbox rows a synced log holds, and the state row. An error
    /// fails the whole change (the caller rolls it back), so a backend need not isolate these
    /// writes from each other. Default: the methods one by one.
    fn close_change(&mut self, close: &ChangeClose<'_>) -> Result<()> {
        close_change_by_parts(self, close)
    }
    /// Runs `f` holding the store's write lock: what `f` reads and writes through the backend
    /// it is given is one transaction, committed when `f` succeeds and rolled back when it
    /// fails, and no other connection commits in between. A method that fails inside `f`
    /// should fail `f`: on PostgreSQL the methods join the transaction without a savepoint,
    /// and the commit is refused after a failed one (nothing commits) even if `f` succeeds.
    /// `scope` names what is written (tenant and secret); a backend may lock only that.
    fn with_write_lock(
        &mut self,
        scope: &str,
        f: &mut dyn FnMut(&mut dyn Store) -> Result<()>,
    ) -> Result<()>;
    /// A number that changes when another connection commits, and not when this one does
    /// (SQLite: `PRAGMA data_version`); `None` where the backend has none (the default). The
    /// value cache uses it to tell its own handle's usage flush from anyone else's commit.
    fn data_version(&mut self) -> Result<Option<u64>> {
        Ok(None)
    }
    /// Best effort, after a destroy has committed: removes what the backend keeps of older
    /// page images outside the database proper (SQLite: a `TRUNCATE` checkpoint of the WAL).
    /// Default: nothing to do.
    fn scrub(&mut self) -> Result<()> {
        Ok(())
    }
    /// [`Store::with_write_lock`] whose commit may leave its sync to
    /// [`Backend::sync_commits`], so that concurrent writers share one: returns the ticket to
    /// pass there (`None`: the commit is durable already). The change is visible once this
    /// returns but must not be reported committed before `sync_commits` has returned.
    fn with_write_lock_deferred(
        &mut self,
        scope: &str,
        f: &mut dyn FnMut(&mut dyn Store) -> Result<()>,
    ) -> Result<Option<u64>> {
        self.with_write_lock(scope, f).map(|()| None)
    }
}

/// What closes a change: see [`Store::close_change`].
pub struct ChangeClose<'a> {
    /// The secrets whose current-version pointer the change moved, with their new seals.
    pub seals: &'a [(&'a str, &'a str, [u8; 32])],
    /// The sequence number every seal of the change carries (the state's counter).
    pub seal_seq: u64,
    /// The change's sealed audit lines, by sequence number.
    pub outbox: &'a [(u64, String)],
    /// The outbox rows up to this sequence number are in a synced log: removed with the change.
    pub prune_through: Option<u64>,
    /// The state row: its metadata key and new value.
    pub state: (&'a str, &'a [u8]),
}

/// [`Store::close_change`] through the store's single-row methods.
pub fn close_change_by_parts(
    store: &mut (impl Store + ?Sized),
    close: &ChangeClose<'_>,
) -> Result<()> {
    for (tenant, name, seal) in close.seals {
        store.seal_pointer(tenant, name, close.seal_seq, seal)?;
    }
    for (seq, line) in close.outbox {
        store.outbox_push(*seq, line)?;
    }
    if let Some(through) = close.prune_through {
        store.outbox_prune(through)?;
    }
    store.put_meta(close.state.0, close.state.1)
}

impl Page<StoredSecret> {
    /// The page of `query` from `items` as read with [`ListQuery::fetch_limit`] (one row more
    /// than the page, when paged, to tell whether entries follow), of `total` matching
    /// secrets (a `COUNT(*)`).
    pub(crate) fn of(mut items: Vec<StoredSecret>, total: i64, query: &ListQuery) -> Self {
        let has_more = query.limit != 0 && items.len() > query.limit;
        if query.limit != 0 {
            items.truncate(query.limit);
        }
        let next_after = has_more
            .then(|| items.last().map(|s| s.name.clone()))
            .flatten();
        Page {
            has_more,
            next_after,
            items,
            total: usize::try_from(total).unwrap_or(0),
        }
    }
}

impl ListQuery {
    /// The SQL `LIMIT` of a page: one row more than the page (to tell whether entries follow),
    /// `None` for all.
    pub(crate) fn fetch_limit(&self) -> Option<i64> {
        (self.limit != 0).then(|| i64::try_from(self.limit).unwrap_or(i64::MAX - 1) + 1)
    }

    /// The SQL `OFFSET` of a page.
    pub(crate) fn fetch_offset(&self) -> i64 {
        i64::try_from(self.offset).unwrap_or(i64::MAX)
    }
}

impl dyn Store + '_ {
    /// Everything the store holds, read the same way from every backend (for migration).
    pub fn dump(&mut self) -> Result<StoreDump> {
        Ok(StoreDump {
            header: self.header()?,
            state: self.meta(STATE_KEY)?,
            tenant_keys: self.all_tenant_keys()?,
            secrets: self.all_secrets()?,
            versions: self.all_versions()?,
            references: self.all_references()?,
        })
    }
}

/// IN_USE naming the referencing sources (at most ten, then a count).
pub(crate) fn in_use(name: &str, sources: &[String]) -> Error {
    let shown: Vec<&str> = sources.iter().take(10).map(String::as_str).collect();
    let more = sources.len().saturating_sub(shown.len());
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Error::new(
        ErrorCode::InUse,
        format!(
            "secret '{name}' is referenced by {} source(s): {}{tail}; delete with force to remove it anyway",
            sources.len(),
            shown.join(", ")
        ),
    )
}

/// ALREADY_EXISTS for a secret whose name is taken in its tenant: by a live secret, or by a
/// deleted one (`deleted`), which the message says how to recover or erase.
pub(crate) fn name_taken(secret: &StoredSecret, deleted: bool) -> Error {
    if deleted {
        return Error::new(
            ErrorCode::AlreadyExists,
            format!(
                "secret '{}' of tenant '{}' is deleted but still recoverable: undelete it, or destroy it to reuse the name",
                secret.name, secret.tenant
            ),
        );
    }
    already_exists(secret)
}

/// ALREADY_EXISTS for a secret whose name is taken in its tenant.
pub(crate) fn already_exists(secret: &StoredSecret) -> Error {
    Error::new(
        ErrorCode::AlreadyExists,
        format!(
            "secret '{}' already exists in tenant '{}'",
            secret.name, secret.tenant
        ),
    )
}

/// CONFLICT for a check-and-set write whose secret moved on from `expected`.
pub(crate) fn version_conflict(name: &str, current: i64, expected: u64) -> Error {
    Error::new(
        ErrorCode::Conflict,
        format!("secret '{name}' is at version {current}, not the expected version {expected}"),
    )
}

/// The error `load` gives for a store that is not empty.
pub(crate) fn not_empty() -> Error {
    Error::new(
        ErrorCode::AlreadyExists,
        "the target store is not empty: migrate only into a new store",
    )
}

impl StoreHeader {
    /// The header from the `(key, value)` rows of the metadata table; `None` for a store that
    /// was never initialised, INTEGRITY for a malformed or half-written one.
    pub fn from_meta(rows: impl IntoIterator<Item = (String, Vec<u8>)>) -> Result<Option<Self>> {
        let mut kek_id = None;
        let mut key_check = None;
        for (key, value) in rows {
            match key.as_str() {
                "kek_id" => {
                    let bytes: [u8; 4] = value
                        .as_slice()
                        .try_into()
                        .map_err(|_| Error::integrity("store metadata 'kek_id' is malformed"))?;
                    kek_id = Some(u32::from_be_bytes(bytes));
                }
                "key_check" => key_check = Some(value),
                _ => {}
            }
        }
        match (kek_id, key_check) {
            (Some(kek_id), Some(key_check)) => Ok(Some(StoreHeader { kek_id, key_check })),
            (None, None) => Ok(None),
            _ => Err(Error::integrity("store metadata is incomplete")),
        }
    }
}

/// The error of a write by a handle whose master key was rotated away meanwhile.
pub(crate) fn master_key_rotated() -> Error {
    Error::new(
        ErrorCode::WrongMasterKey,
        "the store's master key was rotated: reopen it with the new master key",
    )
}

#[cfg(all(test, not(feature = "postgres")))]
mod without_postgres_tests {
    use crate::{ErrorCode, MasterKey, SecretStorage, StorageOptions};

    #[test]
    fn a_postgres_url_is_an_invalid_argument_in_a_build_without_postgres() {
        for url in ["postgres://u:hunter2@127.0.0.1:1/db", "postgresql://h/db"] {
            let options = StorageOptions::with_master_key(MasterKey::generate());
            let Err(err) = SecretStorage::open(url, options) else {
                panic!("{url} opened in a build without the postgres feature");
            };
            assert_eq!(err.code(), ErrorCode::InvalidArgument, "{url}");
            let message = err.to_string();
            assert!(message.contains("feature `postgres`"), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
        // Nothing was created under the URL's name as if it were a file.
        assert!(!std::path::Path::new("postgres:").exists());
    }
}
