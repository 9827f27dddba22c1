//! `tbsecrets._native`: the Python binding of the tbsecrets core (PyO3, abi3 for CPython ≥ 3.9).
//!
//! Every call runs the Rust core directly with the GIL released (`Python::detach`) and inside
//! `catch_unwind`: a core error becomes the exception class of its code (`tbsecrets.NotFound`,
//! …, each a `tbsecrets.SecretStorageError` with `.code`, `.code_number`, `.message` and
//! `.problems`); a panic becomes `tbsecrets.InternalError`, never a `PanicException`.
//!
//! Values handed to Python (`bytes`, `str`) are Python objects: Python cannot wipe them, so
//! they live until the garbage collector frees their memory (README.md, "Python").

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tbsecrets::placeholder::{self, Fetched};
use tbsecrets::ResolveOptions;
use tbsecrets::{
    Error, ErrorCode, ListQuery, MasterKey, Principal, SecretType, Session, StorageOptions,
};
use zeroize::Zeroizing;

mod key_provider;

create_exception!(
    tbsecrets,
    SecretStorageError,
    PyException,
    "Base class of every tbsecrets error; `.code` is the stable error code name."
);
create_exception!(
    tbsecrets,
    InvalidArgument,
    SecretStorageError,
    "INVALID_ARGUMENT (1): an argument broke a validation rule."
);
create_exception!(
    tbsecrets,
    NotFound,
    SecretStorageError,
    "NOT_FOUND (2): the tenant, secret or version does not exist."
);
create_exception!(
    tbsecrets,
    AlreadyExists,
    SecretStorageError,
    "ALREADY_EXISTS (3): a secret with that name exists."
);
create_exception!(
    tbsecrets,
    TypeMismatch,
    SecretStorageError,
    "TYPE_MISMATCH (4): the secret has another type."
);
create_exception!(
    tbsecrets,
    PermissionDenied,
    SecretStorageError,
    "PERMISSION_DENIED (5): the principal may not do this."
);
create_exception!(
    tbsecrets,
    InUse,
    SecretStorageError,
    "IN_USE (6): the secret is referenced; delete with force=True."
);
create_exception!(
    tbsecrets,
    Conflict,
    SecretStorageError,
    "CONFLICT (7): the expected version did not match."
);
create_exception!(tbsecrets, MalformedPlaceholder, SecretStorageError, "MALFORMED_PLACEHOLDER (8): a ${secret: placeholder is not well formed; `.problems` lists them.");
create_exception!(
    tbsecrets,
    Unresolved,
    SecretStorageError,
    "UNRESOLVED (9): placeholders could not be resolved; `.problems` lists every one."
);
create_exception!(
    tbsecrets,
    WrongMasterKey,
    SecretStorageError,
    "WRONG_MASTER_KEY (10): the master key does not open this store."
);
create_exception!(
    tbsecrets,
    Integrity,
    SecretStorageError,
    "INTEGRITY (11): stored data failed authentication."
);
create_exception!(
    tbsecrets,
    StorageError,
    SecretStorageError,
    "STORAGE (12): the storage backend failed (I/O, locking, SQL)."
);
create_exception!(
    tbsecrets,
    Closed,
    SecretStorageError,
    "CLOSED (13): the store has been closed."
);
create_exception!(
    tbsecrets,
    InternalError,
    SecretStorageError,
    "INTERNAL (14): a bug, or a caught panic."
);
create_exception!(
    tbsecrets,
    RollbackDetected,
    SecretStorageError,
    "ROLLBACK_DETECTED (15): the store is older than its anchor or audit log."
);
create_exception!(
    tbsecrets,
    KeyUnavailable,
    SecretStorageError,
    "KEY_UNAVAILABLE (16): the key provider (PKCS#11 token, key program, callback) could not be used."
);

/// One placeholder that could not be resolved (no value in it).
#[pyclass(module = "tbsecrets", name = "PlaceholderProblem", frozen, get_all)]
#[derive(Clone)]
struct PyProblem {
    code: &'static str,
    name: String,
    offset: usize,
    reason: String,
}

#[pymethods]
impl PyProblem {
    fn __repr__(&self) -> String {
        format!(
            "PlaceholderProblem(code={:?}, name={:?}, offset={}, reason={:?})",
            self.code, self.name, self.offset, self.reason
        )
    }
}

/// The Python exception for a core error.
fn to_py_err(py: Python<'_>, e: &Error) -> PyErr {
    let text = e.to_string();
    let err = match e.code() {
        ErrorCode::InvalidArgument => InvalidArgument::new_err(text),
        ErrorCode::NotFound => NotFound::new_err(text),
        ErrorCode::AlreadyExists => AlreadyExists::new_err(text),
        ErrorCode::TypeMismatch => TypeMismatch::new_err(text),
        ErrorCode::PermissionDenied => PermissionDenied::new_err(text),
        ErrorCode::InUse => InUse::new_err(text),
        ErrorCode::Conflict => Conflict::new_err(text),
        ErrorCode::MalformedPlaceholder => MalformedPlaceholder::new_err(text),
        ErrorCode::Unresolved => Unresolved::new_err(text),
        ErrorCode::WrongMasterKey => WrongMasterKey::new_err(text),
        ErrorCode::Integrity => Integrity::new_err(text),
        ErrorCode::Storage => StorageError::new_err(text),
        ErrorCode::Closed => Closed::new_err(text),
        ErrorCode::RollbackDetected => RollbackDetected::new_err(text),
        ErrorCode::KeyUnavailable => KeyUnavailable::new_err(text),
        ErrorCode::Internal | ErrorCode::Ok => InternalError::new_err(text),
    };
    let problems: Vec<PyProblem> = e
        .problems()
        .iter()
        .map(|p| PyProblem {
            code: p.code.as_str(),
            name: p.name.clone(),
            offset: p.offset,
            reason: p.reason.clone(),
        })
        .collect();
    let value = err.value(py);
    let code = if e.code() == ErrorCode::Ok {
        ErrorCode::Internal
    } else {
        e.code()
    };
    // Setting attributes on a fresh exception object cannot fail short of memory exhaustion;
    // the exception is raised either way.
    let _ = value.setattr("code", code.as_str());
    let _ = value.setattr("code_number", code.as_i32());
    let _ = value.setattr("message", e.message());
    let _ = value.setattr("problems", problems);
    err
}

