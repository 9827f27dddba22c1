//! What every entry point does at the boundary: catch panics, record the last error of the
//! thread, check pointers and UTF-8, and hand out owned buffers.

use super::{status_of, tbs_buffer, tbs_status, tbs_store};
use crate::error::{Error, ErrorCode, Result};
use crate::placeholder::MAX_DOCUMENT_BYTES;
use crate::Session;
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use zeroize::{Zeroize, Zeroizing};

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

/// An INVALID_ARGUMENT error about a NULL pointer.
fn null(what: &str) -> Error {
    Error::new(ErrorCode::InvalidArgument, format!("{what} is NULL"))
}

/// Checks that a required out-parameter is not NULL.
pub(crate) fn check_out<T>(out: *mut T, what: &str) -> Result<()> {
    if out.is_null() {
        return Err(null(what));
    }
    Ok(())
}

/// Writes `value` to an optional out-parameter (NULL: not wanted).
///
/// # Safety
/// `out` must be NULL or valid for writing one `T`.
pub(crate) unsafe fn write_optional<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL and, by the caller's contract, writable.
        unsafe { out.write(value) };
    }
}

/// A live handle, or CLOSED when its store has been closed (a session handle whose root
/// handle was closed).
///
/// # Safety
/// `store` must be NULL or a live handle from `tbs_store_open` or `tbs_store_session`.
pub(crate) unsafe fn handle_ref<'a>(store: *const tbs_store) -> Result<&'a tbs_store> {
    // SAFETY: a non-NULL handle is live by the caller's contract.
    match unsafe { store.as_ref() } {
        Some(handle) if handle.storage.is_closed() => Err(Error::new(
            ErrorCode::Closed,
            "the store has been closed (its root handle was passed to tbs_store_close)",
        )),
        Some(handle) => Ok(handle),
        None => Err(null("store")),
    }
}

/// The store behind a handle, as seen by the handle's actor (borrowed: no allocation).
///
/// # Safety
/// As [`handle_ref`].
pub(crate) unsafe fn store_ref<'a>(store: *const tbs_store) -> Result<Session<'a>> {
    // SAFETY: forwarded contract.
    let handle = unsafe { handle_ref(store) }?;
    Ok(handle.storage.acting(&handle.actor))
}

