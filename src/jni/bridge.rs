//! The plumbing every export shares: the error type and the [`ErrorPolicy`] that turns errors
//! and panics into typed Java exceptions, the store and session handles, and cheap argument and
//! result conversions.
//!
//! A JNI function that can throw is followed by an exception check before the next JNI call;
//! calls that cannot throw (such as reading a whole string) skip it, as each check is itself a
//! JNI call. The `getSecret` hot path makes no JNI call at all (see [`call_buffer`]).

use crate::access::Actor;
use crate::error::{Error, ErrorCode};
use crate::service::{SecretStorage, Session};
use ::jni::errors::{Error as JniError, ErrorPolicy};
use ::jni::objects::{JByteArray, JByteBuffer, JObject, JString, JThrowable};
use ::jni::sys::{jchar, jint, jlong, jsize};
use ::jni::{jni_sig, jni_str, Env, JValue};
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use zeroize::{DefaultIsZeroes, Zeroize};

/// Calls a raw JNI function (all those used here exist since JNI 1.2).
macro_rules! raw_jni {
    ($env:expr, $name:ident $(, $arg:expr)*) => {{
        let raw: *mut ::jni::sys::JNIEnv = $env.get_raw();
        // SAFETY: `raw` is the valid environment pointer of the current native call.
        unsafe { ((**raw).v1_2.$name)(raw $(, $arg)*) }
    }};
}

/// What an export's body can fail with: a store error (thrown as the matching
/// `SecretStorageException`) or a failed JNI call (usually with a Java exception pending).
#[derive(Debug)]
pub(super) enum BridgeError {
    /// An error of the store, with its stable code.
    Store(Error),
    /// A JNI call failed.
    Jni(JniError),
}

impl From<Error> for BridgeError {
    fn from(err: Error) -> Self {
        BridgeError::Store(err)
    }
}

impl From<JniError> for BridgeError {
    fn from(err: JniError) -> Self {
        BridgeError::Jni(err)
    }
}

/// The result type of every export's body.
pub(super) type BridgeResult<T> = Result<T, BridgeError>;

/// Throws a typed `org.tbsecrets.SecretStorageException` (built by the Java factory
/// `Native.newException`, so the code → class mapping lives in one place) for an error, and an
/// `InternalException` for a panic. A Java exception that is already pending wins.
pub(super) struct ThrowSecretStorageException;

impl<T: Default> ErrorPolicy<T, BridgeError> for ThrowSecretStorageException {
    type Captures<'unowned_env_local: 'native_method, 'native_method> = ();

    fn on_error<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _captures: &mut (),
        err: BridgeError,
    ) -> ::jni::errors::Result<T> {
        if !env.exception_check() {
            match err {
                BridgeError::Store(err) => throw(env, err.code(), err.message(), err.problems()),
                BridgeError::Jni(err) => throw(
                    env,
                    ErrorCode::Internal,
                    &format!("JNI call failed: {err}"),
                    &[],
                ),
            }
        }
        Ok(T::default())
    }

    fn on_panic<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _captures: &mut (),
        payload: Box<dyn std::any::Any + Send + 'static>,
    ) -> ::jni::errors::Result<T> {
        let message = match (
            payload.downcast_ref::<&'static str>(),
            payload.downcast_ref::<String>(),
        ) {
            (Some(s), _) => format!("panic in tbsecrets native code: {s}"),
            (None, Some(s)) => format!("panic in tbsecrets native code: {s}"),
            (None, None) => "panic in tbsecrets native code".to_owned(),
        };
        // Dropping a payload can itself panic: never let that unwind into the JVM, and leak the
        // second payload rather than risk the same again.
        if let Err(second) = catch_unwind(AssertUnwindSafe(|| drop(payload))) {
            std::mem::forget(second);
        }
        if !env.exception_check() {
            throw(env, ErrorCode::Internal, &message, &[]);
        }
        Ok(T::default())
    }
}

