//! JNI bindings: the native methods of the Java class `org.tbsecrets.internal.Native`
//! (docs/JAVA.md).
//!
//! Each export is a thin `with_env(..).resolve::<ThrowSecretStorageException>()` wrapper over
//! one [`SecretStorage`] call: no business rule lives here. A store error becomes the
//! `SecretStorageException` subclass of its code, a panic becomes an `InternalException`, and
//! nothing unwinds into or aborts the JVM. (The hot path `getSecretInto` resolves its outcome
//! with the same policy through `bridge::resolve_fast`, which skips jni-rs's second attach guard
//! on success.)
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

mod bridge;
mod sink;
mod wire;

use crate::access::{Actor, Policy, Principal, Role};
use crate::audit::AuditOptions;
use crate::crypto::{read_key_file, MasterKey};
use crate::error::{Error, ErrorCode};
use crate::model::{Limits, ListQuery, SecretType};
use crate::service::{MaterializeOptions, ResolveOptions, SecretStorage, Session, StorageOptions};
use ::jni::objects::{JByteArray, JByteBuffer, JClass, JObject, JString};
use ::jni::sys::{jboolean, jint, jlong};
use ::jni::{jni_mangle, Env, EnvUnowned};
use bridge::{
    buffer_str, call_buffer, direct_bytes, document_bytes, handle_ref, into_handle, new_bytes,
    new_string, secret_bytes, secret_bytes_checked, take_handle, BridgeResult, StrArg, TenantName,
    ThrowSecretStorageException, Wiped,
};
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wire::Wire;

/// Opens a store; returns its (host) handle. `master_key` (32 bytes) wins over `key_file`; with
/// neither, `TBS_MASTER_KEY` then `TBS_MASTER_KEY_FILE` are used. `policy_json` null: the
/// default policy; `audit_path` null: the default log beside the store; `audit_listener`
/// (an `org.tbsecrets.AuditListener`) null: no listener; `materialize_dir` null: materialised
/// files go to a fresh private temporary directory (`keep_materialized` then ignored).
#[allow(clippy::too_many_arguments)]
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn open<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    path: JString<'local>,
    master_key: JByteArray<'local>,
    key_file: JString<'local>,
    max_text_chars: jint,
    max_file_bytes: jint,
    max_versions: jint,
    create_if_missing: jboolean,
    busy_timeout_millis: jlong,
    policy_json: JString<'local>,
    audit_enabled: jboolean,
    audit_path: JString<'local>,
    audit_listener: JObject<'local>,
    materialize_dir: JString<'local>,
    keep_materialized: jboolean,
) -> jlong {
    env.with_env(|env| -> BridgeResult<jlong> {
        let mut path_arg = StrArg::new();
        let path = path_arg.read(env, &path, "store path")?;
        let mut key_file_arg = StrArg::new();
        let key_file = key_file_arg.read_opt(env, &key_file, "key file")?;
        let mut policy_arg = StrArg::new();
        let policy = policy_arg
            .read_opt(env, &policy_json, "policy JSON")?
            .map(Policy::from_json)
            .transpose()?;
        let mut audit_path_arg = StrArg::new();
        let audit_path = audit_path_arg.read_opt(env, &audit_path, "audit log path")?;
        let mut materialize_dir_arg = StrArg::new();
        let materialize = materialize_dir_arg
            .read_opt(env, &materialize_dir, "materialisation directory")?
            .map(|dir| MaterializeOptions {
                dir: dir.into(),
                keep_on_close: keep_materialized,
            });
        let sink = if audit_listener.is_null() {
            None
        } else {
            let sink: Arc<dyn crate::audit::AuditSink> =
                Arc::new(sink::JavaAuditSink::new(env, &audit_listener)?);
            Some(sink)
        };
        let master_key = if !master_key.is_null() {
            Some(MasterKey::from_bytes(&secret_bytes(
                env,
                &master_key,
                "master key",
            )?)?)
        } else if let Some(file) = key_file {
            Some(read_key_file(Path::new(file))?)
        } else {
            None
        };
        let options = StorageOptions {
            master_key,
            limits: Limits {
                max_text_chars: positive(max_text_chars, "maxTextChars")?,
                max_file_bytes: positive(max_file_bytes, "maxFileBytes")?,
            },
            max_versions: u32::try_from(positive(max_versions, "maxVersions")?).unwrap_or(u32::MAX),
            create_if_missing,
            busy_timeout: Duration::from_millis(u64::try_from(busy_timeout_millis).unwrap_or(0)),
            materialize,
            cache_values: true,
            harden_process: false,
            policy,
            audit: AuditOptions {
                enabled: audit_enabled,
                path: audit_path.map(Into::into),
                sink,
                ..AuditOptions::default()
            },
            ..StorageOptions::default()
        };
        let storage = Arc::new(SecretStorage::open(path, options)?);
        Ok(into_handle(storage, Actor::Host))
    })
    .resolve::<ThrowSecretStorageException>()
}

