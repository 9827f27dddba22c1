//! Strict resolution: fetch each distinct name once, check every placeholder, and hand out
//! output only if everything resolved.

use super::dynamic::{fill, is_dynamic, Variables};
use super::output::{Output, OutputBuffer, SliceOutput};
use super::scan::{find_open, scan, Placeholder, Token};
use super::{Fetched, SecretSource};
use crate::error::{Error, ErrorCode, PlaceholderProblem};
use crate::Result;
use std::borrow::Cow;

/// Resolves every placeholder of `text` against `source` and turns every escape `$${secret:`
/// into `${secret:`.
///
/// Returns `Cow::Borrowed(text)` when the text has neither placeholders nor escapes. Fails with
/// `MALFORMED_PLACEHOLDER` if any placeholder is malformed, with `TYPE_MISMATCH` if the only
/// problems are type mismatches, else with `UNRESOLVED`; [`Error::problems`] then lists every
/// offending placeholder (name and byte offset in `text`). Every name is still fetched when some
/// placeholder is malformed, so that the error is complete. An `Err` from the source aborts the
/// call with that error. Substituted values are never scanned again. A text over
/// [`MAX_DOCUMENT_BYTES`](super::MAX_DOCUMENT_BYTES) is `INVALID_ARGUMENT`.
pub fn resolve_text<'a, S: SecretSource + ?Sized>(
    text: &'a str,
    source: &mut S,
) -> Result<Cow<'a, str>> {
    resolve_text_with(text, source, None)
}

/// [`resolve_text`] with the variables that per-message names (`{{metadata.KEY}}`,
/// `{{data.KEY}}`) are filled from. A per-message placeholder is looked up with
/// [`SecretSource::fetch_filled`]; a missing variable, a refused value or an invalid filled
/// name is a problem of the strict error, naming the placeholder as written.
pub fn resolve_text_with<'a, S: SecretSource + ?Sized>(
    text: &'a str,
    source: &mut S,
    variables: Option<&Variables>,
) -> Result<Cow<'a, str>> {
    super::check_document_len(text.len())?;
    if find_open(text.as_bytes()).is_none() {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = OutputBuffer::for_document(text.len());
    resolve_text_to(text, source, variables, &mut out)?;
    Ok(Cow::Owned(out.into_string()))
}

/// [`resolve_text_with`] into the caller's buffer `out` (a text without placeholders is
/// copied as it is): returns the resolved length. When it is at most `out.len()`, the
/// resolved text is in `out[..length]`; otherwise nothing of it is left in `out` (what was
/// written is zeroed) and the caller tries again with at least `length` bytes. On an error
/// nothing is left in `out` either.
pub fn resolve_text_into<S: SecretSource + ?Sized>(
    text: &str,
    source: &mut S,
    variables: Option<&Variables>,
    out: &mut [u8],
) -> Result<usize> {
    super::check_document_len(text.len())?;
    SliceOutput::write_into(out, |sink| {
        if find_open(text.as_bytes()).is_none() {
            sink.push(text);
            return Ok(());
        }
        resolve_text_to(text, source, variables, sink)
    })
}

/// The resolution of a text that holds an opener, written to `out`.
fn resolve_text_to<S: SecretSource + ?Sized>(
    text: &str,
    source: &mut S,
    variables: Option<&Variables>,
    out: &mut impl Output,
) -> Result<()> {
    let mut resolver = Resolver::with_variables(variables);
    resolver.resolve(source, text, |offset| offset, |piece| out.push(piece))?;
    resolver.finish()
}

/// One resolve call: the source's answers so far (each name is fetched once) and the problems
/// found so far. Dropping it zeroizes every fetched value (they are `Zeroizing`).
///
/// Output is written while it is being checked, in one pass over the text; the caller discards
/// it (zeroized) unless [`finish`](Resolver::finish) succeeds.
#[derive(Default)]
pub(crate) struct Resolver<'t> {
    /// The answers for plain names (owned keys: a streamed text's pieces do not outlive the
    /// call).
    fetched: foldhash::HashMap<Box<str>, Fetched>,
    /// The answers for filled per-message names (kept apart: a plain and a filled name are
    /// looked up under different rules).
    filled: foldhash::HashMap<String, Fetched>,
    variables: Option<&'t Variables>,
    problems: Vec<PlaceholderProblem>,
    malformed: bool,
}

