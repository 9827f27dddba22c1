//! The C ABI (docs/C-API.md): a thin translation of [`SecretStorage`](crate::SecretStorage)
//! into `extern "C"` functions. `build.rs` turns this module (and only this module) into
//! `include/tbsecrets.h` with cbindgen, so the doc comments here are the header's
//! documentation.
//!
//! Conventions, as in rustls-ffi and libgit2: an opaque `tbs_store *` handle; every operation
//! returns a [`tbs_status`] whose numbers are the stable [`ErrorCode`](crate::ErrorCode)s;
//! results leave only through out-parameters written only on success; owned results are
//! [`tbs_buffer`]s released (and wiped) by [`tbs_buffer_free`]; every entry point checks its
//! pointers and UTF-8 and catches panics; [`tbs_last_error_message`] gives the detail of the
//! last failed call on the calling thread.

#![allow(non_camel_case_types)]

mod args;
mod boundary;
mod buffer;
mod status;
// First: opening and closing a store (the header lists the functions in this order).
mod open;
// After `open`: the host key provider callbacks and their options setter.
mod provider;
mod store;
// After `store`: sessions, key rotation, usage reports and the audit log.
mod access;
// After `store`, so that the header lists the store functions first.
mod resolve;
// After `resolve`: allow-listed sessions and resolving with message variables.
mod scoped;
// After `scoped`: export bundles and manifests.
mod bundle;
// After `bundle`: key providers by spec, the data-key cache.
mod key_provider;

use args::{arg, Out};
use boundary::{guard, guard_or};
use status::status_name;
pub(crate) use status::status_of;
use std::ffi::{c_char, c_int, c_void, CStr};

/// The result of every operation. The numbers are stable and never reused; they are the
/// library's error codes (docs/ARCHITECTURE.md, "Errors").
// Mirrors `ErrorCode` variant for variant on purpose: cbindgen needs a `#[repr(C)]` enum here.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum tbs_status {
    /// Success.
    TBS_OK = 0,
    /// An argument broke a rule (NULL pointer, invalid UTF-8, bad name, value too long...);
    /// the message names the rule.
    TBS_INVALID_ARGUMENT = 1,
    /// The tenant, secret, version or store file does not exist.
    TBS_NOT_FOUND = 2,
    /// A secret with that name already exists in the tenant.
    TBS_ALREADY_EXISTS = 3,
    /// The secret has another type than the one requested.
    TBS_TYPE_MISMATCH = 4,
    /// The handle's principal may not perform the operation (see `tbs_store_session`), or the
    /// operation needs the store's root handle.
    TBS_PERMISSION_DENIED = 5,
    /// The secret is referenced by tracked sources; delete with `force` to delete anyway.
    TBS_IN_USE = 6,
    /// A check-and-set version did not match the current version.
    TBS_CONFLICT = 7,
    /// A `${secret:` placeholder is not well formed.
    TBS_MALFORMED_PLACEHOLDER = 8,
    /// One or more placeholders could not be resolved (missing secret, unusable value).
    TBS_UNRESOLVED = 9,
    /// The master key does not open this store.
    TBS_WRONG_MASTER_KEY = 10,
    /// Stored data failed authentication, or the file is not a store: corrupt or tampered.
    TBS_INTEGRITY = 11,
    /// The storage backend or the file system failed (I/O, locking, SQL).
    TBS_STORAGE = 12,
    /// The store has been closed: a session handle is used after its root handle was closed.
    TBS_CLOSED = 13,
    /// An internal error: a bug, or a panic caught at the boundary.
    TBS_INTERNAL = 14,
    /// The store is older than what its anchor file or audit log has seen (restored from an
    /// older copy, or rolled back); the message names both write counters. Accept a
    /// deliberate restore with `tbsecrets recover --accept-restore`.
    TBS_ROLLBACK_DETECTED = 15,
    /// The key provider holding the master key could not be used (PKCS#11 module or token
    /// missing, wrong PIN, key program failed or timed out, host callback refused). Nothing
    /// was changed.
    TBS_KEY_UNAVAILABLE = 16,
}

