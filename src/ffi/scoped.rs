//! Sessions restricted to an allow-list of names and resolving per-message names
//! (docs/C-API.md, "Allow-lists and per-message names").

use super::boundary::{
    arg_document, arg_str, buffer_from, buffer_from_vec, check_out, guard, handle_ref, store_ref,
};
use super::{
    tbs_buffer, tbs_format, tbs_status, tbs_store, TBS_FORMAT_JSON, TBS_FORMAT_TEXT,
    TBS_RESOLVE_MATERIALIZE_FILES,
};
use crate::access::{Actor, AllowList};
use crate::error::{Error, ErrorCode, Result};
use crate::placeholder::{VariableSource, Variables};
use crate::service::ResolveOptions;
use std::borrow::Cow;
use std::ffi::c_char;
use zeroize::Zeroizing;

/// Most variables one resolve call takes.
const MAX_VARIABLES: usize = 4096;

/// The `count` strings of the C array `names` (NULL only with `count` 0).
///
/// # Safety
/// `names` must be NULL or point to `count` pointers, each NULL or NUL-terminated.
pub(crate) unsafe fn arg_str_array<'a>(
    names: *const *const c_char,
    count: usize,
    what: &str,
) -> Result<Vec<&'a str>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if names.is_null() {
        return Err(Error::invalid(format!(
            "{what} is NULL but its count is {count}"
        )));
    }
    if count > MAX_VARIABLES.max(crate::access::MAX_ALLOW_LIST_ENTRIES) {
        return Err(Error::invalid(format!(
            "{what} has {count} entries; the limit is {}",
            MAX_VARIABLES.max(crate::access::MAX_ALLOW_LIST_ENTRIES)
        )));
    }
    // SAFETY: `count` readable pointers by the caller's contract.
    let pointers = unsafe { std::slice::from_raw_parts(names, count) };
    pointers
        .iter()
        .enumerate()
        // SAFETY: each pointer NULL or NUL-terminated by the caller's contract.
        .map(|(i, &p)| unsafe { arg_str(p, &format!("{what}[{i}]")) })
        .collect()
}

/// Derives from the session handle `session` a new session handle acting as the same
/// principal, restricted to the allow-list `allowed_names[0..count)`, and writes it to
/// `*out_session` (release it with `tbs_store_close`; `session` stays as it was).
///
/// Each entry is an exact name or a glob pattern (`*`: any run of characters, `?`: one
/// character; case-sensitive, over the whole name) and must be a valid secret name. `count`
/// 0 allows nothing. On top of the policy, any operation of the new handle on a name outside
/// the list fails with `TBS_PERMISSION_DENIED` and is audited as a denial; a resolve
/// referencing such a name fails with `TBS_UNRESOLVED` naming it (problem code
/// `PERMISSION_DENIED`); listing, usage reports, untracking, key rotation and the audit log
/// are refused, so the handle can never enumerate names.
///
/// Fails with `TBS_INVALID_ARGUMENT` for an invalid entry (its index is named), more than
/// 1024 entries, or `allowed_names` NULL with a non-zero `count`; with
/// `TBS_PERMISSION_DENIED` when `session` is the root handle (restrict a session, not the
/// host) or is itself already restricted (a list is never replaced, so never widened).
///
/// # Safety
/// `session` must be a live handle; `allowed_names` NULL or `count` pointers to
/// NUL-terminated strings; `out_session` writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_session_allow_names(
    session: *mut tbs_store,
    allowed_names: *const *const c_char,
    count: usize,
    out_session: *mut *mut tbs_store,
) -> tbs_status {
    guard(|| {
        check_out(out_session, "out_session")?;
        // SAFETY: the caller's contract.
        let handle = unsafe { handle_ref(session) }?;
        // SAFETY: the caller's contract.
        let entries = unsafe { arg_str_array(allowed_names, count, "allowed_names") }?;
        let allowed = AllowList::new(entries)?;
        let principal = match &handle.actor {
            Actor::Host => {
                return Err(Error::new(
                    ErrorCode::PermissionDenied,
                    "the root handle acts as the host and cannot be restricted: derive a session with tbs_store_session first",
                ))
            }
            Actor::Principal(p) if p.allowed_names().is_some() => {
                return Err(Error::new(
                    ErrorCode::PermissionDenied,
                    "this session is already restricted to an allow-list; it cannot be replaced",
                ))
            }
            Actor::Principal(p) => p.clone(),
        };
        let restricted = Box::into_raw(Box::new(tbs_store {
            storage: handle.storage.clone(),
            actor: Actor::Principal(principal.with_allowed_names(allowed)),
        }));
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { out_session.write(restricted) };
        Ok(())
    })
}

