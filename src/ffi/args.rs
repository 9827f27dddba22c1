//! Argument decoders and out-parameters of the entry points, written once.
//!
//! [`FromC`] turns one C argument into the Rust value an operation takes (the store's
//! session, a string, a byte range, a secret type...), or into a typed INVALID_ARGUMENT (or
//! CLOSED) error that names the argument; [`arg!`] applies it to a parameter, named by its own
//! identifier. [`Out`] and [`OptOut`] are the out-parameters, written only on success. So an
//! entry point reads as its operation:
//!
//! ```ignore
//! guard(|| {
//!     let out_json: Out<tbs_buffer> = arg!(out_json);   // NULL: "out_json is NULL"
//!     let s: Session = arg!(store);                     // NULL, or a closed store: CLOSED
//!     out_json.json(&s.info(arg!(tenant), arg!(name))?)
//! })
//! ```

use super::buffer::json_buffer;
use super::{
    tbs_buffer, tbs_format, tbs_role, tbs_secret_type, tbs_store, TBS_FORMAT_AUTO, TBS_FORMAT_JSON,
    TBS_FORMAT_TEXT, TBS_FORMAT_YAML, TBS_RESOLVE_MATERIALIZE_FILES, TBS_ROLE_CUSTOMER_USER,
    TBS_ROLE_SERVICE, TBS_ROLE_SYS_ADMIN, TBS_ROLE_TENANT_ADMIN, TBS_TYPE_TEXT, TBS_TYPE_TEXT_FILE,
};
use crate::access::Role;
use crate::error::{Error, ErrorCode, Result};
use crate::placeholder::MAX_DOCUMENT_BYTES;
use crate::service::{DocumentFormat, ResolveOptions};
use crate::{SecretType, Session};
use std::ffi::{c_char, CStr};

/// Decodes the entry point's parameter `$raw` (or the byte range `$ptr`, `$len`) into the type
/// the use site needs, with `?`: an error names the parameter as the header does.
///
/// It is `unsafe` to call (the macro hides an `unsafe` block): use it only in an entry point
/// whose `# Safety` section makes the parameter valid for the decoded type.
macro_rules! arg {
    ($raw:ident) => {
        // SAFETY: the entry point's `# Safety` section makes `$raw` valid as `FromC` requires.
        unsafe { $crate::ffi::args::FromC::from_c($raw, stringify!($raw)) }?
    };
    ($ptr:ident, $len:ident) => {
        // SAFETY: as above, for the byte range `$ptr[0..$len)`.
        unsafe { $crate::ffi::args::FromC::from_c(($ptr, $len), stringify!($ptr)) }?
    };
}
pub(crate) use arg;

/// A Rust value decoded from the C argument `Raw`.
pub(crate) trait FromC<Raw>: Sized {
    /// Decodes `raw`; `what` names it in errors.
    ///
    /// # Safety
    /// A pointer in `raw` must be NULL or valid for what the implementation reads or writes
    /// through it, for the whole call of the entry point.
    unsafe fn from_c(raw: Raw, what: &'static str) -> Result<Self>;
}

/// An INVALID_ARGUMENT error about a NULL pointer.
fn null(what: &str) -> Error {
    Error::invalid(format!("{what} is NULL"))
}

fn not_utf8(what: &str, e: std::str::Utf8Error) -> Error {
    Error::invalid(format!(
        "{what} is not valid UTF-8 (invalid byte at offset {})",
        e.valid_up_to()
    ))
}

/// A live handle, or CLOSED when its store has been closed (a session handle whose root
/// handle was closed).
impl FromC<*mut tbs_store> for &tbs_store {
    unsafe fn from_c(store: *mut tbs_store, what: &'static str) -> Result<Self> {
        // SAFETY: a non-NULL handle is live by the caller's contract.
        match unsafe { store.as_ref() } {
            Some(handle) if handle.storage.is_closed() => Err(Error::new(
                ErrorCode::Closed,
                "the store has been closed (its root handle was passed to tbs_store_close)",
            )),
            Some(handle) => Ok(handle),
            None => Err(null(what)),
        }
    }
}

/// The store behind a handle, as seen by the handle's actor (borrowed: no allocation).
impl<'a> FromC<*mut tbs_store> for Session<'a> {
    unsafe fn from_c(store: *mut tbs_store, what: &'static str) -> Result<Self> {
        // SAFETY: forwarded contract.
        let handle: &'a tbs_store = unsafe { FromC::from_c(store, what) }?;
        Ok(handle.session())
    }
}

/// A required NUL-terminated UTF-8 string.
impl FromC<*const c_char> for &str {
    unsafe fn from_c(ptr: *const c_char, what: &'static str) -> Result<Self> {
        // SAFETY: forwarded contract.
        unsafe { Option::<&str>::from_c(ptr, what) }?.ok_or_else(|| null(what))
    }
}

/// An optional NUL-terminated UTF-8 string (NULL: `None`).
impl FromC<*const c_char> for Option<&str> {
    unsafe fn from_c(ptr: *const c_char, what: &'static str) -> Result<Self> {
        if ptr.is_null() {
            return Ok(None);
        }
        // SAFETY: non-NULL and NUL-terminated by the caller's contract.
        let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|e| not_utf8(what, e))
    }
}

