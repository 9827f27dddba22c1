//! Group commit for SQLite: concurrent changes share one transaction and one `fdatasync` of
//! the WAL.
//!
//! **One transaction for a batch of changes.** A change ([`Store::with_write_lock_deferred`](
//! crate::store::Store)) runs inside a savepoint of the write connection's batch transaction
//! (`BEGIN IMMEDIATE`, `synchronous=NORMAL`), opened by the first change of the batch. When
//! the change hands the connection back while other changes wait for it
//! ([`GroupCommit::waiting`]) and a sync runs ([`GroupCommit::syncing`]), the transaction
//! stays open and the next change continues it; otherwise (or after [`MAX_BATCH`] changes)
//! the change commits it. Every other use of the connection commits an open batch before it
//! starts. A change whose own work fails rolls back its savepoint only; a failed `COMMIT`
//! fails every change of the batch, as does SQLite rolling the batch's transaction back by
//! itself after an error (`SQLITE_FULL`, `SQLITE_IOERR`), which the next change notices
//! before it would join the batch.
//!
//! **One sync for the commits before it.** The commit appends the batch's frames to the WAL
//! with `write()` (safe against a killed process: they are in the page cache) but does not
//! sync them. Each change of the batch then waits in [`GroupCommit::sync_through`] with the
//! batch's ticket: for the commit, then for a sync that started after it — one writer at a
//! time syncs the WAL file, and that one sync covers every batch committed before it started.
//! A change is reported committed only after a sync that covers it has returned.
//!
//! **The disk and the connection work side by side.** While a sync runs, the changes it does
//! not cover wait on a condition variable, not in a queue behind whoever syncs next: when it
//! ends, the changes it covered return at once and one of the others starts the next sync. A
//! batch closes at the end of a turn when no sync is running ([`GroupCommit::syncing`]), even
//! if changes wait for the connection: its sync starts then, and the waiting changes fill the
//! next batch meanwhile, so with many writers one batch syncs while the next one runs instead
//! of all writers doing one then the other.
//!
//! **The work of the changes one sync covers, done once.** A change passes [`SyncHooks`]:
//! `committed` runs once its batch committed (the audit stages the change's records), and
//! `durable` runs on the change that ran a successful sync, with the last ticket it covered,
//! before the changes waiting for it are woken (the audit appends every staged record that
//! sync made durable in one write, so those changes find theirs delivered).
//!
//! Syncing the WAL file from our own descriptor is what `synchronous=FULL` does at commit
//! (SQLite syncs the same file); a checkpoint that moves frames into the database syncs both
//! files before the WAL is reused, so frames that a checkpoint consumed are durable already.

use crate::error::{Error, Result};
use crate::store::SyncHooks;
use parking_lot::{Condvar, Mutex};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// At most this many changes share one transaction (a batch holds the store's write lock
/// against other processes meanwhile).
pub const MAX_BATCH: usize = 32;

/// The group commit shared by the connections of one backend.
#[derive(Debug)]
pub struct GroupCommit {
    wal_path: PathBuf,
    /// The WAL file, opened by the first sync (one sync runs at a time: `syncing`).
    wal: OnceLock<File>,
    /// Whether a sync of the WAL runs now (one at a time).
    syncing: Mutex<bool>,
    /// Signalled whenever a sync ends.
    sync_ended: Condvar,
    /// Tests hold syncs here to order them.
    #[cfg(test)]
    test_gate: tests::SyncGate,
    /// Changes waiting for the write connection (an open batch waits for them).
    waiting: AtomicUsize,
    /// The batches closed so far, and the changes of failed ones still to hear of it.
    closed: Mutex<Closed>,
    /// Signalled whenever a batch closes.
    closed_signal: Condvar,
    /// Every batch up to this ticket is durable.
    synced: AtomicU64,
}

/// Tickets are batch numbers, handed out in commit order (one batch is open at a time).
#[derive(Debug, Default)]
struct Closed {
    /// Every batch up to this ticket has committed or failed; the one being filled, if any,
    /// is `through + 1`.
    through: u64,
    /// Failed batches: the error and how many of their changes have yet to collect it.
    failed: HashMap<u64, (Error, usize)>,
}

impl GroupCommit {
    /// The group commit of the store file at `db` (its WAL is `db` + `-wal`).
    pub fn new(db: &Path) -> GroupCommit {
        let mut wal_path = db.as_os_str().to_owned();
        wal_path.push("-wal");
        GroupCommit {
            wal_path: wal_path.into(),
            wal: OnceLock::new(),
            syncing: Mutex::new(false),
            sync_ended: Condvar::new(),
            #[cfg(test)]
            test_gate: tests::SyncGate::default(),
            waiting: AtomicUsize::new(0),
            closed: Mutex::new(Closed::default()),
            closed_signal: Condvar::new(),
            synced: AtomicU64::new(0),
        }
    }

