//! Finding placeholders, escapes and malformed placeholders in a text.
//!
//! Every occurrence of `${secret:` is exactly one [`Token`]: an escape when a `$` precedes it, a
//! [`Placeholder`] when a valid name, an optional type and `}` follow, else [`Malformed`].
//! Occurrences are found with one `memchr::memmem` finder built once per process.

use super::work::step;
use crate::model::{validate_name, SecretType, MAX_NAME_CHARS};
use memchr::memmem::{FindIter, Finder};
use std::sync::LazyLock;

/// The text that opens a placeholder.
pub const OPEN: &str = "${secret:";

/// Longest possible text between [`OPEN`] and the closing `}`: a name of 255 four-byte
/// characters and the longest type suffix. Bounds the search for `}` so that many unclosed
/// placeholders cost linear, not quadratic, time.
pub(crate) const MAX_BODY_BYTES: usize = MAX_NAME_CHARS * 4 + ";type:TEXT_FILE".len();

static OPEN_FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(OPEN));

/// The reason of an opener without `}` in reach (formatted once: dense unclosed openers are
/// a cheap way to make a scan slow).
static NO_CLOSE_WITHIN: LazyLock<String> = LazyLock::new(|| {
    format!("no closing '}}' within {MAX_BODY_BYTES} bytes (a name has at most {MAX_NAME_CHARS} characters)")
});

/// Position of the first `${secret:` (escaped or not) in `haystack`.
pub(crate) fn find_open(haystack: &[u8]) -> Option<usize> {
    let found = OPEN_FINDER.find(haystack);
    step(found.map_or(haystack.len(), |at| at + OPEN.len()));
    found
}

/// One placeholder found in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Placeholder<'a> {
    /// The secret name, exactly as written.
    pub name: &'a str,
    /// The type the placeholder asks for; `None` for the short form (any type).
    /// `;type:FILE` is reported as [`SecretType::TextFile`].
    pub expected: Option<SecretType>,
    /// Byte offset of the `${secret:` in the text.
    pub offset: usize,
    /// Length in bytes, from `$` through the closing `}`.
    pub len: usize,
}

/// A `${secret:` that does not start a valid placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed<'a> {
    /// Byte offset of the `${secret:` in the text.
    pub offset: usize,
    /// The name as far as it could be read (may be empty).
    pub name: &'a str,
    /// What is wrong, without any secret value.
    pub reason: String,
}

/// What [`scan`] finds at one occurrence of `${secret:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token<'a> {
    /// A well-formed placeholder.
    Placeholder(Placeholder<'a>),
    /// The escape `$${secret:`, which stands for the literal text `${secret:`.
    Escape {
        /// Byte offset of the first `$` of `$${secret:`.
        offset: usize,
    },
    /// A `${secret:` that does not form a valid placeholder.
    Malformed(Malformed<'a>),
}

/// Iterator over the [`Token`]s of a text, in order; created by [`scan`].
///
/// Linear time on any input: each byte is searched for `${secret:`, `}` and `{` at most once
/// (the next `}` and `{` are remembered across openers), and the text examined for one
/// opener's name ends at the next `{`, so it never overlaps that of the next opener.
#[derive(Debug)]
pub struct Scan<'a> {
    text: &'a str,
    matches: FindIter<'a, 'static>,
    /// Just past the last `${secret:` found (for counting the bytes searched).
    from: usize,
    /// The next `}`: where a placeholder may end.
    close: NextByte,
    /// The next `{`: a name cannot hold one, and every later opener holds one.
    brace: NextByte,
}

impl<'a> Iterator for Scan<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        // Matches do not overlap: the search resumes right after each `${secret:`.
        let Some(at) = self.matches.next() else {
            step(self.text.len().saturating_sub(self.from));
            self.from = self.text.len();
            return None;
        };
        step(at + OPEN.len() - self.from);
        self.from = at + OPEN.len();
        Some(self.token_at(at))
    }
}

/// Every `${secret:` of `text`, classified, in order of appearance.
///
/// Other `${...}` text (ThingsBoard metadata patterns such as `${deviceName}`, Spring
/// `${ENV:default}`) is not reported. A valid placeholder cannot contain `${secret:`, so the
/// tokens never overlap; after a malformed one, scanning resumes right after its `${secret:`.
pub fn scan(text: &str) -> Scan<'_> {
    Scan {
        text,
        matches: OPEN_FINDER.find_iter(text.as_bytes()),
        from: 0,
        close: NextByte::new(b'}'),
        brace: NextByte::new(b'{'),
    }
}