/// A secret's type: [`TBS_TYPE_TEXT`] or [`TBS_TYPE_TEXT_FILE`]. A plain integer so that any
/// value a C caller passes is well defined; others are rejected with `TBS_INVALID_ARGUMENT`.
pub type tbs_secret_type = u32;
/// A UTF-8 text (password, token, API key), at most `max_text_chars` characters.
pub const TBS_TYPE_TEXT: tbs_secret_type = 0;
/// Arbitrary bytes such as a PEM file, at most `max_file_bytes` bytes.
pub const TBS_TYPE_TEXT_FILE: tbs_secret_type = 1;

/// A principal's role, for `tbs_store_session`: one of the `TBS_ROLE_*` constants. A plain
/// integer so that any value a C caller passes is well defined; others are rejected with
/// `TBS_INVALID_ARGUMENT`. What each role may do is the store's policy
/// (`tbs_options.policy_json`); the default policy is in docs/ARCHITECTURE.md ("Access
/// control").
pub type tbs_role = u32;
/// The platform's system administrator. Default policy: READ, WRITE and DELETE in any
/// tenant, and master-key rotation; never values.
pub const TBS_ROLE_SYS_ADMIN: tbs_role = 1;
/// A tenant's administrator. Default policy: READ, WRITE and DELETE in its own tenant; never
/// values.
pub const TBS_ROLE_TENANT_ADMIN: tbs_role = 2;
/// A customer's user. Default policy: nothing.
pub const TBS_ROLE_CUSTOMER_USER: tbs_role = 3;
/// The rule engine or an integration. Default policy: READ and RESOLVE (get values, resolve
/// documents) in its own tenant.
pub const TBS_ROLE_SERVICE: tbs_role = 4;

/// How `tbs_store_resolve_file` and `tbs_store_resolve_file_to` read a document.
pub type tbs_format = u32;
/// JSON for a file name ending in `.json`, YAML for `.yaml`/`.yml`, text otherwise.
pub const TBS_FORMAT_AUTO: tbs_format = 0;
/// A JSON document: every string value is resolved, object keys are not.
pub const TBS_FORMAT_JSON: tbs_format = 1;
/// Plain text: every placeholder is resolved.
pub const TBS_FORMAT_TEXT: tbs_format = 2;
/// A YAML document: every scalar value is resolved (quoted by YAML's rules), keys are not.
pub const TBS_FORMAT_YAML: tbs_format = 3;

/// Resolve flag: replace each TEXT_FILE placeholder with the path of a private file (mode
/// 0600, in a directory of mode 0700) holding the value, instead of the value itself. The
/// files are removed by `tbs_store_clear_materialized` and when the store is closed (unless
/// `tbs_options.keep_materialized`).
pub const TBS_RESOLVE_MATERIALIZE_FILES: u32 = 1;

/// Longest document, in bytes, that `tbs_store_resolve_text`, `tbs_store_resolve_json`,
/// `tbs_references` and `tbs_store_track_references` accept (64 MiB): a longer length is
/// `TBS_INVALID_ARGUMENT` before a byte of the document is read.
pub const TBS_MAX_DOCUMENT_BYTES: usize = 67_108_864;
// The header's number is the core's limit (a literal, so that cbindgen writes it out).
const _: () = assert!(TBS_MAX_DOCUMENT_BYTES == crate::placeholder::MAX_DOCUMENT_BYTES);

/// `expected_version` of `tbs_store_update_value` meaning "whatever the current version is"
/// (no check-and-set). Versions start at 1.
pub const TBS_ANY_VERSION: u64 = 0;

