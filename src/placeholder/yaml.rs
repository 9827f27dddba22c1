//! Resolution inside YAML documents: scalar values are resolved and written back by YAML's
//! rules, everything else is kept byte for byte.
//!
//! The document is parsed with `saphyr-parser` (YAML 1.2, event parser with source spans), which
//! finds every scalar and its exact place in the text; only scalar values (not mapping keys)
//! that hold `${secret:` are rewritten. The output is parsed again and every rewritten scalar
//! compared with the value it must hold, so a document is handed out only if it is valid YAML
//! holding exactly the resolved values.

use super::output::OutputBuffer;
use super::resolve::Resolver;
use super::scan::{find_open, scan, Token};
use super::{Fetched, SecretSource};
use crate::error::Error;
use crate::Result;
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use zeroize::{Zeroize, Zeroizing};

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
    let mut out = OutputBuffer::with_capacity(doc.len() + doc.len() / 8 + 256);
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

/// Writes the raw text of a block scalar with each placeholder replaced by its recorded value,
/// the value's lines indented like the block's; escapes lose their first `$`. Writes nothing
/// once a name has no recorded value (the resolver reports that problem).
fn push_block_in_place(
    raw: &str,
    unit: &Unit<'_>,
    doc: &str,
    recorded: &HashMap<String, Zeroizing<String>>,
    out: &mut OutputBuffer,
) -> Result<()> {
    let indent = format!("\n{}", " ".repeat(unit.column));
    let mut pos = 0;
    let mut written = OutputBuffer::with_capacity(raw.len() + 64);
    for token in scan(raw) {
        match token {
            Token::Placeholder(p) => {
                let Some(value) = recorded.get(p.name) else {
                    return Ok(());
                };
                if !value.chars().all(|c| c == '\n' || printable(c)) {
                    let line = doc[..unit.start].matches('\n').count() + 1;
                    return Err(Error::invalid(format!(
                        "the value of '{}' holds a character a block scalar cannot carry (line {line}); write the placeholder as a quoted or plain scalar",
                        p.name
                    )));
                }
                written.push(&raw[pos..p.offset]);
                written.push(&Zeroizing::new(value.replace('\n', &indent)));
                pos = p.offset + p.len;
            }
            Token::Escape { offset } => {
                written.push(&raw[pos..offset]);
                pos = offset + 1;
            }
            Token::Malformed(_) => return Ok(()),
        }
    }
    written.push(&raw[pos..]);
    out.push(&Zeroizing::new(written.into_string()));
    Ok(())
}

/// A scalar value of a YAML document whose value contains `${secret:`.
struct Unit<'a> {
    /// Index of the scalar's event in the document's event stream.
    event: usize,
    /// Byte offset of the scalar's first byte (the quote of a quoted one; the first content
    /// byte of a block scalar).
    start: usize,
    /// Byte offset just after the scalar.
    end: usize,
    /// The scalar's value as YAML reads it.
    text: Cow<'a, str>,
    style: ScalarStyle,
    /// Column (in characters) of the scalar's first content byte.
    column: usize,
    /// Indentation of the node that owns the scalar's line (its key, or its `- `).
    indent: usize,
    /// Byte offset of the end of the scalar's last line (its `\n`, or the document's end).
    line_end: usize,
    /// Whether the scalar is exactly one placeholder in block context with nothing but
    /// blanks or a comment after it on its line.
    block_candidate: bool,
}

/// Where the parser is: one frame per open collection.
#[derive(Clone, Copy)]
struct Frame {
    mapping: bool,
    flow: bool,
    /// In a mapping: whether the next node is a key.
    next_is_key: bool,
    /// Whether this collection is (part of) a mapping key.
    in_key: bool,
}

/// Maps the parser's character indices to byte offsets, reading forward.
struct Offsets<'a> {
    doc: &'a str,
    chars: usize,
    bytes: usize,
}

impl Offsets<'_> {
    fn byte(&mut self, char_index: usize) -> usize {
        if char_index < self.chars {
            self.chars = 0;
            self.bytes = 0;
        }
        let rest = &self.doc[self.bytes..];
        let skip = char_index - self.chars;
        let advance = rest
            .char_indices()
            .nth(skip)
            .map_or(rest.len(), |(at, _)| at);
        super::work::step(advance + 1);
        self.chars = char_index;
        self.bytes += advance;
        self.bytes
    }
}

/// Every scalar value of `doc` holding `${secret:`, in document order. Fails with
/// `INVALID_ARGUMENT` if `doc` is not valid YAML.
fn secret_scalars(doc: &str) -> Result<Vec<Unit<'_>>> {
    let mut parser = Parser::new_from_str(doc);
    let mut offsets = Offsets {
        doc,
        chars: 0,
        bytes: 0,
    };
    let mut stack: Vec<Frame> = Vec::new();
    let mut units = Vec::new();
    let mut index = 0usize;
    loop {
        super::work::step(1);
        let (event, span) = match parser.next_event() {
            None => break,
            Some(Ok(next)) => next,
            Some(Err(e)) => return Err(Error::invalid(format!("not valid YAML: {e}"))),
        };
        let event_index = index;
        index += 1;
        let is_key = stack.last().is_some_and(|f| f.mapping && f.next_is_key)
            || stack.last().is_some_and(|f| f.in_key);
        let node = matches!(
            event,
            Event::Scalar(..)
                | Event::Alias(_)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
        );
        if node {
            if let Some(top) = stack.last_mut() {
                if top.mapping {
                    top.next_is_key = !top.next_is_key;
                }
            }
        }
        match event {
            Event::StreamEnd => break,
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                let start = offsets.byte(span.start.index());
                let flow = matches!(doc.as_bytes().get(start), Some(b'[' | b'{'))
                    || stack.last().is_some_and(|f| f.flow);
                stack.push(Frame {
                    mapping: matches!(event, Event::MappingStart(..)),
                    flow,
                    next_is_key: true,
                    in_key: is_key,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
            }
            Event::Scalar(text, style, _, _) => {
                if is_key || find_open(text.as_bytes()).is_none() {
                    continue;
                }
                let flow = stack.last().is_some_and(|f| f.flow);
                units.push(unit(
                    doc,
                    &mut offsets,
                    event_index,
                    span,
                    text,
                    style,
                    flow,
                )?);
            }
            _ => {}
        }
    }
    Ok(units)
}

