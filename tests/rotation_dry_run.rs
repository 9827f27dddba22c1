//! Rotation dry runs change nothing (the store file, its WAL, the audit log and the anchor
//! are byte for byte the same), on the Rust API and the CLI (`--dry-run`, human and
//! `--json`); and a tenant-key rotation killed (SIGKILL) between its batches leaves every
//! value readable and a second run finishes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tbsecrets::{MasterKey, Principal, Role, SecretStorage, SecretType, StorageOptions};

const BIN: &str = env!("CARGO_BIN_EXE_tbsecrets");
/// The CLI's default tenant.
const TENANT: &str = "default";

/// Every file of `dir` with its length and a hash of its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, (usize, u64)> {
    use std::hash::{Hash, Hasher};
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut hasher);
            (path, (bytes.len(), hasher.finish()))
        })
        .collect()
}

fn cli(store: &Path, key: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--store")
        .arg(store)
        .arg("--key-file")
        .arg(key)
        .args(args)
        .env_remove("TBS_MASTER_KEY")
        .env_remove("TBS_MASTER_KEY_FILE")
        .env_remove("TBS_TENANT")
        .env_remove("TBS_ROLE")
        .env_remove("TBS_AUDIT_LOG")
        .env_remove("TBS_ANCHOR_FILE")
        .output()
        .unwrap()
}

/// A store in `dir` (audit log and anchor beside it) with `n` secrets of 2 versions each in
/// the CLI's default tenant; closed. Returns the store and key file paths.
fn store_with(dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    let (path, key_path) = (dir.join("s.db"), dir.join("s.key"));
    let key = MasterKey::generate();
    tbsecrets::write_key_file(&key_path, &key).unwrap();
    let store = SecretStorage::open(&path, StorageOptions::with_master_key(key)).unwrap();
    for i in 0..n {
        let name = format!("s{i}");
        store
            .create(TENANT, &name, SecretType::Text, b"one", "")
            .unwrap();
        store
            .update_value(TENANT, &name, format!("two {i}").as_bytes(), None)
            .unwrap();
    }
    store.close().unwrap();
    (path, key_path)
}

#[test]
fn dry_runs_change_no_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (path, key_path) = store_with(dir.path(), 20);
    let key = tbsecrets::read_key_file(&key_path).unwrap();
    let store = SecretStorage::open(&path, StorageOptions::with_master_key(key)).unwrap();
    assert!(dir.path().join("s.db.audit.jsonl").exists());
    assert!(dir.path().join("s.db.anchor").exists());
    let before = files(dir.path());
    let plan = store.plan_tenant_key_rotation(TENANT).unwrap();
    assert_eq!((plan.secrets, plan.versions, plan.key_id), (20, 40, 2));
    let sys = store.session(Principal::new(TENANT, Role::SysAdmin));
    assert_eq!(sys.plan_master_key_rotation().unwrap().keys, 1);
    assert_eq!(
        before,
        files(dir.path()),
        "the API's dry runs wrote nothing"
    );
    store.close().unwrap();

    // The CLI's first open of a store the library wrote settles it (a command that reads
    // only); from then on, the dry runs must leave every byte alone.
    assert!(cli(&path, &key_path, &["list"]).status.success());
    let before = files(dir.path());
    let out = cli(&path, &key_path, &["rotate-tenant-key", "--dry-run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(
            "dry run: would give tenant 'default' data key 2 and re-encrypt 40 versions of 20 secrets; estimated "
        ),
        "{text}"
    );
    assert!(text.contains("nothing was changed"), "{text}");
    let out = cli(
        &path,
        &key_path,
        &[
            "--as",
            "SYS_ADMIN",
            "rotate-master-key",
            "--dry-run",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["action"], "planned_master_key_rotation");
    assert_eq!(json["dry_run"], true);
    assert_eq!(
        (json["keys"].as_u64(), json["tenants"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(json["key_id"], 2);
    // Sampled: the tenant key and the audit key (rewrapped too).
    assert!(json["estimated_micros"].is_u64() && json["sampled"] == 2);
    let out = cli(
        &path,
        &key_path,
        &["rotate-tenant-key", "--dry-run", "--json"],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            json["action"].as_str(),
            json["tenant"].as_str(),
            json["versions"].as_u64()
        ),
        (Some("planned_tenant_key_rotation"), Some(TENANT), Some(40))
    );
    assert_eq!(
        before,
        files(dir.path()),
        "the CLI's dry runs wrote nothing"
    );

    // Typed errors: a tenant that never stored a secret; a role without the permission.
    let out = cli(
        &path,
        &key_path,
        &["--tenant", "nobody", "rotate-tenant-key", "--dry-run"],
    );
    assert_eq!(out.status.code(), Some(2), "NOT_FOUND");
    let out = cli(&path, &key_path, &["rotate-master-key", "--dry-run"]);
    assert_eq!(out.status.code(), Some(5), "PERMISSION_DENIED");
    // Without --dry-run, rotate-master-key still needs its new key.
    let out = cli(
        &path,
        &key_path,
        &["--as", "SYS_ADMIN", "rotate-master-key"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--new-key-file"));
}

/// Rows of the store's versions under each data key id.
fn versions_by_key(path: &Path) -> BTreeMap<i64, i64> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT dek_id, COUNT(*) FROM tbs_secret_versions GROUP BY dek_id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[test]
fn a_killed_tenant_rotation_reads_and_a_rerun_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let n = 600; // 1,200 versions: five batches
    let (path, key_path) = store_with(dir.path(), n);
    let mut child = Command::new(BIN)
        .arg("--store")
        .arg(&path)
        .arg("--key-file")
        .arg(&key_path)
        .args(["rotate-tenant-key", "--json"])
        .env_remove("TBS_MASTER_KEY")
        .env_remove("TBS_MASTER_KEY_FILE")
        .env_remove("TBS_TENANT")
        .env_remove("TBS_ROLE")
        .spawn()
        .unwrap();
    // Killed as soon as a batch under the new key 2 is visible (or when it has exited).
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if versions_by_key(&path).contains_key(&2) {
            child.kill().unwrap();
            break;
        }
    }
    let status = child.wait().unwrap();
    let mixed = versions_by_key(&path);
    assert_eq!(
        mixed.values().sum::<i64>(),
        2 * n as i64,
        "no version lost: {mixed:?}"
    );
    let key = tbsecrets::read_key_file(&key_path).unwrap();
    {
        let store =
            SecretStorage::open(&path, StorageOptions::with_master_key(key.clone())).unwrap();
        for i in 0..n {
            let value = store.get(TENANT, &format!("s{i}")).unwrap();
            assert_eq!(
                value.as_bytes(),
                format!("two {i}").as_bytes(),
                "{status:?}"
            );
        }
        store.close().unwrap();
    }
    let out = cli(&path, &key_path, &["rotate-tenant-key", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["versions"], 2 * n as u64);
    let key_id = report["key_id"].as_i64().unwrap();
    assert_eq!(
        versions_by_key(&path),
        BTreeMap::from([(key_id, 2 * n as i64)]),
        "finished: every version under the newest key"
    );
    let store = SecretStorage::open(&path, StorageOptions::with_master_key(key)).unwrap();
    for i in (0..n).step_by(7) {
        let name = format!("s{i}");
        assert_eq!(
            store.get(TENANT, &name).unwrap().as_bytes(),
            format!("two {i}").as_bytes()
        );
        store.rollback(TENANT, &name, 1).unwrap();
        assert_eq!(store.get(TENANT, &name).unwrap().as_bytes(), b"one");
    }
}
