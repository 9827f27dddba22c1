//! Opening and closing a store, and the operations on secrets and their metadata.

use super::boundary::{
    arg_bytes, arg_str, buffer_from_vec, check_out, guard, json_buffer, opt_str, store_ref,
    write_optional,
};
use super::{
    tbs_buffer, tbs_options, tbs_secret_type, tbs_status, tbs_store, TBS_ANY_VERSION,
    TBS_OPTIONS_VERSION,
};
use crate::error::{Error, Result};
use crate::service::MaterializeOptions;
use crate::{ListQuery, MasterKey, SecretStorage, SecretType, StorageOptions};
use std::ffi::c_char;
use std::time::Duration;

/// The `StorageOptions` described by a C options struct (NULL: the defaults).
///
/// # Safety
/// `options` must be NULL or point to a readable `tbs_options` whose `materialize_dir` is NULL
/// or a NUL-terminated string.
unsafe fn storage_options(options: *const tbs_options) -> Result<StorageOptions> {
    let mut storage = StorageOptions::default();
    // SAFETY: NULL or readable by the caller's contract.
    let Some(options) = (unsafe { options.as_ref() }) else {
        return Ok(storage);
    };
    if options.version != TBS_OPTIONS_VERSION {
        return Err(Error::invalid(format!(
            "options.version is {}, expected {TBS_OPTIONS_VERSION}: initialise the options with tbs_options_init",
            options.version
        )));
    }
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

/// Opens (or creates) the SQLite store at `path` and writes the handle to `*out_store`.
///
/// - `path`: NUL-terminated UTF-8 file path.
/// - `master_key`, `master_key_len`: the 32 raw bytes of the master key; or NULL and 0 to
///   take it from `TBS_MASTER_KEY` (base64) or else `TBS_MASTER_KEY_FILE` (a file of base64
///   text that group and others cannot access). The library keeps its own copy.
/// - `options`: NULL for the defaults, or a struct filled by `tbs_options_init`.
///
/// Fails with `TBS_WRONG_MASTER_KEY` when the key does not open the store (nothing is
/// changed), `TBS_INTEGRITY` when the file is not a store, `TBS_NOT_FOUND` when it is missing
/// and `create_if_missing` is false, `TBS_INVALID_ARGUMENT` for a key that is not 32 bytes or
/// when no key is configured, `TBS_STORAGE` when the file cannot be created or opened.
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
        let handle = Box::into_raw(Box::new(tbs_store { storage }));
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { out_store.write(handle) };
        Ok(())
    })
}

/// Closes a store: writes pending usage counters, removes materialised files (unless kept)
/// and frees the handle. The handle is freed even when the status is not `TBS_OK` (a failure
/// to write usage counters or to remove a file is reported, nothing else is lost). NULL is
/// accepted and returns `TBS_OK`.
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
        // SAFETY: a live handle from `tbs_store_open`, given back by the caller.
        let handle = unsafe { Box::from_raw(store) };
        let closed = handle.storage.close();
        drop(handle);
        closed
    })
}

/// Creates a secret (version 1) of type `secret_type` (`TBS_TYPE_TEXT` or `TBS_TYPE_TEXT_FILE`)
/// with the value `value[0..value_len)` (NULL only when `value_len` is 0).
///
/// - `tenant`, `name`: NUL-terminated UTF-8 (see README.md for the rules).
/// - `description`: NUL-terminated UTF-8, or NULL for none.
/// - `out_version`: receives the new version (1); NULL if not wanted.
///
/// Fails with `TBS_ALREADY_EXISTS` if the name is taken in the tenant, `TBS_INVALID_ARGUMENT`
/// for a broken rule (a TEXT value that is not UTF-8 or is too long, a TEXT_FILE value over
/// `max_file_bytes`...).
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
        // SAFETY: as above.
        let value = unsafe { arg_bytes(value, value_len, "value") }?;
        // SAFETY: as above.
        let description = unsafe { opt_str(description, "description") }?.unwrap_or("");
        let info = storage.create(
            tenant,
            name,
            parse_secret_type(secret_type)?,
            value,
            description,
        )?;
        // SAFETY: as above.
        unsafe { write_optional(out_version, info.version) };
        Ok(())
    })
}

/// Writes a new version of a secret's value (`value[0..value_len)`, NULL only when
/// `value_len` is 0).
///
/// With `expected_version` other than `TBS_ANY_VERSION` (0), the write happens only if the
/// current version equals it (check-and-set), else `TBS_CONFLICT`. `out_version` receives the
/// new version; NULL if not wanted.
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
/// # Safety
/// `store` must be a live handle; strings valid; `out_json` writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_info(
    store: *mut tbs_store,
    tenant: *const c_char,
    name: *const c_char,
    out_json: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        check_out(out_json, "out_json")?;
        // SAFETY: the caller's contract for each pointer.
        let storage = unsafe { store_ref(store) }?;
        // SAFETY: as above.
        let tenant = unsafe { arg_str(tenant, "tenant") }?;
        // SAFETY: as above.
        let name = unsafe { arg_str(name, "name") }?;
        let json = json_buffer(&storage.info(tenant, name)?)?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { out_json.write(json) };
        Ok(())
    })
}

/// A page of a tenant's secrets in name order as JSON in `*out_json`:
/// `{"items":[<info objects as tbs_store_info>],"total":N,"has_more":bool}`.
///
/// `name_contains`: NUL-terminated UTF-8 case-sensitive substring filter, or NULL for all.
/// `offset`: entries to skip; `limit`: page size, 0 for all.
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
/// # Safety
/// `store` must be a live handle; strings valid; `out_json` writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_history(
    store: *mut tbs_store,
    tenant: *const c_char,
    name: *const c_char,
    out_json: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        check_out(out_json, "out_json")?;
        // SAFETY: the caller's contract for each pointer.
        let storage = unsafe { store_ref(store) }?;
        // SAFETY: as above.
        let tenant = unsafe { arg_str(tenant, "tenant") }?;
        // SAFETY: as above.
        let name = unsafe { arg_str(name, "name") }?;
        let json = json_buffer(&storage.history(tenant, name)?)?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { out_json.write(json) };
        Ok(())
    })
}

/// Writes a new version equal to the kept version `version`; `TBS_NOT_FOUND` if that
/// version is not kept. `out_version` receives the new version; NULL if not wanted.
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
        let buffer = buffer_from_vec(storage.get_value(tenant, name)?.into_bytes());
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { out_value.write(buffer) };
        Ok(())
    })
}

/// Writes batched usage counters (use count, last use) to the store now; they are otherwise
/// written every few seconds, by metadata reads and on close.
///
/// # Safety
/// `store` must be a live handle.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_flush_usage(store: *mut tbs_store) -> tbs_status {
    guard(|| {
        // SAFETY: the caller's contract.
        unsafe { store_ref(store) }?.flush_usage()
    })
}
