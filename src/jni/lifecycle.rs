//! JNI exports of the handle lifecycle: open a store, open and close sessions, close.

use super::bridge::args as decode;
use super::bridge::{export, into_handle, secret_bytes, take_handle, BridgeResult, StrArg, TENANT};
use super::provider;
use super::sink;
use crate::access::{Actor, Policy, Principal};
use crate::audit::AuditOptions;
use crate::crypto::{read_key_file, MasterKey};
use crate::model::Limits;
use crate::service::{MaterializeOptions, SecretStorage, StorageOptions};
use ::jni::objects::{JByteArray, JObject, JString};
use ::jni::sys::{jboolean, jint, jlong};
use ::jni::Env;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

export! {
    /// Opens a store; returns its (host) handle. `master_key` (32 bytes) wins over `key_file`;
    /// with neither, `TBS_MASTER_KEY` then `TBS_MASTER_KEY_FILE` are used. `policy_json` null:
    /// the default policy; `audit_path` null: the default log beside the store;
    /// `audit_listener` (an `org.tbsecrets.AuditListener`) null: no listener; `materialize_dir`
    /// null: materialised files go to a fresh private temporary directory (`keep_materialized`
    /// then ignored); `key_provider` (an `org.tbsecrets.KeyProvider`) null: none, else the
    /// host provider holds the master key; `key_provider_spec` null: none, else the provider it
    /// names (both, or either with a raw key: INVALID_ARGUMENT); `key_cache_ttl_millis` 0: data
    /// keys stay unwrapped for the handle's life (see `key_provider::apply`).
    /// `deleted_retention_millis`: how long deleted secrets stay recoverable.
    fn open(env; path: JString<'local>, master_key: JByteArray<'local>, key_file: JString<'local>,
            max_text_chars: jint, max_file_bytes: jint, max_versions: jint,
            create_if_missing: jboolean, busy_timeout_millis: jlong, policy_json: JString<'local>,
            audit_enabled: jboolean, audit_path: JString<'local>, audit_listener: JObject<'local>,
            materialize_dir: JString<'local>, keep_materialized: jboolean,
            deleted_retention_millis: jlong, key_provider: JObject<'local>,
            key_provider_spec: JString<'local>, key_cache_ttl_millis: jlong) -> jlong {
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
            Some(MasterKey::from_bytes(&secret_bytes(env, &master_key, "master key")?)?)
        } else if let Some(file) = key_file {
            Some(read_key_file(Path::new(file))?)
        } else {
            None
        };
        let key_provider = if key_provider.is_null() {
            None
        } else {
            Some(provider::key_provider_from_java(env, &key_provider)?)
        };
        let mut options = StorageOptions {
            master_key,
            key_provider,
            limits: Limits {
                max_text_chars: decode::positive(max_text_chars, "maxTextChars")?,
                max_file_bytes: decode::positive(max_file_bytes, "maxFileBytes")?,
            },
            max_versions: u32::try_from(decode::positive(max_versions, "maxVersions")?)
                .unwrap_or(u32::MAX),
            create_if_missing,
            busy_timeout: Duration::from_millis(u64::try_from(busy_timeout_millis).unwrap_or(0)),
            deleted_retention: Duration::from_millis(
                u64::try_from(deleted_retention_millis).unwrap_or(0),
            ),
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
        super::key_provider::apply(env, &key_provider_spec, key_cache_ttl_millis, &mut options)?;
        let storage = Arc::new(SecretStorage::open(path, options)?);
        Ok(into_handle(storage, Actor::Host))
    }

    /// A session handle acting as a principal (`role` is `org.tbsecrets.Role#number()`, `id`
    /// may be null) over the store of `handle`. Freed by `close_session`.
    fn open_session(env, parent; tenant: JString<'local>, role: jint, id: JString<'local>)
        -> jlong
    {
        let principal = read_principal(env, &tenant, role, &id)?;
        Ok(into_handle(Arc::clone(&parent.storage), Actor::Principal(principal)))
    }

    /// Frees a session handle (0 is ignored); the store stays open for its other handles.
    fn close_session(_env; handle: jlong) -> () {
        // SAFETY: Java calls this once, under the session's write lock (no call in flight).
        drop(unsafe { take_handle(handle) });
        Ok(())
    }

    /// Flushes usage counters, closes the store and frees its handle (0 is ignored). The
    /// handle is freed even when flushing fails; the failure is then thrown. Session handles
    /// still holding the store get CLOSED until they are freed.
    fn close(_env; handle: jlong) -> () {
        // SAFETY: Java calls this once, under the handle's write lock (no call in flight).
        if let Some(handle) = unsafe { take_handle(handle) } {
            handle.storage.close()?;
        }
        Ok(())
    }
}

/// The principal a session acts as: its tenant id (validated), its role number
/// (`org.tbsecrets.Role#number()`) and its id (`null`: none).
pub(super) fn read_principal(
    env: &Env<'_>,
    tenant: &JString<'_>,
    role: jint,
    id: &JString<'_>,
) -> BridgeResult<Principal> {
    let (mut t, mut i) = (StrArg::new(), StrArg::new());
    let tenant = t.read(env, tenant, TENANT)?;
    crate::model::validate_tenant(tenant)?;
    let mut principal = Principal::new(tenant, decode::role(role)?);
    if let Some(id) = i.read_opt(env, id, "principal id")? {
        principal = principal.with_id(id);
    }
    Ok(principal)
}
