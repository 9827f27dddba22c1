//! Sessions restricted to an allow-list of names (docs/C-API.md, "Allow-lists").

use super::boundary::{arg_str, check_out, guard, handle_ref};
use super::{tbs_status, tbs_store};
use crate::access::{Actor, AllowList};
use crate::error::{Error, ErrorCode, Result};
use std::ffi::c_char;

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
    if count > crate::access::MAX_ALLOW_LIST_ENTRIES {
        return Err(Error::invalid(format!(
            "{what} has {count} entries; the limit is {}",
            crate::access::MAX_ALLOW_LIST_ENTRIES
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
