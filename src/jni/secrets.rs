//! JNI exports of the secret operations: create, update, describe, delete, info, list,
//! history, rollback.

use super::bridge::{
    handle_ref, new_bytes, secret_bytes_checked, BridgeResult, StrArg, TenantName,
    ThrowSecretStorageException,
};
use super::wire::Wire;
use crate::error::Error;
use crate::model::{ListQuery, SecretType};
use ::jni::objects::{JByteArray, JClass, JString};
use ::jni::sys::{jboolean, jint, jlong};
use ::jni::{jni_mangle, Env, EnvUnowned};

/// A `SecretInfo` result in wire form.
fn info_result<'local>(
    env: &mut Env<'local>,
    info: &crate::model::SecretInfo,
) -> BridgeResult<JByteArray<'local>> {
    new_bytes(env, &Wire::default().info(info).take())
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
