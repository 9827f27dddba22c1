//! Placeholders inside YAML documents (`resolve_yaml`, `DocumentFormat::Yaml`, the CLI's
//! `--format yaml`): hostile values round-trip exactly (the output is parsed with the YAML crate
//! and each scalar compared with the secret's bytes), invalid YAML is refused before and after,
//! and every problem is named.

mod common;

use common::{expect_code, Fixture, TENANT};
use proptest::prelude::*;
use saphyr_parser::{Event, Parser};
use std::borrow::Cow;
use tbsecrets::placeholder::{resolve_yaml, Fetched};
use tbsecrets::{DocumentFormat, ResolveOptions};
use tbsecrets::{ErrorCode, SecretType};
use zeroize::Zeroizing;

/// Values that change meaning or break a YAML document if pasted in as they are.
const HOSTILE: &[&str] = &[
    "a: b",
    "# not a comment",
    "x #y",
    "\"double\" and 'single'",
    "'",
    "\"",
    "*alias",
    "&anchor",
    "!tag",
    "- item",
    "? key",
    "%TAG",
    "@at",
    "`tick",
    "|",
    ">",
    "yes",
    "no",
    "on",
    "Off",
    "null",
    "~",
    "",
    "true",
    "1883",
    "0x1F",
    "1e3",
    "0o17",
    ".inf",
    "  leading and trailing  ",
    "\ttab",
    "line one\nline two",
    "trailing newlines\n\n",
    "\n\nleading newlines",
    "crlf\r\nline",
    "back\\slash \\n not a newline",
    "{flow: [map]}",
    "[1, 2]",
    "a,b",
    "${secret:other} is not scanned again",
    "unicode é ü 漢字 🔑",
    "nel\u{85}ls\u{2028}ps\u{2029}bom\u{feff}bell\u{7}del\u{7f}",
    "---",
    "...",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU: #x\n-----END CERTIFICATE-----\n",
];

/// Documents with one `${secret:v}` placeholder each, in every place a value can stand.
const SHAPES: &[&str] = &[
    "k: ${secret:v}\n",
    "k: ${secret:v}   # comment\n",
    "k: \"${secret:v}\"\n",
    "k: 'pre ${secret:v} post'\n",
    "k: pre ${secret:v}\n",
    "- ${secret:v}\n- 2\n",
    "top:\n  - name: x\n    pass: ${secret:v}\n  - name: y\n",
    "top:\n  inner:\n    ${secret:v}\nnext: 1\n",
    "k: !!str &a ${secret:v}\nalias: *a\n",
    "k: [\"${secret:v}\", 'x${secret:v}']\n",
    "{\"k\": \"${secret:v}\"}\n",
    "---\nk: ${secret:v}\n...\n---\nk2: ${secret:v}\n",
    "k: |\n  before\n  ${secret:v}\n",
    "k: \"${secret:v}\" # quoted\nz: [1, 2]\n",
];

/// The scalar values of a YAML stream, in order.
fn scalars(doc: &str) -> Vec<String> {
    let mut parser = Parser::new_from_str(doc);
    let mut found = Vec::new();
    while let Some(event) = parser.next_event() {
        match event {
            Ok((Event::Scalar(text, ..), _)) => found.push(text.into_owned()),
            Ok(_) => {}
            Err(e) => panic!("output is not YAML: {e}\n{doc}"),
        }
    }
    found
}

/// A source with one TEXT secret `v` and one `other`.
fn source(value: &str) -> impl FnMut(&str) -> tbsecrets::Result<Fetched> + '_ {
    move |name: &str| {
        Ok(match name {
            "v" => Fetched::Found {
                secret_type: SecretType::Text,
                replacement: Zeroizing::new(value.to_owned()),
            },
            _ => Fetched::Missing,
        })
    }
}

/// What the scalars of `shape` hold once `${secret:v}` is `value`: the same document with
/// the placeholder written as a double-quoted escape-free marker, parsed, and the marker
/// replaced in the decoded values.
fn expected(shape: &str, value: &str) -> Vec<String> {
    scalars(&shape.replace("${secret:v}", "MARKER"))
        .into_iter()
        .map(|s| s.replace("MARKER", value))
        .collect()
}

