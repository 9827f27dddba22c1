//! Export bundles and manifests: `tbs_store_export_key`, `tbs_store_export_bundle`,
//! `tbs_store_import_bundle`, `tbs_store_manifest` (docs/C-API.md).

use super::args::{arg, FromC, OptOut, Out};
use super::boundary::guard;
use super::buffer::buffer_from;
use super::{tbs_buffer, tbs_status, tbs_store};
use crate::bundle::{ExportOptions, ImportOptions, ManifestDocument, OnConflict};
use crate::error::Error;
use crate::Session;
use std::ffi::c_char;

/// `tbs_store_export_bundle` flag: every kept version of each secret, not only the current.
pub const TBS_EXPORT_ALL_VERSIONS: u32 = 1;
/// `tbs_store_import_bundle` flag: report what would happen (into `*out_report`) and write
/// nothing.
pub const TBS_IMPORT_DRY_RUN: u32 = 1;
/// Import conflict policy: fail (`TBS_ALREADY_EXISTS`, nothing imported) when a name exists.
pub const TBS_ON_CONFLICT_FAIL: u32 = 0;
/// Import conflict policy: keep existing secrets, import the others.
pub const TBS_ON_CONFLICT_SKIP: u32 = 1;
/// Import conflict policy: write the bundle's values as new versions of existing secrets.
pub const TBS_ON_CONFLICT_OVERWRITE: u32 = 2;

/// Writes this store's export public key (`ed25519:…`, UTF-8, no NUL in the length) into
/// `*out`: the key importers trust (`trusted` of `tbs_store_import_bundle`). Session handles
/// need READ in every tenant.
///
/// # Safety
/// `store` must be a live handle; `out` valid for writes.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_export_key(
    store: *mut tbs_store,
    out: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        let out: Out<tbs_buffer> = arg!(out);
        let s: Session = arg!(store);
        out.put(buffer_from(s.export_key()?.to_string().as_bytes()))
    })
}

/// Writes the tenant's secrets into an export bundle (an age file, encrypted to the age
/// recipients listed in `recipients`, `age1…` one per line, and signed by this store's export
/// key) into `*out`. `flags`: 0 or `TBS_EXPORT_ALL_VERSIONS`. Audited, one EXPORT record per
/// secret. Session handles need RESOLVE in `tenant`. A bad recipient is
/// `TBS_INVALID_ARGUMENT`.
///
/// # Safety
/// `store` must be a live handle; strings NUL-terminated UTF-8; `out` valid for writes.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_export_bundle(
    store: *mut tbs_store,
    tenant: *const c_char,
    recipients: *const c_char,
    flags: u32,
    out: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        let out: Out<tbs_buffer> = arg!(out);
        let s: Session = arg!(store);
        let options = ExportOptions {
            all_versions: flags & TBS_EXPORT_ALL_VERSIONS != 0,
        };
        let bundle = s.export_bundle(arg!(tenant), arg!(recipients), &options)?;
        out.put(buffer_from(&bundle.bytes))
    })
}

/// Imports the bundle `bundle[0..bundle_len)` into the tenant, all or nothing: decrypted with
/// the age identity file text `identity`, its signature checked against this store's own
/// export key and the keys in `trusted` (`ed25519:…` one per line; NULL: none), secrets that
/// exist handled by `on_conflict` (`TBS_ON_CONFLICT_*`). `flags`: 0 or `TBS_IMPORT_DRY_RUN`.
/// `*out_report` (may be NULL) receives the report as JSON (what was created, skipped,
/// overwritten; never a value). A changed bundle or an untrusted signer is `TBS_INTEGRITY`,
/// an identity the bundle was not encrypted to `TBS_INVALID_ARGUMENT`, an existing name under
/// `TBS_ON_CONFLICT_FAIL` `TBS_ALREADY_EXISTS`; nothing is written then. Session handles need
/// WRITE in `tenant`.
///
/// # Safety
/// `store` must be a live handle; `bundle` valid for `bundle_len` bytes; strings
/// NUL-terminated UTF-8 (`trusted` may be NULL); `out_report` NULL or valid for writes.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_import_bundle(
    store: *mut tbs_store,
    tenant: *const c_char,
    bundle: *const u8,
    bundle_len: usize,
    identity: *const c_char,
    trusted: *const c_char,
    on_conflict: u32,
    flags: u32,
    out_report: *mut tbs_buffer,
) -> tbs_status {
    guard(|| {
        let out_report: OptOut<tbs_buffer> = arg!(out_report);
        let s: Session = arg!(store);
        let bytes: &[u8] = arg!(bundle, bundle_len);
        let trusted: Option<&str> = arg!(trusted);
        let on_conflict = match on_conflict {
            TBS_ON_CONFLICT_FAIL => OnConflict::Fail,
            TBS_ON_CONFLICT_SKIP => OnConflict::Skip,
            TBS_ON_CONFLICT_OVERWRITE => OnConflict::Overwrite,
            other => {
                return Err(Error::invalid(format!(
                    "on_conflict {other} is not a TBS_ON_CONFLICT_* value"
                )))
            }
        };
        let options = ImportOptions {
            on_conflict,
            dry_run: flags & TBS_IMPORT_DRY_RUN != 0,
            trusted_signers: Vec::new(),
        }
        .trust(trusted.unwrap_or(""))?;
        let report = s.import_bundle(arg!(tenant), bytes, arg!(identity), &options)?;
        out_report.json(&report)
    })
}

/// The secrets the `count` documents `texts[i]` (NUL-terminated UTF-8, reported under
/// `labels[i]`) need, as JSON into `*out_json`: each (name, type) with the labels using it
/// and, against the tenant, its `status` (`PRESENT`, `MISSING`, `TYPE_MISMATCH`, `PATTERN`),
/// every missing one at once. `*out_missing` (may be NULL) receives how many are missing or
/// of another type. Session handles need READ in `tenant`.
///
/// # Safety
/// `store` must be a live handle; `labels` and `texts` arrays of `count` valid strings;
/// `out_json` valid for writes, `out_missing` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn tbs_store_manifest(
    store: *mut tbs_store,
    tenant: *const c_char,
    labels: *const *const c_char,
    texts: *const *const c_char,
    count: usize,
    out_json: *mut tbs_buffer,
    out_missing: *mut usize,
) -> tbs_status {
    guard(|| {
        let out_json: Out<tbs_buffer> = arg!(out_json);
        let out_missing: OptOut<usize> = arg!(out_missing);
        let s: Session = arg!(store);
        if count > 0 && (labels.is_null() || texts.is_null()) {
            return Err(Error::invalid(
                "labels and texts must not be NULL when count > 0",
            ));
        }
        let mut documents = Vec::with_capacity(count);
        for i in 0..count {
            // SAFETY: the caller's contract: both arrays hold `count` valid pointers.
            let (label, text) = unsafe { (*labels.add(i), *texts.add(i)) };
            // SAFETY: as above, each a NUL-terminated string (NULL is refused by `from_c`).
            let label: &str = unsafe { FromC::from_c(label, "labels[i]") }?;
            // SAFETY: as above.
            let text: &str = unsafe { FromC::from_c(text, "texts[i]") }?;
            documents.push(ManifestDocument { label, text });
        }
        let manifest = s.manifest(arg!(tenant), &documents)?;
        let missing = manifest
            .secrets
            .iter()
            .filter(|e| {
                matches!(
                    e.status,
                    Some(
                        crate::bundle::ManifestStatus::Missing
                            | crate::bundle::ManifestStatus::TypeMismatch
                    )
                )
            })
            .count();
        out_missing.put(missing)?;
        out_json.json(&manifest)
    })
}
