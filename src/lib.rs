//! tbsecrets: a native secret store for ThingsBoard and the C programs around it.
//!
//! Secrets are tenant-scoped, typed (TEXT or TEXT_FILE), versioned and sealed with AES-256-GCM
//! under per-tenant data keys that an external master key wraps. See README.md and
//! `docs/ARCHITECTURE.md` (module map, data flow, invariants).
//!
//! Start with [`SecretStorage::open`]; its methods act as the host program (which holds the
//! master key), and [`SecretStorage::session`] gives a [`Session`] acting for a [`Principal`],
//! checked against the access [`Policy`] and audited.
//!
//! ```
//! use tbsecrets::{MasterKey, Principal, Role, SecretStorage, SecretType, StorageOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let options = StorageOptions::with_master_key(MasterKey::generate());
//! let store = SecretStorage::open(dir.path().join("tbsecrets.db"), options)?;
//! store.create("tenant-a", "MyApiKey", SecretType::Text, b"s3cr3t", "partner API key")?;
//!
//! let rule_engine = store.session(Principal::new("tenant-a", Role::Service));
//! let config = r#"{"headers": {"Authorization": "Bearer ${secret:MyApiKey}"}}"#;
//! let resolved = rule_engine.resolve_json("tenant-a", config, Default::default())?;
//! assert_eq!(resolved, r#"{"headers": {"Authorization": "Bearer s3cr3t"}}"#);
//! store.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

// Public: the namespaces of the documented API (access, audit, error, hardening, model,
// placeholder). The rest is crate-private, the root re-exporting what users call: `crypto`
// (keys, sealed blobs, MAC keys) and `ffi` (the C ABI, whose `#[no_mangle]` functions are
// exported from the libraries all the same; Rust tests and benches call them through the
// `extern "C"` declarations of `tests/common/c_abi.rs`).
pub mod access;
pub mod audit;
pub mod bundle;
mod crypto;
pub mod error;
#[cfg(feature = "ffi")]
mod ffi;
mod file_lock;
pub mod hardening;
#[cfg(feature = "jni")]
mod jni;
pub mod model;
pub mod placeholder;
mod service;
mod store;
mod throttle;

pub use access::{Actor, AllowList, Operation, Policy, Principal, Role};
pub use audit::{AuditOptions, AuditVerification};
pub use crypto::provider::{
    key_provider_from_env, key_provider_from_spec, CommandWrapper, KEY_AAD_ENV,
    KEY_COMMAND_TIMEOUT_ENV, KEY_PROVIDER_ENV, WRAPPED_BLOB_VERSION,
};
#[cfg(feature = "pkcs11")]
pub use crypto::provider::{PinSource, Pkcs11Config, Pkcs11Provider, TokenSelector};
pub use crypto::{
    master_key_from_env, read_key_file, write_key_file, BlobContext, KeyProvider, KeyWrapper,
    MasterKey, WrapperProvider,
};
pub use error::{Error, ErrorCode, PlaceholderProblem, Result};
pub use model::{Limits, ListQuery, Page, SecretInfo, SecretType, VersionInfo};
pub use service::{
    migrate, validate_source_id, write_private_atomically, write_private_atomically_with,
    DocumentFormat, MaterializeOptions, MigrationReport, ResolveOptions, RotationPlan,
    RotationReport, SecretStorage, SecretValue, Session, StorageOptions, DEFAULT_DELETED_RETENTION,
    MAX_SOURCE_ID_BYTES,
};
pub use store::{is_postgres_url, StoredReference};
