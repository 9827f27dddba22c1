//! Property tests of the placeholder module: no panics on any input, borrowed output without
//! placeholders, exact references, resolution equal to a simple model, JSON equal to resolving
//! each string value.

mod common;

use common::MapSource;
use proptest::prelude::*;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashSet;
use tbsecrets::placeholder::{
    contains_placeholder, references, resolve_json, resolve_text, scan, Reference, Token, OPEN,
};
use tbsecrets::{ErrorCode, SecretType};

/// Text made of the pieces the grammar cares about, so that random strings hit every branch.
fn tricky_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        8 => prop_oneof![
            Just("${secret:a}"),
            Just("${secret:a;type:TEXT}"),
            Just("${secret:b;type:FILE}"),
            Just("${secret:b;type:TEXT_FILE}"),
            Just("${secret:b}"),
            Just("$${secret:"),
            Just("${deviceName}"),
        ]
        .prop_map(str::to_owned),
        1 => prop_oneof![
            Just("${secret:"),
            Just("${secret:missing}"),
            Just("${secret:a;type:FILE}"),
            Just("\\u0024{secret:a}"),
        ]
        .prop_map(str::to_owned),
        4 => prop_oneof![
            Just("$"),
            Just("{"),
            Just("}"),
            Just(";type:"),
            Just("TEXT"),
            Just("FILE"),
            Just("\""),
            Just("\\"),
            Just("\\u0024"),
            Just("\\ud83d"),
            Just("["),
            Just("]"),
            Just(":"),
            Just(","),
            Just("\n"),
            Just("a"),
            Just("b"),
        ]
        .prop_map(str::to_owned),
        4 => "[ a-zé🔑\t]{0,4}",
        1 => any::<String>(),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

/// Secrets `a` (TEXT) and `b` (TEXT_FILE) whose values look like placeholders themselves.
fn ab_source() -> MapSource {
    MapSource::new([
        (
            "a".to_owned(),
            SecretType::Text,
            "A\"${secret:b}".to_owned(),
        ),
        (
            "b".to_owned(),
            SecretType::TextFile,
            "B\n\\$${secret:a}".to_owned(),
        ),
    ])
}

/// JSON values whose strings and keys are tricky texts.
fn tricky_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        tricky_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((tricky_text(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

fn to_json(value: &Value, pretty: bool) -> String {
    if pretty {
        serde_json::to_string_pretty(value).unwrap()
    } else {
        serde_json::to_string(value).unwrap()
    }
}

/// `value` with every string value (not key) resolved by `resolve_text`; `None` if one fails.
fn resolve_strings(value: &Value) -> Option<Value> {
    Some(match value {
        Value::String(s) => Value::String(resolve_text(s, &mut ab_source()).ok()?.into_owned()),
        Value::Array(items) => {
            Value::Array(items.iter().map(resolve_strings).collect::<Option<_>>()?)
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Some((k.clone(), resolve_strings(v)?)))
                .collect::<Option<_>>()?,
        ),
        other => other.clone(),
    })
}

/// A valid secret name: 1–12 characters, not all blank, none of `{ } ;` or controls.
fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ._é🔑-]{1,12}".prop_filter("not all whitespace", |n| !n.trim().is_empty())
}

/// Filler that cannot form or escape a placeholder (no `$`) and holds no secret value (no 🔒).
fn filler() -> impl Strategy<Value = String> {
    "[^$🔒]{0,16}"
}

/// One part of a generated document.
#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Secret {
        index: usize,
        suffix: &'static str,
        asked: Option<SecretType>,
    },
}

/// A generated text: secrets with their stored types, and fillers with placeholders whose
/// `;type:` always agrees with the stored type.
#[derive(Debug, Clone)]
struct Doc {
    names: Vec<(String, SecretType)>,
    pieces: Vec<Piece>,
}

impl Doc {
    fn text(&self) -> String {
        self.render(|index, suffix| format!("${{secret:{}{suffix}}}", self.names[index].0))
    }

    /// The text with each placeholder replaced by `values[index]`.
    fn resolved(&self, values: &[String]) -> String {
        self.render(|index, _| values[index].clone())
    }

    fn render(&self, placeholder: impl Fn(usize, &str) -> String) -> String {
        self.pieces
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.clone(),
                Piece::Secret { index, suffix, .. } => placeholder(*index, suffix),
            })
            .collect()
    }

    /// (name, asked type) of every placeholder, in order.
    fn used(&self) -> Vec<(String, Option<SecretType>)> {
        self.pieces
            .iter()
            .filter_map(|piece| match piece {
                Piece::Secret { index, asked, .. } => Some((self.names[*index].0.clone(), *asked)),
                Piece::Text(_) => None,
            })
            .collect()
    }
}

