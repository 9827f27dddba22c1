//! Resolution through the store: decrypt-once, strict errors, materialisation, usage counts,
//! the exact reference index with IN_USE / force, and the ThingsBoard fixtures end to end.

use std::borrow::Cow;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tbsecrets::{DocumentFormat, MaterializeOptions, ResolveOptions};
use tbsecrets::{ErrorCode, MasterKey, SecretStorage, SecretType, StorageOptions};

const T: &str = "tenant-a";

fn store_in(dir: &Path) -> SecretStorage {
    SecretStorage::open(
        dir.join("s.db"),
        StorageOptions::with_master_key(MasterKey::generate()),
    )
    .expect("open")
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/configs")
}

/// A store holding every secret of `secrets.json` in tenant `default`.
fn fixture_store(dir: &Path) -> (SecretStorage, Vec<(String, SecretType, String)>) {
    let store = store_in(dir);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("secrets.json")).unwrap())
            .unwrap();
    let mut secrets = Vec::new();
    for s in doc["secrets"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap().to_owned();
        let secret_type: SecretType = s["type"].as_str().unwrap().parse().unwrap();
        let value = s["value"].as_str().unwrap().to_owned();
        store
            .create("default", &name, secret_type, value.as_bytes(), "")
            .unwrap();
        secrets.push((name, secret_type, value));
    }
    (store, secrets)
}

#[test]
fn resolves_text_and_borrows_when_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    store
        .create(T, "user", SecretType::Text, b"alice", "")
        .unwrap();
    store
        .create(T, "pw", SecretType::Text, b"p\"w${secret:user}", "")
        .unwrap();
    let plain = "no placeholders, ${deviceName} stays";
    assert!(matches!(
        store.resolve_str(T, plain).unwrap(),
        Cow::Borrowed(_)
    ));
    let out = store
        .resolve_str(
            T,
            "u=${secret:user;type:TEXT} p=${secret:pw} $${secret:user}",
        )
        .unwrap();
    // The substituted value holding "${secret:user}" is not scanned again.
    assert_eq!(out, "u=alice p=p\"w${secret:user} ${secret:user}");
}

#[test]
fn strict_errors_name_every_problem_and_never_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    store
        .create(T, "ca", SecretType::TextFile, b"-----BEGIN CERT-----", "")
        .unwrap();
    store
        .create(T, "token", SecretType::Text, b"tok-value-123", "")
        .unwrap();
    let err = store
        .resolve_str(
            T,
            "${secret:token} ${secret:missing-1} ${secret:ca;type:TEXT} ${secret:missing-2;type:FILE}",
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unresolved);
    let names: Vec<&str> = err.problems().iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["missing-1", "ca", "missing-2"]);
    assert_eq!(err.problems()[1].code, ErrorCode::TypeMismatch);
    assert_eq!(err.problems()[0].offset, 16);
    let text = err.to_string();
    assert!(
        !text.contains("tok-value-123") && !text.contains("BEGIN CERT"),
        "{text}"
    );

    let err = store.resolve_str(T, "x ${secret:token").unwrap_err();
    assert_eq!(err.code(), ErrorCode::MalformedPlaceholder);
    assert_eq!(err.problems()[0].offset, 2);
}

#[test]
fn every_fixture_resolves_to_valid_json_with_exact_values() {
    let dir = tempfile::tempdir().unwrap();
    let (store, secrets) = fixture_store(dir.path());
    for doc_name in [
        "rest_api_call_node.json",
        "mqtt_node_tls.json",
        "kafka_node_sasl.json",
        "aws_sqs_node.json",
        "send_email_node.json",
        "http_integration.json",
        "rule_chain_with_secrets.json",
    ] {
        let original = std::fs::read_to_string(fixtures().join(doc_name)).unwrap();
        let resolved = store.resolve_json("default", &original).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&resolved)
            .unwrap_or_else(|e| panic!("{doc_name} resolved to invalid JSON: {e}"));
        // Expected: the original's string values with each placeholder textually replaced.
        let mut expected: serde_json::Value = serde_json::from_str(&original).unwrap();
        replace_in_strings(&mut expected, &secrets);
        assert_eq!(parsed, expected, "{doc_name}");
        assert!(!resolved.contains("${secret:"), "{doc_name}");
    }
    let root = std::fs::read_to_string(fixtures().join("root_rule_chain.json")).unwrap();
    assert!(matches!(
        store.resolve_json("default", &root).unwrap(),
        Cow::Borrowed(_)
    ));
}

