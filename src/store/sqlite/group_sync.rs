//! Group commit for SQLite: concurrent writers share one `fdatasync` of the WAL.
//!
//! A change committed through [`Store::with_write_lock_deferred`](crate::store::Store) runs
//! its transaction with `synchronous=NORMAL`: the commit appends its frames to the WAL with
//! `write()` (safe against a killed process: they are in the page cache) but does not sync
//! them. The writer then releases the connection and calls [`GroupSync::sync_through`] with
//! the ticket of its commit: one writer at a time syncs the WAL file, and that one sync
//! covers every commit whose frames were written before it started — the writers that
//! queued behind it find their ticket covered and return at once. A change is reported
//! committed only after a sync that covers it has returned.
//!
//! Syncing the WAL file from our own descriptor is what `synchronous=FULL` does at commit
//! (SQLite syncs the same file); a checkpoint that moves frames into the database syncs both
//! files before the WAL is reused, so frames that a checkpoint consumed are durable already.

use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The WAL sync shared by the connections of one backend.
#[derive(Debug)]
pub struct GroupSync {
    wal_path: PathBuf,
    /// The WAL file, opened on first use; held by the writer that syncs.
    wal: Mutex<Option<File>>,
    /// Tickets handed out: one per deferred commit, in commit order.
    committed: AtomicU64,
    /// Every ticket up to this one is durable.
    synced: AtomicU64,
}

impl GroupSync {
    /// The group sync of the store file at `db` (its WAL is `db` + `-wal`).
    pub fn new(db: &Path) -> GroupSync {
        let mut wal_path = db.as_os_str().to_owned();
        wal_path.push("-wal");
        GroupSync {
            wal_path: wal_path.into(),
            wal: Mutex::new(None),
            committed: AtomicU64::new(0),
            synced: AtomicU64::new(0),
        }
    }

    /// Notes a commit whose frames are written (call right after `COMMIT` returns): the ticket
    /// to wait for.
    pub fn committed(&self) -> u64 {
        self.committed.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Returns once the commit of `ticket` is durable: syncs the WAL unless a sync that
    /// started after that commit has completed already.
    pub fn sync_through(&self, ticket: u64) -> Result<()> {
        if self.synced.load(Ordering::Acquire) >= ticket {
            return Ok(());
        }
        let mut wal = self.wal.lock();
        // Whoever held the lock before may have covered us.
        if self.synced.load(Ordering::Acquire) >= ticket {
            return Ok(());
        }
        // Every commit numbered up to `target` wrote its frames before this sync starts.
        let target = self.committed.load(Ordering::Acquire);
        let file = match wal.as_mut() {
            Some(file) => file,
            None => wal.insert(File::open(&self.wal_path).map_err(|e| self.failed(e))?),
        };
        file.sync_data().map_err(|e| self.failed(e))?;
        self.synced.fetch_max(target, Ordering::AcqRel);
        Ok(())
    }

    fn failed(&self, e: std::io::Error) -> Error {
        Error::storage(format!(
            "cannot sync the store's write-ahead log {}: {e}",
            self.wal_path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_covers_every_commit_before_it_and_no_later_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        std::fs::write(dir.path().join("s.db-wal"), b"frames").unwrap();
        let sync = GroupSync::new(&db);
        let first = sync.committed();
        let second = sync.committed();
        sync.sync_through(first).unwrap();
        assert_eq!(
            sync.synced.load(Ordering::Acquire),
            second,
            "one sync for both"
        );
        let third = sync.committed();
        assert!(sync.synced.load(Ordering::Acquire) < third);
        sync.sync_through(third).unwrap();
        assert_eq!(sync.synced.load(Ordering::Acquire), third);
    }

    #[test]
    fn a_missing_wal_is_a_storage_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let sync = GroupSync::new(&dir.path().join("gone.db"));
        let ticket = sync.committed();
        let err = sync.sync_through(ticket).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::Storage);
        assert!(err.to_string().contains("gone.db-wal"), "{err}");
    }
}
