//! Placeholder resolution and the reference index on `SecretStorage` (docs/ARCHITECTURE.md,
//! "Placeholders").
//!
//! The pure parser/resolver lives in `crate::placeholder`; this module is the store's side of
//! it: a `SecretSource` that reads each distinct secret once per call through the value cache
//! (so resolution is decrypt-once and counts usage), materialisation of TEXT_FILE values, and
//! the exact (tenant, secret, source) index.

use super::SecretStorage;
use crate::access::Actor;
use crate::audit::{AuditAction, AuditEntry};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{validate_tenant, SecretType};
use crate::placeholder::{self, Fetched, Reference, SecretSource};
use crate::store::StoredReference;
use std::borrow::Cow;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use zeroize::Zeroizing;

/// Longest source id, in bytes.
pub const MAX_SOURCE_ID_BYTES: usize = 255;

/// Options of one resolve call. Build it with `..Default::default()` so that new options
/// keep the call compiling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolveOptions<'v> {
    /// Replace TEXT_FILE placeholders with the path of a private file holding the value
    /// instead of the value itself.
    pub materialize_files: bool,
    /// The message variables that per-message names (`{{metadata.KEY}}`, `{{data.KEY}}`) are
    /// filled from (docs/ARCHITECTURE.md, "Per-message names"). Per-message names resolve
    /// only in a session restricted to an allow-list, and only to names on it; without
    /// variables every such placeholder is a problem of the strict error.
    pub variables: Option<&'v crate::placeholder::Variables>,
}

/// How `resolve_file` reads a document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DocumentFormat {
    /// JSON for a `.json` file name, text otherwise.
    #[default]
    Auto,
    /// A JSON document: string values are resolved, keys are not.
    Json,
    /// Plain text: every placeholder is resolved.
    Text,
}

impl DocumentFormat {
    /// Whether a document at `path` is read as JSON in this format.
    pub fn is_json(self, path: &Path) -> bool {
        match self {
            DocumentFormat::Json => true,
            DocumentFormat::Text => false,
            DocumentFormat::Auto => path
                .extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("json")),
        }
    }
}

impl std::str::FromStr for DocumentFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(DocumentFormat::Auto),
            "json" => Ok(DocumentFormat::Json),
            "text" => Ok(DocumentFormat::Text),
            _ => Err(Error::invalid(format!(
                "unknown format '{s}': expected auto, json or text"
            ))),
        }
    }
}

/// The store as the resolver's source of values, for one tenant and one call.
struct StoreSource<'a> {
    store: &'a SecretStorage,
    tenant: &'a str,
    /// The acting principal's allow-list, if it is restricted to one.
    allowed: Option<&'a crate::access::AllowList>,
    options: ResolveOptions<'a>,
    /// Each distinct secret asked for, with whether it was found (for the audit log).
    fetched: Vec<(String, ErrorCode)>,
    /// The paths of the files materialised for this call (see `Materializer::release`).
    materialized: Vec<String>,
}

impl SecretSource for StoreSource<'_> {
    fn fetch(&mut self, name: &str) -> Result<Fetched> {
        if self.allowed.is_some_and(|list| !list.allows(name)) {
            return self.deny(name, super::allow_list::OUTSIDE_REASON);
        }
        self.fetch_checked(name)
    }

    fn fetch_filled(&mut self, name: &str) -> Result<Fetched> {
        match self.allowed {
            Some(list) if list.allows(name) => self.fetch_checked(name),
            Some(_) => self.deny(name, super::allow_list::OUTSIDE_REASON),
            None => self.deny(name, super::allow_list::DYNAMIC_NEEDS_LIST),
        }
    }
}

impl StoreSource<'_> {
    /// A denial (recorded for the audit log) instead of a lookup.
    fn deny(&mut self, name: &str, reason: &str) -> Result<Fetched> {
        self.fetched
            .push((name.to_owned(), ErrorCode::PermissionDenied));
        Ok(Fetched::Denied {
            reason: reason.to_owned(),
        })
    }

    /// Looks a name up that the allow-list (if any) lets through, recording the outcome.
    fn fetch_checked(&mut self, name: &str) -> Result<Fetched> {
        let fetched = self.fetch_value(name);
        let outcome = match &fetched {
            Ok(Fetched::Found { .. }) => ErrorCode::Ok,
            Ok(Fetched::Missing) => ErrorCode::NotFound,
            Ok(Fetched::Unusable { .. }) => ErrorCode::Unresolved,
            Ok(Fetched::Denied { .. }) => ErrorCode::PermissionDenied,
            Err(e) => e.code(),
        };
        self.fetched.push((name.to_owned(), outcome));
        fetched
    }
}

