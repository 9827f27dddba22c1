//! The audit side of `SecretStorage`: records without a change, delivery errors, the log's
//! path and its verification.

use super::operation::Op;
use super::{state, AuditLog, Change, SecretStorage, Session, STATE_SCOPE};
use crate::access::Operation;
use crate::audit::{AuditAction, AuditVerification};
use crate::error::{Error, ErrorCode, Result};
use std::path::Path;

impl SecretStorage {
    /// Commits audit records that go with no change (denials, failed calls): sealed into
    /// the chain in a transaction of their own, then delivered.
    pub(super) fn audit_record(&self, entry: crate::audit::AuditEntry) -> Result<()> {
        if self.audit.is_none() {
            return Ok(());
        }
        self.commit(STATE_SCOPE, &mut Change::new(Some(entry)), |_, _| Ok(()))
    }

    /// The latest failure to deliver committed audit records to the log file or sink (they
    /// wait in the store's outbox and go out with the next delivery) or to raise the anchor
    /// file, if any since the last call. The changes themselves were committed.
    pub fn audit_delivery_error(&self) -> Option<Error> {
        self.delivery_error.lock().take()
    }

    /// The audit log file this handle writes, if any.
    pub fn audit_log_path(&self) -> Option<std::path::PathBuf> {
        self.audit.as_ref().and_then(AuditLog::path)
    }
}

host_operations! {
    /// Verifies an audit log (`path`, else this handle's) with this store's audit key:
    /// every line's MAC, sequence and link to the line before. The result names the first
    /// bad line, if any ([`crate::audit::AuditVerification::into_result`] turns that into an
    /// INTEGRITY error). Batched uses are written first; the verification is audited (after
    /// it ran) as the host's `VERIFY_AUDIT_LOG`.
    ///
    /// ```
    /// use tbsecrets::{MasterKey, SecretStorage, SecretType, StorageOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let options = StorageOptions::with_master_key(MasterKey::generate());
    /// let store = SecretStorage::open(dir.path().join("tbsecrets.db"), options)?;
    /// store.create("tenant-a", "MyApiKey", SecretType::Text, b"s3cr3t", "")?;
    /// store.get("tenant-a", "MyApiKey")?;
    ///
    /// let report = store.verify_audit_log(None)?; // the store's own log
    /// assert!(report.is_intact());
    /// assert!(report.records >= 2); // the CREATE and the (batched) GET, never the value
    /// let log = std::fs::read_to_string(store.audit_log_path().unwrap())?;
    /// assert!(!log.contains("s3cr3t"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn verify_audit_log(&self, path: Option<&Path>) -> Result<AuditVerification>;

    /// [`SecretStorage::verify_audit_log`], calling `progress(bytes_read, total_bytes)`.
    fn verify_audit_log_with_progress(&self, path: Option<&Path>,
        progress: &mut dyn FnMut(u64, u64)) -> Result<AuditVerification>;
}

impl Session<'_> {
    /// Verifies the audit log (`path`, else the store's); needs READ in every tenant (the
    /// host; by default SYS_ADMIN). The verification itself is audited, with its outcome. See
    /// [`SecretStorage::verify_audit_log`].
    pub fn verify_audit_log(&self, path: Option<&Path>) -> Result<AuditVerification> {
        self.verify_audit_log_with_progress(path, &mut |_, _| {})
    }

    /// [`Session::verify_audit_log`], calling `progress(bytes_read, total_bytes)`.
    pub fn verify_audit_log_with_progress(
        &self,
        path: Option<&Path>,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<AuditVerification> {
        let op = Op::store_wide(
            Operation::Read,
            AuditAction::VerifyAuditLog,
            "verify the audit log",
        );
        let store = self.allow(&op)?;
        let mut verify = || -> Result<AuditVerification> {
            store.ensure_open()?;
            let own = store.audit_log_path();
            let path = path.or(own.as_deref()).ok_or_else(|| {
                Error::invalid("this handle writes no audit log file: name the log to verify")
            })?;
            let mut conn = store.backend.connection()?;
            let backend = conn.store();
            // Everything committed so far goes out first, so the check covers it.
            store.flush_usage_to(backend)?;
            if let Some(audit) = &store.audit {
                audit.deliver(backend, &[])?;
            }
            let sealed = store.current_state(backend)?.audit;
            // The store's side: every current-version pointer must carry its seal.
            let unsealed = backend
                .all_secrets()?
                .iter()
                .find_map(|secret| state::verify_pointer(&store.state_key, secret).err());
            drop(conn);
            store.notify_sink();
            let mut report = crate::audit::verify_file(path, &store.audit_key, &sealed, progress)?;
            if let (None, Some(e)) = (&report.problem, unsealed) {
                report.problem = Some(crate::audit::AuditProblem {
                    line: 0,
                    reason: e.message().to_owned(),
                });
            }
            Ok(report)
        };
        let result = verify();
        let outcome = match &result {
            Ok(report) if report.is_intact() => ErrorCode::Ok,
            Ok(_) => ErrorCode::Integrity,
            Err(e) => e.code(),
        };
        // Best effort: the caller gets the verification either way.
        let _ = store.audit_record(self.entry(&op, outcome));
        result
    }

    /// The audit log file the store writes, if any; needs READ in every tenant. See
    /// [`SecretStorage::audit_log_path`].
    pub fn audit_log_path(&self) -> Result<Option<std::path::PathBuf>> {
        let op = Op::store_wide(Operation::Read, AuditAction::Read, "see the audit log path");
        self.read(op, |store| Ok(store.audit_log_path()))
    }
}