/// A session handle acting as a principal (`role` is `org.tbsecrets.Role#number()`, `id` may
/// be null) over the store of `handle`. Freed by `close_session`.
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn open_session<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    role: jint,
    id: JString<'local>,
) -> jlong {
    env.with_env(|env| -> BridgeResult<jlong> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let parent = unsafe { handle_ref(handle) }?;
        let (mut t, mut i) = (StrArg::new(), StrArg::new());
        let tenant = t.read(env, &tenant, "tenantId")?;
        crate::model::validate_tenant(tenant)?;
        let role = usize::try_from(role)
            .ok()
            .and_then(|r| Role::ALL.get(r).copied())
            .ok_or_else(|| Error::invalid(format!("unknown role {role}")))?;
        let mut principal = Principal::new(tenant, role);
        if let Some(id) = i.read_opt(env, &id, "principal id")? {
            principal = principal.with_id(id);
        }
        Ok(into_handle(
            Arc::clone(&parent.storage),
            Actor::Principal(principal),
        ))
    })
    .resolve::<ThrowSecretStorageException>()
}

/// Frees a session handle (0 is ignored); the store stays open for its other handles.
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn close_session<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
) {
    env.with_env(|_env| -> BridgeResult<()> {
        // SAFETY: Java calls this once, under the session's write lock (no call in flight).
        drop(unsafe { take_handle(handle) });
        Ok(())
    })
    .resolve::<ThrowSecretStorageException>()
}

/// A `SecretInfo` result in wire form.
fn info_result<'local>(
    env: &mut Env<'local>,
    info: &crate::model::SecretInfo,
) -> BridgeResult<JByteArray<'local>> {
    new_bytes(env, &Wire::default().info(info).take())
}

fn positive(value: jint, what: &str) -> BridgeResult<usize> {
    match usize::try_from(value) {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(Error::invalid(format!("{what} must be positive; got {value}")).into()),
    }
}

/// Flushes usage counters, closes the store and frees its handle (0 is ignored). The handle
/// is freed even when flushing fails; the failure is then thrown. Session handles still
/// holding the store get CLOSED until they are freed.
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn close<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
) {
    env.with_env(|_env| -> BridgeResult<()> {
        // SAFETY: Java calls this once, under the handle's write lock (no call in flight).
        if let Some(handle) = unsafe { take_handle(handle) } {
            handle.storage.close()?;
        }
        Ok(())
    })
    .resolve::<ThrowSecretStorageException>()
}

