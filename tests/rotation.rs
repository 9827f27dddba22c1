//! Key rotation as stored: tenant rotation leaves no version under the old data key; master
//! rotation rewraps every data key and changes no value ciphertext; the CLI commands.

use std::process::Command;
use tbsecrets::{MasterKey, SecretStorage, SecretType, StorageOptions};

fn rows(path: &std::path::Path, sql: &str) -> Vec<(String, i64, Vec<u8>)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap()
}

#[test]
fn rotations_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let key = MasterKey::generate();
    let store = SecretStorage::open(&path, StorageOptions::with_master_key(key)).unwrap();
    for i in 0..3 {
        store
            .create("t", &format!("s{i}"), SecretType::Text, b"v1", "")
            .unwrap();
        store
            .update_value("t", &format!("s{i}"), b"v2", None)
            .unwrap();
    }
    store.create("u", "s", SecretType::Text, b"u", "").unwrap();
    let versions = "SELECT tenant || '/' || name || '/' || version, dek_id, value FROM tbs_secret_versions ORDER BY 1";
    let keys = "SELECT tenant, dek_id, wrapped FROM tbs_tenant_keys ORDER BY 1, 2";

    let before = rows(&path, versions);
    let report = store.rotate_tenant_key("t").unwrap();
    assert_eq!(report.versions, 6);
    let after = rows(&path, versions);
    for ((label, old_dek, old_blob), (_, new_dek, new_blob)) in before.iter().zip(&after) {
        if label.starts_with("t/") {
            assert_eq!((*old_dek, *new_dek), (1, 2), "{label}");
            assert_ne!(old_blob, new_blob, "{label} re-encrypted");
        } else {
            assert_eq!(
                (old_dek, old_blob),
                (new_dek, new_blob),
                "{label} untouched"
            );
        }
    }

    let keys_before = rows(&path, keys);
    store.rotate_master_key(&MasterKey::generate()).unwrap();
    let keys_after = rows(&path, keys);
    assert_eq!(keys_before.len(), keys_after.len());
    for (old, new) in keys_before.iter().zip(&keys_after) {
        assert_eq!((&old.0, old.1), (&new.0, new.1));
        assert_ne!(old.2, new.2, "{}/{} rewrapped", old.0, old.1);
    }
    assert_eq!(
        after,
        rows(&path, versions),
        "values are not re-encrypted by a master rotation"
    );
}

#[test]
fn cli_rotations() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.db");
    let bin = env!("CARGO_BIN_EXE_tbsecrets");
    let cli = |args: &[&str]| {
        Command::new(bin)
            .arg("--store")
            .arg(&store)
            .args(args)
            .env_remove("TBS_MASTER_KEY")
            .env_remove("TBS_MASTER_KEY_FILE")
            .output()
            .unwrap()
    };
    assert!(cli(&["init"]).status.success());
    let put = Command::new(bin)
        .arg("--store")
        .arg(&store)
        .args(["put", "pw", "--file", "/dev/null"])
        .env_remove("TBS_MASTER_KEY")
        .env_remove("TBS_MASTER_KEY_FILE")
        .output()
        .unwrap();
    assert!(put.status.success());
    let out = cli(&["rotate-tenant-key"]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "no progress bar when stderr is not a terminal"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("re-encrypted 1 versions"));

    let new_key = dir.path().join("new.key");
    tbsecrets::write_key_file(&new_key, &MasterKey::generate()).unwrap();
    // Store-wide: a tenant administrator (the default role) may not; SYS_ADMIN may.
    let denied = cli(&[
        "rotate-master-key",
        "--new-key-file",
        new_key.to_str().unwrap(),
    ]);
    assert_eq!(denied.status.code(), Some(5), "PERMISSION_DENIED");
    assert!(String::from_utf8_lossy(&denied.stderr).contains("every tenant"));
    let out = cli(&[
        "--as",
        "SYS_ADMIN",
        "rotate-master-key",
        "--new-key-file",
        new_key.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "no progress bar when stderr is not a terminal"
    );
    // The key file beside the store is the old key now: refused; the new one works.
    assert_eq!(cli(&["list"]).status.code(), Some(10));
    let out = cli(&[
        "--key-file",
        new_key.to_str().unwrap(),
        "info",
        "pw",
        "--json",
    ]);
    assert!(out.status.success());
}

#[test]
fn unused_and_stale_reports() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let store = SecretStorage::open(
        dir.path().join("u.db"),
        StorageOptions::with_master_key(MasterKey::generate()),
    )
    .unwrap();
    store
        .create("t", "used", SecretType::Text, b"v", "")
        .unwrap();
    store
        .create("t", "never", SecretType::Text, b"v", "")
        .unwrap();
    store.get("t", "used").unwrap();
    let names = |v: Vec<tbsecrets::SecretInfo>| v.into_iter().map(|i| i.name).collect::<Vec<_>>();
    let day = Duration::from_secs(86_400);
    assert_eq!(names(store.unused("t", day).unwrap()), ["never"]);
    assert_eq!(
        names(store.unused("t", Duration::ZERO).unwrap()),
        ["never", "used"]
    );
    assert!(store.stale("t", day).unwrap().is_empty());
    assert_eq!(
        names(store.stale("t", Duration::ZERO).unwrap()),
        ["never", "used"]
    );
    store.close().unwrap();

    let bin = env!("CARGO_BIN_EXE_tbsecrets");
    let key_dir = tempfile::tempdir().unwrap();
    let store_path = key_dir.path().join("c.db");
    let run = |args: &[&str]| {
        Command::new(bin)
            .arg("--store")
            .arg(&store_path)
            .args(args)
            .env_remove("TBS_MASTER_KEY")
            .env_remove("TBS_MASTER_KEY_FILE")
            .output()
            .unwrap()
    };
    assert!(run(&["init"]).status.success());
    assert!(run(&["put", "a", "--file", "/dev/null"]).status.success());
    let out = run(&["unused", "--days", "1", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["name"], "a");
    let out = run(&["stale", "--days", "1", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 0);
}