/// The `version` that `tbs_options_init` writes into a `tbs_options`.
///
/// Version 2 added the fields from `policy_json` on, version 3 those from `key_provider` on.
/// `tbs_store_open` still accepts a struct of the version 1 layout (ending at
/// `materialize_dir`) or the version 2 layout (ending at `audit_user_data`) whose `version`
/// says so; it gets the defaults for the newer fields. `tbs_options_init` always writes the current layout, so a
/// program compiled against an older header must be recompiled before it calls it.
pub const TBS_OPTIONS_VERSION: u32 = 3;

/// Receives one audit record: `line[0..len)` is a complete JSON object (no newline), and
/// `line[len]` is a NUL byte, so it is also a C string. It never contains a secret value.
/// `user_data` is `tbs_options.audit_user_data`.
///
/// The line is valid only during the call (copy it to keep it). The callback runs on the
/// thread whose call produced the record (any thread that uses the store, including the one
/// that closes it), after the record is in the log file; it must be thread-safe, return
/// quickly, and must not unwind (C++ exceptions, `longjmp`) into the library. It may call the
/// library, but not close the store.
pub type tbs_audit_callback =
    Option<unsafe extern "C" fn(line: *const c_char, len: usize, user_data: *mut c_void)>;

/// Bytes owned by the library: a secret value, a resolved document or JSON metadata.
///
/// `data[len]` is always a NUL byte that is not counted in `len`, so text results can be
/// used as C strings (a secret value may itself contain NUL bytes: use `len`). Release every
/// buffer the library filled with `tbs_buffer_free`, which wipes the bytes before freeing
/// them. Initialise a buffer to `{NULL, 0}`; never build one by hand for the library to free.
#[repr(C)]
#[derive(Debug)]
pub struct tbs_buffer {
    /// The bytes, followed by one NUL byte; NULL in an empty (or freed) buffer.
    pub data: *mut u8,
    /// The number of bytes, not counting the trailing NUL.
    pub len: usize,
}

/// Options of `tbs_store_open`. Fill one with `tbs_options_init`, then change fields; or pass
/// NULL to `tbs_store_open` for the defaults.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tbs_options {
    /// Layout version of this struct: `TBS_OPTIONS_VERSION` (set by `tbs_options_init`).
    pub version: u32,
    /// How many versions of each secret are kept (default 10; 0 counts as 1).
    pub max_versions: u32,
    /// Longest TEXT value, in characters (default 2048).
    pub max_text_chars: usize,
    /// Longest TEXT_FILE value, in bytes (default 524288 = 512 KiB).
    pub max_file_bytes: usize,
    /// How long a writer waits for another process's write lock, in milliseconds
    /// (default 10000).
    pub busy_timeout_ms: u32,
    /// Create the store file (mode 0600) when it does not exist (default true); when false,
    /// opening a missing store fails with `TBS_NOT_FOUND`.
    pub create_if_missing: bool,
    /// Keep materialised files when the store closes (default false). Ignored when
    /// `materialize_dir` is NULL.
    pub keep_materialized: bool,
    /// NUL-terminated UTF-8 directory for materialised TEXT_FILE values, created with mode
    /// 0700 (an existing one must not be accessible by group or others); NULL (the default)
    /// for a fresh private temporary directory. Read only during `tbs_store_open`.
    pub materialize_dir: *const c_char,
    /// The access policy of session handles (`tbs_store_session`) as NUL-terminated UTF-8
    /// JSON, e.g. `{"rules":[{"role":"SERVICE","operations":["READ","RESOLVE"],
    /// "tenants":"own"}]}` (roles `SYS_ADMIN`, `TENANT_ADMIN`, `CUSTOMER_USER`, `SERVICE`;
    /// operations `READ`, `WRITE`, `DELETE`, `RESOLVE`; tenants `own` or `any`; anything not
    /// granted is denied). NULL (the default) for the default policy. Invalid JSON, unknown
    /// roles, operations or fields make `tbs_store_open` fail with `TBS_INVALID_ARGUMENT`.
    /// Read only during `tbs_store_open`. Since version 2.
    pub policy_json: *const c_char,
    /// NUL-terminated UTF-8 path of the audit log file (JSON lines, created mode 0600); NULL
    /// (the default) for the file the environment variable `TBS_AUDIT_LOG` names, else
    /// `<store path>.audit.jsonl` beside a SQLite store (a PostgreSQL store has no other
    /// default). Read only during `tbs_store_open`. Since version 2.
    pub audit_path: *const c_char,
    /// Write no audit log at all, neither to a file nor to `audit_callback` (default false).
    /// Since version 2.
    pub audit_disabled: bool,
    /// Called with every audit record as it is written (default NULL: none), in addition to
    /// the log file. See `tbs_audit_callback`. Since version 2.
    pub audit_callback: tbs_audit_callback,
    /// Passed unchanged to every call of `audit_callback` (default NULL). It must stay valid
    /// until every handle of the store is closed. Since version 2.
    pub audit_user_data: *mut c_void,
    /// The host key provider holding the master key, set by `tbs_options_set_key_provider`
    /// (default NULL: a raw master key). Copied by `tbs_store_open`. Since version 3.
    pub key_provider: *const provider::tbs_key_provider,
    /// Who holds the master key, as a provider spec (NUL-terminated UTF-8, e.g.
    /// `command:/usr/local/bin/kms-hook key-1`; docs/KEY-CUSTODY.md); NULL (the default) for
    /// the environment's `TBS_KEY_PROVIDER`, else the raw key. Exclusive with a `master_key`
    /// passed to `tbs_store_open`. Set it with `tbs_options_set_key_provider_spec`. Read only
    /// during `tbs_store_open`. Since version 3.
    pub key_provider_spec: *const c_char,
    /// How long unwrapped data keys stay in memory, in milliseconds; 0 (the default) for the
    /// handle's lifetime. The first call after it runs out wipes them (an idle handle keeps
    /// them until then) and they are asked of the provider again. Since version 3.
    pub key_cache_ttl_ms: u64,
}

