//! Opening and closing a store, and the operations on secrets and their metadata.

use super::boundary::{
    arg_bytes, arg_str, buffer_from_vec, check_out, guard, handle_ref, json_buffer, opt_str,
    secret_json, store_ref, write_optional,
};
use super::{
    tbs_audit_callback, tbs_buffer, tbs_options, tbs_secret_type, tbs_status, tbs_store,
    TBS_ANY_VERSION, TBS_OPTIONS_VERSION,
};
use crate::access::Actor;
use crate::audit::AuditSink;
use crate::error::{Error, Result};
use crate::service::MaterializeOptions;
use crate::{ListQuery, MasterKey, Policy, SecretStorage, SecretType, StorageOptions};
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

/// The caller's options in the current layout: version 1 structs get the defaults of the
/// newer fields.
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
            })
        }
        // SAFETY: the current layout, readable by the caller's contract.
        TBS_OPTIONS_VERSION => Ok(unsafe { options.read() }),
        other => Err(Error::invalid(format!(
            "options.version is {other}, expected {TBS_OPTIONS_VERSION} (or 1): initialise the options with tbs_options_init"
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
/// names, whose string fields are NULL or NUL-terminated strings.
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
    // SAFETY: forwarded contract.
    if let Some(dir) = unsafe { opt_str(options.materialize_dir, "options.materialize_dir") }? {
        storage.materialize = Some(MaterializeOptions {
            dir: dir.into(),
            keep_on_close: options.keep_materialized,
        });
    }
    // SAFETY: forwarded contract.
    if let Some(policy) = unsafe { opt_str(options.policy_json, "options.policy_json") }? {
        storage.policy = Some(Policy::from_json(policy)?);
    }
    // SAFETY: forwarded contract.
    if let Some(path) = unsafe { opt_str(options.audit_path, "options.audit_path") }? {
        storage.audit.path = Some(path.into());
    }
    storage.audit.enabled = !options.audit_disabled;
    storage.audit.sink = callback_sink(options.audit_callback, options.audit_user_data);
    Ok(storage)
}

/// The secret type for a C number.
pub(crate) fn parse_secret_type(value: tbs_secret_type) -> Result<SecretType> {
    u8::try_from(value)
        .ok()
        .and_then(SecretType::from_u8)
        .ok_or_else(|| {
            Error::invalid(format!(
                "unknown secret type {value}: expected TBS_TYPE_TEXT (0) or TBS_TYPE_TEXT_FILE (1)"
            ))
        })
}

/// Opens (or creates) the SQLite store at `path` and writes its root handle to `*out_store`.
/// The root handle acts as the host program: nothing is checked, everything is audited as
/// `HOST`. Derive handles acting as principals with `tbs_store_session`.
///
/// - `path`: NUL-terminated UTF-8 file path.
/// - `master_key`, `master_key_len`: the 32 raw bytes of the master key; or NULL and 0 to
///   take it from `TBS_MASTER_KEY` (base64) or else `TBS_MASTER_KEY_FILE` (a file of base64
///   text that group and others cannot access). The library keeps its own copy.
/// - `options`: NULL for the defaults, or a struct filled by `tbs_options_init`.
///
/// Fails with `TBS_WRONG_MASTER_KEY` when the key does not open the store (nothing is
/// changed), `TBS_INTEGRITY` when the file is not a store, `TBS_NOT_FOUND` when it is missing
/// and `create_if_missing` is false, `TBS_INVALID_ARGUMENT` for a key that is not 32 bytes,
/// when no key is configured or for an invalid `options.policy_json`, `TBS_STORAGE` when the
/// store or the audit log cannot be created or opened.
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
        check_out(out_store, "out_store")?;
        // SAFETY: the caller's contract for each pointer.
        let path = unsafe { arg_str(path, "path") }?;
        // SAFETY: as above.
        let mut storage_options = unsafe { storage_options(options) }?;
        if !master_key.is_null() || master_key_len != 0 {
            // SAFETY: as above.
            let raw = unsafe { arg_bytes(master_key, master_key_len, "master_key") }?;
            storage_options.master_key = Some(MasterKey::from_bytes(raw)?);
        }
        let storage = SecretStorage::open(path, storage_options)?;
        let handle = Box::into_raw(Box::new(tbs_store {
            storage: Arc::new(storage),
            actor: Actor::Host,
        }));
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { out_store.write(handle) };
        Ok(())
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

/// Creates a secret (version 1) of type `secret_type` (`TBS_TYPE_TEXT` or `TBS_TYPE_TEXT_FILE`)
/// with the value `value[0..value_len)` (NULL only when `value_len` is 0).
///
/// - `tenant`, `name`: NUL-terminated UTF-8 (the rules: docs/ARCHITECTURE.md, "The model").
/// - `description`: NUL-terminated UTF-8, or NULL for none.
/// - `out_version`: receives the new version (1); NULL if not wanted.
///
/// Fails with `TBS_ALREADY_EXISTS` if the name is taken in the tenant, `TBS_INVALID_ARGUMENT`
/// for a broken rule (a TEXT value that is not UTF-8 or is too long, a TEXT_FILE value over
/// `max_file_bytes`...). A `value_len` over `max_file_bytes` (TEXT_FILE) or over 4 bytes per
/// character of `max_text_chars` (TEXT) is refused before a byte of `value` is read.
///
/// Session handles need WRITE in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; other pointers NULL or valid as described.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn tbs_store_create(
    store: *mut tbs_store,
    tenant: *const c_char,
    name: *const c_char,
    secret_type: tbs_secret_type,
    value: *const u8,
    value_len: usize,
    description: *const c_char,
    out_version: *mut u64,
) -> tbs_status {
    guard(|| {
        // SAFETY: the caller's contract for each pointer.
        let storage = unsafe { store_ref(store) }?;
        // SAFETY: as above.
        let tenant = unsafe { arg_str(tenant, "tenant") }?;
        // SAFETY: as above.
        let name = unsafe { arg_str(name, "name") }?;
        let secret_type = parse_secret_type(secret_type)?;
        // SAFETY: as above (a live handle: `store_ref` accepted it).
        let limits = unsafe { handle_ref(store) }?.storage.options().limits;
        crate::model::check_value_len(value_len, &limits, Some(secret_type))?;
        // SAFETY: as above.
        let value = unsafe { arg_bytes(value, value_len, "value") }?;
        // SAFETY: as above.
        let description = unsafe { opt_str(description, "description") }?.unwrap_or("");
        let info = storage.create(tenant, name, secret_type, value, description)?;
        // SAFETY: as above.
        unsafe { write_optional(out_version, info.version) };
        Ok(())
    })
}

/// Writes a new version of a secret's value (`value[0..value_len)`, NULL only when
/// `value_len` is 0). A `value_len` over both `max_file_bytes` and 4 bytes per character of
/// `max_text_chars` is `TBS_INVALID_ARGUMENT` before a byte of `value` is read.
///
/// With `expected_version` other than `TBS_ANY_VERSION` (0), the write happens only if the
/// current version equals it (check-and-set), else `TBS_CONFLICT`. `out_version` receives the
/// new version; NULL if not wanted.
///
/// Session handles need WRITE in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; other pointers NULL or valid as described.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_update_value(
    store: *mut tbs_store,
    tenant: *const c_char,
    name: *const c_char,
    value: *const u8,
    value_len: usize,
    expected_version: u64,
    out_version: *mut u64,
) -> tbs_status {
    guard(|| {
        // SAFETY: the caller's contract for each pointer.
        let storage = unsafe { store_ref(store) }?;
        // SAFETY: as above.
        let tenant = unsafe { arg_str(tenant, "tenant") }?;
        // SAFETY: as above.
        let name = unsafe { arg_str(name, "name") }?;
        // SAFETY: as above (a live handle: `store_ref` accepted it).
        let limits = unsafe { handle_ref(store) }?.storage.options().limits;
        // The secret's type is not known here: the larger bound, the store checks exactly.
        crate::model::check_value_len(value_len, &limits, None)?;
        // SAFETY: as above.
        let value = unsafe { arg_bytes(value, value_len, "value") }?;
        let expected = (expected_version != TBS_ANY_VERSION).then_some(expected_version);
        let info = storage.update_value(tenant, name, value, expected)?;
        // SAFETY: as above.
        unsafe { write_optional(out_version, info.version) };
        Ok(())
    })
}

