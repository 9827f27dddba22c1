//! Argument decoders, used by every export: Java strings (on the stack), bounded secret bytes,
//! documents (a `byte[]` range or a direct `ByteBuffer`), the call buffer of the hot path, and
//! the scalar arguments (a secret type from an `int`, versions and ages from a `long`...). Each
//! fails with a typed INVALID_ARGUMENT naming the argument, never with a panic.

use super::error::{check, invalid, BridgeError, BridgeResult};
use super::handle::Handle;
use super::results::Wiped;
use crate::access::Role;
use crate::error::Error;
use crate::model::{ListQuery, SecretType};
use ::jni::objects::{JByteArray, JByteBuffer, JString};
use ::jni::sys::{jchar, jint, jlong, jsize};
use ::jni::Env;
use std::mem::MaybeUninit;
use std::time::Duration;

fn null_argument(what: &str) -> BridgeError {
    Error::invalid(format!("{what} must not be null")).into()
}

/// UTF-16 units read into the stack; longer strings go to the heap.
const INLINE_UNITS: usize = 256;

/// A Java `String` argument as UTF-8, converted without a heap allocation for strings of up to
/// 256 UTF-16 units (every tenant id and typical secret names).
pub(in crate::jni) struct StrArg {
    inline: [MaybeUninit<u8>; INLINE_UNITS * 3],
    heap: String,
}

impl StrArg {
    /// An empty argument buffer.
    pub(in crate::jni) fn new() -> Self {
        StrArg {
            inline: [MaybeUninit::uninit(); INLINE_UNITS * 3],
            heap: String::new(),
        }
    }

    /// Reads `s` (which must not be null). A string holding an unpaired surrogate is not
    /// Unicode text and fails with INVALID_ARGUMENT naming `what`.
    ///
    /// Two JNI calls and no heap allocation for strings of up to 256 UTF-16 units; ASCII (every
    /// tenant UUID, most names) is narrowed without decoding.
    pub(in crate::jni) fn read<'a>(
        &'a mut self,
        env: &Env<'_>,
        s: &JString<'_>,
        what: &str,
    ) -> BridgeResult<&'a str> {
        if s.is_null() {
            return Err(null_argument(what));
        }
        // Neither call can throw here: the string is non-null and the region is the whole
        // string, so no exception check is needed between them.
        let len = raw_jni!(env, GetStringLength, s.as_raw());
        let units = usize::try_from(len).unwrap_or(0);
        if units > INLINE_UNITS {
            let mut buf = vec![0u16; units];
            raw_jni!(env, GetStringRegion, s.as_raw(), 0, len, buf.as_mut_ptr());
            check(env)?;
            self.heap = String::from_utf16(&buf).map_err(|_| unpaired(what))?;
            return Ok(&self.heap);
        }
        let mut buf = [MaybeUninit::<jchar>::uninit(); INLINE_UNITS];
        raw_jni!(
            env,
            GetStringRegion,
            s.as_raw(),
            0,
            len,
            buf.as_mut_ptr().cast::<jchar>()
        );
        // SAFETY: GetStringRegion wrote the first `units` elements.
        let buf: &[u16] = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u16>(), units) };
        let mut n = 0;
        while n < units && buf[n] < 0x80 {
            self.inline[n] = MaybeUninit::new(buf[n] as u8);
            n += 1;
        }
        if n < units {
            for unit in char::decode_utf16(buf[n..].iter().copied()) {
                let c = unit.map_err(|_| unpaired(what))?;
                let mut tmp = [0u8; 4];
                for &b in c.encode_utf8(&mut tmp).as_bytes() {
                    // At most 3 bytes per UTF-16 unit: within the 3 × 256 bytes of `inline`.
                    self.inline[n] = MaybeUninit::new(b);
                    n += 1;
                }
            }
        }
        // SAFETY: the first `n` bytes were written above: ASCII bytes, then whole UTF-8
        // encoded chars, which together are valid UTF-8.
        Ok(unsafe {
            std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                self.inline.as_ptr().cast::<u8>(),
                n,
            ))
        })
    }

    /// Like [`StrArg::read`], but a null string gives `None`.
    pub(in crate::jni) fn read_opt<'a>(
        &'a mut self,
        env: &Env<'_>,
        s: &JString<'_>,
        what: &str,
    ) -> BridgeResult<Option<&'a str>> {
        if s.is_null() {
            return Ok(None);
        }
        self.read(env, s, what).map(Some)
    }
}

/// The `(tenantId, name)` pair of arguments most exports take.
pub(in crate::jni) struct TenantName {
    tenant: StrArg,
    name: StrArg,
}

