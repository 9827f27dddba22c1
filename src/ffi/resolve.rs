//! Placeholder resolution, TEXT_FILE materialisation and the reference index.

use super::boundary::{
    arg_document, arg_str, buffer_from, buffer_from_vec, check_out, guard, handle_ref, json_buffer,
    secret_json, store_ref, write_optional,
};
use super::{
    tbs_buffer, tbs_format, tbs_status, tbs_store, TBS_FORMAT_AUTO, TBS_FORMAT_JSON,
    TBS_FORMAT_TEXT, TBS_RESOLVE_MATERIALIZE_FILES,
};
use crate::access::Actor;
use crate::error::{Error, ErrorCode, Result};
use crate::service::{DocumentFormat, ResolveOptions};
use crate::SecretStorage;
use std::borrow::Cow;
use std::ffi::c_char;
use std::path::Path;
use zeroize::Zeroizing;

/// The resolve options for C flags; unknown bits are an error.
fn resolve_options(flags: u32) -> Result<ResolveOptions<'static>> {
    if flags & !TBS_RESOLVE_MATERIALIZE_FILES != 0 {
        return Err(Error::invalid(format!(
            "unknown resolve flags {:#x}: only TBS_RESOLVE_MATERIALIZE_FILES (1) is defined",
            flags & !TBS_RESOLVE_MATERIALIZE_FILES
        )));
    }
    Ok(ResolveOptions {
        materialize_files: flags & TBS_RESOLVE_MATERIALIZE_FILES != 0,
        ..ResolveOptions::default()
    })
}

/// The document format for a C number.
fn document_format(format: tbs_format) -> Result<DocumentFormat> {
    match format {
        TBS_FORMAT_AUTO => Ok(DocumentFormat::Auto),
        TBS_FORMAT_JSON => Ok(DocumentFormat::Json),
        TBS_FORMAT_TEXT => Ok(DocumentFormat::Text),
        other => Err(Error::invalid(format!(
            "unknown format {other}: expected TBS_FORMAT_AUTO (0), TBS_FORMAT_JSON (1) or TBS_FORMAT_TEXT (2)"
        ))),
    }
}

/// A buffer holding a resolved document (an owned result is handed over, not copied).
fn resolved_buffer(resolved: Cow<'_, str>) -> tbs_buffer {
    match resolved {
        Cow::Borrowed(text) => buffer_from(text.as_bytes()),
        Cow::Owned(text) => buffer_from_vec(Zeroizing::new(text.into_bytes())),
    }
}

/// Shared body of the two in-memory resolve calls.
///
/// # Safety
/// As the public functions.
#[allow(clippy::too_many_arguments)]
unsafe fn resolve_in_memory(
    store: *mut tbs_store,
    tenant: *const c_char,
    text: *const u8,
    text_len: usize,
    flags: u32,
    out: *mut tbs_buffer,
    what: &str,
    json: bool,
) -> tbs_status {
    guard(|| {
        check_out(out, "out")?;
        // SAFETY: the caller's contract for each pointer.
        let storage = unsafe { store_ref(store) }?;
        // SAFETY: as above.
        let tenant = unsafe { arg_str(tenant, "tenant") }?;
        // SAFETY: as above.
        let text = unsafe { arg_document(text, text_len, what) }?;
        let options = resolve_options(flags)?;
        let resolved = if json {
            storage.resolve_json(tenant, text, options)?
        } else {
            storage.resolve_str(tenant, text, options)?
        };
        let buffer = resolved_buffer(resolved);
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { out.write(buffer) };
        Ok(())
    })
}

/// Resolves every `${secret:NAME}` / `${secret:NAME;type:TYPE}` placeholder in the UTF-8
/// text `text[0..text_len)` (NULL only when `text_len` is 0) into `*out`; `$${secret:` stays
/// as the literal `${secret:`.
///
/// Strict: a missing secret (`TBS_UNRESOLVED`), a type mismatch (`TBS_TYPE_MISMATCH` when
/// that is the only problem) or a malformed placeholder (`TBS_MALFORMED_PLACEHOLDER`) fails
/// the whole call, and the message names every offending placeholder with its byte offset
/// (never a value). `flags`: 0 or `TBS_RESOLVE_MATERIALIZE_FILES`. A `text_len` over
/// `TBS_MAX_DOCUMENT_BYTES` is `TBS_INVALID_ARGUMENT` before a byte of `text` is read
/// (likewise for `tbs_store_resolve_json`, `tbs_references` and `tbs_store_track_references`).
///
/// Session handles need RESOLVE in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; other pointers NULL or valid as described.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_resolve_text(
    store: *mut tbs_store,
    tenant: *const c_char,
    text: *const u8,
    text_len: usize,
    flags: u32,
    out: *mut tbs_buffer,
) -> tbs_status {
    // SAFETY: forwarded contract.
    unsafe { resolve_in_memory(store, tenant, text, text_len, flags, out, "text", false) }
}

