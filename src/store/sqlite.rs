//! The embedded default backend: one SQLite file in WAL mode with `synchronous=FULL`.
//!
//! Several processes may open the same file; write transactions start `IMMEDIATE` so two
//! writers queue on the busy timeout instead of deadlocking.

use super::STATE_KEY;
use super::{
    Backend, ChangeProbe, Fingerprint, Store, StoreDump, StoreGuard, StoreHeader, StoredReference,
    StoredSecret, StoredVersion, UsageUpdate, WrappedKey,
};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{ListQuery, Page, SecretType};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: secrets, versions, tenant keys, store metadata.
    "CREATE TABLE tbs_meta (
         key   TEXT PRIMARY KEY,
         value BLOB NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE tbs_tenant_keys (
         tenant     TEXT    NOT NULL,
         dek_id     INTEGER NOT NULL,
         kek_id     INTEGER NOT NULL,
         wrapped    BLOB    NOT NULL,
         created_at INTEGER NOT NULL,
         PRIMARY KEY (tenant, dek_id)
     ) WITHOUT ROWID;
     CREATE TABLE tbs_secrets (
         tenant           TEXT    NOT NULL,
         name             TEXT    NOT NULL,
         type             TEXT    NOT NULL,
         description      TEXT    NOT NULL,
         version          INTEGER NOT NULL,
         created_at       INTEGER NOT NULL,
         updated_at       INTEGER NOT NULL,
         value_updated_at INTEGER NOT NULL,
         last_used_at     INTEGER,
         use_count        INTEGER NOT NULL DEFAULT 0,
         PRIMARY KEY (tenant, name)
     ) WITHOUT ROWID;
     CREATE TABLE tbs_secret_versions (
         tenant     TEXT    NOT NULL,
         name       TEXT    NOT NULL,
         version    INTEGER NOT NULL,
         dek_id     INTEGER NOT NULL,
         value      BLOB    NOT NULL,
         created_at INTEGER NOT NULL,
         PRIMARY KEY (tenant, name, version)
     ) WITHOUT ROWID;",
    // 2: the exact reference index ("where used").
    "CREATE TABLE tbs_references (
         tenant    TEXT NOT NULL,
         source_id TEXT NOT NULL,
         name      TEXT NOT NULL,
         type      TEXT,
         PRIMARY KEY (tenant, source_id, name)
     ) WITHOUT ROWID;
     CREATE INDEX tbs_references_by_name ON tbs_references (tenant, name, source_id);",
    // 3: authenticated state (sealed current-version pointers, the store-wide state row in
    // tbs_meta) and the audit outbox. A store that already had a header adopts its pointers
    // once, on the open that migrates it (see `service::state`).
    "ALTER TABLE tbs_secrets ADD COLUMN seal_seq INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE tbs_secrets ADD COLUMN seal BLOB;
     CREATE TABLE tbs_audit_outbox (
         seq  INTEGER PRIMARY KEY,
         line TEXT    NOT NULL
     );
     INSERT INTO tbs_meta (key, value)
         SELECT 'state_adopt', x'01' WHERE EXISTS (SELECT 1 FROM tbs_meta WHERE key = 'key_check');
     DELETE FROM tbs_meta WHERE key LIKE 'audit_anchor:%';",
];

/// `PRAGMA application_id` of a tbsecrets store ("tbs1"): marks the file as ours, so that any
/// other SQLite file is refused untouched.
pub const APPLICATION_ID: i32 = 0x7462_7331;

/// The schema version this library writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const SECRET_COLUMNS: &str = "tenant, name, type, description, version, created_at, updated_at, \
                              value_updated_at, last_used_at, use_count, seal_seq, seal";

/// Options of the SQLite backend.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Create the file when it does not exist.
    pub create_if_missing: bool,
    /// How long a writer waits for another process's lock.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            create_if_missing: true,
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// A SQLite store file.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    busy_timeout: Duration,
    /// Whether `with_write_lock` holds a write transaction that the methods join.
    write_locked: bool,
}

