//! Placeholder resolution and the reference index on `SecretStorage` (docs/ARCHITECTURE.md,
//! "Placeholders").
//!
//! The pure parser/resolver lives in `crate::placeholder`; this module is the store's side of
//! it: a `SecretSource` that reads each distinct secret once per call through the value cache
//! (so resolution is decrypt-once and counts usage; `source.rs`), materialisation of
//! TEXT_FILE values, and the exact (tenant, secret, source) index. The call's options and
//! document formats are in `options.rs`.

use super::operation::Op;
use super::{SecretStorage, Session};
use crate::access::Operation;
use crate::audit::{AuditAction, AuditEntry};
use crate::error::{Error, ErrorCode, Result};
use crate::model::validate_tenant;
use crate::placeholder;
use std::borrow::Cow;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use zeroize::Zeroizing;

mod options;
mod source;

pub(crate) use options::Syntax;
pub use options::{DocumentFormat, ResolveOptions};
use source::StoreSource;

host_operations! {
    /// [`SecretStorage::resolve_str`] with options (TEXT_FILE materialisation).
    fn resolve_str_with<'a>(&self, tenant: &str, text: &'a str, options: ResolveOptions)
        -> Result<Cow<'a, str>> => resolve_str;

    /// [`SecretStorage::resolve_json`] with options (TEXT_FILE materialisation).
    fn resolve_json_with<'a>(&self, tenant: &str, json: &'a str, options: ResolveOptions)
        -> Result<Cow<'a, str>> => resolve_json;

    /// [`SecretStorage::resolve_yaml`] with options (TEXT_FILE materialisation).
    fn resolve_yaml_with<'a>(&self, tenant: &str, yaml: &'a str, options: ResolveOptions)
        -> Result<Cow<'a, str>> => resolve_yaml;

    /// Resolves a text, or with `json` a JSON document, into the caller's buffer `out`,
    /// with the rules of [`SecretStorage::resolve_str`] and [`SecretStorage::resolve_json`]:
    /// no allocation for the output, so a caller that resolves large documents again and
    /// again reuses one buffer. Returns the resolved length: when it is at most `out.len()`
    /// the document is in `out[..length]` (a document without placeholders is copied as it
    /// is); otherwise, and on an error, nothing of it is left in `out` (what was written is
    /// zeroed) and the caller may try again with at least `length` bytes. The buffer then
    /// holds secret values: the caller wipes it when done.
    ///
    /// ```
    /// use tbsecrets::{MasterKey, ResolveOptions, SecretStorage, SecretType, StorageOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let options = StorageOptions::with_master_key(MasterKey::generate());
    /// let store = SecretStorage::open(dir.path().join("tbsecrets.db"), options)?;
    /// store.create("tenant-a", "MyApiKey", SecretType::Text, b"s3cr3t", "")?;
    /// let mut out = [0u8; 8];
    /// let text = "Bearer ${secret:MyApiKey}";
    /// let needed = store.resolve_into("tenant-a", text, false, ResolveOptions::default(), &mut out)?;
    /// assert_eq!((needed, out), (13, [0; 8]), "too small: nothing written, the size needed");
    /// let mut out = vec![0u8; needed];
    /// store.resolve_into("tenant-a", text, false, ResolveOptions::default(), &mut out)?;
    /// assert_eq!(out, b"Bearer s3cr3t");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn resolve_into(&self, tenant: &str, document: &str, json: bool, options: ResolveOptions,
        out: &mut [u8]) -> Result<usize>;

    /// Reads a file and resolves it as JSON, YAML or text (`Auto`: `.json` → JSON,
    /// `.yaml`/`.yml` → YAML).
    fn resolve_file(&self, tenant: &str, path: &Path, format: DocumentFormat,
        options: ResolveOptions) -> Result<String>;

    /// Resolves a file like [`SecretStorage::resolve_file`] and writes the result to `output`
    /// atomically with mode 0600 (see [`write_private_atomically`]). Nothing is written when
    /// resolution fails.
    fn resolve_file_to(&self, tenant: &str, path: &Path, output: &Path, format: DocumentFormat,
        options: ResolveOptions) -> Result<()>;
}

impl SecretStorage {
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

