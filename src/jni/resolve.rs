//! JNI exports of resolution: documents (array, direct buffer, materialised files) and the
//! reference index (references, track, untrack, where used).

use super::bridge::{
    count, direct_bytes, direct_bytes_mut, document_bytes, export, new_bytes, utf8_document, wire,
    BridgeResult, StrArg, TenantName, Wiped, TENANT,
};
use super::wire::Wire;
use crate::service::{ResolveOptions, SecretStorage, Session, Syntax};
use ::jni::objects::{JByteArray, JByteBuffer, JString};
use ::jni::sys::{jboolean, jint, jlong};
use ::jni::Env;
use std::borrow::Cow;

export! {
    /// Resolves a UTF-8 document held in `doc[offset..offset + len]`, as JSON or as text.
    /// Returns `null` when it holds nothing to replace.
    fn resolve(env, h; tenant: JString<'local>, doc: JByteArray<'local>, offset: jint, len: jint,
               json: jboolean) -> JByteArray<'local> {
        let mut t = StrArg::new();
        let tenant = t.read(env, &tenant, TENANT)?;
        let bytes = document_bytes(env, &doc, offset, len)?;
        let syntax = Syntax::json_or_text(json);
        resolve_document(env, &h.session(), tenant, &bytes, syntax, ResolveOptions::default())
    }

    /// Resolves a UTF-8 YAML document held in `doc[offset..offset + len]`: every scalar value
    /// (never a key), written back by YAML's quoting rules. Returns `null` when it holds
    /// nothing to replace.
    fn resolve_yaml(env, h; tenant: JString<'local>, doc: JByteArray<'local>, offset: jint,
                    len: jint) -> JByteArray<'local> {
        let mut t = StrArg::new();
        let tenant = t.read(env, &tenant, TENANT)?;
        let bytes = document_bytes(env, &doc, offset, len)?;
        let options = ResolveOptions::default();
        resolve_document(env, &h.session(), tenant, &bytes, Syntax::Yaml, options)
    }

    /// [`resolve`] over `len` bytes at `offset` of a direct `ByteBuffer`, read in place.
    fn resolve_direct(env, h; tenant: JString<'local>, doc: JByteBuffer<'local>, offset: jint,
                      len: jint, json: jboolean) -> JByteArray<'local> {
        let mut t = StrArg::new();
        let tenant = t.read(env, &tenant, TENANT)?;
        // SAFETY: `doc` is a local reference held for the whole call (see `direct_bytes`).
        let bytes = unsafe { direct_bytes(env, &doc, offset, len) }?;
        let syntax = Syntax::json_or_text(json);
        resolve_document(env, &h.session(), tenant, bytes, syntax, ResolveOptions::default())
    }

    /// [`resolve_direct`] into `out[out_offset..out_offset + out_len]`, another direct
    /// buffer (which must not overlap the document): returns the resolved length. When it is
    /// at most `out_len` the document is there; otherwise, and on an error, nothing of it is
    /// (see `SecretStorage::resolve_into`).
    fn resolve_direct_into(env, h; tenant: JString<'local>, doc: JByteBuffer<'local>,
                           offset: jint, len: jint, json: jboolean, out: JByteBuffer<'local>,
                           out_offset: jint, out_len: jint) -> jlong {
        let mut t = StrArg::new();
        let tenant = t.read(env, &tenant, TENANT)?;
        // SAFETY: `doc` and `out` are local references held for the whole call (see
        // `direct_bytes`); `out` is refused where it overlaps `doc`.
        let bytes = unsafe { direct_bytes(env, &doc, offset, len) }?;
        let out = unsafe { direct_bytes_mut(env, &out, out_offset, out_len, "output", bytes) }?;
        let text = utf8_document(bytes)?;
        let length = h.session().resolve_into(tenant, text, json, ResolveOptions::default(), out)?;
        Ok(jlong::try_from(length).unwrap_or(jlong::MAX))
    }

    /// Resolves a UTF-8 document held in `doc[offset..offset + len]`, as JSON or as text,
    /// with TEXT_FILE values materialised as private files. Returns the wire form
    /// `u8 changed | [u32 length | UTF-8 document] | u32 count | paths` (the document only
    /// when changed), wiped on the native side; Java gives the paths back with
    /// `releaseMaterialized`.
    fn resolve_materialized(env, h; tenant: JString<'local>, doc: JByteArray<'local>,
                            offset: jint, len: jint, json: jboolean) -> JByteArray<'local> {
        let mut t = StrArg::new();
        let tenant = t.read(env, &tenant, TENANT)?;
        let bytes = document_bytes(env, &doc, offset, len)?;
        let text = utf8_document(&bytes)?;
        let (resolved, files) = h.session().resolve_materialized(tenant, text, json)?;
        let document = match &resolved {
            Cow::Borrowed(_) => None,
            Cow::Owned(out) => Some(out.as_bytes()),
        };
        let out = Wiped(Wire::default().materialized(document, &files).take());
        if let Cow::Owned(resolved) = resolved {
            drop(Wiped(resolved.into_bytes()));
        }
        new_bytes(env, &out).inspect_err(|_| {
            // Java never sees the paths: give them back here.
            let _ = h.storage.release_materialized(&files);
        })
    }

    /// Gives back the materialised files a `resolveMaterialized` result held: `paths` holds
    /// them separated by NUL characters (which no path contains). A file no other result
    /// holds is removed; paths the store does not hold are ignored.
    fn release_materialized(env, h; paths: JString<'local>) -> () {
        let mut p = StrArg::new();
        let paths: Vec<String> = p
            .read(env, &paths, "paths")?
            .split('\0')
            .filter(|path| !path.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(h.storage.release_materialized(&paths)?)
    }

    /// The distinct (name, type) pairs a UTF-8 document references (no store needed).
    fn references(env; doc: JByteArray<'local>, offset: jint, len: jint) -> JByteArray<'local> {
        let bytes = document_bytes(env, &doc, offset, len)?;
        let references = SecretStorage::references(utf8_document(&bytes)?)?;
        wire(env, |w| w.references(&references))
    }

    /// Records the references of a source, replacing its previous set; returns them.
    fn track_references(env, h; tenant: JString<'local>, source_id: JString<'local>,
                        doc: JByteArray<'local>, offset: jint, len: jint) -> JByteArray<'local> {
        let (mut t, mut s) = (StrArg::new(), StrArg::new());
        let (tenant, source_id) = (t.read(env, &tenant, TENANT)?, s.read(env, &source_id, SOURCE)?);
        let bytes = document_bytes(env, &doc, offset, len)?;
        let references = h.session().track_references(tenant, source_id, utf8_document(&bytes)?)?;
        wire(env, |w| w.references(&references))
    }

    /// Forgets a source's references; returns how many were removed.
    fn untrack(env, h; tenant: JString<'local>, source_id: JString<'local>) -> jint {
        let (mut t, mut s) = (StrArg::new(), StrArg::new());
        let (tenant, source_id) = (t.read(env, &tenant, TENANT)?, s.read(env, &source_id, SOURCE)?);
        Ok(count(h.session().untrack(tenant, source_id)?))
    }

    /// The sources that reference a secret.
    fn where_used(env, h; tenant: JString<'local>, name: JString<'local>) -> JByteArray<'local> {
        let mut args = TenantName::new();
        let (tenant, name) = args.read(env, &tenant, &name)?;
        let usages = h.session().where_used(tenant, name)?;
        wire(env, |w| w.usages(&usages))
    }
}

/// How exports name the source id argument in errors (its Java name).
const SOURCE: &str = "sourceId";

/// The shared body of [`resolve`], [`resolve_yaml`], [`resolve_direct`] and `resolve_vars`
/// (`scoped.rs`): `null` for an unchanged document.
pub(super) fn resolve_document<'local>(
    env: &mut Env<'local>,
    store: &Session<'_>,
    tenant: &str,
    bytes: &[u8],
    syntax: Syntax,
    options: ResolveOptions<'_>,
) -> BridgeResult<JByteArray<'local>> {
    let text = utf8_document(bytes)?;
    let resolved = match syntax {
        Syntax::Text => store.resolve_str(tenant, text, options)?,
        Syntax::Json => store.resolve_json(tenant, text, options)?,
        Syntax::Yaml => store.resolve_yaml(tenant, text, options)?,
    };
    match resolved {
        Cow::Borrowed(_) => Ok(JByteArray::default()),
        Cow::Owned(out) => new_bytes(env, &Wiped(out.into_bytes())),
    }
}
