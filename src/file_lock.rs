//! An advisory `flock` held for a scope: how processes sharing the audit log and the anchor
//! file take turns.

use crate::error::{Error, Result};
use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// Holds a `flock` on a file until dropped. The file must stay open that long (its owner
/// keeps it; the lock does not borrow it, so the owner can go on using itself).
pub(crate) struct FileLock(std::os::unix::io::RawFd);

impl FileLock {
    /// Takes `operation` (`LOCK_SH` or `LOCK_EX`) on `file`, retrying on EINTR.
    pub fn new(file: &File, operation: libc::c_int, path: &Path) -> Result<FileLock> {
        let fd = file.as_raw_fd();
        loop {
            // SAFETY: the descriptor is open (the caller keeps `file` open while locked).
            if unsafe { libc::flock(fd, operation) } == 0 {
                return Ok(FileLock(fd));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::storage(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )));
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // SAFETY: as above; unlocking cannot fail on a valid descriptor.
        unsafe { libc::flock(self.0, libc::LOCK_UN) };
    }
}