/// Runs `f` with the GIL released; a core error or a panic becomes a Python exception.
fn run<T: Send>(py: Python<'_>, f: impl FnOnce() -> tbsecrets::Result<T> + Send) -> PyResult<T> {
    let outcome = py.detach(|| catch_unwind(AssertUnwindSafe(f)));
    // An exception a host key provider raised during the call (taken either way, so that
    // none is left for a later call).
    let cause = key_provider::take_cause();
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => {
            let err = to_py_err(py, &e);
            if e.code() == ErrorCode::KeyUnavailable {
                err.set_cause(py, cause);
            }
            Err(err)
        }
        Err(_) => Err(to_py_err(
            py,
            &Error::internal("the native library panicked (a bug); the operation did not complete"),
        )),
    }
}

/// A secret value from Python: `bytes`, `bytearray` or `str` (UTF-8), copied into a buffer that
/// is wiped after use.
fn value_bytes(value: &Bound<'_, PyAny>) -> PyResult<Zeroizing<Vec<u8>>> {
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(Zeroizing::new(bytes.as_bytes().to_vec()));
    }
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(Zeroizing::new(text.to_cow()?.as_bytes().to_vec()));
    }
    if let Ok(bytes) = value.extract::<Vec<u8>>() {
        return Ok(Zeroizing::new(bytes));
    }
    Err(to_py_err(
        value.py(),
        &Error::invalid("a value must be bytes, bytearray or str"),
    ))
}

