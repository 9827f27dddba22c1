//! Export bundles between stores: round trip across master keys, conflict policies, dry
//! runs, all-or-nothing, tampering, wrong identities, the stock `age` tool, the audit
//! records, and manifests over ThingsBoard configuration exports.

mod common;

use age::secrecy::ExposeSecret;
use common::{expect_code, Fixture};
use std::process::Command;
use tbsecrets::bundle::{
    manifest, ExportOptions, ImportAction, ImportOptions, ManifestDocument, ManifestStatus,
    OnConflict,
};
use tbsecrets::{ErrorCode, SecretStorage, SecretType};

const T: &str = "tenant-a";

struct Keys {
    identity: String,
    recipient: String,
}

fn age_keys() -> Keys {
    let identity = age::x25519::Identity::generate();
    Keys {
        recipient: identity.to_public().to_string(),
        identity: identity.to_string().expose_secret().to_owned(),
    }
}

fn seeded() -> Fixture {
    let f = Fixture::new();
    f.store
        .create(T, "db", SecretType::Text, b"db-v1", "the database")
        .unwrap();
    f.store.update_value(T, "db", b"db-v2", None).unwrap();
    f.store
        .create(T, "ca", SecretType::TextFile, b"-----BEGIN CA-----\n", "")
        .unwrap();
    f.store
        .create(T, "token", SecretType::Text, b"tok-123", "api")
        .unwrap();
    f
}

fn trusting(from: &SecretStorage) -> ImportOptions {
    ImportOptions::default()
        .trust(&from.export_key().unwrap().to_string())
        .unwrap()
}

fn value(store: &SecretStorage, name: &str) -> Vec<u8> {
    store.get(T, name).unwrap().as_bytes().to_vec()
}

#[test]
fn round_trip_between_stores_with_different_master_keys() {
    let (from, to, keys) = (seeded(), Fixture::new(), age_keys());
    assert_ne!(from.key.to_base64().as_str(), to.key.to_base64().as_str());
    let bundle = from
        .store
        .export_bundle(T, &keys.recipient, &ExportOptions::default())
        .unwrap();
    assert_eq!((bundle.secrets, bundle.versions), (3, 3));
    assert!(!common::contains(&bundle.bytes, b"db-v2"));
    let report = to
        .store
        .import_bundle(
            "tenant-b",
            &bundle.bytes,
            &keys.identity,
            &trusting(&from.store),
        )
        .unwrap();
    assert_eq!(report.count(ImportAction::Create), 3);
    assert_eq!(report.source_tenant, T);
    assert_eq!(report.signer, from.store.export_key().unwrap().to_string());
    let got = to.store.get("tenant-b", "db").unwrap();
    assert_eq!(got.as_bytes(), b"db-v2");
    let ca = to.store.info("tenant-b", "ca").unwrap();
    assert_eq!(ca.secret_type, SecretType::TextFile);
    assert_eq!(
        to.store.info("tenant-b", "db").unwrap().description,
        "the database"
    );

    // Every kept version, oldest first: the copy's history has both.
    let all = from
        .store
        .export_bundle(T, &keys.recipient, &ExportOptions { all_versions: true })
        .unwrap();
    assert_eq!((all.secrets, all.versions), (3, 4));
    let copy = Fixture::new();
    copy.store
        .import_bundle(T, &all.bytes, &keys.identity, &trusting(&from.store))
        .unwrap();
    assert_eq!(copy.store.history(T, "db").unwrap().len(), 2);
    assert_eq!(value(&copy.store, "db"), b"db-v2");
    copy.store.rollback(T, "db", 1).unwrap();
    assert_eq!(value(&copy.store, "db"), b"db-v1");
}

