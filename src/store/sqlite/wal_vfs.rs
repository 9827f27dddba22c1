//! A VFS over SQLite's default one that writes a commit's WAL frames with one `write()`.
//!
//! **Why.** SQLite appends a commit to the WAL one frame at a time, and each frame as two
//! writes: its 24-byte header, then the page. A create dirties 5–15 pages, so its commit cost
//! 10–30 `pwrite`s, each a system call that also updates the file's times under the inode
//! lock. Under group commit that write phase ran while no sync could start: 26–77 µs of the
//! ~150 µs between one sync of the WAL and the next, in a traced run.
//!
//! **What.** The store's connections open their files through this VFS ([`vfs_name`]). It
//! hands every file but a WAL to the default VFS untouched. A WAL file gets a write buffer:
//! - A write that continues the last one (the next frame's header or page, or the WAL's own
//!   header at offset 0) goes into the buffer, which goes to the file in one write before it
//!   would outgrow [`MAX_BUFFER`].
//! - A commit frame's header (a frame header carrying the database size) marks the write
//!   after it, the commit frame's page, as the commit's last: with it the buffer goes to the
//!   file. So a commit's frames are in the file (the page cache) before SQLite publishes the
//!   commit in the WAL index, as they were before; readers of other connections and
//!   processes only read published frames. The mark outlives a flush in between (when the
//!   header filled one buffer and the page starts the next).
//! - A write that does not continue the last one goes straight to the file, after the
//!   buffer: a frame rewritten in place, the checksums rewritten at commit (which end with
//!   the commit frame's header, and no page follows it), the first frame after another
//!   connection's commit (whose page is then marked as above if it is a commit frame's).
//! - Any other use of the file first writes the buffer out: a read (SQLite re-reads frames of
//!   its own open transaction), a sync, a truncation, a size query, a file control, the
//!   close.
//! - A WAL without power-safe overwrite is written straight: SQLite would pad its synced
//!   commits with copies of the commit frame and sync in the middle of one.
//!
//! A process that dies with frames in the buffer loses only frames of a commit it had not
//! published, as if it had died just before writing them. A failed buffered write is
//! reported by the write that flushed it (the commit's, which SQLite then fails), and the
//! buffer is dropped.

use rusqlite::ffi;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};
use std::sync::OnceLock;

/// The VFS's registered name.
const NAME: &CStr = c"tbsecrets-wal-coalescing";

/// The buffer goes to the file before it would grow past this, so a large transaction's
/// frames go in pieces of at most this size: the unix VFS writes at most 2^17 - 1 bytes per
/// call (it masks a larger size to its low 17 bits).
const MAX_BUFFER: usize = (1 << 17) - 1;

/// A WAL frame's header: page number, then the database size in pages (non-zero only in a
/// commit frame), salts and checksums.
const FRAME_HEADER: usize = 24;

/// The name to open the store's connections with, registering the VFS on first use.
pub fn vfs_name() -> Result<&'static str, String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED.get_or_init(register).clone()?;
    NAME.to_str().map_err(|e| e.to_string())
}

/// Where a WAL's file of the default VFS lives inside the allocation SQLite makes for ours
/// (after our [`WalFile`]). Other files use the allocation from its start as the default
/// VFS's own.
const REAL_FILE_OFFSET: usize = std::mem::size_of::<WalFile>().next_multiple_of(16);

fn register() -> Result<(), String> {
    // SAFETY: sqlite3_vfs_find initialises SQLite and returns a VFS that lives as long as the
    // process (the default one is never unregistered). The VFS registered here is leaked, so
    // it lives as long too; `sqlite3_vfs_register` is thread-safe.
    unsafe {
        let root = ffi::sqlite3_vfs_find(std::ptr::null());
        if root.is_null() {
            return Err("SQLite has no default VFS".into());
        }
        let size = usize::try_from((*root).szOsFile)
            .map_err(|_| "the default VFS has a negative file size")?;
        // The default VFS's version, path length and the methods that never reach the
        // store's files (extensions, which its connections never load, and the system-call
        // overrides) as they are; our open and, called with the default VFS, the rest.
        let vfs = Box::new(ffi::sqlite3_vfs {
            szOsFile: c_int::try_from(REAL_FILE_OFFSET + size)
                .map_err(|_| "the default VFS's file is too large")?,
            pNext: std::ptr::null_mut(),
            zName: NAME.as_ptr(),
            pAppData: root.cast(),
            xOpen: Some(open),
            xDelete: Some(delete),
            xAccess: Some(access),
            xFullPathname: Some(full_pathname),
            xRandomness: Some(randomness),
            xSleep: Some(sleep),
            xCurrentTime: Some(current_time),
            xGetLastError: Some(get_last_error),
            xCurrentTimeInt64: Some(current_time_int64),
            ..*root
        });
        let rc = ffi::sqlite3_vfs_register(Box::into_raw(vfs), 0);
        if rc != ffi::SQLITE_OK {
            return Err(format!("cannot register SQLite's WAL VFS (code {rc})"));
        }
    }
    Ok(())
}

