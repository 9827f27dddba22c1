//! JNI exports of export bundles: the export key, exporting and importing a bundle (the
//! import report as JSON).

use super::bridge::{export, new_bytes, new_string, secret_bytes, StrArg, TENANT};
use crate::bundle::{ExportOptions, ImportOptions};
use crate::error::Error;
use ::jni::objects::{JByteArray, JString};
use ::jni::sys::jboolean;

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
}
