//! The read path of `SecretStorage`: `get`, the cache (load, synchronise with other
//! connections' commits, forget after local writes) and batched usage counting.

use super::operation::Op;
use super::{
    clock, state, value_context, AuditLog, CachedValue, Change, SecretStorage, SecretValue,
    Session, STATE_SCOPE,
};
use crate::access::Operation;
use crate::audit::AuditAction;
use crate::crypto::DataKey;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{validate_name, validate_tenant};
use crate::store::{Store, StoredSecret, StoredVersion, UsageUpdate};
use std::sync::atomic::Ordering;
use std::sync::Arc;

host_operations! {
    /// Decrypts the current value of a secret. The returned holder zeroizes on drop.
    ///
    /// The hot path takes no write lock and does not touch the database. The use is audited
    /// (batched) as the host; see [`Session::get`](crate::Session::get) to act as a principal.
    ///
    /// ```
    /// use tbsecrets::{ErrorCode, MasterKey, SecretStorage, SecretType, StorageOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let options = StorageOptions::with_master_key(MasterKey::generate());
    /// let store = SecretStorage::open(dir.path().join("tbsecrets.db"), options)?;
    /// store.create("tenant-a", "MyApiKey", SecretType::Text, b"s3cr3t", "")?;
    /// store.update_value("tenant-a", "MyApiKey", b"rotated", Some(1))?; // check-and-set
    ///
    /// let value = store.get("tenant-a", "MyApiKey")?; // zeroized on drop
    /// assert_eq!(value.as_str()?, "rotated");
    /// // Tenants are separate: the same name in another tenant is another secret.
    /// let missing = store.get("tenant-b", "MyApiKey");
    /// assert_eq!(missing.unwrap_err().code(), ErrorCode::NotFound);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    fn get(&self, tenant: &str, name: &str) -> Result<SecretValue>;
}

impl Session<'_> {
    /// Decrypts a secret's current value; needs RESOLVE. See [`SecretStorage::get`].
    #[inline]
    pub fn get(&self, tenant: &str, name: &str) -> Result<SecretValue> {
        let store = self.allow(&Op::new(
            Operation::Resolve,
            AuditAction::Get,
            tenant,
            &[name],
        ))?;
        // One clock read for the usage counter and the audit record.
        let now = clock::coarse_now_millis();
        let result = store.cached_value(tenant, name, now);
        let outcome = match &result {
            Ok(_) => ErrorCode::Ok,
            Err(e) => e.code(),
        };
        store.note_use(&self.actor, AuditAction::Get, tenant, name, outcome, now);
        result
    }
}

/// A value-preserving commit of this handle in progress (see
/// [`SecretStorage::own_commit_begins`]): the write connection's data version and the change
/// token inside its transaction; readers that see the token move read through while it
/// lives (it holds `SecretStorage::own_commit`).
struct OwnCommit<'a> {
    _held: parking_lot::MutexGuard<'a, ()>,
    version: u64,
    token: crate::store::Fingerprint,
}

impl SecretStorage {
    /// The current value through the cache, its use at `now` counted (the audit record is
    /// the caller's).
    #[inline]
    fn cached_value(&self, tenant: &str, name: &str, now: i64) -> Result<SecretValue> {
        self.ensure_open()?;
        // Opened under the cache's read lock: no reference count traffic on the hot path.
        let cacheable = self.sync_external_changes();
        let cached = if cacheable {
            self.cache.with(tenant, name, |entry| {
                entry.mark_used(now);
                entry.open()
            })
        } else {
            None
        };
        let value = match cached {
            Some(value) => value?,
            None => {
                let entry = self.load_entry(tenant, name, cacheable)?;
                entry.mark_used(now);
                entry.open()?
            }
        };
        self.maybe_flush_usage(now);
        Ok(value)
    }

    /// Counts a use of a cache entry (see [`SecretStorage::maybe_flush_usage`]).
    pub(super) fn mark_used(&self, entry: &CachedValue) {
        let now = clock::coarse_now_millis();
        entry.mark_used(now);
        self.maybe_flush_usage(now);
    }

    /// At most every few seconds, writes the batched usage counters — only if the backend is
    /// free: the read path never waits for it.
    #[inline]
    pub(super) fn maybe_flush_usage(&self, now: i64) {
        if self.usage_flush_timer.due(now) {
            if let Some(mut conn) = self.backend.try_connection() {
                // Statistics only: a failure keeps the counts pending for the next flush.
                let _ = self.flush_usage_to(conn.store());
                drop(conn);
                self.notify_sink();
            }
        }
    }

