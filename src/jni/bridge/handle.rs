//! The store and session handles: what a Java `long` handle points to.

use super::error::BridgeResult;
use crate::access::Actor;
use crate::error::{Error, ErrorCode};
use crate::service::{SecretStorage, Session};
use ::jni::sys::jlong;
use std::sync::Arc;

/// What a Java `long` handle points to: a store shared by the store handle and its session
/// handles, and who acts through this handle (`Host` for the handle `open` returns, a principal
/// for one `openSession` returns).
pub(in crate::jni) struct Handle {
    /// The store; the last handle to go drops it.
    pub(in crate::jni) storage: Arc<SecretStorage>,
    /// Who acts: every operation runs through `storage.acting(&actor)`.
    pub(in crate::jni) actor: Actor,
}

impl Handle {
    /// The store as this handle's actor sees it (no allocation: the actor is borrowed).
    #[inline]
    pub(in crate::jni) fn session(&self) -> Session<'_> {
        self.storage.acting(&self.actor)
    }
}

/// Boxes a handle into the `long` Java keeps.
pub(in crate::jni) fn into_handle(storage: Arc<SecretStorage>, actor: Actor) -> jlong {
    Box::into_raw(Box::new(Handle { storage, actor })) as jlong
}

/// The handle behind a `long` (the [`export!`](super::export) macro looks it up for every
/// export that takes one).
///
/// # Safety
/// `handle` must be 0 or a value returned by [`into_handle`] that [`take_handle`] has not
/// consumed, and must stay so for `'a`. The Java class `org.tbsecrets.internal.NativeHandle`
/// guarantees it: every call holds its read lock (a session's call holds its store's too), and
/// close takes the write lock, so a handle is never freed while a call uses it.
#[inline]
pub(in crate::jni) unsafe fn handle_ref<'a>(handle: jlong) -> BridgeResult<&'a Handle> {
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
pub(in crate::jni) unsafe fn take_handle(handle: jlong) -> Option<Box<Handle>> {
    let ptr = handle as *mut Handle;
    // SAFETY: produced by `Box::into_raw` in `into_handle` and not yet taken back.
    (!ptr.is_null()).then(|| unsafe { Box::from_raw(ptr) })
}