/// A handle of an open secret store, acting on behalf of someone. Opaque: obtained from
/// `tbs_store_open` (the store's *root* handle, which acts as the host program: it holds the
/// master key, so nothing is checked, and its operations are audited as `HOST`) or from
/// `tbs_store_session` (a *session* handle acting as a principal: every operation is checked
/// against the store's policy and audited under that principal). Every `tbs_store_*`
/// function accepts both kinds. Released by `tbs_store_close`.
///
/// A `tbs_store *` may be used by many threads at once. Using it after `tbs_store_close`
/// (including from another thread) is undefined behaviour, like using memory after `free`:
/// close it only once every other thread is done with it. Session handles stay memory-safe
/// when their root handle is closed first: their calls then fail with `TBS_CLOSED`.
pub struct tbs_store {
    /// The store, shared by the root handle and its sessions.
    pub(crate) storage: std::sync::Arc<crate::SecretStorage>,
    /// On whose behalf this handle acts: `Actor::Host` for the root handle.
    pub(crate) actor: crate::access::Actor,
}

impl tbs_store {
    /// The store as this handle's actor sees it (no allocation: the actor is borrowed).
    pub(crate) fn session(&self) -> crate::Session<'_> {
        self.storage.acting(&self.actor)
    }

    /// PERMISSION_DENIED unless this is the store's root handle: a session may not `action`
    /// (derive sessions, clear the whole store's materialised files).
    pub(crate) fn root_only(&self, action: &str) -> crate::Result<()> {
        match &self.actor {
            crate::access::Actor::Host => Ok(()),
            crate::access::Actor::Principal(principal) => Err(crate::Error::new(
                crate::ErrorCode::PermissionDenied,
                format!(
                    "{} of tenant '{}' may not {action}: that needs the store's root handle",
                    principal.role, principal.tenant
                ),
            )),
        }
    }

    /// A secret value argument `ptr[0..len)`, its length checked against the store's limits
    /// for `secret_type` (`None`: not known, the larger bound) before a byte is read.
    ///
    /// # Safety
    /// `ptr` must be NULL (only with `len` 0) or readable for `len` bytes during the call.
    pub(crate) unsafe fn value<'a>(
        &self,
        ptr: *const u8,
        len: usize,
        secret_type: Option<crate::SecretType>,
    ) -> crate::Result<&'a [u8]> {
        crate::model::check_value_len(len, &self.storage.options().limits, secret_type)?;
        // SAFETY: forwarded contract.
        unsafe { args::FromC::from_c((ptr, len), "value") }
    }
}