/// The default VFS, which ours wraps.
unsafe fn root(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    (*vfs).pAppData.cast()
}

/// A WAL file opened through this VFS. `#[repr(C)]` with the `sqlite3_file` first, as SQLite
/// requires.
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    /// The default VFS's file, inside the same allocation (at [`REAL_FILE_OFFSET`]).
    real: *mut ffi::sqlite3_file,
    /// Whether writes may wait in the buffer (else every write goes straight to the file).
    buffers: bool,
    /// Frames written but not yet in the file; they end where the latest write ended.
    buffer: Vec<u8>,
    /// Where the latest write ended (-1: none since the last failure).
    last_write_end: i64,
    /// The last write was a commit frame's header: the next one, its page, ends the commit.
    commit_page_next: bool,
    /// The writes made to the file, and those of them that did not continue the last write
    /// (so that tests can count them).
    writes: u64,
    rewrites: u64,
}

impl WalFile {
    /// Writes the buffer to the file in one write. (A commit page still expected stays
    /// expected: the write of it flushes again.)
    unsafe fn flush(&mut self) -> c_int {
        if self.buffer.is_empty() {
            return ffi::SQLITE_OK;
        }
        let at = self.last_write_end - self.buffer.len() as i64;
        let rc = self.write_through(self.buffer.as_ptr().cast(), self.buffer.len(), at);
        self.buffer.clear();
        if rc != ffi::SQLITE_OK {
            self.last_write_end = -1;
        }
        rc
    }

    /// One write straight to the file.
    unsafe fn write_through(&mut self, data: *const c_void, len: usize, at: i64) -> c_int {
        self.writes += 1;
        let Ok(len) = c_int::try_from(len) else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        match (*(*self.real).pMethods).xWrite {
            Some(write) => write(self.real, data, len, at),
            None => ffi::SQLITE_IOERR_WRITE,
        }
    }

