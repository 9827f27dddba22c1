//! A lock-free "did anyone commit?" probe for SQLite WAL stores.
//!
//! SQLite's WAL-index (the `-shm` file, format documented at sqlite.org/walformat.html) starts
//! with a header that every commit rewrites: `iChange` (offset 8) counts write transactions,
//! `mxFrame` (offset 16) is the last valid WAL frame and the salts (offset 32) change whenever
//! the WAL restarts. Reading these words from a read-only shared mapping costs a few
//! nanoseconds, so the hot path notices any commit — another process's or its own — without
//! touching SQLite. When the fingerprint moves, the service drops its cached ciphertexts.
//!
//! The header is read through SQLite's own mapping of the WAL-index (region 0, obtained from
//! the connection's VFS file with `xShmMap`), never through a file descriptor of our own:
//! closing any descriptor of the `-shm` file would drop every POSIX lock this process holds on
//! it — SQLite's "DMS" lock included — after which the next process to open the store thinks
//! it is the first, truncates the `-shm` file and every mapping of it raises SIGBUS.
//!
//! SQLite keeps region 0 mapped while any connection of this process uses the store; the
//! probe is created from, and always dropped before, the connection that owns it (see
//! `SqliteBackend`).

use rusqlite::ffi;
use std::os::raw::{c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};

/// Offsets of the three 64-bit words that together change on every commit.
const WORD_OFFSETS: [usize; 3] = [8, 16, 32];
/// Size of a WAL-index region, as SQLite maps it.
const REGION_BYTES: c_int = 32 * 1024;

/// The fingerprint of the last commit seen by the probe.
pub type Fingerprint = [u64; 3];

/// A read-only view of the WAL-index header; shared by the threads of one backend.
pub struct ChangeProbe {
    header: *const u8,
}

// SAFETY: the header is SQLite's shared mapping, read only through atomics; it stays mapped
// while the owning connection is open, which outlives the probe (module docs).
unsafe impl Send for ChangeProbe {}
// SAFETY: as above: concurrent readers only perform atomic loads.
unsafe impl Sync for ChangeProbe {}

impl ChangeProbe {
    /// The WAL-index header of `conn`'s main database, if SQLite has mapped it (it has after
    /// the first read of a WAL database).
    ///
    /// # Safety
    /// The probe must be dropped before `conn` is closed.
    pub unsafe fn from_connection(conn: &rusqlite::Connection) -> Option<ChangeProbe> {
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: a live connection handle; FILE_POINTER writes one pointer to `file`.
        let rc = unsafe {
            ffi::sqlite3_file_control(
                conn.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_FILE_POINTER,
                (&mut file as *mut *mut ffi::sqlite3_file).cast::<c_void>(),
            )
        };
        if rc != ffi::SQLITE_OK || file.is_null() {
            return None;
        }
        // SAFETY: SQLite returned a live file object of the open connection.
        let methods = unsafe { (*file).pMethods.as_ref() }?;
        if methods.iVersion < 2 {
            return None;
        }
        let shm_map = methods.xShmMap?;
        let mut region: *mut c_void = std::ptr::null_mut();
        // SAFETY: region 0 without extending: returns SQLite's existing mapping or NULL.
        let rc = unsafe { shm_map(file, 0, REGION_BYTES, 0, &mut region) };
        if rc != ffi::SQLITE_OK || region.is_null() {
            return None;
        }
        Some(ChangeProbe {
            header: region.cast::<u8>().cast_const(),
        })
    }

    /// The current fingerprint; it differs from an earlier one after any commit.
    #[inline]
    pub fn fingerprint(&self) -> Fingerprint {
        WORD_OFFSETS.map(|offset| {
            // SAFETY: offsets are 8-byte aligned within the page-aligned region of 32 KiB;
            // other processes write these words, so they are read atomically.
            let word = unsafe { &*(self.header.add(offset) as *const AtomicU64) };
            word.load(Ordering::Acquire)
        })
    }
}

/// The last fingerprint a reader acted on, shared by the threads of one handle.
#[derive(Default)]
pub struct SeenFingerprint([AtomicU64; 3]);

impl SeenFingerprint {
    /// Whether `current` differs from the recorded fingerprint.
    #[inline]
    pub fn differs(&self, current: &Fingerprint) -> bool {
        self.0
            .iter()
            .zip(current)
            .any(|(seen, now)| seen.load(Ordering::Acquire) != *now)
    }

    /// Records `current` as seen.
    pub fn record(&self, current: &Fingerprint) {
        for (seen, now) in self.0.iter().zip(current) {
            seen.store(*now, Ordering::Release);
        }
    }
}