/// Whether `text` contains a `${secret:` that is not escaped (well-formed or not), i.e. whether
/// [`resolve_text`](super::resolve_text) would substitute something or fail. It reads `text` as
/// plain text: in a JSON document, a placeholder inside an object key counts too.
pub fn contains_placeholder(text: &str) -> bool {
    let bytes = text.as_bytes();
    OPEN_FINDER
        .find_iter(bytes)
        .any(|at| !follows_dollar(bytes, at))
}

fn follows_dollar(bytes: &[u8], at: usize) -> bool {
    at > 0 && bytes[at - 1] == b'$'
}

/// The first position of one byte within a range, for ranges asked with non-decreasing
/// starts: an answer is remembered until it is passed and a range searched in vain is not
/// searched again, so each byte is read at most once.
#[derive(Debug)]
struct NextByte {
    byte: u8,
    /// The last occurrence found, if it has not been passed yet.
    found: Option<usize>,
    /// The byte does not occur between the start of the last search and this position
    /// (other than at `found`): searches go on from here, so each byte is read once.
    clear_until: usize,
}

impl NextByte {
    fn new(byte: u8) -> Self {
        NextByte {
            byte,
            found: None,
            clear_until: 0,
        }
    }

    /// The first position of the byte in `haystack[at..end]`. Calls come with `at` never
    /// decreasing; the search reads only what no earlier call read.
    fn first_in(&mut self, haystack: &[u8], at: usize, end: usize) -> Option<usize> {
        if let Some(position) = self.found {
            if position >= at {
                return (position < end).then_some(position);
            }
            self.found = None;
        }
        let start = at.max(self.clear_until);
        let rest = haystack.get(start..end).unwrap_or_default();
        let found = memchr::memchr(self.byte, rest);
        step(found.map_or(rest.len(), |i| i + 1));
        match found {
            Some(i) => {
                self.found = Some(start + i);
                self.clear_until = start + i;
            }
            None => self.clear_until = self.clear_until.max(end),
        }
        self.found
    }
}

impl<'a> Scan<'a> {
    /// Classifies the `${secret:` that starts at byte `at` of the text.
    fn token_at(&mut self, at: usize) -> Token<'a> {
        let text = self.text;
        let bytes = text.as_bytes();
        if follows_dollar(bytes, at) {
            return Token::Escape { offset: at - 1 };
        }
        let body_start = at + OPEN.len();
        let close = self
            .close
            .first_in(bytes, body_start, bytes.len())
            .filter(|&close| close - body_start <= MAX_BODY_BYTES);
        let Some(close) = close else {
            let reason = if bytes.len() - body_start > MAX_BODY_BYTES {
                NO_CLOSE_WITHIN.clone()
            } else {
                "no closing '}'".to_string()
            };
            return malformed(at, partial_name(&text[body_start..]), reason);
        };
        let mut dynamic = false;
        let mut close = close;
        // Only a `{` inside the body matters: the search stops at the close.
        if let Some(brace) = self.brace.first_in(bytes, body_start, close) {
            if !bytes[brace..].starts_with(b"{{") {
                // The body holds a `{` (maybe of a later opener): say so without reading it all.
                let reason = match validate_name("{") {
                    Err(err) => format!("invalid name: {}", err.message()),
                    Ok(()) => "a name must not contain '{'".to_string(),
                };
                return malformed(at, partial_name(&text[body_start..close]), reason);
            }
            // A per-message name: `{{metadata.KEY}}` parts up to the real `}`.
            match dynamic_close(text, body_start, brace) {
                Ok(end) => close = end,
                Err(reason) => {
                    return malformed(at, partial_name(&text[body_start..brace]), reason)
                }
            }
            dynamic = true;
        }
        // No `{` in the body other than whole variables, so no later opener overlaps it:
        // reading it all is linear.
        let body = &text[body_start..close];
        step(body.len());
        let (name, expected) = match body.split_once(';') {
            None => (body, None),
            Some((name, suffix)) => match suffix.strip_prefix("type:") {
                None => {
                    return malformed(
                        at,
                        name,
                        "expected ';type:TEXT', ';type:TEXT_FILE' or ';type:FILE' after the name"
                            .to_string(),
                    )
                }
                Some(type_name) => match parse_type(type_name) {
                    Some(secret_type) => (name, Some(secret_type)),
                    None => {
                        return malformed(
                            at,
                            name,
                            format!("unknown type '{type_name}': expected TEXT, TEXT_FILE or FILE"),
                        )
                    }
                },
            },
        };
        if dynamic {
            if let Err(reason) = validate_pattern(name) {
                return malformed(at, name, reason);
            }
        } else if let Err(err) = validate_name(name) {
            return malformed(at, name, format!("invalid name: {}", err.message()));
        }
        Token::Placeholder(Placeholder {
            name,
            expected,
            offset: at,
            len: close + 1 - at,
        })
    }
}

