//! The audit log of one store handle: sealing records into the store's chain, delivering the
//! committed ones to the log file and the sink, and the batch of value uses.
//!
//! A record is sealed — numbered, linked to the record before and MAC'd — inside the store
//! transaction of what it records, and added to the store's outbox there; the chain head
//! lives in the store's sealed state row. So a change commits with its record or not at all.
//! After the commit the record is copied to the log file (and the sink); a record that could
//! not be copied then (a killed process, a full disk) stays in the outbox and is copied by
//! the next delivery of any handle. Outbox records are dropped only once the file holding
//! them has been synced.
//!
//! With group commit, a committed change's records are staged here while it waits for its
//! sync, and the change whose sync makes them durable appends all of them at once
//! ([`AuditLog::stage`], [`AuditLog::deliver_staged`]); the others then find theirs in the
//! file and write nothing.

use super::batch::{Use, UseBatch};
use super::entry::{seal_line, AuditAction, AuditEntry, ChainHead};
use super::file::AuditFile;
use super::options::AuditSink;
use crate::access::Actor;
use crate::crypto::MacKey;
use crate::error::{ErrorCode, Result};
use crate::store::Store;
use crate::throttle::Throttle;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Batched uses are written at least this often (milliseconds) while calls keep coming.
const USE_FLUSH_INTERVAL_MS: i64 = 1_000;

/// Outbox records read per query when catching up with a backlog.
const BACKLOG_PAGE: usize = 4096;

/// A sealed record: its sequence number and its line (with the newline).
pub(crate) type SealedLine = (u64, String);