impl TenantName {
    /// Empty argument buffers.
    pub(in crate::jni) fn new() -> Self {
        TenantName {
            tenant: StrArg::new(),
            name: StrArg::new(),
        }
    }

    /// Reads both strings (see [`StrArg::read`]).
    pub(in crate::jni) fn read<'a>(
        &'a mut self,
        env: &Env<'_>,
        tenant: &JString<'_>,
        name: &JString<'_>,
    ) -> BridgeResult<(&'a str, &'a str)> {
        Ok((
            self.tenant.read(env, tenant, "tenantId")?,
            self.name.read(env, name, "name")?,
        ))
    }
}

fn unpaired(what: &str) -> BridgeError {
    Error::invalid(format!(
        "{what} is not valid Unicode text (it holds an unpaired UTF-16 surrogate)"
    ))
    .into()
}

/// Copies a Java `byte[]` into a wiped buffer (for values and keys).
pub(in crate::jni) fn secret_bytes(
    env: &Env<'_>,
    array: &JByteArray<'_>,
    what: &str,
) -> BridgeResult<Wiped<u8>> {
    secret_bytes_checked(env, array, what, |_| Ok(()))
}

/// [`secret_bytes`] with `check(len)` run on the array's length before a byte is copied
/// (a value over the store's limits costs no copy).
pub(in crate::jni) fn secret_bytes_checked(
    env: &Env<'_>,
    array: &JByteArray<'_>,
    what: &str,
    check: impl FnOnce(usize) -> crate::Result<()>,
) -> BridgeResult<Wiped<u8>> {
    if array.is_null() {
        return Err(null_argument(what));
    }
    let len = array.len(env)?;
    check(len)?;
    let mut buf = Wiped(vec![0u8; len]);
    // SAFETY: i8 and u8 have the same size and alignment.
    let region: &mut [i8] =
        unsafe { std::slice::from_raw_parts_mut(buf.0.as_mut_ptr().cast::<i8>(), len) };
    array.get_region(env, 0, region)?;
    Ok(buf)
}

/// Copies `len` bytes at `offset` of a Java `byte[]` (a document) into a new buffer, without
/// zero-filling it first.
pub(in crate::jni) fn document_bytes(
    env: &Env<'_>,
    array: &JByteArray<'_>,
    offset: i32,
    len: i32,
) -> BridgeResult<Vec<u8>> {
    if array.is_null() {
        return Err(null_argument("document"));
    }
    let total = array.len(env)?;
    let (start, count) = checked_range(offset, len, total)?;
    // Over the cap: refused before anything is copied.
    crate::placeholder::check_document_len(count)?;
    let mut buf = Vec::<u8>::with_capacity(count);
    raw_jni!(
        env,
        GetByteArrayRegion,
        array.as_raw(),
        start as jsize,
        count as jsize,
        buf.as_mut_ptr().cast::<i8>()
    );
    check(env)?;
    // SAFETY: GetByteArrayRegion initialised `count` bytes (no exception is pending).
    unsafe { buf.set_len(count) };
    Ok(buf)
}

/// The memory of a thread's call buffer (`org.tbsecrets.internal.CallBuffer`): a direct
/// `ByteBuffer` through which the hot path passes its arguments and result without any JNI call.
///
/// # Safety
/// `address` must be the address of a direct buffer of at least `capacity` bytes that stays
/// allocated for `'a` and that no other code reads or writes meanwhile. `CallBuffer` guarantees
/// it: each thread has its own buffer, kept reachable by a `ThreadLocal`, and uses it for one
/// call at a time.
pub(in crate::jni) unsafe fn call_buffer<'a>(
    address: jlong,
    capacity: jint,
) -> BridgeResult<&'a mut [u8]> {
    let ptr = address as *mut u8;
    match usize::try_from(capacity) {
        Ok(len) if !ptr.is_null() && len > 0 => {
            // SAFETY: per the caller's contract.
            Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
        }
        _ => Err(Error::internal("invalid call buffer").into()),
    }
}

/// The ASCII text of `len` bytes at `offset` of a call buffer (Java puts only ASCII strings
/// there; others take the object path).
pub(in crate::jni) fn buffer_str<'a>(
    buffer: &'a [u8],
    offset: usize,
    len: jint,
    what: &str,
) -> BridgeResult<&'a str> {
    let bytes = usize::try_from(len)
        .ok()
        .and_then(|len| buffer.get(offset..offset.checked_add(len)?));
    match bytes {
        Some(bytes) if bytes.is_ascii() => {
            // SAFETY: ASCII is valid UTF-8.
            Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
        }
        _ => Err(Error::internal(format!("{what} in the call buffer is not ASCII")).into()),
    }
}