/// A master key from Python: 32 raw bytes, or its base64 text.
fn master_key(py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<MasterKey> {
    let parsed = if let Ok(text) = key.cast::<PyString>() {
        MasterKey::from_base64(text.to_cow()?.trim())
    } else {
        MasterKey::from_bytes(&value_bytes(key)?)
    };
    parsed.map_err(|e| to_py_err(py, &e))
}

fn parse_type(py: Python<'_>, secret_type: &str) -> PyResult<SecretType> {
    secret_type
        .parse::<SecretType>()
        .map_err(|e| to_py_err(py, &e))
}

/// A secret's metadata (never its value).
#[pyclass(module = "tbsecrets", name = "SecretInfo", frozen, get_all)]
struct PySecretInfo {
    tenant: String,
    name: String,
    secret_type: &'static str,
    description: String,
    version: u64,
    created_at: i64,
    updated_at: i64,
    value_updated_at: i64,
    last_used_at: Option<i64>,
    use_count: u64,
    deleted_at: Option<i64>,
}

#[pymethods]
impl PySecretInfo {
    fn __repr__(&self) -> String {
        format!(
            "SecretInfo(tenant={:?}, name={:?}, secret_type={:?}, version={})",
            self.tenant, self.name, self.secret_type, self.version
        )
    }
}

impl From<tbsecrets::SecretInfo> for PySecretInfo {
    fn from(i: tbsecrets::SecretInfo) -> Self {
        PySecretInfo {
            tenant: i.tenant,
            name: i.name,
            secret_type: i.secret_type.as_str(),
            description: i.description,
            version: i.version,
            created_at: i.created_at,
            updated_at: i.updated_at,
            value_updated_at: i.value_updated_at,
            last_used_at: i.last_used_at,
            use_count: i.use_count,
            deleted_at: i.deleted_at,
        }
    }
}

/// One kept version of a secret.
#[pyclass(module = "tbsecrets", name = "VersionInfo", frozen, get_all)]
struct PyVersionInfo {
    version: u64,
    created_at: i64,
    current: bool,
}

#[pymethods]
impl PyVersionInfo {
    fn __repr__(&self) -> String {
        format!(
            "VersionInfo(version={}, created_at={}, current={})",
            self.version, self.created_at, self.current
        )
    }
}

/// One page of `list`.
#[pyclass(module = "tbsecrets", name = "SecretPage", frozen, get_all)]
struct PyPage {
    items: Vec<Py<PySecretInfo>>,
    total: usize,
    has_more: bool,
    /// The cursor of the next page (pass it as `after`), None on the last page.
    next_after: Option<String>,
}

/// A (name, type) pair a document references; `secret_type` is None for the short form.
#[pyclass(module = "tbsecrets", name = "Reference", frozen, get_all)]
struct PyReference {
    name: String,
    secret_type: Option<&'static str>,
}

#[pymethods]
impl PyReference {
    fn __repr__(&self) -> String {
        format!(
            "Reference(name={:?}, secret_type={:?})",
            self.name, self.secret_type
        )
    }
    fn __eq__(&self, other: &Self) -> bool {
        self.name == other.name && self.secret_type == other.secret_type
    }
}

fn references_py(refs: Vec<placeholder::Reference>) -> Vec<PyReference> {
    refs.into_iter()
        .map(|r| PyReference {
            name: r.name,
            secret_type: r.secret_type.map(SecretType::as_str),
        })
        .collect()
}

/// A source that uses a secret (from the where-used index).
#[pyclass(module = "tbsecrets", name = "Usage", frozen, get_all)]
struct PyUsage {
    source_id: String,
    name: String,
    secret_type: Option<&'static str>,
}

#[pymethods]
impl PyUsage {
    fn __repr__(&self) -> String {
        format!(
            "Usage(source_id={:?}, name={:?}, secret_type={:?})",
            self.source_id, self.name, self.secret_type
        )
    }
}

/// The result of `verify_audit_log`.
#[pyclass(module = "tbsecrets", name = "AuditVerification", frozen, get_all)]
struct PyAuditVerification {
    records: u64,
    last_seq: u64,
    intact: bool,
    problem_line: Option<u64>,
    problem: Option<String>,
}

/// The result of a key rotation.
#[pyclass(module = "tbsecrets", name = "RotationReport", frozen, get_all)]
struct PyRotationReport {
    keys: usize,
    versions: usize,
    key_id: u32,
}

/// What a key rotation would do, with an estimated time (a dry run; nothing changed).
#[pyclass(module = "tbsecrets", name = "RotationPlan", frozen, get_all)]
struct PyRotationPlan {
    tenants: usize,
    keys: usize,
    secrets: usize,
    versions: usize,
    key_id: u32,
    sampled: usize,
    estimated_micros: u64,
}

impl From<tbsecrets::RotationPlan> for PyRotationPlan {
    fn from(plan: tbsecrets::RotationPlan) -> Self {
        PyRotationPlan {
            tenants: plan.tenants,
            keys: plan.keys,
            secrets: plan.secrets,
            versions: plan.versions,
            key_id: plan.key_id,
            sampled: plan.sampled,
            estimated_micros: plan.estimated_micros,
        }
    }
}

/// A principal's role.
#[pyclass(module = "tbsecrets", name = "Role", eq, eq_int, frozen)]
#[derive(Clone, Copy, PartialEq, Eq)]
enum PyRole {
    #[pyo3(name = "SYS_ADMIN")]
    SysAdmin,
    #[pyo3(name = "TENANT_ADMIN")]
    TenantAdmin,
    #[pyo3(name = "CUSTOMER_USER")]
    CustomerUser,
    #[pyo3(name = "SERVICE")]
    Service,
}

impl From<PyRole> for tbsecrets::Role {
    fn from(r: PyRole) -> Self {
        match r {
            PyRole::SysAdmin => tbsecrets::Role::SysAdmin,
            PyRole::TenantAdmin => tbsecrets::Role::TenantAdmin,
            PyRole::CustomerUser => tbsecrets::Role::CustomerUser,
            PyRole::Service => tbsecrets::Role::Service,
        }
    }
}

/// Who a session acts as: a tenant, a role and an optional id (for the audit log).
#[pyclass(module = "tbsecrets", name = "Principal", frozen, get_all)]
#[derive(Clone)]
struct PyPrincipal {
    tenant: String,
    role: PyRole,
    id: Option<String>,
}

#[pymethods]
impl PyPrincipal {
    #[new]
    #[pyo3(signature = (tenant, role, id=None))]
    fn new(tenant: String, role: PyRef<'_, PyRole>, id: Option<String>) -> Self {
        PyPrincipal {
            tenant,
            role: *role,
            id,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Principal(tenant={:?}, role={}, id={:?})",
            self.tenant,
            tbsecrets::Role::from(self.role).as_str(),
            self.id
        )
    }
}

impl PyPrincipal {
    fn core(&self) -> Principal {
        let principal = Principal::new(self.tenant.clone(), self.role.into());
        match &self.id {
            Some(id) => principal.with_id(id.clone()),
            None => principal,
        }
    }
}

/// The document syntaxes of `resolve_*`.
#[derive(Clone, Copy)]
enum Syntax {
    Text,
    Json,
    Yaml,
}

impl Syntax {
    fn parse(py: Python<'_>, s: &str) -> PyResult<Syntax> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(Syntax::Text),
            "json" => Ok(Syntax::Json),
            "yaml" | "yml" => Ok(Syntax::Yaml),
            _ => Err(to_py_err(
                py,
                &Error::invalid(format!("unknown syntax '{s}': expected text, json or yaml")),
            )),
        }
    }
}

