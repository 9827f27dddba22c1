//! The part of the C ABI (`include/tbsecrets.h`) that the Rust tests and benches call, declared
//! here as C declares it. The library's `ffi` module is crate-private: Rust callers reach the
//! exported `#[no_mangle]` `tbs_*` symbols exactly as a C program does, through these
//! `extern "C"` declarations, and never the crate's own Rust types.
//!
//! Keep every declaration identical to the header; `tests/c_abi.rs`
//! (`rust_declarations_match_the_header`) reads this file and checks the constants, the status
//! numbers, `tbs_buffer` and every function's return and parameter types against
//! `include/tbsecrets.h`. Add a function to the `extern "C"` block when a test needs it,
//! spelling its types with the Rust names this file uses.

#![allow(non_camel_case_types, dead_code)]

use std::ffi::{c_char, c_int};
use std::fmt;

// The symbols come from the tbsecrets library this test is linked with.
use tbsecrets as _;

/// `enum tbs_status`: a C `int`. A transparent wrapper rather than a Rust enum, so a number
/// this copy does not know is an ordinary value (shown by its number) instead of undefined
/// behaviour.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct tbs_status(pub c_int);

/// The status names, indexed by their number (`enum tbs_status` in the header).
pub const STATUS_NAMES: [&str; 17] = [
    "TBS_OK",
    "TBS_INVALID_ARGUMENT",
    "TBS_NOT_FOUND",
    "TBS_ALREADY_EXISTS",
    "TBS_TYPE_MISMATCH",
    "TBS_PERMISSION_DENIED",
    "TBS_IN_USE",
    "TBS_CONFLICT",
    "TBS_MALFORMED_PLACEHOLDER",
    "TBS_UNRESOLVED",
    "TBS_WRONG_MASTER_KEY",
    "TBS_INTEGRITY",
    "TBS_STORAGE",
    "TBS_CLOSED",
    "TBS_INTERNAL",
    "TBS_ROLLBACK_DETECTED",
    "TBS_KEY_UNAVAILABLE",
];

impl tbs_status {
    /// Success.
    pub const TBS_OK: tbs_status = tbs_status(0);
    /// An argument broke a rule.
    pub const TBS_INVALID_ARGUMENT: tbs_status = tbs_status(1);
    /// The tenant, secret, version or store file does not exist.
    pub const TBS_NOT_FOUND: tbs_status = tbs_status(2);
    /// The secret has another type than the one requested.
    pub const TBS_TYPE_MISMATCH: tbs_status = tbs_status(4);
    /// A placeholder could not be resolved.
    pub const TBS_UNRESOLVED: tbs_status = tbs_status(9);
}

impl fmt::Debug for tbs_status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match usize::try_from(self.0)
            .ok()
            .and_then(|i| STATUS_NAMES.get(i))
        {
            Some(name) => f.write_str(name),
            None => write!(f, "tbs_status({})", self.0),
        }
    }
}

/// `tbs_store`: an opaque handle, only ever used behind a pointer.
#[repr(C)]
pub struct tbs_store {
    _opaque: [u8; 0],
}

/// `struct tbs_options`: the tests pass NULL (the defaults), so its fields are not declared.
#[repr(C)]
pub struct tbs_options {
    _opaque: [u8; 0],
}

/// `struct tbs_buffer`: an owned result, released with `tbs_buffer_free`.
#[repr(C)]
#[derive(Debug)]
pub struct tbs_buffer {
    /// The bytes, followed by one NUL byte; NULL in an empty (or freed) buffer.
    pub data: *mut u8,
    /// The number of bytes, not counting the trailing NUL.
    pub len: usize,
}

impl tbs_buffer {
    /// `{NULL, 0}`, the buffer every out-parameter starts as.
    pub fn empty() -> tbs_buffer {
        tbs_buffer {
            data: std::ptr::null_mut(),
            len: 0,
        }
    }
}

/// `tbs_secret_type`.
pub type tbs_secret_type = u32;
/// `tbs_format`.
pub type tbs_format = u32;

/// A UTF-8 text secret.
pub const TBS_TYPE_TEXT: tbs_secret_type = 0;
/// A file secret (certificate, key...).
pub const TBS_TYPE_TEXT_FILE: tbs_secret_type = 1;
/// By file name: JSON for `.json`, YAML for `.yaml`/`.yml`, else text.
pub const TBS_FORMAT_AUTO: tbs_format = 0;
/// A JSON document.
pub const TBS_FORMAT_JSON: tbs_format = 1;
/// Plain text.
pub const TBS_FORMAT_TEXT: tbs_format = 2;
/// A YAML document.
pub const TBS_FORMAT_YAML: tbs_format = 3;
/// Resolve flag: TEXT_FILE placeholders become paths of private files.
pub const TBS_RESOLVE_MATERIALIZE_FILES: u32 = 1;

