//! Acting on behalf of someone: a [`Session`] checks the store's access policy before every
//! operation of a principal (deny by default), runs it, and writes the audit record —
//! denied attempts included. The host's own calls ([`SecretStorage`] methods) run through a
//! host session: not checked, still audited.

use super::commit::Change;
use super::{DocumentFormat, ResolveOptions, RotationReport, SecretStorage, SecretValue};
use crate::access::{Actor, Operation, Policy, Principal};
use crate::audit::{AuditAction, AuditEntry, AuditVerification};
use crate::crypto::MasterKey;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{ListQuery, Page, SecretInfo, SecretType, VersionInfo};
use crate::placeholder::Reference;
use crate::store::StoredReference;
use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

/// A tenant name no principal belongs to: only grants for any tenant match it.
const ALL_TENANTS: &str = "\u{1f}all tenants";

/// The tenant written to the audit log for store-wide operations.
const STORE_WIDE: &str = "*";

/// The host program's actor.
pub(super) static HOST: Actor = Actor::Host;

/// The store as seen by one actor.
///
/// ```
/// use tbsecrets::{ErrorCode, MasterKey, Principal, Role};
/// use tbsecrets::{SecretStorage, SecretType, StorageOptions};
///
/// let dir = tempfile::tempdir()?;
/// let options = StorageOptions::with_master_key(MasterKey::generate());
/// let store = SecretStorage::open(dir.path().join("tbsecrets.db"), options)?;
///
/// let admin = store.session(Principal::new("tenant-a", Role::TenantAdmin));
/// admin.create("tenant-a", "MyApiKey", SecretType::Text, b"s3cr3t", "")?; // WRITE: allowed
/// let denied = admin.get("tenant-a", "MyApiKey"); // administrators never read values
/// assert_eq!(denied.unwrap_err().code(), ErrorCode::PermissionDenied);
///
/// let rule_engine = store.session(Principal::new("tenant-a", Role::Service));
/// assert_eq!(rule_engine.get("tenant-a", "MyApiKey")?.as_str()?, "s3cr3t"); // RESOLVE
/// let other_tenant = rule_engine.get("tenant-b", "MyApiKey");
/// assert_eq!(other_tenant.unwrap_err().code(), ErrorCode::PermissionDenied);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Session<'a> {
    store: &'a SecretStorage,
    actor: Cow<'a, Actor>,
}

impl SecretStorage {
    /// A session acting as `principal`, checked against the store's policy.
    pub fn session(&self, principal: Principal) -> Session<'_> {
        Session {
            store: self,
            actor: Cow::Owned(Actor::Principal(principal)),
        }
    }

    /// A session acting as `actor`, borrowed (no copy: cheap enough per call).
    pub fn acting<'a>(&'a self, actor: &'a Actor) -> Session<'a> {
        Session {
            store: self,
            actor: Cow::Borrowed(actor),
        }
    }

    /// The host's session (what the plain `SecretStorage` methods use).
    pub(super) fn host(&self) -> Session<'_> {
        self.acting(&HOST)
    }

    /// The access policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

impl<'a> Session<'a> {
    /// Who this session acts as.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The principal this session acts as (`None` for the host).
    pub fn principal(&self) -> Option<&Principal> {
        self.actor.principal()
    }