    /// Counts a change about to wait for the write connection; call [`GroupCommit::arrived`]
    /// as soon as it holds it.
    pub fn waits(&self) {
        self.waiting.fetch_add(1, Ordering::AcqRel);
    }

    /// The change counted by [`GroupCommit::waits`] holds the connection now.
    pub fn arrived(&self) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
    }

    /// Whether a sync of the WAL runs now: while none does, a batch should close at the end
    /// of a turn so that its sync starts at once.
    pub fn syncing(&self) -> bool {
        *self.syncing.lock()
    }

    /// Marks a sync as running (or not) without one, so that a test can hold batches open.
    #[cfg(test)]
    pub fn pretend_syncing(&self, running: bool) {
        *self.syncing.lock() = running;
        self.sync_ended.notify_all();
    }

    /// How many changes wait for the write connection (tests).
    #[cfg(test)]
    pub fn waiting_count(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Whether a change waits for the write connection, so that an open batch should stay
    /// open for it.
    pub fn waiting(&self) -> bool {
        self.waiting.load(Ordering::Acquire) > 0
    }

    /// The ticket of the batch whose transaction has just begun: the one after the last
    /// closed (one batch is open at a time).
    pub fn open_batch(&self) -> u64 {
        self.closed.lock().through + 1
    }

    /// Notes that the open batch `ticket`, holding `changes` changes, committed (`Ok`) or
    /// failed; wakes the changes waiting for it.
    pub fn close_batch(&self, ticket: u64, changes: usize, outcome: &Result<()>) {
        let mut closed = self.closed.lock();
        debug_assert_eq!(closed.through + 1, ticket, "batches close in ticket order");
        closed.through = ticket;
        if let Err(e) = outcome {
            if changes > 0 {
                closed.failed.insert(ticket, (e.clone(), changes));
            }
        }
        drop(closed);
        self.closed_signal.notify_all();
    }

    /// Returns once the batch of `ticket` is durable: waits for its commit, then for a sync
    /// that started after that commit — running one itself when no sync runs. A change that
    /// the running sync covers waits only for it. The error of a failed commit, for each
    /// change of the batch; a failed sync's error for the change that ran it.
    ///
    /// `hooks.committed` runs once the batch committed; `hooks.durable`, on the change that
    /// ran a successful sync, with the last ticket it covered, before the changes waiting for
    /// that sync are woken.
    pub fn sync_through(&self, ticket: u64, hooks: &dyn SyncHooks) -> Result<()> {
        // First the batch's own outcome: a sync covering its ticket does not make a failed
        // batch committed (`synced` counts every batch closed before the sync started).
        self.committed(ticket)?;
        hooks.committed(ticket);
        if self.synced.load(Ordering::Acquire) >= ticket {
            return Ok(());
        }
        let mut syncing = self.syncing.lock();
        loop {
            if self.synced.load(Ordering::Acquire) >= ticket {
                return Ok(());
            }
            if !*syncing {
                break;
            }
            #[cfg(test)]
            self.test_gate.sync_waiters.fetch_add(1, Ordering::AcqRel);
            self.sync_ended.wait(&mut syncing);
            #[cfg(test)]
            self.test_gate.sync_waiters.fetch_sub(1, Ordering::AcqRel);
        }
        *syncing = true;
        drop(syncing);
        // Every batch numbered up to `target` wrote its frames before this sync starts.
        let target = self.closed.lock().through;
        let outcome = self.sync_wal();
        let mut syncing = self.syncing.lock();
        if outcome.is_ok() {
            self.synced.fetch_max(target, Ordering::AcqRel);
        }
        *syncing = false;
        drop(syncing);
        // The waiters are woken even if the hook panics.
        let _wake = WakeOnDrop(&self.sync_ended);
        if outcome.is_ok() {
            hooks.durable(target);
        }
        outcome
    }

    /// One `fdatasync` of the WAL file (opened on first use).
    fn sync_wal(&self) -> Result<()> {
        let file = match self.wal.get() {
            Some(file) => file,
            None => {
                let opened = File::open(&self.wal_path).map_err(|e| self.failed(e))?;
                self.wal.get_or_init(|| opened)
            }
        };
        #[cfg(test)]
        self.test_gate.pass();
        file.sync_data().map_err(|e| self.failed(e))
    }

    /// Waits until the batch of `ticket` has closed; its error if its commit failed.
    fn committed(&self, ticket: u64) -> Result<()> {
        let mut closed = self.closed.lock();
        while closed.through < ticket {
            self.closed_signal.wait(&mut closed);
        }
        let Some((error, left)) = closed.failed.get_mut(&ticket) else {
            return Ok(());
        };
        let error = error.clone();
        *left -= 1;
        if *left == 0 {
            closed.failed.remove(&ticket);
        }
        Err(error)
    }

    fn failed(&self, e: std::io::Error) -> Error {
        Error::storage(format!(
            "cannot sync the store's write-ahead log {}: {e}",
            self.wal_path.display()
        ))
    }
}