/// The library version as a NUL-terminated string such as "0.1.0" (static storage; never
/// free it). Equals `TBS_VERSION_MAJOR.TBS_VERSION_MINOR.TBS_VERSION_PATCH` of the header the
/// program was compiled with, unless the program runs with another build of the library.
#[no_mangle]
pub extern "C" fn tbs_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(version) => version,
            Err(_) => c"unknown",
        };
    VERSION.as_ptr()
}

/// The stable name of a status, such as "NOT_FOUND" (static storage; never free it), or
/// "UNKNOWN" for a number that is not a status.
#[no_mangle]
pub extern "C" fn tbs_status_str(status: c_int) -> *const c_char {
    guard_or(c"UNKNOWN".as_ptr(), || status_name(status).as_ptr())
}

/// The message of the last call that failed on the calling thread, as a NUL-terminated
/// string such as "NOT_FOUND: secret 'db' not found in tenant 'default'"; "" if no call has
/// failed on this thread. Messages never contain a secret value.
///
/// The string belongs to the library. It stays valid until the next call on this thread
/// that fails (successful calls leave it alone); copy it to keep it longer.
#[no_mangle]
pub extern "C" fn tbs_last_error_message() -> *const c_char {
    guard_or(c"".as_ptr(), boundary::last_error_ptr)
}

/// Hardens the calling process: no core dumps (`RLIMIT_CORE` 0 and, on Linux,
/// `PR_SET_DUMPABLE` 0). Process-wide and irreversible; call it early in `main` of a program
/// that holds secrets. Key material is in locked memory regardless. See SECURITY.md.
///
/// Fails with `TBS_INTERNAL` only when the operating system refuses.
#[no_mangle]
pub extern "C" fn tbs_harden_process() -> tbs_status {
    guard(crate::hardening::harden_process)
}

/// Fills `*options` with the defaults (see each field) and `version = TBS_OPTIONS_VERSION`.
///
/// Fails with `TBS_INVALID_ARGUMENT` when `options` is NULL.
///
/// # Safety
/// `options` must be NULL or point to writable memory for one `tbs_options`.
#[no_mangle]
pub unsafe extern "C" fn tbs_options_init(options: *mut tbs_options) -> tbs_status {
    guard(|| {
        let options: Out<tbs_options> = arg!(options);
        let defaults = crate::StorageOptions::default();
        let value = tbs_options {
            version: TBS_OPTIONS_VERSION,
            max_versions: defaults.max_versions,
            max_text_chars: defaults.limits.max_text_chars,
            max_file_bytes: defaults.limits.max_file_bytes,
            busy_timeout_ms: u32::try_from(defaults.busy_timeout.as_millis()).unwrap_or(u32::MAX),
            create_if_missing: defaults.create_if_missing,
            keep_materialized: false,
            materialize_dir: std::ptr::null(),
            policy_json: std::ptr::null(),
            audit_path: std::ptr::null(),
            audit_disabled: !defaults.audit.enabled,
            audit_callback: None,
            audit_user_data: std::ptr::null_mut(),
            key_provider: std::ptr::null(),
            key_provider_spec: std::ptr::null(),
            key_cache_ttl_ms: 0,
        };
        options.put(value)
    })
}