/// Creates a secret; returns its `SecretInfo` (wire form).
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn create<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    name: JString<'local>,
    secret_type: jint,
    value: JByteArray<'local>,
    description: JString<'local>,
) -> JByteArray<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let handle = unsafe { handle_ref(handle) }?;
        let store = handle.session();
        let (mut args, mut d) = (TenantName::new(), StrArg::new());
        let (tenant, name) = args.read(env, &tenant, &name)?;
        let description = d.read(env, &description, "description")?;
        let secret_type = u8::try_from(secret_type)
            .ok()
            .and_then(SecretType::from_u8)
            .ok_or_else(|| Error::invalid(format!("unknown secret type {secret_type}")))?;
        let limits = &handle.storage.options().limits;
        let value = secret_bytes_checked(env, &value, "value", |len| {
            crate::model::check_value_len(len, limits, Some(secret_type))
        })?;
        let info = store.create(tenant, name, secret_type, &value, description)?;
        info_result(env, &info)
    })
    .resolve::<ThrowSecretStorageException>()
}

/// Writes a new version of a value (`expected_version` < 0: no check-and-set).
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn update_value<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    name: JString<'local>,
    value: JByteArray<'local>,
    expected_version: jlong,
) -> JByteArray<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let handle = unsafe { handle_ref(handle) }?;
        let store = handle.session();
        let mut args = TenantName::new();
        let (tenant, name) = args.read(env, &tenant, &name)?;
        let limits = &handle.storage.options().limits;
        let value = secret_bytes_checked(env, &value, "value", |len| {
            crate::model::check_value_len(len, limits, None)
        })?;
        let expected = u64::try_from(expected_version).ok();
        let info = store.update_value(tenant, name, &value, expected)?;
        info_result(env, &info)
    })
    .resolve::<ThrowSecretStorageException>()
}

/// Changes a description; returns the `SecretInfo`.
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn update_description<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    name: JString<'local>,
    description: JString<'local>,
) -> JByteArray<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let handle = unsafe { handle_ref(handle) }?;
        let store = handle.session();
        let (mut args, mut d) = (TenantName::new(), StrArg::new());
        let (tenant, name) = args.read(env, &tenant, &name)?;
        let description = d.read(env, &description, "description")?;
        let info = store.update_description(tenant, name, description)?;
        info_result(env, &info)
    })
    .resolve::<ThrowSecretStorageException>()
}

/// Deletes a secret (with `force`, even while referenced).
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn delete<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    name: JString<'local>,
    force: jboolean,
) {
    env.with_env(|env| -> BridgeResult<()> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let store = unsafe { handle_ref(handle) }?.session();
        let mut args = TenantName::new();
        let (tenant, name) = args.read(env, &tenant, &name)?;
        Ok(store.delete_with(tenant, name, force)?)
    })
    .resolve::<ThrowSecretStorageException>()
}

/// Metadata of one secret.
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn info<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    name: JString<'local>,
) -> JByteArray<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let store = unsafe { handle_ref(handle) }?.session();
        let mut args = TenantName::new();
        let (tenant, name) = args.read(env, &tenant, &name)?;
        let info = store.info(tenant, name)?;
        info_result(env, &info)
    })
    .resolve::<ThrowSecretStorageException>()
}

/// A page of a tenant's secrets (`name_contains` may be null; `limit` 0 means all).
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn list<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    name_contains: JString<'local>,
    offset: jint,
    limit: jint,
) -> JByteArray<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let store = unsafe { handle_ref(handle) }?.session();
        let (mut t, mut f) = (StrArg::new(), StrArg::new());
        let tenant = t.read(env, &tenant, "tenantId")?;
        let filter = f.read_opt(env, &name_contains, "nameContains")?;
        let (Ok(offset), Ok(limit)) = (usize::try_from(offset), usize::try_from(limit)) else {
            return Err(Error::invalid("offset and limit must not be negative").into());
        };
        let query = ListQuery {
            name_contains: filter.map(str::to_owned),
            offset,
            limit,
        };
        let page = store.list(tenant, &query)?;
        new_bytes(env, &Wire::default().page(&page).take())
    })
    .resolve::<ThrowSecretStorageException>()
}

/// Kept versions of a secret, newest first.
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn history<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    name: JString<'local>,
) -> JByteArray<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let store = unsafe { handle_ref(handle) }?.session();
        let mut args = TenantName::new();
        let (tenant, name) = args.read(env, &tenant, &name)?;
        let versions = store.history(tenant, name)?;
        new_bytes(env, &Wire::default().versions(&versions).take())
    })
    .resolve::<ThrowSecretStorageException>()
}