/// The operations a store and a session share, on a core [`Session`] (the host's or a
/// principal's).
fn with_session<T>(
    store: &tbsecrets::SecretStorage,
    principal: Option<&Principal>,
    f: impl FnOnce(&Session<'_>) -> T,
) -> T {
    match principal {
        Some(p) => f(&store.session(p.clone())),
        None => f(&store.acting(&tbsecrets::Actor::Host)),
    }
}

/// Both Python classes (`SecretStorage`, `Session`) delegate here.
struct Ops {
    store: Arc<tbsecrets::SecretStorage>,
    principal: Option<Principal>,
}

impl Ops {
    fn call<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&Session<'_>) -> tbsecrets::Result<T> + Send,
    ) -> PyResult<T> {
        let store = &*self.store;
        let principal = self.principal.as_ref();
        run(py, || with_session(store, principal, f))
    }

    fn resolve(
        &self,
        py: Python<'_>,
        tenant: &str,
        document: &str,
        syntax: Syntax,
        materialize_files: bool,
    ) -> PyResult<Zeroizing<String>> {
        // `..Default::default()`: ResolveOptions grows fields in other branches.
        #[allow(clippy::needless_update)]
        let options = ResolveOptions {
            materialize_files,
            ..Default::default()
        };
        self.call(py, |s| {
            let resolved = match syntax {
                Syntax::Text => s.resolve_str(tenant, document, options),
                Syntax::Json => s.resolve_json(tenant, document, options),
                Syntax::Yaml => s.resolve_yaml(tenant, document, options),
            }?;
            Ok(Zeroizing::new(match resolved {
                Cow::Borrowed(_) => document.to_owned(),
                Cow::Owned(text) => text,
            }))
        })
    }

    /// Resolves `document` with TEXT_FILE values written as files (0600) into `files_dir`
    /// and replaced by their path under `final_dir` (where `files_dir` will be renamed to).
    fn resolve_to_files(
        &self,
        py: Python<'_>,
        tenant: &str,
        document: &str,
        syntax: Syntax,
        files_dir: &Path,
        final_dir: &Path,
    ) -> PyResult<(Zeroizing<String>, Vec<String>)> {
        self.call(py, |s| {
            let mut written = Vec::new();
            let mut source = |name: &str| -> tbsecrets::Result<Fetched> {
                let value = match s.get(tenant, name) {
                    Ok(value) => value,
                    Err(e) if e.code() == ErrorCode::NotFound => return Ok(Fetched::Missing),
                    Err(e) => return Err(e),
                };
                let secret_type = value.secret_type();
                let replacement = if secret_type == SecretType::TextFile {
                    let file = file_name(name);
                    let target = files_dir.join(&file);
                    if !target.exists() {
                        write_private(&target, value.as_bytes())?;
                        written.push(final_dir.join(&file).display().to_string());
                    }
                    Zeroizing::new(final_dir.join(&file).display().to_string())
                } else {
                    match value.as_str() {
                        Ok(text) => Zeroizing::new(text.to_owned()),
                        Err(_) => {
                            return Ok(Fetched::Unusable {
                                reason: "the value is not UTF-8 text".to_owned(),
                            })
                        }
                    }
                };
                Ok(Fetched::Found {
                    secret_type,
                    replacement,
                })
            };
            let resolved = match syntax {
                Syntax::Text => placeholder::resolve_text(document, &mut source),
                Syntax::Json => placeholder::resolve_json(document, &mut source),
                Syntax::Yaml => placeholder::resolve_yaml(document, &mut source),
            }?
            .into_owned();
            Ok((Zeroizing::new(resolved), written))
        })
    }
}

/// A file name for a secret's materialised value: its name made safe, plus a short hash of
/// the name so that two names never share a file.
fn file_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    let digest = Sha256::digest(name.as_bytes());
    let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hash}.pem", safe.trim_start_matches('.'))
}

