//! The string values of a JSON document that hold `${secret:`, found on the text without
//! parsing the whole document into a tree; and JSON string escaping.
//!
//! Every function here assumes the document has been validated as JSON.

use super::scan::find_open;
use super::work::step;
use crate::error::Error;
use crate::Result;
use memchr::memmem::Finder;
use std::borrow::Cow;
use std::cell::Cell;
use std::sync::LazyLock;

static UNICODE_ESCAPE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\\u"));

/// A string value (not an object key) of a document whose decoded text contains `${secret:`.
pub(crate) struct Unit<'a> {
    /// Byte offset of the opening quote in the document.
    pub(crate) start: usize,
    /// Byte offset just after the closing quote.
    pub(crate) end: usize,
    /// The decoded string: borrowed from the document when its raw text has no `\` escape.
    pub(crate) text: Cow<'a, str>,
    /// The last offset mapped by [`doc_offset`](Unit::doc_offset), as (raw, decoded) offsets
    /// in the string's content: offsets are asked in increasing order, so mapping them all
    /// reads the string once.
    cursor: Cell<(usize, usize)>,
}

impl Unit<'_> {
    /// The byte offset in `doc` of the byte at `offset` of the decoded text.
    pub(crate) fn doc_offset(&self, doc: &str, offset: usize) -> usize {
        let content = self.start + 1;
        match self.text {
            Cow::Borrowed(_) => content + offset,
            Cow::Owned(_) => {
                let raw = &doc.as_bytes()[content..self.end - 1];
                let (raw_pos, decoded_pos) = self.cursor.get();
                let from = if decoded_pos <= offset {
                    (raw_pos, decoded_pos)
                } else {
                    (0, 0)
                };
                let to = raw_offset(raw, from, offset);
                self.cursor.set(to);
                content + to.0
            }
        }
    }
}

/// Every string value of the validated JSON `doc` whose decoded text contains `${secret:`, in
/// document order. Keys are skipped.
///
/// Only strings whose raw text contains `${secret:` or a `\u` escape (which could spell one)
/// are looked at, so the cost is one `memmem` pass plus work proportional to those strings.
pub(crate) fn secret_strings(doc: &str) -> Result<Vec<Unit<'_>>> {
    let bytes = doc.as_bytes();
    let mut units = Vec::new();
    let mut open_hit = find_open(bytes);
    let mut escape_hit = UNICODE_ESCAPE.find(bytes);
    let mut from = 0;
    loop {
        if open_hit.is_some_and(|at| at < from) {
            open_hit = find_open(&bytes[from..]).map(|at| at + from);
        }
        if escape_hit.is_some_and(|at| at < from) {
            let rest = &bytes[from..];
            escape_hit = UNICODE_ESCAPE.find(rest);
            step(escape_hit.map_or(rest.len(), |at| at + 2));
            escape_hit = escape_hit.map(|at| at + from);
        }
        let Some(hit) = open_hit.into_iter().chain(escape_hit).min() else {
            return Ok(units);
        };
        // In valid JSON both `$` and `\` only occur inside strings.
        let (start, end) = enclosing_string(bytes, hit)
            .ok_or_else(|| Error::internal("placeholder scan: no JSON string around a match"))?;
        from = end;
        if is_key(bytes, end) {
            continue;
        }
        let raw = &doc[start + 1..end - 1];
        step(raw.len());
        let text = if memchr::memchr(b'\\', raw.as_bytes()).is_none() {
            Cow::Borrowed(raw)
        } else {
            step(end - start);
            let decoded: String = serde_json::from_str(&doc[start..end]).map_err(|e| {
                Error::invalid(format!("not valid JSON: string at byte {start}: {e}"))
            })?;
            if find_open(decoded.as_bytes()).is_none() {
                continue;
            }
            Cow::Owned(decoded)
        };
        units.push(Unit {
            start,
            end,
            text,
            cursor: Cell::new((0, 0)),
        });
    }
}

/// The string token around byte `at`: offset of its opening quote and just past its closing
/// quote.
fn enclosing_string(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut before = at;
    let start = loop {
        let quote = memchr::memrchr(b'"', &bytes[..before])?;
        step(before - quote);
        if !is_backslash_escaped(bytes, quote) {
            break quote;
        }
        before = quote;
    };
    let mut i = start + 1;
    loop {
        let skip = memchr::memchr2(b'"', b'\\', bytes.get(i..)?)?;
        step(skip + 1);
        i += skip;
        if bytes[i] == b'"' {
            return Some((start, i + 1));
        }
        i += 2;
    }
}

/// Whether the byte at `at` is preceded by an odd number of backslashes.
fn is_backslash_escaped(bytes: &[u8], at: usize) -> bool {
    let backslashes = bytes[..at]
        .iter()
        .rev()
        .take_while(|&&b| b == b'\\')
        .count();
    step(backslashes + 1);
    backslashes % 2 == 1
}

/// Whether the string ending just before `end` is an object key (a `:` follows).
fn is_key(bytes: &[u8], end: usize) -> bool {
    let rest = &bytes[end..];
    let blanks = rest
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .count();
    step(blanks + 1);
    rest.get(blanks) == Some(&b':')
}