#[test]
fn the_export_key_survives_reopening_and_master_key_rotation() {
    let f = seeded();
    let before = f.store.export_key().unwrap();
    assert!(before.to_string().starts_with("ed25519:"));
    assert_eq!(f.reopen().export_key().unwrap(), before);
    f.store
        .rotate_master_key(&tbsecrets::MasterKey::generate())
        .unwrap();
    assert_eq!(f.store.export_key().unwrap(), before);
    assert_ne!(Fixture::new().store.export_key().unwrap(), before);
}

#[test]
fn conflict_policies_fail_skip_overwrite() {
    let (from, keys) = (seeded(), age_keys());
    let bundle = from
        .store
        .export_bundle(T, &keys.recipient, &ExportOptions::default())
        .unwrap()
        .bytes;
    let to = Fixture::new();
    to.store
        .create(T, "token", SecretType::Text, b"mine", "")
        .unwrap();
    let trust = trusting(&from.store);

    let err = expect_code(
        to.store.import_bundle(T, &bundle, &keys.identity, &trust),
        ErrorCode::AlreadyExists,
    );
    assert!(err.message().contains("token"), "{err}");
    expect_code(to.store.info(T, "db"), ErrorCode::NotFound);

    let skip = ImportOptions {
        on_conflict: OnConflict::Skip,
        ..trust.clone()
    };
    let report = to
        .store
        .import_bundle(T, &bundle, &keys.identity, &skip)
        .unwrap();
    assert_eq!(report.count(ImportAction::Skip), 1);
    assert_eq!(report.count(ImportAction::Create), 2);
    assert_eq!(value(&to.store, "token"), b"mine");

    let over = ImportOptions {
        on_conflict: OnConflict::Overwrite,
        ..trust
    };
    let report = to
        .store
        .import_bundle(T, &bundle, &keys.identity, &over)
        .unwrap();
    assert_eq!(report.count(ImportAction::Overwrite), 3);
    assert_eq!(value(&to.store, "token"), b"tok-123");
    assert_eq!(to.store.info(T, "token").unwrap().version, 2);
    assert_eq!(to.store.info(T, "token").unwrap().description, "api");
    to.store.rollback(T, "token", 1).unwrap();
    assert_eq!(value(&to.store, "token"), b"mine");
}

#[test]
fn deleted_secrets_are_not_exported_and_their_names_follow_the_conflict_policy() {
    let (from, keys) = (seeded(), age_keys());
    from.store.delete(T, "ca").unwrap();
    for all_versions in [false, true] {
        let bundle = from
            .store
            .export_bundle(T, &keys.recipient, &ExportOptions { all_versions })
            .unwrap();
        assert_eq!(bundle.secrets, 2, "the deleted 'ca' is not exported");
    }
    from.store.undelete(T, "ca").unwrap();
    let bundle = from
        .store
        .export_bundle(T, &keys.recipient, &ExportOptions::default())
        .unwrap()
        .bytes;
    let to = Fixture::new();
    to.store
        .create(T, "token", SecretType::Text, b"mine", "")
        .unwrap();
    to.store.delete(T, "token").unwrap();
    let trust = trusting(&from.store);

    // fail: a conflict, and the message says how to recover or free the name.
    let err = expect_code(
        to.store.import_bundle(T, &bundle, &keys.identity, &trust),
        ErrorCode::AlreadyExists,
    );
    assert!(
        err.message()
            .contains("token (deleted: undelete it, or destroy it"),
        "{err}"
    );
    expect_code(to.store.info(T, "db"), ErrorCode::NotFound);

    // overwrite: refused (it would resurrect the deleted versions), nothing imported; the
    // dry run says so too.
    let over = ImportOptions {
        on_conflict: OnConflict::Overwrite,
        ..trust.clone()
    };
    for dry_run in [true, false] {
        let err = expect_code(
            to.store.import_bundle(
                T,
                &bundle,
                &keys.identity,
                &ImportOptions {
                    dry_run,
                    ..over.clone()
                },
            ),
            ErrorCode::AlreadyExists,
        );
        assert!(
            err.message().contains("is deleted but still recoverable"),
            "{err}"
        );
    }
    expect_code(to.store.info(T, "db"), ErrorCode::NotFound);

    // skip: the deleted secret stays deleted and recoverable with its own value.
    let skip = ImportOptions {
        on_conflict: OnConflict::Skip,
        ..trust
    };
    let report = to
        .store
        .import_bundle(T, &bundle, &keys.identity, &skip)
        .unwrap();
    assert_eq!(
        (
            report.count(ImportAction::Skip),
            report.count(ImportAction::Create)
        ),
        (1, 2)
    );
    expect_code(to.store.get(T, "token"), ErrorCode::NotFound);
    to.store.undelete(T, "token").unwrap();
    assert_eq!(value(&to.store, "token"), b"mine");

    // A manifest counts a deleted secret as missing: documents cannot resolve it.
    to.store.delete(T, "token").unwrap();
    let doc = ManifestDocument {
        label: "rule.json",
        text: r#"{"password": "${secret:token}"}"#,
    };
    let checked = to.store.manifest(T, &[doc]).unwrap();
    let missing: Vec<&str> = checked
        .with_status(ManifestStatus::Missing)
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(missing, ["token"]);
}

