//! JNI exports of administration: usage flushing and statistics, key rotation, the audit log.

use super::bridge::{
    handle_ref, new_bytes, new_string, secret_bytes, BridgeResult, StrArg,
    ThrowSecretStorageException,
};
use super::wire::Wire;
use crate::crypto::MasterKey;
use crate::error::Error;
use ::jni::objects::{JByteArray, JClass, JString};
use ::jni::sys::jlong;
use ::jni::{jni_mangle, EnvUnowned};
use std::path::Path;
use std::time::Duration;

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