/// Wakes every waiter of a condition variable when dropped.
struct WakeOnDrop<'a>(&'a Condvar);

impl Drop for WakeOnDrop<'_> {
    fn drop(&mut self) {
        self.0.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Holds the syncs of a group commit, once closed, until the test lets each one pass.
    #[derive(Debug, Default)]
    pub(super) struct SyncGate {
        state: Mutex<GateState>,
        changed: Condvar,
        /// Changes waiting for a running sync to end.
        pub(super) sync_waiters: AtomicUsize,
    }

    #[derive(Debug, Default)]
    struct GateState {
        closed: bool,
        permits: usize,
        held: usize,
    }

    impl SyncGate {
        /// Called by a sync before it syncs: waits for a permit while the gate is closed.
        pub(super) fn pass(&self) {
            let mut state = self.state.lock();
            if !state.closed {
                return;
            }
            state.held += 1;
            self.changed.notify_all();
            while state.permits == 0 {
                self.changed.wait(&mut state);
            }
            state.permits -= 1;
            state.held -= 1;
            self.changed.notify_all();
        }

        fn close(&self) {
            self.state.lock().closed = true;
        }

        /// Lets one held (or the next) sync go on.
        fn permit_one(&self) {
            self.state.lock().permits += 1;
            self.changed.notify_all();
        }

        /// Waits until a sync is held at the gate.
        fn until_a_sync_is_held(&self) {
            let mut state = self.state.lock();
            while state.held == 0 {
                self.changed.wait(&mut state);
            }
        }
    }

    /// Yields until `n` changes wait for the running sync to end.
    fn until_sync_waiters(group: &GroupCommit, n: usize) {
        while group.test_gate.sync_waiters.load(Ordering::Acquire) < n {
            std::thread::yield_now();
        }
    }

    /// A change covered by the running sync returns when that sync ends, not after the next
    /// one, which a change it does not cover starts meanwhile.
    #[test]
    fn a_change_covered_by_the_running_sync_does_not_wait_for_the_next() {
        let (_dir, group) = group_with_wal();
        group.test_gate.close();
        let group = &group;
        let first = closed_batch(group, 2, Ok(()));
        std::thread::scope(|s| {
            let syncer = s.spawn(move || group.sync_through(first, &()));
            group.test_gate.until_a_sync_is_held();
            assert!(group.syncing());
            let second = closed_batch(group, 1, Ok(()));
            let later = s.spawn(move || group.sync_through(second, &()));
            let covered = s.spawn(move || group.sync_through(first, &()));
            until_sync_waiters(group, 2);
            group.test_gate.permit_one();
            syncer.join().unwrap().unwrap();
            // The first sync ended: the covered change returns while the second sync, which
            // the later change runs, is held at the gate.
            covered.join().unwrap().unwrap();
            group.test_gate.until_a_sync_is_held();
            assert_eq!(group.synced.load(Ordering::Acquire), first);
            assert!(!later.is_finished(), "the second sync is still held");
            group.test_gate.permit_one();
            later.join().unwrap().unwrap();
            assert_eq!(group.synced.load(Ordering::Acquire), second);
            assert!(!group.syncing());
        });
    }

    /// A group commit of a store whose WAL file exists (in a directory dropped with it).
    fn group_with_wal() -> (tempfile::TempDir, GroupCommit) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.db-wal"), b"frames").unwrap();
        let group = GroupCommit::new(&dir.path().join("s.db"));
        (dir, group)
    }

    fn closed_batch(group: &GroupCommit, changes: usize, outcome: Result<()>) -> u64 {
        let ticket = group.open_batch();
        group.close_batch(ticket, changes, &outcome);
        ticket
    }

    #[test]
    fn a_sync_covers_every_batch_before_it_and_no_later_one() {
        let (_dir, group) = group_with_wal();
        let first = closed_batch(&group, 1, Ok(()));
        let second = closed_batch(&group, 1, Ok(()));
        group.sync_through(first, &()).unwrap();
        assert_eq!(
            group.synced.load(Ordering::Acquire),
            second,
            "one sync for both"
        );
        let third = closed_batch(&group, 1, Ok(()));
        assert!(group.synced.load(Ordering::Acquire) < third);
        group.sync_through(third, &()).unwrap();
        assert_eq!(group.synced.load(Ordering::Acquire), third);
    }

    #[test]
    fn a_change_waits_for_the_commit_of_its_batch() {
        let (_dir, group) = group_with_wal();
        let ticket = group.open_batch();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| group.sync_through(ticket, &()));
            // The waiter cannot return before the close below: it would read `through` < ticket.
            group.close_batch(ticket, 1, &Ok(()));
            waiter.join().unwrap().unwrap();
        });
        assert_eq!(group.synced.load(Ordering::Acquire), ticket);
    }

    #[test]
    fn every_change_of_a_failed_batch_gets_its_error_and_later_batches_go_on() {
        let (_dir, group) = group_with_wal();
        let failed = closed_batch(&group, 2, Err(Error::storage("disk full")));
        for _ in 0..2 {
            let err = group.sync_through(failed, &()).unwrap_err();
            assert_eq!(err.code(), crate::ErrorCode::Storage);
            assert!(err.to_string().contains("disk full"), "{err}");
        }
        assert!(group.closed.lock().failed.is_empty(), "collected by both");
        let next = closed_batch(&group, 1, Ok(()));
        group.sync_through(next, &()).unwrap();
    }

    /// A sync that covers a failed batch's ticket (it started after a later batch committed)
    /// does not make the failed batch's changes committed: each still gets its error.
    #[test]
    fn a_failed_batch_fails_its_changes_after_a_later_sync_covered_its_ticket() {
        let (_dir, group) = group_with_wal();
        let failed = closed_batch(&group, 1, Err(Error::storage("disk full")));
        let next = closed_batch(&group, 1, Ok(()));
        group.sync_through(next, &()).unwrap();
        assert!(group.synced.load(Ordering::Acquire) >= failed);
        let err = group.sync_through(failed, &()).unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert!(group.closed.lock().failed.is_empty(), "collected");
    }

    /// Records the hooks' calls.
    #[derive(Default)]
    struct Calls {
        committed: Mutex<Vec<u64>>,
        durable: Mutex<Vec<u64>>,
    }

    impl SyncHooks for Calls {
        fn committed(&self, ticket: u64) {
            self.committed.lock().push(ticket);
        }
        fn durable(&self, through: u64) {
            self.durable.lock().push(through);
        }
    }

    #[test]
    fn the_hooks_hear_of_a_successful_commit_and_of_the_sync_that_made_it_durable() {
        let (_dir, group) = group_with_wal();
        let failed = closed_batch(&group, 1, Err(Error::storage("disk full")));
        let first = closed_batch(&group, 2, Ok(()));
        let second = closed_batch(&group, 1, Ok(()));
        let calls = Calls::default();
        group.sync_through(failed, &calls).unwrap_err();
        assert!(
            calls.committed.lock().is_empty(),
            "a failed batch stages nothing"
        );
        group.sync_through(first, &calls).unwrap();
        assert_eq!(*calls.committed.lock(), [first]);
        assert_eq!(
            *calls.durable.lock(),
            [second],
            "its sync covered both batches"
        );
        // The second batch's change finds it durable: no sync, no durable hook.
        group.sync_through(second, &calls).unwrap();
        assert_eq!(*calls.committed.lock(), [first, second]);
        assert_eq!(*calls.durable.lock(), [second]);
    }

    #[test]
    fn a_failed_sync_makes_nothing_durable_for_the_hooks() {
        let dir = tempfile::tempdir().unwrap();
        let group = GroupCommit::new(&dir.path().join("gone.db"));
        let ticket = closed_batch(&group, 1, Ok(()));
        let calls = Calls::default();
        group.sync_through(ticket, &calls).unwrap_err();
        assert_eq!(*calls.committed.lock(), [ticket]);
        assert!(calls.durable.lock().is_empty());
    }

    #[test]
    fn a_missing_wal_is_a_storage_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let group = GroupCommit::new(&dir.path().join("gone.db"));
        let ticket = closed_batch(&group, 1, Ok(()));
        let err = group.sync_through(ticket, &()).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::Storage);
        assert!(err.to_string().contains("gone.db-wal"), "{err}");
    }
}