/// The `len` bytes at `offset` of a direct `ByteBuffer`, borrowed without a copy.
///
/// # Safety
/// The buffer's memory must not be freed or written while the slice lives: the caller holds a
/// local reference to the buffer for the whole native call, and the Java API documents that the
/// buffer must not be modified during the call.
pub(in crate::jni) unsafe fn direct_bytes<'a>(
    env: &Env<'_>,
    buffer: &JByteBuffer<'_>,
    offset: i32,
    len: i32,
) -> BridgeResult<&'a [u8]> {
    let (address, count) = direct_range(env, buffer, offset, len, "document")?;
    if count == 0 {
        return Ok(&[]);
    }
    // SAFETY: the range lies inside the buffer's capacity; liveness per contract.
    Ok(unsafe { std::slice::from_raw_parts(address, count) })
}

/// The `len` bytes at `offset` of a direct `ByteBuffer` to write to (`what` names it in
/// errors), refused when they overlap `other` (a slice the same call reads).
///
/// # Safety
/// As [`direct_bytes`]; besides, nothing else may read or write the range while the slice
/// lives (the Java API documents that the buffer belongs to the call).
pub(in crate::jni) unsafe fn direct_bytes_mut<'a>(
    env: &Env<'_>,
    buffer: &JByteBuffer<'_>,
    offset: i32,
    len: i32,
    what: &str,
    other: &[u8],
) -> BridgeResult<&'a mut [u8]> {
    let (address, count) = direct_range(env, buffer, offset, len, what)?;
    if count == 0 {
        return Ok(&mut []);
    }
    let (start, end) = (address as usize, address as usize + count);
    let (other_start, other_end) = (
        other.as_ptr() as usize,
        other.as_ptr() as usize + other.len(),
    );
    if !other.is_empty() && start < other_end && other_start < end {
        return Err(Error::invalid(format!(
            "the {what} overlaps the document it is resolved from"
        ))
        .into());
    }
    // SAFETY: the range lies inside the buffer's capacity, apart from `other`; exclusive use
    // per contract.
    Ok(unsafe { std::slice::from_raw_parts_mut(address, count) })
}

/// The address and length of `len` bytes at `offset` of a direct buffer, range-checked.
fn direct_range(
    env: &Env<'_>,
    buffer: &JByteBuffer<'_>,
    offset: i32,
    len: i32,
    what: &str,
) -> BridgeResult<(*mut u8, usize)> {
    if buffer.is_null() {
        return Err(null_argument(what));
    }
    let address = env
        .get_direct_buffer_address(buffer)
        .map_err(|_| Error::invalid(format!("the {what} ByteBuffer is not a direct buffer")))?;
    let capacity = env.get_direct_buffer_capacity(buffer)?;
    let (start, count) = checked_range(offset, len, capacity)?;
    // SAFETY: `start` is within the buffer's capacity (checked above).
    Ok((unsafe { address.add(start) }, count))
}

fn checked_range(offset: i32, len: i32, total: usize) -> BridgeResult<(usize, usize)> {
    let start = usize::try_from(offset).ok();
    let count = usize::try_from(len).ok();
    match (start, count) {
        (Some(start), Some(count)) if start.checked_add(count).is_some_and(|end| end <= total) => {
            Ok((start, count))
        }
        _ => Err(Error::invalid(format!(
            "range [{offset}, {offset} + {len}) is outside the document of {total} bytes"
        ))
        .into()),
    }
}

/// The bytes of a secret value (`byte[]`), copied into a wiped buffer once its length is within
/// the store's limits for `secret_type` (`None`: a type not known yet, the larger bound): a
/// value over the limits costs no copy.
pub(in crate::jni) fn value_bytes(
    env: &Env<'_>,
    handle: &Handle,
    array: &JByteArray<'_>,
    secret_type: Option<SecretType>,
) -> BridgeResult<Wiped<u8>> {
    let limits = &handle.storage.options().limits;
    secret_bytes_checked(env, array, "value", |len| {
        crate::model::check_value_len(len, limits, secret_type)
    })
}

/// A secret type from its number (`org.tbsecrets.SecretType#ordinal()`).
pub(in crate::jni) fn secret_type(value: jint) -> BridgeResult<SecretType> {
    u8::try_from(value)
        .ok()
        .and_then(SecretType::from_u8)
        .ok_or_else(|| invalid(format!("unknown secret type {value}")))
}

/// A role from its number (`org.tbsecrets.Role#number()`).
pub(in crate::jni) fn role(value: jint) -> BridgeResult<Role> {
    usize::try_from(value)
        .ok()
        .and_then(|r| Role::ALL.get(r).copied())
        .ok_or_else(|| invalid(format!("unknown role {value}")))
}