#[test]
fn hostile_values_round_trip_exactly_in_every_shape() {
    for shape in SHAPES {
        for value in HOSTILE {
            let block = shape.contains('|');
            if block && value.chars().any(|c| c.is_control() && c != '\n') {
                continue; // a block scalar cannot hold control characters: refused below
            }
            let result = resolve_yaml(shape, &mut source(value));
            let may_refuse = value.is_empty() || value.contains('\n') || value.starts_with(' ');
            if block && may_refuse {
                // An empty last line, leading blanks or trailing line breaks inside a block
                // scalar could be re-read as indentation or chomped: refused if so, never
                // silently changed.
                if let Err(e) = &result {
                    assert_eq!(e.code(), ErrorCode::InvalidArgument, "{shape:?} {value:?}");
                    assert!(!e.to_string().contains(value) || value.len() < 3, "{e}");
                    continue;
                }
            }
            let out = result.unwrap_or_else(|e| panic!("{shape:?} with {value:?}: {e}"));
            assert_eq!(
                scalars(&out),
                expected(shape, value),
                "shape {shape:?} value {value:?}:\n{out}"
            );
        }
    }
}

#[test]
fn a_pem_standing_alone_becomes_a_literal_block_scalar() {
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let doc = "mqtt:\n  security:\n    caCert: ${secret:v}  # the broker's CA\n    port: 8883\n";
    let out = resolve_yaml(doc, &mut source(pem)).unwrap();
    assert_eq!(
        out,
        "mqtt:\n  security:\n    caCert: |  # the broker's CA\n      -----BEGIN CERTIFICATE-----\n      MIIB\n      -----END CERTIFICATE-----\n    port: 8883\n"
    );
    let no_newline = resolve_yaml("k: ${secret:v}\n", &mut source("a\nb")).unwrap();
    assert_eq!(no_newline, "k: |-\n  a\n  b\n");
    let kept = resolve_yaml("k: ${secret:v}\n", &mut source("a\nb\n\n")).unwrap();
    assert_eq!(kept, "k: |+\n  a\n  b\n\n");
}

#[test]
fn values_that_would_change_type_are_quoted() {
    for value in ["yes", "null", "1883", "~", "", "true", "0x1F"] {
        let out = resolve_yaml("k: ${secret:v}\n", &mut source(value)).unwrap();
        assert_eq!(out, format!("k: \"{value}\"\n"));
    }
    let out = resolve_yaml("k: 'it ${secret:v}'\n", &mut source("isn't")).unwrap();
    assert_eq!(out, "k: 'it isn''t'\n", "single-quoted stays single-quoted");
    let out = resolve_yaml("k: '${secret:v}'\n", &mut source("a\nb")).unwrap();
    assert_eq!(out, "k: \"a\\nb\"\n", "a line break moves to double quotes");
}

#[test]
fn invalid_yaml_is_refused_before_resolving() {
    let mut calls = 0;
    let mut counting = |_: &str| {
        calls += 1;
        Ok(Fetched::Missing)
    };
    for doc in [
        "k: [1, 2\n",
        "k: \"open\n",
        "a:\n\tb: ${secret:v}\n",
        "k: {x: ${secret:v}}\n",
        "k: v\n bad indent: ${secret:v}\n",
    ] {
        let err = resolve_yaml(doc, &mut counting).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "{doc:?}");
        assert!(err.message().starts_with("not valid YAML: "), "{err}");
    }
    assert_eq!(calls, 0, "nothing is fetched for an invalid document");
}