    /// The cache entry for a secret, loading it on a miss — or reading through, uncached,
    /// while the backend cannot report changes.
    pub(super) fn current_entry(&self, tenant: &str, name: &str) -> Result<Arc<CachedValue>> {
        self.ensure_open()?;
        if !self.sync_external_changes() {
            return self.load_entry(tenant, name, false);
        }
        match self.cache.get(tenant, name) {
            Some(entry) => Ok(entry),
            None => self.load_entry(tenant, name, true),
        }
    }

    /// The slow path: reads the current version from the backend, into the cache if
    /// `cache`. An uncached read counts its use at once (nothing else would).
    pub(super) fn load_entry(
        &self,
        tenant: &str,
        name: &str,
        cache: bool,
    ) -> Result<Arc<CachedValue>> {
        validate_tenant(tenant)?;
        validate_name(name)?;
        // A local write or a cache clear after this point makes the read below possibly stale.
        let generation = self.generation.load(Ordering::Acquire);
        let (secret, stored, key) = self.current_sealed(tenant, name, false)?;
        let header_len = crate::crypto::blob::HEADER_LEN.min(stored.blob.len());
        let aad = value_context(tenant, name, secret.secret_type, secret.version)
            .aad(&stored.blob[..header_len]);
        let entry = Arc::new(CachedValue::new(
            secret.secret_type,
            secret.version,
            aad,
            stored.blob,
            key,
        ));
        if cache {
            let current = || self.generation.load(Ordering::Acquire) == generation;
            if let Some(usage) = self.cache.insert_if(tenant, name, entry.clone(), current) {
                self.pending_usage.lock().push(usage);
            }
        } else {
            self.pending_usage.lock().push(UsageUpdate {
                tenant: tenant.to_owned(),
                name: name.to_owned(),
                last_used_at: clock::coarse_now_millis(),
                uses: 1,
            });
        }
        Ok(entry)
    }

    /// Drops every cache entry when the backend's change token moved (anyone committed but
    /// this handle's own usage flush, which records its commit as seen). Lock-free when
    /// nothing changed. Returns false when the backend cannot report changes
    /// right now: the caller must read through.
    #[inline]
    pub(super) fn sync_external_changes(&self) -> bool {
        if !self.options.cache_values {
            return false;
        }
        let Some(token) = self.backend.change_token() else {
            return false;
        };
        if self.seen.differs(&token) {
            // While a usage flush of this handle commits (it then records its own commit as
            // seen, `OwnCommit`), whose commit moved the token is not known yet: read through
            // rather than wait for it (its commit may run a checkpoint) or clear the cache.
            let Some(_flush) = self.own_commit.try_lock() else {
                return false;
            };
            let Some(token) = self.backend.change_token() else {
                return false;
            };
            if self.seen.differs(&token) {
                self.generation.fetch_add(1, Ordering::AcqRel);
                let usage = self.cache.clear();
                if !usage.is_empty() {
                    self.pending_usage.lock().extend(usage);
                }
                self.seen.record(&token);
            }
        }
        true
    }

    /// A secret's current metadata and ciphertext, its pointer seal verified, with the data
    /// key that opens it; a deleted secret is NOT_FOUND unless `deleted_too`.
    fn current_sealed(
        &self,
        tenant: &str,
        name: &str,
        deleted_too: bool,
    ) -> Result<(StoredSecret, StoredVersion, Arc<DataKey>)> {
        let mut conn = self.backend.read_connection()?;
        let backend = conn.store();
        let (secret, stored) = backend
            .current(tenant, name)?
            .ok_or_else(|| Error::secret_not_found(tenant, name))?;
        state::verify_pointer(&self.state_key, &secret)?;
        if secret.deleted_at.is_some() && !deleted_too {
            return Err(Error::secret_not_found(tenant, name));
        }
        let key = self.keyring.key(backend, tenant, stored.dek_id)?;
        Ok((secret, stored, key))
    }

