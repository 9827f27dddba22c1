//! Which secrets configuration exports (rule chains, integrations) need: every placeholder
//! of every document, grouped by (name, type) with the documents that use it. Checked
//! against a store by [`crate::Session::manifest`], which marks what is missing.

use crate::error::Result;
use crate::model::SecretType;
use crate::placeholder::references;
use serde::Serialize;
use std::collections::BTreeMap;

/// One configuration document: a label to report (a file name) and its text.
#[derive(Debug, Clone, Copy)]
pub struct ManifestDocument<'a> {
    /// How the report names the document (e.g. its path).
    pub label: &'a str,
    /// Its text (JSON: string values are read; anything else as plain text).
    pub text: &'a str,
}

/// How a needed secret stands in the store checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ManifestStatus {
    /// The secret exists with a fitting type.
    Present,
    /// No secret of that name.
    Missing,
    /// The secret exists with another type than the placeholder asks for.
    TypeMismatch,
    /// A per-message name (`{{…}}`): known only when a message fills it, not checked.
    Pattern,
}

/// A secret the documents need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestEntry {
    /// The secret's name as written.
    pub name: String,
    /// The type the placeholders ask for (`None`: the short form, any type).
    #[serde(rename = "type")]
    pub secret_type: Option<SecretType>,
    /// The documents (labels) that use it, in the order given.
    pub files: Vec<String>,
    /// Against a store: how it stands there (`None` when no store was checked).
    pub status: Option<ManifestStatus>,
}

/// The secrets a set of documents needs, in (name, type) order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// Every (name, type) some document uses.
    pub secrets: Vec<ManifestEntry>,
    /// The tenant checked, if any.
    pub tenant: Option<String>,
}

impl Manifest {
    /// The entries with `status` (all of them `Missing` ones, say, reported together).
    pub fn with_status(&self, status: ManifestStatus) -> impl Iterator<Item = &ManifestEntry> {
        self.secrets
            .iter()
            .filter(move |e| e.status == Some(status))
    }

    /// Whether a store was checked and something needed is missing or mistyped there.
    pub fn incomplete(&self) -> bool {
        self.secrets.iter().any(|e| {
            matches!(
                e.status,
                Some(ManifestStatus::Missing | ManifestStatus::TypeMismatch)
            )
        })
    }
}

/// A (name, type)'s type and the documents using it.
type Uses = (Option<SecretType>, Vec<String>);

/// The secrets `documents` need (no store checked). A malformed placeholder fails with
/// MALFORMED_PLACEHOLDER naming the document and every problem.
pub fn manifest(documents: &[ManifestDocument<'_>]) -> Result<Manifest> {
    let mut found: BTreeMap<(String, Option<&'static str>), Uses> = BTreeMap::new();
    for document in documents {
        let used = references(document.text).map_err(|e| e.prefixed_by(document.label))?;
        for reference in used {
            let key = (
                reference.name,
                reference.secret_type.map(SecretType::as_str),
            );
            let (_, files) = found
                .entry(key)
                .or_insert_with(|| (reference.secret_type, Vec::new()));
            if files.last().map(String::as_str) != Some(document.label) {
                files.push(document.label.to_owned());
            }
        }
    }
    Ok(Manifest {
        secrets: found
            .into_iter()
            .map(|((name, _), (secret_type, files))| ManifestEntry {
                name,
                secret_type,
                files,
                status: None,
            })
            .collect(),
        tenant: None,
    })
}

/// Whether a name is a per-message pattern rather than one secret.
pub(crate) fn manifest_is_pattern(name: &str) -> bool {
    name.contains("{{")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_name_and_type_with_the_files() {
        let a = r#"{"k":"${secret:db;type:TEXT} ${secret:ca;type:TEXT_FILE}"}"#;
        let b = "x ${secret:db;type:TEXT} ${secret:db}";
        let m = manifest(&[
            ManifestDocument {
                label: "a.json",
                text: a,
            },
            ManifestDocument {
                label: "b.txt",
                text: b,
            },
        ])
        .unwrap();
        let got: Vec<_> = m
            .secrets
            .iter()
            .map(|e| (e.name.as_str(), e.secret_type, e.files.join(",")))
            .collect();
        assert_eq!(
            got,
            vec![
                ("ca", Some(SecretType::TextFile), "a.json".to_owned()),
                ("db", None, "b.txt".to_owned()),
                ("db", Some(SecretType::Text), "a.json,b.txt".to_owned()),
            ]
        );
        assert!(!m.incomplete());
        let err = manifest(&[ManifestDocument {
            label: "bad.txt",
            text: "${secret:",
        }])
        .unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::MalformedPlaceholder);
        assert!(err.message().starts_with("bad.txt: "), "{err}");
    }
}