#[test]
fn a_dry_run_reports_and_changes_nothing() {
    let (from, keys) = (seeded(), age_keys());
    let bundle = from
        .store
        .export_bundle(T, &keys.recipient, &ExportOptions::default())
        .unwrap()
        .bytes;
    let to = Fixture::new();
    to.store
        .create(T, "db", SecretType::Text, b"mine", "")
        .unwrap();
    let before = common::dump_store(&to.path);
    for policy in [OnConflict::Fail, OnConflict::Skip, OnConflict::Overwrite] {
        let options = ImportOptions {
            on_conflict: policy,
            dry_run: true,
            ..trusting(&from.store)
        };
        let report = to
            .store
            .import_bundle(T, &bundle, &keys.identity, &options)
            .unwrap();
        assert!(report.dry_run);
        let db = report.items.iter().find(|i| i.name == "db").unwrap();
        let expected = match policy {
            OnConflict::Fail => ImportAction::Conflict,
            OnConflict::Skip => ImportAction::Skip,
            OnConflict::Overwrite => ImportAction::Overwrite,
        };
        assert_eq!(db.action, expected);
        assert_eq!(report.count(ImportAction::Create), 2);
        assert!(report.items.iter().all(|i| i.version.is_none()));
    }
    expect_code(to.store.info(T, "token"), ErrorCode::NotFound);
    assert_eq!(value(&to.store, "db"), b"mine");
    // Secrets and versions are as they were (the state row advances with audit records).
    let rows = |dump: Vec<String>| -> Vec<String> {
        dump.into_iter()
            .filter(|l| l.starts_with("tbs_secret"))
            .collect()
    };
    let before = rows(before);
    assert!(before.iter().any(|l| l.starts_with("tbs_secrets:")));
    assert_eq!(rows(common::dump_store(&to.path)), before);
}

#[test]
fn a_failure_at_the_last_secret_imports_nothing() {
    let (from, keys) = (seeded(), age_keys());
    let bundle = from
        .store
        .export_bundle(T, &keys.recipient, &ExportOptions::default())
        .unwrap()
        .bytes;
    // "token" is last in name order; it exists here as a TEXT_FILE: overwrite must refuse.
    let to = Fixture::new();
    to.store
        .create(T, "token", SecretType::TextFile, b"file", "")
        .unwrap();
    let over = ImportOptions {
        on_conflict: OnConflict::Overwrite,
        ..trusting(&from.store)
    };
    let err = expect_code(
        to.store.import_bundle(T, &bundle, &keys.identity, &over),
        ErrorCode::TypeMismatch,
    );
    assert!(err.message().contains("token"), "{err}");
    for name in ["ca", "db"] {
        expect_code(to.store.info(T, name), ErrorCode::NotFound);
    }
    assert_eq!(to.store.list(T, &Default::default()).unwrap().total, 1);
}

