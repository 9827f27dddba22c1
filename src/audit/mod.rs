//! The tamper-evident audit log (docs/FORMATS.md, "Audit record"; SECURITY.md).
//!
//! Every change, every use of a value and every denied attempt becomes one JSON line —
//! who, what, which secrets, which version, the outcome — and never a value. Each line
//! carries the MAC of the line before it and its own MAC over all of its content, keyed by a
//! store-wide audit key that the master key wraps (so it survives master-key rotation and
//! only holders of the master key can write or verify a valid line). Deleting, inserting,
//! reordering or editing a line breaks the chain at that line.
//!
//! Uses of values (`GET`, `RESOLVE`) are batched: one record per principal, secret and
//! outcome carries how many calls it covers (`count`) and when the first (`since`) and last
//! (`time`) happened; one resolve call counts once per secret however many placeholders
//! name it. Management records and denied management attempts are written and synced
//! before the call returns.

mod batch;
mod entry;
mod file;
mod log;
mod options;
mod verify;

pub use entry::{AuditAction, AuditEntry};
pub use options::{AuditOptions, AuditSink};
pub use verify::{AuditProblem, AuditVerification};

pub(crate) use entry::ChainHead;
pub(crate) use log::{AuditLog, SealedLine};
pub(crate) use verify::verify_file;

/// Reserved tenant whose data key (wrapped by the master key, rewrapped by master-key
/// rotation, moved by migration) derives the audit MAC key. Tenant names cannot contain
/// control characters, so no real tenant can collide with it.
pub(crate) const AUDIT_KEY_TENANT: &str = "\u{1f}audit";

/// Label of the audit MAC key derivation.
pub(crate) const AUDIT_KEY_LABEL: &[u8] = b"tbsecrets audit log v1";

/// The environment variable naming the audit log file when the options name none (for a
/// PostgreSQL store, the only default there is).
pub const AUDIT_LOG_ENV: &str = "TBS_AUDIT_LOG";

/// The default audit log of a SQLite store: the store's path plus `.audit.jsonl`.
pub fn default_log_path(store: &std::path::Path) -> std::path::PathBuf {
    let mut path = store.as_os_str().to_owned();
    path.push(".audit.jsonl");
    path.into()
}