/// An open audit log.
pub(crate) struct AuditLog {
    key: MacKey,
    file: Mutex<Option<AuditFile>>,
    sink: Option<Arc<dyn AuditSink>>,
    batch: UseBatch,
    batch_uses: bool,
    flush_timer: Throttle,
    /// Delivered lines the sink has yet to receive: it is called only where no store
    /// connection is held (it may call the store), by [`AuditLog::notify_sink`].
    sink_queue: Mutex<Vec<String>>,
    /// Held while lines are handed to the sink.
    sink_drain: Mutex<()>,
    /// The last record known to be durably in the log file (synced): outbox rows up to it
    /// may go, and the next change's transaction drops them.
    synced_through: std::sync::atomic::AtomicU64,
    /// The outbox rows up to this record were dropped already.
    pruned_through: std::sync::atomic::AtomicU64,
    /// Committed records of this handle's changes that wait for their sync (group commit),
    /// by sequence number, with the ticket of their commit: whichever change's sync makes
    /// them durable first appends them with its own ([`AuditLog::deliver_staged`]). Only
    /// with a log file: without one there is nothing to append them to.
    staged: Option<Mutex<BTreeMap<u64, (u64, String)>>>,
    /// The log file's last record as of the last append or read under the file lock: a
    /// change whose records are at or below it has nothing left to deliver.
    delivered_through: std::sync::atomic::AtomicU64,
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
        let staged = file.as_ref().map(|_| Mutex::new(BTreeMap::new()));
        Ok(AuditLog {
            key,
            file: Mutex::new(file),
            sink,
            batch: UseBatch::default(),
            batch_uses,
            flush_timer: Throttle::new(USE_FLUSH_INTERVAL_MS, crate::model::now_millis()),
            sink_queue: Mutex::new(Vec::new()),
            sink_drain: Mutex::new(()),
            synced_through: Default::default(),
            pruned_through: Default::default(),
            staged,
            delivered_through: Default::default(),
        })
    }

    /// The log file, if any.
    pub fn path(&self) -> Option<std::path::PathBuf> {
        self.file.lock().as_ref().map(|f| f.path().to_owned())
    }

    /// The last record in the log file (`None` without a file).
    pub fn file_head(&self) -> Result<Option<ChainHead>> {
        self.file.lock().as_mut().map(AuditFile::head).transpose()
    }

    /// The log file's last record, authenticated (to continue the chain from it).
    pub fn verified_file_head(&self) -> Result<ChainHead> {
        match self.file.lock().as_mut() {
            Some(file) => file.verified_head(&self.key),
            None => Ok(ChainHead::default()),
        }
    }

    /// Seals `entries` as the records after `head` (advancing it).
    pub fn seal(&self, head: &mut ChainHead, entries: &[AuditEntry]) -> Result<Vec<SealedLine>> {
        entries
            .iter()
            .map(|entry| Ok((head.seq + 1, seal_line(&self.key, head, entry)?)))
            .collect()
    }

    /// Counts one use of a value (the hot path). Returns true when the batch is due to be
    /// written (see [`AuditLog::take_uses`]).
    #[inline]
    pub fn note_use(
        &self,
        actor: &Actor,
        action: AuditAction,
        tenant: &str,
        name: &str,
        outcome: ErrorCode,
        now: i64,
    ) -> bool {
        let noted = Use {
            actor,
            action,
            tenant,
            name,
            outcome,
            now,
        };
        self.batch.note(noted);
        !self.batch_uses || self.flush_timer.due(now)
    }

    /// The batched uses, to be sealed and committed.
    pub fn take_uses(&self) -> Vec<AuditEntry> {
        self.batch.take()
    }

    /// Puts back uses whose commit failed, for the next attempt.
    pub fn restore_uses(&self, entries: Vec<AuditEntry>) {
        self.batch.restore(entries);
    }

    /// Whether [`AuditLog::deliver`] writes to the store (without a log file it drops the
    /// delivered outbox rows at once); with a file it only reads committed rows.
    pub fn delivery_writes(&self) -> bool {
        self.file.lock().is_none()
    }

    /// Copies committed records to the log file (and queues them for the sink): `fresh` (just committed) and
    /// whatever the file lacks of the store's outbox before them (a backlog left by a killed
    /// process or a failed write). Without a file, the sink receives them and the outbox
    /// drops them at once.
    pub fn deliver(&self, store: &mut dyn Store, fresh: &[SealedLine]) -> Result<()> {
        let mut file = self.file.lock();
        let lines = match file.as_mut() {
            Some(file) => {
                let lines = file.append(|head| lines_after(store, head.seq, fresh));
                self.note_file_head(file);
                lines?
            }
            None => {
                let lines = lines_after(store, 0, fresh)?;
                if let Some(last) = last_seq(&lines) {
                    store.outbox_prune(last)?;
                }
                lines
            }
        };
        self.queue_for_sink(&lines);
        drop(file);
        Ok(())
    }

    /// [`AuditLog::deliver`] without a store, for a change that holds no connection any more:
    /// delivers `fresh` when the log file needs nothing before it from the store's outbox
    /// (its last record is the one before `fresh`, or a later one), and returns whether it
    /// did. `false` (nothing done) when it does need the outbox, or has no file: then call
    /// [`AuditLog::deliver`] with a connection. With group commit, the changes of one sync
    /// mostly deliver this way, without queueing for a connection one after another.
    ///
    /// `fresh` committed with `ticket`, and every commit up to that ticket is durable: the
    /// staged records of those commits that continue the file go in the same append.
    pub fn deliver_fresh(&self, fresh: &[SealedLine], ticket: u64) -> Result<bool> {
        let delivered = self.delivered_through.load(Ordering::Acquire);
        if fresh.last().is_some_and(|(last, _)| *last <= delivered) {
            // Another change's append carried them (see `deliver_staged`).
            return Ok(true);
        }
        let mut file = self.file.lock();
        let Some(file) = file.as_mut() else {
            return Ok(false);
        };
        let mut continues = true;
        let lines = file.append(|head| {
            let (mut lines, after) = self.take_staged(head.seq, ticket);
            match fresh_lines_after(after, fresh) {
                Some(own) => lines.push_str(&own),
                None => continues = false,
            }
            Ok(lines)
        });
        self.note_file_head(file);
        self.queue_for_sink(&lines?);
        Ok(continues)
    }

    /// Stages the records `fresh` of a change whose commit of `ticket` succeeded and now
    /// waits for its sync, for [`AuditLog::deliver_staged`].
    pub fn stage(&self, ticket: u64, fresh: &[SealedLine]) {
        let Some(staged) = &self.staged else {
            return;
        };
        let mut staged = staged.lock();
        for (seq, line) in fresh {
            staged.insert(*seq, (ticket, line.clone()));
        }
    }

    /// Appends the staged records of the commits up to `through`, all durable now, that
    /// continue the log file, in one write — run by the change whose sync made them durable,
    /// before the others it covered wake up, so that they find their records delivered. A
    /// failure is left to each change's own delivery, which then reports it.
    pub fn deliver_staged(&self, through: u64) {
        if self
            .staged
            .as_ref()
            .is_none_or(|staged| staged.lock().is_empty())
        {
            return;
        }
        let mut file = self.file.lock();
        let Some(file) = file.as_mut() else {
            return;
        };
        let lines = file.append(|head| Ok(self.take_staged(head.seq, through).0));
        self.note_file_head(file);
        if let Ok(lines) = lines {
            self.queue_for_sink(&lines);
        }
    }

    /// Takes out of the stage the records that continue the chain right after record
    /// `after`, one after another, as long as their commit's ticket is at most `through`,
    /// and drops the staged records the file already holds. The lines and the last record
    /// they reach (`after` when none).
    fn take_staged(&self, after: u64, through: u64) -> (String, u64) {
        let mut lines = String::new();
        let Some(staged) = &self.staged else {
            return (lines, after);
        };
        let mut staged = staged.lock();
        if staged.is_empty() {
            return (lines, after);
        }
        let mut last = after;
        *staged = staged.split_off(&(after + 1));
        while let Some(entry) = staged.first_entry() {
            let (ticket, _) = entry.get();
            if *entry.key() != last + 1 || *ticket > through {
                break;
            }
            last = *entry.key();
            lines.push_str(&entry.remove().1);
        }
        (lines, last)
    }

    /// Notes the file's last record after an append (under the file lock).
    fn note_file_head(&self, file: &AuditFile) {
        self.delivered_through
            .store(file.head_seq(), Ordering::Release);
    }

    /// Queues delivered lines for the sink (called under the file lock, so that the sink sees
    /// them in chain order).
    fn queue_for_sink(&self, lines: &str) {
        if self.sink.is_some() && !lines.is_empty() {
            self.sink_queue
                .lock()
                .extend(lines.lines().map(str::to_owned));
        }
    }

    /// Hands the delivered lines to the sink, in order. Call with no store connection held:
    /// the sink may call the store (and so deliver more lines, which it then receives too).
    pub fn notify_sink(&self) {
        let Some(sink) = &self.sink else {
            return;
        };
        loop {
            // One drainer at a time keeps the order; a call that finds one at work (another
            // thread, or the sink itself calling the store) leaves its lines to it.
            let Some(draining) = self.sink_drain.try_lock() else {
                return;
            };
            loop {
                let lines = std::mem::take(&mut *self.sink_queue.lock());
                if lines.is_empty() {
                    break;
                }
                for line in &lines {
                    sink.record(line);
                }
            }
            drop(draining);
            // Lines queued after the last take but before the drainer let go.
            if self.sink_queue.lock().is_empty() {
                return;
            }
        }
    }

    /// Syncs the log file; the records it holds may then leave the outbox (see
    /// [`AuditLog::prunable`]).
    pub fn sync_file(&self) -> Result<()> {
        if let Some(file) = self.file.lock().as_mut() {
            let head = file.sync()?;
            self.synced_through.fetch_max(head.seq, Ordering::AcqRel);
        }
        Ok(())
    }

    /// The record up to which the outbox can be emptied now, if that is further than it was:
    /// the caller drops those rows in its transaction and then calls [`AuditLog::pruned`].
    pub fn prunable(&self) -> Option<u64> {
        let synced = self.synced_through.load(Ordering::Acquire);
        (synced > self.pruned_through.load(Ordering::Acquire)).then_some(synced)
    }

    /// Notes that the outbox rows up to `through` were dropped (committed).
    pub fn pruned(&self, through: u64) {
        self.pruned_through.fetch_max(through, Ordering::AcqRel);
    }

    /// Syncs the log file and drops from the outbox the records it now durably holds, in a
    /// transaction of its own (on close).
    pub fn prune(&self, store: &mut dyn Store) -> Result<()> {
        self.sync_file()?;
        if let Some(through) = self.prunable() {
            store.outbox_prune(through)?;
            self.pruned(through);
        }
        Ok(())
    }
}

