//! The operations on secrets and their metadata.

use super::args::{arg, OptOut, Out};
use super::boundary::{guard, secret_json};
use super::buffer::buffer_from_vec;
use super::{tbs_buffer, tbs_secret_type, tbs_status, tbs_store, TBS_ANY_VERSION};
use crate::{ListQuery, Session};
use std::ffi::c_char;

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
        let out_version: OptOut<u64> = arg!(out_version);
        let h: &tbs_store = arg!(store);
        let (tenant, name, secret_type) = (arg!(tenant), arg!(name), arg!(secret_type));
        // SAFETY: the caller's contract.
        let value = unsafe { h.value(value, value_len, Some(secret_type)) }?;
        let description: Option<&str> = arg!(description);
        let description = description.unwrap_or("");
        let info = h
            .session()
            .create(tenant, name, secret_type, value, description)?;
        out_version.put(info.version)
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
        let expected = (expected_version != TBS_ANY_VERSION).then_some(expected_version);
        let out_version: OptOut<u64> = arg!(out_version);
        let h: &tbs_store = arg!(store);
        let (tenant, name) = (arg!(tenant), arg!(name));
        // The secret's type is not known here: the larger bound; the store checks exactly.
        // SAFETY: the caller's contract.
        let value = unsafe { h.value(value, value_len, None) }?;
        let info = h.session().update_value(tenant, name, value, expected)?;
        out_version.put(info.version)
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
        let s: Session = arg!(store);
        s.update_description(arg!(tenant), arg!(name), arg!(description))?;
        Ok(())
    })
}

/// Deletes a secret with all its versions: it is no longer resolvable nor listed, and stays
/// recoverable with `tbs_store_undelete` for the store's retention (30 days by default; see
/// `tbs_store_destroy` to erase it at once). Without `force`, fails with `TBS_IN_USE` (the
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
        let s: Session = arg!(store);
        s.delete_with(arg!(tenant), arg!(name), force)
    })
}

/// Makes a deleted secret live again, with its versions. `TBS_NOT_FOUND` when no deleted
/// secret has that name; `TBS_INTEGRITY` when its row was moved in or out of the deleted
/// state in the database.
///
/// Session handles need DELETE in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; other pointers valid NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_undelete(
    store: *mut tbs_store,
    tenant: *const c_char,
    name: *const c_char,
) -> tbs_status {
    guard(|| {
        let s: Session = arg!(store);
        s.undelete(arg!(tenant), arg!(name))
    })
}

/// Erases a secret, live or deleted, and all its versions for good (the stored ciphertexts
/// are overwritten; see SECURITY.md). `TBS_NOT_FOUND` when there is no such secret;
/// `TBS_IN_USE` for a live secret tracked sources reference (delete it with `force` first).
///
/// Session handles need DELETE in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; other pointers valid NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_destroy(
    store: *mut tbs_store,
    tenant: *const c_char,
    name: *const c_char,
) -> tbs_status {
    guard(|| {
        let s: Session = arg!(store);
        s.destroy(arg!(tenant), arg!(name))
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
/// `{"items":[<info objects as tbs_store_info>],"total":N,"has_more":bool,"next_after":NAME}`
/// (`next_after`: the cursor for [`tbs_store_list_after`], `null` on the last page). Deleted
/// secrets are not listed (see `tbs_store_list_deleted`).
///
/// `name_contains`: NUL-terminated UTF-8 case-sensitive substring filter, or NULL for all.
/// `offset`: entries to skip; `limit`: page size, 0 for all. Skipping costs time in proportion
/// to `offset`; page through a large tenant with [`tbs_store_list_after`] instead.
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
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        list_page(
            store,
            tenant,
            name_contains,
            std::ptr::null(),
            page(offset, limit, false),
            out_json,
        )
    }
}

/// Like `tbs_store_list`, of the tenant's deleted secrets still recoverable with
/// `tbs_store_undelete`; each object also has `"deleted_at"` (milliseconds since the epoch).
///
/// Session handles need READ in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// As `tbs_store_list`.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_list_deleted(
    store: *mut tbs_store,
    tenant: *const c_char,
    name_contains: *const c_char,
    offset: usize,
    limit: usize,
    out_json: *mut tbs_buffer,
) -> tbs_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        list_page(
            store,
            tenant,
            name_contains,
            std::ptr::null(),
            page(offset, limit, true),
            out_json,
        )
    }
}

/// The page of a tenant's secrets after the name `after` (keyset paging), as JSON in
/// `*out_json` like [`tbs_store_list`]. Start with `after` NULL, then pass the previous page's
/// `next_after` until it is `null`: every page costs the same however far into the tenant it
/// is, and secrets created or deleted between pages neither repeat nor hide the others.
///
/// `name_contains`: NUL-terminated UTF-8 case-sensitive substring filter, or NULL for all.
/// `after`: NUL-terminated UTF-8 name (names after it in byte order), or NULL for the first
/// page; `limit`: page size, 0 for all.
///
/// Session handles need READ in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; strings NULL or valid as described; `out_json` writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_list_after(
    store: *mut tbs_store,
    tenant: *const c_char,
    name_contains: *const c_char,
    after: *const c_char,
    limit: usize,
    out_json: *mut tbs_buffer,
) -> tbs_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        list_page(
            store,
            tenant,
            name_contains,
            after,
            page(0, limit, false),
            out_json,
        )
    }
}

/// The offset, limit and deleted flag of a listing (`list_page` adds the filter and cursor).
fn page(offset: usize, limit: usize, deleted: bool) -> ListQuery {
    ListQuery {
        offset,
        limit,
        deleted,
        ..ListQuery::default()
    }
}

/// The one body of `tbs_store_list`, `tbs_store_list_deleted` and `tbs_store_list_after`.
///
/// # Safety
/// As [`tbs_store_list_after`].
unsafe fn list_page(
    store: *mut tbs_store,
    tenant: *const c_char,
    name_contains: *const c_char,
    after: *const c_char,
    page: ListQuery,
    out_json: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        let out_json: Out<tbs_buffer> = arg!(out_json);
        let s: Session = arg!(store);
        let tenant = arg!(tenant);
        let name_contains: Option<&str> = arg!(name_contains);
        let after: Option<&str> = arg!(after);
        let query = ListQuery {
            name_contains: name_contains.map(str::to_owned),
            after: after.map(str::to_owned),
            ..page
        };
        out_json.json(&s.list(tenant, &query)?)
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
        let out_version: OptOut<u64> = arg!(out_version);
        let s: Session = arg!(store);
        let info = s.rollback(arg!(tenant), arg!(name), version)?;
        out_version.put(info.version)
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
        let out_value: Out<tbs_buffer> = arg!(out_value);
        let s: Session = arg!(store);
        out_value.put(buffer_from_vec(
            s.get(arg!(tenant), arg!(name))?.into_bytes(),
        ))
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
        let handle: &tbs_store = arg!(store);
        handle.storage.flush_usage()
    })
}
