//! Issue 12 regressions, as an attacker with write access to the store's files (but not the
//! master key) would try them: a current-version pointer moved in SQL, an older copy of the
//! database restored, the key check deleted, a foreign SQLite file. SQLite and PostgreSQL.

mod common;
#[path = "common/postgres.rs"]
mod test_postgres;

use common::*;
use std::path::Path;
use std::process::Command;
use tbsecrets::{ErrorCode, MasterKey, SecretStorage, SecretType, StorageOptions};

fn reopen_result(path: &Path, key: &MasterKey) -> tbsecrets::Result<SecretStorage> {
    SecretStorage::open(path, options(key))
}

/// Copies the database file aside (after the handles closed: no WAL left).
fn snapshot(path: &Path) -> Vec<u8> {
    assert!(
        !Path::new(&format!("{}-wal", path.display())).exists(),
        "close every handle before taking a copy"
    );
    std::fs::read(path).unwrap()
}

fn restore(path: &Path, bytes: &[u8]) {
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_pointer_moved_back_in_sql_is_integrity_never_the_old_value() {
    let f = Fixture::new();
    f.store
        .create(TENANT, "db-password", SecretType::Text, b"leaked-v1", "")
        .unwrap();
    f.store
        .update_value(TENANT, "db-password", b"rotated-v2", None)
        .unwrap();
    f.store.close().unwrap();
    let changed = raw_connection(&f.path)
        .execute(
            "UPDATE tbs_secrets SET version = 1 WHERE name = 'db-password'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let store = f.reopen();
    let err = expect_code(store.get(TENANT, "db-password"), ErrorCode::Integrity);
    assert!(err.message().contains("db-password"), "{err}");
    assert!(!err.message().contains("leaked"), "{err}");
    let resolved = store.resolve_str(TENANT, "pw=${secret:db-password}");
    let err = resolved.expect_err("resolving must not serve version 1");
    assert!(!err.to_string().contains("leaked"), "{err}");
    // A write through the moved pointer is refused too (it would seal the old state).
    expect_code(
        store.update_value(TENANT, "db-password", b"v3", None),
        ErrorCode::Integrity,
    );
    // `audit verify` says so too: the log is intact, the store is not.
    let report = store.verify_audit_log(None).unwrap();
    let problem = report
        .problem
        .clone()
        .expect("the moved pointer is reported");
    assert_eq!(problem.line, 0);
    assert!(problem.reason.contains("db-password"), "{}", problem.reason);
    let err = report.into_result().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Integrity);
    assert!(err.message().contains("the store is not"), "{err}");
    store.close().unwrap();
}

#[test]
fn a_seal_copied_from_another_secret_is_integrity() {
    let f = Fixture::new();
    for name in ["a", "b"] {
        f.store
            .create(TENANT, name, SecretType::Text, b"v", "")
            .unwrap();
    }
    f.store.update_value(TENANT, "b", b"w", None).unwrap();
    f.store.close().unwrap();
    raw_connection(&f.path)
        .execute_batch(
            "UPDATE tbs_secrets SET seal = (SELECT seal FROM tbs_secrets WHERE name = 'a'),
                                    seal_seq = (SELECT seal_seq FROM tbs_secrets WHERE name = 'a')
             WHERE name = 'b';",
        )
        .unwrap();
    let store = f.reopen();
    expect_code(store.get(TENANT, "b"), ErrorCode::Integrity);
    assert_eq!(store.get(TENANT, "a").unwrap().as_bytes(), b"v");
}

#[test]
fn an_older_copy_of_the_database_fails_to_open_until_the_restore_is_accepted() {
    let f = Fixture::new();
    f.store
        .create(TENANT, "api-key", SecretType::Text, b"old-leaked", "")
        .unwrap();
    let Fixture {
        dir: _dir,
        path,
        key,
        store,
    } = f;
    store.close().unwrap();
    drop(store);
    let backup = snapshot(&path);
    let store = open(&path, &key);
    store
        .update_value(TENANT, "api-key", b"new-value", None)
        .unwrap();
    store.close().unwrap();
    drop(store);

    // The whole file put back: the anchor file beside the store has seen a newer counter.
    restore(&path, &backup);
    let err = expect_code(reopen_result(&path, &key), ErrorCode::RollbackDetected);
    assert!(err.message().contains("anchor file"), "{err}");
    assert!(err.message().contains("recover --accept-restore"), "{err}");
    // Both counters are named.
    let numbers: Vec<&str> = err
        .message()
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    assert!(numbers.len() >= 2, "{err}");

    // Without the anchor file the audit log still tells.
    let anchor = format!("{}.anchor", path.display());
    let saved_anchor = std::fs::read(&anchor).unwrap();
    std::fs::remove_file(&anchor).unwrap();
    let err = expect_code(reopen_result(&path, &key), ErrorCode::RollbackDetected);
    assert!(err.message().contains("audit log"), "{err}");
    std::fs::write(&anchor, saved_anchor).unwrap();

    // Refused opens change nothing.
    assert_eq!(std::fs::read(&path).unwrap(), backup);

    // Accepted deliberately: audited, and the store is consistent again.
    let accepted = SecretStorage::open(
        &path,
        StorageOptions {
            accept_restore: true,
            ..options(&key)
        },
    )
    .unwrap();
    assert_eq!(
        accepted.get(TENANT, "api-key").unwrap().as_bytes(),
        b"old-leaked",
        "a deliberate restore serves the restored value"
    );
    let report = accepted.verify_audit_log(None).unwrap();
    assert!(report.is_intact(), "{report:?}");
    accepted.close().unwrap();
    let log = std::fs::read_to_string(tbsecrets::audit::default_log_path(&path)).unwrap();
    let accept = log
        .lines()
        .find(|l| l.contains("\"ACCEPT_RESTORE\""))
        .expect("the acceptance is audited");
    assert!(accept.contains("\"detail\""), "{accept}");
    // From now on it opens normally.
    let store = open(&path, &key);
    store
        .create(TENANT, "next", SecretType::Text, b"x", "")
        .unwrap();
    assert!(store.verify_audit_log(None).unwrap().is_intact());
}

#[test]
fn cli_recover_reports_and_accepts_a_restore() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.db");
    let bin = env!("CARGO_BIN_EXE_tbsecrets");
    let cli = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = Command::new(bin);
        cmd.arg("--store").arg(&store).args(args);
        cmd.env_remove("TBS_MASTER_KEY")
            .env_remove("TBS_MASTER_KEY_FILE")
            .env_remove("TBS_AUDIT_LOG")
            .env_remove("TBS_ANCHOR_FILE");
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                input.write_all(text.as_bytes()).unwrap();
            }
        }
        child.wait_with_output().unwrap()
    };
    assert!(cli(&["init"], None).status.success());
    assert!(cli(&["put", "pw", "--type", "text"], Some("one"))
        .status
        .success());
    let backup = snapshot(&store);
    assert!(cli(&["put", "pw"], Some("two")).status.success());
    restore(&store, &backup);
    let refused = cli(&["reveal", "pw"], None);
    assert_eq!(refused.status.code(), Some(15), "ROLLBACK_DETECTED");
    assert!(refused.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("ROLLBACK_DETECTED"), "{stderr}");
    assert_eq!(cli(&["recover"], None).status.code(), Some(15));
    let accepted = cli(&["recover", "--accept-restore"], None);
    assert!(accepted.status.success(), "{accepted:?}");
    let revealed = cli(&["reveal", "pw"], None);
    assert_eq!(revealed.stdout, b"one");
    let verified = cli(&["--as", "SYS_ADMIN", "audit", "verify"], None);
    assert!(verified.status.success(), "{verified:?}");
}