/// The lines that follow record `after`: from `fresh` when it continues right there, else
/// from the store's outbox (which holds every record not yet pruned, `fresh` included) — up
/// to the last of `fresh` only: a later record may belong to a change committed since whose
/// sync has not returned yet (group commit), and the log must never get ahead of what is
/// durable in the store. That change delivers it itself.
fn lines_after(store: &mut dyn Store, after: u64, fresh: &[SealedLine]) -> Result<String> {
    if let Some(lines) = fresh_lines_after(after, fresh) {
        return Ok(lines);
    }
    let upto = fresh.last().map_or(u64::MAX, |(seq, _)| *seq);
    let mut lines = String::new();
    let mut from = after;
    loop {
        let page = store.outbox_after(from, BACKLOG_PAGE)?;
        let full = page.len() == BACKLOG_PAGE;
        for (seq, line) in page {
            if seq > upto {
                return Ok(lines);
            }
            lines.push_str(&line);
            if !line.ends_with('\n') {
                lines.push('\n');
            }
            from = seq;
        }
        if !full {
            return Ok(lines);
        }
    }
}

/// The lines of `fresh` after record `after`, when `fresh` continues the chain right there
/// or overlaps what came before (`None` when records between `after` and `fresh` are
/// missing, or `fresh` is empty).
fn fresh_lines_after(after: u64, fresh: &[SealedLine]) -> Option<String> {
    let (first, _) = fresh.first()?;
    (*first <= after + 1).then(|| {
        fresh
            .iter()
            .filter(|(seq, _)| *seq > after)
            .map(|(_, line)| line.as_str())
            .collect()
    })
}

