//! Host key providers in C: a struct of callbacks that wrap and unwrap data keys with a key
//! the host holds (a KMS client, an HSM API), adapted to the core's [`KeyWrapper`]; the
//! library-owned output they write into; the options setter and the rotation to one.

use super::args::{arg, OptOut};
use super::boundary::guard;
use super::status::status_name;
use super::{tbs_buffer, tbs_options, tbs_status, tbs_store, TBS_OPTIONS_VERSION};
use crate::error::{Error, ErrorCode, Result};
use crate::Session;
use crate::{KeyProvider, KeyWrapper, WrapperProvider};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Longest result a key provider callback may hand to `tbs_key_output_set` (64 KiB): wrapped
/// or unwrapped data keys are a few dozen bytes.
pub const TBS_MAX_KEY_OUTPUT_BYTES: usize = 65_536;

/// Where a key provider callback writes its result. Opaque and owned by the library: pass the
/// bytes to `tbs_key_output_set`, which copies them into memory the library wipes when done
/// (no allocator crosses the boundary). Valid only during the callback.
pub struct tbs_key_output {
    /// The bytes set by the callback (the last `tbs_key_output_set` wins).
    bytes: Option<Zeroizing<Vec<u8>>>,
}

/// A wrap or unwrap callback of a `tbs_key_provider`: reads `input[0..input_len)`, writes the
/// result with `tbs_key_output_set(out, ...)` and returns `TBS_OK` (0); or returns another
/// status to refuse, e.g. when the KMS cannot be reached (the operation then fails with
/// `TBS_KEY_UNAVAILABLE`, the status named in the message). An `unwrap` that finds bytes which
/// are not its own (authentication failed) should return `TBS_INTEGRITY`: opening a store then
/// fails with `TBS_WRONG_MASTER_KEY`, reading a key with `TBS_INTEGRITY`.
///
/// `aad[0..aad_len)` is the context the key belongs to (public bytes): bind it as associated
/// data if the KMS supports it, or ignore it (the library checks the context anyway).
/// `input` holds a data key (wrap) or what `wrap` returned (unwrap); both pointers are valid
/// only during the call. `context` is `tbs_key_provider.context`.
pub type tbs_key_callback = Option<
    unsafe extern "C" fn(
        context: *mut c_void,
        aad: *const u8,
        aad_len: usize,
        input: *const u8,
        input_len: usize,
        out: *mut tbs_key_output,
    ) -> c_int,
>;

/// Called with `tbs_key_provider.context` once the library no longer needs its copy of the
/// provider (see `tbs_key_provider.release`).
pub type tbs_key_release = Option<unsafe extern "C" fn(context: *mut c_void)>;

/// A master key held by the host application (a KMS, an HSM API): the library never sees it
/// and asks the callbacks to wrap and unwrap its data keys (the wrapped blob format of
/// docs/FORMATS.md). Give one to `tbs_options_set_key_provider` (opening a store) or
/// `tbs_store_rotate_key_provider` (moving a store to it).
///
/// The library copies the struct (and `description`) when it takes the provider, so the
/// struct itself may be a local variable. The callbacks are called from any thread that
/// uses the store, possibly from several at once: they must be thread-safe, must not unwind
/// (C++ exceptions, `longjmp`) into the library and must not close the store. They should
/// wipe their own copies of key bytes.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct tbs_key_provider {
    /// Passed unchanged to every callback. It must stay valid until `release` is called (or,
    /// without `release`, until every handle of the store is closed).
    pub context: *mut c_void,
    /// Wraps a data key. Required.
    pub wrap: tbs_key_callback,
    /// Unwraps what `wrap` returned. Required.
    pub unwrap: tbs_key_callback,
    /// Optional (NULL: none). Called once for each copy the library took (each
    /// `tbs_store_open` and `tbs_store_rotate_key_provider` given the provider) when that copy
    /// is no longer needed: every handle of the store closed (the root handle and its
    /// sessions), the store rotated to another key, or the open or rotation failed.
    pub release: tbs_key_release,
    /// NUL-terminated UTF-8 name of the provider for messages, e.g. "aws-kms:alias/tb" (never
    /// a credential); NULL for "host callback". Copied.
    pub description: *const c_char,
}

/// The library's copy of a C provider: a [`KeyWrapper`] calling its callbacks.
struct CallbackWrapper {
    context: *mut c_void,
    wrap: RawCallback,
    unwrap: RawCallback,
    release: tbs_key_release,
    description: String,
}

// SAFETY: `tbs_key_provider` documents that its callbacks are called from any thread, also
// concurrently, with `context`; the library never dereferences `context` itself.
unsafe impl Send for CallbackWrapper {}
// SAFETY: as above.
unsafe impl Sync for CallbackWrapper {}