    /// Reads and decrypts a secret's current value straight from the backend, bypassing the
    /// cache and usage counting, deleted or not (for verification, not for use).
    pub(super) fn read_uncounted(&self, tenant: &str, name: &str) -> Result<SecretValue> {
        let (secret, stored, key) = self.current_sealed(tenant, name, true)?;
        let bytes = crate::crypto::open(
            key.cipher(),
            &value_context(tenant, name, secret.secret_type, secret.version),
            &stored.blob,
        )?;
        Ok(SecretValue::new(secret.secret_type, secret.version, bytes))
    }

    /// Writes batched usage counters to the store and batched use records to the audit log.
    pub fn flush_usage(&self) -> Result<()> {
        self.ensure_open()?;
        let flushed = self.flush_usage_to(self.backend.connection()?.store());
        self.notify_sink();
        flushed
    }

    /// Counts a use of a value at `now` in the audit log (batched).
    #[inline]
    pub(super) fn note_use(
        &self,
        actor: &crate::access::Actor,
        action: crate::audit::AuditAction,
        tenant: &str,
        name: &str,
        outcome: ErrorCode,
        now: i64,
    ) {
        if outcome == ErrorCode::Closed {
            return;
        }
        if let Some(audit) = &self.audit {
            if audit.note_use(actor, action, tenant, name, outcome, now) {
                // Due: written with the usage counters, only if the backend is free.
                if let Some(mut conn) = self.backend.try_connection() {
                    let _ = self.flush_usage_to(conn.store());
                    drop(conn);
                    self.notify_sink();
                }
            }
        }
    }

    /// Writes usage counters and batched use records, in one transaction.
    pub(super) fn flush_usage_to(&self, backend: &mut dyn Store) -> Result<()> {
        let mut updates = std::mem::take(&mut *self.pending_usage.lock());
        updates.extend(self.cache.take_usage());
        let uses = self
            .audit
            .as_ref()
            .map(AuditLog::take_uses)
            .unwrap_or_default();
        if updates.is_empty() && uses.is_empty() {
            return Ok(());
        }
        // Usage counters and use records change no value: the flush keeps the value cache
        // across its own commit (`OwnCommit`).
        let written = if uses.is_empty() {
            let mut own = None;
            let written = backend.with_write_lock(STATE_SCOPE, &mut |tx| {
                tx.record_usage(&updates)?;
                own = self.own_commit_begins(tx);
                Ok(())
            });
            if written.is_ok() {
                self.own_commit_ends(own.take(), backend);
            }
            written
        } else {
            let mut change = Change::with_records(uses);
            let written = self
                .commit_on_then(
                    backend,
                    STATE_SCOPE,
                    &mut change,
                    |tx, _| {
                        tx.record_usage(&updates)?;
                        Ok(self.own_commit_begins(tx))
                    },
                    |store, own| self.own_commit_ends(own.take(), store),
                )
                .map(drop);
            if written.is_err() {
                if let Some(audit) = &self.audit {
                    audit.restore_uses(change.into_records());
                }
            }
            written
        };
        if let Err(e) = written {
            // Keep the counts for the next attempt rather than losing them.
            self.pending_usage.lock().extend(updates);
            return Err(e);
        }
        Ok(())
    }

    /// Called inside the write transaction of a change that alters no value (a usage flush),
    /// on the write connection `tx`: when every commit up to now is synchronised with the
    /// cache (the change token is the one seen) and the backend can tell its own commits from
    /// others' ([`Store::data_version`]), makes readers that see the token move read through
    /// until [`SecretStorage::own_commit_ends`] (see `sync_external_changes`).
    fn own_commit_begins(&self, tx: &mut dyn Store) -> Option<OwnCommit<'_>> {
        let version = tx.data_version().ok().flatten()?;
        let token = self.backend.change_token()?;
        if self.seen.differs(&token) {
            return None; // others' commits wait for a reader to clear the cache
        }
        // Held for a moment by a reader clearing the cache: this flush then clears it too.
        let held = self.own_commit.try_lock()?;
        Some(OwnCommit {
            _held: held,
            version,
            token,
        })
    }

    /// Right after the commit of [`SecretStorage::own_commit_begins`], on the same connection:
    /// when no other connection committed meanwhile, records the change token after it as
    /// seen, so the cache stays; then lets readers use the cache again.
    fn own_commit_ends(&self, own: Option<OwnCommit<'_>>, store: &mut dyn Store) {
        let Some(own) = own else {
            return;
        };
        // The token first: a commit by anyone else before it moves the data version read after.
        let after = self.backend.change_token();
        let alone = store.data_version().ok().flatten() == Some(own.version);
        if let Some(after) = after.filter(|_| alone && !self.seen.differs(&own.token)) {
            self.seen.record(&after);
        }
    }

    /// Drops the cache entry of a secret after a local write, keeping its usage counts.
    pub(super) fn forget(&self, tenant: &str, name: &str) {
        // Bumped before the removal: a fill that read the old row cannot re-insert it.
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(usage) = self.cache.remove(tenant, name) {
            self.pending_usage.lock().push(usage);
        }
    }

    /// Drops the cache entry and the unflushed usage counts of a secret being deleted: they
    /// die with it, rather than being added to a secret created later under the same name.
    pub(super) fn discard_usage(&self, tenant: &str, name: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let _ = self.cache.remove(tenant, name);
        self.pending_usage
            .lock()
            .retain(|u| u.tenant != tenant || u.name != name);
    }
}

