//! The audit log file: append-only JSON lines, shared safely by every handle and process
//! that writes to it (an exclusive `flock` around each append; the file's last record is
//! re-read whenever someone else appended meanwhile). The records themselves are sealed in
//! the store (the outbox); the file receives copies, in chain order, each exactly once.

use super::entry::{head_of, ChainHead};
use crate::error::{Error, Result};
use crate::file_lock::FileLock;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// An open audit log file.
#[derive(Debug)]
pub(crate) struct AuditFile {
    path: PathBuf,
    file: File,
    /// The file length after our last append (another writer moved it if it differs).
    end: u64,
    /// The last record in the file as of `end`.
    head: ChainHead,
}

impl AuditFile {
    /// Opens (creating with mode 0600) the log at `path` for appending. INVALID_ARGUMENT when
    /// `path` is not a regular file (a directory, a device such as `/dev/null`): records
    /// could not be read back, so the chain could not continue.
    pub fn open(path: &Path) -> Result<AuditFile> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                let code = if e.kind() == std::io::ErrorKind::IsADirectory {
                    crate::ErrorCode::InvalidArgument
                } else {
                    crate::ErrorCode::Storage
                };
                Error::new(
                    code,
                    format!("cannot open the audit log {}: {e}", path.display()),
                )
            })?;
        if !file.metadata()?.is_file() {
            return Err(Error::invalid(format!(
                "the audit log {} is not a regular file",
                path.display()
            )));
        }
        Ok(AuditFile {
            path: path.to_owned(),
            file,
            end: u64::MAX, // read the head on first use
            head: ChainHead::default(),
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sequence number of the file's last record as of the last append or read (0 for
    /// none, or when it must be read again).
    pub fn head_seq(&self) -> u64 {
        if self.end == u64::MAX {
            0
        } else {
            self.head.seq
        }
    }

    /// The last record in the file now.
    pub fn head(&mut self) -> Result<ChainHead> {
        let _lock = FileLock::new(&self.file, libc::LOCK_EX, &self.path)?;
        self.refresh()?;
        Ok(self.head.clone())
    }

    /// The file's length now, from `lseek` rather than `fstat`: asking a file for its times
    /// (as `fstat` does) makes the kernel stamp the file's next write with a fine-grained
    /// time (Linux 6.13+, multigrain timestamps), which moves the clock of every other file's
    /// next write too — so the store's next WAL write changes the WAL's mtime, and its
    /// `fdatasync` then writes the inode as well: one more synchronous disk write for every
    /// change (CONTRIBUTING.md, "Timestamps").
    fn len(&self) -> Result<u64> {
        Ok((&self.file).seek(SeekFrom::End(0))?)
    }

    /// Re-reads the head when someone else changed the file (call under the lock).
    fn refresh(&mut self) -> Result<u64> {
        let len = self.len()?;
        if len != self.end {
            let (head, len) = self.read_head(len)?;
            self.head = head;
            self.end = len;
        }
        Ok(self.end)
    }

    /// Appends what `lines_after(head)` returns — the sealed lines that follow the file's
    /// last record `head` — in one write. Returns the lines written.
    pub fn append(
        &mut self,
        lines_after: impl FnOnce(&ChainHead) -> Result<String>,
    ) -> Result<String> {
        let _lock = FileLock::new(&self.file, libc::LOCK_EX, &self.path)?;
        let len = self.refresh()?;
        let lines = lines_after(&self.head)?;
        if lines.is_empty() {
            return Ok(lines);
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
        self.end = len + lines.len() as u64;
        if let Some(head) = lines.lines().next_back().and_then(head_of) {
            self.head = head;
        }
        Ok(lines)
    }

    /// The file's last record, if its MAC verifies under `key` (INTEGRITY otherwise); the
    /// empty head for an empty file.
    pub fn verified_head(&mut self, key: &crate::crypto::MacKey) -> Result<ChainHead> {
        let _lock = FileLock::new(&self.file, libc::LOCK_EX, &self.path)?;
        let len = self.len()?;
        let (line, _) = self.read_last_line(len)?;
        let Some(line) = line else {
            return Ok(ChainHead::default());
        };
        let text = std::str::from_utf8(&line).unwrap_or("");
        let authentic = super::entry::split_line(text)
            .is_some_and(|parts| key.verify_parts(&[parts.body.as_bytes(), b"}"], &parts.mac));
        match head_of(text) {
            Some(head) if authentic => Ok(head),
            _ => Err(Error::integrity(format!(
                "the last record of the audit log {} fails authentication",
                self.path.display()
            ))),
        }
    }

    /// Syncs the file and returns the last record it holds (durably).
    pub fn sync(&mut self) -> Result<ChainHead> {
        let _lock = FileLock::new(&self.file, libc::LOCK_EX, &self.path)?;
        self.refresh()?;
        self.file.sync_data().map_err(|e| {
            Error::storage(format!(
                "cannot sync the audit log {}: {e}",
                self.path.display()
            ))
        })?;
        Ok(self.head.clone())
    }

    /// The chain head of a file of length `len`: the last complete line's `seq` and `mac`,
    /// and the file's length then. A last line that is not a record continues as a fresh
    /// chain; `verify` reports it.
    fn read_head(&self, len: u64) -> Result<(ChainHead, u64)> {
        let (last, len) = self.read_last_line(len)?;
        let head = last
            .as_deref()
            .and_then(|l| std::str::from_utf8(l).ok())
            .and_then(head_of)
            .unwrap_or_default();
        Ok((head, len))
    }

    /// The last complete line of a file of length `len` (without its newline) and the file's
    /// length then. An unterminated last line (a crash mid-append) was never a record: it is
    /// cut off.
    fn read_last_line(&self, len: u64) -> Result<(Option<Vec<u8>>, u64)> {
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
        Ok(((!last.is_empty()).then(|| last.to_vec()), len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Actor;
    use crate::audit::entry::{seal_line, AuditAction, AuditEntry};
    use crate::crypto::MacKey;

    /// The sealed line after `head` (advancing it).
    fn next_line(head: &mut ChainHead) -> String {
        let key = MacKey::derive(b"audit", b"test");
        let entry = AuditEntry::new(
            &Actor::Host,
            AuditAction::Create,
            "t",
            vec!["s".into()],
            crate::ErrorCode::Ok,
        );
        seal_line(&key, head, &entry).unwrap()
    }

    /// Each handle finds the length another one's append left (from `lseek`, see `len`) and
    /// continues after its record.
    #[test]
    fn each_writer_continues_after_the_other_ones_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let mut first = AuditFile::open(&path).unwrap();
        let mut second = AuditFile::open(&path).unwrap();
        let mut chain = ChainHead::default();
        for round in 1..=3u64 {
            let writer = if round % 2 == 1 {
                &mut first
            } else {
                &mut second
            };
            let line = next_line(&mut chain);
            writer
                .append(|head| {
                    assert_eq!(head.seq, round - 1, "the other handle's record");
                    Ok(line)
                })
                .unwrap();
            assert_eq!(writer.head_seq(), round);
        }
        assert_eq!(first.head().unwrap().seq, 3);
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
    }
}
