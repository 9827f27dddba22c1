//! The embedded default backend: one SQLite file in WAL mode with `synchronous=FULL`, whose
//! changes commit in groups that share one sync of the WAL (`group_sync.rs`).
//!
//! Several processes may open the same file; write transactions start `IMMEDIATE` so two
//! writers queue on the busy timeout instead of deadlocking.
//!
//! This file holds the backend, its connection and the write transaction; `schema.rs` the
//! migrations and the foreign-file check, `rows.rs` the row mapping, `store_impl.rs` the
//! `Store` implementation, whose longer operations live in `secrets.rs`, `keys.rs`,
//! `references.rs` and `dump.rs`.

mod dump;
mod group_sync;
mod keys;
mod references;
mod rows;
mod schema;
mod secrets;
mod store_impl;

use super::{Backend, ChangeProbe, Fingerprint, Store, StoreGuard};
use crate::error::{Error, ErrorCode, Result};
use group_sync::GroupSync;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use schema::{check_is_store, enable_wal};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

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
    busy_timeout: Duration,
    /// Whether `with_write_lock` holds a write transaction that the methods join.
    write_locked: bool,
    /// The WAL sync that deferred commits wait for (shared by the backend).
    group: Arc<GroupSync>,
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
        // secure_delete: content a delete or an update frees is overwritten with zeros, so a
        // destroyed secret's ciphertexts (and pruned versions) leave no copy in free space.
        conn.execute_batch(
            "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;",
        )?;
        conn.set_prepared_statement_cache_capacity(64);
        let mut backend = SqliteStore {
            conn,
            busy_timeout: options.busy_timeout,
            write_locked: false,
            group: Arc::new(GroupSync::new(path)),
        };
        backend.migrate()?;
        Ok(backend)
    }

    /// A read-only connection to a store that [`SqliteStore::open`] opened (and migrated):
    /// it reads committed data while another connection writes (WAL).
    fn open_reader(
        path: &Path,
        busy_timeout: Duration,
        group: Arc<GroupSync>,
    ) -> Result<SqliteStore> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(busy_timeout)?;
        conn.execute_batch("PRAGMA query_only=1; PRAGMA foreign_keys=ON;")?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(SqliteStore {
            conn,
            busy_timeout,
            write_locked: false,
            group,
        })
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

    /// Runs `f` inside one write transaction (`Store::with_write_lock`); the methods `f` calls
    /// join it through savepoints.
    pub(super) fn run_write_locked(
        &mut self,
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

/// The embedded backend: one connection behind a mutex (SQLite serialises writers anyway and
/// hot reads are served from the service's cache), a read-only connection to the same file
/// for the get path's cache misses (so that a get never waits for this handle's write
/// transaction, e.g. a master-key rotation's), plus the lock-free WAL-index probe.
pub struct SqliteBackend {
    // Declared first so the -shm mapping is released before the connections close.
    probe: Option<ChangeProbe>,
    // Closed before the writer, so that the writer's close is the last one and checkpoints
    // the WAL into the file (a read-only connection cannot).
    reader: parking_lot::Mutex<SqliteStore>,
    conn: parking_lot::Mutex<SqliteStore>,
    group: Arc<GroupSync>,
}

impl SqliteBackend {
    /// Opens (and if allowed creates) the store file and migrates its schema.
    pub fn open(path: &Path, options: &SqliteOptions) -> Result<SqliteBackend> {
        let store = SqliteStore::open(path, options)?;
        // Opened now, right after the writer, so that both are connections to the same file.
        let reader = SqliteStore::open_reader(path, store.busy_timeout, store.group.clone())?;
        // SAFETY: the probe is declared before the connection, so it is dropped first.
        let probe = unsafe { ChangeProbe::from_connection(&store.conn) };
        Ok(SqliteBackend {
            probe,
            group: store.group.clone(),
            reader: parking_lot::Mutex::new(reader),
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

    fn read_connection(&self) -> Result<Box<dyn StoreGuard + '_>> {
        Ok(Box::new(self.reader.lock()))
    }

    fn change_token(&self) -> Option<Fingerprint> {
        self.probe.as_ref().map(ChangeProbe::fingerprint)
    }

    fn sync_commits(&self, ticket: u64) -> Result<()> {
        self.group.sync_through(ticket)
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
