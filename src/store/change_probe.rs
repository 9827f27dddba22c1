//! A lock-free "did anyone commit?" probe for SQLite WAL stores.
//!
//! SQLite's WAL-index (the `-shm` file, format documented at sqlite.org/walformat.html) starts
//! with a header that every commit rewrites: `iChange` (offset 8) counts write transactions,
//! `mxFrame` (offset 16) is the last valid WAL frame and the salts (offset 32) change whenever
//! the WAL restarts. Reading these words from a read-only shared mapping costs a few
//! nanoseconds, so the hot path notices any commit — another process's or its own — without
//! touching SQLite. When the fingerprint moves, the service drops its cached ciphertexts.
//!
//! Safety of the mapping: SQLite truncates the `-shm` file only when it opens the first
//! connection to a database (it holds the "DMS" lock then), which cannot happen while the
//! connection that owns this probe is open; the probe is always dropped before that
//! connection (see `SqliteBackend`).

use memmap2::{Mmap, MmapOptions};
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Offsets of the three 64-bit words that together change on every commit.
const WORD_OFFSETS: [usize; 3] = [8, 16, 32];
/// Bytes of the header that must be mapped.
const HEADER_LEN: usize = 48;

/// The fingerprint of the last commit seen by the probe.
pub type Fingerprint = [u64; 3];

/// A read-only view of the WAL-index header; cheap to clone and share between threads.
#[derive(Clone)]
pub struct ChangeProbe {
    map: Arc<Mmap>,
}

impl ChangeProbe {
    /// Maps the header of `<database>-shm`, if it exists and is initialised.
    pub fn open(database: &Path) -> Option<ChangeProbe> {
        let mut shm = database.as_os_str().to_owned();
        shm.push("-shm");
        let file = File::open(&shm).ok()?;
        if file.metadata().ok()?.len() < HEADER_LEN as u64 {
            return None;
        }
        // SAFETY: the mapping is read-only and the file is never truncated while the owning
        // connection is open (module docs); concurrent writers are read through atomics.
        let map = unsafe { MmapOptions::new().len(HEADER_LEN).map(&file) }.ok()?;
        Some(ChangeProbe { map: Arc::new(map) })
    }

    /// The current fingerprint; it differs from an earlier one after any commit.
    #[inline]
    pub fn fingerprint(&self) -> Fingerprint {
        let base = self.map.as_ptr();
        WORD_OFFSETS.map(|offset| {
            // SAFETY: offsets are 8-byte aligned within the page-aligned, HEADER_LEN-byte
            // mapping; another process writes these words, so they are read atomically.
            let word = unsafe { &*(base.add(offset) as *const AtomicU64) };
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
