//! Per-message (dynamic) names (docs/ARCHITECTURE.md, "Per-message names"): a placeholder
//! whose name holds `{{metadata.KEY}}` or `{{data.KEY}}` parts, filled from the message at
//! resolve time.
//!
//! ```text
//! name-part := literal | "{{" ("metadata" | "data") "." KEY "}}"
//! KEY       := 1 to 64 of [A-Za-z0-9_-]
//! ```
//!
//! Filling is strict: every variable value must be 1 to [`MAX_VARIABLE_CHARS`] characters of
//! ASCII letters, digits, space and `. _ - @ :`, never `..`, no space first or last; the
//! filled name must be a valid name. Whether it may be used at all (the allow-list) is the
//! [`SecretSource`](super::SecretSource)'s call
//! ([`SecretSource::fetch_filled`](super::SecretSource::fetch_filled)).

use super::work::step;
use crate::model::validate_name;
use std::collections::BTreeMap;
use std::fmt;

/// Longest variable value, in characters.
pub const MAX_VARIABLE_CHARS: usize = 128;

/// Longest variable key, in characters.
pub const MAX_VARIABLE_KEY_CHARS: usize = 64;

/// Where a variable of a per-message name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VariableSource {
    /// `{{metadata.KEY}}`: the message metadata (ThingsBoard's `${KEY}`).
    Metadata,
    /// `{{data.KEY}}`: a top-level field of the message data (ThingsBoard's `$[KEY]`).
    Data,
}

impl VariableSource {
    /// The prefix as written in a placeholder: `metadata` or `data`.
    pub fn as_str(self) -> &'static str {
        match self {
            VariableSource::Metadata => "metadata",
            VariableSource::Data => "data",
        }
    }
}

/// The values per-message names are filled from: message metadata and top-level data fields.
/// Values are not secrets (they are checked, and end up in names, errors and the audit log).
///
/// ```
/// use tbsecrets::placeholder::{Variables, VariableSource};
///
/// let mut vars = Variables::new();
/// vars.insert(VariableSource::Metadata, "deviceName", "sensor-7");
/// assert_eq!(vars.get(VariableSource::Metadata, "deviceName"), Some("sensor-7"));
/// let vars = Variables::from_metadata([("deviceType", "thermostat")]);
/// assert_eq!(vars.get(VariableSource::Data, "deviceType"), None);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Variables {
    values: BTreeMap<(VariableSource, String), String>,
}

impl Variables {
    /// No variables.
    pub fn new() -> Variables {
        Variables::default()
    }

    /// Metadata variables from key/value pairs.
    pub fn from_metadata<I, K, V>(pairs: I) -> Variables
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut vars = Variables::new();
        for (k, v) in pairs {
            vars.insert(VariableSource::Metadata, k, v);
        }
        vars
    }

    /// Sets one variable (replacing an earlier value). Nothing is checked here: a value is
    /// checked when a placeholder uses it, so unrelated metadata never fails a call.
    pub fn insert(
        &mut self,
        source: VariableSource,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> &mut Variables {
        self.values.insert((source, key.into()), value.into());
        self
    }

    /// A variable's value.
    pub fn get(&self, source: VariableSource, key: &str) -> Option<&str> {
        // BTreeMap lookups need the owned key type; keys are short.
        self.values
            .get(&(source, key.to_owned()))
            .map(String::as_str)
    }

    /// How many variables are set.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no variable is set.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl fmt::Debug for Variables {
    /// Keys only: values are message data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(
                self.values
                    .keys()
                    .map(|(source, key)| format!("{}.{key}", source.as_str())),
            )
            .finish()
    }
}

/// Whether a name as written in a placeholder is a per-message pattern (plain names cannot
/// hold `{`).
pub fn is_dynamic(name: &str) -> bool {
    name.contains("{{")
}

/// One part of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part<'a> {
    Literal(&'a str),
    Variable(VariableSource, &'a str),
}

/// The parts of a pattern already accepted by the scanner (see [`parse_variable`]).
pub(crate) fn parts(pattern: &str) -> impl Iterator<Item = Part<'_>> {
    let mut rest = pattern;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.find("{{") {
            Some(0) => {
                let end = rest.find("}}").map_or(rest.len(), |e| e + 2);
                let inner = &rest[2..end.saturating_sub(2).max(2)];
                rest = &rest[end..];
                let (source, key) = match inner.split_once('.') {
                    Some(("data", key)) => (VariableSource::Data, key),
                    Some((_, key)) => (VariableSource::Metadata, key),
                    None => (VariableSource::Metadata, inner),
                };
                Some(Part::Variable(source, key))
            }
            Some(at) => {
                let literal = &rest[..at];
                rest = &rest[at..];
                Some(Part::Literal(literal))
            }
            None => {
                let literal = rest;
                rest = "";
                Some(Part::Literal(literal))
            }
        }
    })
}

