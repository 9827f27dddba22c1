//! The JNI error policy, written once: a store error becomes the `SecretStorageException`
//! subclass of its code, a failed JNI call or a panic an `InternalException`, and nothing
//! unwinds into or aborts the JVM.

use crate::error::{Error, ErrorCode};
use ::jni::errors::{Error as JniError, ErrorPolicy};
use ::jni::objects::{JObject, JThrowable};
use ::jni::{jni_sig, jni_str, Env, JValue};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What an export's body can fail with: a store error (thrown as the matching
/// `SecretStorageException`) or a failed JNI call (usually with a Java exception pending).
#[derive(Debug)]
pub(in crate::jni) enum BridgeError {
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
pub(in crate::jni) type BridgeResult<T> = Result<T, BridgeError>;

/// An INVALID_ARGUMENT error (for the argument decoders).
pub(super) fn invalid(message: String) -> BridgeError {
    Error::invalid(message).into()
}

/// Returns `Err(Jni(JavaException))` when the last JNI call left an exception pending.
pub(super) fn check(env: &Env<'_>) -> BridgeResult<()> {
    if env.exception_check() {
        Err(BridgeError::Jni(JniError::JavaException))
    } else {
        Ok(())
    }
}

/// Throws a typed `org.tbsecrets.SecretStorageException` (built by the Java factory
/// `Native.newException`, so the code → class mapping lives in one place) for an error, and an
/// `InternalException` for a panic. A Java exception that is already pending wins.
pub(in crate::jni) struct ThrowSecretStorageException;

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

/// The boundary of the hot path (`getSecretInto`, `getBytesInto`), whose body makes no JNI
/// call: `body` runs under a panic guard of its own, without the attach guard that
/// `EnvUnowned::with_env` builds and drops on every call (about 40 ns of a 700-ns call in a
/// profile of the JMH loop). Only when the JVM is needed does the call enter `with_env`, under
/// the same policy as every export: `body` failed (the typed exception), panicked (an
/// `InternalException`), or returned `Some(result)` for `finish` to make into a Java object.
/// `Ok(None)` — done, nothing to make — returns the default (`null`) at once.
pub(in crate::jni) fn without_env<'local, R, T: Default + 'local>(
    mut env: ::jni::EnvUnowned<'local>,
    body: impl FnOnce() -> BridgeResult<Option<R>>,
    finish: impl FnOnce(&mut Env<'local>, R) -> BridgeResult<T>,
) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(None)) => T::default(),
        outcome => env
            .with_env(move |env| match outcome {
                Ok(Ok(Some(result))) => finish(env, result),
                Ok(Ok(None)) => Ok(T::default()),
                Ok(Err(err)) => Err(err),
                // Raised again inside `with_env`, whose guard hands it to the policy.
                Err(payload) => std::panic::resume_unwind(payload),
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
            let wire = crate::jni::wire::Wire::default().problems(problems).take();
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