/// `outcome.resolve::<ThrowSecretStorageException>()` for the hot path: the same policy maps a
/// failure, but success returns at once, without the second attach guard that
/// `EnvOutcome::resolve` builds even when there is nothing to map (about 30 ns a call).
pub(super) fn resolve_fast<'local, T: Default + 'local>(
    env: &mut ::jni::EnvUnowned<'local>,
    outcome: ::jni::EnvOutcome<'local, T, BridgeError>,
) -> T {
    match outcome.into_outcome() {
        ::jni::Outcome::Ok(value) => value,
        failed => env
            .with_env(move |env| -> BridgeResult<T> {
                type Policy = ThrowSecretStorageException;
                Ok(match failed {
                    ::jni::Outcome::Err(err) => {
                        <Policy as ErrorPolicy<T, BridgeError>>::on_error(env, &mut (), err)?
                    }
                    ::jni::Outcome::Panic(payload) => {
                        <Policy as ErrorPolicy<T, BridgeError>>::on_panic(env, &mut (), payload)?
                    }
                    ::jni::Outcome::Ok(value) => value,
                })
            })
            .resolve::<ThrowSecretStorageException>(),
    }
}

/// Throws the exception for `code`, falling back to a plain `RuntimeException` if the factory
/// cannot be called; a Java exception is pending afterwards in every case.
fn throw(
    env: &mut Env<'_>,
    code: ErrorCode,
    message: &str,
    problems: &[crate::PlaceholderProblem],
) {
    let result = env.with_local_frame(8, |env| -> ::jni::errors::Result<()> {
        let class = env.find_class(jni_str!("org/tbsecrets/internal/Native"))?;
        let jmessage = env.new_string(message)?;
        let jproblems = if problems.is_empty() {
            JObject::null()
        } else {
            let wire = super::wire::Wire::default().problems(problems).take();
            JObject::from(env.byte_array_from_slice(&wire)?)
        };
        let exception = env
            .call_static_method(
                &class,
                jni_str!("newException"),
                jni_sig!("(ILjava/lang/String;[B)Ljava/lang/Throwable;"),
                &[
                    JValue::Int(code.as_i32()),
                    JValue::Object(&jmessage),
                    JValue::Object(&jproblems),
                ],
            )?
            .l()?;
        let exception = env.cast_local::<JThrowable>(exception)?;
        env.throw(exception)
    });
    if !env.exception_check() {
        let detail = match result {
            Err(err) => format!("{code}: {message} (and building its exception failed: {err})"),
            Ok(()) => format!("{code}: {message}"),
        };
        let _ = env.throw_new(
            jni_str!("java/lang/RuntimeException"),
            ::jni::strings::JNIString::new(detail),
        );
    }
}

/// What a Java `long` handle points to: a store shared by the store handle and its session
/// handles, and who acts through this handle (`Host` for the handle `open` returns, a principal
/// for one `openSession` returns).
pub(super) struct Handle {
    /// The store; the last handle to go drops it.
    pub(super) storage: Arc<SecretStorage>,
    /// Who acts: every operation runs through `storage.acting(&actor)`.
    pub(super) actor: Actor,
}

impl Handle {
    /// The store as this handle's actor sees it (no allocation: the actor is borrowed).
    #[inline]
    pub(super) fn session(&self) -> Session<'_> {
        self.storage.acting(&self.actor)
    }
}

/// Boxes a handle into the `long` Java keeps.
pub(super) fn into_handle(storage: Arc<SecretStorage>, actor: Actor) -> jlong {
    Box::into_raw(Box::new(Handle { storage, actor })) as jlong
}

/// The handle behind a `long`.
///
/// # Safety
/// `handle` must be 0 or a value returned by [`into_handle`] that [`take_handle`] has not
/// consumed, and must stay so for `'a`. The Java class `org.tbsecrets.internal.NativeHandle`
/// guarantees it: every call holds its read lock (a session's call holds its store's too), and
/// close takes the write lock, so a handle is never freed while a call uses it.
#[inline]
pub(super) unsafe fn handle_ref<'a>(handle: jlong) -> BridgeResult<&'a Handle> {
    let ptr = handle as *const Handle;
    if ptr.is_null() {
        return Err(Error::new(ErrorCode::Closed, "the store handle is closed").into());
    }
    // SAFETY: non-null, and live for 'a by the caller's contract.
    Ok(unsafe { &*ptr })
}