#[test]
fn a_value_that_cannot_stand_in_a_block_scalar_is_refused_not_changed() {
    let err = resolve_yaml("k: >\n  x ${secret:v}\n", &mut source("a\nb")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(err.message().contains("line 2"), "{err}");
    assert!(!err.message().contains("a\nb"));
    let err = resolve_yaml("k: |\n  x ${secret:v}\n", &mut source("bell\u{7}")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
}

#[test]
fn every_missing_or_malformed_placeholder_is_named() {
    let doc = "a: ${secret:gone}\nb:\n  - \"x ${secret:v;type:TEXT_FILE}\"\nc: '${secret:bad'\n${secret:key}: 1\n";
    let err = resolve_yaml(doc, &mut source("s3cr3t")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::MalformedPlaceholder);
    let named: Vec<(&str, usize, ErrorCode)> = err
        .problems()
        .iter()
        .map(|p| (p.name.as_str(), p.offset, p.code))
        .collect();
    let at = |needle: &str| doc.find(needle).unwrap();
    assert_eq!(
        named,
        [
            ("gone", at("${secret:gone"), ErrorCode::NotFound),
            ("v", at("${secret:v;"), ErrorCode::TypeMismatch),
            ("bad", at("${secret:bad"), ErrorCode::MalformedPlaceholder),
        ]
    );
    assert!(!err.to_string().contains("s3cr3t"));
}

#[test]
fn documents_without_placeholders_come_back_borrowed() {
    let doc = "thingsboard:\n  host: ${TB_HOST}\n  ${secret:key}: 1\nesc: $${secret:x}x\n";
    // `$${secret:` in a value is an escape: it is rewritten, so this one is owned.
    let out = resolve_yaml(doc, &mut source("v")).unwrap();
    assert_eq!(scalars(&out)[6], "${secret:x}x");
    let plain = "a: 1\nb: [x, y]\n";
    assert!(
        matches!(resolve_yaml(plain, &mut source("v")).unwrap(), Cow::Borrowed(d) if d == plain)
    );
}

#[test]
fn the_store_resolves_yaml_and_files_by_extension() {
    let f = Fixture::new();
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    f.store
        .create(TENANT, "ca", SecretType::TextFile, pem.as_bytes(), "")
        .unwrap();
    f.store
        .create(TENANT, "pw", SecretType::Text, b"no: #1 'x'", "")
        .unwrap();
    let doc = "broker:\n  ca: ${secret:ca;type:TEXT_FILE}\n  password: ${secret:pw}\n";
    let out = f.store.resolve_yaml(TENANT, doc).unwrap();
    assert_eq!(
        scalars(&out),
        ["broker", "ca", pem, "password", "no: #1 'x'"]
    );

    for (name, format) in [
        ("gw.yaml", DocumentFormat::Auto),
        ("gw.YML", DocumentFormat::Auto),
        ("gw.conf", DocumentFormat::Yaml),
    ] {
        let path = f.dir.path().join(name);
        std::fs::write(&path, doc).unwrap();
        let out = f
            .store
            .resolve_file(TENANT, &path, format, ResolveOptions::default())
            .unwrap();
        assert_eq!(scalars(&out)[4], "no: #1 'x'", "{name}");
        assert!(format.is_yaml(&path));
    }
    assert_eq!(
        "yml".parse::<DocumentFormat>().unwrap(),
        DocumentFormat::Yaml
    );
    expect_code(
        f.store.resolve_yaml(TENANT, "a: [\n"),
        ErrorCode::InvalidArgument,
    );

    // Materialised: the TEXT_FILE value becomes a path, the text value stays a value.
    // `..Default::default()`: ResolveOptions grows fields (allow-lists) in other branches.
    #[allow(clippy::needless_update)]
    let options = ResolveOptions {
        materialize_files: true,
        ..Default::default()
    };
    let out = f.store.resolve_yaml_with(TENANT, doc, options).unwrap();
    let values = scalars(&out);
    assert_eq!(std::fs::read_to_string(&values[2]).unwrap(), pem);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any printable-or-not text round-trips through a plain, a double-quoted and a
    /// single-quoted placeholder.
    #[test]
    fn any_value_round_trips(value in "[ -~\t\n\r\u{85}\u{a0}\u{2028}é🔑#:'\"\\\\*&!|>%@`-]{0,40}") {
        for shape in ["k: ${secret:v}\n", "- \"x${secret:v}\"\n", "k: '${secret:v}y'\n"] {
            let out = resolve_yaml(shape, &mut source(&value)).unwrap();
            prop_assert_eq!(scalars(&out), expected(shape, &value));
        }
    }
}

#[cfg(feature = "cli")]
mod cli {
    use super::scalars;
    use std::process::{Command, Stdio};

    #[test]
    fn resolve_format_yaml_and_auto_for_yaml_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s.db");
        let run = |args: &[&str], stdin: Option<&[u8]>| {
            let mut child = Command::new(env!("CARGO_BIN_EXE_tbsecrets"))
                .arg("--store")
                .arg(&store)
                .args(args)
                .env_remove("TBS_MASTER_KEY")
                .env_remove("TBS_MASTER_KEY_FILE")
                .env_remove("TBS_STORE")
                .env_remove("TBS_TENANT")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            if let Some(input) = stdin {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(input).unwrap();
            }
            drop(child.stdin.take());
            child.wait_with_output().unwrap()
        };
        assert!(run(&["init"], None).status.success());
        let put = run(&["put", "pw", "--type", "text"], Some(b"*x: #y"));
        assert!(
            put.status.success(),
            "{}",
            String::from_utf8_lossy(&put.stderr)
        );
        let doc = "thingsboard:\n  security:\n    password: ${secret:pw}\n";
        for name in ["tb_gateway.yaml", "tb_gateway.yml", "gateway.conf"] {
            let path = dir.path().join(name);
            std::fs::write(&path, doc).unwrap();
            let mut args = vec!["resolve", path.to_str().unwrap()];
            if name.ends_with(".conf") {
                args.extend(["--format", "yaml"]);
            }
            let out = run(&args, None);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap();
            assert_eq!(
                scalars(&text),
                ["thingsboard", "security", "password", "*x: #y"],
                "{name}"
            );
        }
        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "a: [${secret:pw}\n").unwrap();
        let out = run(&["resolve", bad.to_str().unwrap()], None);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("not valid YAML"));
    }
}

