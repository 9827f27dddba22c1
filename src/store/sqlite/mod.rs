//! The embedded default backend: one SQLite file in WAL mode with `synchronous=FULL`, whose
//! concurrent changes commit in batches that share one transaction and one sync of the WAL
//! (`group_commit.rs`; the write connection is at `synchronous=NORMAL` from a batch until
//! its next other use).
//!
//! Several processes may open the same file; write transactions start `IMMEDIATE` so two
//! writers queue on the busy timeout instead of deadlocking.
//!
//! This file holds the backend, its connection and the write transaction; `schema.rs` the
//! migrations and the foreign-file check, `rows.rs` the row mapping, `store_impl.rs` the
//! `Store` implementation, whose longer operations live in `secrets.rs`, `keys.rs`,
//! `references.rs` and `dump.rs`.

mod combine;
mod dump;
mod group_commit;
mod keys;
mod references;
mod rows;
mod schema;
mod secrets;
mod store_impl;
mod wal_vfs;

use super::{Backend, ChangeFn, ChangeProbe, ChangeRun, Fingerprint, Store, StoreGuard, SyncHooks};
use crate::error::{Error, ErrorCode, Result};
use combine::Combiner;
use group_commit::{GroupCommit, MAX_BATCH};
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
    /// Inside that transaction, writes whose failure fails the whole change
    /// ([`SqliteStore::unguarded`]): the methods join it without a savepoint each. Cleared
    /// with `write_locked`.
    unguarded: bool,
    /// The group commit that deferred changes join (shared by the backend).
    group: Arc<GroupCommit>,
    /// The batch transaction open on this connection, if any.
    batch: Option<OpenBatch>,
    /// The connection is at `synchronous=NORMAL`: set by a batch and left so between
    /// batches, so that back-to-back batches switch nothing; every other use of the
    /// connection first goes back to `synchronous=FULL` ([`SqliteStore::ready_for_use`]).
    normal_sync: bool,
}

/// A batch transaction of deferred changes left open for the next one (`group_commit.rs`).
#[derive(Debug, Clone, Copy)]
struct OpenBatch {
    ticket: u64,
    /// The changes it holds (their own work done, their savepoints released).
    changes: usize,
}

/// The write transaction of one backend method: its own `BEGIN IMMEDIATE`, or a savepoint
/// inside the transaction that `with_write_lock` holds.
enum WriteTx<'a> {
    Own(rusqlite::Transaction<'a>),
    Nested(Savepoint<'a>),
    /// The held transaction itself, in an [`SqliteStore::unguarded`] stretch: a failure
    /// fails (and rolls back) the whole change anyway.
    Joined(&'a Connection),
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            WriteTx::Own(tx) => tx,
            WriteTx::Nested(savepoint) => savepoint.conn,
            WriteTx::Joined(conn) => conn,
        }
    }
}

impl WriteTx<'_> {
    fn commit(self) -> rusqlite::Result<()> {
        match self {
            WriteTx::Own(tx) => tx.commit(),
            WriteTx::Nested(savepoint) => savepoint.release(),
            WriteTx::Joined(_) => Ok(()),
        }
    }
}

/// A savepoint of one backend method inside a held transaction, rolled back unless
/// released.
struct Savepoint<'a> {
    conn: &'a Connection,
    released: bool,
}

impl<'a> Savepoint<'a> {
    fn new(conn: &'a Connection) -> rusqlite::Result<Savepoint<'a>> {
        begin_savepoint(conn)?;
        Ok(Savepoint {
            conn,
            released: false,
        })
    }

    fn release(mut self) -> rusqlite::Result<()> {
        self.released = true;
        release_savepoint(self.conn)
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        if !self.released {
            undo_savepoint(self.conn);
        }
    }
}

// Savepoints: a change's (`run_in_batch`) and its methods' (`Savepoint`) inside it. Nested
// ones share the name (SQLite releases or rolls back the innermost of that name), and their
// statements are prepared once per connection: a change makes several, and parsing them each
// time was a measurable part of a create.

fn begin_savepoint(conn: &Connection) -> rusqlite::Result<()> {
    run_cached(conn, "SAVEPOINT tbs")
}

fn release_savepoint(conn: &Connection) -> rusqlite::Result<()> {
    run_cached(conn, "RELEASE tbs")
}

/// Rolls back the innermost savepoint and ends it. Some errors (a full disk, an I/O error)
/// make SQLite roll back the whole transaction already: then there is none to undo.
fn undo_savepoint(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = run_cached(conn, "ROLLBACK TO tbs").and_then(|()| release_savepoint(conn));
    }
}