#[test]
fn a_deleted_key_check_is_integrity_and_never_rewritten() {
    let f = Fixture::new();
    f.store
        .create(TENANT, "s", SecretType::Text, b"value", "")
        .unwrap();
    f.store.close().unwrap();
    let conn = raw_connection(&f.path);
    let saved: Vec<(String, Vec<u8>)> = conn
        .prepare("SELECT key, value FROM tbs_meta WHERE key IN ('kek_id', 'key_check')")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!(saved.len(), 2);
    conn.execute(
        "DELETE FROM tbs_meta WHERE key IN ('kek_id', 'key_check')",
        [],
    )
    .unwrap();
    drop(conn);
    let before = dump_store(&f.path);
    for key in [MasterKey::generate(), f.key.clone()] {
        let err = expect_code(reopen_result(&f.path, &key), ErrorCode::Integrity);
        assert!(err.message().contains("key check"), "{err}");
    }
    assert_eq!(dump_store(&f.path), before, "no header was written");
    // Put back, the right key opens it and the wrong one still does not.
    let conn = raw_connection(&f.path);
    for (key, value) in &saved {
        conn.execute(
            "INSERT INTO tbs_meta (key, value) VALUES (?1, ?2)",
            rusqlite::params![key, value],
        )
        .unwrap();
    }
    drop(conn);
    expect_code(
        reopen_result(&f.path, &MasterKey::generate()),
        ErrorCode::WrongMasterKey,
    );
    assert_eq!(f.reopen().get(TENANT, "s").unwrap().as_bytes(), b"value");
}

