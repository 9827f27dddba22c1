//! The reader of `tests/contract/cases.tsv` shared by the Rust runners (`tests/contract.rs`,
//! `tests/contract_cli.rs`). The format is described at the top of the data file.
#![allow(dead_code)]

use std::path::PathBuf;
use tbsecrets::ErrorCode;

/// The header line every runner expects.
pub const HEADER: &str = "op\ttenant\tname\ttype\tvalue\targ\texpect\tresult\tskip\tnote";

/// The surfaces a case may be skipped on.
pub const SURFACES: [&str; 4] = ["rust", "c", "java", "cli"];

/// One case of the script.
#[derive(Debug)]
pub struct Case {
    /// Line number in the file (1-based), for messages.
    pub line: usize,
    /// The operation: create, update, get, rollback, delete, undelete, destroy, resolve_text,
    /// resolve_json.
    pub op: String,
    pub tenant: Vec<u8>,
    pub name: Vec<u8>,
    /// `TEXT`, `TEXT_FILE` or empty.
    pub secret_type: String,
    pub value: Vec<u8>,
    /// The number in the `arg` column, if any.
    pub arg: Option<u64>,
    pub expect: ErrorCode,
    pub result: Vec<u8>,
    /// Whether the result column is empty (nothing to check for writes).
    pub result_empty: bool,
    pub skip: Vec<String>,
    pub note: String,
}

impl Case {
    /// Whether `surface` skips this case.
    pub fn skips(&self, surface: &str) -> bool {
        self.skip.iter().any(|s| s == surface)
    }

    /// The tenant as text (every tenant in the file is UTF-8).
    pub fn tenant_str(&self) -> String {
        String::from_utf8(self.tenant.clone()).expect("tenants in the contract file are UTF-8")
    }

    /// The name as text (every name in the file is UTF-8).
    pub fn name_str(&self) -> String {
        String::from_utf8(self.name.clone()).expect("names in the contract file are UTF-8")
    }

    /// The expected version of a write, if the case gives one.
    pub fn expected_version(&self) -> Option<u64> {
        if self.result_empty {
            return None;
        }
        let text = std::str::from_utf8(&self.result).expect("a version is ASCII");
        Some(
            text.parse()
                .unwrap_or_else(|_| panic!("line {}: result {text:?} is no version", self.line)),
        )
    }

    /// A short description for messages (never a value: the file's values are test data, but
    /// long ones would drown the message).
    pub fn describe(&self) -> String {
        format!(
            "line {}: {} {:?}/{:?} → {} ({})",
            self.line,
            self.op,
            String::from_utf8_lossy(&self.tenant),
            String::from_utf8_lossy(&self.name),
            self.expect,
            self.note
        )
    }
}

/// The path of the data file.
pub fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/contract/cases.tsv")
}

/// Decodes one escaped field.
pub fn unescape(field: &str) -> Result<Vec<u8>, String> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let next = *bytes.get(i + 1).ok_or("a lone backslash at the end")?;
        match next {
            b'\\' => out.push(b'\\'),
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b'x' => {
                let hex = field.get(i + 2..i + 4).ok_or("\\x needs two hex digits")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad \\x{hex}"))?);
                i += 2;
            }
            b'{' => {
                let end = field[i + 2..]
                    .find('}')
                    .ok_or("\\{ without a closing brace")?;
                let count: usize = field[i + 2..i + 2 + end]
                    .parse()
                    .map_err(|_| "\\{N} needs a decimal N".to_owned())?;
                let last = *out.last().ok_or("\\{N} with no byte before it")?;
                if count == 0 {
                    return Err("\\{0} is not allowed".to_owned());
                }
                out.extend(std::iter::repeat_n(last, count - 1));
                i += end + 1;
            }
            other => return Err(format!("unknown escape \\{}", other as char)),
        }
        i += 2;
    }
    Ok(out)
}

/// Every case of the file, in order. Panics with the line number on a malformed line.
pub fn load() -> Vec<Case> {
    let text = std::fs::read_to_string(path()).expect("read tests/contract/cases.tsv");
    let mut cases = Vec::new();
    let mut header_seen = false;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !header_seen {
            assert_eq!(line, HEADER, "line {line_no}: the header");
            header_seen = true;
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 10, "line {line_no}: 10 fields");
        let field = |i: usize| {
            unescape(fields[i]).unwrap_or_else(|e| panic!("line {line_no}, field {i}: {e}"))
        };
        let expect = ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str() == fields[6])
            .unwrap_or_else(|| panic!("line {line_no}: unknown code {:?}", fields[6]));
        let skip: Vec<String> = fields[8]
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        for s in &skip {
            assert!(
                SURFACES.contains(&s.as_str()),
                "line {line_no}: unknown surface {s:?}"
            );
        }
        let arg = (!fields[5].is_empty()).then(|| {
            fields[5]
                .parse()
                .unwrap_or_else(|_| panic!("line {line_no}: arg {:?} is no number", fields[5]))
        });
        assert!(
            matches!(fields[3], "" | "TEXT" | "TEXT_FILE"),
            "line {line_no}: type {:?}",
            fields[3]
        );
        cases.push(Case {
            line: line_no,
            op: fields[0].to_owned(),
            tenant: field(1),
            name: field(2),
            secret_type: fields[3].to_owned(),
            value: field(4),
            arg,
            expect,
            result: field(7),
            result_empty: fields[7].is_empty(),
            skip,
            note: fields[9].to_owned(),
        });
    }
    assert!(header_seen, "the file has a header");
    cases
}

/// Checks the outcome of one case; `got` is the error code and, for reads, the bytes.
#[track_caller]
pub fn check(case: &Case, got: ErrorCode, bytes: Option<&[u8]>, version: Option<u64>) {
    assert_eq!(got, case.expect, "{}", case.describe());
    if got != ErrorCode::Ok {
        return;
    }
    match case.op.as_str() {
        "get" | "resolve_text" | "resolve_json" => {
            let bytes = bytes.unwrap_or_else(|| panic!("{}: no bytes returned", case.describe()));
            assert!(
                bytes == case.result.as_slice(),
                "{}: got {:?}, expected {:?}",
                case.describe(),
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)]),
                String::from_utf8_lossy(&case.result[..case.result.len().min(200)])
            );
        }
        "create" | "update" | "rollback" => {
            if let Some(want) = case.expected_version() {
                assert_eq!(version, Some(want), "{}: the version", case.describe());
            }
        }
        _ => {}
    }
}

/// Prints the cases `surface` skips (so a skip is visible in the test output) and returns how
/// many cases it runs.
pub fn report_skips(cases: &[Case], surface: &str) -> usize {
    let mut run = 0;
    for case in cases {
        if case.skips(surface) {
            eprintln!("{surface}: skipped (the file says so): {}", case.describe());
        } else {
            run += 1;
        }
    }
    run
}