    /// Resolves every scalar value of a YAML document (mapping keys are not resolved); the
    /// rest is kept byte for byte, and substituted values are written by YAML's quoting rules
    /// (a multi-line value standing alone becomes a literal block scalar). Fails with
    /// INVALID_ARGUMENT if the document is not valid YAML. See [`placeholder::resolve_yaml`].
    ///
    /// ```
    /// use tbsecrets::{MasterKey, SecretStorage, SecretType, StorageOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let options = StorageOptions::with_master_key(MasterKey::generate());
    /// let store = SecretStorage::open(dir.path().join("tbsecrets.db"), options)?;
    /// store.create("tenant-a", "mqtt-pass", SecretType::Text, b"yes: #1", "")?;
    /// let resolved = store.resolve_yaml("tenant-a", "password: ${secret:mqtt-pass}\nport: 1883\n")?;
    /// assert_eq!(resolved, "password: \"yes: #1\"\nport: 1883\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resolve_yaml<'a>(&self, tenant: &str, yaml: &'a str) -> Result<Cow<'a, str>> {
        self.resolve_yaml_with(tenant, yaml, ResolveOptions::default())
    }

    /// Removes the TEXT_FILE files materialised so far by this handle.
    pub fn clear_materialized(&self) -> Result<()> {
        self.materializer.clear()
    }

    /// Gives back the paths a [`Session::resolve_materialized`] call handed out: a file no
    /// other result still holds is removed at once. Paths the store does not hold (already
    /// cleared, or not materialised by it) are ignored.
    pub fn release_materialized(&self, paths: &[String]) -> Result<()> {
        self.materializer.release(paths)
    }
}