impl<'t> Resolver<'t> {
    /// A resolver filling per-message names from `variables`.
    pub(crate) fn with_variables(variables: Option<&'t Variables>) -> Self {
        Resolver {
            variables,
            ..Resolver::default()
        }
    }

    /// Resolves `text` and passes its output to `write` piece by piece, until the first problem
    /// (the rest is only checked). `locate` maps an offset in `text` to the offset reported in
    /// problems.
    pub(crate) fn resolve<S: SecretSource + ?Sized>(
        &mut self,
        source: &mut S,
        text: &str,
        locate: impl Fn(usize) -> usize,
        write: impl FnMut(&str),
    ) -> Result<()> {
        self.resolve_part(source, text, text.len(), locate, write)
            .map(drop)
    }

    /// Like [`resolve`](Resolver::resolve) for a piece of a longer text: only the `${secret:`
    /// openers that start before `limit` are handled, and output is written up to the returned
    /// offset, where the caller goes on (with the rest of `text` in front of what follows). The
    /// offset is a character boundary at or before `limit` unless a handled token ends after
    /// it, and never just after a `$` (which could escape an opener that follows). With
    /// `limit == text.len()` all of `text` is handled.
    pub(crate) fn resolve_part<S: SecretSource + ?Sized>(
        &mut self,
        source: &mut S,
        text: &str,
        limit: usize,
        locate: impl Fn(usize) -> usize,
        mut write: impl FnMut(&str),
    ) -> Result<usize> {
        let mut pos = 0;
        let mut stop = text.len();
        // Just past the `$` of the last opener handled: the carried rest starts after it.
        let mut handled = 0;
        for token in scan(text) {
            let (start, opener) = match &token {
                Token::Placeholder(p) => (p.offset, p.offset),
                Token::Escape { offset } => (*offset, offset + 1),
                Token::Malformed(m) => (m.offset, m.offset),
            };
            if limit < text.len() && opener >= limit {
                stop = start;
                break;
            }
            handled = opener + 1;
            match token {
                Token::Placeholder(p) => {
                    let clean = self.problems.is_empty();
                    if let Some(replacement) = self.replacement(source, &p, &locate)? {
                        if clean {
                            write(&text[pos..p.offset]);
                            write(replacement);
                        }
                    }
                    pos = p.offset + p.len;
                }
                Token::Escape { offset } => {
                    if self.problems.is_empty() {
                        write(&text[pos..offset]);
                    }
                    pos = offset + 1;
                }
                Token::Malformed(m) => {
                    self.malformed = true;
                    self.problems.push(PlaceholderProblem {
                        code: ErrorCode::MalformedPlaceholder,
                        name: m.name.to_owned(),
                        offset: locate(m.offset),
                        reason: m.reason,
                    });
                }
            }
        }
        let mut end = text.len();
        if limit < text.len() {
            // Tokens never overlap, so `pos <= stop`.
            end = limit.max(pos).min(stop);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            if text.as_bytes().get(end.wrapping_sub(1)) == Some(&b'$') {
                end -= 1;
            }
            end = end.max(pos).max(handled);
        }
        if self.problems.is_empty() {
            write(&text[pos..end]);
        }
        Ok(end)
    }

