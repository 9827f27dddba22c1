//! The SQLite schema: the migrations, the application id that marks a file as ours, and the
//! check that refuses a foreign file before anything is written.

use super::{retry_transient, SqliteStore};
use crate::error::{Error, Result};
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
/// `postgres/sql.rs` mirrors them with its own column types (see the note there).
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
    // 4: a partial index of the per-message patterns (names holding `{{`), so `where_used`
    // reads a tenant's patterns without scanning its exact references. The query's WHERE term
    // (`store/sqlite/references.rs`) must stay textually the index's for SQLite to use it.
    "CREATE INDEX tbs_references_patterns ON tbs_references (tenant, source_id, name)
         WHERE instr(name, '{{') > 0;",
    // 5: soft delete. A deleted secret keeps its row and versions with its deletion time until
    // `undelete` clears it, `destroy` erases it or the retention purge does; the partial index
    // makes that purge's search for expired rows one index probe.
    "ALTER TABLE tbs_secrets ADD COLUMN deleted_at INTEGER;
     CREATE INDEX tbs_secrets_deleted ON tbs_secrets (deleted_at) WHERE deleted_at IS NOT NULL;",
];

/// `PRAGMA application_id` of a tbsecrets store ("tbs1"): marks the file as ours, so that any
/// other SQLite file is refused untouched.
pub const APPLICATION_ID: i32 = 0x7462_7331;

/// The schema version this library writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

impl SqliteStore {
    pub(super) fn migrate(&mut self) -> Result<()> {
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
}

/// Refuses, before anything is written, a file that is not a tbsecrets store: a SQLite
/// database of another application (INVALID_ARGUMENT) or not SQLite at all (INTEGRITY). A new,
/// empty file and a store of an earlier schema (no application id yet, our tables) are ours.
pub(super) fn check_is_store(conn: &Connection, path: &Path, busy_timeout: Duration) -> Result<()> {
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
pub(super) fn enable_wal(conn: &Connection, busy_timeout: Duration) -> Result<String> {
    retry_transient(busy_timeout, || {
        conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
    })
}
