//! JNI exports that read a value: `getSecret`, the hot paths `getSecretInto` and
//! `getBytesInto` through the call buffer, and `getSecretBytes`.

use super::bridge::{
    buffer_str, call_buffer, export, handle_ref, new_bytes, new_string, without_env, BridgeError,
    BridgeResult, TenantName,
};
use crate::error::{Error, ErrorCode};
use crate::model::SecretType;
use ::jni::objects::{JByteArray, JByteBuffer, JClass, JObject, JString};
use ::jni::sys::{jint, jlong};
use ::jni::{jni_mangle, EnvUnowned};

export! {
    /// The current value of a TEXT secret as a Java `String`. The decrypted bytes are zeroized
    /// once the string is built.
    fn get_secret(env, h; tenant: JString<'local>, name: JString<'local>) -> JString<'local> {
        let mut args = TenantName::new();
        let (tenant, name) = args.read(env, &tenant, &name)?;
        let value = text_value(h.session().get(tenant, name)?, name)?;
        new_string(env, value.as_bytes())
    }

    /// The current value of a secret of either type as a new `byte[]`.
    fn get_secret_bytes(env, h; tenant: JString<'local>, name: JString<'local>)
        -> JByteArray<'local>
    {
        let mut args = TenantName::new();
        let (tenant, name) = args.read(env, &tenant, &name)?;
        new_bytes(env, h.session().get(tenant, name)?.as_bytes())
    }

    /// The address of a direct `ByteBuffer` (for `CallBuffer`).
    fn direct_buffer_address(env; buffer: JByteBuffer<'local>) -> jlong {
        if buffer.is_null() {
            return Err(Error::invalid("buffer must not be null").into());
        }
        let address = env
            .get_direct_buffer_address(&buffer)
            .map_err(|_| Error::invalid("the ByteBuffer is not a direct buffer"))?;
        Ok(address as jlong)
    }
}

/// The hot path, [`get_secret`] without JNI calls: the tenant id and name (ASCII) are read from
/// the calling thread's call buffer at `address` (`tenant_len` bytes, then `name_len` bytes),
/// and the value is written over them: its length (`i32`, native byte order) at offset 0, its
/// UTF-8 bytes from offset 4; the result is then `null`. A value too long for the buffer is
/// returned as a `String` instead (the only JNI call, and a rare one). Written out rather than
/// declared with `export!`: a value that fits skips jni-rs's attach guard (`without_env`).
#[allow(clippy::too_many_arguments)]
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn get_secret_into<'local>(
    env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    address: jlong,
    capacity: jint,
    tenant_len: jint,
    name_len: jint,
) -> JObject<'local> {
    value_into(env, handle, address, capacity, tenant_len, name_len, true)
}

/// [`get_secret_into`] for a secret of either type (`PreparedSecret.getBytes`): the same call
/// buffer protocol; a value too long for the buffer is returned as a new `byte[]`.
#[allow(clippy::too_many_arguments)]
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn get_bytes_into<'local>(
    env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    address: jlong,
    capacity: jint,
    tenant_len: jint,
    name_len: jint,
) -> JObject<'local> {
    value_into(env, handle, address, capacity, tenant_len, name_len, false)
}

/// The body of both call-buffer reads: `text_only` refuses a TEXT_FILE value (TYPE_MISMATCH)
/// and returns a value too long for the buffer as a `String` (else as a `byte[]`). A value that
/// fits makes no JNI call and does not enter jni-rs's attach guard (`without_env`).
#[inline(always)]
fn value_into<'local>(
    env: EnvUnowned<'local>,
    handle: jlong,
    address: jlong,
    capacity: jint,
    tenant_len: jint,
    name_len: jint,
    text_only: bool,
) -> JObject<'local> {
    without_env(
        env,
        || {
            // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
            let store = unsafe { handle_ref(handle) }?.session();
            // SAFETY: `address` is this thread's call buffer of `capacity` bytes (see `call_buffer`).
            let buffer = unsafe { call_buffer(address, capacity) }?;
            let value = {
                let tenant = buffer_str(buffer, 0, tenant_len, "tenantId")?;
                let name = buffer_str(buffer, tenant.len(), name_len, "name")?;
                let value = store.get(tenant, name)?;
                if text_only {
                    text_value(value, name)?
                } else {
                    value
                }
            };
            let bytes = value.as_bytes();
            match (
                i32::try_from(bytes.len()),
                buffer.get_mut(..bytes.len() + 4),
            ) {
                (Ok(len), Some(out)) => {
                    out[..4].copy_from_slice(&len.to_ne_bytes());
                    out[4..].copy_from_slice(bytes);
                    Ok(None)
                }
                _ => Ok(Some(value)),
            }
        },
        |env, too_long| -> BridgeResult<JObject<'local>> {
            let bytes = too_long.as_bytes();
            Ok(if text_only {
                new_string(env, bytes)?.into()
            } else {
                new_bytes(env, bytes)?.into()
            })
        },
    )
}

/// `value` if it is a TEXT secret's; TYPE_MISMATCH otherwise (`getSecret` reads TEXT only).
#[inline]
fn text_value(value: crate::SecretValue, name: &str) -> BridgeResult<crate::SecretValue> {
    if value.secret_type() == SecretType::Text {
        return Ok(value);
    }
    Err(BridgeError::from(Error::new(
        ErrorCode::TypeMismatch,
        format!(
            "secret '{name}' is {}; getSecret reads TEXT secrets (use getSecretBytes)",
            value.secret_type()
        ),
    )))
}