/// Resolves every string value, at any depth, of the JSON document `json[0..json_len)` into
/// `*out` (object keys are not resolved; everything else is kept byte for byte; substituted
/// values are escaped, so PEM newlines and quotes stay valid JSON). Fails with
/// `TBS_INVALID_ARGUMENT` if the document is not valid JSON; otherwise as
/// `tbs_store_resolve_text`.
///
/// Session handles need RESOLVE in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; other pointers NULL or valid as described.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_resolve_json(
    store: *mut tbs_store,
    tenant: *const c_char,
    json: *const u8,
    json_len: usize,
    flags: u32,
    out: *mut tbs_buffer,
) -> tbs_status {
    // SAFETY: forwarded contract.
    unsafe { resolve_in_memory(store, tenant, json, json_len, flags, out, "json", true) }
}

/// Reads the UTF-8 file `path` (NUL-terminated) and resolves it as JSON or text
/// (`TBS_FORMAT_AUTO`: JSON for a `.json` name) into `*out`. A file that cannot be read is
/// `TBS_INVALID_ARGUMENT`; otherwise as `tbs_store_resolve_json` / `tbs_store_resolve_text`.
///
/// Session handles need RESOLVE in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; strings valid; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_resolve_file(
    store: *mut tbs_store,
    tenant: *const c_char,
    path: *const c_char,
    format: tbs_format,
    flags: u32,
    out: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        check_out(out, "out")?;
        // SAFETY: the caller's contract for each pointer.
        let storage = unsafe { store_ref(store) }?;
        // SAFETY: as above.
        let tenant = unsafe { arg_str(tenant, "tenant") }?;
        // SAFETY: as above.
        let path = unsafe { arg_str(path, "path") }?;
        let resolved = storage.resolve_file(
            tenant,
            Path::new(path),
            document_format(format)?,
            resolve_options(flags)?,
        )?;
        let buffer = buffer_from_vec(Zeroizing::new(resolved.into_bytes()));
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { out.write(buffer) };
        Ok(())
    })
}

/// Resolves the file `path` like `tbs_store_resolve_file` and writes the result to
/// `out_path` atomically with mode 0600: a temporary file beside it is written, synced and
/// renamed over it, so readers never see a partial file and nothing is written on failure.
/// A file that cannot be written is `TBS_STORAGE`.
///
/// Session handles need RESOLVE in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; strings valid NUL-terminated UTF-8.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_resolve_file_to(
    store: *mut tbs_store,
    tenant: *const c_char,
    path: *const c_char,
    out_path: *const c_char,
    format: tbs_format,
    flags: u32,
) -> tbs_status {
    guard(|| {
        // SAFETY: the caller's contract for each pointer.
        let storage = unsafe { store_ref(store) }?;
        // SAFETY: as above.
        let tenant = unsafe { arg_str(tenant, "tenant") }?;
        // SAFETY: as above.
        let path = unsafe { arg_str(path, "path") }?;
        // SAFETY: as above.
        let out_path = unsafe { arg_str(out_path, "out_path") }?;
        storage.resolve_file_to(
            tenant,
            Path::new(path),
            Path::new(out_path),
            document_format(format)?,
            resolve_options(flags)?,
        )
    })
}

