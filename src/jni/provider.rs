//! Host key providers in Java: an `org.tbsecrets.KeyProvider` (a KMS client, an HSM API)
//! holds the master key and wraps and unwraps data keys, adapted to the core's
//! [`KeyWrapper`] (wrapped blob format, docs/FORMATS.md).
//!
//! The provider is held by a global reference, released when the store drops it (closed, or
//! rotated to another provider). The core calls it on the thread of the store call: from a
//! native method that thread is attached already, any other thread is attached for good on
//! first use. Each call runs in its own local frame. An exception it throws is caught and
//! cleared: it becomes KEY_UNAVAILABLE with the exception's class and message (never bytes),
//! except an `org.tbsecrets.IntegrityException`, `WrongMasterKeyException` or
//! `javax.crypto.AEADBadTagException` from `unwrap` (the bytes are not its own: another key),
//! which is INTEGRITY (WRONG_MASTER_KEY when opening). The arrays the library creates for a
//! data key (`wrap`'s plaintext) and the array `unwrap` returns are zeroed after the call.

use crate::error::{Error, ErrorCode, Result};
use crate::{KeyProvider, KeyWrapper, WrapperProvider};
use ::jni::objects::{Global, JByteArray, JObject, JString};
use ::jni::{jni_sig, jni_str, Env, JValue, JavaVM};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Exception classes that mean "not my bytes" when `unwrap` throws them.
const NOT_ITS_OWN: [&str; 3] = [
    "org.tbsecrets.IntegrityException",
    "org.tbsecrets.WrongMasterKeyException",
    "javax.crypto.AEADBadTagException",
];

/// A Java `KeyProvider` holding the master key.
struct JavaKeyWrapper {
    vm: JavaVM,
    provider: Global<JObject<'static>>,
    description: String,
}

/// How one provider call ended, decided inside the JVM attachment.
enum Called {
    /// The bytes it returned.
    Returned(Zeroizing<Vec<u8>>),
    /// It threw: the exception's class name and message.
    Threw(String, String),
}

/// The core key provider for a non-null `org.tbsecrets.KeyProvider`; its description is
/// `provider.description()`, read now. A JNI failure (e.g. `description()` threw, the
/// exception left pending for the caller) is returned as is.
pub(super) fn key_provider_from_java(
    env: &mut Env<'_>,
    provider: &JObject<'_>,
) -> ::jni::errors::Result<Arc<dyn KeyProvider>> {
    let description = env
        .call_method(
            provider,
            jni_str!("description"),
            jni_sig!("()Ljava/lang/String;"),
            &[],
        )?
        .l()?;
    let description = if description.is_null() {
        "java key provider".to_owned()
    } else {
        env.cast_local::<JString>(description)?.try_to_string(env)?
    };
    Ok(Arc::new(WrapperProvider::new(JavaKeyWrapper {
        vm: env.get_java_vm()?,
        provider: env.new_global_ref(provider)?,
        description,
    })))
}

impl JavaKeyWrapper {
    /// Calls `provider.<method>(aad, input)`; `input_is_key`: `input` is a data key (zero the
    /// Java copy afterwards), else the result is (zero the returned array after copying it).
    fn call(
        &self,
        method: &str,
        aad: &[u8],
        input: &[u8],
        input_is_key: bool,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let called = catch_unwind(AssertUnwindSafe(|| {
            self.vm
                .attach_current_thread(|env| -> ::jni::errors::Result<Called> {
                    env.with_local_frame(8, |env| {
                        self.call_in_frame(env, method, aad, input, input_is_key)
                    })
                })
        }));
        let failed = |detail: String| {
            Error::new(
                ErrorCode::KeyUnavailable,
                format!(
                    "the key provider ({}) failed to {method}: {detail}",
                    self.description
                ),
            )
        };
        match called {
            Ok(Ok(Called::Returned(bytes))) => Ok(bytes),
            Ok(Ok(Called::Threw(class, message))) => {
                let text = format!(
                    "the key provider ({}) failed to {method}: {class}: {message}",
                    self.description
                );
                if method == "unwrap" && NOT_ITS_OWN.contains(&class.as_str()) {
                    Err(Error::integrity(text))
                } else {
                    Err(Error::new(ErrorCode::KeyUnavailable, text))
                }
            }
            Ok(Err(err)) => Err(failed(format!("JNI call failed: {err}"))),
            Err(payload) => {
                // Dropping a panic payload can itself panic: leak it instead.
                std::mem::forget(payload);
                Err(failed("a panic in the JNI call".to_owned()))
            }
        }
    }

