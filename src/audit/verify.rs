//! Checking an audit log: every line's MAC, sequence number and link to the line before.

use super::anchor::{self, Anchor};
use super::entry::{split_line, ChainHead};
use crate::crypto::MacKey;
use crate::error::{Error, ErrorCode, Result};
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// The first line that breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditProblem {
    /// Its line number (1-based).
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// The result of verifying an audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditVerification {
    /// Records read before the first problem (all of them when intact).
    pub records: u64,
    /// The sequence number of the last good record (0 for an empty log).
    pub last_seq: u64,
    /// The first problem found, if any.
    pub problem: Option<AuditProblem>,
}

impl AuditVerification {
    /// Whether every line verified.
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }

    /// `Ok` when intact, else INTEGRITY naming the first bad line.
    pub fn into_result(self) -> Result<AuditVerification> {
        match &self.problem {
            None => Ok(self),
            Some(p) => Err(Error::new(
                ErrorCode::Integrity,
                format!("audit log line {}: {}", p.line, p.reason),
            )),
        }
    }
}

/// Verifies the log at `path` with `key`, calling `progress(bytes_read, total_bytes)` as it
/// goes. Stops at the first bad line. `anchor_of(key)` reads a store metadata value: the
/// chain's anchor, which the log must reach (and match). NOT_FOUND when there is no file.
pub(crate) fn verify_file(
    path: &Path,
    key: &MacKey,
    anchor_of: &mut dyn FnMut(&str) -> Result<Option<Vec<u8>>>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<AuditVerification> {
    let file = std::fs::File::open(path).map_err(|e| {
        let code = if e.kind() == std::io::ErrorKind::NotFound {
            ErrorCode::NotFound
        } else {
            ErrorCode::Storage
        };
        Error::new(
            code,
            format!("cannot open the audit log {}: {e}", path.display()),
        )
    })?;
    let total = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut head = ChainHead::default();
    let mut line = Vec::new();
    let mut read: u64 = 0;
    let mut number: u64 = 0;
    let mut last_report: u64 = 0;
    let mut anchored: Option<Anchor> = None;
    let bad = |number: u64, head: &ChainHead, reason: String| AuditVerification {
        records: number - 1,
        last_seq: head.seq,
        problem: Some(AuditProblem {
            line: number,
            reason,
        }),
    };
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        read += n as u64;
        number += 1;
        if let Err(reason) = check_line(&line, key, &mut head) {
            progress(read, total);
            return Ok(bad(number, &head, reason));
        }
        if head.seq == 1 {
            // The chain's name is its first MAC: look up what the store anchored for it.
            if let Some(value) = anchor_of(&anchor::key_of(&head.mac))? {
                match anchor::decode(key, &head.mac, &value) {
                    Some(found) => anchored = Some(found),
                    None => {
                        return Ok(bad(
                            number,
                            &head,
                            "the store's anchor of this log fails authentication (edited)".into(),
                        ))
                    }
                }
            }
        }
        if let Some(anchor) = anchored.as_ref().filter(|a| a.seq == head.seq) {
            if anchor.mac != head.mac {
                return Ok(bad(
                    number,
                    &head,
                    "this record differs from the one the store anchored".into(),
                ));
            }
        }
        if read - last_report >= 1 << 20 {
            progress(read, total);
            last_report = read;
        }
    }
    progress(read, total);
    if let Some(anchor) = anchored.filter(|a| a.seq > head.seq) {
        return Ok(bad(
            number + 1,
            &head,
            format!(
                "the log ends at record {} but the store anchored record {}: lines were cut off its end",
                head.seq, anchor.seq
            ),
        ));
    }
    Ok(AuditVerification {
        records: number,
        last_seq: head.seq,
        problem: None,
    })
}

/// Checks one line against the chain so far and advances it.
fn check_line(line: &[u8], key: &MacKey, head: &mut ChainHead) -> std::result::Result<(), String> {
    let Some(text) = line.strip_suffix(b"\n") else {
        return Err("the line is incomplete (no newline): cut off or still being written".into());
    };
    let text = std::str::from_utf8(text).map_err(|_| "the line is not UTF-8".to_owned())?;
    let parts =
        split_line(text).ok_or_else(|| "the line is not an audit record (no MAC)".to_owned())?;
    if !key.verify_parts(&[parts.body.as_bytes(), b"}"], &parts.mac) {
        return Err(
            "the MAC does not match: the line was edited, or written without this store's key"
                .into(),
        );
    }
    let link = link_of(parts.body)
        .or_else(|| parsed_link(text))
        .ok_or_else(|| "the record lacks its sequence number or link".to_owned())?;
    let (seq, prev) = link;
    if seq != head.seq + 1 || prev != head.mac {
        return Err(format!(
            "the chain is broken: record {seq} does not follow record {} (a line was deleted, inserted or moved)",
            head.seq
        ));
    }
    head.seq = seq;
    head.mac.clear();
    head.mac.push_str(parts.mac_text);
    Ok(())
}

/// The `seq` and `prev` of an authenticated line as the log writes it: `{"seq":N,` first and
/// `,"prev":"…"` last before the MAC (base64 holds no quote or backslash). `None` for any
/// other layout, which [`parsed_link`] reads instead.
fn link_of(body: &str) -> Option<(u64, std::borrow::Cow<'_, str>)> {
    let rest = body.strip_prefix("{\"seq\":")?;
    let seq = rest[..rest.find(',')?].parse().ok()?;
    const PREV: &str = ",\"prev\":\"";
    let prev = body[body.rfind(PREV)? + PREV.len()..].strip_suffix('"')?;
    if prev.contains(['"', '\\']) {
        return None;
    }
    Some((seq, std::borrow::Cow::Borrowed(prev)))
}

/// The `seq` and `prev` of a line by a full JSON parse.
fn parsed_link(line: &str) -> Option<(u64, std::borrow::Cow<'_, str>)> {
    #[derive(serde::Deserialize)]
    struct Link<'a> {
        seq: u64,
        #[serde(borrow)]
        prev: std::borrow::Cow<'a, str>,
    }
    let link: Link = serde_json::from_str(line).ok()?;
    Some((link.seq, link.prev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_link_reader_agrees_with_the_json_parse() {
        let line = r#"{"seq":12,"time":"t","names":["a,\"prev\":\"x"],"prev":"AbC+/9"}"#;
        let body = &line[..line.len() - 1];
        assert_eq!(link_of(body), Some((12, "AbC+/9".into())));
        assert_eq!(parsed_link(line), Some((12, "AbC+/9".into())));
        // Another layout falls back to the parse.
        assert_eq!(link_of(r#"{"time":"t","seq":3,"prev":""#), None);
        assert_eq!(
            parsed_link(r#"{"time":"t","seq":3,"prev":""}"#),
            Some((3, "".into()))
        );
    }
}