impl StoreSource<'_> {
    fn fetch_value(&mut self, name: &str) -> Result<Fetched> {
        let entry = match self.store.current_entry(self.tenant, name) {
            Ok(entry) => entry,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(Fetched::Missing),
            Err(e) if e.code() == ErrorCode::InvalidArgument => {
                return Ok(Fetched::Unusable {
                    reason: e.message().to_owned(),
                })
            }
            Err(e) => return Err(e),
        };
        self.store.mark_used(&entry);
        let value = entry.open()?;
        let secret_type = value.secret_type();
        if secret_type == SecretType::TextFile && self.options.materialize_files {
            let path = self.store.materializer.path_for(
                self.tenant,
                name,
                value.version(),
                value.as_bytes(),
            )?;
            self.materialized.push(path.clone());
            return Ok(Fetched::Found {
                secret_type,
                replacement: Zeroizing::new(path),
            });
        }
        match String::from_utf8(std::mem::take(&mut *value.into_bytes())) {
            Ok(text) => Ok(Fetched::Found {
                secret_type,
                replacement: Zeroizing::new(text),
            }),
            Err(not_text) => {
                // Wipe the bytes the failed conversion handed back.
                drop(Zeroizing::new(not_text.into_bytes()));
                Ok(Fetched::Unusable {
                    reason: "the TEXT_FILE value is not UTF-8 text; resolve it with materialisation to get a file path".to_owned(),
                })
            }
        }
    }
}