fn doc() -> impl Strategy<Value = Doc> {
    prop::collection::hash_set(name(), 1..6)
        .prop_flat_map(|set| {
            let n = set.len();
            (
                Just(set.into_iter().collect::<Vec<_>>()),
                prop::collection::vec(any::<bool>(), n),
                prop::collection::vec((filler(), prop::option::of((0..n, 0..3u8))), 0..12),
                filler(),
            )
        })
        .prop_map(|(names, is_text, slots, tail)| {
            let names: Vec<(String, SecretType)> = names
                .into_iter()
                .zip(is_text)
                .map(|(n, text)| {
                    (
                        n,
                        if text {
                            SecretType::Text
                        } else {
                            SecretType::TextFile
                        },
                    )
                })
                .collect();
            let mut pieces = Vec::new();
            for (fill, placeholder) in slots {
                pieces.push(Piece::Text(fill));
                if let Some((index, form)) = placeholder {
                    let stored = names[index].1;
                    let (suffix, asked) = match (form, stored) {
                        (0, _) => ("", None),
                        (1, SecretType::Text) => (";type:TEXT", Some(stored)),
                        (_, SecretType::Text) => ("", None),
                        (1, SecretType::TextFile) => (";type:TEXT_FILE", Some(stored)),
                        (_, SecretType::TextFile) => (";type:FILE", Some(stored)),
                    };
                    pieces.push(Piece::Secret {
                        index,
                        suffix,
                        asked,
                    });
                }
            }
            pieces.push(Piece::Text(tail));
            Doc { names, pieces }
        })
}

fn distinct_in_order(used: &[(String, Option<SecretType>)]) -> Vec<Reference> {
    let mut seen = HashSet::new();
    used.iter()
        .filter(|entry| seen.insert((*entry).clone()))
        .map(|(name, secret_type)| Reference {
            name: name.clone(),
            secret_type: *secret_type,
        })
        .collect()
}