/// Maps a byte offset in the decoded string to the byte offset in its raw (escaped) text,
/// reading on from `from`, a (raw, decoded) pair of offsets of the same position that is not
/// past `decoded_offset`. Returns the (raw, decoded) pair reached.
fn raw_offset(raw: &[u8], from: (usize, usize), decoded_offset: usize) -> (usize, usize) {
    let (mut raw_pos, mut decoded_pos) = from;
    while decoded_pos < decoded_offset && raw_pos < raw.len() {
        step(1);
        if raw[raw_pos] != b'\\' {
            raw_pos += 1;
            decoded_pos += 1;
            continue;
        }
        if raw.get(raw_pos + 1) != Some(&b'u') {
            raw_pos += 2;
            decoded_pos += 1;
            continue;
        }
        let unit = hex4(raw, raw_pos + 2);
        let pair = raw.get(raw_pos + 6..raw_pos + 8) == Some(b"\\u")
            && (0xD800..0xDC00).contains(&unit)
            && (0xDC00..0xE000).contains(&hex4(raw, raw_pos + 8));
        if pair {
            raw_pos += 12;
            decoded_pos += 4;
        } else {
            raw_pos += 6;
            decoded_pos += char::from_u32(unit).map_or(3, char::len_utf8);
        }
    }
    (raw_pos.min(raw.len()), decoded_pos)
}

/// The value of four hex digits at `at`, or `u32::MAX` if they are not there.
fn hex4(raw: &[u8], at: usize) -> u32 {
    raw.get(at..at + 4)
        .and_then(|digits| std::str::from_utf8(digits).ok())
        .and_then(|digits| u32::from_str_radix(digits, 16).ok())
        .unwrap_or(u32::MAX)
}

/// How a byte is written inside a JSON string: 0 = as is, else the escape letter, or `u` for
/// `\u00XX`. The same choices as `serde_json`.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0A] = b'n';
    table[0x0C] = b'f';
    table[0x0D] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Passes `s` escaped as JSON string content (without the quotes) to `push`, piece by piece.
pub(crate) fn push_escaped(s: &str, mut push: impl FnMut(&str)) {
    step(s.len());
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut plain_from = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        let escape = ESCAPE[usize::from(b)];
        if escape == 0 {
            continue;
        }
        // `b` is ASCII, so `i` and `i + 1` are character boundaries.
        push(&s[plain_from..i]);
        let mut sequence = *b"\\u0000";
        let len = if escape == b'u' {
            sequence[4] = HEX[usize::from(b >> 4)];
            sequence[5] = HEX[usize::from(b & 0xF)];
            6
        } else {
            sequence[1] = escape;
            2
        };
        push(std::str::from_utf8(&sequence[..len]).unwrap_or_default());
        plain_from = i + 1;
    }
    push(&s[plain_from..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(doc: &str) -> Vec<(usize, String)> {
        secret_strings(doc)
            .unwrap()
            .into_iter()
            .map(|u| (u.start, u.text.into_owned()))
            .collect()
    }

    #[test]
    fn finds_values_not_keys() {
        let doc =
            r#"{"${secret:k}": "${secret:v}", "a": ["x", "${secret:w}"], "${secret:k2}" : 1}"#;
        assert_eq!(
            values(doc),
            vec![(16, "${secret:v}".into()), (42, "${secret:w}".into())]
        );
    }

    #[test]
    fn escaped_quotes_and_unicode_escapes() {
        let doc = r#"["a\"b ${secret:x}", "\u0024{secret:y}", "\\u00", "\\\"${secret:z}\\"]"#;
        assert_eq!(
            values(doc),
            vec![
                (1, "a\"b ${secret:x}".into()),
                (21, "${secret:y}".into()),
                (50, "\\\"${secret:z}\\".into())
            ]
        );
    }

    #[test]
    fn offsets_map_back_to_the_document() {
        let doc = r#"{"k": "\n\"\u00e9\ud83d\ude00 ${secret:x}"}"#;
        let units = secret_strings(doc).unwrap();
        let at = units[0].text.find("${").unwrap();
        assert_eq!(units[0].doc_offset(doc, at), doc.find("${").unwrap());
        let doc = r#"["\u0024{secret:y}"]"#;
        let units = secret_strings(doc).unwrap();
        assert_eq!(units[0].doc_offset(doc, 0), 2);
    }

    #[test]
    fn lone_surrogate_in_a_secret_string_is_invalid_json() {
        let err = secret_strings(r#"["\ud800 ${secret:x}"]"#).err().unwrap();
        assert_eq!(err.code(), crate::ErrorCode::InvalidArgument);
        assert!(err.message().starts_with("not valid JSON"));
    }

    #[test]
    fn escaping_matches_serde_json() {
        let all: String = (0u8..0x80).map(char::from).collect::<String>() + "é😀\u{7f}";
        let mut out = String::new();
        push_escaped(&all, |piece| out.push_str(piece));
        assert_eq!(format!("\"{out}\""), serde_json::to_string(&all).unwrap());
    }
}