impl SecretStorage {
    /// Resolves `document` (JSON or text) for `actor`, who was already allowed to. One
    /// batched audit record per distinct secret used; a failed call is one record naming the
    /// secrets it could not substitute (synced).
    pub(super) fn resolve_inner<'t>(
        &self,
        actor: &Actor,
        tenant: &str,
        document: &'t str,
        json: bool,
        options: ResolveOptions,
    ) -> Result<Cow<'t, str>> {
        self.resolve_tracked(actor, tenant, document, json, options, &mut Vec::new())
    }

    /// [`SecretStorage::resolve_inner`] that also hands back the paths of the files it
    /// materialised (each once per call, whether or not the call succeeds), for
    /// [`SecretStorage::release_materialized`].
    pub(super) fn resolve_tracked<'t>(
        &self,
        actor: &Actor,
        tenant: &str,
        document: &'t str,
        json: bool,
        options: ResolveOptions,
        materialized: &mut Vec<String>,
    ) -> Result<Cow<'t, str>> {
        if let Err(e) = self.ensure_open().and_then(|()| validate_tenant(tenant)) {
            if e.code() != ErrorCode::Closed {
                // Best effort, like every failed resolve: the caller gets the error either way.
                let entry =
                    AuditEntry::new(actor, AuditAction::Resolve, tenant, Vec::new(), e.code());
                let _ = self.audit_record(entry);
            }
            return Err(e);
        }
        let mut source = StoreSource {
            store: self,
            tenant,
            allowed: actor.principal().and_then(|p| p.allowed_names()),
            options,
            fetched: Vec::new(),
            materialized: Vec::new(),
        };
        let result = if json {
            placeholder::resolve_json_with(document, &mut source, options.variables)
        } else {
            placeholder::resolve_text_with(document, &mut source, options.variables)
        };
        materialized.append(&mut source.materialized);
        match &result {
            Ok(_) => {
                for (name, _) in &source.fetched {
                    self.note_use(actor, AuditAction::Resolve, tenant, name, ErrorCode::Ok);
                }
            }
            Err(e) if e.code() != ErrorCode::Closed => {
                let mut names: Vec<String> = e
                    .problems()
                    .iter()
                    .map(|p| p.name.clone())
                    .filter(|n| !n.is_empty())
                    .collect();
                names.sort();
                names.dedup();
                // A name outside the allow-list is also a denial of its own, like a policy's.
                for (name, outcome) in &source.fetched {
                    if *outcome == ErrorCode::PermissionDenied {
                        let _ = self.audit_record(AuditEntry::new(
                            actor,
                            AuditAction::Resolve,
                            tenant,
                            vec![name.clone()],
                            ErrorCode::PermissionDenied,
                        ));
                    }
                }
                // Best effort: the caller gets the resolution error either way.
                let _ = self.audit_record(AuditEntry::new(
                    actor,
                    AuditAction::Resolve,
                    tenant,
                    names,
                    e.code(),
                ));
            }
            Err(_) => {}
        }
        result
    }

    /// Resolves every placeholder in a text. Returns the input borrowed when it holds no
    /// placeholder. Strict: any missing, mistyped or malformed placeholder fails the whole
    /// call, and the error names every one of them with its byte offset. Audited as the host.
    ///
    /// ```
    /// use std::borrow::Cow;
    /// use tbsecrets::{ErrorCode, MasterKey, SecretStorage, SecretType, StorageOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let options = StorageOptions::with_master_key(MasterKey::generate());
    /// let store = SecretStorage::open(dir.path().join("tbsecrets.db"), options)?;
    /// store.create("tenant-a", "MyApiKey", SecretType::Text, b"s3cr3t", "")?;
    ///
    /// let header = store.resolve_str("tenant-a", "Bearer ${secret:MyApiKey;type:TEXT}")?;
    /// assert_eq!(header, "Bearer s3cr3t");
    /// // Other `${...}` patterns are not placeholders: the input comes back borrowed.
    /// let plain = store.resolve_str("tenant-a", "device ${deviceName}")?;
    /// assert!(matches!(plain, Cow::Borrowed("device ${deviceName}")));
    /// // Strict: one unknown secret fails the whole call, naming it and its offset.
    /// let err = store.resolve_str("tenant-a", "${secret:MyApiKey} ${secret:Nope}").unwrap_err();
    /// assert_eq!(err.code(), ErrorCode::Unresolved);
    /// assert_eq!(err.problems()[0].name, "Nope");
    /// assert_eq!(err.problems()[0].offset, 19);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resolve_str<'a>(&self, tenant: &str, text: &'a str) -> Result<Cow<'a, str>> {
        self.resolve_str_with(tenant, text, ResolveOptions::default())
    }

    /// [`SecretStorage::resolve_str`] with options (TEXT_FILE materialisation).
    pub fn resolve_str_with<'a>(
        &self,
        tenant: &str,
        text: &'a str,
        options: ResolveOptions,
    ) -> Result<Cow<'a, str>> {
        self.host().resolve_str(tenant, text, options)
    }

    /// Resolves every string value of a JSON document at any depth (object keys are not
    /// resolved); everything else is kept byte for byte, and substituted values are escaped
    /// as JSON. Fails with INVALID_ARGUMENT if the document is not valid JSON.
    ///
    /// ```
    /// use tbsecrets::{ErrorCode, MasterKey, SecretStorage, SecretType, StorageOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let options = StorageOptions::with_master_key(MasterKey::generate());
    /// let store = SecretStorage::open(dir.path().join("tbsecrets.db"), options)?;
    /// let pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    /// store.create("tenant-a", "broker-ca", SecretType::TextFile, pem, "")?;
    ///
    /// let config = r#"{"ca": "${secret:broker-ca;type:TEXT_FILE}", "port": 8883}"#;
    /// let resolved = store.resolve_json("tenant-a", config)?;
    /// // The PEM's newlines are escaped as JSON; everything else is kept byte for byte.
    /// let pem_json = r#"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"#;
    /// assert_eq!(resolved, format!(r#"{{"ca": "{pem_json}", "port": 8883}}"#));
    /// let not_json = store.resolve_json("tenant-a", "{caCert: 1");
    /// assert_eq!(not_json.unwrap_err().code(), ErrorCode::InvalidArgument);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resolve_json<'a>(&self, tenant: &str, json: &'a str) -> Result<Cow<'a, str>> {
        self.resolve_json_with(tenant, json, ResolveOptions::default())
    }

    /// [`SecretStorage::resolve_json`] with options (TEXT_FILE materialisation).
    pub fn resolve_json_with<'a>(
        &self,
        tenant: &str,
        json: &'a str,
        options: ResolveOptions,
    ) -> Result<Cow<'a, str>> {
        self.host().resolve_json(tenant, json, options)
    }

    /// Reads a file and resolves it as JSON or text (`Auto`: `.json` → JSON).
    pub fn resolve_file(
        &self,
        tenant: &str,
        path: &Path,
        format: DocumentFormat,
        options: ResolveOptions,
    ) -> Result<String> {
        self.host().resolve_file(tenant, path, format, options)
    }

    /// Resolves a file like [`SecretStorage::resolve_file`] and writes the result to `output`
    /// atomically with mode 0600 (see [`write_private_atomically`]). Nothing is written when
    /// resolution fails.
    pub fn resolve_file_to(
        &self,
        tenant: &str,
        path: &Path,
        output: &Path,
        format: DocumentFormat,
        options: ResolveOptions,
    ) -> Result<()> {
        self.host()
            .resolve_file_to(tenant, path, output, format, options)
    }

    /// Removes the TEXT_FILE files materialised so far by this handle.
    pub fn clear_materialized(&self) -> Result<()> {
        self.materializer.clear()
    }

    /// Gives back the paths a [`Session::resolve_materialized`](super::Session::resolve_materialized)
    /// call handed out: a file no other result still holds is removed at once. Paths the store
    /// does not hold (already cleared, or not materialised by it) are ignored.
    pub fn release_materialized(&self, paths: &[String]) -> Result<()> {
        self.materializer.release(paths)
    }

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

    /// Records exactly which secrets a source (rule node, integration, config file) uses,
    /// replacing the source's previous set. Returns the references recorded. Audited as the
    /// host.
    pub fn track_references(
        &self,
        tenant: &str,
        source_id: &str,
        document: &str,
    ) -> Result<Vec<Reference>> {
        self.host().track_references(tenant, source_id, document)
    }

    pub(super) fn track_references_inner(
        &self,
        change: &mut super::commit::Change,
        tenant: &str,
        source_id: &str,
        document: &str,
    ) -> Result<Vec<Reference>> {
        self.ensure_open()?;
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
        let scope = format!("{tenant}\u{1f}\u{1f}{source_id}");
        self.commit(&scope, change, |store, _| {
            store.replace_references(tenant, source_id, &stored)
        })?;
        Ok(references)
    }

    /// Forgets a source's references; returns how many were removed. Audited as the host.
    pub fn untrack(&self, tenant: &str, source_id: &str) -> Result<usize> {
        self.host().untrack(tenant, source_id)
    }

    pub(super) fn untrack_inner(
        &self,
        change: &mut super::commit::Change,
        tenant: &str,
        source_id: &str,
    ) -> Result<usize> {
        self.ensure_open()?;
        validate_tenant(tenant)?;
        validate_source_id(source_id)?;
        let scope = format!("{tenant}\u{1f}\u{1f}{source_id}");
        self.commit(&scope, change, |store, _| {
            store.remove_references(tenant, source_id)
        })
    }

    /// The sources that reference a secret: by its exact name, or by a per-message pattern
    /// that can be filled to it (see [`placeholder::pattern_matches`]); in source order.
    pub fn where_used(&self, tenant: &str, name: &str) -> Result<Vec<StoredReference>> {
        self.ensure_open()?;
        validate_tenant(tenant)?;
        crate::model::validate_name(name)?;
        let mut conn = self.backend.connection()?;
        super::dynamic::where_used(conn.store(), tenant, name)
    }
}

