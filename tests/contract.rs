//! The cross-surface contract (`tests/contract/cases.tsv`) run against the Rust API: one fresh
//! store, every case in order. The C ABI, Java and the CLI run the same file
//! (`tests/c/test_contract.c`, `ContractTest.java`, `tests/contract_cli.rs`).

#[path = "contract/cases.rs"]
mod cases;
mod common;

use cases::{check, Case};
use std::collections::BTreeSet;
use tbsecrets::{ErrorCode, Result, SecretStorage, SecretType};

/// Runs one case; returns the outcome's code, the bytes read and the version written.
fn run(store: &SecretStorage, case: &Case) -> (ErrorCode, Option<Vec<u8>>, Option<u64>) {
    let tenant = case.tenant_str();
    let name = case.name_str();
    let text = || String::from_utf8(case.value.clone()).expect("documents are UTF-8");
    let outcome: Result<(Option<Vec<u8>>, Option<u64>)> = match case.op.as_str() {
        "create" => {
            let secret_type = match case.secret_type.as_str() {
                "TEXT" => SecretType::Text,
                _ => SecretType::TextFile,
            };
            store
                .create(&tenant, &name, secret_type, &case.value, "")
                .map(|info| (None, Some(info.version)))
        }
        "update" => store
            .update_value(&tenant, &name, &case.value, case.arg)
            .map(|info| (None, Some(info.version))),
        "rollback" => store
            .rollback(&tenant, &name, case.arg.expect("rollback needs a version"))
            .map(|info| (None, Some(info.version))),
        "get" => store
            .get(&tenant, &name)
            .map(|value| (Some(value.as_bytes().to_vec()), None)),
        "delete" => store.delete(&tenant, &name).map(|()| (None, None)),
        "undelete" => store.undelete(&tenant, &name).map(|()| (None, None)),
        "destroy" => store.destroy(&tenant, &name).map(|()| (None, None)),
        "resolve_text" => store
            .resolve_str(&tenant, &text())
            .map(|out| (Some(out.as_bytes().to_vec()), None)),
        "resolve_json" => store
            .resolve_json(&tenant, &text())
            .map(|out| (Some(out.as_bytes().to_vec()), None)),
        other => panic!("line {}: unknown op {other:?}", case.line),
    };
    match outcome {
        Ok((bytes, version)) => (ErrorCode::Ok, bytes, version),
        Err(e) => (e.code(), None, None),
    }
}

#[test]
fn the_rust_api_keeps_the_contract() {
    let fixture = common::Fixture::new();
    let cases = cases::load();
    let ran = cases::report_skips(&cases, "rust");
    for case in cases.iter().filter(|c| !c.skips("rust")) {
        let (code, bytes, version) = run(&fixture.store, case);
        check(case, code, bytes.as_deref(), version);
    }
    assert!(ran > 50, "the contract ran only {ran} cases");
}

#[test]
fn the_contract_covers_every_operation_and_the_codes_it_promises() {
    let cases = cases::load();
    let ops: BTreeSet<&str> = cases.iter().map(|c| c.op.as_str()).collect();
    for op in [
        "create",
        "update",
        "get",
        "rollback",
        "delete",
        "undelete",
        "destroy",
        "resolve_text",
        "resolve_json",
    ] {
        assert!(ops.contains(op), "no case of {op}");
    }
    assert_eq!(ops.len(), 9, "an operation no runner knows: {ops:?}");
    let codes: BTreeSet<&str> = cases.iter().map(|c| c.expect.as_str()).collect();
    for code in [
        "OK",
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "TYPE_MISMATCH",
        "CONFLICT",
        "MALFORMED_PLACEHOLDER",
        "UNRESOLVED",
    ] {
        assert!(codes.contains(code), "no case expecting {code}");
    }
    // Every surface runs nearly all of it: a skip is the exception, and explained.
    for surface in cases::SURFACES {
        let skipped: Vec<&Case> = cases.iter().filter(|c| c.skips(surface)).collect();
        assert!(skipped.len() <= 5, "{surface} skips {}", skipped.len());
        for case in skipped {
            assert!(
                !case.note.is_empty(),
                "{}: a skip needs a note",
                case.describe()
            );
        }
    }
}

#[test]
fn the_escapes_decode_as_the_file_header_says() {
    assert_eq!(cases::unescape(r"a\tb\nc\rd\\e").unwrap(), b"a\tb\nc\rd\\e");
    assert_eq!(cases::unescape(r"\x00\xffZ").unwrap(), [0, 0xff, b'Z']);
    assert_eq!(cases::unescape(r"x\{3}y").unwrap(), b"xxxy");
    assert_eq!(cases::unescape(r"\x00\{4}").unwrap(), [0; 4]);
    assert_eq!(cases::unescape(r"${secret:a}").unwrap(), b"${secret:a}");
    for bad in [
        r"\", r"\q", r"\x1", r"\xzz", r"\{3}", r"a\{0}", r"a\{x}", r"a\{3",
    ] {
        assert!(cases::unescape(bad).is_err(), "{bad:?} must be refused");
    }
}