/// Removes the TEXT_FILE files materialised so far through the store's handles (paths handed
/// out earlier stop working). Closing the root handle does the same unless
/// `keep_materialized`. Needs the root handle (the files belong to the whole store):
/// `TBS_PERMISSION_DENIED` for a session handle.
///
/// # Safety
/// `store` must be a live handle.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_clear_materialized(store: *mut tbs_store) -> tbs_status {
    guard(|| {
        // SAFETY: the caller's contract.
        let handle = unsafe { handle_ref(store) }?;
        if let Actor::Principal(principal) = &handle.actor {
            return Err(Error::new(
                ErrorCode::PermissionDenied,
                format!(
                    "{} of tenant '{}' may not clear materialised files: that needs the store's root handle",
                    principal.role, principal.tenant
                ),
            ));
        }
        handle.storage.clear_materialized()
    })
}

/// The distinct secrets the UTF-8 document `document[0..document_len)` (JSON or text)
/// references, in order of first appearance, as JSON in `*out_json`:
/// `[{"name":"...","type":"TEXT"|"TEXT_FILE"|null}, ...]` (`null`: the placeholder names no
/// type). Needs no store. Fails with `TBS_MALFORMED_PLACEHOLDER` naming every malformed
/// placeholder.
///
/// # Safety
/// `document` NULL (only with length 0) or readable for `document_len` bytes; `out_json`
/// writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_references(
    document: *const u8,
    document_len: usize,
    out_json: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        check_out(out_json, "out_json")?;
        // SAFETY: the caller's contract.
        let document = unsafe { arg_document(document, document_len, "document") }?;
        let json = json_buffer(&SecretStorage::references(document)?)?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { out_json.write(json) };
        Ok(())
    })
}

/// Records exactly which secrets the source `source_id` (a rule node, an integration, a
/// config file: NUL-terminated UTF-8, 1–255 bytes) uses, from its document
/// `document[0..document_len)`, replacing that source's previous set. While a secret is
/// referenced, `tbs_store_delete` without force fails with `TBS_IN_USE`.
///
/// `out_json`: receives the references recorded, as `tbs_references` gives them; NULL if not
/// wanted.
///
/// Session handles need WRITE in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; other pointers NULL or valid as described.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_track_references(
    store: *mut tbs_store,
    tenant: *const c_char,
    source_id: *const c_char,
    document: *const u8,
    document_len: usize,
    out_json: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        // SAFETY: the caller's contract for each pointer.
        let storage = unsafe { store_ref(store) }?;
        // SAFETY: as above.
        let tenant = unsafe { arg_str(tenant, "tenant") }?;
        // SAFETY: as above.
        let source_id = unsafe { arg_str(source_id, "source_id") }?;
        // SAFETY: as above.
        let document = unsafe { arg_document(document, document_len, "document") }?;
        let references = storage.track_references(tenant, source_id, document)?;
        if !out_json.is_null() {
            let json = json_buffer(&references)?;
            // SAFETY: as above.
            unsafe { write_optional(out_json, json) };
        }
        Ok(())
    })
}

/// Forgets every reference of the source `source_id`. `out_removed` receives how many were
/// removed (0 for an unknown source); NULL if not wanted.
///
/// Session handles need WRITE in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; strings valid; `out_removed` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_untrack(
    store: *mut tbs_store,
    tenant: *const c_char,
    source_id: *const c_char,
    out_removed: *mut usize,
) -> tbs_status {
    guard(|| {
        // SAFETY: the caller's contract for each pointer.
        let storage = unsafe { store_ref(store) }?;
        // SAFETY: as above.
        let tenant = unsafe { arg_str(tenant, "tenant") }?;
        // SAFETY: as above.
        let source_id = unsafe { arg_str(source_id, "source_id") }?;
        let removed = storage.untrack(tenant, source_id)?;
        // SAFETY: as above.
        unsafe { write_optional(out_removed, removed) };
        Ok(())
    })
}

/// The tracked sources that reference a secret (exact, from the index), as JSON in
/// `*out_json`: `[{"source_id":"...","name":"...","type":"TEXT"|"TEXT_FILE"|null}, ...]`.
/// The secret need not exist (after a forced delete its references remain).
///
/// Session handles need READ in `tenant`, else `TBS_PERMISSION_DENIED`.
///
/// # Safety
/// `store` must be a live handle; strings valid; `out_json` writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_where_used(
    store: *mut tbs_store,
    tenant: *const c_char,
    name: *const c_char,
    out_json: *mut tbs_buffer,
) -> tbs_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { secret_json(store, tenant, name, out_json, |s, t, n| s.where_used(t, n)) }
}