/// Wipes (overwrites with zeros) and frees the bytes of a buffer the library filled, then
/// sets it to `{NULL, 0}`, so freeing it twice is harmless. Accepts NULL and `{NULL, 0}`.
///
/// # Safety
/// `buffer` must be NULL or point to a `tbs_buffer` that is `{NULL, 0}` or was filled by
/// this library and not modified since.
#[no_mangle]
pub unsafe extern "C" fn tbs_buffer_free(buffer: *mut tbs_buffer) {
    guard_or((), || {
        if buffer.is_null() {
            return;
        }
        // SAFETY: the caller guarantees `buffer` points to a valid `tbs_buffer`.
        let buffer = unsafe { &mut *buffer };
        // SAFETY: a non-NULL `data` was produced by `buffer::buffer_from` with `len + 1`
        // bytes and not freed since (the caller's contract).
        unsafe { buffer::release(buffer.data, buffer.len) };
        buffer.data = std::ptr::null_mut();
        buffer.len = 0;
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use boundary::record_error;

    #[test]
    fn document_cap_matches_the_placeholder_module() {
        assert_eq!(
            TBS_MAX_DOCUMENT_BYTES,
            crate::placeholder::MAX_DOCUMENT_BYTES
        );
    }

    #[test]
    fn version_matches_the_package() {
        // SAFETY: tbs_version returns a static NUL-terminated string.
        let version = unsafe { CStr::from_ptr(tbs_version()) };
        assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn a_panic_becomes_internal_with_a_message() {
        let status = guard(|| -> crate::Result<()> { panic!("boom in a test") });
        assert_eq!(status, tbs_status::TBS_INTERNAL);
        // SAFETY: the message pointer is valid until the next failing call on this thread.
        let message = unsafe { CStr::from_ptr(tbs_last_error_message()) };
        let message = message.to_str().unwrap();
        assert!(message.starts_with("INTERNAL: "), "{message}");
        assert!(message.contains("boom in a test"), "{message}");
        // Non-status entry points fall back to their default instead of unwinding.
        assert_eq!(guard_or(7, || panic!("again")), 7);
    }

    #[test]
    fn buffers_take_over_roomy_vecs_copy_tight_ones_and_end_with_nul() {
        use zeroize::Zeroizing;
        let mut roomy = Vec::with_capacity(64);
        roomy.extend_from_slice(b"abc");
        let tight = b"xyz".to_vec();
        for (bytes, taken_over) in [(roomy, true), (tight, false)] {
            let start = bytes.as_ptr();
            let mut buffer = buffer::buffer_from_vec(Zeroizing::new(bytes));
            assert_eq!(std::ptr::eq(buffer.data, start), taken_over);
            assert_eq!(buffer.len, 3);
            // SAFETY: a library buffer holds len + 1 readable bytes.
            let text = unsafe { CStr::from_ptr(buffer.data.cast::<c_char>()) };
            assert!(text == c"abc" || text == c"xyz");
            // SAFETY: filled by the library.
            unsafe { tbs_buffer_free(&mut buffer) };
            assert!(buffer.data.is_null() && buffer.len == 0);
            // SAFETY: freeing a freed (reset) buffer is a no-op.
            unsafe { tbs_buffer_free(&mut buffer) };
        }
        let mut empty = buffer::buffer_from(b"");
        assert!(!empty.data.is_null() && empty.len == 0);
        // SAFETY: filled by the library.
        unsafe { tbs_buffer_free(&mut empty) };
    }

    #[test]
    fn last_error_is_per_thread_and_kept_across_successes() {
        record_error(&crate::Error::invalid("on this thread"));
        std::thread::spawn(|| {
            // SAFETY: as above.
            let other = unsafe { CStr::from_ptr(tbs_last_error_message()) };
            assert_eq!(other.to_bytes(), b"");
        })
        .join()
        .unwrap();
        assert_eq!(guard(|| Ok(())), tbs_status::TBS_OK);
        // SAFETY: as above.
        let mine = unsafe { CStr::from_ptr(tbs_last_error_message()) };
        assert_eq!(mine.to_str().unwrap(), "INVALID_ARGUMENT: on this thread");
    }
}