fn replace_in_strings(value: &mut serde_json::Value, secrets: &[(String, SecretType, String)]) {
    match value {
        serde_json::Value::String(s) => {
            for (name, secret_type, v) in secrets {
                for form in [
                    format!("${{secret:{name}}}"),
                    format!("${{secret:{name};type:{}}}", secret_type.as_str()),
                    format!("${{secret:{name};type:FILE}}"),
                ] {
                    *s = s.replace(&form, v);
                }
            }
        }
        serde_json::Value::Array(items) => items
            .iter_mut()
            .for_each(|v| replace_in_strings(v, secrets)),
        serde_json::Value::Object(map) => map
            .values_mut()
            .for_each(|v| replace_in_strings(v, secrets)),
        _ => {}
    }
}

#[test]
fn resolution_sees_updates_at_use_time_and_counts_usage() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    store.create(T, "k", SecretType::Text, b"v1", "").unwrap();
    let config = r#"{"headers":{"Authorization":"Bearer ${secret:k;type:TEXT}"}}"#;
    assert!(store.resolve_json(T, config).unwrap().contains("Bearer v1"));
    store.update_value(T, "k", b"v2", None).unwrap();
    assert!(store.resolve_json(T, config).unwrap().contains("Bearer v2"));
    // Two placeholders of one secret in one call count as one fetch each call.
    store.resolve_str(T, "${secret:k}${secret:k}").unwrap();
    store.get(T, "k").unwrap();
    let info = store.info(T, "k").unwrap();
    assert_eq!(info.use_count, 4);
    assert!(info.last_used_at.is_some());
}

#[test]
fn usage_counts_are_flushed_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let path = dir.path().join("u.db");
    let store = SecretStorage::open(&path, StorageOptions::with_master_key(key.clone())).unwrap();
    store.create(T, "k", SecretType::Text, b"v", "").unwrap();
    for _ in 0..5 {
        store.get(T, "k").unwrap();
    }
    store.close().unwrap();
    let again = SecretStorage::open(&path, StorageOptions::with_master_key(key)).unwrap();
    assert_eq!(again.info(T, "k").unwrap().use_count, 5);
}

#[test]
fn materialised_files_are_private_and_removed_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    store
        .create(T, "ca", SecretType::TextFile, pem.as_bytes(), "")
        .unwrap();
    store
        .create(T, "pw", SecretType::Text, b"secret", "")
        .unwrap();
    let config = r#"{"caCert":"${secret:ca;type:TEXT_FILE}","password":"${secret:pw}"}"#;
    let out = store
        .resolve_json_with(
            T,
            config,
            ResolveOptions {
                materialize_files: true,
                ..ResolveOptions::default()
            },
        )
        .unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let path = PathBuf::from(parsed["caCert"].as_str().unwrap());
    assert_eq!(parsed["password"], "secret");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), pem);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let parent = path.parent().unwrap().to_path_buf();
    assert_eq!(
        std::fs::metadata(&parent).unwrap().permissions().mode() & 0o777,
        0o700
    );
    store.close().unwrap();
    assert!(!path.exists() && !parent.exists());
}

#[test]
fn explicit_clear_and_configured_dir() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("certs");
    let mut options = StorageOptions::with_master_key(MasterKey::generate());
    options.materialize = Some(MaterializeOptions {
        dir: out_dir.clone(),
        keep_on_close: false,
    });
    let store = SecretStorage::open(dir.path().join("m.db"), options).unwrap();
    store
        .create(T, "ca", SecretType::TextFile, b"PEM", "")
        .unwrap();
    let path = store
        .resolve_str_with(
            T,
            "${secret:ca}",
            ResolveOptions {
                materialize_files: true,
                ..ResolveOptions::default()
            },
        )
        .unwrap()
        .into_owned();
    assert!(Path::new(&path).starts_with(&out_dir));
    store.clear_materialized().unwrap();
    assert!(!Path::new(&path).exists());
}