/// The write transaction of one backend method: its own `BEGIN IMMEDIATE`, or a savepoint
/// inside the transaction that `with_write_lock` holds.
enum WriteTx<'a> {
    Own(rusqlite::Transaction<'a>),
    Nested(rusqlite::Savepoint<'a>),
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            WriteTx::Own(tx) => tx,
            WriteTx::Nested(savepoint) => savepoint,
        }
    }
}

impl WriteTx<'_> {
    fn commit(self) -> rusqlite::Result<()> {
        match self {
            WriteTx::Own(tx) => tx.commit(),
            WriteTx::Nested(savepoint) => savepoint.commit(),
        }
    }
}

impl SqliteStore {
    /// Opens (and if allowed creates) the store file and migrates its schema.
    pub fn open(path: &Path, options: &SqliteOptions) -> Result<SqliteStore> {
        if !options.create_if_missing && !path.exists() {
            return Err(Error::new(
                ErrorCode::NotFound,
                format!("store {} does not exist", path.display()),
            ));
        }
        if options.create_if_missing && !path.exists() {
            create_private_file(path)?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(options.busy_timeout)?;
        check_is_store(&conn, path, options.busy_timeout)?;
        let mode = enable_wal(&conn, options.busy_timeout)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::storage(format!(
                "store {} cannot use WAL journaling (got '{mode}')",
                path.display()
            )));
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
        conn.set_prepared_statement_cache_capacity(64);
        let mut backend = SqliteStore {
            conn,
            path: path.to_path_buf(),
            busy_timeout: options.busy_timeout,
            write_locked: false,
        };
        backend.migrate()?;
        Ok(backend)
    }

    /// The file this backend stores into.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&mut self) -> Result<()> {
        let current: i64 = retry_transient(self.busy_timeout, || {
            self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        })?;
        if current == SCHEMA_VERSION {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Re-read inside the write lock: another process may have migrated meanwhile.
        let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if current > SCHEMA_VERSION {
            return Err(Error::storage(format!(
                "store schema version {current} is newer than this library supports ({SCHEMA_VERSION}); upgrade tbsecrets"
            )));
        }
        for migration in &MIGRATIONS[current as usize..] {
            tx.execute_batch(migration)?;
        }
        tx.execute_batch(&format!(
            "PRAGMA user_version = {SCHEMA_VERSION}; PRAGMA application_id = {APPLICATION_ID};"
        ))?;
        tx.commit()?;
        Ok(())
    }

    fn write_tx(&mut self) -> Result<WriteTx<'_>> {
        Ok(if self.write_locked {
            WriteTx::Nested(self.conn.savepoint()?)
        } else {
            WriteTx::Own(
                self.conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?,
            )
        })
    }

    /// Rolls back the transaction `with_write_lock` opened, if it is still open.
    fn rollback_held(&self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Refuses, before anything is written, a file that is not a tbsecrets store: a SQLite
/// database of another application (INVALID_ARGUMENT) or not SQLite at all (INTEGRITY). A new,
/// empty file and a store of an earlier schema (no application id yet, our tables) are ours.
fn check_is_store(conn: &Connection, path: &Path, busy_timeout: Duration) -> Result<()> {
    let (application_id, user_version, tables, ours): (i32, i64, i64, i64) = retry_transient(
        busy_timeout,
        || {
            conn.query_row(
                "SELECT (SELECT application_id FROM pragma_application_id()),
                        (SELECT user_version FROM pragma_user_version()),
                        (SELECT COUNT(*) FROM sqlite_master),
                        (SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'tbs_meta')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
        },
    )?;
    let is_ours = application_id == APPLICATION_ID
        || (application_id == 0 && tables == 0 && user_version == 0)
        || (application_id == 0 && ours == 1 && (1..SCHEMA_VERSION).contains(&user_version));
    if is_ours {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "{} is not a tbsecrets store (a SQLite database of another application); nothing was changed",
        path.display()
    )))
}

/// Switches the connection to WAL journaling and returns the journal mode now in force.
///
/// On a new (still empty) file, changing the journal mode needs an exclusive lock, and SQLite
/// answers SQLITE_BUSY at once, without the busy handler, while another connection opening
/// the same new file holds a lock; so retry until the busy timeout. Once the file is in WAL
/// mode (recorded in the file) this pragma takes no exclusive lock.
fn enable_wal(conn: &Connection, busy_timeout: Duration) -> Result<String> {
    retry_transient(busy_timeout, || {
        conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
    })
}

