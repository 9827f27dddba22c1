//! A fast, non-recursive JSON syntax check used before `serde_json`.
//!
//! [`surely_valid`] answers `true` only for documents that `serde_json` accepts as one JSON
//! value (RFC 8259: no trailing commas, no leading zeros, no control characters in strings,
//! exactly one value with only whitespace around it). It answers `false` for every invalid
//! document and, to stay on the safe side, for a few valid ones it does not judge itself (a
//! `\u` escape in the surrogate range). A `false` is handed to `serde_json`, which decides and
//! words the error, so the strictness and the messages stay those of `serde_json`.
//!
//! Why not a SIMD crate: `simd-json` and `sonic-rs`, built without `-C target-cpu=native` (as a
//! library shipped to others is), validated the 10 MiB benchmark document at 0.06 and 0.34 GB/s
//! against 0.61 GB/s for `serde_json` on the development machine; this check runs the bulk of
//! a document (string contents and indentation) eight bytes at a time in portable safe code.
//! The input is a `&str`, so it is already UTF-8.

/// Eight copies of one byte.
const fn splat(byte: u8) -> u64 {
    0x0101_0101_0101_0101 * byte as u64
}

const HIGH_BITS: u64 = splat(0x80);

/// High bit set in the byte lanes of `word` that are zero; the lowest set lane is exact (lanes
/// above a zero lane may be set falsely, which only the first lane's position is used for).
const fn zero_lanes(word: u64) -> u64 {
    word.wrapping_sub(splat(1)) & !word & HIGH_BITS
}

/// High bit set from the first byte of `word` (little-endian) that ends a plain run of string
/// content: `"`, `\` or a control character below 0x20.
const fn string_stops(word: u64) -> u64 {
    let below_space = word.wrapping_sub(splat(0x20)) & !word & HIGH_BITS;
    zero_lanes(word ^ splat(b'"')) | zero_lanes(word ^ splat(b'\\')) | below_space
}

/// The 8 bytes at `at`, little-endian, if there are 8.
fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

/// Whether `doc` is surely one valid JSON value (see the module documentation).
pub(crate) fn surely_valid(doc: &str) -> bool {
    super::work::step(doc.len());
    document(doc.as_bytes()).is_some()
}

/// `Some` if `b` is one valid JSON value; `None` if it is invalid or not judged here.
fn document(b: &[u8]) -> Option<()> {
    // Open containers, innermost last: `true` for an object.
    let mut open: Vec<bool> = Vec::new();
    let mut i = whitespace(b, 0);
    'value: loop {
        // A value starts at `i` (whitespace skipped).
        match *b.get(i)? {
            b'{' => {
                i = whitespace(b, i + 1);
                if b.get(i) == Some(&b'}') {
                    i += 1;
                } else {
                    open.push(true);
                    i = key(b, i)?;
                    continue 'value;
                }
            }
            b'[' => {
                i = whitespace(b, i + 1);
                if b.get(i) == Some(&b']') {
                    i += 1;
                } else {
                    open.push(false);
                    continue 'value;
                }
            }
            b'"' => i = string(b, i + 1)?,
            b't' => i = literal(b, i, b"true")?,
            b'f' => i = literal(b, i, b"false")?,
            b'n' => i = literal(b, i, b"null")?,
            b'-' | b'0'..=b'9' => i = number(b, i)?,
            _ => return None,
        }
        // After a value: close containers until one goes on with a `,`.
        loop {
            i = whitespace(b, i);
            let Some(&in_object) = open.last() else {
                return (i == b.len()).then_some(());
            };
            match (*b.get(i)?, in_object) {
                (b',', false) => {
                    i = whitespace(b, i + 1);
                    continue 'value;
                }
                (b',', true) => {
                    i = key(b, whitespace(b, i + 1))?;
                    continue 'value;
                }
                (b']', false) | (b'}', true) => {
                    open.pop();
                    i += 1;
                }
                _ => return None,
            }
        }
    }
}

/// Skips JSON whitespace from `i`; a run of spaces (indentation) eight bytes at a time.
#[inline]
fn whitespace(b: &[u8], mut i: usize) -> usize {
    loop {
        match b.get(i) {
            Some(b' ' | b'\n' | b'\r' | b'\t') => {}
            _ => return i,
        }
        if let Some(word) = word_at(b, i) {
            // The lowest set bit is in the first byte that is not a space.
            let not_space = word ^ splat(b' ');
            let spaces = if not_space == 0 {
                8
            } else {
                (not_space.trailing_zeros() / 8) as usize
            };
            if spaces > 0 {
                i += spaces;
                continue;
            }
        }
        i += 1;
    }
}

/// An object key at `i`, its `:` and the whitespace after it; returns where the value starts.
fn key(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let i = whitespace(b, string(b, i + 1)?);
    (b.get(i) == Some(&b':')).then(|| whitespace(b, i + 1))
}

