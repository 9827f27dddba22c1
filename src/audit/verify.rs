//! Checking an audit log: every line's MAC, sequence number and link to the line before.

use super::entry::{split_line, ChainHead};
use crate::crypto::MacKey;
use crate::error::{Error, ErrorCode, Result};
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// The first line that breaks the chain, or a store state the log does not account for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditProblem {
    /// Its line number (1-based); 0 when the problem is in the store, not in the log (a
    /// secret's current-version pointer that fails authentication).
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
            Some(p) if p.line == 0 => Err(Error::new(
                ErrorCode::Integrity,
                format!("audit log verified, but the store is not: {}", p.reason),
            )),
            Some(p) => Err(Error::new(
                ErrorCode::Integrity,
                format!("audit log line {}: {}", p.line, p.reason),
            )),
        }
    }
}

/// Verifies the log at `path` with `key` against `sealed`, the chain head the store holds
/// (sealed in its state row): every line's MAC, sequence number and link to the line before,
/// from record 1 up to `sealed`, which the log must reach and match. Records after `sealed`
/// (written since the caller read it) are not read. Calls `progress(bytes_read,
/// total_bytes)` as it goes and stops at the first problem. NOT_FOUND when there is no file
/// and the store has sealed no record.
pub(crate) fn verify_file(
    path: &Path,
    key: &MacKey,
    sealed: &ChainHead,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<AuditVerification> {
    let missing_from = |last: u64| {
        if last + 1 == sealed.seq {
            format!("record {} is missing", sealed.seq)
        } else {
            format!("records {}–{} are missing", last + 1, sealed.seq)
        }
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && sealed.seq > 0 => {
            return Ok(AuditVerification {
                records: 0,
                last_seq: 0,
                problem: Some(AuditProblem {
                    line: 1,
                    reason: format!(
                        "the log file does not exist but the store has sealed {} record(s): it was deleted ({})",
                        sealed.seq,
                        missing_from(0)
                    ),
                }),
            })
        }
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                ErrorCode::NotFound
            } else {
                ErrorCode::Storage
            };
            return Err(Error::new(
                code,
                format!("cannot open the audit log {}: {e}", path.display()),
            ));
        }
    };
    let total = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut head = ChainHead::default();
    let mut line = Vec::new();
    let mut read: u64 = 0;
    let mut number: u64 = 0;
    let mut last_report: u64 = 0;
    let bad = |number: u64, head: &ChainHead, reason: String| AuditVerification {
        records: number - 1,
        last_seq: head.seq,
        problem: Some(AuditProblem {
            line: number,
            reason,
        }),
    };
    while head.seq < sealed.seq {
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
        if read - last_report >= 1 << 20 {
            progress(read, total);
            last_report = read;
        }
    }
    progress(read, total);
    if head.seq < sealed.seq {
        let what = if number == 0 {
            "the log is empty"
        } else {
            "the log ends early"
        };
        return Ok(bad(
            number + 1,
            &head,
            format!(
                "{what}: it reaches record {} but the store has sealed records up to {} ({}; the log was cut off, emptied or replaced)",
                head.seq,
                sealed.seq,
                missing_from(head.seq)
            ),
        ));
    }
    if head.mac != sealed.mac {
        return Ok(bad(
            number,
            &head,
            format!(
                "record {} differs from the one the store sealed (the log was replaced or rewritten)",
                head.seq
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
    if head.seq == 0 && seq > 1 {
        let missing = if seq == 2 {
            "record 1 is missing".to_owned()
        } else {
            format!("records 1–{} are missing", seq - 1)
        };
        return Err(format!(
            "the log starts at record {seq}: {missing} (deleted, or in an earlier rotated file)"
        ));
    }
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