/// The shape of the metadata reads of one secret: checks the arguments, runs `read` on the
/// handle's session with (`tenant`, `name`) and writes its result as JSON to `*out_json`.
///
/// # Safety
/// `store` as [`handle_ref`]; `tenant`, `name` as [`arg_str`]; `out_json` NULL or writable.
pub(crate) unsafe fn secret_json<T: serde::Serialize>(
    store: *mut tbs_store,
    tenant: *const c_char,
    name: *const c_char,
    out_json: *mut tbs_buffer,
    read: impl FnOnce(&Session<'_>, &str, &str) -> Result<T>,
) -> tbs_status {
    guard(|| {
        check_out(out_json, "out_json")?;
        // SAFETY: the caller's contract for each pointer.
        let session = unsafe { store_ref(store) }?;
        // SAFETY: as above.
        let tenant = unsafe { arg_str(tenant, "tenant") }?;
        // SAFETY: as above.
        let name = unsafe { arg_str(name, "name") }?;
        let json = json_buffer(&read(&session, tenant, name)?)?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { out_json.write(json) };
        Ok(())
    })
}

/// A required NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string that outlives the call.
pub(crate) unsafe fn arg_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a str> {
    // SAFETY: forwarded contract.
    unsafe { opt_str(ptr, what) }?.ok_or_else(|| null(what))
}

/// An optional NUL-terminated UTF-8 string argument (NULL: `None`).
///
/// # Safety
/// As [`arg_str`].
pub(crate) unsafe fn opt_str<'a>(ptr: *const c_char, what: &str) -> Result<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and NUL-terminated by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    std::str::from_utf8(bytes).map(Some).map_err(|e| {
        Error::invalid(format!(
            "{what} is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// A pointer + length byte argument; NULL is allowed only with length 0.
///
/// # Safety
/// `ptr` must be NULL or valid for reading `len` bytes that outlive the call.
pub(crate) unsafe fn arg_bytes<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a [u8]> {
    if ptr.is_null() {
        if len == 0 {
            return Ok(&[]);
        }
        return Err(Error::invalid(format!(
            "{what} is NULL but its length is {len}"
        )));
    }
    if len > isize::MAX as usize {
        return Err(Error::invalid(format!("{what} length {len} is too large")));
    }
    // SAFETY: non-NULL, readable for `len` bytes by the caller's contract, len ≤ isize::MAX.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// A pointer + length UTF-8 document (text or JSON) of at most [`MAX_DOCUMENT_BYTES`], the
/// length checked before the bytes are read.
///
/// # Safety
/// As [`arg_bytes`].
pub(crate) unsafe fn arg_document<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a str> {
    if len > MAX_DOCUMENT_BYTES {
        return Err(Error::invalid(format!(
            "{what} is {len} bytes long; the limit is {MAX_DOCUMENT_BYTES} bytes (64 MiB)"
        )));
    }
    // SAFETY: forwarded contract.
    unsafe { arg_text(ptr, len, what) }
}

/// A pointer + length UTF-8 text argument.
///
/// # Safety
/// As [`arg_bytes`].
pub(crate) unsafe fn arg_text<'a>(ptr: *const u8, len: usize, what: &str) -> Result<&'a str> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { arg_bytes(ptr, len, what) }?;
    std::str::from_utf8(bytes).map_err(|e| {
        Error::invalid(format!(
            "{what} is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// What follows the bytes of every buffer: the NUL, then the allocation's capacity (native
/// endian, unaligned), which `release` needs to free it. Carrying the capacity lets a buffer
/// take over a `Vec`'s own allocation (a resolved document, JSON) instead of copying it.
const TRAILER: usize = 1 + std::mem::size_of::<usize>();

/// A library-owned copy of `bytes`, for a [`tbs_buffer`]. Allocated at its final size, so no
/// partial copy of a secret is left behind by a reallocation.
pub(crate) fn buffer_from(bytes: &[u8]) -> tbs_buffer {
    let mut owned = Vec::with_capacity(bytes.len() + TRAILER);
    owned.extend_from_slice(bytes);
    into_buffer(owned)
}

/// A [`tbs_buffer`] made of `bytes`' own allocation when it has room for the trailer (no copy);
/// otherwise of a copy, and `bytes` is wiped.
pub(crate) fn buffer_from_vec(mut bytes: Zeroizing<Vec<u8>>) -> tbs_buffer {
    if bytes.capacity() - bytes.len() < TRAILER {
        return buffer_from(&bytes);
    }
    into_buffer(std::mem::take(&mut *bytes))
}

/// Appends the trailer (which must fit without growing) and hands the allocation over.
fn into_buffer(mut bytes: Vec<u8>) -> tbs_buffer {
    let len = bytes.len();
    let capacity = bytes.capacity();
    debug_assert!(capacity - len >= TRAILER);
    bytes.push(0);
    bytes.extend_from_slice(&capacity.to_ne_bytes());
    debug_assert_eq!(
        bytes.capacity(),
        capacity,
        "the trailer must not reallocate"
    );
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    tbs_buffer {
        data: bytes.as_mut_ptr(),
        len,
    }
}

/// A buffer holding the JSON text of metadata (never a secret value).
pub(crate) fn json_buffer<T: serde::Serialize>(value: &T) -> Result<tbs_buffer> {
    let json = serde_json::to_vec(value)
        .map_err(|e| Error::internal(format!("cannot render JSON: {e}")))?;
    Ok(buffer_from_vec(Zeroizing::new(json)))
}

/// Wipes (the whole allocation, spare capacity included) and frees a buffer's bytes.
///
/// # Safety
/// `data` must be NULL or come from [`into_buffer`] with this `len`, not freed yet.
pub(crate) unsafe fn release(data: *mut u8, len: usize) {
    if data.is_null() {
        return;
    }
    let mut capacity = [0u8; std::mem::size_of::<usize>()];
    // SAFETY: `into_buffer` wrote the capacity right after the NUL that follows `len` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(data.add(len + 1), capacity.as_mut_ptr(), capacity.len())
    };
    let capacity = usize::from_ne_bytes(capacity);
    // SAFETY: `data` is the pointer of a `Vec<u8>` of that capacity holding `len + TRAILER`
    // initialised bytes, handed over by `into_buffer` and not freed since.
    let mut bytes = unsafe { Vec::from_raw_parts(data, len + TRAILER, capacity) };
    bytes.zeroize();
}
