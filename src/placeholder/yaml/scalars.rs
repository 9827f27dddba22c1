//! The document walker: parses a YAML document with `saphyr-parser` and finds every scalar
//! value (not mapping key) holding `${secret:`, with its exact byte span, style and the
//! context a rewrite needs (indentation, line end, block or flow).

use crate::error::Error;
use crate::placeholder::scan::find_open;
use crate::Result;
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use std::borrow::Cow;

/// A scalar value of a YAML document whose value contains `${secret:`.
pub(super) struct Unit<'a> {
    /// Index of the scalar's event in the document's event stream.
    pub(super) event: usize,
    /// Byte offset of the scalar's first byte (the quote of a quoted one; the first content
    /// byte of a block scalar).
    pub(super) start: usize,
    /// Byte offset just after the scalar.
    pub(super) end: usize,
    /// The scalar's value as YAML reads it.
    pub(super) text: Cow<'a, str>,
    pub(super) style: ScalarStyle,
    /// Column (in characters) of the scalar's first content byte.
    pub(super) column: usize,
    /// Indentation of the node that owns the scalar's line (its key, or its `- `).
    pub(super) indent: usize,
    /// Byte offset of the end of the scalar's last line (its `\n`, or the document's end).
    pub(super) line_end: usize,
    /// Whether the scalar is exactly one placeholder in block context with nothing but
    /// blanks or a comment after it on its line.
    pub(super) block_candidate: bool,
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
        crate::placeholder::work::step(advance + 1);
        self.chars = char_index;
        self.bytes += advance;
        self.bytes
    }
}

/// Every scalar value of `doc` holding `${secret:`, in document order. Fails with
/// `INVALID_ARGUMENT` if `doc` is not valid YAML.
pub(super) fn secret_scalars(doc: &str) -> Result<Vec<Unit<'_>>> {
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
        crate::placeholder::work::step(1);
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
pub(super) fn opens(text: &str) -> Vec<usize> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = find_open(&text.as_bytes()[from..]) {
        found.push(from + at);
        from += at + 1;
    }
    found
}
