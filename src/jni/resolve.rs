//! JNI exports of resolution: documents (array, direct buffer, materialised files) and the
//! reference index (references, track, untrack, where used).

use super::bridge::{
    direct_bytes, document_bytes, handle_ref, new_bytes, BridgeResult, StrArg, TenantName,
    ThrowSecretStorageException, Wiped,
};
use super::wire::Wire;
use crate::error::Error;
use crate::service::{ResolveOptions, SecretStorage, Session};
use ::jni::objects::{JByteArray, JByteBuffer, JClass, JString};
use ::jni::sys::{jboolean, jint, jlong};
use ::jni::{jni_mangle, Env, EnvUnowned};
use std::borrow::Cow;

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