/// Changes a secret's description (NUL-terminated UTF-8; "" to clear it). No new version.
///
/// Session handles need WRITE in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; other pointers valid NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_update_description(
    store: *mut tbs_store,
    tenant: *const c_char,
    name: *const c_char,
    description: *const c_char,
) -> tbs_status {
    guard(|| {
        // SAFETY: the caller's contract for each pointer.
        let storage = unsafe { store_ref(store) }?;
        // SAFETY: as above.
        let tenant = unsafe { arg_str(tenant, "tenant") }?;
        // SAFETY: as above.
        let name = unsafe { arg_str(name, "name") }?;
        // SAFETY: as above.
        let description = unsafe { arg_str(description, "description") }?;
        storage.update_description(tenant, name, description)?;
        Ok(())
    })
}

/// Deletes a secret with all its versions. Without `force`, fails with `TBS_IN_USE` (the
/// message names the sources) while tracked sources reference it; with `force`, deletes it
/// anyway and the references stay, so `tbs_store_where_used` shows what will break.
///
/// Session handles need DELETE in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; other pointers valid NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_delete(
    store: *mut tbs_store,
    tenant: *const c_char,
    name: *const c_char,
    force: bool,
) -> tbs_status {
    guard(|| {
        // SAFETY: the caller's contract for each pointer.
        let storage = unsafe { store_ref(store) }?;
        // SAFETY: as above.
        let tenant = unsafe { arg_str(tenant, "tenant") }?;
        // SAFETY: as above.
        let name = unsafe { arg_str(name, "name") }?;
        storage.delete_with(tenant, name, force)
    })
}

