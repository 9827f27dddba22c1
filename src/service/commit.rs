//! One change, one transaction: what a write does, the advance of the store's sealed state,
//! the seals of the pointers it moved and its audit records commit together or not at all.
//! After the commit the anchor file is raised and the records are delivered to the log.

use super::state::{pointer_seal, rollback_detected, Pointer, StoreState, ADOPT_FLAG};
use super::SecretStorage;
use crate::audit::{AuditEntry, AuditLog, SealedLine};
use crate::error::{Error, Result};
use crate::store::{ChangeClose, ChangeRun, Store, SyncHooks, STATE_KEY};

/// The scope of changes that touch no secret (audit records alone, usage, state adoption).
pub(super) const STATE_SCOPE: &str = "\u{1f}state";

/// Prune the outbox (after syncing the log) whenever a record number is a multiple of this.
const PRUNE_EVERY: u64 = 64;

/// What a change did, for the seals and the audit record it commits with.
#[derive(Debug, Default)]
pub(crate) struct Change {
    /// The audit records (none when the handle has no audit log).
    records: Vec<AuditEntry>,
    /// The secrets whose current-version pointer the change set.
    pointers: Vec<(String, String, Pointer)>,
    /// A state the store must continue from (accepting a restore): its counter and audit
    /// chain head, where they are ahead of the store's.
    continue_from: Option<StoreState>,
}

impl Change {
    /// A change recorded by `record` (`None`: not audited).
    pub fn new(record: Option<AuditEntry>) -> Change {
        Change {
            records: record.into_iter().collect(),
            ..Change::default()
        }
    }

    /// A change recorded by several records (batched uses).
    pub fn with_records(records: Vec<AuditEntry>) -> Change {
        Change {
            records,
            ..Change::default()
        }
    }

    /// Adds a record the change makes besides its own (e.g. a secret the retention purge
    /// erased with it).
    pub fn push_record(&mut self, record: AuditEntry) {
        self.records.push(record);
    }

    /// The version written (or key id created), for the record.
    pub fn set_version(&mut self, version: u64) {
        for record in &mut self.records {
            record.version = Some(version);
        }
    }

    /// The secrets concerned, when only the change knows them.
    pub fn set_names(&mut self, names: Vec<String>) {
        for record in &mut self.records {
            record.names.clone_from(&names);
        }
    }

    /// One record per secret instead of the change's one record: each names its secret and
    /// the version written or read (export and import, which concern many secrets).
    pub fn per_secret(&mut self, secrets: &[(String, u64)]) {
        let Some(template) = self.records.first().cloned() else {
            return;
        };
        if secrets.is_empty() {
            return;
        }
        self.records = secrets
            .iter()
            .map(|(name, version)| {
                let mut record = template.clone();
                record.names = vec![name.clone()];
                record.version = Some(*version);
                record
            })
            .collect();
    }

    /// Notes that the change set a secret's current-version pointer (its version, or its
    /// deleted state) to `pointer`.
    pub fn moved_pointer(&mut self, tenant: &str, name: &str, pointer: Pointer) {
        self.pointers
            .push((tenant.to_owned(), name.to_owned(), pointer));
    }

    /// The records, when the change failed (to be audited with the failure's outcome).
    pub fn into_records(self) -> Vec<AuditEntry> {
        self.records
    }
}

impl SecretStorage {
    /// Runs `f` as one change in its own transaction on a connection of the backend, through
    /// [`crate::store::Backend::run_change`] (on SQLite, possibly on the thread of the change
    /// that holds the write connection while this one waits: hence `Send`).
    ///
    /// Group commit: the connection is released before the commit is made durable, so that
    /// writers of other threads commit meanwhile and one sync covers them all
    /// ([`crate::store::Backend::sync_commits`]). The change is reported committed, its
    /// anchor raised and its records delivered only once that sync has returned.
    pub(super) fn commit<T: Send>(
        &self,
        scope: &str,
        change: &mut Change,
        f: impl FnMut(&mut dyn Store, &mut Change) -> Result<T> + Send,
    ) -> Result<T> {
        let mut outcome = None;
        let mut body = self.change_body(change, f, &mut outcome);
        // A key provider outside the process is called on the thread of the store call.
        let ran = self
            .backend
            .run_change(scope, &mut body, &|| self.keyring.in_process());
        drop(body);
        let transacted = ran.and_then(|ran| Ok((committed_result(outcome)?, ran)));
        let result = match transacted {
            Ok((committed, ChangeRun::Durable(mut conn))) => {
                Ok(self.finish(conn.store(), committed))
            }
            Ok((committed, ChangeRun::Deferred(ticket))) => {
                let hooks = StagedRecords {
                    audit: self.audit.as_ref(),
                    sealed: &committed.sealed,
                };
                self.backend
                    .sync_commits(ticket, &hooks)
                    .map(|()| self.finish_without_connection(committed, ticket))
            }
            Err(e) => Err(e),
        };
        self.notify_sink();
        result
    }