/// Runs `f` again while SQLite answers with a lock error that it raises without calling the
/// busy handler (BUSY while a new file changes journal mode, LOCKED, or PROTOCOL when a WAL
/// read lock keeps slipping away under heavy writing), until `timeout`.
fn retry_transient<T>(timeout: Duration, mut f: impl FnMut() -> rusqlite::Result<T>) -> Result<T> {
    use rusqlite::ErrorCode as Sql;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match f() {
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(Sql::DatabaseBusy | Sql::DatabaseLocked | Sql::FileLockingProtocolFailed)
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            result => return Ok(result?),
        }
    }
}

/// Creates an empty store file readable by its owner only; SQLite gives the `-wal` and `-shm`
/// files the same mode.
fn create_private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        // Another process created it first: fine, SQLite opens theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::storage(format!(
            "cannot create store {}: {e}",
            path.display()
        ))),
    }
}

fn secret_from_row(row: &Row<'_>) -> rusqlite::Result<StoredSecret> {
    let type_name: String = row.get(2)?;
    let secret_type = type_name.parse::<SecretType>().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, "type".into())
    })?;
    Ok(StoredSecret {
        tenant: row.get(0)?,
        name: row.get(1)?,
        secret_type,
        description: row.get(3)?,
        version: row.get::<_, i64>(4)? as u64,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
        value_updated_at: row.get(7)?,
        last_used_at: row.get(8)?,
        use_count: row.get::<_, i64>(9)? as u64,
        seal_seq: row.get::<_, i64>(10)? as u64,
        seal: row.get::<_, Option<Vec<u8>>>(11)?.unwrap_or_default(),
    })
}

fn wrapped_from_row(row: &Row<'_>) -> rusqlite::Result<WrappedKey> {
    Ok(WrappedKey {
        dek_id: row.get::<_, i64>(0)? as u32,
        kek_id: row.get::<_, i64>(1)? as u32,
        blob: row.get(2)?,
        created_at: row.get(3)?,
    })
}

fn not_found(tenant: &str, name: &str) -> Error {
    Error::secret_not_found(tenant, name)
}