    /// `xWrite`: buffers a write that continues the last one, writes any other straight.
    unsafe fn write(&mut self, data: &[u8], at: i64) -> c_int {
        // Offset 0 is the WAL's header, which a restarted WAL's first frame follows.
        let continues = at == 0 || at == self.last_write_end;
        if !self.buffer.is_empty()
            && (at != self.last_write_end || self.buffer.len() + data.len() > MAX_BUFFER)
        {
            let rc = self.flush();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        let end = at + data.len() as i64;
        let commit_header = data.len() == FRAME_HEADER && data[4..8] != [0; 4];
        // A write that does not continue the last one goes straight to the file: a frame
        // rewritten in place, a checksum rewritten at commit (no page follows a commit
        // header rewritten there to flush it), the first frame after another connection's.
        if !continues || !self.buffers || data.len() > MAX_BUFFER {
            self.rewrites += u64::from(!continues);
            let rc = self.write_through(data.as_ptr().cast(), data.len(), at);
            let ok = rc == ffi::SQLITE_OK;
            self.last_write_end = if ok { end } else { -1 };
            // A commit frame's header written straight (the first frame after another
            // connection's commit, or a checksum rewritten at commit): a page that follows
            // it is the commit's and must reach the file at once too.
            self.commit_page_next = ok && commit_header;
            return rc;
        }
        self.buffer.extend_from_slice(data);
        self.last_write_end = end;
        if std::mem::replace(&mut self.commit_page_next, commit_header) {
            // The commit frame's page (its header may have gone with the buffer before, when
            // the page did not fit): the commit's frames go to the file now.
            return self.flush();
        }
        ffi::SQLITE_OK
    }
}

/// The methods of a WAL file: a write may wait in the buffer; a read, a sync, a truncation,
/// a size query, a file control, a fetch and the close write the buffer out first; locks,
/// shared memory and the device's properties leave it.
static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(wal_close),
    xRead: Some(wal_read),
    xWrite: Some(wal_write),
    xTruncate: Some(wal_truncate),
    xSync: Some(wal_sync),
    xFileSize: Some(wal_file_size),
    xLock: Some(wal_lock),
    xUnlock: Some(wal_unlock),
    xCheckReservedLock: Some(wal_check_reserved_lock),
    xFileControl: Some(wal_file_control),
    xSectorSize: Some(wal_sector_size),
    xDeviceCharacteristics: Some(wal_device_characteristics),
    xShmMap: Some(wal_shm_map),
    xShmLock: Some(wal_shm_lock),
    xShmBarrier: Some(wal_shm_barrier),
    xShmUnmap: Some(wal_shm_unmap),
    xFetch: Some(wal_fetch),
    xUnfetch: Some(wal_unfetch),
};

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let root = root(vfs);
    let Some(root_open) = (*root).xOpen else {
        return ffi::SQLITE_CANTOPEN;
    };
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        // The default VFS's file fills the allocation from its start: SQLite calls its
        // methods directly.
        return root_open(root, name, file, flags, out_flags);
    }
    let real = file
        .cast::<u8>()
        .add(REAL_FILE_OFFSET)
        .cast::<ffi::sqlite3_file>();
    let rc = root_open(root, name, real, flags, out_flags);
    if rc != ffi::SQLITE_OK || (*real).pMethods.is_null() {
        // SQLite calls no method of a file whose `pMethods` is null, so a default VFS's file
        // that a failed open left with methods is closed here.
        if let Some(close) = (*real).pMethods.as_ref().and_then(|m| m.xClose) {
            close(real);
        }
        (*file).pMethods = std::ptr::null();
        return if rc == ffi::SQLITE_OK {
            ffi::SQLITE_CANTOPEN
        } else {
            rc
        };
    }
    // Without power-safe overwrite, SQLite pads a synced commit with copies of its commit
    // frame up to a sector boundary and syncs in the middle of one: the rest of that frame
    // would stay in the buffer. Such a WAL is written straight (the unix VFS has it on
    // unless a URI turns it off; the store never does).
    let characteristics = (*(*real).pMethods)
        .xDeviceCharacteristics
        .map_or(0, |f| f(real));
    let buffers = characteristics & ffi::SQLITE_IOCAP_POWERSAFE_OVERWRITE != 0;
    file.cast::<WalFile>().write(WalFile {
        base: ffi::sqlite3_file {
            pMethods: &WAL_METHODS,
        },
        real,
        buffers,
        buffer: Vec::new(),
        last_write_end: -1,
        commit_page_next: false,
        writes: 0,
        rewrites: 0,
    });
    ffi::SQLITE_OK
}

/// The WAL file behind SQLite's pointer.
unsafe fn wal<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalFile {
    &mut *file.cast::<WalFile>()
}

/// The methods of a WAL file that call the default VFS's file's: `flush` ones write the buffer
/// out first, `forward` ones leave it. Each returns the value given where the default VFS's
/// file has no such method.
macro_rules! wal_methods {
    ($($kind:ident fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $method:ident or $missing:expr;)*) => {$(
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> $ret {
            let wal = wal(file);
            wal_methods!(@$kind wal);
            (*(*wal.real).pMethods).$method.map_or($missing, |m| m(wal.real, $($arg),*))
        }
    )*};
    (@flush $wal:ident) => {
        let rc = $wal.flush();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    };
    (@forward $wal:ident) => {};
}