/// Reads a document to resolve: a UTF-8 file of at most [`placeholder::MAX_DOCUMENT_BYTES`]
/// (reading stops one byte past it).
pub(super) fn read_document(path: &Path) -> Result<String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| Error::invalid(format!("cannot read {}: {e}", path.display()));
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(cannot)?
        .take(placeholder::MAX_DOCUMENT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    placeholder::check_document_len(bytes.len())?;
    String::from_utf8(bytes)
        .map_err(|_| Error::invalid(format!("{} is not UTF-8 text", path.display())))
}

/// Writes `bytes` to a temporary file (mode 0600) beside `path`, syncs it and renames it
/// over `path`, so readers never see a partial file and nothing is created on failure.
///
/// The temporary file is named `.tbsecrets-<pid>-<random>.tmp`; one that a killed process left
/// behind (its pid gone, owned by this user) is removed by the next write into that directory.
pub fn write_private_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    crate::hardening::remove_leftovers(dir, TEMP_PREFIX, |rest| rest.ends_with(TEMP_SUFFIX));
    let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(TEMP_SUFFIX)
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|e| Error::storage(format!("cannot create a file in {}: {e}", dir.display())))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| Error::storage(format!("cannot write {}: {}", path.display(), e.error)))?;
    Ok(())
}

/// Name prefix of the temporary files of [`write_private_atomically`].
const TEMP_PREFIX: &str = ".tbsecrets-";
/// Name suffix of the temporary files of [`write_private_atomically`].
const TEMP_SUFFIX: &str = ".tmp";

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
