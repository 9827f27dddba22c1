//! The glue every export shares, written once:
//!
//! - [`export!`]: declares exports from a one-line signature; it writes the `extern "system"`
//!   function with its `#[jni_mangle]` name, runs the body under the error policy and looks up
//!   the handle (`error.rs`, `handle.rs`);
//! - argument decoders (`args.rs`): strings read on the stack, bounded secret bytes,
//!   documents, the hot path's call buffer, scalar arguments;
//! - result encoders (`results.rs`): Java strings and arrays, wire-encoded metadata.
//!
//! A JNI function that can throw is followed by an exception check before the next JNI call;
//! calls that cannot throw (such as reading a whole string) skip it, as each check is itself a
//! JNI call. The `getSecret` hot path makes no JNI call at all (see [`call_buffer`]).

/// Calls a raw JNI function (all those used here exist since JNI 1.2).
macro_rules! raw_jni {
    ($env:expr, $name:ident $(, $arg:expr)*) => {{
        let raw: *mut ::jni::sys::JNIEnv = $env.get_raw();
        // SAFETY: `raw` is the valid environment pointer of the current native call.
        unsafe { ((**raw).v1_2.$name)(raw $(, $arg)*) }
    }};
}

pub(super) mod args;
mod error;
mod handle;
mod results;

pub(super) use args::*;
pub(super) use error::{without_env, BridgeError, BridgeResult, ThrowSecretStorageException};
pub(super) use handle::{handle_ref, into_handle, take_handle};
pub(super) use results::{count, info_result, new_bytes, new_string, wire, Wiped};

/// Declares native methods of `org.tbsecrets.internal.Native`, each from a signature and a
/// body:
///
/// ```ignore
/// export! {
///     /// Forgets a source's references; returns how many were removed.
///     fn untrack(env, h; tenant: JString<'local>, source_id: JString<'local>) -> jint {
///         let (mut t, mut s) = (StrArg::new(), StrArg::new());
///         let tenant = t.read(env, &tenant, TENANT)?;
///         let source_id = s.read(env, &source_id, "sourceId")?;
///         Ok(count(h.session().untrack(tenant, source_id)?))
///     }
/// }
/// ```
///
/// Before the `;`: the name the body gives the `&mut Env`, then, for a method that takes a
/// store handle (a Java `long`, the first parameter after the class), the name it gives the
/// `&Handle` looked up from it (a closed handle is CLOSED). After the `;`: the other Java
/// parameters; `-> ()` for a `void` method. The body returns `BridgeResult<ret>`; an error or
/// a panic becomes the typed Java exception (`ThrowSecretStorageException`), and the method
/// then returns the default (`null`, 0).
macro_rules! export {
    ($(
        $(#[$attr:meta])*
        fn $name:ident($env:ident $(, $h:ident)?; $($arg:ident: $ty:ty),* $(,)?) -> $ret:ty
        $body:block
    )*) => {$(
        $(#[$attr])*
        #[allow(clippy::too_many_arguments, clippy::unused_unit)]
        #[::jni::jni_mangle("org.tbsecrets.internal.Native")]
        pub extern "system" fn $name<'local>(
            mut $env: ::jni::EnvUnowned<'local>,
            _class: ::jni::objects::JClass<'local>,
            $($h: ::jni::sys::jlong,)?
            $($arg: $ty),*
        ) -> $ret {
            $env.with_env(|$env| -> $crate::jni::bridge::BridgeResult<$ret> {
                // SAFETY: Java keeps the handle live during the call (see `handle_ref`).
                $(let $h = unsafe { $crate::jni::bridge::handle_ref($h) }?;)?
                $body
            })
            .resolve::<$crate::jni::bridge::ThrowSecretStorageException>()
        }
    )*};
}
pub(super) use export;

/// How exports name the tenant argument in errors (its Java name).
pub(super) const TENANT: &str = "tenantId";