/// Writes a new file with mode 0600 (never following or replacing an existing one).
fn write_private(path: &Path, bytes: &[u8]) -> tbsecrets::Result<()> {
    let cannot =
        |e: std::io::Error| Error::storage(format!("cannot write {}: {e}", path.display()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(cannot)?;
    file.write_all(bytes).map_err(cannot)?;
    file.sync_all().map_err(cannot)
}

/// A report (never holding a value) as Python objects, through the `json` module.
fn json_to_py<'py, T: serde::Serialize>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value)
        .map_err(|e| to_py_err(py, &Error::internal(format!("cannot render a report: {e}"))))?;
    py.import("json")?.call_method1("loads", (text,))
}

macro_rules! shared_ops {
    ($ty:ty) => {
        #[pymethods]
        impl $ty {
            /// Creates a secret (version 1). `secret_type`: "TEXT" or "TEXT_FILE" ("FILE").
            #[pyo3(signature = (tenant, name, secret_type, value, description=""))]
            fn create(
                &self,
                py: Python<'_>,
                tenant: &str,
                name: &str,
                secret_type: &str,
                value: &Bound<'_, PyAny>,
                description: &str,
            ) -> PyResult<PySecretInfo> {
                let secret_type = parse_type(py, secret_type)?;
                let value = value_bytes(value)?;
                self.ops
                    .call(py, |s| {
                        s.create(tenant, name, secret_type, &value, description)
                    })
                    .map(Into::into)
            }

            /// Writes a new value version; with `expected_version`, only if it is current.
            #[pyo3(signature = (tenant, name, value, expected_version=None))]
            fn update_value(
                &self,
                py: Python<'_>,
                tenant: &str,
                name: &str,
                value: &Bound<'_, PyAny>,
                expected_version: Option<u64>,
            ) -> PyResult<PySecretInfo> {
                let value = value_bytes(value)?;
                self.ops
                    .call(py, |s| {
                        s.update_value(tenant, name, &value, expected_version)
                    })
                    .map(Into::into)
            }

            /// Changes a secret's description.
            fn update_description(
                &self,
                py: Python<'_>,
                tenant: &str,
                name: &str,
                description: &str,
            ) -> PyResult<PySecretInfo> {
                self.ops
                    .call(py, |s| s.update_description(tenant, name, description))
                    .map(Into::into)
            }

            /// Deletes a secret; one still referenced needs `force=True` (else `InUse`).
            #[pyo3(signature = (tenant, name, force=false))]
            fn delete(
                &self,
                py: Python<'_>,
                tenant: &str,
                name: &str,
                force: bool,
            ) -> PyResult<()> {
                self.ops.call(py, |s| s.delete_with(tenant, name, force))
            }

            /// Makes a deleted secret live again, with its versions (`NotFound` when no deleted
            /// secret has that name).
            fn undelete(&self, py: Python<'_>, tenant: &str, name: &str) -> PyResult<()> {
                self.ops.call(py, |s| s.undelete(tenant, name))
            }

            /// Erases a secret, live or deleted, and all its versions for good (the stored
            /// ciphertexts are overwritten).
            fn destroy(&self, py: Python<'_>, tenant: &str, name: &str) -> PyResult<()> {
                self.ops.call(py, |s| s.destroy(tenant, name))
            }

            /// A secret's metadata.
            fn info(&self, py: Python<'_>, tenant: &str, name: &str) -> PyResult<PySecretInfo> {
                self.ops.call(py, |s| s.info(tenant, name)).map(Into::into)
            }

            /// One page of a tenant's secrets, by name: the names after `after` (the
            /// previous page's `next_after`; None for the first page), skipping `offset`;
            /// with `deleted=True`, of its deleted secrets still recoverable with `undelete`
            /// (each with `deleted_at`).
            #[pyo3(signature = (tenant, name_contains=None, offset=0, limit=100, after=None, deleted=false))]
            #[allow(clippy::too_many_arguments)]
            fn list(
                &self,
                py: Python<'_>,
                tenant: &str,
                name_contains: Option<String>,
                offset: usize,
                limit: usize,
                after: Option<String>,
                deleted: bool,
            ) -> PyResult<PyPage> {
                let query = ListQuery {
                    name_contains,
                    after,
                    offset,
                    limit,
                    deleted,
                };
                let page = self.ops.call(py, |s| s.list(tenant, &query))?;
                let items = page
                    .items
                    .into_iter()
                    .map(|i| Py::new(py, PySecretInfo::from(i)))
                    .collect::<PyResult<Vec<_>>>()?;
                Ok(PyPage {
                    items,
                    total: page.total,
                    has_more: page.has_more,
                    next_after: page.next_after,
                })
            }

            /// The kept versions of a secret, oldest first.
            fn history(
                &self,
                py: Python<'_>,
                tenant: &str,
                name: &str,
            ) -> PyResult<Vec<PyVersionInfo>> {
                let versions = self.ops.call(py, |s| s.history(tenant, name))?;
                Ok(versions
                    .into_iter()
                    .map(|v| PyVersionInfo {
                        version: v.version,
                        created_at: v.created_at,
                        current: v.current,
                    })
                    .collect())
            }

            /// Makes a kept version current again.
            fn rollback(
                &self,
                py: Python<'_>,
                tenant: &str,
                name: &str,
                version: u64,
            ) -> PyResult<PySecretInfo> {
                self.ops
                    .call(py, |s| s.rollback(tenant, name, version))
                    .map(Into::into)
            }

            /// The current value as `bytes` (Python cannot wipe it; drop it soon).
            fn get<'py>(
                &self,
                py: Python<'py>,
                tenant: &str,
                name: &str,
            ) -> PyResult<Bound<'py, PyBytes>> {
                let value = self.ops.call(py, |s| s.get(tenant, name))?;
                Ok(PyBytes::new(py, value.as_bytes()))
            }

            /// The current value as `str` (`InvalidArgument` if it is not UTF-8).
            fn get_text<'py>(
                &self,
                py: Python<'py>,
                tenant: &str,
                name: &str,
            ) -> PyResult<Bound<'py, PyString>> {
                let value = self.ops.call(py, |s| s.get(tenant, name))?;
                let text = value.as_str().map_err(|e| to_py_err(py, &e))?;
                Ok(PyString::new(py, text))
            }

            /// Resolves every placeholder in a text.
            #[pyo3(signature = (tenant, text, *, materialize_files=false))]
            fn resolve_text<'py>(
                &self,
                py: Python<'py>,
                tenant: &str,
                text: &str,
                materialize_files: bool,
            ) -> PyResult<Bound<'py, PyString>> {
                // The Rust copy is wiped once Python has its own.
                let resolved =
                    self.ops
                        .resolve(py, tenant, text, Syntax::Text, materialize_files)?;
                Ok(PyString::new(py, &resolved))
            }

            /// Resolves the string values of a JSON document (keys untouched).
            #[pyo3(signature = (tenant, document, *, materialize_files=false))]
            fn resolve_json<'py>(
                &self,
                py: Python<'py>,
                tenant: &str,
                document: &str,
                materialize_files: bool,
            ) -> PyResult<Bound<'py, PyString>> {
                // The Rust copy is wiped once Python has its own.
                let resolved =
                    self.ops
                        .resolve(py, tenant, document, Syntax::Json, materialize_files)?;
                Ok(PyString::new(py, &resolved))
            }

            /// Resolves the scalar values of a YAML document (keys untouched), quoted by YAML's rules.
            #[pyo3(signature = (tenant, document, *, materialize_files=false))]
            fn resolve_yaml<'py>(
                &self,
                py: Python<'py>,
                tenant: &str,
                document: &str,
                materialize_files: bool,
            ) -> PyResult<Bound<'py, PyString>> {
                // The Rust copy is wiped once Python has its own.
                let resolved =
                    self.ops
                        .resolve(py, tenant, document, Syntax::Yaml, materialize_files)?;
                Ok(PyString::new(py, &resolved))
            }

            /// For `tbsecrets.gateway`: resolves `document` (`syntax`: text, json, yaml) with
            /// TEXT_FILE values written as 0600 files into `files_dir` and replaced by their
            /// path in `final_dir`. Returns the document and the final paths written.
            fn _resolve_to_files<'py>(
                &self,
                py: Python<'py>,
                tenant: &str,
                document: &str,
                syntax: &str,
                files_dir: PathBuf,
                final_dir: PathBuf,
            ) -> PyResult<(Bound<'py, PyString>, Vec<String>)> {
                let syntax = Syntax::parse(py, syntax)?;
                let (resolved, written) = self
                    .ops
                    .resolve_to_files(py, tenant, document, syntax, &files_dir, &final_dir)?;
                Ok((PyString::new(py, &resolved), written))
            }

            /// Records which secrets a source uses (replacing its previous set).
            fn track_references(
                &self,
                py: Python<'_>,
                tenant: &str,
                source_id: &str,
                document: &str,
            ) -> PyResult<Vec<PyReference>> {
                self.ops
                    .call(py, |s| s.track_references(tenant, source_id, document))
                    .map(references_py)
            }

            /// Forgets a source's references; returns how many were removed.
            fn untrack(&self, py: Python<'_>, tenant: &str, source_id: &str) -> PyResult<usize> {
                self.ops.call(py, |s| s.untrack(tenant, source_id))
            }

            /// The sources that use a secret.
            fn where_used(
                &self,
                py: Python<'_>,
                tenant: &str,
                name: &str,
            ) -> PyResult<Vec<PyUsage>> {
                let used = self.ops.call(py, |s| s.where_used(tenant, name))?;
                Ok(used
                    .into_iter()
                    .map(|u| PyUsage {
                        source_id: u.source_id,
                        name: u.name,
                        secret_type: u.secret_type.map(SecretType::as_str),
                    })
                    .collect())
            }

            /// Verifies the audit log (`path`, else the store's own).
            #[pyo3(signature = (path=None))]
            fn verify_audit_log(
                &self,
                py: Python<'_>,
                path: Option<PathBuf>,
            ) -> PyResult<PyAuditVerification> {
                let report = self.ops.call(py, |s| s.verify_audit_log(path.as_deref()))?;
                let intact = report.is_intact();
                Ok(PyAuditVerification {
                    records: report.records,
                    last_seq: report.last_seq,
                    intact,
                    problem_line: report.problem.as_ref().map(|p| p.line),
                    problem: report.problem.map(|p| p.reason),
                })
            }

            /// Replaces the master key (`bytes` of 32, or base64 `str`).
            fn rotate_master_key(
                &self,
                py: Python<'_>,
                new_key: &Bound<'_, PyAny>,
            ) -> PyResult<PyRotationReport> {
                let key = master_key(py, new_key)?;
                let report = self.ops.call(py, |s| s.rotate_master_key(&key))?;
                Ok(PyRotationReport {
                    keys: report.keys,
                    versions: report.versions,
                    key_id: report.key_id,
                })
            }

            /// Moves the master key to another key provider: a spec (e.g.
            /// `"command:/usr/local/bin/kms-hook key-1"`) or a host object with `wrap(aad,
            /// plaintext)` and `unwrap(aad, wrapped)` returning `bytes`. Every data key is
            /// rewrapped by it; afterwards only it opens the store (`open(key_provider=...)`).
            /// `KeyUnavailable` (nothing changed) when a provider fails.
            fn rotate_key_provider(
                &self,
                py: Python<'_>,
                provider: &Bound<'_, PyAny>,
            ) -> PyResult<PyRotationReport> {
                let provider =
                    key_provider::key_provider_from_py(provider).map_err(|e| to_py_err(py, &e))?;
                let report = self
                    .ops
                    .call(py, |s| s.rotate_key_provider(provider, &mut |_, _| {}))?;
                Ok(PyRotationReport {
                    keys: report.keys,
                    versions: report.versions,
                    key_id: report.key_id,
                })
            }

            /// This store's export public key (`ed25519:…`), which importers trust.
            fn export_key(&self, py: Python<'_>) -> PyResult<String> {
                Ok(self.ops.call(py, |s| s.export_key())?.to_string())
            }

            /// The tenant's secrets as an export bundle (age file bytes) encrypted to the
            /// `age1…` recipients (one per line) and signed by this store.
            #[pyo3(signature = (tenant, recipients, all_versions=false))]
            fn export_bundle<'py>(
                &self,
                py: Python<'py>,
                tenant: &str,
                recipients: &str,
                all_versions: bool,
            ) -> PyResult<Bound<'py, PyBytes>> {
                let options = tbsecrets::bundle::ExportOptions { all_versions };
                let bundle = self
                    .ops
                    .call(py, |s| s.export_bundle(tenant, recipients, &options))?;
                Ok(PyBytes::new(py, &bundle.bytes))
            }

            /// Imports a bundle all or nothing; `identity` is the age identity file's text,
            /// `trust` export keys (one per line), `on_conflict` "fail", "skip" or
            /// "overwrite". Returns the report as a dict (never a value).
            #[pyo3(signature = (tenant, bundle, identity, on_conflict="fail", dry_run=false, trust=""))]
            #[allow(clippy::too_many_arguments)]
            fn import_bundle<'py>(
                &self,
                py: Python<'py>,
                tenant: &str,
                bundle: &[u8],
                identity: &str,
                on_conflict: &str,
                dry_run: bool,
                trust: &str,
            ) -> PyResult<Bound<'py, PyAny>> {
                let options = on_conflict
                    .parse()
                    .and_then(|on_conflict| {
                        tbsecrets::bundle::ImportOptions {
                            on_conflict,
                            dry_run,
                            trusted_signers: Vec::new(),
                        }
                        .trust(trust)
                    })
                    .map_err(|e| to_py_err(py, &e))?;
                let report = self
                    .ops
                    .call(py, |s| s.import_bundle(tenant, bundle, identity, &options))?;
                json_to_py(py, &report)
            }

            /// The secrets `documents` (a list of (label, text)) need, each with its status
            /// in the tenant ("PRESENT", "MISSING", "TYPE_MISMATCH", "PATTERN"), as a dict.
            fn manifest<'py>(
                &self,
                py: Python<'py>,
                tenant: &str,
                documents: Vec<(String, String)>,
            ) -> PyResult<Bound<'py, PyAny>> {
                let docs: Vec<tbsecrets::bundle::ManifestDocument<'_>> = documents
                    .iter()
                    .map(|(label, text)| tbsecrets::bundle::ManifestDocument { label, text })
                    .collect();
                let manifest = self.ops.call(py, |s| s.manifest(tenant, &docs))?;
                json_to_py(py, &manifest)
            }

            /// Gives a tenant a new data key and re-encrypts its versions.
            fn rotate_tenant_key(
                &self,
                py: Python<'_>,
                tenant: &str,
            ) -> PyResult<PyRotationReport> {
                let report = self.ops.call(py, |s| s.rotate_tenant_key(tenant))?;
                Ok(PyRotationReport {
                    keys: report.keys,
                    versions: report.versions,
                    key_id: report.key_id,
                })
            }

            /// What `rotate_master_key` would do, with an estimated time; changes nothing.
            fn plan_master_key_rotation(&self, py: Python<'_>) -> PyResult<PyRotationPlan> {
                Ok(self.ops.call(py, |s| s.plan_master_key_rotation())?.into())
            }

            /// What `rotate_tenant_key` would do, with an estimated time; changes nothing.
            fn plan_tenant_key_rotation(
                &self,
                py: Python<'_>,
                tenant: &str,
            ) -> PyResult<PyRotationPlan> {
                Ok(self
                    .ops
                    .call(py, |s| s.plan_tenant_key_rotation(tenant))?
                    .into())
            }
        }
    };
}