    /// Hands delivered audit lines to the sink (call with no connection held).
    pub(super) fn notify_sink(&self) {
        if let Some(audit) = &self.audit {
            audit.notify_sink();
        }
    }

    /// Runs `f` as one change on `store`, holding the write lock of `scope`: `f`'s writes,
    /// the state row advanced by one, the seals of the pointers `f` moved and the change's
    /// audit records commit as one transaction. Then the anchor is raised and the records
    /// are delivered; a failure there is kept for [`SecretStorage::audit_delivery_error`]
    /// and never turns the committed change into an error.
    pub(super) fn commit_on<T>(
        &self,
        store: &mut dyn Store,
        scope: &str,
        change: &mut Change,
        f: impl FnMut(&mut dyn Store, &mut Change) -> Result<T>,
    ) -> Result<T> {
        self.commit_on_then(store, scope, change, f, |_, _| ())
    }

    /// [`SecretStorage::commit_on`] that runs `committed` on `store` and the change's value
    /// right after the commit, before the anchor is raised and the records are delivered.
    pub(super) fn commit_on_then<T>(
        &self,
        store: &mut dyn Store,
        scope: &str,
        change: &mut Change,
        f: impl FnMut(&mut dyn Store, &mut Change) -> Result<T>,
        committed: impl FnOnce(&mut dyn Store, &mut T),
    ) -> Result<T> {
        let mut outcome = None;
        let mut body = self.change_body(change, f, &mut outcome);
        store.with_write_lock(scope, &mut body)?;
        drop(body);
        let mut done = committed_result(outcome)?;
        committed(store, &mut done.value);
        Ok(self.finish(store, done))
    }

