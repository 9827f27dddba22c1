//! Soft delete: `delete` keeps a secret recoverable for [`StorageOptions::deleted_retention`],
//! `undelete` brings it back with its versions, `destroy` erases it for good (ciphertexts
//! overwritten, not only unlinked), and the retention purge erases what has been deleted for
//! longer (when a store opens, and by every delete). Each is one [`Session`] method needing
//! DELETE; the host's `SecretStorage` methods are declared below, one line each.
//!
//! A deleted secret keeps its row, with its deletion time, which its sealed current-version
//! pointer covers (`state.rs`): a row moved in or out of the deleted state in SQL fails
//! authentication (INTEGRITY) at the next read, `undelete` or `audit verify`, the retention
//! purge does not erase it, and `destroy` treats it as live.
//!
//! [`StorageOptions::deleted_retention`]: super::StorageOptions::deleted_retention

use super::operation::Op;
use super::secrets::{live, write_scope};
use super::state::{self, Pointer};
use super::{Change, SecretStorage, Session};
use crate::access::{Actor, Operation};
use crate::audit::{AuditAction, AuditEntry};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{now_millis, validate_name, validate_tenant};
use crate::store::Store;

host_operations! {
    /// Deletes a secret with all its versions: it is no longer resolvable nor listed (except
    /// by a listing of deleted secrets), and stays recoverable with
    /// [`SecretStorage::undelete`] for the store's `deleted_retention` (default 30 days;
    /// zero: erased at once, as by [`SecretStorage::destroy`]). Fails with IN_USE, naming the
    /// sources, while any tracked source references it, by its name or by a per-message
    /// pattern that can be filled to it (`device-{{metadata.deviceName}}` for `device-7`);
    /// see [`SecretStorage::delete_with`] to force. Audited as the host.
    ///
    /// ```
    /// use tbsecrets::{ErrorCode, ListQuery, MasterKey, SecretStorage, SecretType, StorageOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let options = StorageOptions::with_master_key(MasterKey::generate());
    /// let store = SecretStorage::open(dir.path().join("tbsecrets.db"), options)?;
    /// store.create("t", "db", SecretType::Text, b"pw", "")?;
    /// store.delete("t", "db")?;
    /// assert_eq!(store.get("t", "db").unwrap_err().code(), ErrorCode::NotFound);
    /// let deleted = store.list("t", &ListQuery { deleted: true, ..Default::default() })?;
    /// assert_eq!(deleted.items[0].name, "db");
    /// store.undelete("t", "db")?;
    /// assert_eq!(store.get("t", "db")?.as_bytes(), b"pw");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn delete(&self, tenant: &str, name: &str) -> Result<()>;

    /// Deletes a secret (see [`SecretStorage::delete`]); with `force`, even while sources
    /// reference it (their references stay in the index, so `where_used` still shows what
    /// will break). Audited as the host.
    fn delete_with(&self, tenant: &str, name: &str, force: bool) -> Result<()>;

    /// Makes a deleted secret live again, with its versions, as it was when deleted.
    /// NOT_FOUND when no deleted secret has that name; INTEGRITY when its row was moved in
    /// or out of the deleted state in the database. Audited as the host (UNDELETE).
    fn undelete(&self, tenant: &str, name: &str) -> Result<()>;

    /// Erases a secret, live or deleted, and all its versions for good: the stored
    /// ciphertexts are overwritten before the rows are deleted (SECURITY.md, "What
    /// destroy guarantees"). NOT_FOUND when there is no such secret; IN_USE, naming the
    /// sources, for a live secret that tracked sources reference, by name or by a matching
    /// per-message pattern (delete it with force first); a secret whose deleted state fails
    /// its seal (set in SQL) counts as live. Audited as the host (DESTROY).
    ///
    /// ```
    /// use tbsecrets::{ErrorCode, MasterKey, SecretStorage, SecretType, StorageOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let options = StorageOptions::with_master_key(MasterKey::generate());
    /// let store = SecretStorage::open(dir.path().join("tbsecrets.db"), options)?;
    /// store.create("t", "db", SecretType::Text, b"pw", "")?;
    /// store.delete("t", "db")?;
    /// store.destroy("t", "db")?;
    /// assert_eq!(store.undelete("t", "db").unwrap_err().code(), ErrorCode::NotFound);
    /// store.create("t", "db", SecretType::Text, b"new", "")?; // the name is free again
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn destroy(&self, tenant: &str, name: &str) -> Result<()>;
}