#[test]
fn a_tampered_or_foreign_bundle_is_refused_before_anything_is_written() {
    let (from, keys) = (seeded(), age_keys());
    let bundle = from
        .store
        .export_bundle(T, &keys.recipient, &ExportOptions::default())
        .unwrap()
        .bytes;
    let to = Fixture::new();
    let trust = trusting(&from.store);
    let header_end = bundle.windows(4).position(|w| w == b"--- ").unwrap();
    for at in [
        header_end + 2,
        header_end + 60,
        bundle.len() / 2,
        bundle.len() - 1,
    ] {
        let mut flipped = bundle.clone();
        flipped[at] ^= 0x01;
        let err = expect_code(
            to.store.import_bundle(T, &flipped, &keys.identity, &trust),
            ErrorCode::Integrity,
        );
        assert!(!err.message().contains("tok-123"));
    }
    expect_code(
        to.store
            .import_bundle(T, &bundle[..bundle.len() - 20], &keys.identity, &trust),
        ErrorCode::Integrity,
    );

    // The same secrets, signed by another store and encrypted to the same recipient.
    let forger = seeded();
    let forged = forger
        .store
        .export_bundle(T, &keys.recipient, &ExportOptions::default())
        .unwrap()
        .bytes;
    let err = expect_code(
        to.store.import_bundle(T, &forged, &keys.identity, &trust),
        ErrorCode::Integrity,
    );
    assert!(err.message().contains("not trusted"), "{err}");
    assert_eq!(to.store.list(T, &Default::default()).unwrap().total, 0);

    // This store's own bundles need no trust option.
    let own = to
        .store
        .export_bundle(T, &keys.recipient, &ExportOptions::default())
        .unwrap();
    assert_eq!(own.secrets, 0);
    let report = to
        .store
        .import_bundle(T, &own.bytes, &keys.identity, &ImportOptions::default())
        .unwrap();
    assert!(report.items.is_empty());
}

#[test]
fn a_wrong_identity_or_bad_keys_are_typed_errors() {
    let (from, keys) = (seeded(), age_keys());
    let bundle = from
        .store
        .export_bundle(T, &keys.recipient, &ExportOptions::default())
        .unwrap()
        .bytes;
    let err = expect_code(
        from.store
            .import_bundle(T, &bundle, &age_keys().identity, &ImportOptions::default()),
        ErrorCode::InvalidArgument,
    );
    assert!(err.message().contains("other recipients"), "{err}");
    expect_code(
        from.store
            .import_bundle(T, &bundle, "not a key", &ImportOptions::default()),
        ErrorCode::InvalidArgument,
    );
    expect_code(
        from.store
            .export_bundle(T, "age1garbage", &ExportOptions::default()),
        ErrorCode::InvalidArgument,
    );
    expect_code(
        ImportOptions::default().trust("ed25519:xyz"),
        ErrorCode::InvalidArgument,
    );
}

#[test]
fn export_and_import_are_audited_without_values() {
    let (from, keys) = (seeded(), age_keys());
    let bundle = from
        .store
        .export_bundle(T, &keys.recipient, &ExportOptions::default())
        .unwrap()
        .bytes;
    let to = Fixture::new();
    to.store
        .import_bundle(T, &bundle, &keys.identity, &trusting(&from.store))
        .unwrap();
    from.store.close().unwrap();
    to.store.close().unwrap();
    let log =
        |f: &Fixture| std::fs::read_to_string(f.dir.path().join("secrets.db.audit.jsonl")).unwrap();
    let (exported, imported) = (log(&from), log(&to));
    let count = |log: &str, action: &str| {
        log.lines()
            .filter(|l| l.contains(&format!("\"action\":\"{action}\"")))
            .count()
    };
    assert_eq!(count(&exported, "EXPORT"), 3);
    assert_eq!(count(&imported, "IMPORT"), 3);
    for text in [&exported, &imported] {
        assert!(!text.contains("tok-123") && !text.contains("db-v2"));
    }
    assert!(to.reopen().verify_audit_log(None).unwrap().is_intact());
}