impl Drop for CallbackWrapper {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: the provider's contract: called once per copy, with its context.
            unsafe { release(self.context) };
        }
    }
}

impl CallbackWrapper {
    /// Calls one callback and takes what it wrote into a fresh output.
    fn call(
        &self,
        callback: RawCallback,
        action: &str,
        aad: &[u8],
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = tbs_key_output { bytes: None };
        // SAFETY: the provider's contract (tbs_key_callback): both ranges are valid during
        // the call and `out` is a live output.
        let status = unsafe {
            callback(
                self.context,
                aad.as_ptr(),
                aad.len(),
                input.as_ptr(),
                input.len(),
                &mut out,
            )
        };
        if status == tbs_status::TBS_OK as c_int {
            return out.bytes.ok_or_else(|| {
                Error::new(
                    ErrorCode::KeyUnavailable,
                    format!(
                        "the key provider ({}) returned TBS_OK from {action} without calling tbs_key_output_set",
                        self.description
                    ),
                )
            });
        }
        let name = status_name(status).to_string_lossy();
        let not_its_own = status == tbs_status::TBS_INTEGRITY as c_int
            || status == tbs_status::TBS_WRONG_MASTER_KEY as c_int;
        if not_its_own && action == "unwrap" {
            return Err(Error::integrity(format!(
                "the key provider ({}) could not unwrap a key: its callback returned {name} ({status})",
                self.description
            )));
        }
        Err(Error::new(
            ErrorCode::KeyUnavailable,
            format!(
                "the key provider ({}) refused to {action}: its callback returned {name} ({status})",
                self.description
            ),
        ))
    }
}

impl KeyWrapper for CallbackWrapper {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn wrap(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut wrapped = self.call(self.wrap, "wrap", aad, plaintext)?;
        Ok(std::mem::take(&mut *wrapped))
    }

    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.call(self.unwrap, "unwrap", aad, wrapped)
    }
}

/// A non-NULL `tbs_key_callback`.
type RawCallback = unsafe extern "C" fn(
    *mut c_void,
    *const u8,
    usize,
    *const u8,
    usize,
    *mut tbs_key_output,
) -> c_int;

/// The callbacks and description of a C provider, checked (nothing is taken yet, so nothing
/// is released on failure).
fn checked(provider: &tbs_key_provider) -> Result<(CallbackParts, String)> {
    let (Some(wrap), Some(unwrap)) = (provider.wrap, provider.unwrap) else {
        return Err(Error::invalid(
            "the key provider's wrap and unwrap callbacks are required (one is NULL)",
        ));
    };
    let description = if provider.description.is_null() {
        "host callback".to_owned()
    } else {
        // SAFETY: a non-NULL description is NUL-terminated by the provider's contract.
        let text = unsafe { CStr::from_ptr(provider.description) };
        text.to_str()
            .map_err(|_| Error::invalid("the key provider's description is not valid UTF-8"))?
            .to_owned()
    };
    Ok(((wrap, unwrap), description))
}

/// The wrap and unwrap callbacks of a checked provider.
type CallbackParts = (RawCallback, RawCallback);

/// The library's copy of a C provider, as the core's key provider. From here on, dropping the
/// last reference calls `release`.
///
/// # Safety
/// `provider` must be NULL or point to a readable `tbs_key_provider` whose description is
/// NULL or NUL-terminated.
pub(crate) unsafe fn key_provider_from_c(
    provider: *const tbs_key_provider,
    what: &str,
) -> Result<Arc<dyn KeyProvider>> {
    // SAFETY: readable when non-NULL by the caller's contract.
    let Some(provider) = (unsafe { provider.as_ref() }) else {
        return Err(Error::invalid(format!("{what} is NULL")));
    };
    let ((wrap, unwrap), description) = checked(provider)?;
    Ok(Arc::new(WrapperProvider::new(CallbackWrapper {
        context: provider.context,
        wrap,
        unwrap,
        release: provider.release,
        description,
    })))
}

/// Gives the result of a key provider callback: copies `bytes[0..len)` (at most
/// `TBS_MAX_KEY_OUTPUT_BYTES`) into `out`, replacing what an earlier call set. The library
/// wipes its copy when done; the callback should wipe its own.
///
/// Fails with `TBS_INVALID_ARGUMENT` when `out` is NULL, `bytes` is NULL with a non-zero
/// `len`, or `len` is over the limit.
///
/// # Safety
/// `out` must be NULL or the output passed to the running callback; `bytes` readable for
/// `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn tbs_key_output_set(
    out: *mut tbs_key_output,
    bytes: *const u8,
    len: usize,
) -> tbs_status {
    guard(|| {
        if len > TBS_MAX_KEY_OUTPUT_BYTES {
            return Err(Error::invalid(format!(
                "bytes is {len} bytes long; a key provider may return at most {TBS_MAX_KEY_OUTPUT_BYTES}"
            )));
        }
        let bytes: &[u8] = arg!(bytes, len);
        // SAFETY: a live output during the callback, by the caller's contract.
        let Some(out) = (unsafe { out.as_mut() }) else {
            return Err(Error::invalid("out is NULL"));
        };
        out.bytes = Some(Zeroizing::new(bytes.to_vec()));
        Ok(())
    })
}