/// The message variables of `keys[i]` = `values[i]`: a key `metadata.KEY` or a bare `KEY`
/// fills `{{metadata.KEY}}`, `data.KEY` fills `{{data.KEY}}`.
fn variables(keys: &[&str], values: &[&str]) -> Result<Variables> {
    let mut variables = Variables::new();
    for (i, (key, value)) in keys.iter().zip(values).enumerate() {
        let (source, key) = match key.split_once('.') {
            Some(("metadata", key)) => (VariableSource::Metadata, key),
            Some(("data", key)) => (VariableSource::Data, key),
            _ => (VariableSource::Metadata, *key),
        };
        if key.is_empty() {
            return Err(Error::invalid(format!("variable_keys[{i}] is empty")));
        }
        variables.insert(source, key, *value);
    }
    Ok(variables)
}

/// Resolves the document `doc[0..doc_len)` (`format`: `TBS_FORMAT_JSON` or `TBS_FORMAT_TEXT`)
/// like `tbs_store_resolve_json` / `tbs_store_resolve_text`, filling per-message names
/// (`${secret:device-{{metadata.deviceName}}-token}`) from the `count` message variables
/// `variable_keys[i]` = `variable_values[i]` (NUL-terminated UTF-8; a key `deviceName` or
/// `metadata.deviceName` fills `{{metadata.deviceName}}`, `data.KEY` fills `{{data.KEY}}`).
///
/// Per-message names resolve only through a handle from `tbs_session_allow_names`, and only
/// to names on its allow-list. Strict, like the other resolve calls: a per-message
/// placeholder with a missing variable, a refused value (allowed: 1 to 128 ASCII letters,
/// digits, space and `. _ - @ :`, no `..`, no space first or last), a filled name outside the
/// allow-list, or no allow-list at all fails the call with `TBS_UNRESOLVED`, and the message
/// names every such placeholder as written. Variables the document does not use are not
/// checked. `flags`: 0 or `TBS_RESOLVE_MATERIALIZE_FILES`.
///
/// Fails with `TBS_INVALID_ARGUMENT` for another `format`, a NULL array with a non-zero
/// `count`, more than 4096 variables, or a NULL or empty key.
///
/// # Safety
/// `store` must be a live handle; `doc` NULL (with `doc_len` 0) or `doc_len` readable bytes;
/// `variable_keys` and `variable_values` NULL or `count` pointers to NUL-terminated strings;
/// `tenant` NUL-terminated; `out` writable.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn tbs_store_resolve_vars(
    store: *mut tbs_store,
    tenant: *const c_char,
    format: tbs_format,
    doc: *const u8,
    doc_len: usize,
    flags: u32,
    variable_keys: *const *const c_char,
    variable_values: *const *const c_char,
    count: usize,
    out: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        check_out(out, "out")?;
        // SAFETY: the caller's contract for each pointer.
        let session = unsafe { store_ref(store) }?;
        // SAFETY: as above.
        let tenant = unsafe { arg_str(tenant, "tenant") }?;
        let json = match format {
            TBS_FORMAT_JSON => true,
            TBS_FORMAT_TEXT => false,
            other => {
                return Err(Error::invalid(format!(
                    "format {other}: expected TBS_FORMAT_JSON (1) or TBS_FORMAT_TEXT (2)"
                )))
            }
        };
        if flags & !TBS_RESOLVE_MATERIALIZE_FILES != 0 {
            return Err(Error::invalid(format!(
                "unknown resolve flags {:#x}: only TBS_RESOLVE_MATERIALIZE_FILES (1) is defined",
                flags & !TBS_RESOLVE_MATERIALIZE_FILES
            )));
        }
        // SAFETY: as above.
        let doc = unsafe { arg_document(doc, doc_len, "doc") }?;
        // SAFETY: as above.
        let keys = unsafe { arg_str_array(variable_keys, count, "variable_keys") }?;
        // SAFETY: as above.
        let values = unsafe { arg_str_array(variable_values, count, "variable_values") }?;
        let variables = variables(&keys, &values)?;
        let options = ResolveOptions {
            materialize_files: flags & TBS_RESOLVE_MATERIALIZE_FILES != 0,
            variables: Some(&variables),
        };
        let resolved = if json {
            session.resolve_json(tenant, doc, options)?
        } else {
            session.resolve_str(tenant, doc, options)?
        };
        let buffer = match resolved {
            Cow::Borrowed(text) => buffer_from(text.as_bytes()),
            Cow::Owned(text) => buffer_from_vec(Zeroizing::new(text.into_bytes())),
        };
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { out.write(buffer) };
        Ok(())
    })
}
