//! Export bundles and configuration manifests (docs/FORMATS.md, "Export bundle"): the
//! options and reports of `export_bundle`, `import_bundle` and `manifest`, the bundle's
//! signed JSON document ([`document`]) and its age encryption ([`envelope`]). Pure: the
//! service (`src/service/bundle.rs`) reads and writes the store.

pub(crate) mod document;
pub(crate) mod envelope;
mod manifest;

pub use crate::crypto::ExportPublicKey;
pub(crate) use manifest::manifest_is_pattern;
pub use manifest::{manifest, Manifest, ManifestDocument, ManifestEntry, ManifestStatus};

use crate::error::{Error, ErrorCode, Result};
use crate::model::SecretType;
use serde::Serialize;
use std::str::FromStr;

/// What [`crate::SecretStorage::export_bundle`] writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// Every kept version of each secret (oldest first), not only the current one.
    pub all_versions: bool,
}

/// What an import does with a secret whose name already exists in the tenant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    /// Import nothing: the import fails with ALREADY_EXISTS naming every such secret.
    #[default]
    Fail,
    /// Keep the existing secret; import the others.
    Skip,
    /// Write the bundle's value(s) as new version(s) of the existing secret (same type only:
    /// TYPE_MISMATCH otherwise). Its description becomes the bundle's.
    Overwrite,
}

impl OnConflict {
    /// `fail`, `skip` or `overwrite`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnConflict::Fail => "fail",
            OnConflict::Skip => "skip",
            OnConflict::Overwrite => "overwrite",
        }
    }
}

impl FromStr for OnConflict {
    type Err = Error;

    /// `fail`, `skip` or `overwrite` (case-insensitive).
    fn from_str(text: &str) -> Result<OnConflict> {
        match text.to_ascii_lowercase().as_str() {
            "fail" => Ok(OnConflict::Fail),
            "skip" => Ok(OnConflict::Skip),
            "overwrite" => Ok(OnConflict::Overwrite),
            _ => Err(Error::invalid(format!(
                "conflict policy '{text}' is not one of fail, skip, overwrite"
            ))),
        }
    }
}

/// How [`crate::SecretStorage::import_bundle`] imports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// What to do with names that exist already.
    pub on_conflict: OnConflict,
    /// Report what would happen and change nothing.
    pub dry_run: bool,
    /// The export keys (`tbsecrets export-key` of the exporting store) whose bundles are
    /// accepted, besides this store's own. A bundle signed by any other key is INTEGRITY.
    pub trusted_signers: Vec<ExportPublicKey>,
}

impl ImportOptions {
    /// Adds the export keys listed in `text`: one `ed25519:…` per line or separated by
    /// whitespace or commas; blank lines and lines starting with `#` are ignored.
    pub fn trust(mut self, text: &str) -> Result<ImportOptions> {
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            for key in line.split(|c: char| c.is_whitespace() || c == ',') {
                if !key.is_empty() {
                    self.trusted_signers.push(key.parse()?);
                }
            }
        }
        Ok(self)
    }
}

/// What an import did (or, dry, would do) with one secret of the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportAction {
    /// The secret did not exist: created.
    Create,
    /// The secret exists and the policy is `skip`: left as it is.
    Skip,
    /// The secret exists and the policy is `overwrite`: new version(s) written.
    Overwrite,
    /// The secret exists and the policy is `fail`: the import fails (a dry run reports it).
    Conflict,
}

impl ImportAction {
    /// `create`, `skip`, `overwrite` or `conflict`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportAction::Create => "create",
            ImportAction::Skip => "skip",
            ImportAction::Overwrite => "overwrite",
            ImportAction::Conflict => "conflict",
        }
    }
}

/// One secret of an import report (never a value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportItem {
    /// The secret's name.
    pub name: String,
    /// Its type in the bundle.
    #[serde(rename = "type")]
    pub secret_type: SecretType,
    /// What was (or would be) done.
    pub action: ImportAction,
    /// Versions the bundle holds for it (written, unless skipped or in conflict).
    pub versions: usize,
    /// Its current version afterwards (`None` for a dry run, a skip or a conflict).
    pub version: Option<u64>,
}

/// What [`crate::SecretStorage::import_bundle`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// Nothing was written.
    pub dry_run: bool,
    /// The export key that signed the bundle (`ed25519:…`).
    pub signer: String,
    /// The tenant the bundle was exported from.
    pub source_tenant: String,
    /// When it was exported, ms since the Unix epoch.
    pub exported_at: i64,
    /// Every secret of the bundle, in its order (name order).
    pub items: Vec<ImportItem>,
}

impl ImportReport {
    /// How many items have `action`.
    pub fn count(&self, action: ImportAction) -> usize {
        self.items.iter().filter(|i| i.action == action).count()
    }
}

/// An export bundle: the age file's bytes and what it holds.
#[derive(Clone, PartialEq, Eq)]
pub struct ExportedBundle {
    /// The age file (encrypted: safe to store or send).
    pub bytes: Vec<u8>,
    /// Secrets it holds.
    pub secrets: usize,
    /// Versions it holds.
    pub versions: usize,
}

impl std::fmt::Debug for ExportedBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportedBundle")
            .field("bytes", &self.bytes.len())
            .field("secrets", &self.secrets)
            .field("versions", &self.versions)
            .finish()
    }
}

/// A bundle that fails to verify: INTEGRITY with `detail`.
pub(crate) fn invalid_bundle(detail: impl Into<String>) -> Error {
    Error::new(ErrorCode::Integrity, detail.into())
}
