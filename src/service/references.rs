//! The reference index: which tracked sources (rule nodes, integrations, config files) use
//! which secrets, so `delete` can refuse while a secret is in use and `where_used` can say
//! what a change will break.

use super::operation::Op;
use super::{SecretStorage, Session};
use crate::audit::AuditAction;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{validate_name, validate_tenant};
use crate::placeholder::{self, Reference};
use crate::store::StoredReference;

/// Longest source id, in bytes.
pub const MAX_SOURCE_ID_BYTES: usize = 255;

host_operations! {
    /// Records exactly which secrets a source (rule node, integration, config file) uses,
    /// replacing the source's previous set. Returns the references recorded. Audited as the
    /// host.
    fn track_references(&self, tenant: &str, source_id: &str, document: &str)
        -> Result<Vec<Reference>>;

    /// Forgets a source's references; returns how many were removed. Audited as the host.
    fn untrack(&self, tenant: &str, source_id: &str) -> Result<usize>;

    /// The sources that reference a secret (exact, from the index).
    fn where_used(&self, tenant: &str, name: &str) -> Result<Vec<StoredReference>>;
}

impl SecretStorage {
    /// The distinct (name, type) pairs a document (JSON or text) references.
    ///
    /// ```
    /// use tbsecrets::{SecretStorage, SecretType};
    ///
    /// let config = r#"{"user": "${secret:mqtt-user}", "ca": "${secret:broker-ca;type:FILE}"}"#;
    /// let refs = SecretStorage::references(config)?;
    /// assert_eq!(refs.len(), 2);
    /// assert_eq!((refs[0].name.as_str(), refs[0].secret_type), ("mqtt-user", None));
    /// assert_eq!(refs[1].secret_type, Some(SecretType::TextFile)); // FILE = TEXT_FILE
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn references(document: &str) -> Result<Vec<Reference>> {
        placeholder::references(document)
    }
}

impl Session<'_> {
    /// Records which secrets a source uses; needs WRITE. See
    /// [`SecretStorage::track_references`].
    pub fn track_references(
        &self,
        tenant: &str,
        source_id: &str,
        document: &str,
    ) -> Result<Vec<Reference>> {
        if let Some(principal) = self.principal() {
            let outside = super::allow_list::names_outside(principal, document)?;
            if let Some(first) = outside.first() {
                let error = super::allow_list::outside(principal, first);
                let names: Vec<&str> = outside.iter().map(String::as_str).collect();
                let op = Op::write(AuditAction::TrackReferences, tenant, &names).source(source_id);
                let mut entry = self.entry(&op, ErrorCode::PermissionDenied);
                entry.source = Some(source_id.to_owned());
                let _ = self.store.audit_record(entry);
                return Err(error);
            }
        }
        self.change(
            Op::write(AuditAction::TrackReferences, tenant, &[]).source(source_id),
            |store, change| {
                store.ensure_open()?;
                validate_tenant(tenant)?;
                validate_source_id(source_id)?;
                let references = placeholder::references(document)?;
                let stored: Vec<StoredReference> = references
                    .iter()
                    .map(|r| StoredReference {
                        source_id: source_id.to_owned(),
                        name: r.name.clone(),
                        secret_type: r.secret_type,
                    })
                    .collect();
                change.set_names(references.iter().map(|r| r.name.clone()).collect());
                store.commit(&source_scope(tenant, source_id), change, |backend, _| {
                    backend.replace_references(tenant, source_id, &stored)
                })?;
                Ok(references)
            },
        )
    }

    /// Forgets a source's references; needs WRITE. See [`SecretStorage::untrack`].
    pub fn untrack(&self, tenant: &str, source_id: &str) -> Result<usize> {
        let op = Op::write(AuditAction::UntrackReferences, tenant, &[]).source(source_id);
        self.change(op, |store, change| {
            store.ensure_open()?;
            validate_tenant(tenant)?;
            validate_source_id(source_id)?;
            store.commit(&source_scope(tenant, source_id), change, |backend, _| {
                backend.remove_references(tenant, source_id)
            })
        })
    }

    /// The sources referencing a secret; needs READ. See [`SecretStorage::where_used`].
    pub fn where_used(&self, tenant: &str, name: &str) -> Result<Vec<StoredReference>> {
        self.read(Op::read(tenant, &[name]), |store| {
            store.ensure_open()?;
            validate_tenant(tenant)?;
            validate_name(name)?;
            let mut conn = store.backend.connection()?;
            super::dynamic::where_used(conn.store(), tenant, name)
        })
    }
}

/// The write-lock scope of one source's references.
fn source_scope(tenant: &str, source_id: &str) -> String {
    format!("{tenant}\u{1f}\u{1f}{source_id}")
}

/// Checks a source id: non-empty, at most 255 bytes, no control characters.
pub fn validate_source_id(source_id: &str) -> Result<()> {
    if source_id.is_empty() || source_id.len() > MAX_SOURCE_ID_BYTES {
        return Err(Error::invalid(format!(
            "source id must be 1 to {MAX_SOURCE_ID_BYTES} bytes long"
        )));
    }
    if source_id.chars().any(char::is_control) {
        return Err(Error::invalid(
            "source id must not contain control characters",
        ));
    }
    Ok(())
}