/// An open store.
#[pyclass(module = "tbsecrets", name = "SecretStorage", frozen)]
struct PyStorage {
    ops: Ops,
}

/// A store seen by one principal: every call is checked against the store's policy.
#[pyclass(module = "tbsecrets", name = "Session", frozen)]
struct PySession {
    ops: Ops,
    principal: PyPrincipal,
}

shared_ops!(PyStorage);
shared_ops!(PySession);

#[pymethods]
impl PyStorage {
    /// Opens (by default creating) the store at `path` (a file, or a `postgres://` URL in a
    /// build with the `postgres` feature). `deleted_retention_days`: how long a deleted secret
    /// stays recoverable with `undelete` (default 30; 0: a delete erases at once).
    #[staticmethod]
    ///
    /// `key_provider`: who holds the master key instead of a raw key: a provider spec
    /// (`"command:…"`, `"pkcs11:…"`, docs/KEY-CUSTODY.md) or an object (a KMS client) with
    /// `wrap(aad, plaintext) -> bytes` and `unwrap(aad, wrapped) -> bytes`, called with the GIL
    /// held from the thread calling the store. `key_cache_ttl_seconds`: how long unwrapped
    /// data keys stay in memory (default: the handle's life).
    #[pyo3(signature = (path, *, master_key=None, master_key_file=None, create_if_missing=true, policy_json=None, audit_log=None, audit=true, cache_values=true, key_provider=None, deleted_retention_days=30.0, key_cache_ttl_seconds=None))]
    #[allow(clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        master_key: Option<&Bound<'_, PyAny>>,
        master_key_file: Option<PathBuf>,
        create_if_missing: bool,
        policy_json: Option<String>,
        audit_log: Option<PathBuf>,
        audit: bool,
        cache_values: bool,
        key_provider: Option<&Bound<'_, PyAny>>,
        deleted_retention_days: f64,
        key_cache_ttl_seconds: Option<f64>,
    ) -> PyResult<PyStorage> {
        let retention = std::time::Duration::try_from_secs_f64(deleted_retention_days * 86_400.0)
            .map_err(|_| {
                to_py_err(
                    py,
                    &Error::invalid(format!(
                        "deleted_retention_days must be a non-negative number of days; got {deleted_retention_days}"
                    )),
                )
            })?;
        let key = master_key
            .map(|key| self::master_key(py, key))
            .transpose()?;
        let given = key_provider
            .map(key_provider::key_provider_from_py)
            .transpose()
            .map_err(|e| to_py_err(py, &e))?;
        let provider = run(py, || {
            key_provider::provider_of(key, master_key_file, given)
        })?;
        let mut options = StorageOptions::with_key_provider(provider);
        options.key_cache_ttl =
            key_provider::cache_ttl(key_cache_ttl_seconds).map_err(|e| to_py_err(py, &e))?;
        options.create_if_missing = create_if_missing;
        options.cache_values = cache_values;
        options.deleted_retention = retention;
        options.audit.enabled = audit;
        options.audit.path = audit_log;
        if let Some(policy) = policy_json {
            options.policy =
                Some(tbsecrets::Policy::from_json(&policy).map_err(|e| to_py_err(py, &e))?);
        }
        let store = run(py, || tbsecrets::SecretStorage::open(&path, options))?;
        Ok(PyStorage {
            ops: Ops {
                store: Arc::new(store),
                principal: None,
            },
        })
    }

    /// Wipes the unwrapped data keys (and the cached values sealed by them): the next use of
    /// each asks the key provider again. Done on its own when `key_cache_ttl_seconds` runs out.
    fn forget_keys(&self) {
        self.ops.store.forget_keys();
    }

    /// A new random master key (32 bytes) to pass as `master_key=`.
    #[staticmethod]
    fn generate_master_key<'py>(py: Python<'py>) -> Bound<'py, PyBytes> {
        use base64::Engine;
        let text = MasterKey::generate().to_base64();
        let raw = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .unwrap_or_default(),
        );
        PyBytes::new(py, &raw)
    }

    /// The distinct (name, type) pairs a document references (no store needed).
    #[staticmethod]
    fn references(py: Python<'_>, document: &str) -> PyResult<Vec<PyReference>> {
        run(py, || placeholder::references(document)).map(references_py)
    }

    /// A session acting as `principal`.
    fn session(&self, principal: PyRef<'_, PyPrincipal>) -> PySession {
        let principal = principal.clone();
        PySession {
            ops: Ops {
                store: Arc::clone(&self.ops.store),
                principal: Some(principal.core()),
            },
            principal,
        }
    }

    /// Closes the store: later calls raise `Closed`. Closing twice is fine.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.ops.store.is_closed() {
            return Ok(());
        }
        let store = &*self.ops.store;
        run(py, || store.close())
    }

    /// Whether the store has been closed.
    #[getter]
    fn closed(&self) -> bool {
        self.ops.store.is_closed()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }
}

