//! Opening and closing a store: the options struct (both layouts), the audit callback, the
//! handles.

use super::args::{arg, FromC, Out};
use super::boundary::guard;
use super::provider::key_provider_from_c;
use super::{tbs_audit_callback, tbs_options, tbs_status, tbs_store, TBS_OPTIONS_VERSION};
use crate::access::Actor;
use crate::audit::AuditSink;
use crate::error::{Error, Result};
use crate::service::MaterializeOptions;
use crate::{MasterKey, Policy, SecretStorage, StorageOptions};
use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

/// The layout of `tbs_options` version 1 (before the access and audit fields), still accepted
/// by `tbs_store_open`. Not exported: it only describes what old callers pass.
#[repr(C)]
#[derive(Clone, Copy)]
struct OptionsV1 {
    version: u32,
    max_versions: u32,
    max_text_chars: usize,
    max_file_bytes: usize,
    busy_timeout_ms: u32,
    create_if_missing: bool,
    keep_materialized: bool,
    materialize_dir: *const c_char,
}

/// The layout of `tbs_options` version 2 (before `key_provider`), still accepted by
/// `tbs_store_open`. Not exported: it only describes what old callers pass.
#[repr(C)]
#[derive(Clone, Copy)]
struct OptionsV2 {
    version: u32,
    max_versions: u32,
    max_text_chars: usize,
    max_file_bytes: usize,
    busy_timeout_ms: u32,
    create_if_missing: bool,
    keep_materialized: bool,
    materialize_dir: *const c_char,
    policy_json: *const c_char,
    audit_path: *const c_char,
    audit_disabled: bool,
    audit_callback: tbs_audit_callback,
    audit_user_data: *mut c_void,
}

/// The caller's options in the current layout: version 1 and 2 structs get the defaults of
/// the newer fields.
///
/// # Safety
/// `options` must point to a readable options struct of the layout its `version` names.
unsafe fn current_options(options: *const tbs_options) -> Result<tbs_options> {
    // SAFETY: every layout starts with `version: u32`; readable by the caller's contract.
    let version = unsafe { options.cast::<u32>().read() };
    match version {
        1 => {
            // SAFETY: a version 1 struct is readable as that layout.
            let v1 = unsafe { options.cast::<OptionsV1>().read() };
            Ok(tbs_options {
                version: 1,
                max_versions: v1.max_versions,
                max_text_chars: v1.max_text_chars,
                max_file_bytes: v1.max_file_bytes,
                busy_timeout_ms: v1.busy_timeout_ms,
                create_if_missing: v1.create_if_missing,
                keep_materialized: v1.keep_materialized,
                materialize_dir: v1.materialize_dir,
                policy_json: std::ptr::null(),
                audit_path: std::ptr::null(),
                audit_disabled: false,
                audit_callback: None,
                audit_user_data: std::ptr::null_mut(),
                key_provider: std::ptr::null(),
                key_provider_spec: std::ptr::null(),
                key_cache_ttl_ms: 0,
            })
        }
        2 => {
            // SAFETY: a version 2 struct is readable as that layout.
            let v2 = unsafe { options.cast::<OptionsV2>().read() };
            Ok(tbs_options {
                version: 2,
                max_versions: v2.max_versions,
                max_text_chars: v2.max_text_chars,
                max_file_bytes: v2.max_file_bytes,
                busy_timeout_ms: v2.busy_timeout_ms,
                create_if_missing: v2.create_if_missing,
                keep_materialized: v2.keep_materialized,
                materialize_dir: v2.materialize_dir,
                policy_json: v2.policy_json,
                audit_path: v2.audit_path,
                audit_disabled: v2.audit_disabled,
                audit_callback: v2.audit_callback,
                audit_user_data: v2.audit_user_data,
                key_provider: std::ptr::null(),
                key_provider_spec: std::ptr::null(),
                key_cache_ttl_ms: 0,
            })
        }
        // SAFETY: the current layout, readable by the caller's contract.
        TBS_OPTIONS_VERSION => Ok(unsafe { options.read() }),
        other => Err(Error::invalid(format!(
            "options.version is {other}, expected {TBS_OPTIONS_VERSION} (or 1 or 2): initialise the options with tbs_options_init"
        ))),
    }
}

