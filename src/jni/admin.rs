//! JNI exports of administration: usage flushing and statistics, key rotation, the audit log.

use super::bridge::args as decode;
use super::bridge::{export, new_string, secret_bytes, wire, StrArg, TENANT};
use super::provider;
use crate::crypto::MasterKey;
use crate::error::Error;
use ::jni::objects::{JByteArray, JObject, JString};
use ::jni::sys::jlong;
use std::path::Path;

export! {
    /// Writes batched usage counters now.
    fn flush_usage(_env, h;) -> () {
        Ok(h.storage.flush_usage()?)
    }

    /// Secrets of a tenant not used for `age_millis` (wire: a list of `SecretInfo`).
    fn unused(env, h; tenant: JString<'local>, age_millis: jlong) -> JByteArray<'local> {
        let mut t = StrArg::new();
        let infos = h.session().unused(t.read(env, &tenant, TENANT)?, decode::age(age_millis)?)?;
        wire(env, |w| w.infos(&infos))
    }

    /// Secrets of a tenant whose value is at least `age_millis` old (wire: a list of
    /// `SecretInfo`).
    fn stale(env, h; tenant: JString<'local>, age_millis: jlong) -> JByteArray<'local> {
        let mut t = StrArg::new();
        let infos = h.session().stale(t.read(env, &tenant, TENANT)?, decode::age(age_millis)?)?;
        wire(env, |w| w.infos(&infos))
    }

    /// Replaces the master key (32 bytes); returns the `RotationReport` (wire form).
    fn rotate_master_key(env, h; new_key: JByteArray<'local>) -> JByteArray<'local> {
        let key = MasterKey::from_bytes(&secret_bytes(env, &new_key, "new master key")?)?;
        let report = h.session().rotate_master_key(&key)?;
        wire(env, |w| w.rotation(&report))
    }

    /// Moves the master key to a host `org.tbsecrets.KeyProvider` (non-null); returns the
    /// `RotationReport` (wire form).
    fn rotate_key_provider(env, h; key_provider: JObject<'local>) -> JByteArray<'local> {
        if key_provider.is_null() {
            return Err(Error::invalid("the key provider is null").into());
        }
        let provider = provider::key_provider_from_java(env, &key_provider)?;
        let report = h.session().rotate_key_provider(provider, &mut |_, _| {})?;
        wire(env, |w| w.rotation(&report))
    }

    /// Gives a tenant a new data key; returns the `RotationReport` (wire form).
    fn rotate_tenant_key(env, h; tenant: JString<'local>) -> JByteArray<'local> {
        let mut t = StrArg::new();
        let report = h.session().rotate_tenant_key(t.read(env, &tenant, TENANT)?)?;
        wire(env, |w| w.rotation(&report))
    }

    /// What a master-key rotation would do; returns the `RotationPlan` (wire form).
    fn plan_master_key_rotation(env, h;) -> JByteArray<'local> {
        let plan = h.session().plan_master_key_rotation()?;
        wire(env, |w| w.plan(&plan))
    }

    /// What a tenant-key rotation would do; returns the `RotationPlan` (wire form).
    fn plan_tenant_key_rotation(env, h; tenant: JString<'local>) -> JByteArray<'local> {
        let mut t = StrArg::new();
        let plan = h.session().plan_tenant_key_rotation(t.read(env, &tenant, TENANT)?)?;
        wire(env, |w| w.plan(&plan))
    }

    /// Verifies an audit log (`path` null: the handle's own); returns the
    /// `AuditVerification` (wire form).
    fn verify_audit_log(env, h; path: JString<'local>) -> JByteArray<'local> {
        let mut p = StrArg::new();
        let path = p.read_opt(env, &path, "audit log path")?;
        let verification = h.session().verify_audit_log(path.map(Path::new))?;
        wire(env, |w| w.verification(&verification))
    }

    /// The audit log file the store writes, or null; a principal needs READ in every tenant.
    fn audit_log_path(env, h;) -> JString<'local> {
        match h.session().audit_log_path()? {
            None => Ok(JString::default()),
            Some(path) => {
                let path = path.to_str().ok_or_else(|| {
                    Error::invalid("the audit log path is not valid Unicode text")
                })?;
                new_string(env, path.as_bytes())
            }
        }
    }
}