    /// Whether a problem has been found so far.
    pub(crate) fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    /// The replacement of `p`, fetching its name on first use; `None` after recording a
    /// problem.
    fn replacement<S: SecretSource + ?Sized>(
        &mut self,
        source: &mut S,
        p: &Placeholder<'_>,
        locate: impl Fn(usize) -> usize,
    ) -> Result<Option<&str>> {
        let mut filled_name = None;
        let fetched = if is_dynamic(p.name) {
            let name = match fill(p.name, self.variables) {
                Ok(name) => name,
                Err(reason) => {
                    let code = if reason.starts_with("the message has no") {
                        ErrorCode::Unresolved
                    } else {
                        ErrorCode::InvalidArgument
                    };
                    self.problems.push(PlaceholderProblem {
                        code,
                        name: p.name.to_owned(),
                        offset: locate(p.offset),
                        reason,
                    });
                    return Ok(None);
                }
            };
            if !self.filled.contains_key(&name) {
                // Once per distinct filled name: the copy is the map's key.
                let fetched = source.fetch_filled(&name)?;
                self.filled.insert(name.clone(), fetched);
            }
            let name = filled_name.insert(name);
            match self.filled.get(name.as_str()) {
                Some(fetched) => fetched,
                None => return Err(crate::Error::internal("a filled name went missing")),
            }
        } else {
            if !self.fetched.contains_key(p.name) {
                let fetched = source.fetch(p.name)?;
                self.fetched.insert(p.name.into(), fetched);
            }
            match self.fetched.get(p.name) {
                Some(fetched) => fetched,
                None => return Err(crate::Error::internal("a fetched name went missing")),
            }
        };
        let (code, reason) = match fetched {
            Fetched::Found {
                secret_type,
                replacement,
            } => match p.expected {
                Some(expected) if expected != *secret_type => (
                    ErrorCode::TypeMismatch,
                    format!("expected type {expected}, but the secret is {secret_type}"),
                ),
                _ => return Ok(Some(replacement.as_str())),
            },
            Fetched::Missing => (ErrorCode::NotFound, "no such secret".to_owned()),
            Fetched::Unusable { reason } => (ErrorCode::Unresolved, reason.clone()),
            Fetched::Denied { reason } => (ErrorCode::PermissionDenied, reason.clone()),
        };
        let reason = match filled_name {
            Some(name) => format!("{reason} (filled name '{name}')"),
            None => reason,
        };
        self.problems.push(PlaceholderProblem {
            code,
            name: p.name.to_owned(),
            offset: locate(p.offset),
            reason,
        });
        Ok(None)
    }

