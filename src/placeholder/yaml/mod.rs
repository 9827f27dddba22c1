//! Resolution inside YAML documents: scalar values are resolved and written back by YAML's
//! rules, everything else is kept byte for byte.
//!
//! The document is parsed with `saphyr-parser` (YAML 1.2, event parser with source spans), which
//! finds every scalar and its exact place in the text; only scalar values (not mapping keys)
//! that hold `${secret:` are rewritten. The output is parsed again and every rewritten scalar
//! compared with the value it must hold, so a document is handed out only if it is valid YAML
//! holding exactly the resolved values.
//!
//! `scalars.rs` walks the document and finds the scalars to rewrite; `quote.rs` writes a
//! resolved value back by YAML's quoting rules; this file ties them together and checks the
//! output.

use super::output::OutputBuffer;
use super::resolve::Resolver;
use super::{Fetched, SecretSource};
use crate::error::Error;
use crate::Result;
use saphyr_parser::{Event, Parser, ScalarStyle};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use zeroize::{Zeroize, Zeroizing};

mod quote;
mod scalars;

use quote::{
    literal_block, literal_block_fits, push_block_in_place, push_double_quoted, single_quotable,
};
use scalars::{opens, secret_scalars, Unit};

/// Resolves the placeholders in every scalar value of the YAML document (or stream) `doc`.
///
/// `doc` must be valid YAML, else `INVALID_ARGUMENT` ("not valid YAML: ..."). Mapping keys are
/// never resolved. Placeholders are recognised in the scalar's value (after YAML decoding). A
/// rewritten scalar is always a string, written so that YAML reads back the exact text:
///
/// - a double-quoted scalar stays double-quoted (`\"`, `\\`, `\n`, `\uXXXX`, ... escapes);
/// - a single-quoted scalar stays single-quoted (`''`) unless the value holds a line break or a
///   character YAML cannot print, then it becomes double-quoted;
/// - a plain scalar that is exactly one placeholder whose value spans lines (a PEM) becomes a
///   literal block scalar (`|`, `|-` or `|+`, indented below its key) when it is in block context
///   and nothing but a comment follows it on its line;
/// - any other plain scalar becomes double-quoted, so that values such as `yes`, `null`, `1883`,
///   `a: b`, `#x`, `*x`, `&x`, `!x`, `- x` or ` x ` keep their text and stay strings;
/// - inside a literal or folded block scalar the value is written in place, its lines indented
///   like the block's.
///
/// Every other byte is copied unchanged. Returns `Cow::Borrowed(doc)` when no scalar value
/// holds `${secret:`. Errors are those of [`resolve_text`](super::resolve_text); offsets in
/// [`Error::problems`] are byte offsets in `doc` (of the `${secret:`, or of the scalar when the
/// placeholder is spelled with escapes or folded across lines). A value that cannot be written
/// where its placeholder stands (say a multi-line value in a folded block scalar) is
/// `INVALID_ARGUMENT` naming the line. A document over
/// [`MAX_DOCUMENT_BYTES`](super::MAX_DOCUMENT_BYTES) is `INVALID_ARGUMENT`.
pub fn resolve_yaml<'a, S: SecretSource + ?Sized>(
    doc: &'a str,
    source: &mut S,
) -> Result<Cow<'a, str>> {
    super::check_document_len(doc.len())?;
    let units = secret_scalars(doc)?;
    if units.is_empty() {
        return Ok(Cow::Borrowed(doc));
    }
    let mut out = OutputBuffer::for_document(doc.len());
    let mut resolver = Resolver::default();
    // Block scalars are rewritten in their raw text, which needs each name's replacement:
    // the values fetched are recorded (zeroized when dropped).
    let recorded: RefCell<HashMap<String, Zeroizing<String>>> = RefCell::default();
    let mut source = |name: &str| -> Result<Fetched> {
        let fetched = source.fetch(name)?;
        if let Fetched::Found { replacement, .. } = &fetched {
            recorded
                .borrow_mut()
                .insert(name.to_owned(), replacement.clone());
        }
        Ok(fetched)
    };
    let mut expected: Vec<(usize, Zeroizing<String>)> = Vec::with_capacity(units.len());
    let mut pos = 0;
    for unit in &units {
        out.push(&doc[pos..unit.start]);
        pos = unit.end;
        let mut value = OutputBuffer::with_capacity(unit.text.len() + 64);
        let (raw_opens, text_opens) = (opens(&doc[unit.start..unit.end]), opens(&unit.text));
        let same_opens = raw_opens.len() == text_opens.len();
        resolver.resolve(
            &mut source,
            &unit.text,
            |offset| match text_opens.binary_search(&offset) {
                Ok(i) if same_opens => unit.start + raw_opens[i],
                _ => unit.start,
            },
            |piece| value.push(piece),
        )?;
        let value = Zeroizing::new(value.into_string());
        match unit.style {
            ScalarStyle::Literal | ScalarStyle::Folded => {
                let raw = &doc[unit.start..unit.end];
                push_block_in_place(raw, unit, doc, &recorded.borrow(), &mut out)?;
            }
            ScalarStyle::SingleQuoted if single_quotable(&value) => {
                out.push("'");
                out.push(&Zeroizing::new(value.replace('\'', "''")));
                out.push("'");
            }
            ScalarStyle::Plain if unit.block_candidate && literal_block_fits(&value) => {
                let rest_of_line = &doc[unit.end..unit.line_end];
                let (header, body) = literal_block(&value, unit.indent + 2);
                out.push(&header);
                out.push(rest_of_line);
                out.push("\n");
                out.push(&body);
                pos = (unit.line_end + 1).min(doc.len());
            }
            _ => {
                let mut quoted = OutputBuffer::with_capacity(value.len() + 16);
                push_double_quoted(&value, &mut quoted);
                out.push(&Zeroizing::new(quoted.into_string()));
            }
        }
        expected.push((unit.event, value));
    }
    out.push(&doc[pos..]);
    resolver.finish()?;
    let out = out.into_string();
    if let Err(e) = check_output(&out, &units, &expected) {
        drop(Zeroizing::new(out));
        return Err(e);
    }
    Ok(Cow::Owned(out))
}