    /// The store if the policy lets this actor do `operation` in `tenant`; a denial is
    /// audited as an attempt of `action` on `names` (at once and synced, except for value
    /// reads, which are batched like every use).
    fn allow(
        &self,
        operation: Operation,
        action: AuditAction,
        tenant: &str,
        names: &[&str],
    ) -> Result<&'a SecretStorage> {
        let Actor::Principal(principal) = &*self.actor else {
            return Ok(self.store);
        };
        let denied = match self.store.policy.check(principal, operation, tenant) {
            Err(denied) => denied,
            Ok(()) => match super::allow_list::check(principal, action, names) {
                Ok(()) => return Ok(self.store),
                Err(outside) => outside,
            },
        };
        if operation == Operation::Resolve {
            for name in names {
                self.store.note_use(
                    &self.actor,
                    action,
                    tenant,
                    name,
                    ErrorCode::PermissionDenied,
                );
            }
            if names.is_empty() {
                self.store
                    .note_use(&self.actor, action, tenant, "", ErrorCode::PermissionDenied);
            }
            return Err(denied);
        }
        let entry = self.entry(action, tenant, names, ErrorCode::PermissionDenied);
        // The denial stands even if its record cannot be written.
        let _ = self.store.audit_record(entry);
        Err(denied)
    }

    fn entry(
        &self,
        action: AuditAction,
        tenant: &str,
        names: &[&str],
        outcome: ErrorCode,
    ) -> AuditEntry {
        AuditEntry::new(
            &self.actor,
            action,
            tenant,
            names.iter().map(|n| (*n).to_owned()).collect(),
            outcome,
        )
    }

    /// Runs a change: `run` commits it together with its audit record (see
    /// `SecretStorage::commit`). A failed change is audited on its own, with its outcome;
    /// the error stands even if that record cannot be written.
    fn changing<T>(
        &self,
        action: AuditAction,
        tenant: &str,
        names: &[&str],
        source: Option<&str>,
        run: impl FnOnce(&mut Change) -> Result<T>,
    ) -> Result<T> {
        let record = self.store.audit.is_some().then(|| {
            let mut entry = self.entry(action, tenant, names, ErrorCode::Ok);
            entry.source = source.map(str::to_owned);
            entry
        });
        let mut change = Change::new(record);
        let result = run(&mut change);
        if let Err(e) = &result {
            if e.code() != ErrorCode::Closed {
                for mut record in change.into_records() {
                    record.outcome = e.code();
                    record.version = None;
                    let _ = self.store.audit_record(record);
                }
            }
        }
        result
    }

    /// Creates a secret (version 1); needs WRITE. See [`SecretStorage::create`].
    pub fn create(
        &self,
        tenant: &str,
        name: &str,
        secret_type: SecretType,
        value: &[u8],
        description: &str,
    ) -> Result<SecretInfo> {
        let store = self.allow(Operation::Write, AuditAction::Create, tenant, &[name])?;
        self.changing(AuditAction::Create, tenant, &[name], None, |change| {
            store.create_inner(change, tenant, name, secret_type, value, description)
        })
    }

    /// Writes a new value version; needs WRITE. See [`SecretStorage::update_value`].
    pub fn update_value(
        &self,
        tenant: &str,
        name: &str,
        value: &[u8],
        expected_version: Option<u64>,
    ) -> Result<SecretInfo> {
        let store = self.allow(Operation::Write, AuditAction::Update, tenant, &[name])?;
        self.changing(AuditAction::Update, tenant, &[name], None, |change| {
            store.update_value_inner(change, tenant, name, value, expected_version)
        })
    }

    /// Changes a description; needs WRITE. See [`SecretStorage::update_description`].
    pub fn update_description(
        &self,
        tenant: &str,
        name: &str,
        description: &str,
    ) -> Result<SecretInfo> {
        let store = self.allow(Operation::Write, AuditAction::Describe, tenant, &[name])?;
        self.changing(AuditAction::Describe, tenant, &[name], None, |change| {
            store.update_description_inner(change, tenant, name, description)
        })
    }

    /// Makes a kept version current again; needs WRITE. See [`SecretStorage::rollback`].
    pub fn rollback(&self, tenant: &str, name: &str, version: u64) -> Result<SecretInfo> {
        let store = self.allow(Operation::Write, AuditAction::Rollback, tenant, &[name])?;
        self.changing(AuditAction::Rollback, tenant, &[name], None, |change| {
            store.rollback_inner(change, tenant, name, version)
        })
    }

    /// Deletes a secret unless referenced; needs DELETE. See [`SecretStorage::delete`].
    pub fn delete(&self, tenant: &str, name: &str) -> Result<()> {
        self.delete_with(tenant, name, false)
    }

    /// Deletes a secret; needs DELETE. See [`SecretStorage::delete_with`].
    pub fn delete_with(&self, tenant: &str, name: &str, force: bool) -> Result<()> {
        let store = self.allow(Operation::Delete, AuditAction::Delete, tenant, &[name])?;
        self.changing(AuditAction::Delete, tenant, &[name], None, |change| {
            store.delete_inner(change, tenant, name, force)
        })
    }

    /// A secret's metadata; needs READ.
    pub fn info(&self, tenant: &str, name: &str) -> Result<SecretInfo> {
        self.allow(Operation::Read, AuditAction::Read, tenant, &[name])?
            .info(tenant, name)
    }

    /// A page of a tenant's secrets; needs READ.
    pub fn list(&self, tenant: &str, query: &ListQuery) -> Result<Page<SecretInfo>> {
        self.allow(Operation::Read, AuditAction::Read, tenant, &[])?
            .list(tenant, query)
    }

    /// A secret's kept versions; needs READ.
    pub fn history(&self, tenant: &str, name: &str) -> Result<Vec<VersionInfo>> {
        self.allow(Operation::Read, AuditAction::Read, tenant, &[name])?
            .history(tenant, name)
    }

    /// The sources referencing a secret; needs READ.
    pub fn where_used(&self, tenant: &str, name: &str) -> Result<Vec<StoredReference>> {
        self.allow(Operation::Read, AuditAction::Read, tenant, &[name])?
            .where_used(tenant, name)
    }

    /// Secrets not used for `age`; needs READ.
    pub fn unused(&self, tenant: &str, age: Duration) -> Result<Vec<SecretInfo>> {
        self.allow(Operation::Read, AuditAction::Read, tenant, &[])?
            .unused(tenant, age)
    }

    /// Secrets whose value is older than `age`; needs READ.
    pub fn stale(&self, tenant: &str, age: Duration) -> Result<Vec<SecretInfo>> {
        self.allow(Operation::Read, AuditAction::Read, tenant, &[])?
            .stale(tenant, age)
    }

    /// Decrypts a secret's current value; needs RESOLVE. See [`SecretStorage::get`].
    #[inline]
    pub fn get(&self, tenant: &str, name: &str) -> Result<SecretValue> {
        let store = self.allow(Operation::Resolve, AuditAction::Get, tenant, &[name])?;
        // One clock read for the usage counter and the audit record.
        let now = super::clock::coarse_now_millis();
        let result = store.get_inner(tenant, name, now);
        let outcome = match &result {
            Ok(_) => ErrorCode::Ok,
            Err(e) => e.code(),
        };
        store.note_use_at(&self.actor, AuditAction::Get, tenant, name, outcome, now);
        result
    }

    /// Resolves a text's placeholders; needs RESOLVE. See [`SecretStorage::resolve_str`].
    pub fn resolve_str<'t>(
        &self,
        tenant: &str,
        text: &'t str,
        options: ResolveOptions,
    ) -> Result<Cow<'t, str>> {
        let store = self.allow(Operation::Resolve, AuditAction::Resolve, tenant, &[])?;
        store.resolve_inner(&self.actor, tenant, text, false, options)
    }

    /// Resolves a JSON document's placeholders; needs RESOLVE. See
    /// [`SecretStorage::resolve_json`].
    pub fn resolve_json<'t>(
        &self,
        tenant: &str,
        json: &'t str,
        options: ResolveOptions,
    ) -> Result<Cow<'t, str>> {
        let store = self.allow(Operation::Resolve, AuditAction::Resolve, tenant, &[])?;
        store.resolve_inner(&self.actor, tenant, json, true, options)
    }

    /// Resolves a document (JSON or text) with TEXT_FILE values materialised as private files;
    /// needs RESOLVE. Returns the resolved document and the paths of the files it references
    /// (one per distinct TEXT_FILE secret), which the caller gives back with
    /// [`SecretStorage::release_materialized`] when done; they are removed on store close
    /// anyway (unless kept). A failed call gives its files back itself.
    pub fn resolve_materialized<'t>(
        &self,
        tenant: &str,
        document: &'t str,
        json: bool,
    ) -> Result<(Cow<'t, str>, Vec<String>)> {
        let store = self.allow(Operation::Resolve, AuditAction::Resolve, tenant, &[])?;
        let options = ResolveOptions {
            materialize_files: true,
            ..ResolveOptions::default()
        };
        let mut files = Vec::new();
        match store.resolve_tracked(&self.actor, tenant, document, json, options, &mut files) {
            Ok(resolved) => Ok((resolved, files)),
            Err(e) => {
                // Best effort: the caller gets the resolution error either way.
                let _ = store.release_materialized(&files);
                Err(e)
            }
        }
    }

    /// Reads a file and resolves it as JSON or text (`Auto`: `.json` → JSON); needs RESOLVE.
    pub fn resolve_file(
        &self,
        tenant: &str,
        path: &Path,
        format: DocumentFormat,
        options: ResolveOptions,
    ) -> Result<String> {
        let store = self.allow(Operation::Resolve, AuditAction::Resolve, tenant, &[])?;
        let text = super::resolve::read_document(path)?;
        let resolved =
            store.resolve_inner(&self.actor, tenant, &text, format.is_json(path), options)?;
        Ok(resolved.into_owned())
    }

    /// Resolves a file into `output` (written atomically, mode 0600); needs RESOLVE.
    pub fn resolve_file_to(
        &self,
        tenant: &str,
        path: &Path,
        output: &Path,
        format: DocumentFormat,
        options: ResolveOptions,
    ) -> Result<()> {
        let resolved = zeroize::Zeroizing::new(self.resolve_file(tenant, path, format, options)?);
        super::write_private_atomically(output, resolved.as_bytes())
    }

    /// Records which secrets a source uses; needs WRITE. See
    /// [`SecretStorage::track_references`].
    pub fn track_references(
        &self,
        tenant: &str,
        source_id: &str,
        document: &str,
    ) -> Result<Vec<Reference>> {
        let store = self.allow(Operation::Write, AuditAction::TrackReferences, tenant, &[])?;
        if let Some(principal) = self.principal() {
            let outside = super::allow_list::names_outside(principal, document)?;
            if let Some(first) = outside.first() {
                let error = super::allow_list::outside(principal, first);
                let names: Vec<&str> = outside.iter().map(String::as_str).collect();
                let mut entry = self.entry(
                    AuditAction::TrackReferences,
                    tenant,
                    &names,
                    ErrorCode::PermissionDenied,
                );
                entry.source = Some(source_id.to_owned());
                let _ = self.store.audit_record(entry);
                return Err(error);
            }
        }
        self.changing(
            AuditAction::TrackReferences,
            tenant,
            &[],
            Some(source_id),
            |change| store.track_references_inner(change, tenant, source_id, document),
        )
    }

    /// Forgets a source's references; needs WRITE. See [`SecretStorage::untrack`].
    pub fn untrack(&self, tenant: &str, source_id: &str) -> Result<usize> {
        let store = self.allow(
            Operation::Write,
            AuditAction::UntrackReferences,
            tenant,
            &[],
        )?;
        self.changing(
            AuditAction::UntrackReferences,
            tenant,
            &[],
            Some(source_id),
            |change| store.untrack_inner(change, tenant, source_id),
        )
    }

    /// Gives a tenant a new data key and re-encrypts its versions; needs WRITE in the tenant.
    pub fn rotate_tenant_key(&self, tenant: &str) -> Result<RotationReport> {
        self.rotate_tenant_key_with_progress(tenant, &mut |_, _| {})
    }

    /// [`Session::rotate_tenant_key`], calling `progress(done, total)` as versions are
    /// re-encrypted.
    pub fn rotate_tenant_key_with_progress(
        &self,
        tenant: &str,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RotationReport> {
        let store = self.allow(Operation::Write, AuditAction::RotateTenantKey, tenant, &[])?;
        self.changing(AuditAction::RotateTenantKey, tenant, &[], None, |change| {
            store.rotate_tenant_key_inner(change, tenant, progress)
        })
    }

    /// PERMISSION_DENIED (audited as an attempt of `action` on the whole store) unless this
    /// actor may do `operation` in every tenant: the host, or a role granted it with
    /// `"tenants":"any"`.
    fn allow_store_wide(
        &self,
        operation: Operation,
        action: AuditAction,
        what: &str,
    ) -> Result<&'a SecretStorage> {
        let Actor::Principal(principal) = &*self.actor else {
            return Ok(self.store);
        };
        let restricted = super::allow_list::check_store_wide(principal, what);
        if restricted.is_ok() && self.store.policy.allows(principal, operation, ALL_TENANTS) {
            return Ok(self.store);
        }
        let entry = self.entry(action, STORE_WIDE, &[], ErrorCode::PermissionDenied);
        let _ = self.store.audit_record(entry);
        restricted?;
        Err(Error::new(
            ErrorCode::PermissionDenied,
            format!(
                "{} of tenant '{}' may not {what}: that needs {operation} in every tenant (by default only SYS_ADMIN has it)",
                principal.role, principal.tenant
            ),
        ))
    }

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
        let store = self.allow_store_wide(
            Operation::Read,
            AuditAction::VerifyAuditLog,
            "verify the audit log",
        )?;
        let result = store.verify_audit_log_inner(path, progress);
        let outcome = match &result {
            Ok(report) if report.is_intact() => Ok(()),
            Ok(_) => Err(Error::integrity("the audit log is broken")),
            Err(e) => Err(e.clone()),
        };
        // Best effort: the caller gets the verification either way.
        let mut entry = self.entry(
            AuditAction::VerifyAuditLog,
            STORE_WIDE,
            &[],
            outcome.map_or_else(|e| e.code(), |()| ErrorCode::Ok),
        );
        entry.version = None;
        let _ = self.store.audit_record(entry);
        result
    }

    /// The audit log file the store writes, if any; needs READ in every tenant.
    pub fn audit_log_path(&self) -> Result<Option<std::path::PathBuf>> {
        let store =
            self.allow_store_wide(Operation::Read, AuditAction::Read, "see the audit log path")?;
        Ok(store.audit_log_path())
    }

    /// Replaces the master key; needs WRITE in every tenant (by default: only SYS_ADMIN).
    pub fn rotate_master_key(&self, new_key: &MasterKey) -> Result<RotationReport> {
        self.rotate_master_key_with_progress(new_key, &mut |_, _| {})
    }

    /// [`Session::rotate_master_key`], calling `progress(done, total)` as keys are rewrapped.
    pub fn rotate_master_key_with_progress(
        &self,
        new_key: &MasterKey,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RotationReport> {
        let store = self.allow_store_wide(
            Operation::Write,
            AuditAction::RotateMasterKey,
            "rotate the master key",
        )?;
        self.changing(
            AuditAction::RotateMasterKey,
            STORE_WIDE,
            &[],
            None,
            |change| store.rotate_master_key_inner(change, new_key, progress),
        )
    }
}