    /// `Ok` if every placeholder resolved, else the error naming every problem.
    pub(crate) fn finish(self) -> Result<()> {
        if self.problems.is_empty() {
            return Ok(());
        }
        let code = if self.malformed {
            ErrorCode::MalformedPlaceholder
        } else if self
            .problems
            .iter()
            .all(|p| p.code == ErrorCode::TypeMismatch)
        {
            ErrorCode::TypeMismatch
        } else {
            ErrorCode::Unresolved
        };
        Err(Error::placeholders(code, self.problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placeholder::test_support::secrets;
    use crate::SecretType;

    #[test]
    fn resolving_into_a_buffer_gives_the_same_output_as_a_string() {
        let mut src = secrets(&[("user", SecretType::Text, "alice")]);
        let text = "u=${secret:user} and $${secret:literal}";
        let expected = resolve_text(text, &mut src).unwrap().into_owned();
        let mut out = vec![b'#'; expected.len() + 3];
        let n = resolve_text_into(text, &mut src, None, &mut out).unwrap();
        assert_eq!(&out[..n], expected.as_bytes());
        assert_eq!(&out[n..], b"###", "nothing past the output");

        let json = r#"{"user": "${secret:user}", "n": 1}"#;
        let expected = crate::placeholder::resolve_json(json, &mut src)
            .unwrap()
            .into_owned();
        let n = crate::placeholder::resolve_json_into(json, &mut src, None, &mut out).unwrap();
        assert_eq!(&out[..n], expected.as_bytes());
        let mut small = [0u8; 4];
        let bad_json = crate::placeholder::resolve_json_into("{", &mut src, None, &mut small);
        assert_eq!(bad_json.unwrap_err().code(), ErrorCode::InvalidArgument);
    }

    #[test]
    fn resolving_into_a_buffer_leaves_no_value_on_failure_or_overflow() {
        let mut src = secrets(&[("user", SecretType::Text, "alice")]);
        let mut out = [b'#'; 32];
        let err = resolve_text_into("${secret:user} ${secret:gone}", &mut src, None, &mut out)
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unresolved);
        assert!(!out.windows(5).any(|w| w == b"alice"), "{out:?}");

        let mut small = [b'#'; 8];
        let text = "x ${secret:user} and more";
        let needed = resolve_text_into(text, &mut src, None, &mut small).unwrap();
        assert_eq!(needed, "x alice and more".len());
        assert!(!small.windows(3).any(|w| w == b"ali"), "{small:?}");
        let plain = resolve_text_into("plain", &mut src, None, &mut small).unwrap();
        assert_eq!(
            &small[..plain],
            b"plain",
            "a text without placeholders is copied"
        );
    }

    #[test]
    fn substitutes_two_placeholders_in_one_string() {
        let mut src = secrets(&[
            ("user", SecretType::Text, "alice"),
            ("pass", SecretType::Text, "pw"),
        ]);
        let out = resolve_text("u=${secret:user;type:TEXT}&p=${secret:pass}.", &mut src).unwrap();
        assert_eq!(out, "u=alice&p=pw.");
        assert!(matches!(out, Cow::Owned(_)));
    }

    #[test]
    fn text_without_placeholders_is_borrowed() {
        let mut src = secrets(&[]);
        let text = "url=${deviceName}/${deviceType} ${ENV:default} $ {secret:x}";
        assert!(matches!(resolve_text(text, &mut src).unwrap(), Cow::Borrowed(t) if t == text));
        assert!(src.calls.is_empty());
    }

    #[test]
    fn escape_becomes_literal_and_is_owned() {
        let mut src = secrets(&[("x", SecretType::Text, "v")]);
        let out = resolve_text("a $${secret:x} b $${secret:", &mut src).unwrap();
        assert_eq!(out, "a ${secret:x} b ${secret:");
        assert!(matches!(out, Cow::Owned(_)));
        assert!(src.calls.is_empty(), "an escape resolves nothing");
        let out = resolve_text("$$${secret:x} ${secret:x}", &mut src).unwrap();
        assert_eq!(out, "$${secret:x} v");
    }

    #[test]
    fn short_form_accepts_any_type_and_file_alias_matches_text_file() {
        let mut src = secrets(&[
            ("ca", SecretType::TextFile, "PEM\n"),
            ("t", SecretType::Text, "T"),
        ]);
        let out = resolve_text(
            "${secret:ca}|${secret:ca;type:FILE}|${secret:ca;type:TEXT_FILE}|${secret:t}",
            &mut src,
        )
        .unwrap();
        assert_eq!(out, "PEM\n|PEM\n|PEM\n|T");
    }

    #[test]
    fn type_mismatch_names_both_types() {
        let mut src = secrets(&[
            ("ca", SecretType::TextFile, "PEM-VALUE"),
            ("t", SecretType::Text, "TEXT-VALUE"),
        ]);
        let err =
            resolve_text("${secret:ca;type:TEXT} ${secret:t;type:FILE}", &mut src).unwrap_err();
        assert_eq!(err.code(), ErrorCode::TypeMismatch);
        let problems = err.problems();
        assert_eq!(problems.len(), 2);
        assert_eq!((problems[0].name.as_str(), problems[0].offset), ("ca", 0));
        assert_eq!(problems[0].code, ErrorCode::TypeMismatch);
        assert!(problems[0]
            .reason
            .contains("expected type TEXT, but the secret is TEXT_FILE"));
        assert_eq!((problems[1].name.as_str(), problems[1].offset), ("t", 23));
        assert!(problems[1]
            .reason
            .contains("expected type TEXT_FILE, but the secret is TEXT"));
        assert!(!err.to_string().contains("VALUE"));
    }

    #[test]
    fn every_missing_secret_is_named_in_one_error() {
        let mut src = secrets(&[("here", SecretType::Text, "SECRET-VALUE")]);
        let text = "${secret:a} ${secret:here} ${secret:b;type:TEXT} ${secret:a}";
        let err = resolve_text(text, &mut src).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unresolved);
        let found: Vec<(&str, usize, ErrorCode)> = err
            .problems()
            .iter()
            .map(|p| (p.name.as_str(), p.offset, p.code))
            .collect();
        assert_eq!(
            found,
            vec![
                ("a", 0, ErrorCode::NotFound),
                ("b", 27, ErrorCode::NotFound),
                ("a", 49, ErrorCode::NotFound)
            ]
        );
        assert!(!err.to_string().contains("SECRET-VALUE"));
        assert_eq!(src.calls, ["a", "here", "b"]);
    }

    #[test]
    fn mismatch_plus_missing_is_unresolved() {
        let mut src = secrets(&[("t", SecretType::Text, "v")]);
        let err = resolve_text("${secret:t;type:FILE}${secret:gone}", &mut src).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unresolved);
        let codes: Vec<ErrorCode> = err.problems().iter().map(|p| p.code).collect();
        assert_eq!(codes, [ErrorCode::TypeMismatch, ErrorCode::NotFound]);
    }