    /// The call itself, in a local frame of an attached thread.
    fn call_in_frame(
        &self,
        env: &mut Env<'_>,
        method: &str,
        aad: &[u8],
        input: &[u8],
        input_is_key: bool,
    ) -> ::jni::errors::Result<Called> {
        let jaad = env.byte_array_from_slice(aad)?;
        let jinput = env.byte_array_from_slice(input)?;
        let name = if method == "wrap" {
            jni_str!("wrap")
        } else {
            jni_str!("unwrap")
        };
        let result = env.call_method(
            &self.provider,
            name,
            jni_sig!("([B[B)[B"),
            &[JValue::Object(&jaad), JValue::Object(&jinput)],
        );
        // The exception first: no other JNI call may run while one is pending.
        let called = if env.exception_check() {
            thrown(env)?
        } else {
            returned_bytes(env, result?.l()?, method, !input_is_key)?
        };
        if input_is_key {
            zero(env, &jinput)?;
        }
        Ok(called)
    }
}

/// The bytes of the array a provider returned (copied; the array zeroed after when
/// `zero_after`, i.e. it holds a key).
fn returned_bytes(
    env: &mut Env<'_>,
    returned: JObject<'_>,
    method: &str,
    zero_after: bool,
) -> ::jni::errors::Result<Called> {
    if returned.is_null() {
        return Ok(Called::Threw(
            "null".to_owned(),
            format!("{method} returned null"),
        ));
    }
    let returned = env.cast_local::<JByteArray>(returned)?;
    let len = returned.len(env)?;
    let mut bytes = Zeroizing::new(vec![0u8; len]);
    // SAFETY: i8 and u8 have the same size and alignment.
    let region: &mut [i8] =
        unsafe { std::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<i8>(), len) };
    returned.get_region(env, 0, region)?;
    if zero_after {
        zero(env, &returned)?;
    }
    Ok(Called::Returned(bytes))
}

/// Overwrites a Java byte array with zeros.
fn zero(env: &Env<'_>, array: &JByteArray<'_>) -> ::jni::errors::Result<()> {
    let zeros = vec![0i8; array.len(env)?];
    array.set_region(env, 0, &zeros)
}

/// Takes the pending exception: its class name and message (cleared, never rethrown).
fn thrown(env: &mut Env<'_>) -> ::jni::errors::Result<Called> {
    let Some(throwable) = env.exception_occurred() else {
        return Ok(Called::Threw("unknown".to_owned(), String::new()));
    };
    env.exception_clear();
    let class = env
        .call_method(
            &throwable,
            jni_str!("getClass"),
            jni_sig!("()Ljava/lang/Class;"),
            &[],
        )?
        .l()?;
    let name = env
        .call_method(
            &class,
            jni_str!("getName"),
            jni_sig!("()Ljava/lang/String;"),
            &[],
        )?
        .l()?;
    let name = env.cast_local::<JString>(name)?.try_to_string(env)?;
    let message = env
        .call_method(
            &throwable,
            jni_str!("getMessage"),
            jni_sig!("()Ljava/lang/String;"),
            &[],
        )?
        .l()?;
    let message = if message.is_null() {
        String::new()
    } else {
        env.cast_local::<JString>(message)?.try_to_string(env)?
    };
    Ok(Called::Threw(name, message))
}

impl KeyWrapper for JavaKeyWrapper {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn wrap(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut wrapped = self.call("wrap", aad, plaintext, true)?;
        Ok(std::mem::take(&mut *wrapped))
    }

    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.call("unwrap", aad, wrapped, false)
    }
}
