//! tbsecrets: a native secret store for ThingsBoard and the C programs around it.
//!
//! Secrets are tenant-scoped, typed (TEXT or TEXT_FILE), versioned and sealed with AES-256-GCM
//! under per-tenant data keys that an external master key wraps. See `DESIGN.md` and README.md.

pub mod access;
pub mod audit;
pub mod crypto;
pub mod error;
#[cfg(feature = "ffi")]
pub mod ffi;
pub mod hardening;
#[cfg(feature = "jni")]
mod jni;
pub mod model;
pub mod placeholder;
pub mod service;
pub mod store;
mod throttle;

pub use access::{Actor, Operation, Policy, Principal, Role};
pub use audit::{AuditOptions, AuditVerification};
pub use crypto::MasterKey;
pub use error::{Error, ErrorCode, PlaceholderProblem, Result};
pub use model::{Limits, ListQuery, Page, SecretInfo, SecretType, VersionInfo};
pub use service::{SecretStorage, SecretValue, Session, StorageOptions};