wal_methods! {
    flush fn wal_read(data: *mut c_void, len: c_int, at: i64) -> c_int
        = xRead or ffi::SQLITE_IOERR_READ;
    flush fn wal_truncate(size: i64) -> c_int = xTruncate or ffi::SQLITE_IOERR_TRUNCATE;
    flush fn wal_sync(flags: c_int) -> c_int = xSync or ffi::SQLITE_IOERR_FSYNC;
    flush fn wal_file_size(size: *mut i64) -> c_int = xFileSize or ffi::SQLITE_IOERR_FSTAT;
    flush fn wal_file_control(op: c_int, arg: *mut c_void) -> c_int
        = xFileControl or ffi::SQLITE_NOTFOUND;
    forward fn wal_lock(level: c_int) -> c_int = xLock or ffi::SQLITE_OK;
    forward fn wal_unlock(level: c_int) -> c_int = xUnlock or ffi::SQLITE_OK;
    forward fn wal_check_reserved_lock(out: *mut c_int) -> c_int
        = xCheckReservedLock or ffi::SQLITE_OK;
    forward fn wal_sector_size() -> c_int = xSectorSize or 4096;
    forward fn wal_device_characteristics() -> c_int = xDeviceCharacteristics or 0;
    forward fn wal_shm_map(region: c_int, size: c_int, extend: c_int, out: *mut *mut c_void)
        -> c_int = xShmMap or ffi::SQLITE_IOERR_SHMMAP;
    forward fn wal_shm_lock(offset: c_int, n: c_int, flags: c_int) -> c_int
        = xShmLock or ffi::SQLITE_IOERR_SHMLOCK;
    forward fn wal_shm_barrier() -> () = xShmBarrier or ();
    forward fn wal_shm_unmap(delete: c_int) -> c_int = xShmUnmap or ffi::SQLITE_OK;
    forward fn wal_unfetch(at: i64, page: *mut c_void) -> c_int = xUnfetch or ffi::SQLITE_OK;
}

unsafe extern "C" fn wal_close(file: *mut ffi::sqlite3_file) -> c_int {
    let wal = wal(file);
    let flushed = wal.flush();
    let real = wal.real;
    // The buffer's memory is freed here; SQLite frees the allocation itself.
    std::ptr::drop_in_place(file.cast::<WalFile>());
    (*file).pMethods = std::ptr::null();
    let closed = match (*(*real).pMethods).xClose {
        Some(close) => close(real),
        None => ffi::SQLITE_OK,
    };
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        closed
    }
}

unsafe extern "C" fn wal_write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    len: c_int,
    at: i64,
) -> c_int {
    let Ok(len) = usize::try_from(len) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    if data.is_null() && len > 0 {
        return ffi::SQLITE_IOERR_WRITE;
    }
    let bytes = if len == 0 {
        &[][..]
    } else {
        std::slice::from_raw_parts(data.cast::<u8>(), len)
    };
    wal(file).write(bytes, at)
}

unsafe extern "C" fn wal_fetch(
    file: *mut ffi::sqlite3_file,
    at: i64,
    len: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // Mapped pages must show what was written: nothing may stay in the buffer.
    *out = std::ptr::null_mut();
    let wal = wal(file);
    let rc = wal.flush();
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    (*(*wal.real).pMethods)
        .xFetch
        .map_or(ffi::SQLITE_OK, |m| m(wal.real, at, len, out))
}

/// The VFS's own methods: each calls the default VFS's with the default VFS (or returns the
/// value given where it has none).
macro_rules! root_methods {
    ($(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $method:ident or $missing:expr;)*) => {$(
        unsafe extern "C" fn $name(vfs: *mut ffi::sqlite3_vfs, $($arg: $ty),*) -> $ret {
            let root = root(vfs);
            (*root).$method.map_or($missing, |f| f(root, $($arg),*))
        }
    )*};
}

