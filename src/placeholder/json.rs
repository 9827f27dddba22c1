//! Resolution inside JSON documents: string values are resolved, everything else is kept byte
//! for byte.

use super::dynamic::Variables;
use super::json_string::{push_escaped, secret_strings};
use super::output::{Output, OutputBuffer, SliceOutput};
use super::resolve::Resolver;
use super::SecretSource;
use crate::error::Error;
use crate::Result;
use std::borrow::Cow;

/// Resolves the placeholders in every string value of the JSON document `doc`, at any depth.
///
/// `doc` must be valid JSON, else `INVALID_ARGUMENT` ("not valid JSON: ..."). Object keys are
/// never resolved. Placeholders are recognised in the decoded string, so one spelled with
/// `\u` escapes counts too. Only string values holding `${secret:` (a placeholder or an escape)
/// are rewritten: decoded, resolved as by [`resolve_text`](super::resolve_text), and written back
/// with JSON escaping, so PEM newlines and quotes in values stay valid JSON. Every other byte
/// (keys, numbers, whitespace, key order, other strings) is copied unchanged. Returns
/// `Cow::Borrowed(doc)` when no string value holds `${secret:`.
///
/// Errors are those of `resolve_text`; offsets in [`Error::problems`] are exact byte offsets of
/// the `${secret:` in `doc` (for a placeholder spelled with escapes, of its first escape).
/// A document over [`MAX_DOCUMENT_BYTES`](super::MAX_DOCUMENT_BYTES) is `INVALID_ARGUMENT`.
pub fn resolve_json<'a, S: SecretSource + ?Sized>(
    doc: &'a str,
    source: &mut S,
) -> Result<Cow<'a, str>> {
    resolve_json_with(doc, source, None)
}

/// [`resolve_json`] with the variables per-message names are filled from (see
/// [`resolve_text_with`](super::resolve_text_with)).
pub fn resolve_json_with<'a, S: SecretSource + ?Sized>(
    doc: &'a str,
    source: &mut S,
    variables: Option<&Variables>,
) -> Result<Cow<'a, str>> {
    super::check_document_len(doc.len())?;
    validate_json(doc)?;
    let units = secret_strings(doc)?;
    if units.is_empty() {
        return Ok(Cow::Borrowed(doc));
    }
    let mut out = OutputBuffer::for_document(doc.len());
    resolve_units_to(doc, &units, source, variables, &mut out)?;
    Ok(Cow::Owned(out.into_string()))
}

/// [`resolve_json_with`] into the caller's buffer `out`, as
/// [`resolve_text_into`](super::resolve_text_into) does for text: returns the resolved
/// length; the document is in `out[..length]` when that fits, else (and on an error) nothing
/// of it is left in `out`.
pub fn resolve_json_into<S: SecretSource + ?Sized>(
    doc: &str,
    source: &mut S,
    variables: Option<&Variables>,
    out: &mut [u8],
) -> Result<usize> {
    super::check_document_len(doc.len())?;
    validate_json(doc)?;
    let units = secret_strings(doc)?;
    SliceOutput::write_into(out, |sink| {
        resolve_units_to(doc, &units, source, variables, sink)
    })
}