#[cfg(test)]
mod tests {
    use crate::audit::AuditOptions;
    use crate::{MasterKey, SecretStorage, SecretType, StorageOptions};
    use std::sync::mpsc;
    use std::time::Duration;

    /// A cache miss is read on the reader connection: it completes while the handle's
    /// writer connection holds a write transaction (as a master-key rotation's commit does).
    #[test]
    fn a_cache_miss_does_not_wait_for_the_handles_write_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let options = StorageOptions::with_master_key(MasterKey::generate());
        let store = SecretStorage::open(dir.path().join("r.db"), options).unwrap();
        store.create("t", "a", SecretType::Text, b"1", "").unwrap();
        store.forget_keys(); // the next get is a miss
        let (held, wait_held) = mpsc::channel();
        let (read, wait_read) = mpsc::channel::<()>();
        std::thread::scope(|scope| {
            let store = &store;
            scope.spawn(move || {
                let mut conn = store.backend.connection().unwrap();
                conn.store()
                    .with_write_lock("test", &mut |_| {
                        held.send(()).unwrap();
                        // Released once the get below returned (or after a generous bound,
                        // so that a regression fails instead of hanging).
                        let _ = wait_read.recv_timeout(Duration::from_secs(60));
                        Ok(())
                    })
                    .unwrap();
            });
            wait_held.recv().unwrap();
            let got = store.get("t", "a").unwrap();
            assert_eq!(got.as_bytes(), b"1");
            assert!(
                store.backend.try_connection().is_none(),
                "the write transaction was still held while the get ran"
            );
            read.send(()).unwrap();
        });
    }

    /// The handle's own usage flush (batched use records, usage counters) changes no value:
    /// the value cache survives it, with the audit log on (a change of the state row) and off
    /// (usage columns only). A value changed through another handle still clears it.
    #[test]
    fn the_handles_own_usage_flush_keeps_the_value_cache() {
        for audit in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("c.db");
            let key = MasterKey::generate();
            let mut options = StorageOptions::with_master_key(key.clone());
            if !audit {
                options.audit = AuditOptions::disabled();
            }
            let store = SecretStorage::open(&path, options).unwrap();
            store.create("t", "a", SecretType::Text, b"a1", "").unwrap();
            store.create("t", "b", SecretType::Text, b"b1", "").unwrap();
            assert_eq!(store.get("t", "a").unwrap().as_bytes(), b"a1");
            assert_eq!(store.get("t", "b").unwrap().as_bytes(), b"b1");
            assert_eq!(store.cache.len(), 2, "audit {audit}: both values cached");

            let token = store.backend.change_token();
            store.flush_usage().unwrap();
            assert_ne!(
                token,
                store.backend.change_token(),
                "audit {audit}: the flush committed (the token moved)"
            );
            assert_eq!(store.get("t", "a").unwrap().as_bytes(), b"a1");
            assert_eq!(
                store.cache.len(),
                2,
                "audit {audit}: the handle's own flush cleared the cache"
            );

            let other = SecretStorage::open(&path, StorageOptions::with_master_key(key)).unwrap();
            other.update_value("t", "b", b"b2", None).unwrap();
            assert_eq!(store.get("t", "a").unwrap().as_bytes(), b"a1");
            assert_eq!(
                store.cache.len(),
                1,
                "audit {audit}: another handle's change cleared the cache (then a was read)"
            );
            assert_eq!(store.get("t", "b").unwrap().as_bytes(), b"b2");
        }
    }
}