/// The closing `}` of a per-message placeholder whose body starts at `body_start` and holds
/// `{{` at `brace`: every `{{source.KEY}}` is skipped whole; any other `{` is malformed, so the
/// walk never reaches a later opener (whose `{` is followed by `s`).
fn dynamic_close(text: &str, body_start: usize, brace: usize) -> Result<usize, String> {
    let bytes = text.as_bytes();
    let limit = bytes.len().min(body_start + MAX_BODY_BYTES + 1);
    let mut at = brace;
    loop {
        if bytes[at] == b'}' {
            return Ok(at);
        }
        // `at` is a `{`.
        if !bytes[at..].starts_with(b"{{") {
            return Err(
                "invalid name: a '{' that does not open {{metadata.KEY}} or {{data.KEY}}"
                    .to_owned(),
            );
        }
        at += super::dynamic::parse_variable(&text[at..])?;
        let rest = &bytes[at.min(limit)..limit];
        let next = memchr::memchr2(b'{', b'}', rest);
        step(next.map_or(rest.len(), |i| i + 1));
        match next {
            Some(i) => at += i,
            None => return Err(NO_CLOSE_WITHIN.clone()),
        }
    }
}

/// Checks a per-message pattern: with each variable standing for one character it must be a
/// valid name (so its literal parts hold no control or reserved characters).
fn validate_pattern(pattern: &str) -> Result<(), String> {
    // Fast path: a variable makes the name non-empty and not blank, and the scanner leaves no
    // `{ } ;` in literals, so only length and control characters remain to check.
    let mut chars = 0;
    let mut control = false;
    for part in super::dynamic::parts(pattern) {
        match part {
            super::dynamic::Part::Literal(text) => {
                for c in text.chars() {
                    chars += 1;
                    control |= c.is_control();
                }
            }
            super::dynamic::Part::Variable(..) => chars += 1,
        }
    }
    step(pattern.len());
    if chars <= MAX_NAME_CHARS && !control {
        return Ok(());
    }
    let mut sample = String::with_capacity(pattern.len());
    for part in super::dynamic::parts(pattern) {
        match part {
            super::dynamic::Part::Literal(text) => sample.push_str(text),
            super::dynamic::Part::Variable(..) => sample.push('x'),
        }
    }
    step(pattern.len());
    validate_name(&sample).map_err(|err| format!("invalid name: {}", err.message()))
}

/// The placeholder grammar's types, spelled exactly (unlike `SecretType::from_str`, which is
/// lenient about case and `-`).
fn parse_type(type_name: &str) -> Option<SecretType> {
    match type_name {
        "TEXT" => Some(SecretType::Text),
        "TEXT_FILE" | "FILE" => Some(SecretType::TextFile),
        _ => None,
    }
}

/// The start of an unclosed placeholder's name: up to a reserved or control character, at most
/// [`MAX_NAME_CHARS`] characters.
fn partial_name(rest: &str) -> &str {
    let end = rest
        .char_indices()
        .enumerate()
        .find(|&(count, (_, c))| {
            count == MAX_NAME_CHARS || matches!(c, '{' | '}' | ';') || c.is_control()
        })
        .map_or(rest.len(), |(_, (i, _))| i);
    step(end + 1);
    &rest[..end]
}