root_methods! {
    fn delete(name: *const c_char, sync_dir: c_int) -> c_int = xDelete or ffi::SQLITE_IOERR_DELETE;
    fn access(name: *const c_char, flags: c_int, out: *mut c_int) -> c_int
        = xAccess or ffi::SQLITE_IOERR_ACCESS;
    fn full_pathname(name: *const c_char, n: c_int, out: *mut c_char) -> c_int
        = xFullPathname or ffi::SQLITE_CANTOPEN;
    fn randomness(n: c_int, out: *mut c_char) -> c_int = xRandomness or 0;
    fn sleep(micros: c_int) -> c_int = xSleep or 0;
    fn current_time(out: *mut f64) -> c_int = xCurrentTime or ffi::SQLITE_ERROR;
    fn get_last_error(n: c_int, out: *mut c_char) -> c_int = xGetLastError or 0;
    fn current_time_int64(out: *mut i64) -> c_int = xCurrentTimeInt64 or ffi::SQLITE_ERROR;
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};
    use std::path::Path;

    /// A writer through this VFS (WAL mode, `synchronous=NORMAL` as in a batch).
    fn writer(path: &Path) -> Connection {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let conn = Connection::open_with_flags_and_vfs(path, flags, vfs_name().unwrap()).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0;
             CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB NOT NULL);",
        )
        .unwrap();
        conn
    }

    /// A new store file `s.db` (in a directory dropped with it) and a writer.
    fn store() -> (tempfile::TempDir, std::path::PathBuf, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let conn = writer(&path);
        (dir, path, conn)
    }

    /// The writes and in-place rewrites the WAL file of `conn` has made so far.
    fn wal_writes(conn: &Connection) -> (u64, u64) {
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: SQLITE_FCNTL_JOURNAL_POINTER stores the WAL's file (opened through this
        // VFS with SQLITE_OPEN_WAL, so a `WalFile`) into `file`; the connection outlives the
        // read.
        unsafe {
            let rc = ffi::sqlite3_file_control(
                conn.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_JOURNAL_POINTER,
                (&raw mut file).cast(),
            );
            assert_eq!(rc, ffi::SQLITE_OK);
            assert!(!file.is_null(), "the WAL is open");
            assert!(std::ptr::eq((*file).pMethods, &WAL_METHODS));
            let wal = &*file.cast::<WalFile>();
            (wal.writes, wal.rewrites)
        }
    }

    /// Inserts rows `keys` with values of `size` bytes (row `k` holds byte `k + salt`).
    fn insert(conn: &Connection, keys: std::ops::Range<i64>, size: usize, salt: u8) {
        let mut statement = conn
            .prepare_cached("INSERT OR REPLACE INTO t (k, v) VALUES (?1, ?2)")
            .unwrap();
        for k in keys {
            statement
                .execute(rusqlite::params![
                    k,
                    vec![(k as u8).wrapping_add(salt); size]
                ])
                .unwrap();
        }
    }

    /// Inserts rows `keys` as `insert` does, in one transaction.
    fn commit(conn: &Connection, keys: std::ops::Range<i64>, size: usize, salt: u8) {
        conn.execute_batch("BEGIN").unwrap();
        insert(conn, keys, size, salt);
        conn.execute_batch("COMMIT").unwrap();
    }

    /// Checks, through the default VFS, that rows `keys` hold what `insert` wrote with `salt`.
    fn assert_rows(path: &Path, keys: std::ops::Range<i64>, size: usize, salt: u8) {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let count: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, keys.end - keys.start);
        let mut statement = conn.prepare("SELECT v FROM t WHERE k = ?1").unwrap();
        for k in keys {
            let v: Vec<u8> = statement.query_row([k], |r| r.get(0)).unwrap();
            assert_eq!(v, vec![(k as u8).wrapping_add(salt); size], "row {k}");
        }
    }

    /// A copy of the store's files taken now, while the writer is open and nothing is
    /// checkpointed: what a crash would leave.
    fn crash_copy(path: &Path) -> std::path::PathBuf {
        let copy = path.with_file_name("copy.db");
        std::fs::copy(path, &copy).unwrap();
        std::fs::copy(
            path.with_file_name("s.db-wal"),
            copy.with_file_name("copy.db-wal"),
        )
        .unwrap();
        copy
    }

    /// Row `k`'s value, read through the default VFS.
    fn value(path: &Path, k: i64) -> Vec<u8> {
        Connection::open(path)
            .unwrap()
            .query_row("SELECT v FROM t WHERE k = ?1", [k], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_commit_reaches_the_file_in_one_write_before_another_connection_reads_it() {
        let (_dir, path, conn) = store();
        insert(&conn, 0..1, 16, 0);
        let (before, _) = wal_writes(&conn);
        // About ten pages: twenty frame writes of SQLite's.
        commit(&conn, 1..40, 1000, 0);
        let (after, rewrites) = wal_writes(&conn);
        assert_eq!(after - before, 1, "the commit's frames in one write");
        assert_eq!(rewrites, 0);
        // Another connection (the default VFS) sees the commit: its frames are in the file.
        let reader = Connection::open(&path).unwrap();
        let count: i64 = reader
            .query_row("SELECT count(*) FROM t WHERE k >= 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 39);
    }

    #[test]
    fn a_commit_larger_than_one_write_goes_in_pieces_and_commits_whole() {
        let (_dir, path, conn) = store();
        let (before, _) = wal_writes(&conn);
        // ~1.2 MiB of rows: more than nine buffers.
        commit(&conn, 0..300, 4000, 7);
        let (after, _) = wal_writes(&conn);
        assert!(after - before >= 9, "{} writes", after - before);
        assert!(after - before < 100, "{} writes", after - before);
        assert_rows(&path, 0..300, 4000, 7);
    }

    /// A transaction larger than the page cache spills frames to the WAL, then changes those
    /// pages again: SQLite rewrites the frames in place and, at commit, every checksum from
    /// the first rewritten frame on, ending with the commit frame's header. A copy of the files
    /// taken before any checkpoint (as after a crash) recovers the whole commit: a checksum
    /// left in the buffer would end the WAL early.
    #[test]
    fn frames_rewritten_in_place_and_their_checksums_reach_the_file() {
        let (_dir, path, conn) = store();
        conn.execute_batch("PRAGMA cache_size=10").unwrap();
        conn.execute_batch("BEGIN").unwrap();
        insert(&conn, 0..400, 500, 1);
        insert(&conn, 0..400, 500, 2);
        conn.execute_batch("COMMIT").unwrap();
        let (_, rewrites) = wal_writes(&conn);
        assert!(rewrites > 0, "the transaction rewrote frames in place");
        assert_rows(&crash_copy(&path), 0..400, 500, 2);
        drop(conn);
        assert_rows(&path, 0..400, 500, 2);
    }

    /// Another connection's commit moves the WAL's end: this connection's next frame does not
    /// continue its own last write, so its header goes straight to the file — and the page
    /// after it must too, when it is a commit frame's (a one-page commit).
    #[test]
    fn a_one_page_commit_after_another_connections_commit_reaches_the_file() {
        let (_dir, path, first) = store();
        let second = writer(&path);
        insert(&first, 0..3, 100, 0);
        insert(&second, 3..6, 100, 0);
        insert(&first, 0..1, 100, 9);
        let copy = crash_copy(&path);
        assert_eq!(value(&path, 0), vec![9; 100]);
        assert_eq!(
            value(&copy, 0),
            vec![9; 100],
            "the copy recovers the last commit"
        );
    }

    /// A WAL that cannot be opened (a directory in its place) is an error of the query that
    /// needs it, not a crash.
    #[test]
    fn a_wal_that_cannot_be_opened_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(writer(&path));
        std::fs::create_dir(dir.path().join("s.db-wal")).unwrap();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE;
        let conn = Connection::open_with_flags_and_vfs(&path, flags, vfs_name().unwrap()).unwrap();
        let err = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
            .unwrap_err();
        assert!(err.sqlite_error_code().is_some(), "{err}");
    }

    /// A buffer holds 31 frames and the next one's header: a commit of 32 frames (or 64, …)
    /// has its commit frame's header at the end of one buffer and its page at the start of the
    /// next. Commits of 1 to 100 pages cover those sizes; each is read back by another
    /// connection right after it.
    #[test]
    fn a_commit_frame_split_across_two_buffers_reaches_the_file() {
        let (_dir, path, conn) = store();
        let reader = Connection::open(&path).unwrap();
        let mut rows = 0;
        for size in 1..=100 {
            commit(&conn, rows..rows + size, 4000, 3);
            rows += size;
            let (count, last): (i64, Vec<u8>) = reader
                .query_row("SELECT count(*), max(v) FROM t", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap();
            assert_eq!(count, rows, "after the commit of {size} rows");
            assert_eq!(last.len(), 4000);
        }
        assert_rows(&path, 0..rows, 4000, 3);
    }

    #[test]
    fn commits_after_a_checkpoint_restart_the_wal_and_read_back() {
        let (_dir, path, conn) = store();
        for round in 0..3u8 {
            commit(&conn, 0..50, 300, round);
            // The next commit writes the WAL's header at offset 0 again.
            conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
                .unwrap();
            assert_rows(&path, 0..50, 300, round);
        }
    }
}
