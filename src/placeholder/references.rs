//! Which secrets a document uses (docs/ARCHITECTURE.md, "Placeholders": the "where used" index).

use super::json::validate_json;
use super::json_string::secret_strings;
use super::scan::{scan, Token};
use crate::error::{Error, ErrorCode, PlaceholderProblem};
use crate::model::SecretType;
use crate::Result;
use serde::Serialize;

/// A distinct (name, type) pair a document uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Reference {
    /// The secret name.
    pub name: String,
    /// The type the placeholder asks for; `None` for the short form (any type). `FILE` is
    /// reported as `TEXT_FILE`.
    #[serde(rename = "type")]
    pub secret_type: Option<SecretType>,
}

/// The distinct (name, type) pairs `document` uses, in order of first appearance.
///
/// A document whose first non-blank character is `{` or `[` and that is valid JSON is read as
/// JSON: only string values count (not keys), after JSON decoding. Any other document is read
/// as plain text. Escapes `$${secret:` are not references. Fails with `MALFORMED_PLACEHOLDER`,
/// listing every malformed placeholder (with byte offsets in `document`), if there is any.
/// A document over [`MAX_DOCUMENT_BYTES`](super::MAX_DOCUMENT_BYTES) is `INVALID_ARGUMENT`.
pub fn references(document: &str) -> Result<Vec<Reference>> {
    super::check_document_len(document.len())?;
    let mut found = Found::default();
    let json_container = matches!(document.trim_start().as_bytes().first(), Some(b'{' | b'['));
    if json_container && validate_json(document).is_ok() {
        for unit in secret_strings(document)? {
            found.add(scan(&unit.text), |offset| unit.doc_offset(document, offset));
        }
    } else {
        found.add(scan(document), |offset| offset);
    }
    found.finish()
}

#[derive(Default)]
struct Found {
    references: Vec<Reference>,
    seen: foldhash::HashSet<Reference>,
    malformed: Vec<PlaceholderProblem>,
}

impl Found {
    fn add<'t>(
        &mut self,
        tokens: impl Iterator<Item = Token<'t>>,
        locate: impl Fn(usize) -> usize,
    ) {
        for token in tokens {
            match token {
                Token::Placeholder(p) => {
                    let reference = Reference {
                        name: p.name.to_owned(),
                        secret_type: p.expected,
                    };
                    if self.seen.insert(reference.clone()) {
                        self.references.push(reference);
                    }
                }
                Token::Escape { .. } => {}
                Token::Malformed(m) => self.malformed.push(PlaceholderProblem {
                    code: ErrorCode::MalformedPlaceholder,
                    name: m.name.to_owned(),
                    offset: locate(m.offset),
                    reason: m.reason,
                }),
            }
        }
    }

    fn finish(self) -> Result<Vec<Reference>> {
        if self.malformed.is_empty() {
            Ok(self.references)
        } else {
            Err(Error::placeholders(
                ErrorCode::MalformedPlaceholder,
                self.malformed,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, secret_type: Option<SecretType>) -> Reference {
        Reference {
            name: name.to_owned(),
            secret_type,
        }
    }

    #[test]
    fn distinct_pairs_in_order_of_first_appearance() {
        let text = "${secret:b} ${secret:a;type:TEXT} $${secret:esc} ${secret:b} ${secret:a} ${secret:c;type:FILE} ${secret:c;type:TEXT_FILE}";
        assert_eq!(
            references(text).unwrap(),
            vec![
                r("b", None),
                r("a", Some(SecretType::Text)),
                r("a", None),
                r("c", Some(SecretType::TextFile)),
            ]
        );
    }

    #[test]
    fn json_values_only_after_decoding() {
        let doc =
            r#"{"${secret:key}": "${secret:v1}", "l": ["\u0024{secret:v2}", "${deviceName}"]}"#;
        assert_eq!(references(doc).unwrap(), vec![r("v1", None), r("v2", None)]);
    }

    #[test]
    fn non_json_braces_are_plain_text() {
        let doc = "{ url = \"${secret:a}\", ${secret:b} }";
        assert_eq!(references(doc).unwrap(), vec![r("a", None), r("b", None)]);
    }

    #[test]
    fn malformed_placeholders_are_all_reported() {
        let err = references("${secret:ok} ${secret:a;x} ${secret:").unwrap_err();
        assert_eq!(err.code(), ErrorCode::MalformedPlaceholder);
        let offsets: Vec<usize> = err.problems().iter().map(|p| p.offset).collect();
        assert_eq!(offsets, [13, 27]);
    }

    #[test]
    fn serializes_type_as_type() {
        let json = serde_json::to_string(&r("ca", Some(SecretType::TextFile))).unwrap();
        assert_eq!(json, r#"{"name":"ca","type":"TEXT_FILE"}"#);
        assert_eq!(
            serde_json::to_string(&r("x", None)).unwrap(),
            r#"{"name":"x","type":null}"#
        );
    }
}
