//! The audit log file: append-only JSON lines, shared safely by every handle and process
//! that writes to it (an exclusive `flock` around each append; the chain head is re-read
//! from the file's tail whenever someone else appended meanwhile).

use super::entry::{head_of, ChainHead};
use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// An open audit log file.
#[derive(Debug)]
pub(crate) struct AuditFile {
    path: PathBuf,
    file: File,
    /// The file length after our last append (another writer moved it if it differs).
    end: u64,
    /// The MAC of the file's first record: the name of its chain (for anchors).
    genesis: Option<String>,
}

/// Holds an exclusive `flock` on the file until dropped.
struct Locked<'a>(&'a File);

impl<'a> Locked<'a> {
    fn new(file: &'a File, path: &Path) -> Result<Locked<'a>> {
        loop {
            // SAFETY: the descriptor is open for the lifetime of `file`.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Locked(file));
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(Error::storage(format!(
                    "cannot lock the audit log {}: {e}",
                    path.display()
                )));
            }
        }
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // SAFETY: as above; unlocking cannot fail on a valid descriptor.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

impl AuditFile {
    /// Opens (creating with mode 0600) the log at `path` for appending.
    pub fn open(path: &Path) -> Result<AuditFile> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                Error::storage(format!("cannot open the audit log {}: {e}", path.display()))
            })?;
        Ok(AuditFile {
            path: path.to_owned(),
            file,
            end: u64::MAX, // read the head on the first append
            genesis: None,
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The MAC of the file's first record, once known (after an append).
    pub fn genesis(&self) -> Option<&str> {
        self.genesis.as_deref()
    }

    /// Appends the lines `seal` makes from the chain head found in the file, in one write;
    /// syncs the file when `durable`. Returns the lines written.
    pub fn append(
        &mut self,
        head: &mut ChainHead,
        durable: bool,
        seal: impl FnOnce(&mut ChainHead) -> Result<String>,
    ) -> Result<String> {
        let _lock = Locked::new(&self.file, &self.path)?;
        let mut len = self.file.metadata()?.len();
        if len != self.end {
            (*head, len) = self.read_head(len)?;
            // Read again even when the file only seems to have grown: a copy-truncate rotation
            // followed by other writers' appends also looks like growth, and an anchor raised
            // under the old chain's name would then fail that chain's verification.
            self.genesis = if head.seq == 0 {
                None
            } else {
                self.read_first_line()
                    .and_then(|line| head_of(&line))
                    .filter(|h| h.seq == 1)
                    .map(|h| h.mac)
            };
        }
        let lines = seal(head)?;
        if self.genesis.is_none() && len == 0 {
            self.genesis = lines.lines().next().and_then(head_of).map(|h| h.mac);
        }
        let written = (&self.file).write_all(lines.as_bytes());
        if let Err(e) = written {
            // Leave no torn line for the next writer to chain onto.
            let _ = self.file.set_len(len);
            self.end = u64::MAX;
            return Err(Error::storage(format!(
                "cannot write the audit log {}: {e}",
                self.path.display()
            )));
        }
        if durable {
            self.file.sync_data().map_err(|e| {
                Error::storage(format!(
                    "cannot sync the audit log {}: {e}",
                    self.path.display()
                ))
            })?;
        }
        self.end = len + lines.len() as u64;
        Ok(lines)
    }

    /// The file's first line (without its newline), if complete and UTF-8.
    fn read_first_line(&self) -> Option<String> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(0)).ok()?;
        let mut reader = std::io::BufReader::new(file);
        let mut line = String::new();
        std::io::BufRead::read_line(&mut reader, &mut line).ok()?;
        line.strip_suffix('\n').map(str::to_owned)
    }

    /// The chain head of a file of length `len`: the last complete line's `seq` and `mac`,
    /// and the file's length then. An unterminated last line (a crash mid-append) was never a
    /// record: it is cut off.
    fn read_head(&self, len: u64) -> Result<(ChainHead, u64)> {
        let mut tail = Vec::new();
        let mut window: u64 = 4096;
        let tail_start = loop {
            let start = len.saturating_sub(window);
            tail.resize((len - start) as usize, 0);
            let mut file = &self.file;
            file.seek(SeekFrom::Start(start))?;
            file.read_exact(&mut tail)?;
            // Enough when the window holds a newline before the last line (or the file start).
            let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
            if start == 0 || body.contains(&b'\n') {
                break start;
            }
            window *= 4;
        };
        let complete = match tail.iter().rposition(|&b| b == b'\n') {
            Some(at) => at + 1,
            None => 0,
        };
        let mut len = len;
        if complete < tail.len() {
            let keep = tail_start + complete as u64;
            self.file.set_len(keep).map_err(|e| {
                Error::storage(format!(
                    "cannot cut a torn line off the audit log {}: {e}",
                    self.path.display()
                ))
            })?;
            tail.truncate(complete);
            len = keep;
        }
        let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
        let last = match body.iter().rposition(|&b| b == b'\n') {
            Some(at) => &body[at + 1..],
            None => body,
        };
        if last.is_empty() {
            return Ok((ChainHead::default(), len));
        }
        // A last line that is not a record continues as a fresh chain; `verify` reports it.
        let head = std::str::from_utf8(last)
            .ok()
            .and_then(head_of)
            .unwrap_or_default();
        Ok((head, len))
    }
}