/// Runs one statement that returns no rows, prepared once per connection.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    execute_cached(conn, sql, []).map(|_| ())
}

/// `Connection::execute` with the statement prepared once per connection: a change runs the
/// same few statements each time, and parsing them anew was a measurable part of a create.
fn execute_cached(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// `Connection::query_row` with the statement prepared once per connection.
fn query_row_cached<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
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
        let conn = open_connection(path, flags)?;
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
        conn.set_prepared_statement_cache_capacity(128);
        let mut backend = SqliteStore {
            conn,
            busy_timeout: options.busy_timeout,
            write_locked: false,
            unguarded: false,
            group: Arc::new(GroupCommit::new(path)),
            batch: None,
            normal_sync: false,
        };
        backend.migrate()?;
        Ok(backend)
    }

    /// A read-only connection to a store that [`SqliteStore::open`] opened (and migrated):
    /// it reads committed data while another connection writes (WAL).
    fn open_reader(
        path: &Path,
        busy_timeout: Duration,
        group: Arc<GroupCommit>,
    ) -> Result<SqliteStore> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = open_connection(path, flags)?;
        conn.busy_timeout(busy_timeout)?;
        conn.execute_batch("PRAGMA query_only=1; PRAGMA foreign_keys=ON;")?;
        conn.set_prepared_statement_cache_capacity(128);
        Ok(SqliteStore {
            conn,
            busy_timeout,
            write_locked: false,
            unguarded: false,
            group,
            batch: None,
            normal_sync: false,
        })
    }

    fn write_tx(&mut self) -> Result<WriteTx<'_>> {
        if self.write_locked && self.conn.is_autocommit() {
            // SQLite rolled the held transaction back after an error (SQLITE_FULL,
            // SQLITE_IOERR, ...) that the change went on from: a savepoint now would begin a
            // transaction of its own and commit this write alone.
            return Err(Error::storage(
                "SQLite rolled back the change's transaction after an error: nothing of it committed",
            ));
        }
        Ok(if self.write_locked && self.unguarded {
            WriteTx::Joined(&self.conn)
        } else if self.write_locked {
            WriteTx::Nested(Savepoint::new(&self.conn)?)
        } else {
            WriteTx::Own(
                self.conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)?,
            )
        })
    }

    /// Runs `f`, writes in the transaction `with_write_lock` holds whose every failure the
    /// caller turns into the failure of the whole change (its transaction, or its savepoint
    /// in a batch, is rolled back): the methods `f` calls go without a savepoint each.
    pub(super) fn unguarded<R>(&mut self, f: impl FnOnce(&mut SqliteStore) -> R) -> R {
        let outer = std::mem::replace(&mut self.unguarded, true);
        let outcome = f(self);
        self.unguarded = outer;
        outcome
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
        // The transaction's state ends with it, a panic in an unguarded stretch included.
        self.write_locked = false;
        self.unguarded = false;
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

/// The batch transactions of deferred changes (`group_commit.rs`).
impl SqliteStore {
    /// Runs `f` as one change of the open batch transaction (opening one if none is), in a
    /// savepoint that a failure of `f` rolls back alone. The batch's ticket; a panic of `f`
    /// comes back as the outer `Err`, its savepoint rolled back, for the caller to resume once
    /// it has ended its turn on the batch.
    fn run_in_batch(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Store) -> Result<()>,
    ) -> std::thread::Result<Result<u64>> {
        if self.batch.is_some() && self.conn.is_autocommit() {
            // SQLite rolled the batch back after an error (SQLITE_FULL, SQLITE_IOERR, ...):
            // its changes hear of it, and this one starts a new batch. (A savepoint here
            // would begin a transaction of its own, committed on release.)
            self.end_batch();
        }
        let ticket = match self.batch {
            Some(batch) => batch.ticket,
            None => match self.begin_batch() {
                Ok(ticket) => ticket,
                Err(e) => return Ok(Err(e)),
            },
        };
        if let Err(e) = begin_savepoint(&self.conn) {
            return Ok(Err(e.into()));
        }
        self.write_locked = true;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        // The transaction's state ends with it, a panic in an unguarded stretch included.
        self.write_locked = false;
        self.unguarded = false;
        let done = match outcome {
            Ok(Ok(())) => release_savepoint(&self.conn).map_err(Error::from),
            Ok(Err(e)) => Err(e),
            Err(panic) => {
                undo_savepoint(&self.conn);
                return Err(panic);
            }
        };
        Ok(match done {
            Ok(()) => {
                if let Some(batch) = self.batch.as_mut() {
                    batch.changes += 1;
                }
                Ok(ticket)
            }
            Err(e) => {
                undo_savepoint(&self.conn);
                Err(e)
            }
        })
    }

    /// Starts a batch transaction: `synchronous=NORMAL` (the changes' waiters sync the WAL),
    /// `BEGIN IMMEDIATE`. Its ticket.
    fn begin_batch(&mut self) -> Result<u64> {
        if !self.normal_sync {
            // Switching costs a statement's parse each time (SQLite applies a PRAGMA while
            // preparing it), so the connection stays at NORMAL until another use.
            run_cached(&self.conn, "PRAGMA synchronous=NORMAL")?;
            self.normal_sync = true;
        }
        run_cached(&self.conn, "BEGIN IMMEDIATE")?;
        let ticket = self.group.open_batch();
        self.batch = Some(OpenBatch { ticket, changes: 0 });
        Ok(ticket)
    }

    /// Commits the open batch, if any, and tells its changes the outcome (the connection
    /// stays at `synchronous=NORMAL` for the next batch).
    fn end_batch(&mut self) {
        let Some(batch) = self.batch.take() else {
            return;
        };
        let outcome = if self.conn.is_autocommit() {
            Err(Error::storage(
                "SQLite rolled back the transaction of a batch of changes after an error: none of them committed",
            ))
        } else {
            run_cached(&self.conn, "COMMIT").map_err(|e| {
                self.rollback_held();
                Error::from(e)
            })
        };
        self.group
            .close_batch(batch.ticket, batch.changes, &outcome);
    }

    /// Makes the write connection ready for any use but a deferred change: commits an open
    /// batch, and makes sure commits sync again (`synchronous=FULL`).
    fn ready_for_use(&mut self) -> Result<()> {
        self.end_batch();
        if self.normal_sync {
            run_cached(&self.conn, "PRAGMA synchronous=FULL")?;
            self.normal_sync = false;
        }
        Ok(())
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.end_batch();
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

/// Opens a connection to the store file through the VFS that writes a commit's WAL frames
/// in one write (`wal_vfs.rs`).
fn open_connection(path: &Path, flags: OpenFlags) -> Result<Connection> {
    let vfs = wal_vfs::vfs_name().map_err(Error::storage)?;
    Ok(Connection::open_with_flags_and_vfs(path, flags, vfs)?)
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
    group: Arc<GroupCommit>,
    /// Deferred changes queue here for the one running them on `conn` (`combine.rs`).
    combiner: Combiner,
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
            combiner: Combiner::default(),
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
        let mut writer = self.conn.lock();
        writer.ready_for_use()?;
        Ok(Box::new(writer))
    }

    fn try_connection(&self) -> Option<Box<dyn StoreGuard + '_>> {
        let mut writer = self.conn.try_lock()?;
        writer.ready_for_use().ok()?;
        Some(Box::new(writer))
    }

    fn change_connection(&self) -> Result<Box<dyn StoreGuard + '_>> {
        // Counted while waiting, so that the change holding the connection leaves its batch
        // open for this one.
        self.group.waits();
        let writer = self.conn.lock();
        self.group.arrived();
        Ok(Box::new(writer))
    }

    /// Runs the change through the combiner: the change holding the write connection runs
    /// the changes queued meanwhile, so the connection does not change hands between them.
    fn run_change(
        &self,
        scope: &str,
        change: &mut ChangeFn<'_>,
        anywhere: &dyn Fn() -> bool,
    ) -> Result<ChangeRun<'_>> {
        let ticket = self
            .combiner
            .run(scope, change, anywhere, &self.conn, &self.group)?;
        // The write connection is never inside another change between two changes' turns.
        ticket
            .map(ChangeRun::Deferred)
            .ok_or_else(|| Error::internal("a change ran inside another change's transaction"))
    }

    fn read_connection(&self) -> Result<Box<dyn StoreGuard + '_>> {
        Ok(Box::new(self.reader.lock()))
    }

    fn change_token(&self) -> Option<Fingerprint> {
        self.probe.as_ref().map(ChangeProbe::fingerprint)
    }

    fn sync_commits(&self, ticket: u64, hooks: &dyn SyncHooks) -> Result<()> {
        self.group.sync_through(ticket, hooks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ChangeClose;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn backend(dir: &tempfile::TempDir) -> SqliteBackend {
        SqliteBackend::open(&dir.path().join("batch.db"), &SqliteOptions::default()).unwrap()
    }

    /// One deferred change setting metadata `key`; its batch's ticket.
    fn change(backend: &SqliteBackend, key: &str) -> Result<Option<u64>> {
        let mut conn = backend.change_connection()?;
        conn.store()
            .with_write_lock_deferred(key, &mut |tx| tx.put_meta(key, b"v"))
    }

    /// Makes the batch see (or no longer see) a change waiting for the writer while a sync
    /// runs: the two conditions under which it stays open at the end of a turn.
    fn others_wait_during_a_sync(backend: &SqliteBackend, waiting: bool) {
        if waiting {
            backend.group.waits();
        } else {
            backend.group.arrived();
        }
        backend.group.pretend_syncing(waiting);
    }

    /// A batch closes at the end of a turn when no sync runs, even while a change waits for
    /// the writer: its sync can start at once, and the waiting change opens the next batch.
    #[test]
    fn a_batch_closes_while_others_wait_when_no_sync_runs() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        backend.group.waits();
        let first = change(&backend, "a").unwrap().unwrap();
        assert!(committed(&backend, "a"), "committed at the end of its turn");
        backend.group.pretend_syncing(true);
        let second = change(&backend, "b").unwrap().unwrap();
        assert!(second > first, "a new batch");
        assert!(!committed(&backend, "b"), "left open while a sync runs");
        backend.group.pretend_syncing(false);
        let third = change(&backend, "c").unwrap().unwrap();
        assert_eq!(third, second, "joins the open batch and commits it");
        assert!(committed(&backend, "c"));
        backend.group.arrived();
        backend.sync_commits(third, &()).unwrap();
    }

    /// One deferred change through `run_change` setting metadata `key`, whose work first
    /// waits for `gate.1` after raising `gate.0`; its ticket.
    fn run_change(
        backend: &SqliteBackend,
        key: &str,
        gate: Option<(&AtomicBool, &AtomicBool)>,
    ) -> Result<u64> {
        let mut work = |tx: &mut dyn Store| {
            if let Some((started, release)) = gate {
                started.store(true, Ordering::Release);
                while !release.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
            }
            tx.put_meta(key, b"v")
        };
        match backend.run_change(key, &mut work, &|| true)? {
            ChangeRun::Deferred(ticket) => Ok(ticket),
            ChangeRun::Durable(_) => Err(Error::internal("SQLite defers every change")),
        }
    }

    /// Changes that queue while another holds the writer run in its turn, each in its own
    /// savepoint of the batch that stays open for them while a sync runs, and each comes
    /// back with that batch's ticket; the last one commits it.
    #[test]
    fn changes_queued_behind_the_combiner_join_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        backend.group.pretend_syncing(true);
        let (started, release) = (AtomicBool::new(false), AtomicBool::new(false));
        let tickets = std::thread::scope(|s| {
            let first = s.spawn(|| run_change(&backend, "a", Some((&started, &release))));
            while !started.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            let queued = ["b", "c"].map(|key| {
                let queued = s.spawn(|| run_change(&backend, key, None));
                while backend.group.waiting_count() < 1 + (key == "c") as usize {
                    std::thread::yield_now();
                }
                queued
            });
            assert!(
                !committed(&backend, "a"),
                "the first change is still running"
            );
            release.store(true, Ordering::Release);
            let first = first.join().unwrap().unwrap();
            let [b, c] = queued.map(|t| t.join().unwrap().unwrap());
            [first, b, c]
        });
        assert!(
            tickets.iter().all(|t| *t == tickets[0]),
            "one batch: {tickets:?}"
        );
        for key in ["a", "b", "c"] {
            assert!(
                committed(&backend, key),
                "{key}: the last change committed the batch"
            );
        }
        backend.group.pretend_syncing(false);
        backend.sync_commits(tickets[0], &()).unwrap();
        let next = run_change(&backend, "d", None).unwrap();
        assert!(next > tickets[0], "a new batch");
    }

    /// The write connection's `PRAGMA synchronous` (1 NORMAL, 2 FULL), read on `guard`.
    fn synchronous(guard: &parking_lot::MutexGuard<'_, SqliteStore>) -> i64 {
        guard
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    }

    /// Batches leave the write connection at NORMAL for the next batch; any other use of it
    /// goes back to FULL first, so its commits sync as they did.
    #[test]
    fn the_writer_is_back_at_full_sync_for_any_use_but_a_batch() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        assert_eq!(synchronous(&backend.conn.lock()), 2, "FULL once opened");
        let first = change(&backend, "a").unwrap().unwrap();
        backend.sync_commits(first, &()).unwrap();
        assert_eq!(synchronous(&backend.conn.lock()), 1, "NORMAL after a batch");
        let second = change(&backend, "b").unwrap().unwrap();
        assert!(second > first);
        backend.sync_commits(second, &()).unwrap();
        drop(backend.connection().unwrap());
        assert_eq!(synchronous(&backend.conn.lock()), 2, "FULL for another use");
        drop(backend.try_connection().unwrap());
        assert_eq!(synchronous(&backend.conn.lock()), 2);
        let third = change(&backend, "c").unwrap().unwrap();
        backend.sync_commits(third, &()).unwrap();
        drop(backend.try_connection().unwrap());
        assert_eq!(
            synchronous(&backend.conn.lock()),
            2,
            "FULL after try_connection"
        );
        assert!(committed(&backend, "a") && committed(&backend, "b") && committed(&backend, "c"));
    }

    /// Whether the read-only connection sees metadata `key` (committed).
    fn committed(backend: &SqliteBackend, key: &str) -> bool {
        let mut reader = backend.read_connection().unwrap();
        reader.store().meta(key).unwrap().is_some()
    }

    #[test]
    fn changes_share_one_transaction_while_another_waits_and_the_last_commits_it() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        others_wait_during_a_sync(&backend, true);
        let first = change(&backend, "a").unwrap().unwrap();
        assert!(
            !committed(&backend, "a"),
            "left open for the waiting change"
        );
        let second = change(&backend, "b").unwrap().unwrap();
        assert_eq!(first, second, "one batch");
        others_wait_during_a_sync(&backend, false);
        let last = change(&backend, "c").unwrap().unwrap();
        assert_eq!(first, last, "the last change joins and commits the batch");
        for key in ["a", "b", "c"] {
            assert!(committed(&backend, key), "{key}");
        }
        backend.sync_commits(first, &()).unwrap();
        assert!(
            change(&backend, "d").unwrap().unwrap() > first,
            "a new batch"
        );
    }

    #[test]
    fn a_failed_change_rolls_back_alone_and_the_next_use_of_the_writer_commits_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        others_wait_during_a_sync(&backend, true);
        let ticket = change(&backend, "kept").unwrap().unwrap();
        let failed = backend
            .change_connection()
            .unwrap()
            .store()
            .with_write_lock_deferred("failed", &mut |tx| {
                tx.put_meta("failed", b"v")?;
                Err(Error::invalid("the change's own check fails"))
            })
            .unwrap_err();
        assert_eq!(failed.code(), ErrorCode::InvalidArgument);
        others_wait_during_a_sync(&backend, false);
        assert!(!committed(&backend, "kept"), "the batch is still open");
        // Any other use of the writer commits the open batch before it starts.
        backend
            .connection()
            .unwrap()
            .store()
            .put_meta("own", b"v")
            .unwrap();
        assert!(committed(&backend, "kept"));
        assert!(
            !committed(&backend, "failed"),
            "its savepoint was rolled back"
        );
        assert!(committed(&backend, "own"));
        backend.sync_commits(ticket, &()).unwrap();
    }

    /// SQLite rolls a whole transaction back by itself after some errors (SQLITE_FULL,
    /// SQLITE_IOERR, ...). The changes the batch held before are gone: they hear of it, and
    /// the next change opens a new batch instead of a savepoint that would begin (and
    /// commit) a transaction of its own under the dead batch's ticket.
    #[test]
    fn a_batch_sqlite_rolled_back_fails_its_changes_and_the_next_change_opens_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        others_wait_during_a_sync(&backend, true);
        let lost = change(&backend, "lost").unwrap().unwrap();
        // What SQLite does after a disk-full error inside the transaction.
        backend.conn.lock().conn.execute_batch("ROLLBACK").unwrap();
        let next = change(&backend, "next").unwrap().unwrap();
        others_wait_during_a_sync(&backend, false);
        backend.connection().unwrap(); // ends any open batch
        assert!(next > lost, "a new batch");
        let err = backend.sync_commits(lost, &()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Storage, "{err}");
        assert!(!committed(&backend, "lost"));
        backend.sync_commits(next, &()).unwrap();
        assert!(committed(&backend, "next"));
    }

    /// A change that goes on after SQLite rolled its transaction back (an error it ignored)
    /// cannot write outside it: each later write is STORAGE, and nothing reaches the file.
    #[test]
    fn no_write_of_a_change_runs_after_sqlite_rolled_its_transaction_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            SqliteStore::open(&dir.path().join("s.db"), &SqliteOptions::default()).unwrap();
        let outcome = store.run_write_locked(&mut |tx| {
            tx.put_meta("before", b"v")?;
            Ok(())
        });
        outcome.unwrap();
        store.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        store.write_locked = true;
        store.put_meta("lost", b"v").unwrap();
        // What SQLite does after a disk-full error inside the transaction.
        store.conn.execute_batch("ROLLBACK").unwrap();
        let err = store.put_meta("after", b"v").unwrap_err();
        assert_eq!(err.code(), ErrorCode::Storage, "{err}");
        store.write_locked = false;
        assert!(store.conn.is_autocommit(), "no transaction began");
        assert_eq!(store.meta("after").unwrap(), None);
        assert_eq!(store.meta("lost").unwrap(), None);
        assert!(store.meta("before").unwrap().is_some());
    }

    #[test]
    fn a_panicking_change_rolls_back_alone_and_its_panic_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        others_wait_during_a_sync(&backend, true);
        let ticket = change(&backend, "kept").unwrap().unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            backend
                .change_connection()
                .unwrap()
                .store()
                .with_write_lock_deferred("panics", &mut |tx| {
                    tx.put_meta("panics", b"v")?;
                    panic!("a bug in the change");
                })
        }));
        assert!(panicked.is_err(), "the panic reaches the caller");
        others_wait_during_a_sync(&backend, false);
        drop(backend.connection().unwrap());
        assert!(committed(&backend, "kept"), "the batch survived the panic");
        assert!(
            !committed(&backend, "panics"),
            "its savepoint was rolled back"
        );
        backend.sync_commits(ticket, &()).unwrap();
    }

    /// The close of a change `key` that pushes outbox rows `seqs` in order after its own
    /// write of `key` (no seals; the state row under `key` too).
    fn change_closing_with(
        backend: &SqliteBackend,
        key: &str,
        seqs: &[u64],
    ) -> Result<Option<u64>> {
        let outbox: Vec<(u64, String)> = seqs
            .iter()
            .map(|seq| (*seq, format!("line {seq}")))
            .collect();
        let mut conn = backend.change_connection()?;
        conn.store().with_write_lock_deferred(key, &mut |tx| {
            tx.put_meta(key, b"v")?;
            tx.close_change(&ChangeClose {
                seals: &[],
                seal_seq: 1,
                outbox: &outbox,
                prune_through: None,
                state: (key, b"state"),
            })
        })
    }

    fn outbox_seqs(backend: &SqliteBackend) -> Vec<u64> {
        let mut reader = backend.read_connection().unwrap();
        let rows = reader.store().outbox_after(0, 100).unwrap();
        rows.into_iter().map(|(seq, _)| seq).collect()
    }

    /// The close of a change writes without a savepoint per statement: a write of it that
    /// fails after others succeeded rolls back the whole change — its own work and the
    /// close's earlier writes — and the other changes of its batch still commit.
    #[test]
    fn a_close_that_fails_half_way_rolls_back_its_whole_change_and_only_it() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        let first = change_closing_with(&backend, "first", &[7])
            .unwrap()
            .unwrap();
        backend.sync_commits(first, &()).unwrap();
        others_wait_during_a_sync(&backend, true);
        let kept = change(&backend, "kept").unwrap().unwrap();
        // Row 8 goes in, then row 7 is a duplicate key.
        let err = change_closing_with(&backend, "failed", &[8, 7]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Storage, "{err}");
        let after = change(&backend, "after").unwrap().unwrap();
        assert_eq!(after, kept, "the batch went on");
        others_wait_during_a_sync(&backend, false);
        drop(backend.connection().unwrap());
        backend.sync_commits(after, &()).unwrap();
        assert!(committed(&backend, "kept") && committed(&backend, "after"));
        assert!(!committed(&backend, "failed"), "its own write rolled back");
        assert_eq!(outbox_seqs(&backend), [7], "and the close's first row");
    }

    /// The same outside a batch (a change that commits on its own), and the unguarded stretch
    /// ends with the change even when it panics.
    #[test]
    fn a_failed_or_panicking_close_outside_a_batch_leaves_nothing_and_no_unguarded_state() {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            SqliteStore::open(&dir.path().join("s.db"), &SqliteOptions::default()).unwrap();
        store.outbox_push(7, "line 7").unwrap();
        let err = store
            .run_write_locked(&mut |tx| {
                tx.put_meta("failed", b"v")?;
                tx.close_change(&ChangeClose {
                    seals: &[],
                    seal_seq: 1,
                    outbox: &[(8, "line 8".to_owned()), (7, "again".to_owned())],
                    prune_through: None,
                    state: ("failed", b"state"),
                })
            })
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Storage, "{err}");
        assert_eq!(store.meta("failed").unwrap(), None);
        let rows = store.outbox_after(0, 100).unwrap();
        assert_eq!(rows, [(7, "line 7".to_owned())]);
        // A panic inside the change ends the unguarded stretch with its transaction.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.unguarded(|s| s.run_write_locked(&mut |_| panic!("a bug in the change")))
        }));
        assert!(panicked.is_err(), "the panic reaches the caller");
        assert!(!store.unguarded && !store.write_locked);
    }

    #[test]
    fn a_batch_commits_after_max_batch_changes_even_while_others_wait() {
        let dir = tempfile::tempdir().unwrap();
        let backend = backend(&dir);
        others_wait_during_a_sync(&backend, true);
        let tickets: Vec<u64> = (0..=MAX_BATCH)
            .map(|i| change(&backend, &format!("k{i}")).unwrap().unwrap())
            .collect();
        assert!(tickets[..MAX_BATCH].iter().all(|t| *t == tickets[0]));
        assert!(committed(&backend, &format!("k{}", MAX_BATCH - 1)));
        assert!(
            tickets[MAX_BATCH] > tickets[0],
            "the next change opens a new batch"
        );
        assert!(!committed(&backend, &format!("k{MAX_BATCH}")));
        others_wait_during_a_sync(&backend, false);
        drop(backend.connection().unwrap());
        assert!(committed(&backend, &format!("k{MAX_BATCH}")));
    }

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