/// A check-and-set version: a negative `long` means "no check".
pub(in crate::jni) fn expected_version(value: jlong) -> Option<u64> {
    u64::try_from(value).ok()
}

/// A version number, which must not be negative.
pub(in crate::jni) fn version(value: jlong) -> BridgeResult<u64> {
    u64::try_from(value).map_err(|_| invalid(format!("version {value} must not be negative")))
}

/// An age in milliseconds, which must not be negative.
pub(in crate::jni) fn age(millis: jlong) -> BridgeResult<Duration> {
    u64::try_from(millis)
        .map(Duration::from_millis)
        .map_err(|_| invalid(format!("age {millis} ms must not be negative")))
}

/// A limit that must be positive, such as `maxTextChars`.
pub(in crate::jni) fn positive(value: jint, what: &str) -> BridgeResult<usize> {
    match usize::try_from(value) {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(invalid(format!("{what} must be positive; got {value}"))),
    }
}

/// A list query: an optional name filter, an optional cursor (names after it), an offset and
/// a limit (0: all), neither negative; `deleted`: of the deleted secrets instead of the live
/// ones.
pub(in crate::jni) fn list_query(
    name_contains: Option<&str>,
    after: Option<&str>,
    offset: jint,
    limit: jint,
    deleted: bool,
) -> BridgeResult<ListQuery> {
    let (Ok(offset), Ok(limit)) = (usize::try_from(offset), usize::try_from(limit)) else {
        return Err(invalid("offset and limit must not be negative".to_owned()));
    };
    Ok(ListQuery {
        name_contains: name_contains.map(str::to_owned),
        after: after.map(str::to_owned),
        offset,
        limit,
        deleted,
    })
}

/// A UTF-8 document's text.
pub(in crate::jni) fn utf8_document(bytes: &[u8]) -> BridgeResult<&str> {
    std::str::from_utf8(bytes).map_err(|e| {
        invalid(format!(
            "the document is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn message<T: std::fmt::Debug>(result: BridgeResult<T>) -> String {
        match result.unwrap_err() {
            BridgeError::Store(err) => {
                assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err}");
                err.message().to_owned()
            }
            BridgeError::Jni(err) => panic!("a JNI error for a bad number: {err}"),
        }
    }

    #[test]
    fn scalar_arguments_decode_or_name_what_is_wrong() {
        assert_eq!(secret_type(0).unwrap(), SecretType::Text);
        assert_eq!(message(secret_type(-1)), "unknown secret type -1");
        assert_eq!(message(secret_type(256)), "unknown secret type 256");
        assert_eq!(role(0).unwrap(), Role::ALL[0]);
        assert_eq!(message(role(Role::ALL.len() as jint)), "unknown role 4");
        assert_eq!(expected_version(-1), None);
        assert_eq!(expected_version(3), Some(3));
        assert_eq!(version(2).unwrap(), 2);
        assert_eq!(message(version(-2)), "version -2 must not be negative");
        assert_eq!(age(1500).unwrap(), Duration::from_millis(1500));
        assert_eq!(message(age(-1)), "age -1 ms must not be negative");
        assert_eq!(positive(5, "maxVersions").unwrap(), 5);
        assert_eq!(
            message(positive(0, "maxVersions")),
            "maxVersions must be positive; got 0"
        );
    }

    #[test]
    fn list_queries_and_documents() {
        let query = list_query(Some("db"), Some("api"), 2, 0, true).unwrap();
        assert_eq!(
            (
                query.name_contains.as_deref(),
                query.after.as_deref(),
                query.offset,
                query.limit,
                query.deleted
            ),
            (Some("db"), Some("api"), 2, 0, true)
        );
        assert_eq!(
            message(list_query(None, None, -1, 0, false)),
            "offset and limit must not be negative"
        );
        assert_eq!(utf8_document(b"{}").unwrap(), "{}");
        assert_eq!(
            message(utf8_document(b"ab\xff")),
            "the document is not valid UTF-8 (invalid byte at offset 2)"
        );
        assert_eq!(checked_range(1, 2, 3).unwrap(), (1, 2));
        assert!(checked_range(2, 2, 3).is_err());
        assert!(checked_range(-1, 1, 3).is_err());
    }

    #[test]
    fn call_buffer_strings_are_ascii_within_the_buffer() {
        let buffer = b"tenant\xc3\xa9";
        assert_eq!(buffer_str(buffer, 0, 6, "tenantId").unwrap(), "tenant");
        assert!(buffer_str(buffer, 6, 2, "name").is_err(), "not ASCII");
        assert!(buffer_str(buffer, 6, 9, "name").is_err(), "past the end");
        assert!(
            buffer_str(buffer, 0, -1, "name").is_err(),
            "negative length"
        );
    }
}
