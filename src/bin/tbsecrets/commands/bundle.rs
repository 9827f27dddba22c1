//! `export`, `import`, `export-key` and `manifest`: export bundles and configuration
//! manifests (docs/CLI.md).

use super::io::{open_file, read_bounded, read_text};
use super::{open_existing, principal};
use crate::args::{ConflictArg, Global};
use crate::render;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use tbsecrets::bundle::{
    ExportOptions, ImportAction, ImportOptions, ManifestDocument, ManifestStatus,
};
use tbsecrets::{Error, ErrorCode, Result, Role};

/// The largest bundle `import` reads.
const MAX_BUNDLE_BYTES: usize = 1 << 30;

/// `tbsecrets export`.
pub(super) fn export(
    g: &Global,
    output: &Path,
    recipients: &[String],
    files: &[PathBuf],
    all_versions: bool,
    json: bool,
) -> Result<Vec<u8>> {
    let mut list = recipients.join("\n");
    for file in files {
        list.push('\n');
        list.push_str(&read_text(file)?);
    }
    let store = open_existing(g)?;
    let bundle = store.session(principal(g, Role::Service)?).export_bundle(
        &g.tenant,
        &list,
        &ExportOptions { all_versions },
    )?;
    tbsecrets::write_private_atomically(output, &bundle.bytes)?;
    #[derive(Serialize)]
    struct Exported<'a> {
        action: &'static str,
        tenant: &'a str,
        output: String,
        secrets: usize,
        versions: usize,
    }
    let done = Exported {
        action: "exported",
        tenant: &g.tenant,
        output: output.display().to_string(),
        secrets: bundle.secrets,
        versions: bundle.versions,
    };
    render::report(json, &done, || {
        format!(
            "exported {} secrets ({} versions) of tenant '{}' to {}",
            bundle.secrets,
            bundle.versions,
            g.tenant,
            output.display()
        )
    })
}

/// The options of `tbsecrets import`.
pub(super) fn import_options(
    on_conflict: ConflictArg,
    dry_run: bool,
    trust: &[String],
    trusted_keys: &Option<PathBuf>,
) -> Result<ImportOptions> {
    let mut options = ImportOptions {
        on_conflict: on_conflict.into(),
        dry_run,
        trusted_signers: Vec::new(),
    }
    .trust(&trust.join("\n"))?;
    if let Some(file) = trusted_keys {
        options = options
            .trust(&read_text(file)?)
            .map_err(|e| e.prefixed_by(&file.display().to_string()))?;
    }
    Ok(options)
}

/// `tbsecrets import`.
pub(super) fn import(
    g: &Global,
    file: &Path,
    identity: &Path,
    options: &ImportOptions,
    json: bool,
) -> Result<Vec<u8>> {
    let what = file.display().to_string();
    let bundle = read_bounded(open_file(file, &what)?, MAX_BUNDLE_BYTES, &what, "")?;
    let key_what = identity.display().to_string();
    let key = read_bounded(open_file(identity, &key_what)?, 64 * 1024, &key_what, "")?;
    let key = std::str::from_utf8(&key)
        .map_err(|_| Error::invalid(format!("{key_what} is not an age identity file")))?;
    let store = open_existing(g)?;
    let report = store
        .session(principal(g, Role::TenantAdmin)?)
        .import_bundle(&g.tenant, &bundle, key, options)?;
    if json {
        return render::json(&report);
    }
    let mut out = String::new();
    for item in &report.items {
        out.push_str(&format!(
            "{:<9} {} ({}, {} version{})\n",
            item.action.as_str(),
            item.name,
            item.secret_type,
            item.versions,
            if item.versions == 1 { "" } else { "s" }
        ));
    }
    let verb = if report.dry_run {
        "would import"
    } else {
        "imported"
    };
    out.push_str(&format!(
        "{verb} into tenant '{}' (from tenant '{}', signed by {}): {} created, {} overwritten, {} skipped, {} in conflict\n",
        g.tenant,
        report.source_tenant,
        report.signer,
        report.count(ImportAction::Create),
        report.count(ImportAction::Overwrite),
        report.count(ImportAction::Skip),
        report.count(ImportAction::Conflict),
    ));
    Ok(out.into_bytes())
}

/// `tbsecrets export-key`.
pub(super) fn export_key(g: &Global, json: bool) -> Result<Vec<u8>> {
    let store = open_existing(g)?;
    let key = store
        .session(principal(g, Role::SysAdmin)?)
        .export_key()?
        .to_string();
    #[derive(Serialize)]
    struct ExportKey<'a> {
        export_key: &'a str,
    }
    render::report(json, &ExportKey { export_key: &key }, || key.clone())
}

/// `tbsecrets manifest`: prints the report; with --tenant, fails with NOT_FOUND (after
/// printing it) when anything is missing or mistyped.
pub(super) fn manifest(g: &Global, files: &[PathBuf], json: bool) -> Result<Vec<u8>> {
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|f| Ok((f.display().to_string(), read_text(f)?)))
        .collect::<Result<_>>()?;
    let documents: Vec<ManifestDocument<'_>> = texts
        .iter()
        .map(|(label, text)| ManifestDocument { label, text })
        .collect();
    let manifest = if g.tenant_given {
        let store = open_existing(g)?;
        store
            .session(principal(g, Role::TenantAdmin)?)
            .manifest(&g.tenant, &documents)?
    } else {
        tbsecrets::bundle::manifest(&documents)?
    };
    let out = if json {
        render::json(&manifest)?
    } else {
        let mut out = String::new();
        for entry in &manifest.secrets {
            let status = entry.status.map_or("", |s| match s {
                ManifestStatus::Present => "present  ",
                ManifestStatus::Missing => "MISSING  ",
                ManifestStatus::TypeMismatch => "MISTYPED ",
                ManifestStatus::Pattern => "pattern  ",
            });
            let ty = entry.secret_type.map_or("any", |t| t.as_str());
            out.push_str(&format!(
                "{status}{} ({ty}): {}\n",
                entry.name,
                entry.files.join(", ")
            ));
        }
        out.into_bytes()
    };
    if !manifest.incomplete() {
        return Ok(out);
    }
    let missing: Vec<&str> = manifest
        .secrets
        .iter()
        .filter(|e| {
            matches!(
                e.status,
                Some(ManifestStatus::Missing | ManifestStatus::TypeMismatch)
            )
        })
        .map(|e| e.name.as_str())
        .collect();
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&out).and_then(|()| stdout.flush());
    Err(Error::new(
        ErrorCode::NotFound,
        format!(
            "{} secret(s) needed are missing from tenant '{}' or of another type: {}",
            missing.len(),
            g.tenant,
            missing.join(", ")
        ),
    ))
}