/// The `(name, value)` of every constant above, for the check against the header.
pub const CONSTANTS: [(&str, u32); 7] = [
    ("TBS_TYPE_TEXT", TBS_TYPE_TEXT),
    ("TBS_TYPE_TEXT_FILE", TBS_TYPE_TEXT_FILE),
    ("TBS_FORMAT_AUTO", TBS_FORMAT_AUTO),
    ("TBS_FORMAT_JSON", TBS_FORMAT_JSON),
    ("TBS_FORMAT_TEXT", TBS_FORMAT_TEXT),
    ("TBS_FORMAT_YAML", TBS_FORMAT_YAML),
    (
        "TBS_RESOLVE_MATERIALIZE_FILES",
        TBS_RESOLVE_MATERIALIZE_FILES,
    ),
];

extern "C" {
    /// Disables core dumps of the process.
    pub fn tbs_harden_process() -> tbs_status;
    /// Wipes and frees a buffer the library filled; NULL and `{NULL, 0}` are accepted.
    pub fn tbs_buffer_free(buffer: *mut tbs_buffer);
    /// Opens (or creates) a SQLite store.
    pub fn tbs_store_open(
        path: *const c_char,
        master_key: *const u8,
        master_key_len: usize,
        options: *const tbs_options,
        out_store: *mut *mut tbs_store,
    ) -> tbs_status;
    /// Frees a handle; closing the root handle closes the store.
    pub fn tbs_store_close(store: *mut tbs_store) -> tbs_status;
    /// Creates a secret (version 1).
    pub fn tbs_store_create(
        store: *mut tbs_store,
        tenant: *const c_char,
        name: *const c_char,
        secret_type: tbs_secret_type,
        value: *const u8,
        value_len: usize,
        description: *const c_char,
        out_version: *mut u64,
    ) -> tbs_status;
    /// Writes a new version of a secret's value.
    pub fn tbs_store_update_value(
        store: *mut tbs_store,
        tenant: *const c_char,
        name: *const c_char,
        value: *const u8,
        value_len: usize,
        expected_version: u64,
        out_version: *mut u64,
    ) -> tbs_status;
    /// Makes an older version's value current again (as a new version).
    pub fn tbs_store_rollback(
        store: *mut tbs_store,
        tenant: *const c_char,
        name: *const c_char,
        version: u64,
        out_version: *mut u64,
    ) -> tbs_status;
    /// Decrypts the current value of a secret.
    pub fn tbs_store_get(
        store: *mut tbs_store,
        tenant: *const c_char,
        name: *const c_char,
        out_value: *mut tbs_buffer,
    ) -> tbs_status;
    /// Resolves the placeholders of a text.
    pub fn tbs_store_resolve_text(
        store: *mut tbs_store,
        tenant: *const c_char,
        text: *const u8,
        text_len: usize,
        flags: u32,
        out: *mut tbs_buffer,
    ) -> tbs_status;
    /// Resolves the string values of a JSON document.
    pub fn tbs_store_resolve_json(
        store: *mut tbs_store,
        tenant: *const c_char,
        json: *const u8,
        json_len: usize,
        flags: u32,
        out: *mut tbs_buffer,
    ) -> tbs_status;
    /// Reads and resolves a file.
    pub fn tbs_store_resolve_file(
        store: *mut tbs_store,
        tenant: *const c_char,
        path: *const c_char,
        format: tbs_format,
        flags: u32,
        out: *mut tbs_buffer,
    ) -> tbs_status;
    /// Resolves a file into another file, atomically.
    pub fn tbs_store_resolve_file_to(
        store: *mut tbs_store,
        tenant: *const c_char,
        path: *const c_char,
        out_path: *const c_char,
        format: tbs_format,
        flags: u32,
    ) -> tbs_status;
    /// Removes the TEXT_FILE files materialised so far.
    pub fn tbs_store_clear_materialized(store: *mut tbs_store) -> tbs_status;
    /// The detail of the last failed call on this thread (NUL-terminated, never NULL).
    pub fn tbs_last_error_message() -> *const c_char;
}