/// Parses the `{{source.KEY}}` at the start of `text` (which starts with `{{`); returns its
/// length in bytes, or why it is malformed.
pub(crate) fn parse_variable(text: &str) -> Result<usize, String> {
    let inner_start = 2;
    let bytes = text.as_bytes();
    let limit = bytes
        .len()
        .min(inner_start + "metadata.".len() + MAX_VARIABLE_KEY_CHARS + 2);
    let Some(close) = bytes[..limit]
        .windows(2)
        .position(|w| w == b"}}")
        .filter(|&c| c >= inner_start)
    else {
        step(limit);
        return Err(format!(
            "'{{{{' opens a per-message variable that is not closed by '}}}}' within {} characters (write {{{{metadata.KEY}}}} or {{{{data.KEY}}}})",
            "metadata.".len() + MAX_VARIABLE_KEY_CHARS
        ));
    };
    step(close + 2);
    let inner = &text[inner_start..close];
    let Some((source, key)) = inner.split_once('.') else {
        return Err(format!(
            "per-message variable '{{{{{inner}}}}}' must be {{{{metadata.KEY}}}} or {{{{data.KEY}}}}"
        ));
    };
    if source != "metadata" && source != "data" {
        return Err(format!(
            "unknown variable source '{source}': expected {{{{metadata.KEY}}}} or {{{{data.KEY}}}}"
        ));
    }
    if key.is_empty()
        || key.len() > MAX_VARIABLE_KEY_CHARS
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "invalid variable key '{key}': 1 to {MAX_VARIABLE_KEY_CHARS} ASCII letters, digits, '_' or '-'"
        ));
    }
    Ok(close + 2)
}

/// Checks a variable value before it is put into a name: 1 to [`MAX_VARIABLE_CHARS`]
/// characters of ASCII letters, digits, space and `. _ - @ :`, no `..`, no space first or
/// last. The reason never
/// quotes the value (it may be long or hostile), only its length and the first offending
/// character's position.
pub(crate) fn check_value(value: &str) -> Result<(), String> {
    let chars = value.chars().count();
    if chars == 0 {
        return Err("its value is empty".to_owned());
    }
    if chars > MAX_VARIABLE_CHARS {
        return Err(format!(
            "its value is {chars} characters long; the limit is {MAX_VARIABLE_CHARS}"
        ));
    }
    if let Some((at, _)) = value.char_indices().find(|&(_, c)| {
        !(c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-' | '@' | ':'))
    }) {
        return Err(format!(
            "its value holds a character not allowed in a per-message name at position {} (allowed: ASCII letters, digits, space and . _ - @ :)",
            value[..at].chars().count() + 1
        ));
    }
    if value.contains("..") {
        return Err("its value holds '..'".to_owned());
    }
    if value.starts_with(' ') || value.ends_with(' ') {
        return Err("its value starts or ends with a space".to_owned());
    }
    Ok(())
}

/// Fills `pattern` from `vars`: the filled name, or why it cannot be (a missing variable, a
/// refused value, or a filled name that is not a valid name).
pub(crate) fn fill(pattern: &str, vars: Option<&Variables>) -> Result<String, String> {
    let mut name = String::with_capacity(pattern.len());
    for part in parts(pattern) {
        match part {
            Part::Literal(text) => name.push_str(text),
            Part::Variable(source, key) => {
                let written = format!("{{{{{}.{key}}}}}", source.as_str());
                let value = vars
                    .and_then(|v| v.get(source, key))
                    .ok_or_else(|| format!("the message has no {written}"))?;
                check_value(value).map_err(|why| format!("{written} is refused: {why}"))?;
                name.push_str(value);
            }
        }
    }
    step(name.len());
    validate_name(&name).map_err(|e| format!("the filled name is invalid: {}", e.message()))?;
    Ok(name)
}

/// Whether the per-message `pattern` can be filled to `name`: each variable stands for 1 to
/// [`MAX_VARIABLE_CHARS`] characters a value may hold (ASCII letters, digits, space and
/// `. _ - @ :`, no `..`, no space first or last), the literal parts must match exactly. This is the rule `where-used`
/// applies to recorded patterns.
///
/// ```
/// use tbsecrets::placeholder::pattern_matches;
///
/// let pattern = "device-{{metadata.deviceName}}-token";
/// assert!(pattern_matches(pattern, "device-sensor 7-token"));
/// assert!(!pattern_matches(pattern, "device--token")); // a value is never empty
/// assert!(!pattern_matches(pattern, "device-a/b-token")); // '/' is never filled in
/// ```
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<Part<'_>> = parts(pattern).collect();
    // memo[i][pos]: parts[i..] cannot match name[pos..] (byte positions; values are ASCII).
    let mut failed = vec![vec![false; name.len() + 1]; parts.len() + 1];
    matches_from(&parts, name.as_bytes(), 0, 0, &mut failed)
}

