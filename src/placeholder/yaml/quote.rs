//! Writing a resolved value back as a YAML scalar: double-quoted with escapes, single-quoted,
//! as a literal block scalar, or in place inside a block scalar's raw text.

use super::scalars::Unit;
use crate::error::Error;
use crate::placeholder::output::OutputBuffer;
use crate::placeholder::scan::{scan, Token};
use crate::Result;
use std::borrow::Cow;
use std::collections::HashMap;
use zeroize::Zeroizing;

/// Writes the raw text of a block scalar with each placeholder replaced by its recorded value,
/// the value's lines indented like the block's; escapes lose their first `$`. Writes nothing
/// once a name has no recorded value (the resolver reports that problem).
pub(super) fn push_block_in_place(
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

/// Whether YAML may carry `c` unescaped (its printable set, without the characters YAML 1.1
/// readers take as line breaks or a byte-order mark).
fn printable(c: char) -> bool {
    matches!(c, '\t' | '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// Whether `value` can be written as a one-line single-quoted scalar. Tabs and leading or
/// trailing blanks are fine there; line breaks are not (they would fold).
pub(super) fn single_quotable(value: &str) -> bool {
    value.chars().all(|c| c != '\t' && printable(c))
}

/// Whether `value` can be a literal block scalar: it spans lines, every character is printable,
/// no line ends in a blank (kept, but easy to lose in editors) and it starts with neither a
/// blank nor a line break (which would be read as indentation).
pub(super) fn literal_block_fits(value: &str) -> bool {
    value.contains('\n')
        && !value.trim_matches('\n').is_empty()
        && value
            .split('\n')
            .all(|line| line.chars().all(printable) && !line.ends_with([' ', '\t']))
        && !value.starts_with([' ', '\t', '\n'])
}

/// The header (`|`, `|-` or `|+`) and the indented body (ending in a line break) of a literal block scalar.
pub(super) fn literal_block(value: &str, indent: usize) -> (String, Zeroizing<String>) {
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
pub(super) fn push_double_quoted(value: &str, out: &mut OutputBuffer) {
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