/// Writes a new version equal to a kept one; returns the `SecretInfo`.
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn rollback<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    name: JString<'local>,
    version: jlong,
) -> JByteArray<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let store = unsafe { handle_ref(handle) }?.session();
        let mut args = TenantName::new();
        let (tenant, name) = args.read(env, &tenant, &name)?;
        let version = u64::try_from(version)
            .map_err(|_| Error::invalid(format!("version {version} must not be negative")))?;
        let info = store.rollback(tenant, name, version)?;
        info_result(env, &info)
    })
    .resolve::<ThrowSecretStorageException>()
}

/// The hot path: the current value of a TEXT secret as a Java `String`. The decrypted bytes
/// are zeroized once the string is built.
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn get_secret<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    name: JString<'local>,
) -> JString<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let store = unsafe { handle_ref(handle) }?.session();
        let mut args = TenantName::new();
        let (tenant, name) = args.read(env, &tenant, &name)?;
        let value = store.get_value(tenant, name)?;
        if value.secret_type() != SecretType::Text {
            return Err(type_mismatch(name, value.secret_type()));
        }
        new_string(env, value.as_bytes())
    })
    .resolve::<ThrowSecretStorageException>()
}

/// The hot path, [`get_secret`] without JNI calls: the tenant id and name (ASCII) are read from
/// the calling thread's call buffer at `address` (`tenant_len` bytes, then `name_len` bytes),
/// and the value is written over them: its length (`i32`, native byte order) at offset 0, its
/// UTF-8 bytes from offset 4; the result is then `null`. A value too long for the buffer is
/// returned as a `String` instead (the only JNI call, and a rare one).
#[allow(clippy::too_many_arguments)]
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn get_secret_into<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    address: jlong,
    capacity: jint,
    tenant_len: jint,
    name_len: jint,
) -> JString<'local> {
    let outcome = env.with_env(|env| -> BridgeResult<JString<'local>> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let store = unsafe { handle_ref(handle) }?.session();
        // SAFETY: `address` is this thread's call buffer of `capacity` bytes (see `call_buffer`).
        let buffer = unsafe { call_buffer(address, capacity) }?;
        let value = {
            let tenant = buffer_str(buffer, 0, tenant_len, "tenantId")?;
            let name = buffer_str(buffer, tenant.len(), name_len, "name")?;
            let value = store.get_value(tenant, name)?;
            if value.secret_type() != SecretType::Text {
                return Err(type_mismatch(name, value.secret_type()));
            }
            value
        };
        let bytes = value.as_bytes();
        match (
            i32::try_from(bytes.len()),
            buffer.get_mut(..bytes.len() + 4),
        ) {
            (Ok(len), Some(out)) => {
                out[..4].copy_from_slice(&len.to_ne_bytes());
                out[4..].copy_from_slice(bytes);
                Ok(JString::default())
            }
            _ => new_string(env, bytes),
        }
    });
    bridge::resolve_fast(&mut env, outcome)
}

fn type_mismatch(name: &str, actual: SecretType) -> bridge::BridgeError {
    Error::new(
        ErrorCode::TypeMismatch,
        format!("secret '{name}' is {actual}; getSecret reads TEXT secrets (use getSecretBytes)"),
    )
    .into()
}

/// The address of a direct `ByteBuffer` (for `CallBuffer`).
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn direct_buffer_address<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    buffer: JByteBuffer<'local>,
) -> jlong {
    env.with_env(|env| -> BridgeResult<jlong> {
        if buffer.is_null() {
            return Err(Error::invalid("buffer must not be null").into());
        }
        let address = env
            .get_direct_buffer_address(&buffer)
            .map_err(|_| Error::invalid("the ByteBuffer is not a direct buffer"))?;
        Ok(address as jlong)
    })
    .resolve::<ThrowSecretStorageException>()
}