fn malformed(offset: usize, name: &str, reason: String) -> Token<'_> {
    Token::Malformed(Malformed {
        offset,
        name,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<Token<'_>> {
        scan(text).collect()
    }

    #[test]
    fn a_scan_reads_a_json_document_about_once() {
        // Rule-node objects: a `{` opens each, far after the placeholder before it. Looking
        // for a `{` inside a body must stop at the body's `}`, not read on to the next object.
        let object = format!(
            "{{\"password\": \"${{secret:db-password}}\", \"filler\": \"{}\"}},",
            "x".repeat(8000)
        );
        let doc = object.repeat(64);
        let (found, steps) = crate::placeholder::work::count(|| scan(&doc).count());
        assert_eq!(found, 64);
        assert!(
            steps <= doc.len() as u64 + doc.len() as u64 / 50,
            "{steps} steps for {} bytes",
            doc.len()
        );
    }

    fn reason(token: &Token<'_>) -> String {
        match token {
            Token::Malformed(m) => m.reason.clone(),
            other => panic!("expected malformed, got {other:?}"),
        }
    }

    #[test]
    fn finds_two_placeholders_in_one_string() {
        let text = "u=${secret:user;type:TEXT} p=${secret:pass}";
        assert_eq!(
            tokens(text),
            vec![
                Token::Placeholder(Placeholder {
                    name: "user",
                    expected: Some(SecretType::Text),
                    offset: 2,
                    len: 24,
                }),
                Token::Placeholder(Placeholder {
                    name: "pass",
                    expected: None,
                    offset: 29,
                    len: 14,
                }),
            ]
        );
        assert_eq!(&text[29..43], "${secret:pass}");
    }

    #[test]
    fn file_is_an_alias_of_text_file() {
        for text in ["${secret:ca;type:FILE}", "${secret:ca;type:TEXT_FILE}"] {
            match &tokens(text)[..] {
                [Token::Placeholder(p)] => assert_eq!(p.expected, Some(SecretType::TextFile)),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn escape_is_reported_at_its_first_dollar() {
        assert_eq!(
            tokens("a $${secret:x} b"),
            vec![Token::Escape { offset: 2 }]
        );
        assert!(!contains_placeholder("a $${secret:x} b"));
        assert!(contains_placeholder("a $${secret:x} ${secret:y}"));
        assert!(contains_placeholder("${secret:"));
        assert!(!contains_placeholder(
            "${deviceName} ${ENV:default} ${secret}"
        ));
    }

    #[test]
    fn other_dollar_braces_are_not_tokens() {
        assert!(tokens("${deviceName}/${deviceType} ${SPRING:def} ${secretx:y}").is_empty());
    }

    #[test]
    fn unicode_names_with_spaces() {
        match &tokens("k=${secret:ключ API 🔑;type:TEXT}!")[..] {
            [Token::Placeholder(p)] => {
                assert_eq!(p.name, "ключ API 🔑");
                assert_eq!(p.offset, 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_forms() {
        assert!(reason(&tokens("${secret:abc")[0]).contains("no closing"));
        assert!(reason(&tokens("${secret:}")[0]).contains("empty"));
        assert!(reason(&tokens("${secret:   }")[0]).contains("whitespace"));
        assert!(reason(&tokens("${secret:a;foo:TEXT}")[0]).contains("expected ';type:"));
        assert!(reason(&tokens("${secret:a;type:BLOB}")[0]).contains("unknown type 'BLOB'"));
        assert!(reason(&tokens("${secret:a;type:text}")[0]).contains("unknown type"));
        assert!(reason(&tokens("${secret:a\nb}")[0]).contains("control"));
        let long = format!("${{secret:{}}}", "n".repeat(256));
        assert!(reason(&tokens(&long)[0]).contains("256 characters"));
        let far = format!("${{secret:{}}}", "n".repeat(2000));
        assert!(reason(&tokens(&far)[0]).contains("within"));
    }

    #[test]
    fn scanning_resumes_after_a_malformed_opening() {
        let found = tokens("${secret:${secret:x}");
        assert_eq!(found.len(), 2);
        assert!(
            matches!(&found[0], Token::Malformed(m) if m.offset == 0 && m.reason.contains('{'))
        );
        assert!(matches!(&found[1], Token::Placeholder(p) if p.offset == 9 && p.name == "x"));
    }

    #[test]
    fn partial_name_of_unclosed_placeholder() {
        match &tokens("a=${secret:db-pass\nb=1")[..] {
            [Token::Malformed(m)] => {
                assert_eq!(m.name, "db-pass");
                assert_eq!(m.offset, 2);
            }
            other => panic!("{other:?}"),
        }
        let long = format!("${{secret:{}", "é".repeat(300));
        match &tokens(&long)[..] {
            [Token::Malformed(m)] => assert_eq!(m.name.chars().count(), MAX_NAME_CHARS),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn longest_valid_placeholder_is_found() {
        let name = "😀".repeat(MAX_NAME_CHARS);
        let text = format!("${{secret:{name};type:TEXT_FILE}}");
        match &tokens(&text)[..] {
            [Token::Placeholder(p)] => {
                assert_eq!(p.name, name);
                assert_eq!(p.len, text.len());
            }
            other => panic!("{other:?}"),
        }
    }
}
