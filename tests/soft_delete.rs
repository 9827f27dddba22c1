//! Soft delete on SQLite, where the test can read the files: `destroy` leaves neither the
//! ciphertexts nor the plaintext in the database file or its WAL; moving a row in or out of
//! the deleted state in SQL is INTEGRITY; UNDELETE and DESTROY are audited without values;
//! `migrate` carries deleted secrets. The behaviour both backends share is in
//! `tests/conformance.rs`.

mod common;

use common::{contains, expect_code, raw_connection, Fixture, TENANT};
use rusqlite::params;
use std::path::Path;
use tbsecrets::{ErrorCode, ListQuery, SecretStorage, SecretType, StorageOptions};

fn sidecar(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    p.into()
}

/// The bytes of the database file and of its WAL (empty when absent).
fn store_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    match std::fs::read(sidecar(path, "-wal")) {
        Ok(wal) => bytes.extend_from_slice(&wal),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("read the WAL: {e}"),
    }
    bytes
}

/// Every stored ciphertext of a secret, read through a connection of its own (closed again).
fn ciphertexts(path: &Path, name: &str) -> Vec<Vec<u8>> {
    let conn = raw_connection(path);
    let mut stmt = conn
        .prepare("SELECT value FROM tbs_secret_versions WHERE tenant = ?1 AND name = ?2")
        .unwrap();
    let blobs = stmt
        .query_map(params![TENANT, name], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<Vec<Vec<u8>>>>()
        .unwrap();
    blobs
}

/// A 24-byte window of a ciphertext's body (past the header shared by every blob).
fn window(blob: &[u8]) -> &[u8] {
    &blob[17..41]
}

#[test]
fn destroy_leaves_no_ciphertext_in_the_database_or_its_wal() {
    let f = Fixture::new();
    let s = &f.store;
    let canary = "DESTROY-CANARY-PLAINTEXT-3f9a1c".repeat(8);
    let big: Vec<u8> = format!("{canary}\n").repeat(2000).into_bytes(); // overflow pages
    s.create(TENANT, "db", SecretType::Text, canary.as_bytes(), "")
        .unwrap();
    s.update_value(TENANT, "db", format!("{canary}-v2").as_bytes(), None)
        .unwrap();
    s.create(TENANT, "pem", SecretType::TextFile, &big, "")
        .unwrap();
    s.create(TENANT, "other", SecretType::Text, b"stays", "")
        .unwrap();
    let mut blobs = ciphertexts(&f.path, "db");
    blobs.extend(ciphertexts(&f.path, "pem"));
    assert_eq!(blobs.len(), 3);
    s.delete(TENANT, "db").unwrap();
    s.delete(TENANT, "pem").unwrap();
    // While deleted, the ciphertexts are still there (what makes undelete possible, and
    // what shows this test can see them).
    let before = store_bytes(&f.path);
    for blob in &blobs {
        assert!(
            contains(&before, window(blob)),
            "a deleted ciphertext is kept"
        );
    }
    s.destroy(TENANT, "db").unwrap();
    s.destroy(TENANT, "pem").unwrap();
    let after = store_bytes(&f.path);
    for blob in &blobs {
        assert!(
            !contains(&after, window(blob)),
            "a destroyed ciphertext remains"
        );
    }
    assert!(!contains(&after, canary.as_bytes()));
    // After a checkpoint of another connection and a close, still nothing.
    raw_connection(&f.path)
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    s.close().unwrap();
    let closed = store_bytes(&f.path);
    for blob in &blobs {
        assert!(!contains(&closed, window(blob)));
    }
    assert!(!contains(&closed, canary.as_bytes()));
    // The other secret is intact.
    let again = f.reopen();
    assert_eq!(again.get(TENANT, "other").unwrap().as_bytes(), b"stays");
    expect_code(again.undelete(TENANT, "db"), ErrorCode::NotFound);
}

#[test]
fn a_zero_retention_delete_and_the_purge_overwrite_too() {
    let f = Fixture::with_options(|o| o.deleted_retention = std::time::Duration::ZERO);
    f.store
        .create(
            TENANT,
            "a",
            SecretType::Text,
            b"PURGE-CANARY-aaaaaaaaaaaaaaaa",
            "",
        )
        .unwrap();
    let blobs = ciphertexts(&f.path, "a");
    f.store.delete(TENANT, "a").unwrap();
    let after = store_bytes(&f.path);
    assert!(!contains(&after, window(&blobs[0])));
    expect_code(f.store.undelete(TENANT, "a"), ErrorCode::NotFound);
}

fn set_deleted_at(path: &Path, name: &str, at: Option<i64>) {
    let changed = raw_connection(path)
        .execute(
            "UPDATE tbs_secrets SET deleted_at = ?3 WHERE tenant = ?1 AND name = ?2",
            params![TENANT, name, at],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

#[test]
fn moving_a_row_in_or_out_of_deleted_in_sql_is_integrity() {
    let f = Fixture::new();
    let s = &f.store;
    s.create(TENANT, "live", SecretType::Text, b"v", "")
        .unwrap();
    s.create(TENANT, "gone", SecretType::Text, b"w", "")
        .unwrap();
    s.delete(TENANT, "gone").unwrap();
    let deleted_at = s
        .list(
            TENANT,
            &ListQuery {
                deleted: true,
                ..ListQuery::default()
            },
        )
        .unwrap()
        .items[0]
        .deleted_at
        .unwrap();

    // Out of deleted: the row reads as live, but its seal covers the deletion.
    set_deleted_at(&f.path, "gone", None);
    let reader = f.reopen();
    let err = expect_code(reader.get(TENANT, "gone"), ErrorCode::Integrity);
    assert!(err.message().contains("gone"), "{err}");
    expect_code(
        reader.update_value(TENANT, "gone", b"x", None),
        ErrorCode::Integrity,
    );
    // Back as it was: readable as deleted again, and undelete works.
    set_deleted_at(&f.path, "gone", Some(deleted_at));
    let reader = f.reopen();
    expect_code(reader.get(TENANT, "gone"), ErrorCode::NotFound);
    reader.undelete(TENANT, "gone").unwrap();
    assert_eq!(reader.get(TENANT, "gone").unwrap().as_bytes(), b"w");

    // Into deleted: a live row marked deleted in SQL fails to undelete and to read.
    set_deleted_at(&f.path, "live", Some(deleted_at));
    let reader = f.reopen();
    expect_code(reader.undelete(TENANT, "live"), ErrorCode::Integrity);
    expect_code(reader.get(TENANT, "live"), ErrorCode::Integrity);
    // Another deletion time is an edit too.
    set_deleted_at(&f.path, "gone", None);
    reader
        .delete(TENANT, "gone")
        .unwrap_or_else(|e| panic!("{e}"));
    let real = reader
        .list(
            TENANT,
            &ListQuery {
                name_contains: Some("gone".into()),
                deleted: true,
                ..ListQuery::default()
            },
        )
        .unwrap()
        .items[0]
        .deleted_at
        .unwrap();
    set_deleted_at(&f.path, "gone", Some(real - 1));
    expect_code(f.reopen().undelete(TENANT, "gone"), ErrorCode::Integrity);
}

/// A deletion set in SQL is not taken at its word: the retention purge (at open, and with
/// every delete) leaves the row, whose reads are INTEGRITY, and `destroy` still refuses a
/// secret that a tracked source uses.
#[test]
fn a_deletion_set_in_sql_neither_purges_the_secret_nor_skips_the_in_use_check() {
    let f = Fixture::new();
    f.store
        .create(TENANT, "live", SecretType::Text, b"v", "")
        .unwrap();
    f.store
        .track_references(TENANT, "rule-node:mqtt", r#"{"password":"${secret:live}"}"#)
        .unwrap();
    let rows = || -> i64 {
        raw_connection(&f.path)
            .query_row(
                "SELECT COUNT(*) FROM tbs_secrets WHERE tenant = ?1 AND name = 'live'",
                params![TENANT],
                |r| r.get(0),
            )
            .unwrap()
    };
    // Deleted in 1970, as far as SQL says: long past any retention.
    set_deleted_at(&f.path, "live", Some(1));
    let store = f.reopen();
    assert_eq!(
        rows(),
        1,
        "the purge at open erased a secret on an edited deletion time"
    );
    expect_code(store.get(TENANT, "live"), ErrorCode::Integrity);
    let err = expect_code(store.destroy(TENANT, "live"), ErrorCode::InUse);
    assert!(err.message().contains("rule-node:mqtt"), "{err}");
    store
        .create(TENANT, "other", SecretType::Text, b"w", "")
        .unwrap();
    store.delete(TENANT, "other").unwrap();
    assert_eq!(rows(), 1, "the purge of a delete erased it");
    // Once nothing uses it, destroy is how an operator removes the edited row.
    assert_eq!(store.untrack(TENANT, "rule-node:mqtt").unwrap(), 1);
    store.destroy(TENANT, "live").unwrap();
    assert_eq!(rows(), 0);
}

#[test]
fn undelete_and_destroy_are_audited_without_values() {
    let f = Fixture::new();
    let s = &f.store;
    let value = b"AUDIT-CANARY-VALUE-77e1";
    s.create(TENANT, "a", SecretType::Text, value, "").unwrap();
    s.create(TENANT, "b", SecretType::Text, value, "").unwrap();
    s.delete(TENANT, "a").unwrap();
    s.undelete(TENANT, "a").unwrap();
    s.destroy(TENANT, "a").unwrap();
    s.delete(TENANT, "b").unwrap();
    s.close().unwrap();
    // A handle without retention purges "b" on open, audited as DESTROY with a detail.
    let mut options = StorageOptions::with_master_key(f.key.clone());
    options.deleted_retention = std::time::Duration::ZERO;
    let purger = SecretStorage::open(&f.path, options).unwrap();
    let log = std::fs::read_to_string(purger.audit_log_path().unwrap()).unwrap();
    let actions: Vec<(String, Vec<String>, Option<String>)> = log
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let names = v["names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_owned())
                .collect();
            let detail = v["detail"].as_str().map(str::to_owned);
            (v["action"].as_str().unwrap().to_owned(), names, detail)
        })
        .filter(|(a, _, _)| a != "CREATE")
        .collect();
    let kinds: Vec<(&str, &str)> = actions
        .iter()
        .map(|(a, n, _)| (a.as_str(), n[0].as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("DELETE", "a"),
            ("UNDELETE", "a"),
            ("DESTROY", "a"),
            ("DELETE", "b"),
            ("DESTROY", "b")
        ]
    );
    let purge = actions[4].2.as_deref().unwrap_or_default();
    assert!(purge.contains("retention"), "{purge}");
    assert!(!log.contains("AUDIT-CANARY"));
    let report = purger.verify_audit_log(None).unwrap();
    assert!(report.is_intact(), "{report:?}");
}

#[test]
fn migrate_carries_deleted_secrets() {
    let f = Fixture::new();
    f.store
        .create(TENANT, "d", SecretType::Text, b"v1", "")
        .unwrap();
    f.store.update_value(TENANT, "d", b"v2", None).unwrap();
    f.store
        .create(TENANT, "l", SecretType::Text, b"live", "")
        .unwrap();
    f.store.delete(TENANT, "d").unwrap();
    f.store.close().unwrap();
    let target = f.dir.path().join("copy.db");
    let report = tbsecrets::migrate(
        &f.path,
        &target,
        StorageOptions::with_master_key(f.key.clone()),
    )
    .unwrap();
    assert_eq!((report.secrets, report.verified), (2, 2));
    let copy = common::open(&target, &f.key);
    expect_code(copy.get(TENANT, "d"), ErrorCode::NotFound);
    let deleted = ListQuery {
        deleted: true,
        ..ListQuery::default()
    };
    assert_eq!(copy.list(TENANT, &deleted).unwrap().items[0].name, "d");
    copy.undelete(TENANT, "d").unwrap();
    assert_eq!(copy.get(TENANT, "d").unwrap().as_bytes(), b"v2");
    assert_eq!(copy.history(TENANT, "d").unwrap().len(), 2);
}

#[test]
fn undelete_and_destroy_need_delete_like_delete() {
    use tbsecrets::{Principal, Role};
    let f = Fixture::new();
    let s = &f.store;
    s.create(TENANT, "k", SecretType::Text, b"v", "").unwrap();
    s.delete(TENANT, "k").unwrap();
    let service = s.session(Principal::new(TENANT, Role::Service));
    let customer = s.session(Principal::new(TENANT, Role::CustomerUser));
    let other_admin = s.session(Principal::new("other", Role::TenantAdmin));
    for denied in [&service, &customer, &other_admin] {
        expect_code(denied.undelete(TENANT, "k"), ErrorCode::PermissionDenied);
        expect_code(denied.destroy(TENANT, "k"), ErrorCode::PermissionDenied);
    }
    // Listing deleted secrets is a READ, like any listing.
    let deleted = ListQuery {
        deleted: true,
        ..ListQuery::default()
    };
    expect_code(customer.list(TENANT, &deleted), ErrorCode::PermissionDenied);
    assert_eq!(service.list(TENANT, &deleted).unwrap().total, 1);
    let admin = s.session(Principal::new(TENANT, Role::TenantAdmin));
    admin.undelete(TENANT, "k").unwrap();
    admin.delete(TENANT, "k").unwrap();
    admin.destroy(TENANT, "k").unwrap();
    expect_code(s.undelete(TENANT, "k"), ErrorCode::NotFound);
}