#[cfg(feature = "ffi")]
#[path = "common/c_abi.rs"]
mod c_abi_decls;

#[cfg(feature = "ffi")]
mod c_abi {
    use super::c_abi_decls::*;
    use super::scalars;
    use std::ffi::CString;

    #[test]
    fn tbs_store_resolve_file_reads_yaml_by_format_and_by_extension() {
        let dir = tempfile::tempdir().unwrap();
        let path = CString::new(dir.path().join("s.db").to_str().unwrap()).unwrap();
        let key = [7u8; 32];
        let tenant = CString::new("tenant-a").unwrap();
        let name = CString::new("pw").unwrap();
        let empty = CString::new("").unwrap();
        let value = b"no: #1 'x'";
        let mut store = std::ptr::null_mut();
        // SAFETY: valid NUL-terminated strings, a 32-byte key and out-pointers for each call.
        unsafe {
            assert_eq!(
                tbs_store_open(
                    path.as_ptr(),
                    key.as_ptr(),
                    32,
                    std::ptr::null(),
                    &mut store
                ),
                tbs_status::TBS_OK
            );
            let mut version = 0u64;
            assert_eq!(
                tbs_store_create(
                    store,
                    tenant.as_ptr(),
                    name.as_ptr(),
                    TBS_TYPE_TEXT,
                    value.as_ptr(),
                    value.len(),
                    empty.as_ptr(),
                    &mut version
                ),
                tbs_status::TBS_OK
            );
            for (file, format) in [("gw.yaml", TBS_FORMAT_AUTO), ("gw.conf", TBS_FORMAT_YAML)] {
                let doc = dir.path().join(file);
                std::fs::write(&doc, "security:\n  password: ${secret:pw}\n").unwrap();
                let doc = CString::new(doc.to_str().unwrap()).unwrap();
                let mut out = tbs_buffer::empty();
                let status = tbs_store_resolve_file(
                    store,
                    tenant.as_ptr(),
                    doc.as_ptr(),
                    format,
                    0,
                    &mut out,
                );
                assert_eq!(status, tbs_status::TBS_OK, "{file}");
                let text = std::str::from_utf8(std::slice::from_raw_parts(out.data, out.len))
                    .unwrap()
                    .to_owned();
                tbs_buffer_free(&mut out);
                assert_eq!(
                    scalars(&text),
                    ["security", "password", "no: #1 'x'"],
                    "{file}"
                );
            }
            assert_eq!(tbs_store_close(store), tbs_status::TBS_OK);
        }
    }
}
