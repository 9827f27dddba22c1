//! Typed errors with stable numeric codes (docs/ARCHITECTURE.md, "Errors").
//!
//! Every surface (Rust, C, Java, CLI) reports the same [`ErrorCode`]. Messages name tenants,
//! secrets, placeholders and byte offsets, never a secret value.

use std::fmt;

/// Stable error codes shared by every surface. Numbers are never reused.
// `ffi::tbs_status` repeats these variants on purpose: cbindgen writes the C enum from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ErrorCode {
    /// Success (only meaningful on the C and JNI surfaces).
    Ok = 0,
    /// An argument broke a validation rule; the message names the rule.
    InvalidArgument = 1,
    /// The tenant, secret or version does not exist.
    NotFound = 2,
    /// A secret with that name already exists in the tenant.
    AlreadyExists = 3,
    /// The secret exists but has another type than the one requested.
    TypeMismatch = 4,
    /// The principal may not perform the operation.
    PermissionDenied = 5,
    /// The secret is referenced by sources and cannot be deleted without force.
    InUse = 6,
    /// A check-and-set version did not match the current version.
    Conflict = 7,
    /// A `${secret:` placeholder is not well formed.
    MalformedPlaceholder = 8,
    /// One or more placeholders could not be resolved.
    Unresolved = 9,
    /// The master key does not open this store.
    WrongMasterKey = 10,
    /// Stored data failed authentication: corrupt or tampered.
    Integrity = 11,
    /// The storage backend failed (I/O, locking, SQL).
    Storage = 12,
    /// The store handle has been closed.
    Closed = 13,
    /// An internal error (a bug, or a caught panic).
    Internal = 14,
    /// The store is older than what its anchor file or audit log has seen: it was restored
    /// from an older copy or rolled back. The message names both write counters; a deliberate
    /// restore is accepted only explicitly (`tbsecrets recover --accept-restore`).
    RollbackDetected = 15,
    /// The key provider holding the master key could not be used: a PKCS#11 module or token
    /// missing, a wrong PIN, a key that cannot wrap, a key program that failed or timed out,
    /// a host callback that refused. Nothing was changed; retry once the provider is back.
    KeyUnavailable = 16,
}

impl ErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::Ok,
        ErrorCode::InvalidArgument,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::TypeMismatch,
        ErrorCode::PermissionDenied,
        ErrorCode::InUse,
        ErrorCode::Conflict,
        ErrorCode::MalformedPlaceholder,
        ErrorCode::Unresolved,
        ErrorCode::WrongMasterKey,
        ErrorCode::Integrity,
        ErrorCode::Storage,
        ErrorCode::Closed,
        ErrorCode::Internal,
        ErrorCode::RollbackDetected,
        ErrorCode::KeyUnavailable,
    ];

    /// The stable upper-case name, e.g. `NOT_FOUND`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Ok => "OK",
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::AlreadyExists => "ALREADY_EXISTS",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::InUse => "IN_USE",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::MalformedPlaceholder => "MALFORMED_PLACEHOLDER",
            ErrorCode::Unresolved => "UNRESOLVED",
            ErrorCode::WrongMasterKey => "WRONG_MASTER_KEY",
            ErrorCode::Integrity => "INTEGRITY",
            ErrorCode::Storage => "STORAGE",
            ErrorCode::Closed => "CLOSED",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::RollbackDetected => "ROLLBACK_DETECTED",
            ErrorCode::KeyUnavailable => "KEY_UNAVAILABLE",
        }
    }

    /// The numeric code (the table in docs/ARCHITECTURE.md, "Errors").
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The code for a number, if it is one.
    pub fn from_i32(value: i32) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_i32() == value)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// At most this many placeholder problems are spelled out in an error's message (an
/// adversarial document can hold a million); [`Error::problems`] lists every one.
pub const MAX_PROBLEMS_IN_MESSAGE: usize = 100;

/// One placeholder that could not be resolved: what was wrong, which name, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceholderProblem {
    /// Why it failed: `NotFound` (no such secret), `TypeMismatch`, `MalformedPlaceholder`, or
    /// `Unresolved` (the secret exists but cannot be substituted, e.g. non-UTF-8 TEXT_FILE), or
    /// `PermissionDenied` (the name is outside the session's allow-list).
    pub code: ErrorCode,
    /// The secret name as written (may be empty or partial when malformed).
    pub name: String,
    /// Byte offset of the `${secret:` in the input (for JSON: in the input document).
    pub offset: usize,
    /// A short explanation without any secret value.
    pub reason: String,
}

impl fmt::Display for PlaceholderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} '{}' at byte {}: {}",
            self.code, self.name, self.offset, self.reason
        )
    }
}