/// Hands audit records to a C callback.
struct CallbackSink {
    callback: unsafe extern "C" fn(*const c_char, usize, *mut c_void),
    user_data: *mut c_void,
}

// SAFETY: `tbs_options.audit_callback` is documented to be callable from any thread with
// `audit_user_data`; the library never dereferences `user_data` itself.
unsafe impl Send for CallbackSink {}
// SAFETY: as above.
unsafe impl Sync for CallbackSink {}

impl AuditSink for CallbackSink {
    fn record(&self, line: &str) {
        // NUL-terminated for C; audit lines are JSON, so they hold no NUL of their own.
        let mut text = Vec::with_capacity(line.len() + 1);
        text.extend_from_slice(line.as_bytes());
        text.push(0);
        // SAFETY: the callback's contract (tbs_audit_callback): `text` holds `line.len()`
        // bytes and a NUL, valid for the duration of the call.
        unsafe { (self.callback)(text.as_ptr().cast(), line.len(), self.user_data) };
    }
}

/// The audit sink for a C callback (NULL: none).
fn callback_sink(
    callback: tbs_audit_callback,
    user_data: *mut c_void,
) -> Option<Arc<dyn AuditSink>> {
    callback.map(|callback| {
        Arc::new(CallbackSink {
            callback,
            user_data,
        }) as Arc<dyn AuditSink>
    })
}

/// The `StorageOptions` described by a C options struct (NULL: the defaults).
///
/// # Safety
/// `options` must be NULL or point to a readable options struct of the layout its `version`
/// names, whose string fields are NULL or NUL-terminated strings and whose key provider is
/// NULL or readable.
unsafe fn storage_options(options: *const tbs_options) -> Result<StorageOptions> {
    let mut storage = StorageOptions::default();
    if options.is_null() {
        return Ok(storage);
    }
    // SAFETY: non-NULL and readable by the caller's contract.
    let options = unsafe { current_options(options) }?;
    storage.limits.max_text_chars = options.max_text_chars;
    storage.limits.max_file_bytes = options.max_file_bytes;
    storage.max_versions = options.max_versions;
    storage.create_if_missing = options.create_if_missing;
    storage.busy_timeout = Duration::from_millis(u64::from(options.busy_timeout_ms));
    // SAFETY (the three strings): forwarded contract.
    if let Some(dir) = unsafe { opt_str(options.materialize_dir, "options.materialize_dir") }? {
        storage.materialize = Some(MaterializeOptions {
            dir: dir.into(),
            keep_on_close: options.keep_materialized,
        });
    }
    if let Some(policy) = unsafe { opt_str(options.policy_json, "options.policy_json") }? {
        storage.policy = Some(Policy::from_json(policy)?);
    }
    if let Some(path) = unsafe { opt_str(options.audit_path, "options.audit_path") }? {
        storage.audit.path = Some(path.into());
    }
    storage.audit.enabled = !options.audit_disabled;
    storage.audit.sink = callback_sink(options.audit_callback, options.audit_user_data);
    // SAFETY: forwarded contract.
    unsafe { super::key_provider::apply(&options, &mut storage) }?;
    if !options.key_provider.is_null() {
        // SAFETY: set by `tbs_options_set_key_provider`, readable until `tbs_store_open`
        // returns by its contract.
        let provider =
            unsafe { key_provider_from_c(options.key_provider, "options.key_provider") }?;
        if storage.key_provider.is_some() {
            return Err(Error::invalid(
                "both options.key_provider and options.key_provider_spec are set: pass one",
            ));
        }
        storage.key_provider = Some(provider);
    }
    Ok(storage)
}