/// Adversarial text: a unit of openers, escapes, reserved characters and multi-byte
/// characters, repeated.
fn adversarial_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("${secret:"),
        Just("é${secret:"),
        Just("${secret:${secret:"),
        Just("$${secret:"),
        Just("${secret:a}"),
        Just("${secret:a;type:"),
        Just("${deviceName}"),
        Just("{"),
        Just("}"),
        Just(";"),
        Just("🔑"),
        Just("n"),
    ];
    (prop::collection::vec(piece, 1..6), 1usize..200)
        .prop_map(|(unit, times)| unit.concat().repeat(times))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_opener_is_exactly_one_token_at_its_offset(
        text in prop_oneof![adversarial_text(), tricky_text(), any::<String>()],
    ) {
        let openers: Vec<usize> = text.match_indices(OPEN).map(|(at, _)| at).collect();
        let tokens: Vec<Token<'_>> = scan(&text).collect();
        prop_assert_eq!(tokens.len(), openers.len());
        let mut malformed = Vec::new();
        for (token, &at) in tokens.iter().zip(&openers) {
            match token {
                Token::Placeholder(p) => {
                    prop_assert_eq!(p.offset, at);
                    prop_assert!(text[at..at + p.len].ends_with('}'), "ends at {}", p.len);
                    prop_assert!(!p.name.contains(['{', '}', ';']), "name {:?}", p.name);
                }
                Token::Escape { offset } => prop_assert_eq!(offset + 1, at),
                Token::Malformed(m) => {
                    prop_assert_eq!(m.offset, at);
                    prop_assert!(text[at + OPEN.len()..].starts_with(m.name));
                    malformed.push(at);
                }
            }
        }
        // `references` (of a text it does not read as JSON) reports exactly the malformed
        // openers, at their offsets.
        if matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'[')) {
            return Ok(());
        }
        match references(&text) {
            Ok(_) => prop_assert!(malformed.is_empty()),
            Err(err) if err.code() == ErrorCode::MalformedPlaceholder => {
                let offsets: Vec<usize> = err.problems().iter().map(|p| p.offset).collect();
                prop_assert_eq!(offsets, malformed);
            }
            Err(err) => prop_assert!(false, "unexpected error {}", err),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in prop_oneof![any::<String>(), tricky_text()]) {
        let outcome = resolve_text(&text, &mut ab_source());
        let _ = resolve_json(&text, &mut ab_source());
        let _ = references(&text);
        if !contains_placeholder(&text) {
            // Nothing to resolve: only escapes, which always succeed.
            let out = outcome.unwrap();
            prop_assert_eq!(out.into_owned(), text.replace("$${secret:", "${secret:"));
        }
    }

    #[test]
    fn json_resolves_exactly_like_each_string_value(value in tricky_json(), pretty in any::<bool>()) {
        let doc = to_json(&value, pretty);
        // The same document with every `$` spelled `\u0024` (in JSON, `$` only occurs in strings).
        let spelled = doc.replace('$', "\\u0024");
        let expected = resolve_strings(&value);
        for (input, marker) in [(&doc, "${secret:"), (&spelled, "\\u0024{secret:")] {
            match (resolve_json(input, &mut ab_source()), &expected) {
                (Ok(out), Some(expected)) => {
                    let parsed: Value = serde_json::from_str(&out).unwrap();
                    prop_assert_eq!(&parsed, expected);
                    prop_assert!(references(input).is_ok());
                }
                (Err(err), None) => {
                    prop_assert!(matches!(
                        err.code(),
                        ErrorCode::MalformedPlaceholder | ErrorCode::Unresolved | ErrorCode::TypeMismatch
                    ));
                    for problem in err.problems() {
                        prop_assert!(input[problem.offset..].starts_with(marker), "offset {}", problem.offset);
                    }
                }
                (Ok(_), None) => prop_assert!(false, "resolve_json succeeded where a value fails"),
                (Err(err), Some(_)) => prop_assert!(false, "resolve_json failed: {}", err),
            }
        }
    }

    #[test]
    fn text_without_marker_is_borrowed_unchanged(text in prop_oneof![any::<String>(), tricky_text()]) {
        // Defuse generated markers rather than reject the case (rejections make it flaky).
        let text = text.replace("${secret:", "${s3cret:");
        let mut source = ab_source();
        let out = resolve_text(&text, &mut source).unwrap();
        prop_assert!(matches!(out, Cow::Borrowed(t) if t == text));
        prop_assert!(source.calls.is_empty());
        prop_assert!(references(&text).unwrap().is_empty());
    }

    #[test]
    fn json_without_marker_is_borrowed_unchanged(value in tricky_json(), pretty in any::<bool>()) {
        // Markers only occur inside JSON strings, so defusing them keeps the document valid.
        let doc = to_json(&value, pretty).replace("${secret:", "${s3cret:");
        let out = resolve_json(&doc, &mut ab_source()).unwrap();
        prop_assert!(matches!(out, Cow::Borrowed(d) if d == doc));
    }

    #[test]
    fn references_are_exactly_the_inserted_placeholders(doc in doc()) {
        let text = doc.text();
        let expected = distinct_in_order(&doc.used());
        prop_assert_eq!(references(&text).unwrap(), expected.clone());
        // The same text as a JSON value, next to keys that hold placeholders: keys do not count.
        let json = serde_json::json!({ "${secret:in-a-key}": { "v": [text, 1], "${secret:k2}": null } });
        prop_assert_eq!(references(&json.to_string()).unwrap(), expected);
    }

    #[test]
    fn resolution_matches_the_model_and_fetches_each_name_once(
        doc in doc(),
        values in prop::collection::vec(any::<String>(), 6),
    ) {
        // Every value holds a placeholder of another secret: it must come out verbatim.
        let values: Vec<String> = (0..doc.names.len())
            .map(|i| format!("{}${{secret:{}}}", values[i], doc.names[(i + 1) % doc.names.len()].0))
            .collect();
        let secrets = doc.names.iter().zip(&values).map(|((n, t), v)| (n.clone(), *t, v.clone()));
        let mut source = MapSource::new(secrets);
        let text = doc.text();
        let out = resolve_text(&text, &mut source).unwrap();
        let expected = doc.resolved(&values);
        prop_assert_eq!(&*out, expected.as_str());
        let used = doc.used();
        prop_assert_eq!(matches!(out, Cow::Borrowed(_)), used.is_empty());
        let mut first_seen: Vec<String> = Vec::new();
        for (name, _) in used {
            if !first_seen.contains(&name) {
                first_seen.push(name);
            }
        }
        prop_assert_eq!(source.calls, first_seen);
    }

    #[test]
    fn any_value_round_trips_through_json(value in any::<String>(), key in any::<String>()) {
        let doc = serde_json::json!({ key.clone(): ["${secret:v}", {"x": "<${secret:v;type:TEXT}>"}] }).to_string();
        let mut source = MapSource::new([("v".to_owned(), SecretType::Text, value.clone())]);
        let out = resolve_json(&doc, &mut source).unwrap();
        let expected = serde_json::json!({ key: [value.clone(), {"x": format!("<{value}>")}] });
        prop_assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), expected);
    }

    #[test]
    fn errors_never_contain_a_value(
        doc in doc(),
        values in prop::collection::vec("[a-z]{0,8}", 6),
        present in prop::collection::vec(any::<bool>(), 6),
    ) {
        // Values carry a 🔒, which neither names nor fillers contain. Some secrets are absent;
        // the others are stored with the other type, so typed placeholders mismatch.
        let secrets: Vec<_> = doc
            .names
            .iter()
            .enumerate()
            .filter(|(i, _)| present[*i])
            .map(|(i, (n, t))| {
                let other = if *t == SecretType::Text { SecretType::TextFile } else { SecretType::Text };
                (n.clone(), other, format!("🔒{}🔒", values[i]))
            })
            .collect();
        let mut source = MapSource::new(secrets);
        let text = doc.text();
        let used = doc.used();
        let in_json = serde_json::json!({ "k": text }).to_string();
        for result in [resolve_text(&text, &mut source), resolve_json(&in_json, &mut source)] {
            if let Err(err) = result {
                let (shown, debug) = (err.to_string(), format!("{err:?}"));
                prop_assert!(!shown.contains('🔒') && !debug.contains('🔒'));
                prop_assert!(!err.problems().is_empty());
                for problem in err.problems() {
                    prop_assert!(used.iter().any(|(n, _)| n == &problem.name));
                }
            }
        }
    }
}
