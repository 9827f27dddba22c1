//! Resolve and references do work linear in their input on adversarial inputs: the scanners'
//! steps (bytes examined, see `work`) are counted, never timed.

use super::work::count;
use super::{references, resolve_json, resolve_text, Fetched};
use crate::{Result, SecretType};
use proptest::prelude::*;
use zeroize::Zeroizing;

/// Steps allowed per input byte. A scan examines each byte a small constant number of times;
/// anything quadratic (or with a per-opener window) blows through this on inputs of a few KiB.
const STEPS_PER_BYTE: u64 = 24;
/// Fixed allowance per call (the smallest inputs).
const STEPS_FIXED: u64 = 4096;

/// Pieces that stress the scanners: unclosed openers, openers after multi-byte characters,
/// nested openers, escapes, other `${...}` patterns, reserved characters, long names, and JSON
/// escapes (which make a JSON string decode, so offsets have to be mapped back).
const PIECES: &[&str] = &[
    "${secret:",
    "é${secret:",
    "🔑${secret:",
    "${secret:${secret:",
    "$${secret:",
    "$$${secret:",
    "${secret:a}",
    "${secret:a;type:TEXT}",
    "${secret:a;type:",
    "${secret:a;",
    "${deviceName}",
    "${",
    "${secretx:",
    "$",
    "{",
    "}",
    ";",
    "é",
    "\\u00e9",
    "\\u0024{secret:",
    "\\\"",
    "\n",
    "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn",
];

/// `unit` repeated to at least `len` bytes.
fn repeat_to(unit: &str, len: usize) -> String {
    unit.repeat(len.div_ceil(unit.len().max(1)))
}

/// A source that has one TEXT secret, `a`.
fn source(name: &str) -> Result<Fetched> {
    Ok(if name == "a" {
        Fetched::Found {
            secret_type: SecretType::Text,
            replacement: Zeroizing::new("A".to_owned()),
        }
    } else {
        Fetched::Missing
    })
}

/// Steps of resolving `doc` as text and as JSON, and of its references.
fn steps_of(doc: &str) -> [u64; 3] {
    let (_, text) = count(|| resolve_text(doc, &mut source).map(drop));
    let (_, json) = count(|| resolve_json(doc, &mut source).map(drop));
    let (_, refs) = count(|| references(doc).map(drop));
    [text, json, refs]
}

#[track_caller]
fn assert_linear(doc: &str, what: &str) {
    let bound = STEPS_PER_BYTE * doc.len() as u64 + STEPS_FIXED;
    for (steps, call) in
        steps_of(doc)
            .into_iter()
            .zip(["resolve_text", "resolve_json", "references"])
    {
        assert!(
            steps <= bound,
            "{call} on {what} ({} bytes): {steps} steps > {bound}",
            doc.len()
        );
    }
}

/// The same adversarial text as plain text, as one JSON string that must be decoded (it starts
/// with a `\u` escape), as many JSON strings, and deep inside nested JSON.
fn shapes(text: &str) -> Vec<(String, &'static str)> {
    let escaped = serde_json::to_string(text).unwrap_or_default();
    let inner = escaped.trim_matches('"');
    let pieces: Vec<String> = text
        .as_bytes()
        .chunks(64)
        .map(|chunk| serde_json::to_string(&String::from_utf8_lossy(chunk)).unwrap_or_default())
        .collect();
    let depth = text.len() / 64;
    vec![
        (text.to_owned(), "plain text"),
        (format!("[\"\\u00e9{inner}\"]"), "one decoded JSON string"),
        (
            format!("{{\"k\": [{}]}}", pieces.join(",")),
            "many JSON strings",
        ),
        (
            format!(
                "{}\"\\u00e9{inner}\"{}",
                "[{\"a\":".repeat(depth),
                "}]".repeat(depth)
            ),
            "deeply nested JSON",
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn work_is_linear_on_adversarial_input(
        unit in prop::collection::vec(prop::sample::select(PIECES), 1..6),
        len in 4096usize..16_384,
    ) {
        let text = repeat_to(&unit.concat(), len);
        for (doc, what) in shapes(&text) {
            assert_linear(&doc, what);
        }
    }
}

#[test]
fn every_piece_alone_is_linear_at_64_kib() {
    for piece in PIECES {
        let text = repeat_to(piece, 64 * 1024);
        for (doc, what) in shapes(&text) {
            assert_linear(&doc, &format!("{what} of {piece:?}"));
        }
    }
}

#[test]
fn steps_grow_linearly_when_the_input_doubles() {
    for unit in [
        "é${secret:",
        "\\u00e9${secret:",
        "${secret:${secret:",
        "$${secret:",
    ] {
        let small = repeat_to(unit, 16 * 1024);
        let large = repeat_to(unit, 64 * 1024);
        for ((small, what), (large, _)) in shapes(&small).into_iter().zip(shapes(&large)) {
            let (s, l) = (steps_of(&small), steps_of(&large));
            for i in 0..3 {
                // Four times the input: at most a little over four times the work.
                assert!(
                    l[i] <= 4 * s[i] + s[i] / 2 + STEPS_FIXED,
                    "{what} of {unit:?}: {} steps at 16 KiB, {} at 64 KiB",
                    s[i],
                    l[i]
                );
            }
        }
    }
}

#[test]
fn documents_over_the_cap_are_invalid_argument() {
    use super::MAX_DOCUMENT_BYTES;
    use crate::ErrorCode;
    let over = " ".repeat(MAX_DOCUMENT_BYTES + 1);
    let at_cap = &over[..MAX_DOCUMENT_BYTES];
    let errors = [
        resolve_text(&over, &mut source).map(drop),
        resolve_json(&over, &mut source).map(drop),
        references(&over).map(drop),
    ];
    for err in errors {
        let err = err.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
        assert!(err.message().contains("limit is 67108864 bytes"), "{err}");
    }
    // At the cap exactly: accepted (and borrowed, nothing to resolve).
    assert!(resolve_text(at_cap, &mut source).is_ok());
    assert!(references(at_cap).unwrap().is_empty());
}

#[test]
fn opener_whose_body_holds_a_brace_is_reported_without_reading_on() {
    use super::{scan, Token};
    let text = "${secret:ab{cd} ${secret:x;type:{y} ${secret:ok}";
    let found: Vec<Token<'_>> = scan(text).collect();
    assert_eq!(found.len(), 3);
    for (token, (offset, name)) in found[..2].iter().zip([(0, "ab"), (16, "x")]) {
        match token {
            Token::Malformed(m) => {
                assert_eq!((m.offset, m.name), (offset, name));
                assert!(m.reason.contains("must not contain '{'"), "{}", m.reason);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(&found[2], Token::Placeholder(p) if p.name == "ok"));
}
