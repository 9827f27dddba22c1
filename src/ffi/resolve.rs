//! Placeholder resolution, TEXT_FILE materialisation and the reference index.

use super::args::{arg, FromC, OptOut, Out};
use super::boundary::{guard, secret_json};
use super::buffer::{buffer_from, buffer_from_vec};
use super::{tbs_buffer, tbs_format, tbs_status, tbs_store};
use crate::{SecretStorage, Session};
use std::borrow::Cow;
use std::ffi::c_char;
use std::path::Path;
use zeroize::Zeroizing;

/// A buffer holding a resolved document (an owned result is handed over, not copied).
fn resolved_buffer(resolved: Cow<'_, str>) -> tbs_buffer {
    match resolved {
        Cow::Borrowed(text) => buffer_from(text.as_bytes()),
        Cow::Owned(text) => buffer_from_vec(Zeroizing::new(text.into_bytes())),
    }
}

/// Shared body of the two in-memory resolve calls: `document` is the byte range of the text
/// or JSON, `what` its parameter name.
///
/// # Safety
/// As the public functions.
unsafe fn resolve_in_memory(
    store: *mut tbs_store,
    tenant: *const c_char,
    document: (*const u8, usize),
    flags: u32,
    out: *mut tbs_buffer,
    what: &'static str,
    json: bool,
) -> tbs_status {
    guard(|| {
        let out: Out<tbs_buffer> = arg!(out);
        let s: Session = arg!(store);
        let tenant = arg!(tenant);
        // SAFETY: the caller's contract.
        let text = unsafe { FromC::from_c(document, what) }?;
        let resolved = if json {
            s.resolve_json(tenant, text, arg!(flags))?
        } else {
            s.resolve_str(tenant, text, arg!(flags))?
        };
        out.put(resolved_buffer(resolved))
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
    unsafe { resolve_in_memory(store, tenant, (text, text_len), flags, out, "text", false) }
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
    unsafe { resolve_in_memory(store, tenant, (json, json_len), flags, out, "json", true) }
}

/// Reads the UTF-8 file `path` (NUL-terminated) and resolves it as JSON, YAML or text
/// (`TBS_FORMAT_AUTO`: JSON for a `.json` name, YAML for `.yaml`/`.yml`) into `*out`. A file that cannot be read is
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
        let out: Out<tbs_buffer> = arg!(out);
        let s: Session = arg!(store);
        let (tenant, path): (&str, &str) = (arg!(tenant), arg!(path));
        let resolved = s.resolve_file(tenant, Path::new(path), arg!(format), arg!(flags))?;
        out.put(buffer_from_vec(Zeroizing::new(resolved.into_bytes())))
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
        let s: Session = arg!(store);
        let (tenant, path, out_path): (&str, &str, &str) =
            (arg!(tenant), arg!(path), arg!(out_path));
        let (path, out_path) = (Path::new(path), Path::new(out_path));
        s.resolve_file_to(tenant, path, out_path, arg!(format), arg!(flags))
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
        let handle: &tbs_store = arg!(store);
        handle.root_only("clear materialised files")?;
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
        let out_json: Out<tbs_buffer> = arg!(out_json);
        out_json.json(&SecretStorage::references(arg!(document, document_len))?)
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
        let out_json: OptOut<tbs_buffer> = arg!(out_json);
        let s: Session = arg!(store);
        let (tenant, source_id) = (arg!(tenant), arg!(source_id));
        out_json.json(&s.track_references(tenant, source_id, arg!(document, document_len))?)
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
        let out_removed: OptOut<usize> = arg!(out_removed);
        let s: Session = arg!(store);
        out_removed.put(s.untrack(arg!(tenant), arg!(source_id))?)
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