impl Store for SqliteStore {
    fn header(&mut self) -> Result<Option<StoreHeader>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT key, value FROM tbs_meta WHERE key IN ('kek_id', 'key_check')",
        )?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        StoreHeader::from_meta(rows)
    }

    fn initialize(&mut self, header: &StoreHeader) -> Result<StoreHeader> {
        let tx = self.write_tx()?;
        tx.execute(
            "INSERT OR IGNORE INTO tbs_meta (key, value) VALUES ('kek_id', ?1)",
            params![header.kek_id.to_be_bytes().to_vec()],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO tbs_meta (key, value) VALUES ('key_check', ?1)",
            params![header.key_check],
        )?;
        tx.commit()?;
        self.header()?
            .ok_or_else(|| Error::internal("store header missing after initialisation"))
    }

    fn active_tenant_key(&mut self, tenant: &str) -> Result<Option<WrappedKey>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT dek_id, kek_id, wrapped, created_at FROM tbs_tenant_keys
                 WHERE tenant = ?1 ORDER BY dek_id DESC LIMIT 1",
            )?
            .query_row(params![tenant], wrapped_from_row)
            .optional()?)
    }

    fn tenant_key(&mut self, tenant: &str, dek_id: u32) -> Result<Option<WrappedKey>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT dek_id, kek_id, wrapped, created_at FROM tbs_tenant_keys
                 WHERE tenant = ?1 AND dek_id = ?2",
            )?
            .query_row(params![tenant, dek_id], wrapped_from_row)
            .optional()?)
    }

    fn insert_tenant_key(&mut self, tenant: &str, key: &WrappedKey) -> Result<bool> {
        let tx = self.write_tx()?;
        let current: Option<Vec<u8>> = tx
            .query_row("SELECT value FROM tbs_meta WHERE key = 'kek_id'", [], |r| {
                r.get(0)
            })
            .optional()?;
        if current.as_deref() != Some(&key.kek_id.to_be_bytes()[..]) {
            return Err(super::master_key_rotated());
        }
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO tbs_tenant_keys (tenant, dek_id, kek_id, wrapped, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![tenant, key.dek_id, key.kek_id, key.blob, key.created_at],
        )?;
        tx.commit()?;
        Ok(inserted == 1)
    }

    fn secret(&mut self, tenant: &str, name: &str) -> Result<Option<StoredSecret>> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {SECRET_COLUMNS} FROM tbs_secrets WHERE tenant = ?1 AND name = ?2"
            ))?
            .query_row(params![tenant, name], secret_from_row)
            .optional()?)
    }

    fn current(
        &mut self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<(StoredSecret, StoredVersion)>> {
        let sql = "SELECT s.tenant, s.name, s.type, s.description, s.version, s.created_at,
                          s.updated_at, s.value_updated_at, s.last_used_at, s.use_count,
                          s.seal_seq, s.seal, v.dek_id, v.value, v.created_at
                   FROM tbs_secrets s JOIN tbs_secret_versions v
                     ON v.tenant = s.tenant AND v.name = s.name AND v.version = s.version
                   WHERE s.tenant = ?1 AND s.name = ?2";
        Ok(self
            .conn
            .prepare_cached(sql)?
            .query_row(params![tenant, name], |row| {
                let secret = secret_from_row(row)?;
                let value = StoredVersion {
                    version: secret.version,
                    dek_id: row.get::<_, i64>(12)? as u32,
                    blob: row.get(13)?,
                    created_at: row.get(14)?,
                };
                Ok((secret, value))
            })
            .optional()?)
    }

    fn version(&mut self, tenant: &str, name: &str, version: u64) -> Result<Option<StoredVersion>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT dek_id, value, created_at FROM tbs_secret_versions
                 WHERE tenant = ?1 AND name = ?2 AND version = ?3",
            )?
            .query_row(params![tenant, name, version as i64], |row| {
                Ok(StoredVersion {
                    version,
                    dek_id: row.get::<_, i64>(0)? as u32,
                    blob: row.get(1)?,
                    created_at: row.get(2)?,
                })
            })
            .optional()?)
    }

    fn versions(&mut self, tenant: &str, name: &str) -> Result<Vec<(u64, i64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT version, created_at FROM tbs_secret_versions
             WHERE tenant = ?1 AND name = ?2 ORDER BY version DESC",
        )?;
        let rows = stmt.query_map(params![tenant, name], |row| {
            Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn create(&mut self, secret: &StoredSecret, value: &StoredVersion) -> Result<()> {
        let tx = self.write_tx()?;
        let inserted = tx.execute(
            &format!(
                "INSERT OR IGNORE INTO tbs_secrets ({SECRET_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            ),
            params![
                secret.tenant,
                secret.name,
                secret.secret_type.as_str(),
                secret.description,
                secret.version as i64,
                secret.created_at,
                secret.updated_at,
                secret.value_updated_at,
                secret.last_used_at,
                secret.use_count as i64,
                secret.seal_seq as i64,
                secret.seal
            ],
        )?;
        if inserted == 0 {
            return Err(Error::new(
                ErrorCode::AlreadyExists,
                format!(
                    "secret '{}' already exists in tenant '{}'",
                    secret.name, secret.tenant
                ),
            ));
        }
        tx.execute(
            "INSERT INTO tbs_secret_versions (tenant, name, version, dek_id, value, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                secret.tenant,
                secret.name,
                value.version as i64,
                value.dek_id,
                value.blob,
                value.created_at
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn append_version(
        &mut self,
        tenant: &str,
        name: &str,
        expected_current: u64,
        value: &StoredVersion,
        max_versions: u32,
    ) -> Result<()> {
        let tx = self.write_tx()?;
        let current: Option<i64> = tx
            .query_row(
                "SELECT version FROM tbs_secrets WHERE tenant = ?1 AND name = ?2",
                params![tenant, name],
                |r| r.get(0),
            )
            .optional()?;
        let current = current.ok_or_else(|| not_found(tenant, name))? as u64;
        if current != expected_current {
            return Err(Error::new(
                ErrorCode::Conflict,
                format!(
                    "secret '{name}' is at version {current}, not the expected version {expected_current}"
                ),
            ));
        }
        tx.execute(
            "INSERT INTO tbs_secret_versions (tenant, name, version, dek_id, value, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                tenant,
                name,
                value.version as i64,
                value.dek_id,
                value.blob,
                value.created_at
            ],
        )?;
        tx.execute(
            "UPDATE tbs_secrets SET version = ?3, updated_at = ?4, value_updated_at = ?4
             WHERE tenant = ?1 AND name = ?2",
            params![tenant, name, value.version as i64, value.created_at],
        )?;
        tx.execute(
            "DELETE FROM tbs_secret_versions WHERE tenant = ?1 AND name = ?2 AND version <= ?3",
            params![
                tenant,
                name,
                value.version as i64 - i64::from(max_versions.max(1))
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn set_description(
        &mut self,
        tenant: &str,
        name: &str,
        description: &str,
        now: i64,
    ) -> Result<()> {
        let tx = self.write_tx()?;
        let changed = tx.execute(
            "UPDATE tbs_secrets SET description = ?3, updated_at = ?4 WHERE tenant = ?1 AND name = ?2",
            params![tenant, name, description, now],
        )?;
        if changed == 0 {
            return Err(not_found(tenant, name));
        }
        tx.commit()?;
        Ok(())
    }

    fn delete(&mut self, tenant: &str, name: &str, force: bool) -> Result<()> {
        let tx = self.write_tx()?;
        if !force {
            let mut stmt = tx.prepare_cached(
                "SELECT source_id FROM tbs_references WHERE tenant = ?1 AND name = ?2
                 ORDER BY source_id",
            )?;
            let sources = stmt
                .query_map(params![tenant, name], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            if !sources.is_empty() {
                return Err(super::in_use(name, &sources));
            }
        }
        let changed = tx.execute(
            "DELETE FROM tbs_secrets WHERE tenant = ?1 AND name = ?2",
            params![tenant, name],
        )?;
        if changed == 0 {
            return Err(not_found(tenant, name));
        }
        tx.execute(
            "DELETE FROM tbs_secret_versions WHERE tenant = ?1 AND name = ?2",
            params![tenant, name],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn replace_references(
        &mut self,
        tenant: &str,
        source_id: &str,
        references: &[StoredReference],
    ) -> Result<()> {
        let tx = self.write_tx()?;
        tx.execute(
            "DELETE FROM tbs_references WHERE tenant = ?1 AND source_id = ?2",
            params![tenant, source_id],
        )?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO tbs_references (tenant, source_id, name, type)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for r in references {
                stmt.execute(params![
                    tenant,
                    source_id,
                    r.name,
                    r.secret_type.map(SecretType::as_str)
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn remove_references(&mut self, tenant: &str, source_id: &str) -> Result<usize> {
        let tx = self.write_tx()?;
        let removed = tx.execute(
            "DELETE FROM tbs_references WHERE tenant = ?1 AND source_id = ?2",
            params![tenant, source_id],
        )?;
        tx.commit()?;
        Ok(removed)
    }

    fn where_used(&mut self, tenant: &str, name: &str) -> Result<Vec<StoredReference>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT source_id, name, type FROM tbs_references WHERE tenant = ?1 AND name = ?2
             ORDER BY source_id",
        )?;
        let rows = stmt.query_map(params![tenant, name], |row| {
            let type_name: Option<String> = row.get(2)?;
            Ok(StoredReference {
                source_id: row.get(0)?,
                name: row.get(1)?,
                secret_type: type_name.and_then(|t| t.parse().ok()),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn list(&mut self, tenant: &str, query: &ListQuery) -> Result<Page<StoredSecret>> {
        let filter = query.name_contains.as_deref().unwrap_or("");
        let total: i64 = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*) FROM tbs_secrets WHERE tenant = ?1 AND instr(name, ?2) > 0",
            )?
            .query_row(params![tenant, filter], |r| r.get(0))?;
        let limit: i64 = if query.limit == 0 {
            -1
        } else {
            query.limit as i64
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {SECRET_COLUMNS} FROM tbs_secrets WHERE tenant = ?1 AND instr(name, ?2) > 0
             ORDER BY name LIMIT ?3 OFFSET ?4"
        ))?;
        let items = stmt
            .query_map(
                params![tenant, filter, limit, query.offset as i64],
                secret_from_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let has_more = (query.offset + items.len()) < total as usize;
        Ok(Page {
            items,
            total: total as usize,
            has_more,
        })
    }

    fn all_tenant_keys(&mut self) -> Result<Vec<(String, WrappedKey)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT dek_id, kek_id, wrapped, created_at, tenant FROM tbs_tenant_keys
             ORDER BY tenant, dek_id",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(4)?, wrapped_from_row(row)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn rewrap_tenant_keys(
        &mut self,
        keys: &[(String, WrappedKey)],
        header: &StoreHeader,
    ) -> Result<()> {
        let tx = self.write_tx()?;
        for (tenant, key) in keys {
            tx.execute(
                "UPDATE tbs_tenant_keys SET kek_id = ?3, wrapped = ?4 WHERE tenant = ?1 AND dek_id = ?2",
                params![tenant, key.dek_id, key.kek_id, key.blob],
            )?;
        }
        tx.execute(
            "UPDATE tbs_meta SET value = ?1 WHERE key = 'kek_id'",
            params![header.kek_id.to_be_bytes().to_vec()],
        )?;
        tx.execute(
            "UPDATE tbs_meta SET value = ?1 WHERE key = 'key_check'",
            params![header.key_check],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn tenant_versions(
        &mut self,
        tenant: &str,
    ) -> Result<Vec<(String, SecretType, StoredVersion)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT v.name, s.type, v.version, v.dek_id, v.value, v.created_at
             FROM tbs_secret_versions v JOIN tbs_secrets s ON s.tenant = v.tenant AND s.name = v.name
             WHERE v.tenant = ?1 ORDER BY v.name, v.version",
        )?;
        let rows = stmt.query_map(params![tenant], |row| {
            let type_name: String = row.get(1)?;
            let secret_type = type_name.parse::<SecretType>().map_err(|_| {
                rusqlite::Error::FromSqlConversionFailure(
                    1,
                    rusqlite::types::Type::Text,
                    "type".into(),
                )
            })?;
            Ok((
                row.get::<_, String>(0)?,
                secret_type,
                StoredVersion {
                    version: row.get::<_, i64>(2)? as u64,
                    dek_id: row.get::<_, i64>(3)? as u32,
                    blob: row.get(4)?,
                    created_at: row.get(5)?,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn reseal_version(&mut self, tenant: &str, name: &str, value: &StoredVersion) -> Result<()> {
        let tx = self.write_tx()?;
        tx.execute(
            "UPDATE tbs_secret_versions SET dek_id = ?4, value = ?5
             WHERE tenant = ?1 AND name = ?2 AND version = ?3",
            params![tenant, name, value.version as i64, value.dek_id, value.blob],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn dump(&mut self) -> Result<StoreDump> {
        let header = self.header()?;
        let tenant_keys = self.all_tenant_keys()?;
        let secrets = self.all_secrets()?;
        let state = self.meta(STATE_KEY)?;
        let versions = self
            .conn
            .prepare("SELECT tenant, name, version, dek_id, value, created_at FROM tbs_secret_versions ORDER BY tenant, name, version")?
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    StoredVersion {
                        version: row.get::<_, i64>(2)? as u64,
                        dek_id: row.get::<_, i64>(3)? as u32,
                        blob: row.get(4)?,
                        created_at: row.get(5)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let references = self
            .conn
            .prepare("SELECT tenant, source_id, name, type FROM tbs_references ORDER BY tenant, source_id, name")?
            .query_map([], |row| {
                let type_name: Option<String> = row.get(3)?;
                Ok((
                    row.get::<_, String>(0)?,
                    StoredReference {
                        source_id: row.get(1)?,
                        name: row.get(2)?,
                        secret_type: type_name.and_then(|t| t.parse().ok()),
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(StoreDump {
            header,
            state,
            tenant_keys,
            secrets,
            versions,
            references,
        })
    }

    fn load(&mut self, dump: &StoreDump) -> Result<()> {
        let tx = self.write_tx()?;
        let occupied: i64 = tx.query_row(
            "SELECT (SELECT COUNT(*) FROM tbs_meta) + (SELECT COUNT(*) FROM tbs_secrets)",
            [],
            |r| r.get(0),
        )?;
        if occupied > 0 {
            return Err(super::not_empty());
        }
        if let Some(header) = &dump.header {
            tx.execute(
                "INSERT INTO tbs_meta (key, value) VALUES ('kek_id', ?1), ('key_check', ?2)",
                params![header.kek_id.to_be_bytes().to_vec(), header.key_check],
            )?;
        }
        if let Some(state) = &dump.state {
            tx.execute(
                "INSERT INTO tbs_meta (key, value) VALUES (?1, ?2)",
                params![STATE_KEY, state],
            )?;
        }
        for (tenant, key) in &dump.tenant_keys {
            tx.execute(
                "INSERT INTO tbs_tenant_keys (tenant, dek_id, kek_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![tenant, key.dek_id, key.kek_id, key.blob, key.created_at],
            )?;
        }
        for s in &dump.secrets {
            tx.execute(
                &format!("INSERT INTO tbs_secrets ({SECRET_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
                params![
                    s.tenant,
                    s.name,
                    s.secret_type.as_str(),
                    s.description,
                    s.version as i64,
                    s.created_at,
                    s.updated_at,
                    s.value_updated_at,
                    s.last_used_at,
                    s.use_count as i64,
                    s.seal_seq as i64,
                    s.seal
                ],
            )?;
        }
        for (tenant, name, v) in &dump.versions {
            tx.execute(
                "INSERT INTO tbs_secret_versions (tenant, name, version, dek_id, value, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![tenant, name, v.version as i64, v.dek_id, v.blob, v.created_at],
            )?;
        }
        for (tenant, r) in &dump.references {
            tx.execute(
                "INSERT INTO tbs_references (tenant, source_id, name, type) VALUES (?1, ?2, ?3, ?4)",
                params![tenant, r.source_id, r.name, r.secret_type.map(SecretType::as_str)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn record_usage(&mut self, updates: &[UsageUpdate]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let tx = self.write_tx()?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE tbs_secrets
                 SET use_count = use_count + ?3,
                     last_used_at = MAX(COALESCE(last_used_at, 0), ?4)
                 WHERE tenant = ?1 AND name = ?2",
            )?;
            for u in updates {
                stmt.execute(params![u.tenant, u.name, u.uses as i64, u.last_used_at])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn meta(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT value FROM tbs_meta WHERE key = ?1")?;
        // Text or blob alike (an edited value may have changed type): the caller authenticates it.
        Ok(stmt
            .query_row(params![key], |row| {
                Ok(row.get_ref(0)?.as_bytes_or_null()?.map(<[u8]>::to_vec))
            })
            .optional()?
            .flatten())
    }

    fn lock_meta(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        // A write transaction of SQLite already excludes every other writer.
        self.meta(key)
    }

    fn put_meta(&mut self, key: &str, value: &[u8]) -> Result<()> {
        let tx = self.write_tx()?;
        tx.prepare_cached(
            "INSERT INTO tbs_meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![key, value])?;
        tx.commit()?;
        Ok(())
    }

    fn seal_pointer(&mut self, tenant: &str, name: &str, seal_seq: u64, seal: &[u8]) -> Result<()> {
        let tx = self.write_tx()?;
        let changed = tx
            .prepare_cached(
                "UPDATE tbs_secrets SET seal_seq = ?3, seal = ?4 WHERE tenant = ?1 AND name = ?2",
            )?
            .execute(params![tenant, name, seal_seq as i64, seal])?;
        if changed == 0 {
            return Err(not_found(tenant, name));
        }
        tx.commit()?;
        Ok(())
    }

    fn all_secrets(&mut self) -> Result<Vec<StoredSecret>> {
        Ok(self
            .conn
            .prepare(&format!(
                "SELECT {SECRET_COLUMNS} FROM tbs_secrets ORDER BY tenant, name"
            ))?
            .query_map([], secret_from_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn is_empty(&mut self) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT NOT EXISTS (SELECT 1 FROM tbs_tenant_keys)
                AND NOT EXISTS (SELECT 1 FROM tbs_secrets)",
            [],
            |r| r.get(0),
        )?)
    }

    fn outbox_push(&mut self, seq: u64, line: &str) -> Result<()> {
        let tx = self.write_tx()?;
        tx.prepare_cached("INSERT INTO tbs_audit_outbox (seq, line) VALUES (?1, ?2)")?
            .execute(params![seq as i64, line])?;
        tx.commit()?;
        Ok(())
    }

    fn outbox_after(&mut self, after: u64, limit: usize) -> Result<Vec<(u64, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, line FROM tbs_audit_outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after as i64, limit as i64], |row| {
            Ok((row.get::<_, i64>(0)? as u64, row.get::<_, String>(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn outbox_prune(&mut self, through: u64) -> Result<()> {
        let tx = self.write_tx()?;
        tx.prepare_cached("DELETE FROM tbs_audit_outbox WHERE seq <= ?1")?
            .execute(params![through as i64])?;
        tx.commit()?;
        Ok(())
    }

    fn with_write_lock(
        &mut self,
        _scope: &str,
        f: &mut dyn FnMut(&mut dyn Store) -> Result<()>,
    ) -> Result<()> {
        if self.write_locked {
            return f(self);
        }
        // IMMEDIATE takes the write lock now (waiting on the busy timeout), so the reads
        // `f` makes see the latest commit and nobody commits until this one.
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        self.write_locked = true;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        self.write_locked = false;
        match outcome {
            Ok(Ok(())) => self.conn.execute_batch("COMMIT").map_err(|e| {
                self.rollback_held();
                Error::from(e)
            }),
            Ok(Err(e)) => {
                self.rollback_held();
                Err(e)
            }
            Err(panic) => {
                self.rollback_held();
                std::panic::resume_unwind(panic)
            }
        }
    }
}

/// The embedded backend: one connection behind a mutex (SQLite serialises writers anyway and
/// hot reads are served from the service's cache), plus the lock-free WAL-index probe.
pub struct SqliteBackend {
    // Declared first so the -shm mapping is released before the connection closes.
    probe: Option<ChangeProbe>,
    conn: parking_lot::Mutex<SqliteStore>,
}

impl SqliteBackend {
    /// Opens (and if allowed creates) the store file and migrates its schema.
    pub fn open(path: &Path, options: &SqliteOptions) -> Result<SqliteBackend> {
        let store = SqliteStore::open(path, options)?;
        // SAFETY: the probe is declared before the connection, so it is dropped first.
        let probe = unsafe { ChangeProbe::from_connection(&store.conn) };
        Ok(SqliteBackend {
            probe,
            conn: parking_lot::Mutex::new(store),
        })
    }
}

impl StoreGuard for parking_lot::MutexGuard<'_, SqliteStore> {
    fn store(&mut self) -> &mut dyn Store {
        &mut **self
    }
}

impl Backend for SqliteBackend {
    fn connection(&self) -> Result<Box<dyn StoreGuard + '_>> {
        Ok(Box::new(self.conn.lock()))
    }

    fn try_connection(&self) -> Option<Box<dyn StoreGuard + '_>> {
        self.conn
            .try_lock()
            .map(|guard| Box::new(guard) as Box<dyn StoreGuard + '_>)
    }

    fn change_token(&self) -> Option<Fingerprint> {
        self.probe.as_ref().map(ChangeProbe::fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_change_token_comes_from_sqlite_and_moves_on_foreign_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probe.db");
        let options = SqliteOptions {
            create_if_missing: true,
            busy_timeout: std::time::Duration::from_secs(5),
        };
        let one = SqliteBackend::open(&path, &options).unwrap();
        let other = SqliteBackend::open(&path, &options).unwrap();
        let before = one
            .change_token()
            .expect("SQLite maps the WAL-index after open");
        assert_eq!(
            Some(before),
            other.change_token(),
            "one WAL-index, one header"
        );
        other
            .connection()
            .unwrap()
            .store()
            .put_meta("probe", &[1])
            .unwrap();
        assert_ne!(
            one.change_token(),
            Some(before),
            "a commit by another connection"
        );
    }
}