#[test]
fn reference_index_is_exact_and_guards_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    store.create(T, "api", SecretType::Text, b"a", "").unwrap();
    store
        .create(T, "api-old", SecretType::Text, b"b", "")
        .unwrap();
    let node = r#"{"k":"${secret:api;type:TEXT}","${secret:ignored}":"x"}"#;
    let refs = store.track_references(T, "rule-node-1", node).unwrap();
    assert_eq!(refs.len(), 1);
    store
        .track_references(T, "integration-7", "Bearer ${secret:api}")
        .unwrap();
    let used: Vec<String> = store
        .where_used(T, "api")
        .unwrap()
        .into_iter()
        .map(|r| r.source_id)
        .collect();
    assert_eq!(used, ["integration-7", "rule-node-1"]);
    // Exact, not LIKE: "api-old" is not used by anything.
    assert!(store.where_used(T, "api-old").unwrap().is_empty());
    assert!(store.where_used("tenant-b", "api").unwrap().is_empty());

    let err = store.delete(T, "api").unwrap_err();
    assert_eq!(err.code(), ErrorCode::InUse);
    assert!(err.message().contains("rule-node-1") && err.message().contains("integration-7"));
    assert!(store.get(T, "api").is_ok(), "nothing deleted on IN_USE");

    // Replacing a source's set drops old references.
    store
        .track_references(T, "integration-7", "no secrets any more")
        .unwrap();
    assert_eq!(store.untrack(T, "rule-node-1").unwrap(), 1);
    store.delete(T, "api").unwrap();
    store.destroy(T, "api").unwrap();

    store
        .create(T, "api", SecretType::Text, b"again", "")
        .unwrap();
    store.track_references(T, "n", "${secret:api}").unwrap();
    store.delete_with(T, "api", true).unwrap();
    assert_eq!(store.get(T, "api").unwrap_err().code(), ErrorCode::NotFound);
    assert_eq!(
        store.untrack(T, "\u{1}").unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
}

#[test]
fn resolve_file_formats() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    store
        .create(T, "pw", SecretType::Text, b"q\"uote", "")
        .unwrap();
    let json = dir.path().join("c.json");
    std::fs::write(&json, r#"{"p":"${secret:pw}"}"#).unwrap();
    let text = dir.path().join("c.conf");
    std::fs::write(&text, "password=${secret:pw}\n").unwrap();
    let as_json = store
        .resolve_file(T, &json, DocumentFormat::Auto, ResolveOptions::default())
        .unwrap();
    assert_eq!(as_json, r#"{"p":"q\"uote"}"#);
    let as_text = store
        .resolve_file(T, &json, DocumentFormat::Text, ResolveOptions::default())
        .unwrap();
    assert_eq!(as_text, r#"{"p":"q"uote"}"#);
    let conf = store
        .resolve_file(T, &text, DocumentFormat::Auto, ResolveOptions::default())
        .unwrap();
    assert_eq!(conf, "password=q\"uote\n");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let err = store
        .resolve_file(T, &bad, DocumentFormat::Auto, ResolveOptions::default())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
}

#[test]
fn resolve_materialized_hands_back_its_files_for_release() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(dir.path());
    store
        .create(T, "ca", SecretType::TextFile, b"PEM", "")
        .unwrap();
    store
        .create(T, "pw", SecretType::Text, b"secret", "")
        .unwrap();
    let host = store.acting(&tbsecrets::Actor::Host);
    let doc = r#"{"a":"${secret:ca}","b":"${secret:ca}","c":"${secret:pw}"}"#;
    let (first, files) = host.resolve_materialized(T, doc, true).unwrap();
    assert_eq!(files.len(), 1, "one file per distinct TEXT_FILE secret");
    let parsed: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(parsed["a"], files[0].as_str());
    assert_eq!(parsed["c"], "secret");
    let (_, again) = host.resolve_materialized(T, "${secret:ca}", false).unwrap();
    assert_eq!(again, files, "the same version shares its file");
    store.release_materialized(&files).unwrap();
    assert!(
        Path::new(&files[0]).exists(),
        "the second result still holds it"
    );
    store.release_materialized(&again).unwrap();
    assert!(
        !Path::new(&files[0]).exists(),
        "released by its last holder"
    );

    // A failed call gives its files back itself.
    let err = host
        .resolve_materialized(T, "${secret:ca} ${secret:missing}", false)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unresolved);
    let parent = Path::new(&files[0]).parent().unwrap();
    assert_eq!(std::fs::read_dir(parent).unwrap().count(), 0);
}