/// The error type of every fallible operation in this crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    message: String,
    problems: Vec<PlaceholderProblem>,
}

impl Error {
    /// A new error with a code and a message (which must not contain a secret value).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            problems: Vec::new(),
        }
    }

    /// An error listing every placeholder that failed to resolve.
    pub fn placeholders(code: ErrorCode, problems: Vec<PlaceholderProblem>) -> Self {
        use std::fmt::Write;
        let mut message = format!("{} placeholder(s) could not be resolved: ", problems.len());
        for (i, problem) in problems.iter().take(MAX_PROBLEMS_IN_MESSAGE).enumerate() {
            if i > 0 {
                message.push_str("; ");
            }
            let _ = write!(message, "{problem}");
        }
        if problems.len() > MAX_PROBLEMS_IN_MESSAGE {
            let _ = write!(
                message,
                "; and {} more (every one is in the error's problem list)",
                problems.len() - MAX_PROBLEMS_IN_MESSAGE
            );
        }
        Error {
            code,
            message,
            problems,
        }
    }

    /// The stable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message, without the code prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The offending placeholders, for UNRESOLVED / MALFORMED_PLACEHOLDER / TYPE_MISMATCH errors.
    pub fn problems(&self) -> &[PlaceholderProblem] {
        &self.problems
    }

    /// The same error with its message prefixed by `context` and `: ` (e.g. a file name).
    pub fn prefixed_by(mut self, context: &str) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// Shorthand for an INVALID_ARGUMENT error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::InvalidArgument, message)
    }

    /// Shorthand for a NOT_FOUND error about a secret.
    pub fn secret_not_found(tenant: &str, name: &str) -> Self {
        Error::new(
            ErrorCode::NotFound,
            format!("secret '{name}' not found in tenant '{tenant}'"),
        )
    }

    /// Shorthand for a STORAGE error.
    pub fn storage(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Storage, message)
    }

    /// Shorthand for an INTEGRITY error.
    pub fn integrity(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Integrity, message)
    }

    /// Shorthand for an INTERNAL error.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Internal, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        // SQL errors never carry bound parameter values, so no secret can leak here.
        use rusqlite::ErrorCode as Sql;
        if let rusqlite::Error::FromSqlConversionFailure(column, ..) = &err {
            return Error::integrity(format!(
                "stored metadata is malformed (column {column}): corrupt or tampered store"
            ));
        }
        match err.sqlite_error_code() {
            Some(Sql::NotADatabase) | Some(Sql::DatabaseCorrupt) => {
                Error::integrity(format!("the store file is corrupt or not a store: {err}"))
            }
            _ => Error::storage(format!("sqlite: {err}")),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::storage(format!("i/o: {err}"))
    }
}

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_round_trip() {
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(code.as_i32(), i as i32);
            assert_eq!(ErrorCode::from_i32(i as i32), Some(*code));
        }
        assert_eq!(ErrorCode::from_i32(17), None);
        assert_eq!(ErrorCode::Closed.as_str(), "CLOSED");
    }

    #[test]
    fn placeholder_error_names_every_problem() {
        let err = Error::placeholders(
            ErrorCode::Unresolved,
            vec![
                PlaceholderProblem {
                    code: ErrorCode::NotFound,
                    name: "a".into(),
                    offset: 3,
                    reason: "no such secret".into(),
                },
                PlaceholderProblem {
                    code: ErrorCode::TypeMismatch,
                    name: "b".into(),
                    offset: 40,
                    reason: "expected TEXT".into(),
                },
            ],
        );
        let text = err.to_string();
        assert!(text.starts_with("UNRESOLVED: 2 placeholder(s)"), "{text}");
        assert!(text.contains("'a' at byte 3") && text.contains("'b' at byte 40"));
    }

    #[test]
    fn a_huge_problem_list_is_spelled_out_in_part_and_kept_whole() {
        let problems: Vec<PlaceholderProblem> = (0..1000)
            .map(|i| PlaceholderProblem {
                code: ErrorCode::NotFound,
                name: format!("s{i}"),
                offset: i,
                reason: "no such secret".into(),
            })
            .collect();
        let err = Error::placeholders(ErrorCode::Unresolved, problems);
        assert_eq!(err.problems().len(), 1000);
        let text = err.message();
        assert!(text.starts_with("1000 placeholder(s)"), "{text}");
        assert!(text.contains("'s99' at byte 99"), "{text}");
        assert!(!text.contains("'s100' at byte"), "{text}");
        assert!(text.ends_with("and 900 more (every one is in the error's problem list)"));
    }
}