impl Session<'_> {
    /// Deletes a secret unless referenced; needs DELETE. See [`SecretStorage::delete`].
    pub fn delete(&self, tenant: &str, name: &str) -> Result<()> {
        self.delete_with(tenant, name, false)
    }

    /// Deletes a secret; needs DELETE. See [`SecretStorage::delete_with`].
    pub fn delete_with(&self, tenant: &str, name: &str, force: bool) -> Result<()> {
        let names = [name];
        let op = Op::new(Operation::Delete, AuditAction::Delete, tenant, &names);
        self.change(op, |store, change| {
            store.ensure_open()?;
            validate_tenant(tenant)?;
            validate_name(name)?;
            let retention = store.options.deleted_retention;
            store.commit(&write_scope(tenant, name), change, |backend, change| {
                let secret = if retention.is_zero() {
                    live(backend.secret(tenant, name)?, tenant, name)?
                } else {
                    store.authentic_secret(backend, tenant, name)?
                };
                if !force {
                    super::dynamic::refuse_in_use(backend, tenant, name)?;
                }
                if retention.is_zero() {
                    return backend.delete(tenant, name);
                }
                let now = now_millis();
                backend.mark_deleted(tenant, name, now)?;
                let pointer = Pointer {
                    deleted_at: Some(now),
                    ..Pointer::of(&secret)
                };
                change.moved_pointer(tenant, name, pointer);
                store.purge_expired(backend, change, now)
            })?;
            store.discard_usage(tenant, name);
            if retention.is_zero() {
                store.scrub();
            }
            Ok(())
        })
    }

    /// Makes a deleted secret live again; needs DELETE. See [`SecretStorage::undelete`].
    pub fn undelete(&self, tenant: &str, name: &str) -> Result<()> {
        let names = [name];
        let op = Op::new(Operation::Delete, AuditAction::Undelete, tenant, &names);
        self.change(op, |store, change| {
            store.ensure_open()?;
            validate_tenant(tenant)?;
            validate_name(name)?;
            store.commit(&write_scope(tenant, name), change, |backend, change| {
                let secret = backend
                    .secret(tenant, name)?
                    .filter(|s| s.deleted_at.is_some())
                    .ok_or_else(|| no_deleted_secret(tenant, name))?;
                state::verify_pointer(&store.state_key, &secret)?;
                backend.undelete(tenant, name)?;
                let pointer = Pointer {
                    deleted_at: None,
                    ..Pointer::of(&secret)
                };
                change.moved_pointer(tenant, name, pointer);
                change.set_version(secret.version);
                Ok(())
            })?;
            store.forget(tenant, name);
            Ok(())
        })
    }

    /// Erases a secret for good; needs DELETE. See [`SecretStorage::destroy`].
    pub fn destroy(&self, tenant: &str, name: &str) -> Result<()> {
        let names = [name];
        let op = Op::new(Operation::Delete, AuditAction::Destroy, tenant, &names);
        self.change(op, |store, change| {
            store.ensure_open()?;
            validate_tenant(tenant)?;
            validate_name(name)?;
            store.commit(&write_scope(tenant, name), change, |backend, _| {
                let secret = backend.secret(tenant, name)?;
                // A deletion set in SQL fails the seal: the secret then counts as live, so that
                // the edit cannot skip the in-use check.
                if secret.is_some_and(|s| !store.authentically_deleted(&s)) {
                    super::dynamic::refuse_in_use(backend, tenant, name)?;
                }
                backend.delete(tenant, name)
            })?;
            store.discard_usage(tenant, name);
            store.scrub();
            Ok(())
        })
    }
}