/// An optional string field of the options struct.
///
/// # Safety
/// `ptr` must be NULL or a NUL-terminated string.
unsafe fn opt_str<'a>(ptr: *const c_char, what: &'static str) -> Result<Option<&'a str>> {
    // SAFETY: forwarded contract.
    unsafe { FromC::from_c(ptr, what) }
}

/// Boxes a new handle for C.
pub(crate) fn new_handle(storage: Arc<SecretStorage>, actor: Actor) -> *mut tbs_store {
    Box::into_raw(Box::new(tbs_store { storage, actor }))
}

/// Opens (or creates) the SQLite store at `path` and writes its root handle to `*out_store`.
/// The root handle acts as the host program: nothing is checked, everything is audited as
/// `HOST`. Derive handles acting as principals with `tbs_store_session`.
///
/// - `path`: NUL-terminated UTF-8 file path.
/// - `master_key`, `master_key_len`: the 32 raw bytes of the master key; or NULL and 0 to
///   take it from `TBS_MASTER_KEY` (base64) or else `TBS_MASTER_KEY_FILE` (a file of base64
///   text that group and others cannot access), unless `options` names a key provider
///   (`tbs_options_set_key_provider`). The library keeps its own copy.
/// - `options`: NULL for the defaults, or a struct filled by `tbs_options_init`.
///
/// Fails with `TBS_WRONG_MASTER_KEY` when the key does not open the store (nothing is
/// changed), `TBS_INTEGRITY` when the file is not a store, `TBS_NOT_FOUND` when it is missing
/// and `create_if_missing` is false, `TBS_INVALID_ARGUMENT` for a key that is not 32 bytes,
/// when no key is configured, when both a key and `options.key_provider` are, or for an
/// invalid `options.policy_json`, `TBS_KEY_UNAVAILABLE` when the key provider's callback
/// refuses, `TBS_STORAGE` when the store or the audit log cannot be created or opened.
///
/// # Safety
/// Pointers must be NULL or valid as described; `out_store` must be writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_open(
    path: *const c_char,
    master_key: *const u8,
    master_key_len: usize,
    options: *const tbs_options,
    out_store: *mut *mut tbs_store,
) -> tbs_status {
    guard(|| {
        let out_store: Out<*mut tbs_store> = arg!(out_store);
        let path: &str = arg!(path);
        // SAFETY: the caller's contract.
        let mut storage_options = unsafe { storage_options(options) }?;
        if !master_key.is_null() || master_key_len != 0 {
            storage_options.master_key =
                Some(MasterKey::from_bytes(arg!(master_key, master_key_len))?);
        }
        let storage = SecretStorage::open(path, storage_options)?;
        out_store.put(new_handle(Arc::new(storage), Actor::Host))
    })
}

/// Frees a handle. NULL is accepted and returns `TBS_OK`.
///
/// Closing the root handle (from `tbs_store_open`) closes the store: it writes pending usage
/// counters and audit records, removes materialised files (unless kept) and frees the handle;
/// the store's session handles then fail with `TBS_CLOSED` until they are closed too. The
/// handle is freed even when the status is not `TBS_OK` (a failure to write usage counters or
/// to remove a file is reported, nothing else is lost).
///
/// Closing a session handle (from `tbs_store_session`) frees only that handle (`TBS_OK`); the
/// store stays open.
///
/// # Safety
/// `store` must be NULL or a live handle that no other thread is using or will use: using a
/// handle after closing it is undefined behaviour, like using memory after `free`.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_close(store: *mut tbs_store) -> tbs_status {
    guard(|| {
        if store.is_null() {
            return Ok(());
        }
        // SAFETY: a live handle from `tbs_store_open` or `tbs_store_session`, given back by
        // the caller.
        let handle = unsafe { Box::from_raw(store) };
        let closed = match handle.actor {
            Actor::Host => handle.storage.close(),
            Actor::Principal(_) => Ok(()),
        };
        drop(handle);
        closed
    })
}
