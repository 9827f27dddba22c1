//! The panic and error policy of every entry point, written once: catch panics, record the
//! last error of the thread, return the status. (Arguments are decoded by `args.rs`, owned
//! results built by `buffer.rs`.)

use super::args::{arg, Out};
use super::{status_of, tbs_buffer, tbs_status, tbs_store};
use crate::error::{Error, Result};
use crate::Session;
use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    /// The message of the last failed call on this thread.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Runs the body of an entry point: `Ok` is `TBS_OK`; an error is recorded as the thread's
/// last error and returned as its status; a panic is caught and becomes `TBS_INTERNAL`.
///
/// `AssertUnwindSafe`: the service holds no invariant that a panic half-way could break in a
/// way that makes later calls unsound (its locks do not poison; at worst a cache entry or a
/// usage count is stale), so the handle stays usable after `TBS_INTERNAL`.
pub(crate) fn guard<F>(body: F) -> tbs_status
where
    F: FnOnce() -> Result<()>,
{
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => tbs_status::TBS_OK,
        Ok(Err(err)) => {
            record_error(&err);
            status_of(err.code())
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("unknown cause");
            record_error(&Error::internal(format!(
                "a panic was caught at the C boundary: {what}"
            )));
            tbs_status::TBS_INTERNAL
        }
    }
}

/// Runs an entry point that returns no status; a panic yields `fallback`.
pub(crate) fn guard_or<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

/// Records `err` as the calling thread's last error. Never panics (a NUL in the message
/// becomes `\0`; during thread teardown the message is dropped).
pub(crate) fn record_error(err: &Error) {
    let text = err.to_string().replace('\0', "\\0");
    let message = CString::new(text).unwrap_or_default();
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = message;
        }
    });
}

/// The calling thread's last error message ("" if none).
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR
        .try_with(|slot| slot.try_borrow().map(|m| m.as_ptr()).ok())
        .ok()
        .flatten()
        .unwrap_or(c"".as_ptr())
}

/// The shape of the metadata reads of one secret: decodes the arguments, runs `read` on the
/// handle's session with (`tenant`, `name`) and writes its result as JSON to `*out_json`.
///
/// # Safety
/// As the entry points that call it: `store` a live handle, `tenant` and `name` NULL or
/// NUL-terminated, `out_json` NULL or writable.
pub(crate) unsafe fn secret_json<T: serde::Serialize>(
    store: *mut tbs_store,
    tenant: *const c_char,
    name: *const c_char,
    out_json: *mut tbs_buffer,
    read: impl FnOnce(&Session<'_>, &str, &str) -> Result<T>,
) -> tbs_status {
    guard(|| {
        let out_json: Out<tbs_buffer> = arg!(out_json);
        let s: Session = arg!(store);
        out_json.json(&read(&s, arg!(tenant), arg!(name))?)
    })
}
