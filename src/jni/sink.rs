//! The audit sink that hands every record to a Java `org.tbsecrets.AuditListener`.
//!
//! The store calls a sink on the thread that made the store call, outside the log's locks:
//! from a native method that thread is attached already (attaching is then a thread-local
//! check), and any other thread is attached for good on first use. Each record is delivered in
//! its own local frame, so a call that writes many records leaves no local references behind.
//! A pending Java exception is stashed across the call and thrown again afterwards, and an
//! exception thrown by the listener is caught, cleared and ignored: nothing propagates into the
//! store, and no panic leaves this module.

use crate::audit::AuditSink;
use ::jni::objects::{Global, JObject};
use ::jni::{jni_sig, jni_str, Env, JValue, JavaVM};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Calls `listener.onRecord(String)` for every audit record.
pub(super) struct JavaAuditSink {
    vm: JavaVM,
    listener: Global<JObject<'static>>,
}

impl JavaAuditSink {
    /// A sink over a non-null `AuditListener` (held by a global reference until the store is
    /// dropped).
    pub(super) fn new(env: &Env<'_>, listener: &JObject<'_>) -> ::jni::errors::Result<Self> {
        Ok(JavaAuditSink {
            vm: env.get_java_vm()?,
            listener: env.new_global_ref(listener)?,
        })
    }
}

impl AuditSink for JavaAuditSink {
    fn record(&self, line: &str) {
        let delivered = catch_unwind(AssertUnwindSafe(|| {
            // Errors (the listener threw: caught and cleared by the attachment; or a JNI
            // failure) are ignored: a listener never fails a store call.
            let _ = self
                .vm
                .attach_current_thread(|env| -> ::jni::errors::Result<()> {
                    let text = env.new_string(line)?;
                    let called = env.call_method(
                        &self.listener,
                        jni_str!("onRecord"),
                        jni_sig!("(Ljava/lang/String;)V"),
                        &[JValue::Object(&text)],
                    );
                    // Cleared here, inside the attachment's local frame: letting the
                    // attachment catch it would build its description from local references
                    // in the caller's frame, which a busy native call would pile up.
                    if env.exception_check() {
                        env.exception_clear();
                    }
                    called.map(drop)
                });
        }));
        if let Err(payload) = delivered {
            // Dropping a panic payload can itself panic: leak it instead.
            std::mem::forget(payload);
        }
    }
}
