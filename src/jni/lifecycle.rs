//! JNI exports of the handle lifecycle: open a store, open and close sessions, close.

use super::bridge::{
    handle_ref, into_handle, secret_bytes, take_handle, BridgeResult, StrArg,
    ThrowSecretStorageException,
};
use super::sink;
use crate::access::{Actor, Policy, Principal, Role};
use crate::audit::AuditOptions;
use crate::crypto::{read_key_file, MasterKey};
use crate::error::Error;
use crate::model::Limits;
use crate::service::{MaterializeOptions, SecretStorage, StorageOptions};
use ::jni::objects::{JByteArray, JClass, JObject, JString};
use ::jni::sys::{jboolean, jint, jlong};
use ::jni::{jni_mangle, EnvUnowned};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

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

fn positive(value: jint, what: &str) -> BridgeResult<usize> {
    match usize::try_from(value) {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(Error::invalid(format!("{what} must be positive; got {value}")).into()),
    }
}