    #[test]
    fn malformed_at_start_middle_and_end() {
        let mut src = secrets(&[("ok", SecretType::Text, "OK-VALUE")]);
        let text = "${secret:} mid ${secret:ok;type:BLOB} ${secret:ok} end ${secret:ok";
        let err = resolve_text(text, &mut src).unwrap_err();
        assert_eq!(err.code(), ErrorCode::MalformedPlaceholder);
        let found: Vec<(usize, ErrorCode)> =
            err.problems().iter().map(|p| (p.offset, p.code)).collect();
        assert_eq!(
            found,
            vec![
                (0, ErrorCode::MalformedPlaceholder),
                (15, ErrorCode::MalformedPlaceholder),
                (55, ErrorCode::MalformedPlaceholder)
            ]
        );
        assert_eq!(&text[55..], "${secret:ok");
        assert!(!err.to_string().contains("OK-VALUE"));
    }

    #[test]
    fn malformed_plus_missing_lists_both_under_malformed() {
        let mut src = secrets(&[]);
        let err = resolve_text("${secret:gone} ${secret:a;b}", &mut src).unwrap_err();
        assert_eq!(err.code(), ErrorCode::MalformedPlaceholder);
        let codes: Vec<ErrorCode> = err.problems().iter().map(|p| p.code).collect();
        assert_eq!(
            codes,
            [ErrorCode::NotFound, ErrorCode::MalformedPlaceholder]
        );
    }

    #[test]
    fn unusable_reports_the_reason() {
        let mut src = |name: &str| -> Result<Fetched> {
            Ok(Fetched::Unusable {
                reason: format!("secret '{name}' is not UTF-8"),
            })
        };
        let err = resolve_text("x ${secret:bin}", &mut src).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unresolved);
        assert_eq!(err.problems()[0].reason, "secret 'bin' is not UTF-8");
        assert_eq!(err.problems()[0].offset, 2);
    }

    #[test]
    fn hard_source_error_aborts_with_that_error() {
        let mut calls = 0;
        let mut src = |_: &str| -> Result<Fetched> {
            calls += 1;
            Err(Error::integrity("tag mismatch"))
        };
        let err = resolve_text("${secret:a} ${secret:b}", &mut src).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Integrity);
        assert_eq!(calls, 1);
    }

    #[test]
    fn values_are_not_scanned_again() {
        let mut src = secrets(&[
            ("outer", SecretType::Text, "x${secret:other}y$${secret:z}"),
            ("other", SecretType::Text, "MUST-NOT-APPEAR"),
        ]);
        let out = resolve_text("[${secret:outer}]", &mut src).unwrap();
        assert_eq!(out, "[x${secret:other}y$${secret:z}]");
        assert_eq!(src.calls, ["outer"]);
    }

    #[test]
    fn fetch_is_called_once_per_distinct_name() {
        let mut src = secrets(&[
            ("a", SecretType::Text, "1"),
            ("b", SecretType::TextFile, "2"),
        ]);
        let out = resolve_text(
            "${secret:a}${secret:b}${secret:a;type:TEXT}${secret:b;type:FILE}${secret:a}",
            &mut src,
        )
        .unwrap();
        assert_eq!(out, "12121");
        assert_eq!(src.calls, ["a", "b"]);
    }

    #[test]
    fn unicode_name_with_spaces_resolves() {
        let mut src = secrets(&[("ключ API 🔑", SecretType::Text, "значение")]);
        let out = resolve_text("«${secret:ключ API 🔑;type:TEXT}»", &mut src).unwrap();
        assert_eq!(out, "«значение»");
    }

    #[test]
    fn fetched_debug_redacts_the_value() {
        let fetched = Fetched::Found {
            secret_type: SecretType::Text,
            replacement: zeroize::Zeroizing::new("TOP-SECRET".to_owned()),
        };
        let shown = format!("{fetched:?}");
        assert!(
            shown.contains("redacted") && !shown.contains("TOP-SECRET"),
            "{shown}"
        );
    }
}