/// The current value of a secret of either type as a new `byte[]`.
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn get_secret_bytes<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    name: JString<'local>,
) -> JByteArray<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let store = unsafe { handle_ref(handle) }?.session();
        let mut args = TenantName::new();
        let (tenant, name) = args.read(env, &tenant, &name)?;
        let value = store.get_value(tenant, name)?;
        new_bytes(env, value.as_bytes())
    })
    .resolve::<ThrowSecretStorageException>()
}

/// Resolves a UTF-8 document held in `doc[offset..offset + len]`, as JSON or as text.
/// Returns `null` when it holds nothing to replace.
#[allow(clippy::too_many_arguments)]
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn resolve<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    doc: JByteArray<'local>,
    offset: jint,
    len: jint,
    json: jboolean,
) -> JByteArray<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let store = unsafe { handle_ref(handle) }?.session();
        let mut t = StrArg::new();
        let tenant = t.read(env, &tenant, "tenantId")?;
        let bytes = document_bytes(env, &doc, offset, len)?;
        resolve_document(env, &store, tenant, &bytes, json)
    })
    .resolve::<ThrowSecretStorageException>()
}

/// [`resolve`] over `len` bytes at `offset` of a direct `ByteBuffer`, read in place.
#[allow(clippy::too_many_arguments)]
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn resolve_direct<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    doc: JByteBuffer<'local>,
    offset: jint,
    len: jint,
    json: jboolean,
) -> JByteArray<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let store = unsafe { handle_ref(handle) }?.session();
        let mut t = StrArg::new();
        let tenant = t.read(env, &tenant, "tenantId")?;
        // SAFETY: `doc` is a local reference held for the whole call (see `direct_bytes`).
        let bytes = unsafe { direct_bytes(env, &doc, offset, len) }?;
        resolve_document(env, &store, tenant, bytes, json)
    })
    .resolve::<ThrowSecretStorageException>()
}

fn resolve_document<'local>(
    env: &mut Env<'local>,
    store: &Session<'_>,
    tenant: &str,
    bytes: &[u8],
    json: bool,
) -> BridgeResult<JByteArray<'local>> {
    let text = utf8_document(bytes)?;
    let resolved = if json {
        store.resolve_json(tenant, text, ResolveOptions::default())?
    } else {
        store.resolve_str(tenant, text, ResolveOptions::default())?
    };
    match resolved {
        Cow::Borrowed(_) => Ok(JByteArray::default()),
        Cow::Owned(out) => {
            let out = Wiped(out.into_bytes());
            new_bytes(env, &out)
        }
    }
}

/// Resolves a UTF-8 document held in `doc[offset..offset + len]`, as JSON or as text, with
/// TEXT_FILE values materialised as private files. Returns the wire form
/// `u8 changed | [u32 length | UTF-8 document] | u32 count | paths` (the document only when
/// changed), wiped on the native side; Java gives the paths back with `releaseMaterialized`.
#[allow(clippy::too_many_arguments)]
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn resolve_materialized<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    doc: JByteArray<'local>,
    offset: jint,
    len: jint,
    json: jboolean,
) -> JByteArray<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let handle = unsafe { handle_ref(handle) }?;
        let mut t = StrArg::new();
        let tenant = t.read(env, &tenant, "tenantId")?;
        let bytes = document_bytes(env, &doc, offset, len)?;
        let text = utf8_document(&bytes)?;
        let (resolved, files) = handle.session().resolve_materialized(tenant, text, json)?;
        let document = match &resolved {
            Cow::Borrowed(_) => None,
            Cow::Owned(out) => Some(out.as_bytes()),
        };
        let out = Wiped(Wire::default().materialized(document, &files).take());
        if let Cow::Owned(resolved) = resolved {
            drop(Wiped(resolved.into_bytes()));
        }
        match new_bytes(env, &out) {
            Ok(array) => Ok(array),
            Err(e) => {
                // Java never sees the paths: give them back here.
                let _ = handle.storage.release_materialized(&files);
                Err(e)
            }
        }
    })
    .resolve::<ThrowSecretStorageException>()
}