    /// The body of a change's transaction, to run under the write lock of its scope: `f`'s
    /// writes, the state row advanced by one, the seals of the pointers `f` moved and the
    /// change's records; what committed goes into `outcome`. The body is `Send` when `f`
    /// and `T` are, so [`crate::store::Backend::run_change`] may run it on another thread.
    fn change_body<'a, T: 'a>(
        &'a self,
        change: &'a mut Change,
        mut f: impl FnMut(&mut dyn Store, &mut Change) -> Result<T> + 'a,
        outcome: &'a mut Option<Committed<T>>,
    ) -> impl FnMut(&mut dyn Store) -> Result<()> + 'a {
        move |tx: &mut dyn Store| {
            let value = f(tx, change)?;
            // The state row serialises every change (PostgreSQL: until commit, across nodes):
            // locked after `f`, so that only the seals, the records and the commit wait.
            let mut state = self.locked_state(tx)?;
            if let Some(base) = &change.continue_from {
                state.counter = state.counter.max(base.counter);
                if base.audit.seq > state.audit.seq {
                    state.audit = base.audit.clone();
                }
            }
            state.counter += 1;
            let seals: Vec<(&str, &str, [u8; 32])> = change
                .pointers
                .iter()
                .map(|(tenant, name, pointer)| {
                    let seal = pointer_seal(&self.state_key, tenant, name, *pointer, state.counter);
                    (tenant.as_str(), name.as_str(), seal)
                })
                .collect();
            let sealed = match &self.audit {
                Some(audit) => audit.seal(&mut state.audit, &change.records)?,
                None => Vec::new(),
            };
            // Rows a synced log holds go with this commit (no transaction of their own).
            let pruned = self.audit.as_ref().and_then(AuditLog::prunable);
            let encoded = state.encode(&self.state_key);
            tx.close_change(&ChangeClose {
                seals: &seals,
                seal_seq: state.counter,
                outbox: &sealed,
                prune_through: pruned,
                state: (STATE_KEY, &encoded),
            })?;
            *outcome = Some(Committed {
                value,
                state,
                sealed,
                pruned,
            });
            Ok(())
        }
    }

    /// What follows a durable commit: the outbox rows it pruned are noted, the anchor is
    /// raised and the records are delivered (a failure there is kept for
    /// [`SecretStorage::audit_delivery_error`]).
    fn finish<T>(&self, store: &mut dyn Store, committed: Committed<T>) -> T {
        self.note_pruned(committed.pruned);
        self.after_commit(store, &committed.state, &committed.sealed);
        committed.value
    }

    /// [`SecretStorage::finish`] for a change whose connection went back before its sync
    /// (group commit): a connection is taken only when delivering the records needs the
    /// store's outbox, so the changes one sync covered finish side by side.
    fn finish_without_connection<T>(&self, committed: Committed<T>, ticket: u64) -> T {
        self.note_pruned(committed.pruned);
        self.raise_anchor(&committed.state);
        if let Some(audit) = &self.audit {
            let delivered = audit
                .deliver_fresh(&committed.sealed, ticket)
                .and_then(|done| {
                    if done {
                        return Ok(());
                    }
                    // Delivery reads committed outbox rows only, unless it must drop them too:
                    // then it needs the writer (which would end a batch of changes).
                    let mut conn = if audit.delivery_writes() {
                        self.backend.connection()?
                    } else {
                        self.backend.read_connection()?
                    };
                    audit.deliver(conn.store(), &committed.sealed)
                });
            self.synced_delivery(audit, delivered, &committed.sealed);
        }
        committed.value
    }

    /// Notes the outbox rows a committed change pruned.
    fn note_pruned(&self, pruned: Option<u64>) {
        if let (Some(audit), Some(through)) = (&self.audit, pruned) {
            audit.pruned(through);
        }
    }

    /// Raises the anchor and delivers the records of a committed change.
    fn after_commit(&self, store: &mut dyn Store, state: &StoreState, sealed: &[SealedLine]) {
        self.raise_anchor(state);
        if let Some(audit) = &self.audit {
            self.synced_delivery(audit, audit.deliver(store, sealed), sealed);
        }
    }

    /// Raises the anchor file to a committed state (a failure is kept as a delivery error).
    fn raise_anchor(&self, state: &StoreState) {
        if let Some(anchor) = &self.anchor {
            if let Err(e) = anchor.raise(&self.state_key, state) {
                self.keep_delivery_error(e);
            }
        }
    }

    /// After a delivery: syncs the log file whenever the records crossed a multiple of
    /// [`PRUNE_EVERY`] (so the outbox can be pruned), and keeps a failure.
    fn synced_delivery(&self, audit: &AuditLog, mut delivered: Result<()>, sealed: &[SealedLine]) {
        let crossed = sealed.iter().any(|(seq, _)| seq % PRUNE_EVERY == 0);
        if delivered.is_ok() && crossed {
            delivered = audit.sync_file();
        }
        if let Err(e) = delivered {
            self.keep_delivery_error(e);
        }
    }

    /// Keeps the latest failure to deliver committed records (they wait in the outbox).
    pub(super) fn keep_delivery_error(&self, e: Error) {
        *self.delivery_error.lock() = Some(e);
    }

    /// The store's state as committed now, authenticated.
    pub(super) fn current_state(&self, store: &mut dyn Store) -> Result<StoreState> {
        self.state_of(store.meta(STATE_KEY)?)
    }

    /// The store's state, read under the write lock and authenticated.
    pub(super) fn locked_state(&self, tx: &mut dyn Store) -> Result<StoreState> {
        self.state_of(tx.lock_meta(STATE_KEY)?)
    }

    /// The state row's value authenticated; INTEGRITY when it is missing or fails.
    fn state_of(&self, value: Option<Vec<u8>>) -> Result<StoreState> {
        let value = value.ok_or_else(missing_state)?;
        StoreState::decode(&self.state_key, &value, "the store's state row")
    }

    /// Creates the state row of a store that has none: a new store (no secret yet; another
    /// process may be opening it too), or one from before authenticated state whose migration
    /// left the adoption flag (its pointers are sealed now). A store with secrets and no state
    /// row otherwise was tampered with: INTEGRITY.
    /// An adopted store's audit chain continues from its log's last record (authenticated).
    pub(super) fn establish_state(&self, store: &mut dyn Store) -> Result<()> {
        let adopting = store.meta(ADOPT_FLAG)?.as_deref() == Some(&[1u8][..]);
        let audit_head = match &self.audit {
            Some(audit) if adopting => audit.verified_file_head()?,
            _ => Default::default(),
        };
        store.with_write_lock(STATE_SCOPE, &mut |tx| {
            if tx.lock_meta(STATE_KEY)?.is_some() {
                return Ok(()); // another process won
            }
            let adopt = tx.meta(ADOPT_FLAG)?.as_deref() == Some(&[1u8][..]);
            let secrets = tx.all_secrets()?;
            if !adopt && !secrets.is_empty() {
                return Err(missing_state());
            }
            let state = StoreState {
                counter: 1,
                audit: if adopt {
                    audit_head.clone()
                } else {
                    Default::default()
                },
            };
            for secret in secrets {
                let seal = pointer_seal(
                    &self.state_key,
                    &secret.tenant,
                    &secret.name,
                    Pointer::of(&secret),
                    state.counter,
                );
                tx.seal_pointer(&secret.tenant, &secret.name, state.counter, &seal)?;
            }
            if adopt {
                tx.put_meta(ADOPT_FLAG, &[0])?;
            }
            tx.put_meta(STATE_KEY, &state.encode(&self.state_key))
        })
    }

    /// Starts a new audit chain (record 1 next), keeping the write counter: for a store that
    /// was just loaded with another store's state (migration), whose log starts empty.
    pub(super) fn restart_audit_chain(&self) -> Result<()> {
        let mut conn = self.backend.connection()?;
        conn.store().with_write_lock(STATE_SCOPE, &mut |tx| {
            let mut state = self.locked_state(tx)?;
            state.audit = Default::default();
            state.counter += 1;
            tx.put_meta(STATE_KEY, &state.encode(&self.state_key))
        })
    }

    /// ROLLBACK_DETECTED when the anchor file or the audit log has seen a newer state than
    /// the store holds — unless `accept`, which makes the store newer than both (one
    /// audited change) and resets the anchor.
    pub(super) fn check_rollback(&self, store: &mut dyn Store, accept: bool) -> Result<()> {
        // The witnesses first, the store after: they only ever hold committed states, so
        // read in this order an honest store is never behind them, however many other
        // processes commit meanwhile.
        let anchored = match &self.anchor {
            Some(anchor) => anchor.read(&self.state_key)?,
            None => None,
        };
        let logged = match &self.audit {
            Some(audit) => audit.file_head()?,
            None => None,
        };
        let state = self.current_state(store)?;
        let anchor_ahead = anchored.as_ref().filter(|a| a.counter > state.counter);
        let log_ahead = logged.as_ref().filter(|h| h.seq > state.audit.seq);
        if anchor_ahead.is_none() && log_ahead.is_none() {
            return Ok(());
        }
        if !accept {
            return Err(match (anchor_ahead, log_ahead, &self.anchor) {
                (Some(seen), _, Some(anchor)) => rollback_detected(
                    &format!("its anchor file {}", anchor.path().display()),
                    "write counter",
                    state.counter,
                    seen.counter,
                ),
                (_, Some(head), _) => rollback_detected(
                    &format!(
                        "its audit log {}",
                        self.audit_log_path().unwrap_or_default().display()
                    ),
                    "audit record",
                    state.audit.seq,
                    head.seq,
                ),
                _ => Error::internal("rollback detected without a witness"),
            });
        }
        let detail = format!(
            "accepted a store at write counter {} and audit record {}; the anchor file had seen counter {}, the audit log record {}",
            state.counter,
            state.audit.seq,
            anchored.as_ref().map_or(0, |a| a.counter),
            logged.as_ref().map_or(0, |h| h.seq),
        );
        // The chain continues from the log's last record (authenticated by its MAC).
        let audit_head = match (&self.audit, log_ahead) {
            (Some(audit), Some(_)) => audit.verified_file_head()?,
            _ => Default::default(),
        };
        let mut change = Change::new(self.audit.as_ref().map(|_| {
            let mut entry = AuditEntry::new(
                &crate::access::Actor::Host,
                crate::audit::AuditAction::AcceptRestore,
                "*",
                Vec::new(),
                crate::ErrorCode::Ok,
            );
            entry.detail = Some(detail);
            entry
        }));
        change.continue_from = Some(StoreState {
            counter: anchored.map_or(0, |a| a.counter),
            audit: audit_head,
        });
        self.commit_on(store, STATE_SCOPE, &mut change, |_, _| Ok(()))
    }
}

/// A committed change: its result, the state it committed and its sealed records.
struct Committed<T> {
    value: T,
    state: StoreState,
    sealed: Vec<SealedLine>,
    /// The outbox rows up to this record were dropped with it.
    pruned: Option<u64>,
}

/// What a change's body left once its transaction committed.
fn committed_result<T>(outcome: Option<Committed<T>>) -> Result<Committed<T>> {
    outcome.ok_or_else(|| Error::internal("the change committed without its result"))
}

fn missing_state() -> Error {
    Error::integrity("the store's state row is missing: the database was edited")
}

/// A change's records on their way to the log file while it waits for its sync: staged once
/// its commit succeeded, and appended together with every other staged record by whichever
/// change's sync makes them durable first (group commit), so that the changes one sync covers
/// do not each take the log file in turn.
struct StagedRecords<'a> {
    audit: Option<&'a AuditLog>,
    sealed: &'a [SealedLine],
}

impl SyncHooks for StagedRecords<'_> {
    fn committed(&self, ticket: u64) {
        if let Some(audit) = self.audit {
            audit.stage(ticket, self.sealed);
        }
    }

    fn durable(&self, through: u64) {
        if let Some(audit) = self.audit {
            audit.deliver_staged(through);
        }
    }
}