/// Takes back ownership of a handle (0 gives `None`).
///
/// # Safety
/// As for [`handle_ref`], and no call may use the handle afterwards.
pub(super) unsafe fn take_handle(handle: jlong) -> Option<Box<Handle>> {
    let ptr = handle as *mut Handle;
    // SAFETY: produced by `Box::into_raw` in `into_handle` and not yet taken back.
    (!ptr.is_null()).then(|| unsafe { Box::from_raw(ptr) })
}

/// Returns `Err(Jni(JavaException))` when the last JNI call left an exception pending.
fn check(env: &Env<'_>) -> BridgeResult<()> {
    if env.exception_check() {
        Err(BridgeError::Jni(JniError::JavaException))
    } else {
        Ok(())
    }
}

fn null_argument(what: &str) -> BridgeError {
    Error::invalid(format!("{what} must not be null")).into()
}

/// UTF-16 units read into the stack; longer strings go to the heap.
const INLINE_UNITS: usize = 256;

/// A Java `String` argument as UTF-8, converted without a heap allocation for strings of up to
/// 256 UTF-16 units (every tenant id and typical secret names).
pub(super) struct StrArg {
    inline: [MaybeUninit<u8>; INLINE_UNITS * 3],
    heap: String,
}

impl StrArg {
    /// An empty argument buffer.
    pub(super) fn new() -> Self {
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
    pub(super) fn read<'a>(
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
    pub(super) fn read_opt<'a>(
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
pub(super) struct TenantName {
    tenant: StrArg,
    name: StrArg,
}

impl TenantName {
    /// Empty argument buffers.
    pub(super) fn new() -> Self {
        TenantName {
            tenant: StrArg::new(),
            name: StrArg::new(),
        }
    }

    /// Reads both strings (see [`StrArg::read`]).
    pub(super) fn read<'a>(
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

/// A buffer that is wiped when dropped, in one bulk pass. (`Zeroizing<Vec<_>>` wipes element by
/// element, which costs milliseconds on a resolved 10 MiB document.)
pub(super) struct Wiped<E: DefaultIsZeroes>(pub(super) Vec<E>);

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

/// Copies a Java `byte[]` into a wiped buffer (for values and keys).
pub(super) fn secret_bytes(
    env: &Env<'_>,
    array: &JByteArray<'_>,
    what: &str,
) -> BridgeResult<Wiped<u8>> {
    secret_bytes_checked(env, array, what, |_| Ok(()))
}

/// [`secret_bytes`] with `check(len)` run on the array's length before a byte is copied
/// (a value over the store's limits costs no copy).
pub(super) fn secret_bytes_checked(
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
pub(super) fn document_bytes(
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
pub(super) unsafe fn call_buffer<'a>(address: jlong, capacity: jint) -> BridgeResult<&'a mut [u8]> {
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
pub(super) fn buffer_str<'a>(
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
pub(super) unsafe fn direct_bytes<'a>(
    env: &Env<'_>,
    buffer: &JByteBuffer<'_>,
    offset: i32,
    len: i32,
) -> BridgeResult<&'a [u8]> {
    if buffer.is_null() {
        return Err(null_argument("document"));
    }
    let address = env
        .get_direct_buffer_address(buffer)
        .map_err(|_| Error::invalid("the ByteBuffer is not a direct buffer"))?;
    let capacity = env.get_direct_buffer_capacity(buffer)?;
    let (start, count) = checked_range(offset, len, capacity)?;
    if count == 0 {
        return Ok(&[]);
    }
    // SAFETY: [start, start + count) lies inside the buffer's capacity; liveness per contract.
    Ok(unsafe { std::slice::from_raw_parts(address.add(start), count) })
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

/// UTF-16 units built on the stack for a result string.
const INLINE_RESULT_UNITS: usize = 512;

/// A new Java `String` holding the UTF-8 text `utf8`, built from UTF-16 (`NewString`) so that
/// any Unicode text, NUL and supplementary characters included, round-trips exactly. ASCII is
/// widened without decoding; the UTF-16 copy is zeroized.
pub(super) fn new_string<'local>(
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
pub(super) fn new_bytes<'local>(
    env: &mut Env<'local>,
    bytes: &[u8],
) -> BridgeResult<JByteArray<'local>> {
    Ok(env.byte_array_from_slice(bytes)?)
}
