//! JNI exports of export bundles: the export key, exporting and importing a bundle (the
//! import report as JSON).

use super::bridge::{export, new_bytes, new_string, secret_bytes, BridgeResult, StrArg, TENANT};
use crate::bundle::{ExportOptions, ImportOptions, ManifestDocument};
use crate::error::Error;
use ::jni::objects::{JByteArray, JObjectArray, JString};
use ::jni::sys::jboolean;
use ::jni::Env;

export! {
    /// This store's export public key (`ed25519:…`).
    fn export_key(env, h;) -> JString<'local> {
        new_string(env, h.session().export_key()?.to_string().as_bytes())
    }

    /// The tenant's secrets as an export bundle (age file bytes) to the `age1…` recipients.
    fn export_bundle(env, h; tenant: JString<'local>, recipients: JString<'local>,
            all_versions: jboolean) -> JByteArray<'local> {
        let (mut t, mut r) = (StrArg::new(), StrArg::new());
        let tenant = t.read(env, &tenant, TENANT)?;
        let recipients = r.read(env, &recipients, "recipients")?;
        let options = ExportOptions { all_versions };
        let bundle = h.session().export_bundle(tenant, recipients, &options)?;
        new_bytes(env, &bundle.bytes)
    }

    /// Imports a bundle (`identity`: the age identity file's UTF-8 bytes, wiped after the
    /// call; `trusted`: export keys or null; `on_conflict`: fail, skip or overwrite); returns
    /// the report as JSON.
    fn import_bundle(env, h; tenant: JString<'local>, bundle: JByteArray<'local>,
            identity: JByteArray<'local>, trusted: JString<'local>, on_conflict: JString<'local>,
            dry_run: jboolean) -> JString<'local> {
        let (mut t, mut k, mut c) = (StrArg::new(), StrArg::new(), StrArg::new());
        let tenant = t.read(env, &tenant, TENANT)?;
        let trusted = k.read_opt(env, &trusted, "trusted")?.unwrap_or("");
        let on_conflict = c.read(env, &on_conflict, "onConflict")?.parse()?;
        let bytes = secret_bytes(env, &bundle, "bundle")?;
        let identity = secret_bytes(env, &identity, "identity")?;
        let identity = std::str::from_utf8(&identity.0)
            .map_err(|_| Error::invalid("the identity is not UTF-8 text"))?;
        let options = ImportOptions { on_conflict, dry_run, trusted_signers: Vec::new() }
            .trust(trusted)?;
        let report = h.session().import_bundle(tenant, &bytes.0, identity, &options)?;
        let json = serde_json::to_vec(&report)
            .map_err(|e| Error::internal(format!("cannot render the report: {e}")))?;
        new_string(env, &json)
    }

    /// The secrets the documents `texts[i]` (reported as `labels[i]`) need, with their
    /// status in the tenant; returns the manifest as JSON.
    fn manifest(env, h; tenant: JString<'local>, labels: JObjectArray<'local, JString<'local>>,
            texts: JObjectArray<'local, JString<'local>>) -> JString<'local> {
        let mut t = StrArg::new();
        let tenant = t.read(env, &tenant, TENANT)?.to_owned();
        let labels = strings(env, &labels, "labels")?;
        let texts = strings(env, &texts, "texts")?;
        if labels.len() != texts.len() {
            return Err(Error::invalid(format!(
                "{} labels for {} texts",
                labels.len(),
                texts.len()
            ))
            .into());
        }
        let documents: Vec<ManifestDocument<'_>> = labels
            .iter()
            .zip(&texts)
            .map(|(label, text)| ManifestDocument { label, text })
            .collect();
        let manifest = h.session().manifest(&tenant, &documents)?;
        let json = serde_json::to_vec(&manifest)
            .map_err(|e| Error::internal(format!("cannot render the manifest: {e}")))?;
        new_string(env, &json)
    }
}

/// The elements of a `String[]` (no null element: Java checks).
fn strings(
    env: &mut Env<'_>,
    array: &JObjectArray<'_, JString<'_>>,
    what: &str,
) -> BridgeResult<Vec<String>> {
    let count = array.len(env)?;
    let mut out = Vec::with_capacity(count);
    let mut arg = StrArg::new();
    for i in 0..count {
        let element = array.get_element(env, i)?;
        let read = arg.read(env, &element, what).map(str::to_owned);
        env.delete_local_ref(element);
        out.push(read?);
    }
    Ok(out)
}
