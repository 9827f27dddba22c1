//! Result encoders: Java strings and byte arrays, wire-encoded metadata, counts.

use super::error::{check, BridgeResult};
use crate::error::Error;
use crate::jni::wire::Wire;
use crate::model::SecretInfo;
use ::jni::objects::{JByteArray, JString};
use ::jni::sys::{jint, jsize};
use ::jni::Env;
use std::mem::MaybeUninit;
use zeroize::{DefaultIsZeroes, Zeroize};

/// A buffer that is wiped when dropped, in one bulk pass. (`Zeroizing<Vec<_>>` wipes element by
/// element, which costs milliseconds on a resolved 10 MiB document.)
pub(in crate::jni) struct Wiped<E: DefaultIsZeroes>(pub(in crate::jni) Vec<E>);

impl<E: DefaultIsZeroes> Drop for Wiped<E> {
    fn drop(&mut self) {
        self.0.as_mut_slice().zeroize();
    }
}

impl<E: DefaultIsZeroes> std::ops::Deref for Wiped<E> {
    type Target = [E];

    fn deref(&self) -> &[E] {
        &self.0
    }
}

/// UTF-16 units built on the stack for a result string.
const INLINE_RESULT_UNITS: usize = 512;

/// A new Java `String` holding the UTF-8 text `utf8`, built from UTF-16 (`NewString`) so that
/// any Unicode text, NUL and supplementary characters included, round-trips exactly. ASCII is
/// widened without decoding; the UTF-16 copy is zeroized.
pub(in crate::jni) fn new_string<'local>(
    env: &mut Env<'local>,
    utf8: &[u8],
) -> BridgeResult<JString<'local>> {
    let mut inline = [MaybeUninit::<u16>::uninit(); INLINE_RESULT_UNITS];
    let mut heap = Wiped(Vec::<u16>::new());
    let units: &mut [u16] = if utf8.len() <= INLINE_RESULT_UNITS && utf8.is_ascii() {
        for (slot, &b) in inline.iter_mut().zip(utf8) {
            *slot = MaybeUninit::new(u16::from(b));
        }
        // SAFETY: the first `utf8.len()` elements were written just above.
        unsafe { std::slice::from_raw_parts_mut(inline.as_mut_ptr().cast::<u16>(), utf8.len()) }
    } else {
        let text = std::str::from_utf8(utf8)
            .map_err(|_| Error::invalid("the value is not valid UTF-8 text"))?;
        // Reserve once (n UTF-8 bytes make at most n UTF-16 units) so that no reallocation
        // leaves an unzeroized copy behind.
        heap.0.reserve_exact(text.len());
        heap.0.extend(text.encode_utf16());
        &mut heap.0[..]
    };
    let raw = raw_jni!(env, NewString, units.as_ptr(), units.len() as jsize);
    units.zeroize();
    if raw.is_null() {
        // NewString returns null only with an exception (OutOfMemoryError) pending.
        check(env)?;
        return Err(Error::internal("NewString returned null").into());
    }
    // SAFETY: a fresh local reference to a java.lang.String in the current frame.
    Ok(unsafe { JString::from_raw(env, raw) })
}

/// A new Java `byte[]` holding `bytes`.
pub(in crate::jni) fn new_bytes<'local>(
    env: &mut Env<'local>,
    bytes: &[u8],
) -> BridgeResult<JByteArray<'local>> {
    Ok(env.byte_array_from_slice(bytes)?)
}

/// A metadata result in wire form (decoded by `org.tbsecrets.internal.Wire`), as a new
/// `byte[]`: `wire(env, |w| w.page(&page))`.
pub(in crate::jni) fn wire<'local>(
    env: &mut Env<'local>,
    encode: impl FnOnce(&mut Wire) -> &mut Wire,
) -> BridgeResult<JByteArray<'local>> {
    new_bytes(env, &encode(&mut Wire::default()).take())
}

/// One `SecretInfo` in wire form.
pub(in crate::jni) fn info_result<'local>(
    env: &mut Env<'local>,
    info: &SecretInfo,
) -> BridgeResult<JByteArray<'local>> {
    wire(env, |w| w.info(info))
}

/// A count as a Java `int` (saturating: no store holds more than `i32::MAX` of anything).
pub(in crate::jni) fn count(n: usize) -> jint {
    jint::try_from(n).unwrap_or(jint::MAX)
}