/// The sequence number of the last of `lines`.
fn last_seq(lines: &str) -> Option<u64> {
    lines
        .lines()
        .next_back()
        .and_then(super::entry::head_of)
        .map(|head| head.seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::entry::head_of;

    /// A log over a file in a directory dropped with it, and `n` sealed lines of its chain.
    fn log_and_lines(n: usize) -> (tempfile::TempDir, AuditLog, Vec<SealedLine>) {
        let dir = tempfile::tempdir().unwrap();
        let key = MacKey::derive(b"audit", b"test");
        let log = AuditLog::open(key, Some(&dir.path().join("a.jsonl")), None, false).unwrap();
        let entries: Vec<AuditEntry> = (0..n)
            .map(|i| {
                AuditEntry::new(
                    &Actor::Host,
                    AuditAction::Create,
                    "t",
                    vec![format!("s{i}")],
                    ErrorCode::Ok,
                )
            })
            .collect();
        let lines = log.seal(&mut ChainHead::default(), &entries).unwrap();
        (dir, log, lines)
    }

    fn file_seqs(log: &AuditLog) -> Vec<u64> {
        let text = std::fs::read_to_string(log.path().unwrap()).unwrap();
        text.lines().map(|l| head_of(l).unwrap().seq).collect()
    }

    #[test]
    fn a_sync_delivers_the_staged_records_it_made_durable_and_their_changes_find_them_there() {
        let (_dir, log, lines) = log_and_lines(4);
        // Three changes: records 1 and 2 committed with ticket 1, record 3 with ticket 2,
        // record 4 with ticket 3 (not yet durable).
        log.stage(1, &lines[0..1]);
        log.stage(1, &lines[1..2]);
        log.stage(2, &lines[2..3]);
        log.stage(3, &lines[3..4]);
        log.deliver_staged(2);
        assert_eq!(
            file_seqs(&log),
            [1, 2, 3],
            "one append, up to the durable ticket"
        );
        // The covered changes have nothing left to write.
        assert!(log.deliver_fresh(&lines[1..2], 1).unwrap());
        assert!(log.deliver_fresh(&lines[2..3], 2).unwrap());
        assert_eq!(file_seqs(&log), [1, 2, 3]);
        // The last change's own delivery writes its record once its sync returned.
        assert!(log.deliver_fresh(&lines[3..4], 3).unwrap());
        assert_eq!(file_seqs(&log), [1, 2, 3, 4]);
        assert!(log.staged.as_ref().unwrap().lock().is_empty());
    }

    #[test]
    fn staged_records_after_a_gap_wait_and_their_change_reads_the_outbox() {
        let (_dir, log, lines) = log_and_lines(3);
        // Record 1 belongs to a change not staged here (another handle's, say).
        log.stage(2, &lines[1..2]);
        log.stage(2, &lines[2..3]);
        log.deliver_staged(2);
        assert!(file_seqs(&log).is_empty(), "nothing may skip record 1");
        assert!(
            !log.deliver_fresh(&lines[2..3], 2).unwrap(),
            "its change must read record 1 from the outbox"
        );
        // Once record 1 is in the file, the change of ticket 2 appends records 2 and 3 in one
        // write.
        assert!(log.deliver_fresh(&lines[0..1], 1).unwrap());
        assert_eq!(file_seqs(&log), [1]);
        assert!(log.deliver_fresh(&lines[2..3], 2).unwrap());
        assert_eq!(file_seqs(&log), [1, 2, 3]);
    }

    #[test]
    fn a_log_without_a_file_holds_no_staged_records() {
        let (_dir, with_file, lines) = log_and_lines(1);
        let log = AuditLog::open(with_file.key.clone(), None, None, false).unwrap();
        log.stage(1, &lines);
        log.deliver_staged(1);
        assert!(log.staged.is_none());
        assert!(
            !log.deliver_fresh(&lines, 1).unwrap(),
            "its change uses the outbox"
        );
    }

    #[test]
    fn records_another_delivery_wrote_leave_the_stage() {
        let (_dir, log, lines) = log_and_lines(2);
        log.stage(1, &lines);
        // A delivery of the same records from the outbox (a change holding a connection).
        let mut file = log.file.lock();
        let file = file.as_mut().unwrap();
        let all: String = lines.iter().map(|(_, l)| l.as_str()).collect();
        file.append(|_| Ok(all)).unwrap();
        log.note_file_head(file);
        assert_eq!(log.take_staged(file.head_seq(), 1).0, "");
        assert!(log.staged.as_ref().unwrap().lock().is_empty());
    }
}
