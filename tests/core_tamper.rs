//! Tampering and corruption: moved or flipped ciphertexts, flipped wrapped keys, foreign files
//! and wrong master keys must fail with INTEGRITY / WRONG_MASTER_KEY, never yield a wrong
//! plaintext and never change the store. And no value ever reaches the disk in plaintext.

mod common;

use common::{contains, dump_store, expect_code, open, raw_connection, Fixture, TENANT};
use rusqlite::params;
use std::path::Path;
use tbsecrets::{ErrorCode, MasterKey, SecretStorage, SecretType, StorageOptions};

fn value_blob(path: &Path, tenant: &str, name: &str, version: u64) -> Vec<u8> {
    raw_connection(path)
        .query_row(
            "SELECT value FROM tbs_secret_versions WHERE tenant = ?1 AND name = ?2 AND version = ?3",
            params![tenant, name, version as i64],
            |r| r.get(0),
        )
        .expect("stored version")
}

fn set_value_blob(path: &Path, tenant: &str, name: &str, version: u64, blob: &[u8]) {
    let changed = raw_connection(path)
        .execute(
            "UPDATE tbs_secret_versions SET value = ?4 WHERE tenant = ?1 AND name = ?2 AND version = ?3",
            params![tenant, name, version as i64, blob],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

fn wrapped_key(path: &Path, tenant: &str) -> Vec<u8> {
    raw_connection(path)
        .query_row(
            "SELECT wrapped FROM tbs_tenant_keys WHERE tenant = ?1",
            params![tenant],
            |r| r.get(0),
        )
        .expect("tenant key")
}

fn set_wrapped_key(path: &Path, tenant: &str, blob: &[u8]) {
    let changed = raw_connection(path)
        .execute(
            "UPDATE tbs_tenant_keys SET wrapped = ?2 WHERE tenant = ?1",
            params![tenant, blob],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

/// Reads through a fresh handle (no cached entry, no unwrapped key) and expects INTEGRITY
/// with a message that does not contain `secret`.
#[track_caller]
fn expect_integrity(f: &Fixture, tenant: &str, name: &str, secret: &[u8]) {
    let store = f.reopen();
    match store.get(tenant, name) {
        Ok(v) => panic!(
            "tampered {tenant}/{name} opened (wrong plaintext? {})",
            v.as_bytes() != secret
        ),
        Err(e) => {
            assert_eq!(e.code(), ErrorCode::Integrity, "{e}");
            assert!(!contains(e.message().as_bytes(), secret), "{e}");
        }
    }
}

#[test]
fn ciphertexts_moved_between_rows_fail_integrity() {
    let f = Fixture::new();
    let s = &f.store;
    let (a, b) = ("tenant-a", "tenant-b");
    s.create(a, "same", SecretType::Text, b"a's value of same", "")
        .unwrap();
    s.create(b, "same", SecretType::Text, b"b's value of same", "")
        .unwrap();
    s.create(a, "other", SecretType::Text, b"a's other value", "")
        .unwrap();
    s.create(a, "cert", SecretType::TextFile, b"a's certificate", "")
        .unwrap();
    s.create(a, "versioned", SecretType::Text, b"version one", "")
        .unwrap();
    s.update_value(a, "versioned", b"version two", None)
        .unwrap();

    // (source row, target row, expected value of the target)
    type Row = (&'static str, &'static str, u64);
    let cases: [(Row, Row, &[u8]); 6] = [
        ((b, "same", 1), (a, "same", 1), b"a's value of same"), // other tenant, same name
        ((b, "same", 1), (a, "other", 1), b"a's other value"),  // other tenant and name
        ((a, "other", 1), (a, "same", 1), b"a's value of same"), // same tenant, other name
        ((a, "versioned", 1), (a, "versioned", 2), b"version two"), // other version
        ((a, "cert", 1), (a, "other", 1), b"a's other value"),  // TEXT_FILE onto TEXT
        ((a, "other", 1), (a, "cert", 1), b"a's certificate"),  // TEXT onto TEXT_FILE
    ];
    for ((st, sn, sv), (tt, tn, tv), expected) in cases {
        let original = value_blob(&f.path, tt, tn, tv);
        let moved = value_blob(&f.path, st, sn, sv);
        set_value_blob(&f.path, tt, tn, tv, &moved);
        expect_integrity(&f, tt, tn, expected);
        // Restored, it opens again: the failure came from the move alone.
        set_value_blob(&f.path, tt, tn, tv, &original);
        assert_eq!(f.reopen().get(tt, tn).unwrap().as_bytes(), expected);
    }

    // Retyping a secret's metadata row breaks the binding too.
    raw_connection(&f.path)
        .execute(
            "UPDATE tbs_secrets SET type = 'TEXT_FILE' WHERE tenant = ?1 AND name = 'other'",
            params![a],
        )
        .unwrap();
    expect_integrity(&f, a, "other", b"a's other value");

    // A moved old version fails when rolled back to, and nothing is written.
    let v2 = value_blob(&f.path, a, "versioned", 2);
    set_value_blob(&f.path, a, "versioned", 1, &v2);
    let fresh = f.reopen();
    expect_code(fresh.rollback(a, "versioned", 1), ErrorCode::Integrity);
    assert_eq!(fresh.info(a, "versioned").unwrap().version, 2);
    assert_eq!(
        fresh.get(a, "versioned").unwrap().as_bytes(),
        b"version two"
    );
}

#[test]
fn every_flipped_byte_of_a_value_is_detected() {
    let f = Fixture::new();
    let text = "flip me: ключ".as_bytes();
    let file = [0u8, 0xff, 0x10, 0x20, 0x7f, 0x80, 0x00, 0xff];
    f.store
        .create(TENANT, "text", SecretType::Text, text, "")
        .unwrap();
    f.store
        .create(TENANT, "file", SecretType::TextFile, &file, "")
        .unwrap();

    for (name, value) in [("text", text), ("file", &file[..])] {
        let original = value_blob(&f.path, TENANT, name, 1);
        // header (1 + 4 + 12) + body + tag (16)
        assert_eq!(original.len(), 17 + value.len() + 16);
        for i in 0..original.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = original.clone();
                bad[i] ^= bit;
                set_value_blob(&f.path, TENANT, name, 1, &bad);
                expect_integrity(&f, TENANT, name, value);
            }
        }
        // Truncated, extended and empty blobs.
        for bad in [
            original[..original.len() - 1].to_vec(),
            [original.as_slice(), &[0]].concat(),
            original[..17 + 16 - 1].to_vec(),
            Vec::new(),
        ] {
            set_value_blob(&f.path, TENANT, name, 1, &bad);
            expect_integrity(&f, TENANT, name, value);
        }
        set_value_blob(&f.path, TENANT, name, 1, &original);
        assert_eq!(f.reopen().get(TENANT, name).unwrap().as_bytes(), value);
    }
}

/// A handle that has the value cached notices a tampering commit from another connection.
#[test]
fn a_long_lived_handle_notices_tampering() {
    let f = Fixture::new();
    f.store
        .create(TENANT, "n", SecretType::Text, b"cached value", "")
        .unwrap();
    assert_eq!(
        f.store.get(TENANT, "n").unwrap().as_bytes(),
        b"cached value"
    );
    let mut blob = value_blob(&f.path, TENANT, "n", 1);
    let last = blob.len() - 1;
    blob[last] ^= 0x01;
    set_value_blob(&f.path, TENANT, "n", 1, &blob);
    expect_code(f.store.get(TENANT, "n"), ErrorCode::Integrity);
}

#[test]
fn every_flipped_byte_of_a_wrapped_tenant_key_is_detected() {
    let f = Fixture::new();
    f.store
        .create(TENANT, "n", SecretType::Text, b"under the dek", "")
        .unwrap();
    f.store
        .create("bystander", "n", SecretType::Text, b"other tenant", "")
        .unwrap();
    let original = wrapped_key(&f.path, TENANT);
    assert_eq!(original.len(), 17 + 32 + 16);
    for i in 0..original.len() {
        let mut bad = original.clone();
        bad[i] ^= 0x01;
        set_wrapped_key(&f.path, TENANT, &bad);
        expect_integrity(&f, TENANT, "n", b"under the dek");
    }
    // Writing in the tenant needs its key as well.
    let store = f.reopen();
    expect_code(
        store.create(TENANT, "m", SecretType::Text, b"new", ""),
        ErrorCode::Integrity,
    );
    expect_code(
        store.update_value(TENANT, "n", b"new", None),
        ErrorCode::Integrity,
    );
    // Other tenants are unaffected.
    assert_eq!(
        store.get("bystander", "n").unwrap().as_bytes(),
        b"other tenant"
    );
    drop(store);

    // A tenant's wrapped key copied onto another tenant does not open there.
    set_wrapped_key(&f.path, TENANT, &wrapped_key(&f.path, "bystander"));
    expect_integrity(&f, TENANT, "n", b"under the dek");

    set_wrapped_key(&f.path, TENANT, &original);
    assert_eq!(
        f.reopen().get(TENANT, "n").unwrap().as_bytes(),
        b"under the dek"
    );

    // A version that names a data key the tenant does not have.
    raw_connection(&f.path)
        .execute(
            "UPDATE tbs_secret_versions SET dek_id = 2 WHERE tenant = ?1",
            params![TENANT],
        )
        .unwrap();
    expect_integrity(&f, TENANT, "n", b"under the dek");
}

#[test]
fn a_file_that_is_not_a_store_fails_integrity_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let contents: [(&str, Vec<u8>); 3] = [
        ("short.txt", b"this is not a database\n".to_vec()),
        ("noise.bin", common::pseudo_random_bytes(64 * 1024, 3)),
        (
            "cert.pem",
            b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
                .repeat(100),
        ),
    ];
    for (file, bytes) in contents {
        let path = dir.path().join(file);
        std::fs::write(&path, &bytes).unwrap();
        for create_if_missing in [true, false] {
            let options = StorageOptions {
                create_if_missing,
                ..StorageOptions::with_master_key(key.clone())
            };
            let err = expect_code(SecretStorage::open(&path, options), ErrorCode::Integrity);
            assert!(!err.message().is_empty());
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{file} was modified");
    }
    // A missing store with create_if_missing = false is NOT_FOUND, and is not created.
    let missing = dir.path().join("missing.db");
    let options = StorageOptions {
        create_if_missing: false,
        ..StorageOptions::with_master_key(key)
    };
    expect_code(SecretStorage::open(&missing, options), ErrorCode::NotFound);
    assert!(!missing.exists());
}

#[test]
fn a_wrong_master_key_fails_at_open_and_changes_nothing() {
    let f = Fixture::new();
    let s = &f.store;
    s.create(TENANT, "a", SecretType::Text, b"value a", "desc")
        .unwrap();
    s.create("t2", "b", SecretType::TextFile, b"value b", "")
        .unwrap();
    s.update_value(TENANT, "a", b"value a2", None).unwrap();
    s.get(TENANT, "a").unwrap();
    s.flush_usage().unwrap();
    let mut before = dump_store(&f.path);
    assert!(
        before
            .iter()
            .any(|l| l.starts_with("tbs_secret_versions: 3 rows")),
        "{before:?}"
    );

    // With the right handle still open (data in the WAL) and after it closed.
    for round in 0..2 {
        for _ in 0..2 {
            let wrong = MasterKey::generate();
            let err = expect_code(
                SecretStorage::open(&f.path, common::options(&wrong)),
                ErrorCode::WrongMasterKey,
            );
            assert!(err.message().contains("master key"), "{err}");
            assert_eq!(
                dump_store(&f.path),
                before,
                "round {round}: the store changed"
            );
        }
        if round == 0 {
            // Closing writes (the audit outbox is pruned): compare with what it left.
            s.close().unwrap();
            before = dump_store(&f.path);
        }
    }
    let store = open(&f.path, &f.key);
    assert_eq!(store.get(TENANT, "a").unwrap().as_bytes(), b"value a2");
    assert_eq!(store.get("t2", "b").unwrap().as_bytes(), b"value b");
    assert_eq!(store.rollback(TENANT, "a", 1).unwrap().version, 3);
    assert_eq!(store.get(TENANT, "a").unwrap().as_bytes(), b"value a");
}

/// Reads a file, or nothing when it does not exist.
fn read_or_empty(path: &Path) -> Vec<u8> {
    match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("read {}: {e}", path.display()),
    }
}

fn sidecar(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    p.into()
}

#[test]
fn no_plaintext_value_reaches_the_disk() {
    let f = Fixture::new();
    let s = &f.store;
    let text_v1 = "PLAINTEXT-CANARY-text-v1-6b1f0c2e-ключ-🔑".to_owned();
    let text_v2 = "PLAINTEXT-CANARY-text-v2-91d4e7aa".to_owned();
    let pem = (0..400)
        .map(|i| format!("CANARYPEMLINE{i:04}ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop\n"))
        .collect::<String>();
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{pem}-----END PRIVATE KEY-----\n");
    let binary = common::pseudo_random_bytes(200 * 1024, 99);

    s.create(
        TENANT,
        "db-password",
        SecretType::Text,
        text_v1.as_bytes(),
        "",
    )
    .unwrap();
    s.update_value(TENANT, "db-password", text_v2.as_bytes(), None)
        .unwrap();
    s.rollback(TENANT, "db-password", 1).unwrap();
    s.create(TENANT, "tls-key", SecretType::TextFile, pem.as_bytes(), "")
        .unwrap();
    s.create("tenant-two", "blob", SecretType::TextFile, &binary, "")
        .unwrap();
    for _ in 0..3 {
        s.get(TENANT, "db-password").unwrap();
        s.get(TENANT, "tls-key").unwrap();
    }

    let values: Vec<&[u8]> = vec![
        text_v1.as_bytes(),
        text_v2.as_bytes(),
        pem.as_bytes(),
        &binary,
    ];
    let key_b64 = f.key.to_base64();
    let check = |label: &str, bytes: &[u8]| {
        for v in &values {
            assert!(!contains(bytes, v), "{label} contains a whole value");
            assert!(
                !contains(bytes, &v[..16]),
                "{label} contains a value's first 16 bytes"
            );
            assert!(
                !contains(bytes, &v[v.len() - 16..]),
                "{label} contains a value's tail"
            );
        }
        assert!(
            !contains(bytes, b"CANARYPEMLINE"),
            "{label} contains a PEM line"
        );
        assert!(
            !contains(bytes, b"PLAINTEXT-CANARY"),
            "{label} contains a text prefix"
        );
        assert!(
            !contains(bytes, key_b64.as_bytes()),
            "{label} contains the master key"
        );
    };

    // While the handle is open, before any checkpoint: the WAL holds the writes.
    let wal = read_or_empty(&sidecar(&f.path, "-wal"));
    let db = read_or_empty(&f.path);
    assert!(
        wal.len() > binary.len(),
        "the WAL should hold the writes ({} bytes)",
        wal.len()
    );
    // The scan can see plaintext: metadata (names) is stored in clear.
    assert!(contains(&wal, b"db-password") && contains(&wal, b"tls-key"));
    check("the -wal file", &wal);
    check("the database file", &db);
    check("the -shm file", &read_or_empty(&sidecar(&f.path, "-shm")));

    // After closing every handle, SQLite checkpoints the WAL into the database file.
    s.close().unwrap();
    let Fixture {
        dir, path, store, ..
    } = f;
    drop(store);
    let db = read_or_empty(&path);
    assert!(
        contains(&db, b"db-password"),
        "the checkpoint should have reached the file"
    );
    check("the checkpointed database file", &db);
    check(
        "the -wal file after close",
        &read_or_empty(&sidecar(&path, "-wal")),
    );
    drop(dir);
}

#[test]
fn malformed_metadata_is_integrity_not_storage() {
    let f = Fixture::new();
    f.store
        .create(TENANT, "typed", SecretType::Text, b"typed-value", "")
        .unwrap();
    raw_connection(&f.path)
        .execute(
            "UPDATE tbs_secrets SET type = 'BLOB' WHERE tenant = ?1 AND name = 'typed'",
            params![TENANT],
        )
        .unwrap();
    let fresh = open(&f.path, &f.key);
    expect_code(fresh.info(TENANT, "typed"), ErrorCode::Integrity);
    expect_code(fresh.get(TENANT, "typed"), ErrorCode::Integrity);
}
