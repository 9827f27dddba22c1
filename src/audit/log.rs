//! The audit log of one store handle: the chain, its file, its sink and the use batch.

use super::anchor;
use super::batch::UseBatch;
use super::entry::{seal_line, AuditAction, AuditEntry, ChainHead};
use super::file::AuditFile;
use super::options::AuditSink;
use crate::access::Actor;
use crate::crypto::MacKey;
use crate::error::{ErrorCode, Result};
use crate::throttle::Throttle;
use parking_lot::Mutex;
use std::path::Path;
use std::sync::Arc;

/// Batched uses are written at least this often (milliseconds) while calls keep coming.
const USE_FLUSH_INTERVAL_MS: i64 = 1_000;

/// The chain head and the file it continues.
struct Writer {
    head: ChainHead,
    file: Option<AuditFile>,
    /// The highest sequence number anchored in the store by this handle.
    anchored: u64,
}

/// An open audit log.
pub(crate) struct AuditLog {
    key: MacKey,
    writer: Mutex<Writer>,
    sink: Option<Arc<dyn AuditSink>>,
    batch: UseBatch,
    batch_uses: bool,
    flush_timer: Throttle,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path())
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// A log writing to `path` (if any) and `sink` (if any), sealing with `key`.
    pub fn open(
        key: MacKey,
        path: Option<&Path>,
        sink: Option<Arc<dyn AuditSink>>,
        batch_uses: bool,
    ) -> Result<AuditLog> {
        let file = path.map(AuditFile::open).transpose()?;
        Ok(AuditLog {
            key,
            writer: Mutex::new(Writer {
                head: ChainHead::default(),
                file,
                anchored: 0,
            }),
            sink,
            batch: UseBatch::default(),
            batch_uses,
            flush_timer: Throttle::new(USE_FLUSH_INTERVAL_MS, crate::model::now_millis()),
        })
    }

    /// The log file, if any.
    pub fn path(&self) -> Option<std::path::PathBuf> {
        self.writer
            .lock()
            .file
            .as_ref()
            .map(|f| f.path().to_owned())
    }

    /// The MAC key (for verification).
    pub fn key(&self) -> &MacKey {
        &self.key
    }

    /// The anchor to raise in the store for this log's chain (metadata key and value), when
    /// records were written since the last one raised.
    pub fn pending_anchor(&self) -> Option<(String, Vec<u8>)> {
        let writer = self.writer.lock();
        let genesis = writer.file.as_ref()?.genesis()?;
        if writer.head.seq <= writer.anchored {
            return None;
        }
        let value = anchor::encode(&self.key, genesis, &writer.head)?;
        Some((anchor::key_of(genesis), value))
    }

    /// Notes that the anchor `value` (from [`AuditLog::pending_anchor`]) is in the store.
    pub fn anchored(&self, value: &[u8]) {
        if let Some(seq) = value
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
        {
            let mut writer = self.writer.lock();
            writer.anchored = writer.anchored.max(seq);
        }
    }

    /// Writes one record now, after any batched uses; syncs the file when `durable`.
    pub fn record(&self, entry: AuditEntry, durable: bool) -> Result<()> {
        let mut entries = self.batch.take();
        entries.push(entry);
        self.write(entries, durable)
    }

    /// Counts one use of a value (the hot path): batched, or written at once when batching
    /// is off. A failure to write keeps the records pending for the next flush.
    #[inline]
    pub fn note_use(
        &self,
        actor: &Actor,
        action: AuditAction,
        tenant: &str,
        name: &str,
        outcome: ErrorCode,
        now: i64,
    ) {
        self.batch.note(actor, action, tenant, name, outcome, now);
        if !self.batch_uses {
            let _ = self.flush();
            return;
        }
        if self.flush_timer.due(now) {
            let _ = self.flush();
        }
    }

    /// Writes the batched uses (not synced).
    pub fn flush(&self) -> Result<()> {
        let entries = self.batch.take();
        if entries.is_empty() {
            return Ok(());
        }
        self.write(entries, false)
    }

    /// Writes and syncs everything pending (on close).
    pub fn sync(&self) -> Result<()> {
        let entries = self.batch.take();
        self.write(entries, true)
    }

    fn write(&self, entries: Vec<AuditEntry>, durable: bool) -> Result<()> {
        let lines = {
            let mut writer = self.writer.lock();
            let Writer { head, file, .. } = &mut *writer;
            let seal = |head: &mut ChainHead| -> Result<String> {
                let mut lines = String::new();
                for entry in &entries {
                    lines.push_str(&seal_line(&self.key, head, entry)?);
                }
                Ok(lines)
            };
            let written = match file {
                Some(file) => file.append(head, durable, seal),
                None => {
                    // Sink only: the chain lives in memory.
                    let mut copy = head.clone();
                    let lines = seal(&mut copy);
                    if lines.is_ok() {
                        *head = copy;
                    }
                    lines
                }
            };
            match written {
                Ok(lines) => lines,
                Err(e) => {
                    drop(writer);
                    self.batch
                        .restore(entries.into_iter().filter(|e| e.since.is_some()).collect());
                    return Err(e);
                }
            }
        };
        if let Some(sink) = &self.sink {
            for line in lines.lines() {
                sink.record(line);
            }
        }
        Ok(())
    }
}