fn matches_from(
    parts: &[Part<'_>],
    name: &[u8],
    i: usize,
    pos: usize,
    failed: &mut [Vec<bool>],
) -> bool {
    if failed[i][pos] {
        return false;
    }
    let matched = match parts.get(i) {
        None => pos == name.len(),
        Some(Part::Literal(text)) => {
            name[pos..].starts_with(text.as_bytes())
                && matches_from(parts, name, i + 1, pos + text.len(), failed)
        }
        Some(Part::Variable(..)) => {
            let mut matched = false;
            let mut end = pos;
            while end < name.len() && end - pos < MAX_VARIABLE_CHARS {
                let b = name[end];
                let allowed = b.is_ascii_alphanumeric()
                    || matches!(b, b' ' | b'.' | b'_' | b'-' | b'@' | b':');
                if !allowed
                    || (b == b'.' && end > pos && name[end - 1] == b'.')
                    || (b == b' ' && end == pos)
                {
                    break;
                }
                end += 1;
                if b != b' ' && matches_from(parts, name, i + 1, end, failed) {
                    matched = true;
                    break;
                }
            }
            matched
        }
    };
    if !matched {
        failed[i][pos] = true;
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_variables() {
        assert_eq!(parse_variable("{{metadata.deviceName}}-x"), Ok(23));
        assert_eq!(parse_variable("{{data.a_b-1}}"), Ok(14));
        for bad in [
            "{{metadata.}}",
            "{{deviceName}}",
            "{{meta.x}}",
            "{{metadata.a b}}",
            "{{metadata.x",
            "{{}}",
            "{{metadata.a/b}}",
        ] {
            assert!(parse_variable(bad).is_err(), "{bad}");
        }
        let long = format!("{{{{metadata.{}}}}}", "k".repeat(65));
        assert!(parse_variable(&long).is_err());
    }

    #[test]
    fn fills_and_refuses_hostile_values() {
        let pattern = "device-{{metadata.deviceName}}-{{data.kind}}";
        let mut vars = Variables::new();
        vars.insert(
            VariableSource::Metadata,
            "deviceName",
            "sensor 7@site:a_b.c",
        );
        vars.insert(VariableSource::Data, "kind", "token");
        assert_eq!(
            fill(pattern, Some(&vars)).unwrap(),
            "device-sensor 7@site:a_b.c-token"
        );
        let long = "x".repeat(300);
        for hostile in [
            "../x",
            "*",
            "?",
            "a;b",
            "}",
            "{",
            "a\nb",
            "a/b",
            "",
            long.as_str(),
            "é",
            "a\u{0}",
            " a",
            "a ",
        ] {
            vars.insert(VariableSource::Metadata, "deviceName", hostile);
            let why = fill(pattern, Some(&vars)).unwrap_err();
            assert!(
                why.contains("{{metadata.deviceName}}"),
                "{hostile:?}: {why}"
            );
            assert!(hostile.len() < 4 || !why.contains(hostile), "{why}");
        }
        let missing = fill("a-{{metadata.nope}}", Some(&vars)).unwrap_err();
        assert!(missing.contains("no {{metadata.nope}}"), "{missing}");
        assert!(fill("a-{{metadata.x}}", None).is_err());
        // A filled name must still be a valid name (here: too long).
        vars.insert(VariableSource::Metadata, "x", "y".repeat(128));
        let pattern = format!("{}{{{{metadata.x}}}}", "p".repeat(200));
        assert!(fill(&pattern, Some(&vars))
            .unwrap_err()
            .contains("filled name is invalid"));
    }

    #[test]
    fn patterns_match_what_they_can_be_filled_to() {
        let p = "a-{{metadata.x}}-{{data.y}}";
        assert!(pattern_matches(p, "a-1-2"));
        assert!(pattern_matches(p, "a-1-2-3"), "a value may hold '-'");
        assert!(!pattern_matches(p, "a-1-"));
        assert!(!pattern_matches(p, "b-1-2"));
        assert!(!pattern_matches(p, "a-x..y-2"));
        assert!(pattern_matches("{{metadata.x}}", &"v".repeat(128)));
        assert!(!pattern_matches("{{metadata.x}}", &"v".repeat(129)));
        assert!(!pattern_matches("{{metadata.x}}", "é"));
        assert!(pattern_matches("{{metadata.x}}", "a b"));
        assert!(
            !pattern_matches("{{metadata.x}}", " a") && !pattern_matches("{{metadata.x}}", "a ")
        );
        // Many variables over a long name stay cheap (memoised).
        let many = "{{metadata.a}}".repeat(20);
        assert!(!pattern_matches(&many, &format!("{}/", "v".repeat(200))));
    }

    #[test]
    fn debug_shows_keys_only() {
        let vars = Variables::from_metadata([("deviceName", "very-private-value")]);
        let shown = format!("{vars:?}");
        assert!(shown.contains("metadata.deviceName") && !shown.contains("very-private"));
    }
}