/// Gives back the materialised files a `resolveMaterialized` result held: `paths` holds them
/// separated by NUL characters (which no path contains). A file no other result holds is
/// removed; paths the store does not hold are ignored.
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn release_materialized<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    paths: JString<'local>,
) {
    env.with_env(|env| -> BridgeResult<()> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let handle = unsafe { handle_ref(handle) }?;
        let mut p = StrArg::new();
        let paths: Vec<String> = p
            .read(env, &paths, "paths")?
            .split('\0')
            .filter(|path| !path.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(handle.storage.release_materialized(&paths)?)
    })
    .resolve::<ThrowSecretStorageException>()
}

fn utf8_document(bytes: &[u8]) -> BridgeResult<&str> {
    std::str::from_utf8(bytes).map_err(|e| {
        Error::invalid(format!(
            "the document is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
        .into()
    })
}

/// The distinct (name, type) pairs a UTF-8 document references (no store needed).
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn references<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    doc: JByteArray<'local>,
    offset: jint,
    len: jint,
) -> JByteArray<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        let bytes = document_bytes(env, &doc, offset, len)?;
        let references = SecretStorage::references(utf8_document(&bytes)?)?;
        new_bytes(env, &Wire::default().references(&references).take())
    })
    .resolve::<ThrowSecretStorageException>()
}

/// Records the references of a source, replacing its previous set; returns them.
#[allow(clippy::too_many_arguments)]
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn track_references<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    source_id: JString<'local>,
    doc: JByteArray<'local>,
    offset: jint,
    len: jint,
) -> JByteArray<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let store = unsafe { handle_ref(handle) }?.session();
        let (mut t, mut s) = (StrArg::new(), StrArg::new());
        let tenant = t.read(env, &tenant, "tenantId")?;
        let source_id = s.read(env, &source_id, "sourceId")?;
        let bytes = document_bytes(env, &doc, offset, len)?;
        let references = store.track_references(tenant, source_id, utf8_document(&bytes)?)?;
        new_bytes(env, &Wire::default().references(&references).take())
    })
    .resolve::<ThrowSecretStorageException>()
}

/// Forgets a source's references; returns how many were removed.
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn untrack<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    source_id: JString<'local>,
) -> jint {
    env.with_env(|env| -> BridgeResult<jint> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let store = unsafe { handle_ref(handle) }?.session();
        let (mut t, mut s) = (StrArg::new(), StrArg::new());
        let tenant = t.read(env, &tenant, "tenantId")?;
        let source_id = s.read(env, &source_id, "sourceId")?;
        let removed = store.untrack(tenant, source_id)?;
        Ok(jint::try_from(removed).unwrap_or(jint::MAX))
    })
    .resolve::<ThrowSecretStorageException>()
}

/// The sources that reference a secret.
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn where_used<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    name: JString<'local>,
) -> JByteArray<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let store = unsafe { handle_ref(handle) }?.session();
        let mut args = TenantName::new();
        let (tenant, name) = args.read(env, &tenant, &name)?;
        let usages = store.where_used(tenant, name)?;
        new_bytes(env, &Wire::default().usages(&usages).take())
    })
    .resolve::<ThrowSecretStorageException>()
}

/// Writes batched usage counters now.
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn flush_usage<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
) {
    env.with_env(|_env| -> BridgeResult<()> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let handle = unsafe { handle_ref(handle) }?;
        Ok(handle.storage.flush_usage()?)
    })
    .resolve::<ThrowSecretStorageException>()
}

/// Secrets of a tenant not used for `age_millis` (wire: a list of `SecretInfo`).
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn unused<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    age_millis: jlong,
) -> JByteArray<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let store = unsafe { handle_ref(handle) }?.session();
        let mut t = StrArg::new();
        let tenant = t.read(env, &tenant, "tenantId")?;
        let infos = store.unused(tenant, age(age_millis)?)?;
        new_bytes(env, &Wire::default().infos(&infos).take())
    })
    .resolve::<ThrowSecretStorageException>()
}