impl SecretStorage {
    /// Erases, inside the change being committed, every secret deleted longer ago than the
    /// retention (one indexed lookup when there is none), each with a DESTROY record.
    fn purge_expired(&self, backend: &mut dyn Store, change: &mut Change, now: i64) -> Result<()> {
        let retention = self.retention_millis();
        for (tenant, name) in &self.expired(backend, now)? {
            backend.delete(tenant, name)?;
            if self.audit.is_some() {
                change.push_record(purge_record(tenant, name, retention));
            }
        }
        Ok(())
    }

    /// The retention purge when a store opens: one change erasing every expired deleted
    /// secret, or nothing (one indexed lookup) when there is none.
    pub(super) fn purge_expired_on_open(&self, store: &mut dyn Store) -> Result<()> {
        let now = now_millis();
        if self.expired(store, now)?.is_empty() {
            return Ok(());
        }
        let mut change = Change::with_records(Vec::new());
        self.commit_on(
            store,
            super::commit::STATE_SCOPE,
            &mut change,
            |tx, change| self.purge_expired(tx, change, now),
        )?;
        self.scrub_on(store);
        Ok(())
    }

    /// The secrets deleted longer ago than the retention at `now` whose deletion is authentic:
    /// a row whose deletion time was set or moved in SQL fails its seal and is not erased on
    /// its strength (reads of it are INTEGRITY).
    fn expired(&self, backend: &mut dyn Store, now: i64) -> Result<Vec<(String, String)>> {
        let candidates = backend.deleted_before(now.saturating_sub(self.retention_millis()))?;
        let mut expired = Vec::with_capacity(candidates.len());
        for (tenant, name) in candidates {
            if let Some(secret) = backend.secret(&tenant, &name)? {
                if self.authentically_deleted(&secret) {
                    expired.push((tenant, name));
                }
            }
        }
        Ok(expired)
    }

    /// Whether `secret` is deleted and its sealed pointer says so.
    fn authentically_deleted(&self, secret: &crate::store::StoredSecret) -> bool {
        secret.deleted_at.is_some() && state::verify_pointer(&self.state_key, secret).is_ok()
    }

    /// The retention in milliseconds (a zero retention expires every deleted secret; a store
    /// may hold some deleted under a longer one).
    fn retention_millis(&self) -> i64 {
        i64::try_from(self.options.deleted_retention.as_millis()).unwrap_or(i64::MAX)
    }

    /// Best effort after an erase: removes older page images the backend keeps (SQLite: the
    /// WAL is checkpointed and truncated). A failure is not the erase's: it committed.
    fn scrub(&self) {
        if let Ok(mut conn) = self.backend.connection() {
            self.scrub_on(conn.store());
        }
    }

    fn scrub_on(&self, store: &mut dyn Store) {
        let _ = store.scrub();
    }
}

/// The DESTROY record of a secret the retention purge erased.
fn purge_record(tenant: &str, name: &str, retention_ms: i64) -> AuditEntry {
    let mut entry = AuditEntry::new(
        &Actor::Host,
        AuditAction::Destroy,
        tenant,
        vec![name.to_owned()],
        ErrorCode::Ok,
    );
    entry.detail = Some(format!(
        "retention purge: deleted more than {} s ago",
        retention_ms / 1000
    ));
    entry
}

/// NOT_FOUND for `undelete` of a name that no deleted secret has.
fn no_deleted_secret(tenant: &str, name: &str) -> Error {
    Error::new(
        ErrorCode::NotFound,
        format!("no deleted secret '{name}' in tenant '{tenant}' to undelete"),
    )
}