impl Session<'_> {
    /// Resolves a text's placeholders; needs RESOLVE. See [`SecretStorage::resolve_str`].
    pub fn resolve_str<'t>(
        &self,
        tenant: &str,
        text: &'t str,
        options: ResolveOptions,
    ) -> Result<Cow<'t, str>> {
        self.resolve(tenant, text, Syntax::Text, options, &mut Vec::new())
    }

    /// Resolves a JSON document's placeholders; needs RESOLVE. See
    /// [`SecretStorage::resolve_json`].
    pub fn resolve_json<'t>(
        &self,
        tenant: &str,
        json: &'t str,
        options: ResolveOptions,
    ) -> Result<Cow<'t, str>> {
        self.resolve(tenant, json, Syntax::Json, options, &mut Vec::new())
    }

    /// Resolves a YAML document's placeholders; needs RESOLVE. See
    /// [`SecretStorage::resolve_yaml`].
    pub fn resolve_yaml<'t>(
        &self,
        tenant: &str,
        yaml: &'t str,
        options: ResolveOptions,
    ) -> Result<Cow<'t, str>> {
        self.resolve(tenant, yaml, Syntax::Yaml, options, &mut Vec::new())
    }

    /// Resolves a text or a JSON document into `out`; needs RESOLVE. See
    /// [`SecretStorage::resolve_into`].
    pub fn resolve_into(
        &self,
        tenant: &str,
        document: &str,
        json: bool,
        options: ResolveOptions,
        out: &mut [u8],
    ) -> Result<usize> {
        let variables = options.variables;
        self.run_resolve(tenant, options, &mut Vec::new(), |source| {
            if json {
                placeholder::resolve_json_into(document, source, variables, out)
            } else {
                placeholder::resolve_text_into(document, source, variables, out)
            }
        })
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
        let options = ResolveOptions {
            materialize_files: true,
            ..ResolveOptions::default()
        };
        let mut files = Vec::new();
        let syntax = Syntax::json_or_text(json);
        match self.resolve(tenant, document, syntax, options, &mut files) {
            Ok(resolved) => Ok((resolved, files)),
            Err(e) => {
                // Best effort: the caller gets the resolution error either way.
                let _ = self.store.release_materialized(&files);
                Err(e)
            }
        }
    }

    /// Reads a file and resolves it as JSON, YAML or text (`Auto` by extension); needs RESOLVE.
    /// See [`SecretStorage::resolve_file`].
    pub fn resolve_file(
        &self,
        tenant: &str,
        path: &Path,
        format: DocumentFormat,
        options: ResolveOptions,
    ) -> Result<String> {
        self.allow(&resolve_op(tenant))?;
        let text = read_document(path)?;
        let syntax = format.syntax(path);
        Ok(self
            .resolve(tenant, &text, syntax, options, &mut Vec::new())?
            .into_owned())
    }

    /// Resolves a file into `output` (written atomically, mode 0600); needs RESOLVE. See
    /// [`SecretStorage::resolve_file_to`].
    pub fn resolve_file_to(
        &self,
        tenant: &str,
        path: &Path,
        output: &Path,
        format: DocumentFormat,
        options: ResolveOptions,
    ) -> Result<()> {
        let resolved = Zeroizing::new(self.resolve_file(tenant, path, format, options)?);
        write_private_atomically(output, resolved.as_bytes())
    }

    /// A whole `document` (text, JSON or YAML) resolved for this actor through
    /// [`run_resolve`](Session::run_resolve).
    fn resolve<'t>(
        &self,
        tenant: &str,
        document: &'t str,
        syntax: Syntax,
        options: ResolveOptions,
        materialized: &mut Vec<String>,
    ) -> Result<Cow<'t, str>> {
        let variables = options.variables;
        self.run_resolve(tenant, options, materialized, |source| match syntax {
            Syntax::Json => placeholder::resolve_json_with(document, source, variables),
            Syntax::Yaml => placeholder::resolve_yaml(document, source),
            Syntax::Text => placeholder::resolve_text_with(document, source, variables),
        })
    }

    /// Resolves the text that `open` reads, in chunks, into `output` (memory stays bounded
    /// whatever the text's length); needs RESOLVE. Returns the number of bytes read. With
    /// `check_first` the text is read twice and nothing is written unless every placeholder
    /// resolves; without it, what was written before a failure is the caller's to discard
    /// (e.g. a temporary file). The same audit and rules as [`Session::resolve_str`]; a text
    /// over [`placeholder::MAX_DOCUMENT_BYTES`] is INVALID_ARGUMENT. See
    /// [`placeholder::resolve_text_stream`].
    pub fn resolve_text_stream<R: std::io::Read, W: Write>(
        &self,
        tenant: &str,
        open: impl FnMut() -> Result<R>,
        output: &mut W,
        check_first: bool,
        options: ResolveOptions,
    ) -> Result<u64> {
        let variables = options.variables;
        self.run_resolve(tenant, options, &mut Vec::new(), |source| {
            placeholder::resolve_text_stream(
                open,
                output,
                check_first,
                placeholder::MAX_DOCUMENT_BYTES,
                source,
                variables,
            )
        })
    }

    /// The one resolve operation (needs RESOLVE): `run` resolves with the store as its source
    /// of values; the paths of the files it materialised (each once per call, whether or not
    /// the call succeeds) are added to `materialized`. One batched audit record per distinct
    /// secret used; a failed call is one record naming the secrets it could not substitute
    /// (synced).
    fn run_resolve<T>(
        &self,
        tenant: &str,
        options: ResolveOptions,
        materialized: &mut Vec<String>,
        run: impl FnOnce(&mut StoreSource<'_>) -> Result<T>,
    ) -> Result<T> {
        let store = self.allow(&resolve_op(tenant))?;
        if let Err(e) = store.ensure_open().and_then(|()| validate_tenant(tenant)) {
            if e.code() != ErrorCode::Closed {
                // Best effort, like every failed resolve: the caller gets the error either way.
                let entry = AuditEntry::new(
                    &self.actor,
                    AuditAction::Resolve,
                    tenant,
                    Vec::new(),
                    e.code(),
                );
                let _ = store.audit_record(entry);
            }
            return Err(e);
        }
        let mut source = StoreSource {
            store,
            tenant,
            allowed: self.actor.principal().and_then(|p| p.allowed_names()),
            options,
            fetched: Vec::new(),
            materialized: Vec::new(),
        };
        let result = run(&mut source);
        materialized.append(&mut source.materialized);
        match &result {
            Ok(_) => {
                let now = super::clock::coarse_now_millis();
                for (name, _) in &source.fetched {
                    store.note_use(
                        &self.actor,
                        AuditAction::Resolve,
                        tenant,
                        name,
                        ErrorCode::Ok,
                        now,
                    );
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
                        let _ = store.audit_record(AuditEntry::new(
                            &self.actor,
                            AuditAction::Resolve,
                            tenant,
                            vec![name.clone()],
                            ErrorCode::PermissionDenied,
                        ));
                    }
                }
                // Best effort: the caller gets the resolution error either way.
                let _ = store.audit_record(AuditEntry::new(
                    &self.actor,
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
}

/// A resolve in `tenant` (the names are known only once the document is scanned).
fn resolve_op(tenant: &str) -> Op<'_> {
    Op::new(Operation::Resolve, AuditAction::Resolve, tenant, &[])
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
    write_private_atomically_with(path, |file| Ok(file.write_all(bytes)?))
}

/// [`write_private_atomically`] with the contents written by `write` into the temporary file
/// (for a result streamed in pieces). If `write` fails, the temporary file is removed and
/// `path` is left as it was.
pub fn write_private_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> Result<()>,
) -> Result<()> {
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
    write(tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| Error::storage(format!("cannot write {}: {}", path.display(), e.error)))?;
    Ok(())
}

/// Name prefix of the temporary files of [`write_private_atomically`].
const TEMP_PREFIX: &str = ".tbsecrets-";
/// Name suffix of the temporary files of [`write_private_atomically`].
const TEMP_SUFFIX: &str = ".tmp";