/// Builds the [`Unit`] of one scalar event.
fn unit<'a>(
    doc: &'a str,
    offsets: &mut Offsets<'_>,
    event: usize,
    span: Span,
    text: Cow<'a, str>,
    style: ScalarStyle,
    flow: bool,
) -> Result<Unit<'a>> {
    let mut start = offsets.byte(span.start.index());
    let end = offsets.byte(span.end.index());
    if start > end || !doc.is_char_boundary(start) || !doc.is_char_boundary(end) {
        return Err(Error::internal("YAML scalar span out of the document"));
    }
    // The span starts at the node's properties (tag, anchor): the scalar itself follows them.
    if !matches!(style, ScalarStyle::Literal | ScalarStyle::Folded) {
        while doc[start..end].starts_with(['!', '&']) {
            let rest = &doc[start..end];
            let token = rest.find([' ', '\t', '\n', '\r']).unwrap_or(rest.len());
            let blanks = rest[token..].len() - rest[token..].trim_start().len();
            start += token + blanks;
        }
    }
    let line_start = doc[..start].rfind('\n').map_or(0, |at| at + 1);
    let line_end = doc[end..].find('\n').map_or(doc.len(), |at| end + at);
    let line = &doc[line_start..start];
    // The owner's indentation: skip the line's blanks and any `- ` sequence markers.
    let mut indent = 0;
    let bytes = line.as_bytes();
    while indent < bytes.len() {
        match bytes[indent] {
            b' ' => indent += 1,
            b'-' if matches!(bytes.get(indent + 1), Some(b' ')) => indent += 2,
            _ => break,
        }
    }
    let after = doc[end..line_end].trim_start_matches([' ', '\t']);
    let whole_placeholder = text.starts_with("${secret:")
        && text.ends_with('}')
        && text[1..].find("${secret:").is_none()
        && text.matches('}').count() == 1;
    Ok(Unit {
        event,
        start,
        end,
        text,
        style,
        column: span.start.col(),
        indent,
        line_end,
        block_candidate: !flow
            && whole_placeholder
            && (after.is_empty() || after.starts_with('#'))
            && !doc[start..end].contains('\n'),
    })
}

/// Byte offsets of every `${secret:` in `text`.
fn opens(text: &str) -> Vec<usize> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = find_open(&text.as_bytes()[from..]) {
        found.push(from + at);
        from += at + 1;
    }
    found
}

/// Whether YAML may carry `c` unescaped (its printable set, without the characters YAML 1.1
/// readers take as line breaks or a byte-order mark).
fn printable(c: char) -> bool {
    matches!(c, '\t' | '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// Whether `value` can be written as a one-line single-quoted scalar. Tabs and leading or
/// trailing blanks are fine there; line breaks are not (they would fold).
fn single_quotable(value: &str) -> bool {
    value.chars().all(|c| c != '\t' && printable(c))
}

/// Whether `value` can be a literal block scalar: it spans lines, every character is printable,
/// no line ends in a blank (kept, but easy to lose in editors) and it starts with neither a
/// blank nor a line break (which would be read as indentation).
fn literal_block_fits(value: &str) -> bool {
    value.contains('\n')
        && !value.trim_matches('\n').is_empty()
        && value
            .split('\n')
            .all(|line| line.chars().all(printable) && !line.ends_with([' ', '\t']))
        && !value.starts_with([' ', '\t', '\n'])
}

/// The header (`|`, `|-` or `|+`) and the indented body (ending in a line break) of a literal block scalar.
fn literal_block(value: &str, indent: usize) -> (String, Zeroizing<String>) {
    let trailing = value.len() - value.trim_end_matches('\n').len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    // The value does not start with a blank (`literal_block_fits`): the indentation is
    // detected from the first line, no indicator needed.
    let header = format!("|{chomp}");
    let pad = " ".repeat(indent);
    let lines: Vec<&str> = if trailing > 0 {
        value[..value.len() - 1].split('\n').collect()
    } else {
        value.split('\n').collect()
    };
    let mut body = Zeroizing::new(String::with_capacity(
        value.len() + lines.len() * indent + 1,
    ));
    for line in lines {
        if !line.is_empty() {
            body.push_str(&pad);
            body.push_str(line);
        }
        body.push('\n');
    }
    (header, body)
}

/// Writes `value` as a one-line double-quoted YAML scalar.
fn push_double_quoted(value: &str, out: &mut OutputBuffer) {
    out.push("\"");
    let mut plain_from = 0;
    for (at, c) in value.char_indices() {
        let escape: Option<Cow<'static, str>> = match c {
            '"' => Some("\\\"".into()),
            '\\' => Some("\\\\".into()),
            '\n' => Some("\\n".into()),
            '\t' => Some("\\t".into()),
            '\r' => Some("\\r".into()),
            '\0' => Some("\\0".into()),
            c if c != '\t' && !printable(c) => Some(format!("\\u{:04X}", c as u32).into()),
            _ => None,
        };
        if let Some(escape) = escape {
            out.push(&value[plain_from..at]);
            out.push(&escape);
            plain_from = at + c.len_utf8();
        }
    }
    out.push(&value[plain_from..]);
    out.push("\"");
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