/// Makes `tbs_store_open` take the master key from `provider` (copied by `tbs_store_open`;
/// this call only records the pointer, so `*provider` must stay valid until then); NULL
/// clears it. Pass no master key to `tbs_store_open` then (NULL and 0): both is
/// `TBS_INVALID_ARGUMENT`. A new store is created with its keys wrapped by the provider; an
/// existing one must have been written under it (else `TBS_WRONG_MASTER_KEY`), see
/// `tbs_store_rotate_key_provider`. Operations fail with `TBS_KEY_UNAVAILABLE` when a callback
/// refuses.
///
/// Fails with `TBS_INVALID_ARGUMENT` when `options` is NULL or not initialised by
/// `tbs_options_init` of this version, or when `provider` lacks `wrap` or `unwrap` or its
/// description is not UTF-8.
///
/// # Safety
/// `options` must be NULL or point to a writable `tbs_options`; `provider` NULL or a readable
/// `tbs_key_provider` whose description is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn tbs_options_set_key_provider(
    options: *mut tbs_options,
    provider: *const tbs_key_provider,
) -> tbs_status {
    guard(|| {
        // SAFETY: writable when non-NULL by the caller's contract.
        let Some(options) = (unsafe { options.as_mut() }) else {
            return Err(Error::invalid("options is NULL"));
        };
        if options.version != TBS_OPTIONS_VERSION {
            return Err(Error::invalid(format!(
                "options.version is {}, expected {TBS_OPTIONS_VERSION}: initialise the options with tbs_options_init",
                options.version
            )));
        }
        // SAFETY: readable when non-NULL by the caller's contract.
        if let Some(p) = unsafe { provider.as_ref() } {
            checked(p)?;
        }
        options.key_provider = provider;
        Ok(())
    })
}

/// Moves the store's master key to `provider` (copied), e.g. from a raw key to the host's
/// KMS: every data key is unwrapped by the current key and wrapped by the provider's `wrap`
/// (in memory, then written in one short transaction, as `tbs_store_rotate_master_key`).
/// Afterwards the store uses the provider, and only it opens the store; the previous
/// provider's copy is released. To go back to a raw key, use `tbs_store_rotate_master_key`.
///
/// `out_report_json`: receives `{"keys":N,"versions":0,"key_id":N}`; NULL if not wanted.
/// Needs what `tbs_store_rotate_master_key` needs, else `TBS_PERMISSION_DENIED`. Fails with
/// `TBS_KEY_UNAVAILABLE` (nothing changed) when a callback of either provider refuses,
/// `TBS_INVALID_ARGUMENT` for a provider lacking `wrap` or `unwrap`.
///
/// # Safety
/// `store` must be a live handle; `provider` NULL or a readable `tbs_key_provider` whose
/// description is NULL or NUL-terminated; `out_report_json` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_rotate_key_provider(
    store: *mut tbs_store,
    provider: *const tbs_key_provider,
    out_report_json: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        let out_report_json: OptOut<tbs_buffer> = arg!(out_report_json);
        let s: Session = arg!(store);
        // SAFETY: the caller's contract.
        let provider = unsafe { key_provider_from_c(provider, "provider") }?;
        out_report_json.json(&s.rotate_key_provider(provider, &mut |_, _| {})?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_set_copies_and_checks_its_arguments() {
        let mut out = tbs_key_output { bytes: None };
        let bytes = [1u8, 2, 3];
        // SAFETY: a live output and a readable range.
        unsafe {
            assert_eq!(
                tbs_key_output_set(&mut out, bytes.as_ptr(), 3),
                tbs_status::TBS_OK
            );
            assert_eq!(out.bytes.as_deref().map(Vec::as_slice), Some(&bytes[..]));
            assert_eq!(
                tbs_key_output_set(std::ptr::null_mut(), bytes.as_ptr(), 3),
                tbs_status::TBS_INVALID_ARGUMENT
            );
            assert_eq!(
                tbs_key_output_set(&mut out, std::ptr::null(), 1),
                tbs_status::TBS_INVALID_ARGUMENT
            );
            assert_eq!(
                tbs_key_output_set(&mut out, bytes.as_ptr(), TBS_MAX_KEY_OUTPUT_BYTES + 1),
                tbs_status::TBS_INVALID_ARGUMENT
            );
        }
        // The failed calls left the earlier result alone.
        assert_eq!(out.bytes.as_deref().map(Vec::as_slice), Some(&bytes[..]));
    }
}
