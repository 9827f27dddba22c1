//! Per-message (dynamic) names: `${secret:device-{{metadata.deviceName}}-token}` filled from
//! message variables, only in sessions restricted to an allow-list, only to names on it;
//! hostile values refused; every problem listed; text and JSON; references keep the pattern.

use tbsecrets::access::{AllowList, Principal, Role};
use tbsecrets::placeholder::{VariableSource, Variables};
use tbsecrets::service::ResolveOptions;
use tbsecrets::{ErrorCode, MasterKey, SecretStorage, SecretType, StorageOptions};

const VALUE: &str = "dyn-s3cr3t";

fn store() -> (tempfile::TempDir, SecretStorage) {
    let dir = tempfile::tempdir().unwrap();
    let options = StorageOptions::with_master_key(MasterKey::generate());
    let store = SecretStorage::open(dir.path().join("d.db"), options).unwrap();
    for name in [
        "device-sensor-1-token",
        "device-sensor 2-token",
        "db-password",
    ] {
        store
            .create(
                "t",
                name,
                SecretType::Text,
                format!("{VALUE}:{name}").as_bytes(),
                "",
            )
            .unwrap();
    }
    store
        .create("t", "device-pem-token", SecretType::TextFile, b"PEM\n", "")
        .unwrap();
    (dir, store)
}

fn node(patterns: &[&str]) -> Principal {
    Principal::new("t", Role::Service)
        .with_id("node-dyn")
        .with_allowed_names(AllowList::new(patterns).unwrap())
}

fn vars(device: &str) -> Variables {
    Variables::from_metadata([("deviceName", device)])
}

fn with(variables: &Variables) -> ResolveOptions<'_> {
    ResolveOptions {
        variables: Some(variables),
        ..ResolveOptions::default()
    }
}

const TEXT: &str = "Bearer ${secret:device-{{metadata.deviceName}}-token;type:TEXT}";

#[test]
fn fills_the_name_from_metadata_in_text_and_json() {
    let (_dir, store) = store();
    let session = store.session(node(&["device-*-token"]));
    let v = vars("sensor-1");
    assert_eq!(
        session.resolve_str("t", TEXT, with(&v)).unwrap(),
        format!("Bearer {VALUE}:device-sensor-1-token")
    );
    let json = r#"{"headers":{"Authorization":"${secret:device-{{metadata.deviceName}}-token}"},"url":"${deviceName}"}"#;
    let v2 = vars("sensor 2");
    assert_eq!(
        session.resolve_json("t", json, with(&v2)).unwrap(),
        format!(
            r#"{{"headers":{{"Authorization":"{VALUE}:device-sensor 2-token"}},"url":"${{deviceName}}"}}"#
        )
    );
    // {{data.KEY}} from the message data, next to static names and escapes.
    let mut data = Variables::new();
    data.insert(VariableSource::Data, "device", "sensor-1");
    let mixed =
        "${secret:device-{{data.device}}-token} $${secret:x} ${secret:device-sensor-1-token}";
    let out = session.resolve_str("t", mixed, with(&data)).unwrap();
    assert_eq!(
        out,
        format!("{VALUE}:device-sensor-1-token ${{secret:x}} {VALUE}:device-sensor-1-token")
    );
}

#[test]
fn needs_an_allow_list_and_the_filled_name_must_match_it() {
    let (dir, store) = store();
    let v = vars("sensor-1");
    // The host and unrestricted sessions: refused, naming the placeholder.
    for result in [
        store.resolve_str_with("t", TEXT, with(&v)),
        store
            .session(Principal::new("t", Role::Service))
            .resolve_str("t", TEXT, with(&v)),
    ] {
        let e = result.unwrap_err();
        assert_eq!(e.code(), ErrorCode::Unresolved);
        let p = &e.problems()[0];
        assert_eq!(p.name, "device-{{metadata.deviceName}}-token");
        assert_eq!(p.code, ErrorCode::PermissionDenied);
        assert!(p.reason.contains("allow-list"), "{}", p.reason);
    }
    // A list the filled name does not match.
    let narrow = store.session(node(&["device-sensor-2-*"]));
    let e = narrow.resolve_str("t", TEXT, with(&v)).unwrap_err();
    assert_eq!(e.problems()[0].code, ErrorCode::PermissionDenied);
    assert!(e.problems()[0].reason.contains("'device-sensor-1-token'"));
    // Metadata naming a secret outside the pattern cannot escape it.
    let session = store.session(node(&["device-*-token"]));
    let escape = Variables::from_metadata([("name", "db-password")]);
    let e = session
        .resolve_str("t", "${secret:{{metadata.name}}}", with(&escape))
        .unwrap_err();
    assert_eq!(e.problems()[0].code, ErrorCode::PermissionDenied);
    drop((narrow, session));
    store.close().unwrap();
    let log = std::fs::read_to_string(dir.path().join("d.db.audit.jsonl")).unwrap();
    assert!(!log.contains(VALUE));
    assert!(log.lines().any(|l| l.contains("\"RESOLVE\"")
        && l.contains("\"db-password\"")
        && l.contains("\"PERMISSION_DENIED\"")
        && l.contains("\"node-dyn\"")));
}