#[test]
fn the_stock_age_tool_opens_a_bundle() {
    if Command::new("age").arg("--version").output().is_err() {
        // .ci/run installs Debian's `age`; a machine without it cannot run this check.
        eprintln!("note: the `age` tool is not installed; skipping the stock-tool check");
        return;
    }
    let (from, keys) = (seeded(), age_keys());
    let bundle = from
        .store
        .export_bundle(T, &keys.recipient, &ExportOptions::default())
        .unwrap()
        .bytes;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key.txt"), format!("{}\n", keys.identity)).unwrap();
    std::fs::write(dir.path().join("bundle"), &bundle).unwrap();
    let out = Command::new("age")
        .args(["-d", "-i"])
        .arg(dir.path().join("key.txt"))
        .arg(dir.path().join("bundle"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["format"], "tbsecrets-bundle");
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["signer"], from.store.export_key().unwrap().to_string());
    let secrets = doc["payload"]["secrets"].as_array().unwrap();
    let names: Vec<_> = secrets
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ca", "db", "token"]);
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD
        .decode(secrets[2]["versions"][0]["value"].as_str().unwrap())
        .unwrap();
    assert_eq!(token, b"tok-123");

    // And the tool's own encryption of that document imports (signature intact).
    std::fs::write(dir.path().join("plain.json"), &out.stdout).unwrap();
    let again = Command::new("age")
        .args(["-r", &keys.recipient, "-o"])
        .arg(dir.path().join("again"))
        .arg(dir.path().join("plain.json"))
        .output()
        .unwrap();
    assert!(again.status.success());
    let to = Fixture::new();
    let report = to
        .store
        .import_bundle(
            T,
            &std::fs::read(dir.path().join("again")).unwrap(),
            &keys.identity,
            &trusting(&from.store),
        )
        .unwrap();
    assert_eq!(report.count(ImportAction::Create), 3);
}