#[pymethods]
impl PySession {
    /// Who this session acts as.
    #[getter]
    fn principal(&self) -> PyPrincipal {
        self.principal.clone()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// A session holds nothing to release: leaving the `with` block only ends its use.
    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        false
    }
}

/// Test hook: panics inside the guarded call path, to show that a panic reaches Python as
/// `InternalError`.
#[pyfunction]
fn _panic_for_test(py: Python<'_>) -> PyResult<()> {
    run(py, || -> tbsecrets::Result<()> { panic!("test panic") })
}

/// Test hook: blocks in the guarded call path (the GIL released, as during every store call)
/// until a byte can be read from the file descriptor `fd`, or `timeout_ms` passes. Returns
/// whether a byte came: only another Python thread running meanwhile can write it.
#[pyfunction]
fn _wait_fd_without_gil_for_test(py: Python<'_>, fd: i32, timeout_ms: i32) -> PyResult<bool> {
    run(py, || {
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll, 1, timeout_ms) };
        if ready <= 0 {
            return Ok(false);
        }
        let mut byte = 0u8;
        // SAFETY: reads at most one byte into a valid one-byte buffer.
        let read = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
        Ok(read == 1)
    })
}

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<PyStorage>()?;
    m.add_class::<PySession>()?;
    m.add_class::<PyPrincipal>()?;
    m.add_class::<PyRole>()?;
    m.add_class::<PySecretInfo>()?;
    m.add_class::<PyVersionInfo>()?;
    m.add_class::<PyPage>()?;
    m.add_class::<PyReference>()?;
    m.add_class::<PyUsage>()?;
    m.add_class::<PyAuditVerification>()?;
    m.add_class::<PyRotationReport>()?;
    m.add_class::<PyRotationPlan>()?;
    m.add_class::<PyProblem>()?;
    m.add("SecretStorageError", py.get_type::<SecretStorageError>())?;
    m.add("InvalidArgument", py.get_type::<InvalidArgument>())?;
    m.add("NotFound", py.get_type::<NotFound>())?;
    m.add("AlreadyExists", py.get_type::<AlreadyExists>())?;
    m.add("TypeMismatch", py.get_type::<TypeMismatch>())?;
    m.add("PermissionDenied", py.get_type::<PermissionDenied>())?;
    m.add("InUse", py.get_type::<InUse>())?;
    m.add("Conflict", py.get_type::<Conflict>())?;
    m.add(
        "MalformedPlaceholder",
        py.get_type::<MalformedPlaceholder>(),
    )?;
    m.add("Unresolved", py.get_type::<Unresolved>())?;
    m.add("WrongMasterKey", py.get_type::<WrongMasterKey>())?;
    m.add("Integrity", py.get_type::<Integrity>())?;
    m.add("StorageError", py.get_type::<StorageError>())?;
    m.add("Closed", py.get_type::<Closed>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    m.add("RollbackDetected", py.get_type::<RollbackDetected>())?;
    m.add("KeyUnavailable", py.get_type::<KeyUnavailable>())?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    m.add_function(wrap_pyfunction!(_wait_fd_without_gil_for_test, m)?)?;
    Ok(())
}