/// A string's content from `i` (just past the opening quote); returns just past its closing
/// quote.
fn string(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        while let Some(word) = word_at(b, i) {
            let stops = string_stops(word);
            if stops != 0 {
                i += (stops.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        match *b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match *b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    let hex = b.get(i + 2..i + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    // A surrogate (D800–DFFF): left to serde_json's rules on pairing.
                    if matches!(hex[0], b'd' | b'D') && !matches!(hex[1], b'0'..=b'7') {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            0..=0x1F => return None,
            _ => i += 1,
        }
    }
}

/// `word` (`true`, `false` or `null`) at `i`; returns just past it.
fn literal(b: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    (b.get(i..i + word.len())? == word).then_some(i + word.len())
}

/// A number at `i`: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`; returns just past
/// it.
fn number(b: &[u8], mut i: usize) -> Option<usize> {
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match *b.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(b, i + 1),
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        i = some_digits(b, i + 1)?;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        i = some_digits(b, i)?;
    }
    Some(i)
}

/// Skips digits from `i`.
fn digits(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// At least one digit from `i`; returns just past the digits.
fn some_digits(b: &[u8], i: usize) -> Option<usize> {
    let end = digits(b, i);
    (end > i).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_accepts(doc: &str) -> bool {
        serde_json::from_str::<serde::de::IgnoredAny>(doc).is_ok()
    }

    /// The fast check never accepts what serde_json refuses, and accepts the plain valid cases.
    #[track_caller]
    fn agrees(doc: &str) {
        let fast = surely_valid(doc);
        let serde = serde_accepts(doc);
        assert!(!fast || serde, "fast check accepted invalid JSON {doc:?}");
        if !fast && serde {
            assert!(
                doc.contains("\\u") && doc.to_ascii_lowercase().contains("\\ud"),
                "fast check refused valid JSON {doc:?}"
            );
        }
    }

    #[test]
    fn agrees_with_serde_json_on_hand_picked_cases() {
        let cases = [
            "",
            " ",
            "{",
            "}",
            "[",
            "]",
            "[]",
            "{}",
            " [ ] ",
            "[1,]",
            "[,1]",
            "[1 2]",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{\"a\" : 1 , \"b\":[true,false,null]}",
            "{1:2}",
            "[01]",
            "[-0]",
            "[-]",
            "[1.]",
            "[.5]",
            "[1.5e]",
            "[1e+]",
            "[1E-7]",
            "[1e400]",
            "[123456789012345678901234567890]",
            "[-1.25e+10]",
            "[tru]",
            "[truee]",
            "[nul]",
            "[\"a\nb\"]",
            "[\"a\tb\"]",
            "[\"\\x\"]",
            "[\"\\u12\"]",
            "[\"\\u00e9\"]",
            "[\"\\ud83d\\ude00\"]",
            "[\"\\ud800\"]",
            "[\"\\udc00x\"]",
            "[\"\\ud800\\u0041\"]",
            "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]",
            "[\"é😀\u{7f}\"]",
            "1 2",
            "[1] x",
            "\"abc",
            "\"abc\\\"",
            "\"abcdefghijklmnopqrstuvwxyz\"",
            "  \t\r\n 42 \n",
            "{\"a\":{\"b\":[{}]}}",
            "[[[[]]]]]",
            "[[[[]]]",
            "{\"a\":1]",
            "[1}",
            "\u{feff}[]",
            "[\"\u{0}\"]",
        ];
        for doc in cases {
            agrees(doc);
        }
        for doc in [
            "[]",
            "{\"a\" : 1 , \"b\":[true,false,null]}",
            "[-1.25e+10]",
            "\"é😀\"",
        ] {
            assert!(surely_valid(doc), "{doc:?}");
        }
    }

    #[test]
    fn agrees_with_serde_json_on_every_cut_and_byte_change_of_a_document() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/configs/rest_api_call_node.json"
        ))
        .unwrap_or_else(|_| "{\"a\": [1, 2.5e-3, \"x\\\"y\\u00e9\", true, null, {}]}".into());
        assert!(surely_valid(&doc));
        for cut in 0..doc.len() {
            if doc.is_char_boundary(cut) {
                agrees(&doc[..cut]);
                agrees(&doc[cut..]);
            }
        }
        let bytes = doc.as_bytes();
        for at in 0..bytes.len() {
            for replacement in [
                b'"', b'\\', b',', b':', b'}', b']', b'{', b'[', b'\n', 0x01, b'0',
            ] {
                let mut changed = bytes.to_vec();
                changed[at] = replacement;
                if let Ok(changed) = String::from_utf8(changed) {
                    agrees(&changed);
                }
            }
        }
    }

    #[test]
    fn deep_nesting_needs_no_recursion() {
        let deep = format!("{}1{}", "[{\"a\":".repeat(100_000), "}]".repeat(100_000));
        assert!(surely_valid(&deep));
        assert!(!surely_valid(&deep[..deep.len() - 1]));
    }
}