/// A pointer + length byte range; NULL is allowed only with length 0.
impl FromC<(*const u8, usize)> for &[u8] {
    unsafe fn from_c((ptr, len): (*const u8, usize), what: &'static str) -> Result<Self> {
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
}

/// A pointer + length UTF-8 document (text or JSON) of at most [`MAX_DOCUMENT_BYTES`], the
/// length checked before the bytes are read.
impl FromC<(*const u8, usize)> for &str {
    unsafe fn from_c((ptr, len): (*const u8, usize), what: &'static str) -> Result<Self> {
        if len > MAX_DOCUMENT_BYTES {
            return Err(Error::invalid(format!(
                "{what} is {len} bytes long; the limit is {MAX_DOCUMENT_BYTES} bytes (64 MiB)"
            )));
        }
        // SAFETY: forwarded contract.
        let bytes = unsafe { <&[u8]>::from_c((ptr, len), what) }?;
        std::str::from_utf8(bytes).map_err(|e| not_utf8(what, e))
    }
}

/// A secret type: `TBS_TYPE_TEXT` or `TBS_TYPE_TEXT_FILE`.
impl FromC<tbs_secret_type> for SecretType {
    unsafe fn from_c(value: tbs_secret_type, _what: &'static str) -> Result<Self> {
        match value {
            TBS_TYPE_TEXT => Ok(SecretType::Text),
            TBS_TYPE_TEXT_FILE => Ok(SecretType::TextFile),
            other => Err(Error::invalid(format!(
                "unknown secret type {other}: expected TBS_TYPE_TEXT (0) or TBS_TYPE_TEXT_FILE (1)"
            ))),
        }
    }
}

/// A role: one of the `TBS_ROLE_*` constants.
impl FromC<tbs_role> for Role {
    unsafe fn from_c(value: tbs_role, _what: &'static str) -> Result<Self> {
        parse_role(value)
    }
}

/// The role for a C number.
pub(crate) fn parse_role(value: tbs_role) -> Result<Role> {
    match value {
        TBS_ROLE_SYS_ADMIN => Ok(Role::SysAdmin),
        TBS_ROLE_TENANT_ADMIN => Ok(Role::TenantAdmin),
        TBS_ROLE_CUSTOMER_USER => Ok(Role::CustomerUser),
        TBS_ROLE_SERVICE => Ok(Role::Service),
        other => Err(Error::invalid(format!(
            "unknown role {other}: expected TBS_ROLE_SYS_ADMIN (1), TBS_ROLE_TENANT_ADMIN (2), \
             TBS_ROLE_CUSTOMER_USER (3) or TBS_ROLE_SERVICE (4)"
        ))),
    }
}

/// A document format: one of the `TBS_FORMAT_*` constants.
impl FromC<tbs_format> for DocumentFormat {
    unsafe fn from_c(format: tbs_format, _what: &'static str) -> Result<Self> {
        match format {
            TBS_FORMAT_AUTO => Ok(DocumentFormat::Auto),
            TBS_FORMAT_JSON => Ok(DocumentFormat::Json),
            TBS_FORMAT_TEXT => Ok(DocumentFormat::Text),
            TBS_FORMAT_YAML => Ok(DocumentFormat::Yaml),
            other => Err(Error::invalid(format!(
                "unknown format {other}: expected TBS_FORMAT_AUTO (0), TBS_FORMAT_JSON (1), TBS_FORMAT_TEXT (2) or TBS_FORMAT_YAML (3)"
            ))),
        }
    }
}

/// Resolve flags: 0 or `TBS_RESOLVE_MATERIALIZE_FILES`; unknown bits are an error.
impl FromC<u32> for ResolveOptions<'_> {
    unsafe fn from_c(flags: u32, _what: &'static str) -> Result<Self> {
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
}

/// A required out-parameter: NULL is INVALID_ARGUMENT when decoded (before the operation
/// runs); written only on success.
pub(crate) struct Out<T>(*mut T);

/// An optional out-parameter: NULL means "not wanted".
pub(crate) struct OptOut<T>(*mut T);

impl<T> FromC<*mut T> for Out<T> {
    unsafe fn from_c(out: *mut T, what: &'static str) -> Result<Self> {
        if out.is_null() {
            return Err(null(what));
        }
        Ok(Out(out))
    }
}

impl<T> FromC<*mut T> for OptOut<T> {
    unsafe fn from_c(out: *mut T, _what: &'static str) -> Result<Self> {
        Ok(OptOut(out))
    }
}

impl<T> Out<T> {
    /// Writes the result.
    pub(crate) fn put(self, value: T) -> Result<()> {
        // SAFETY: non-NULL (checked when decoded) and writable by the entry point's contract.
        unsafe { self.0.write(value) };
        Ok(())
    }
}

impl Out<tbs_buffer> {
    /// Writes `value` rendered as JSON (metadata, never a secret value).
    pub(crate) fn json<V: serde::Serialize>(self, value: &V) -> Result<()> {
        self.put(json_buffer(value)?)
    }
}

impl<T> OptOut<T> {
    /// Writes the result if it is wanted.
    pub(crate) fn put(self, value: T) -> Result<()> {
        if !self.0.is_null() {
            // SAFETY: non-NULL and writable by the entry point's contract.
            unsafe { self.0.write(value) };
        }
        Ok(())
    }
}

impl OptOut<tbs_buffer> {
    /// Writes `value` rendered as JSON if it is wanted (else renders nothing).
    pub(crate) fn json<V: serde::Serialize>(self, value: &V) -> Result<()> {
        if self.0.is_null() {
            return Ok(());
        }
        self.put(json_buffer(value)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes like an entry point would, so that `arg!` names the parameter.
    fn decode_tenant(tenant: *const c_char) -> Result<String> {
        let tenant: &str = arg!(tenant);
        Ok(tenant.to_owned())
    }

    #[test]
    fn arg_names_the_parameter_by_its_identifier() {
        let err = decode_tenant(std::ptr::null()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
        assert_eq!(err.message(), "tenant is NULL");
        assert_eq!(decode_tenant(c"t-1".as_ptr()).unwrap(), "t-1");
        let bad = c"a\xffb";
        let err = decode_tenant(bad.as_ptr()).unwrap_err();
        assert_eq!(
            err.message(),
            "tenant is not valid UTF-8 (invalid byte at offset 1)"
        );
    }

    #[test]
    fn byte_ranges_and_documents_check_null_length_and_cap() {
        // SAFETY (all calls): NULL pointers, or a live array of the given length.
        let err = unsafe { <&[u8]>::from_c((std::ptr::null(), 3), "value") }.unwrap_err();
        assert_eq!(err.message(), "value is NULL but its length is 3");
        let empty = unsafe { <&[u8]>::from_c((std::ptr::null(), 0), "value") }.unwrap();
        assert!(empty.is_empty());
        // Over the cap: refused before the (dangling) pointer is read.
        let too_long = MAX_DOCUMENT_BYTES + 1;
        let dangling = std::ptr::NonNull::<u8>::dangling().as_ptr();
        let err =
            unsafe { <&str>::from_c((dangling.cast_const(), too_long), "document") }.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
        assert!(
            err.message().starts_with("document is 67108865 bytes long"),
            "{err}"
        );
        let text = b"{}";
        let doc = unsafe { <&str>::from_c((text.as_ptr(), text.len()), "json") }.unwrap();
        assert_eq!(doc, "{}");
    }

    #[test]
    fn numbers_outside_their_constants_are_invalid_arguments() {
        // SAFETY (all calls): numbers, no pointer.
        unsafe {
            assert_eq!(SecretType::from_c(1, "t").unwrap(), SecretType::TextFile);
            let err = SecretType::from_c(7, "secret_type").unwrap_err();
            assert!(err.message().contains("unknown secret type 7"), "{err}");
            assert!(matches!(
                DocumentFormat::from_c(1, "f"),
                Ok(DocumentFormat::Json)
            ));
            let err = DocumentFormat::from_c(4, "format").unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidArgument);
            assert!(
                ResolveOptions::from_c(1, "flags")
                    .unwrap()
                    .materialize_files
            );
            let err = ResolveOptions::from_c(6, "flags").unwrap_err();
            assert!(err.message().contains("unknown resolve flags 0x6"), "{err}");
        }
    }

    #[test]
    fn out_parameters_required_optional_and_written_only_when_put() {
        // SAFETY (all calls): NULL, or a live local.
        let err = unsafe { Out::<u64>::from_c(std::ptr::null_mut(), "out_version") }
            .err()
            .unwrap();
        assert_eq!(err.message(), "out_version is NULL");
        let unwanted = unsafe { OptOut::<tbs_buffer>::from_c(std::ptr::null_mut(), "o") };
        unwanted.unwrap().json(&[1, 2]).unwrap();
        let mut version = 0u64;
        let out = unsafe { OptOut::from_c(&mut version as *mut u64, "out_version") }.unwrap();
        assert_eq!(version, 0, "decoding writes nothing");
        out.put(7).unwrap();
        assert_eq!(version, 7);
    }
}
