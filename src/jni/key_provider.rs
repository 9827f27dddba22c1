//! JNI exports of key providers by spec (docs/KEY-CUSTODY.md): the options' provider and
//! data-key cache lifetime, moving a store to another provider, wiping the unwrapped keys.

use super::bridge::{export, wire, BridgeResult, StrArg};
use crate::access::Actor;
use crate::crypto::provider::key_provider_from_spec;
use crate::error::{Error, ErrorCode};
use crate::service::StorageOptions;
use ::jni::objects::{JByteArray, JString};
use ::jni::sys::jlong;
use ::jni::Env;
use std::time::Duration;

/// Applies `SecretStorageOptions.keyProvider` (null: none) and `keyCacheTtl` (milliseconds,
/// 0: the handle's lifetime) to the options `open` builds.
pub(super) fn apply(
    env: &Env<'_>,
    spec: &JString<'_>,
    key_cache_ttl_millis: jlong,
    options: &mut StorageOptions,
) -> BridgeResult<()> {
    let mut spec_arg = StrArg::new();
    if let Some(spec) = spec_arg.read_opt(env, spec, "key provider spec")? {
        if options.key_provider.is_some() {
            return Err(crate::Error::invalid(
                "both a KeyProvider and a key provider spec were given: pass one",
            )
            .into());
        }
        options.key_provider = Some(key_provider_from_spec(spec)?);
    }
    if key_cache_ttl_millis > 0 {
        options.key_cache_ttl = Some(Duration::from_millis(key_cache_ttl_millis.unsigned_abs()));
    }
    Ok(())
}

export! {
    /// Moves the master key to the provider a spec names; returns the `RotationReport` (wire
    /// form).
    fn rotate_key_provider_spec(env, h; spec: JString<'local>) -> JByteArray<'local> {
        let mut s = StrArg::new();
        let provider = key_provider_from_spec(s.read(env, &spec, "key provider spec")?)?;
        let report = h.session().rotate_key_provider(provider, &mut |_, _| {})?;
        wire(env, |w| w.rotation(&report))
    }

    /// Wipes the store's unwrapped data keys (the store's own handle only).
    fn forget_keys(_env, h;) -> () {
        if !matches!(h.actor, Actor::Host) {
            return Err(Error::new(
                ErrorCode::PermissionDenied,
                "a session may not forget the store's keys: that needs the store itself",
            )
            .into());
        }
        h.storage.forget_keys();
        Ok(())
    }
}