/// A secret's metadata (never its value) as a JSON object in `*out_json`:
/// `{"tenant","name","type":"TEXT"|"TEXT_FILE","description","version","created_at",
/// "updated_at","value_updated_at","last_used_at" (null if never),"use_count"}`, times in
/// milliseconds since the Unix epoch.
///
/// Session handles need READ in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; strings valid; `out_json` writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_info(
    store: *mut tbs_store,
    tenant: *const c_char,
    name: *const c_char,
    out_json: *mut tbs_buffer,
) -> tbs_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { secret_json(store, tenant, name, out_json, |s, t, n| s.info(t, n)) }
}

/// A page of a tenant's secrets in name order as JSON in `*out_json`:
/// `{"items":[<info objects as tbs_store_info>],"total":N,"has_more":bool}`.
///
/// `name_contains`: NUL-terminated UTF-8 case-sensitive substring filter, or NULL for all.
/// `offset`: entries to skip; `limit`: page size, 0 for all.
///
/// Session handles need READ in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; strings NULL or valid as described; `out_json` writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_list(
    store: *mut tbs_store,
    tenant: *const c_char,
    name_contains: *const c_char,
    offset: usize,
    limit: usize,
    out_json: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        check_out(out_json, "out_json")?;
        // SAFETY: the caller's contract for each pointer.
        let storage = unsafe { store_ref(store) }?;
        // SAFETY: as above.
        let tenant = unsafe { arg_str(tenant, "tenant") }?;
        // SAFETY: as above.
        let filter = unsafe { opt_str(name_contains, "name_contains") }?;
        let query = ListQuery {
            name_contains: filter.map(str::to_owned),
            offset,
            limit,
        };
        let json = json_buffer(&storage.list(tenant, &query)?)?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { out_json.write(json) };
        Ok(())
    })
}

/// The kept versions of a secret, newest first, as JSON in `*out_json`:
/// `[{"version":N,"created_at":ms,"current":bool}, ...]` (never values).
///
/// Session handles need READ in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; strings valid; `out_json` writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_history(
    store: *mut tbs_store,
    tenant: *const c_char,
    name: *const c_char,
    out_json: *mut tbs_buffer,
) -> tbs_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { secret_json(store, tenant, name, out_json, |s, t, n| s.history(t, n)) }
}

/// Writes a new version equal to the kept version `version`; `TBS_NOT_FOUND` if that
/// version is not kept. `out_version` receives the new version; NULL if not wanted.
///
/// Session handles need WRITE in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; strings valid; `out_version` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_rollback(
    store: *mut tbs_store,
    tenant: *const c_char,
    name: *const c_char,
    version: u64,
    out_version: *mut u64,
) -> tbs_status {
    guard(|| {
        // SAFETY: the caller's contract for each pointer.
        let storage = unsafe { store_ref(store) }?;
        // SAFETY: as above.
        let tenant = unsafe { arg_str(tenant, "tenant") }?;
        // SAFETY: as above.
        let name = unsafe { arg_str(name, "name") }?;
        let info = storage.rollback(tenant, name, version)?;
        // SAFETY: as above.
        unsafe { write_optional(out_version, info.version) };
        Ok(())
    })
}

/// Decrypts the current value of a secret into `*out_value` (followed by a NUL byte that is
/// not counted; TEXT_FILE values may contain NUL bytes). Free it with `tbs_buffer_free`,
/// which wipes it. This is the hot path: no database access on a warm handle.
///
/// Session handles need RESOLVE in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; strings valid; `out_value` writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_get(
    store: *mut tbs_store,
    tenant: *const c_char,
    name: *const c_char,
    out_value: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        check_out(out_value, "out_value")?;
        // SAFETY: the caller's contract for each pointer.
        let storage = unsafe { store_ref(store) }?;
        // SAFETY: as above.
        let tenant = unsafe { arg_str(tenant, "tenant") }?;
        // SAFETY: as above.
        let name = unsafe { arg_str(name, "name") }?;
        let buffer = buffer_from_vec(storage.get(tenant, name)?.into_bytes());
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { out_value.write(buffer) };
        Ok(())
    })
}

/// Writes batched usage counters (use count, last use) to the store, and batched use records
/// (`GET`, `RESOLVE`) to the audit log, now; they are otherwise written every few seconds (use
/// records every second), by metadata reads and on close. Any handle of the store may flush.
///
/// # Safety
/// `store` must be a live handle.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_flush_usage(store: *mut tbs_store) -> tbs_status {
    guard(|| {
        // SAFETY: the caller's contract.
        unsafe { handle_ref(store) }?.storage.flush_usage()
    })
}