fn fixture_documents() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/thingsboard");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap() != "secrets.json")
        .map(|p| {
            let label = p.file_name().unwrap().to_string_lossy().into_owned();
            (label, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn manifest_over_the_thingsboard_fixtures() {
    let docs = fixture_documents();
    let documents: Vec<ManifestDocument<'_>> = docs
        .iter()
        .map(|(label, text)| ManifestDocument { label, text })
        .collect();
    let offline = manifest(&documents).unwrap();
    let names: Vec<&str> = offline.secrets.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "aws-access-key-id",
            "aws-secret-access-key",
            "gateway-downlink-password",
            "gateway-uplink-token",
            "kafka-ca",
            "kafka-producer-password",
            "partner-api-token",
            "partner-basic-password",
            "plant-broker-ca",
            "plant-client-cert",
            "plant-client-key",
            "plant-client-key-password",
            "smtp-password",
        ]
    );
    let smtp = offline
        .secrets
        .iter()
        .find(|e| e.name == "smtp-password")
        .unwrap();
    assert_eq!(
        smtp.files,
        ["rule_chain_with_secrets.json", "send_email_node.json"]
    );
    assert_eq!(smtp.secret_type, Some(SecretType::Text));
    assert!(offline.secrets.iter().all(|e| e.status.is_none()));

    // Against a store holding some of them, one with the wrong type: all reported at once.
    let f = Fixture::new();
    f.store
        .create(T, "smtp-password", SecretType::Text, b"x", "")
        .unwrap();
    f.store
        .create(T, "kafka-ca", SecretType::Text, b"x", "")
        .unwrap();
    let checked = f.store.manifest(T, &documents).unwrap();
    assert!(checked.incomplete());
    let missing: Vec<&str> = checked
        .with_status(ManifestStatus::Missing)
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(missing.len(), 11);
    assert!(!missing.contains(&"smtp-password"));
    let mistyped: Vec<&str> = checked
        .with_status(ManifestStatus::TypeMismatch)
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(mistyped, ["kafka-ca"]);
}

#[cfg(feature = "postgres")]
#[path = "common/postgres.rs"]
mod test_postgres;

/// The same import, all or nothing, into a PostgreSQL store (one transaction there too).
#[cfg(feature = "postgres")]
#[test]
fn import_into_postgres_is_all_or_nothing() {
    let (from, keys) = (seeded(), age_keys());
    let bundle = from
        .store
        .export_bundle(T, &keys.recipient, &ExportOptions { all_versions: true })
        .unwrap()
        .bytes;
    let url = test_postgres::postgres_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    let location = format!("{url}{sep}schema=bundle_{}", std::process::id());
    let mut options = common::options(&tbsecrets::MasterKey::generate());
    options.audit.enabled = false;
    let to = SecretStorage::open(&location, options).unwrap();
    to.create(T, "token", SecretType::TextFile, b"file", "")
        .unwrap();
    let over = ImportOptions {
        on_conflict: OnConflict::Overwrite,
        ..trusting(&from.store)
    };
    expect_code(
        to.import_bundle(T, &bundle, &keys.identity, &over),
        ErrorCode::TypeMismatch,
    );
    expect_code(to.info(T, "db"), ErrorCode::NotFound);
    // A deleted name is reserved: overwrite refuses it (nothing imported), destroy frees it.
    to.delete(T, "token").unwrap();
    let err = expect_code(
        to.import_bundle(T, &bundle, &keys.identity, &over),
        ErrorCode::AlreadyExists,
    );
    assert!(err.message().contains("undelete"), "{err}");
    expect_code(to.info(T, "db"), ErrorCode::NotFound);
    to.destroy(T, "token").unwrap();
    let report = to.import_bundle(T, &bundle, &keys.identity, &over).unwrap();
    assert_eq!(report.count(ImportAction::Create), 3);
    assert_eq!(to.get(T, "db").unwrap().as_bytes(), b"db-v2");
    assert_eq!(to.history(T, "db").unwrap().len(), 2);
    to.close().unwrap();
}

#[test]
fn export_needs_resolve_and_import_write_and_restricted_sessions_do_neither() {
    use tbsecrets::{AllowList, Principal, Role};
    let (f, keys) = (seeded(), age_keys());
    let none = ExportOptions::default();
    let admin = f.store.session(Principal::new(T, Role::TenantAdmin));
    expect_code(
        admin.export_bundle(T, &keys.recipient, &none),
        ErrorCode::PermissionDenied,
    );
    let service = f.store.session(Principal::new(T, Role::Service));
    let bundle = service
        .export_bundle(T, &keys.recipient, &none)
        .unwrap()
        .bytes;
    let other = f.store.session(Principal::new("tenant-b", Role::Service));
    expect_code(
        other.export_bundle(T, &keys.recipient, &none),
        ErrorCode::PermissionDenied,
    );
    let skip = ImportOptions {
        on_conflict: OnConflict::Skip,
        ..ImportOptions::default()
    };
    expect_code(
        service.import_bundle(T, &bundle, &keys.identity, &skip),
        ErrorCode::PermissionDenied,
    );
    assert_eq!(
        admin
            .import_bundle(T, &bundle, &keys.identity, &skip)
            .unwrap()
            .count(ImportAction::Skip),
        3
    );
    let narrow = f.store.session(
        Principal::new(T, Role::Service).with_allowed_names(AllowList::new(["db"]).unwrap()),
    );
    expect_code(
        narrow.export_bundle(T, &keys.recipient, &none),
        ErrorCode::PermissionDenied,
    );
}