/// `doc` with its string values `units` resolved, written to `out`.
fn resolve_units_to<S: SecretSource + ?Sized>(
    doc: &str,
    units: &[super::json_string::Unit<'_>],
    source: &mut S,
    variables: Option<&Variables>,
    out: &mut impl Output,
) -> Result<()> {
    let mut resolver = Resolver::with_variables(variables);
    let mut pos = 0;
    for unit in units {
        out.push(&doc[pos..unit.start]);
        out.push("\"");
        resolver.resolve(
            source,
            &unit.text,
            |offset| unit.doc_offset(doc, offset),
            |piece| push_escaped(piece, |escaped| out.push(escaped)),
        )?;
        out.push("\"");
        pos = unit.end;
    }
    out.push(&doc[pos..]);
    resolver.finish()
}

/// Checks that `doc` is one valid JSON value (`INVALID_ARGUMENT` otherwise).
pub(crate) fn validate_json(doc: &str) -> Result<()> {
    super::work::step(doc.len());
    serde_json::from_str::<serde::de::IgnoredAny>(doc)
        .map(drop)
        .map_err(|e| Error::invalid(format!("not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placeholder::test_support::{secrets, MapSource};
    use crate::{ErrorCode, SecretType};

    fn source() -> MapSource {
        secrets(&[
            (
                "pem",
                SecretType::TextFile,
                "-----BEGIN X-----\nAB\"C\\D\n-----END X-----\n",
            ),
            ("pw", SecretType::Text, "p@ss \"q\" \\ ü\t"),
        ])
    }

    fn value_at<'v>(value: &'v serde_json::Value, pointer: &str) -> &'v str {
        value.pointer(pointer).and_then(|v| v.as_str()).unwrap()
    }

    #[test]
    fn resolves_values_at_any_depth_and_keeps_the_rest() {
        let doc = "{\n  \"a\" : [1, 2.50, true, null, {\"deep\": [[{\"x\": \"pw=${secret:pw;type:TEXT}\"}]]}],\n\t\"ca\":\"${secret:pem;type:FILE}\" }";
        let out = resolve_json(doc, &mut source()).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value_at(&parsed, "/a/4/deep/0/0/x"), "pw=p@ss \"q\" \\ ü\t");
        assert_eq!(
            value_at(&parsed, "/ca"),
            "-----BEGIN X-----\nAB\"C\\D\n-----END X-----\n"
        );
        // Everything outside the two rewritten strings is byte for byte the same.
        let first = doc.find("\"pw=").unwrap();
        assert_eq!(&out[..first], &doc[..first]);
        assert!(out.starts_with("{\n  \"a\" : [1, 2.50, true, null,"));
        assert!(out.ends_with(
            "\"}]]}],\n\t\"ca\":\"-----BEGIN X-----\\nAB\\\"C\\\\D\\n-----END X-----\\n\" }"
        ));
    }

    #[test]
    fn placeholder_in_a_key_is_left_alone() {
        let doc = r#"{"${secret:pw}": "${deviceName}", "k": {"${secret:pem}" :"v"}}"#;
        let mut src = source();
        let out = resolve_json(doc, &mut src).unwrap();
        assert!(matches!(out, Cow::Borrowed(d) if d == doc));
        assert!(src.calls.is_empty());
    }

    #[test]
    fn document_without_placeholders_is_borrowed() {
        let doc =
            r#"{"url": "https://x/${deviceName}", "n": [1, "\u00e9"], "e": "${ENV:default}"}"#;
        assert!(matches!(resolve_json(doc, &mut source()).unwrap(), Cow::Borrowed(d) if d == doc));
    }

    #[test]
    fn escapes_in_values_become_literal() {
        let doc = r#"{"k": "$${secret:pw}", "${secret:pw}": 1}"#;
        let mut src = source();
        let out = resolve_json(doc, &mut src).unwrap();
        assert_eq!(out, r#"{"k": "${secret:pw}", "${secret:pw}": 1}"#);
        assert!(src.calls.is_empty());
    }

    #[test]
    fn placeholder_spelled_with_unicode_escapes_is_resolved() {
        let doc = r#"["\u0024{secret:pw}", "\u00e9 ${secret:pw}"]"#;
        let out = resolve_json(doc, &mut source()).unwrap();
        let parsed: Vec<String> = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed, ["p@ss \"q\" \\ ü\t", "é p@ss \"q\" \\ ü\t"]);
    }

    #[test]
    fn invalid_json_is_rejected() {
        for doc in [
            "",
            "{",
            r#"{"a": "${secret:pw}""#,
            "[1,]",
            "{\"a\":\"x\ny\"}",
        ] {
            let err = resolve_json(doc, &mut source()).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidArgument, "{doc:?}");
            assert!(err.message().starts_with("not valid JSON: "), "{err}");
        }
    }

    #[test]
    fn error_offsets_are_document_offsets() {
        let doc = r#"{"a": "x ${secret:gone}", "b": ["\n\"${secret:pw;type:FILE}"], "c": "${secret:bad"}"#;
        let err = resolve_json(doc, &mut source()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::MalformedPlaceholder);
        let found: Vec<(&str, usize, ErrorCode)> = err
            .problems()
            .iter()
            .map(|p| (p.name.as_str(), p.offset, p.code))
            .collect();
        let at = |needle: &str| doc.find(needle).unwrap();
        assert_eq!(
            found,
            vec![
                ("gone", at("${secret:gone"), ErrorCode::NotFound),
                ("pw", at("${secret:pw"), ErrorCode::TypeMismatch),
                ("bad", at("${secret:bad"), ErrorCode::MalformedPlaceholder),
            ]
        );
        assert!(!err.to_string().contains("p@ss"));
    }

    #[test]
    fn scalar_documents() {
        let out = resolve_json("\"${secret:pw}\"", &mut source()).unwrap();
        assert_eq!(
            serde_json::from_str::<String>(&out).unwrap(),
            "p@ss \"q\" \\ ü\t"
        );
        assert!(matches!(
            resolve_json(" 42 ", &mut source()).unwrap(),
            Cow::Borrowed(" 42 ")
        ));
    }

    #[test]
    fn deep_nesting_resolves_without_recursion() {
        for depth in [100, 50_000] {
            let doc = format!(
                "{}{{\"k\": \"${{secret:pw}}\", \"${{secret:key}}\": 1}}{}",
                "[{\"a\":".repeat(depth),
                "}]".repeat(depth)
            );
            let out = resolve_json(&doc, &mut source()).unwrap();
            let inner = "{\"k\": \"p@ss \\\"q\\\" \\\\ ü\\t\", \"${secret:key}\": 1}";
            let expected = format!("{}{inner}{}", "[{\"a\":".repeat(depth), "}]".repeat(depth));
            assert!(out == expected, "depth {depth}: output differs");
        }
    }
}