/// Secrets of a tenant whose value is at least `age_millis` old (wire: a list of `SecretInfo`).
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn stale<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
    age_millis: jlong,
) -> JByteArray<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let store = unsafe { handle_ref(handle) }?.session();
        let mut t = StrArg::new();
        let tenant = t.read(env, &tenant, "tenantId")?;
        let infos = store.stale(tenant, age(age_millis)?)?;
        new_bytes(env, &Wire::default().infos(&infos).take())
    })
    .resolve::<ThrowSecretStorageException>()
}

fn age(millis: jlong) -> BridgeResult<Duration> {
    u64::try_from(millis)
        .map(Duration::from_millis)
        .map_err(|_| Error::invalid(format!("age {millis} ms must not be negative")).into())
}

/// Replaces the master key (32 bytes); returns the `RotationReport` (wire form).
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn rotate_master_key<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    new_key: JByteArray<'local>,
) -> JByteArray<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let store = unsafe { handle_ref(handle) }?.session();
        let key = MasterKey::from_bytes(&secret_bytes(env, &new_key, "new master key")?)?;
        let report = store.rotate_master_key(&key)?;
        new_bytes(env, &Wire::default().rotation(&report).take())
    })
    .resolve::<ThrowSecretStorageException>()
}

/// Gives a tenant a new data key; returns the `RotationReport` (wire form).
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn rotate_tenant_key<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    tenant: JString<'local>,
) -> JByteArray<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let store = unsafe { handle_ref(handle) }?.session();
        let mut t = StrArg::new();
        let tenant = t.read(env, &tenant, "tenantId")?;
        let report = store.rotate_tenant_key(tenant)?;
        new_bytes(env, &Wire::default().rotation(&report).take())
    })
    .resolve::<ThrowSecretStorageException>()
}

/// Verifies an audit log (`path` null: the handle's own); returns the `AuditVerification`
/// (wire form).
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn verify_audit_log<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
    path: JString<'local>,
) -> JByteArray<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let store = unsafe { handle_ref(handle) }?.session();
        let mut p = StrArg::new();
        let path = p.read_opt(env, &path, "audit log path")?;
        let verification = store.verify_audit_log(path.map(Path::new))?;
        new_bytes(env, &Wire::default().verification(&verification).take())
    })
    .resolve::<ThrowSecretStorageException>()
}

/// The audit log file the store writes, or null; a principal needs READ in every tenant.
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn audit_log_path<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    handle: jlong,
) -> JString<'local> {
    env.with_env(|env| -> BridgeResult<_> {
        // SAFETY: the handle is live during the call (see `bridge::handle_ref`).
        let handle = unsafe { handle_ref(handle) }?;
        match handle.storage.acting(&handle.actor).audit_log_path()? {
            None => Ok(JString::default()),
            Some(path) => {
                let path = path.to_str().ok_or_else(|| {
                    Error::invalid("the audit log path is not valid Unicode text")
                })?;
                new_string(env, path.as_bytes())
            }
        }
    })
    .resolve::<ThrowSecretStorageException>()
}

/// The native library's crate version, which the Java loader checks against its own.
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn native_version<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
) -> JString<'local> {
    env.with_env(|env| -> BridgeResult<_> { new_string(env, env!("CARGO_PKG_VERSION").as_bytes()) })
        .resolve::<ThrowSecretStorageException>()
}

/// Panics on purpose, so the test suite can prove that a Rust panic reaches Java as an
/// `InternalException` and never aborts the JVM.
#[jni_mangle("org.tbsecrets.internal.Native")]
pub extern "system" fn panic_for_test<'local>(mut env: EnvUnowned<'local>, _class: JClass<'local>) {
    env.with_env(|_env| -> BridgeResult<()> {
        panic!("deliberate panic requested by Native.panicForTest");
    })
    .resolve::<ThrowSecretStorageException>()
}