#[test]
fn a_foreign_sqlite_file_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('x');")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = expect_code(
        reopen_result(&path, &MasterKey::generate()),
        ErrorCode::InvalidArgument,
    );
    assert!(err.message().contains("not a tbsecrets store"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the file is untouched"
    );
    assert!(!Path::new(&format!("{}-wal", path.display())).exists());
    // Another application's id, even with our table names, is refused as well.
    let other = dir.path().join("other.db");
    {
        let conn = rusqlite::Connection::open(&other).unwrap();
        conn.execute_batch("PRAGMA application_id = 42; CREATE TABLE tbs_meta (key TEXT);")
            .unwrap();
    }
    expect_code(
        reopen_result(&other, &MasterKey::generate()),
        ErrorCode::InvalidArgument,
    );
    // The CLI says so with exit status 1, and writes nothing to stdout.
    let out = Command::new(env!("CARGO_BIN_EXE_tbsecrets"))
        .arg("--store")
        .arg(&path)
        .args(["list"])
        .env("TBS_MASTER_KEY", MasterKey::generate().to_base64().as_str())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_deleted_state_row_is_integrity_and_a_flagged_legacy_store_is_adopted_once() {
    let f = Fixture::new();
    f.store
        .create(TENANT, "s", SecretType::Text, b"value", "")
        .unwrap();
    f.store.close().unwrap();
    raw_connection(&f.path)
        .execute("DELETE FROM tbs_meta WHERE key = 'state'", [])
        .unwrap();
    let err = expect_code(reopen_result(&f.path, &f.key), ErrorCode::Integrity);
    assert!(err.message().contains("state row"), "{err}");
    // What the schema migration leaves in a store from before sealed state: no state row, no
    // seals, the adoption flag. The next open seals it, once.
    std::fs::remove_file(format!("{}.anchor", f.path.display())).unwrap();
    std::fs::remove_file(tbsecrets::audit::default_log_path(&f.path)).unwrap();
    raw_connection(&f.path)
        .execute_batch(
            "UPDATE tbs_secrets SET seal = NULL, seal_seq = 0;
             INSERT INTO tbs_meta (key, value) VALUES ('state_adopt', x'01');",
        )
        .unwrap();
    let adopted = f.reopen();
    assert_eq!(adopted.get(TENANT, "s").unwrap().as_bytes(), b"value");
    adopted.close().unwrap();
    let flag: Vec<u8> = raw_connection(&f.path)
        .query_row(
            "SELECT value FROM tbs_meta WHERE key = 'state_adopt'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(flag, vec![0], "adopted once");
}

#[test]
fn a_store_of_the_previous_schema_is_migrated_and_adopted_with_its_log() {
    // Made by the previous release's CLI: schema 2, no application id, no seals, a log of 3
    // records (init; put api-key twice; put ca).
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy-v2");
    for file in ["store.db", "store.db.audit.jsonl", "store.db.key"] {
        std::fs::copy(fixture.join(file), dir.path().join(file)).unwrap();
    }
    let path = dir.path().join("store.db");
    let key = tbsecrets::read_key_file(&{
        let key_file = dir.path().join("store.db.key");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        key_file
    })
    .unwrap();
    let store = open(&path, &key);
    assert_eq!(
        store.get("default", "api-key").unwrap().as_bytes(),
        b"second"
    );
    assert!(store
        .get("default", "ca")
        .unwrap()
        .as_bytes()
        .starts_with(b"-----BEGIN"));
    store
        .update_value("default", "api-key", b"third", None)
        .unwrap();
    let report = store.verify_audit_log(None).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert!(report.last_seq > 3, "the old chain continues: {report:?}");
    store.close().unwrap();
    let conn = raw_connection(&path);
    let (version, id): (i64, i32) = conn
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version()),
                    (SELECT application_id FROM pragma_application_id())",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((version, id), (5, 0x7462_7331));
    let anchors: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM tbs_meta WHERE key LIKE 'audit_anchor:%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(anchors, 0, "the old anchors are gone");
    drop(conn);
    // Moving the adopted pointer back is caught like any other.
    raw_connection(&path)
        .execute(
            "UPDATE tbs_secrets SET version = 2 WHERE name = 'api-key'",
            [],
        )
        .unwrap();
    expect_code(
        open(&path, &key).get("default", "api-key"),
        ErrorCode::Integrity,
    );
}

#[test]
fn a_new_store_is_marked_as_ours() {
    let f = Fixture::new();
    let id: i32 = raw_connection(&f.path)
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    assert_eq!(id, 0x7462_7331);
}

mod postgres {
    use super::*;
    use test_postgres::postgres_url;

    fn schema_url() -> (String, String) {
        let url = postgres_url();
        let schema = format!(
            "state_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let sep = if url.contains('?') { '&' } else { '?' };
        (format!("{url}{sep}schema={schema}&pool_max=2"), schema)
    }

    fn raw(schema: &str) -> ::postgres::Client {
        let url = postgres_url();
        let mut client = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
        client
            .batch_execute(&format!("SET search_path TO {schema}"))
            .unwrap();
        client
    }

    #[test]
    fn a_pointer_moved_in_sql_and_an_older_state_are_detected() {
        let (url, schema) = schema_url();
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate();
        let opts = || StorageOptions {
            anchor_path: Some(dir.path().join("pg.anchor")),
            audit: tbsecrets::AuditOptions {
                path: Some(dir.path().join("pg.audit.jsonl")),
                ..Default::default()
            },
            ..options(&key)
        };
        let store = SecretStorage::open(&url, opts()).unwrap();
        store
            .create(TENANT, "pw", SecretType::Text, b"first", "")
            .unwrap();
        store.close().unwrap();
        drop(store);
        let mut client = raw(&schema);
        let old_state: Vec<u8> = client
            .query_one("SELECT value FROM tbs_meta WHERE key = 'state'", &[])
            .unwrap()
            .get(0);
        let store = SecretStorage::open(&url, opts()).unwrap();
        store.update_value(TENANT, "pw", b"second", None).unwrap();
        store.close().unwrap();
        drop(store);

        // The pointer moved back in SQL.
        client
            .execute("UPDATE tbs_secrets SET version = 1 WHERE name = 'pw'", &[])
            .unwrap();
        let store = SecretStorage::open(&url, opts()).unwrap();
        let err = expect_code(store.get(TENANT, "pw"), ErrorCode::Integrity);
        assert!(!err.message().contains("first"), "{err}");
        store.close().unwrap();
        drop(store);
        client
            .execute("UPDATE tbs_secrets SET version = 2 WHERE name = 'pw'", &[])
            .unwrap();

        // The state row of an older copy put back.
        client
            .execute(
                "UPDATE tbs_meta SET value = $1 WHERE key = 'state'",
                &[&old_state],
            )
            .unwrap();
        expect_code(
            SecretStorage::open(&url, opts()),
            ErrorCode::RollbackDetected,
        );
        // The key check deleted: INTEGRITY, never a new header.
        client
            .execute("DELETE FROM tbs_meta WHERE key = 'key_check'", &[])
            .unwrap();
        expect_code(
            SecretStorage::open(&url, StorageOptions { ..opts() }),
            ErrorCode::Integrity,
        );
        let headers: i64 = client
            .query_one("SELECT COUNT(*) FROM tbs_meta WHERE key = 'key_check'", &[])
            .unwrap()
            .get(0);
        assert_eq!(headers, 0);
        client
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .unwrap();
    }
}