#[test]
fn hostile_metadata_values_are_refused() {
    let (_dir, store) = store();
    let session = store.session(node(&["*"]));
    let long = "a".repeat(300);
    for hostile in [
        "../x",
        "..",
        "*",
        "?",
        "sensor-*",
        "a;b",
        "}",
        "{",
        "{{metadata.deviceName}}",
        "a\nb",
        "a\u{0}b",
        "a/b",
        "",
        "   ",
        long.as_str(),
        "é",
    ] {
        let v = vars(hostile);
        let e = session.resolve_str("t", TEXT, with(&v)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Unresolved, "{hostile:?}");
        let p = &e.problems()[0];
        assert_eq!(
            p.name, "device-{{metadata.deviceName}}-token",
            "{hostile:?}"
        );
        assert_eq!(
            p.code,
            ErrorCode::InvalidArgument,
            "{hostile:?}: {}",
            p.reason
        );
        assert!(!e.to_string().contains(VALUE));
    }
}

#[test]
fn every_problem_is_listed_and_types_are_checked() {
    let (_dir, store) = store();
    let session = store.session(node(&["device-*"]));
    let mut v = vars("pem");
    v.insert(VariableSource::Metadata, "bad", "../etc");
    let doc = concat!(
        "${secret:device-{{metadata.deviceName}}-token;type:TEXT} ",
        "${secret:device-{{metadata.missing}}-token} ",
        "${secret:device-{{metadata.bad}}} ",
        "${secret:device-nope-{{metadata.deviceName}}}"
    );
    let e = session.resolve_str("t", doc, with(&v)).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unresolved);
    let codes: Vec<_> = e.problems().iter().map(|p| p.code).collect();
    assert_eq!(
        codes,
        [
            ErrorCode::TypeMismatch,
            ErrorCode::Unresolved,
            ErrorCode::InvalidArgument,
            ErrorCode::NotFound
        ]
    );
    assert!(e.problems()[1].reason.contains("{{metadata.missing}}"));
    assert_eq!(
        e.problems()[1].offset,
        doc.find("${secret:device-{{metadata.missing").unwrap()
    );
    // Without any variables: every per-message placeholder is a named problem.
    let e = session
        .resolve_str("t", TEXT, ResolveOptions::default())
        .unwrap_err();
    assert_eq!(e.problems()[0].code, ErrorCode::Unresolved);
}

#[test]
fn malformed_patterns_are_malformed() {
    let (_dir, store) = store();
    let session = store.session(node(&["*"]));
    let v = vars("sensor-1");
    for bad in [
        "${secret:a-{{metadata.x}",
        "${secret:a-{{meta.x}}}",
        "${secret:a-{{metadata.}}}",
        "${secret:a-{{metadata.a b}}}",
        "${secret:a-{metadata.x}}",
        "${secret:a-{{metadata.x}}{}",
        "${secret:a;type:{{metadata.x}}}",
        "${secret:{{metadata.x}}\u{1}}",
    ] {
        let e = session.resolve_str("t", bad, with(&v)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::MalformedPlaceholder, "{bad}");
    }
}

#[test]
fn references_and_where_used_keep_the_pattern() {
    let (_dir, store) = store();
    let doc =
        r#"{"h":"${secret:device-{{metadata.deviceName}}-token}","p":"${secret:db-password}"}"#;
    let refs = SecretStorage::references(doc).unwrap();
    let names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["device-{{metadata.deviceName}}-token", "db-password"]
    );
    store.track_references("t", "rule-node-1", doc).unwrap();
    store
        .track_references("t", "rule-node-2", "${secret:device-sensor-1-token}")
        .unwrap();
    let sources = |name: &str| -> Vec<String> {
        let mut s: Vec<String> = store
            .where_used("t", name)
            .unwrap()
            .into_iter()
            .map(|r| r.source_id)
            .collect();
        s.sort();
        s
    };
    assert_eq!(
        sources("device-sensor-1-token"),
        ["rule-node-1", "rule-node-2"]
    );
    assert_eq!(sources("device-sensor 2-token"), ["rule-node-1"]);
    assert_eq!(sources("db-password"), ["rule-node-1"]);
    assert!(
        sources("device-token").is_empty(),
        "a variable fills at least one character"
    );
    assert!(sources("other").is_empty());
    assert!(
        sources("device-a/b-token").is_empty(),
        "a value never holds /"
    );
}
