//! JNI bindings: the native methods of the Java class `org.tbsecrets.internal.Native`
//! (docs/JAVA.md).
//!
//! Each export is declared with `bridge::export!` (a signature and a body of a few lines over
//! one [`SecretStorage`](crate::SecretStorage) call: no business rule lives here); the macro
//! writes the boundary once: the handle lookup and the error policy, under which a store error
//! becomes the `SecretStorageException` subclass of its code, a panic an `InternalException`,
//! and nothing unwinds into or aborts the JVM. (The hot path `getSecretInto` resolves its
//! outcome with the same policy through `bridge::without_env`, which enters jni-rs's attach
//! guard only when it needs the JVM: for an error, a panic or a value too long for the buffer.)
//!
//! Conventions shared with the Java side:
//! - a handle is a `long`: a pointer to a boxed `bridge::Handle` (the shared store and who
//!   acts: the host for the handle `open` returns, a principal for one `openSession` returns),
//!   valid until `close` / `closeSession`; Java's `NativeHandle` lifecycle locks keep it alive
//!   during every call, and every operation runs through `storage.acting(&actor)`, which
//!   checks the policy and audits;
//! - tenant ids, names, descriptions and source ids are Java `String`s, converted from UTF-16
//!   on the stack (an unpaired surrogate is INVALID_ARGUMENT);
//! - documents are UTF-8 `byte[]` (or a direct `ByteBuffer`) with an offset and a length, and
//!   a resolve result of `null` means "unchanged: use the input";
//! - values are `byte[]`, copied into zeroizing buffers; results that are not values are
//!   encoded by [`wire`] and decoded by `org.tbsecrets.internal.Wire`;
//! - the hot path (`getSecretInto`) makes no JNI call at all: arguments and result travel
//!   through the calling thread's direct call buffer, and Java builds the `String`.
//!
//! The exports are grouped by concern: `lifecycle.rs` (open, sessions, close), `secrets.rs`
//! (create, update, delete, info, list, history, rollback), `get.rs` (reading a value),
//! `resolve.rs` (documents and the reference index), `admin.rs` (usage, rotation, audit log),
//! `scoped.rs` (allow-listed sessions, per-message names), `provider.rs` (host key providers),
//! `key_provider.rs` (key providers by spec, forgetting keys); this file keeps the version
//! check and the panic test hook.

mod admin;
mod bridge;
mod bundle;
mod get;
mod key_provider;
mod lifecycle;
mod provider;
mod resolve;
mod scoped;
mod secrets;
mod sink;
mod wire;

use ::jni::objects::JString;
use bridge::{export, new_string};

export! {
    /// The native library's crate version, which the Java loader checks against its own.
    fn native_version(env;) -> JString<'local> {
        new_string(env, env!("CARGO_PKG_VERSION").as_bytes())
    }

    /// Panics on purpose, so the test suite can prove that a Rust panic reaches Java as an
    /// `InternalException` and never aborts the JVM.
    fn panic_for_test(_env;) -> () {
        panic!("deliberate panic requested by Native.panicForTest");
    }
}