/// Parses the output again: it must be valid YAML with the same events, and each rewritten
/// scalar must hold the value it was given.
fn check_output(
    out: &str,
    units: &[Unit<'_>],
    expected: &[(usize, Zeroizing<String>)],
) -> Result<()> {
    let mut parser = Parser::new_from_str(out);
    let mut wanted = expected.iter().zip(units).peekable();
    let mut index = 0usize;
    loop {
        super::work::step(1);
        let mut event = match parser.next_event() {
            None => break,
            Some(Ok((event, _))) => event,
            Some(Err(e)) => {
                return Err(Error::invalid(format!(
                    "the resolved document is not valid YAML ({e}): a value cannot be written where its placeholder stands; quote the scalar"
                )))
            }
        };
        if let Some(((at, value), unit)) = wanted.peek() {
            if *at == index {
                let holds =
                    matches!(&event, Event::Scalar(text, ..) if text.as_ref() == value.as_str());
                if !holds {
                    let line = out[..unit.start].matches('\n').count() + 1;
                    return Err(Error::invalid(format!(
                        "a secret value cannot be written into the scalar at line {line} as it is (a line break or a character that needs escaping in a block scalar); write the placeholder as a quoted or plain scalar"
                    )));
                }
                wanted.next();
            }
        }
        // The verification parse's copies of values (decoded scalars are owned strings) are
        // wiped here; buffers internal to the scanner are not reachable and freed unwiped.
        if let Event::Scalar(Cow::Owned(text), ..) = &mut event {
            text.zeroize();
        }
        if matches!(event, Event::StreamEnd) {
            break;
        }
        index += 1;
    }
    if wanted.peek().is_some() {
        return Err(Error::invalid(
            "the resolved document has another structure than the original: a value cannot be written where its placeholder stands",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placeholder::test_support::{secrets, MapSource};
    use crate::{ErrorCode, SecretType};

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB: #x\n-----END CERTIFICATE-----\n";

    fn source() -> MapSource {
        secrets(&[
            ("pem", SecretType::TextFile, PEM),
            ("pw", SecretType::Text, "p@ss: \"q\" 'x' #c \\ ü\t"),
            ("yes", SecretType::Text, "yes"),
            ("num", SecretType::Text, "1883"),
            ("star", SecretType::Text, "*alias"),
        ])
    }

    /// The scalar values of a one-document stream, in order.
    fn scalars(doc: &str) -> Vec<String> {
        let mut parser = Parser::new_from_str(doc);
        let mut found = Vec::new();
        while let Some(event) = parser.next_event() {
            if let Event::Scalar(text, ..) = event.unwrap().0 {
                found.push(text.into_owned());
            }
        }
        found
    }

    #[test]
    fn each_style_round_trips() {
        let doc = "a: ${secret:pw}\nb: \"x ${secret:pw}\"\nc: 'y ${secret:pw}' # c\nd: ${secret:pem}\ne: ${secret:yes}\nf: [\"${secret:num}\"]\ng: |\n  L ${secret:pem}\n  end\n";
        let out = resolve_yaml(doc, &mut source()).unwrap();
        let pw = "p@ss: \"q\" 'x' #c \\ ü\t";
        assert_eq!(
            scalars(&out),
            [
                "a",
                pw,
                "b",
                &format!("x {pw}"),
                "c",
                &format!("y {pw}"),
                "d",
                PEM,
                "e",
                "yes",
                "f",
                "1883",
                "g",
                &format!("L {PEM}\nend\n"),
            ]
        );
        assert!(
            out.contains("d: |\n  -----BEGIN CERTIFICATE-----\n"),
            "{out}"
        );
        assert!(out.contains("e: \"yes\"\n"), "{out}");
    }

    #[test]
    fn keys_are_left_alone_and_no_placeholder_borrows() {
        let doc = "${secret:pw}: 1\nk: ${deviceName}\n";
        let mut src = source();
        assert!(matches!(resolve_yaml(doc, &mut src).unwrap(), Cow::Borrowed(d) if d == doc));
        assert!(src.calls.is_empty());
    }

    #[test]
    fn invalid_yaml_is_refused() {
        for doc in ["a: [1, 2", "a: \"x", "a:\n\t- b", "{x: ${secret:pw}}"] {
            let err = resolve_yaml(doc, &mut source()).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidArgument, "{doc:?}");
            assert!(err.message().starts_with("not valid YAML: "), "{err}");
        }
    }

    #[test]
    fn every_problem_is_named_with_its_offset() {
        let doc = "a: x ${secret:gone}\nb: \"${secret:pw;type:FILE}\"\nc: '${secret:bad'\n";
        let err = resolve_yaml(doc, &mut source()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::MalformedPlaceholder);
        let found: Vec<(&str, usize)> = err
            .problems()
            .iter()
            .map(|p| (p.name.as_str(), p.offset))
            .collect();
        let at = |needle: &str| doc.find(needle).unwrap();
        assert_eq!(
            found,
            [
                ("gone", at("${secret:gone")),
                ("pw", at("${secret:pw")),
                ("bad", at("${secret:bad"))
            ]
        );
        assert!(!err.to_string().contains("p@ss"));
    }
}
