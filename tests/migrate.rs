//! `migrate`: SQLite → PostgreSQL → SQLite round trip, with every secret, version, tenant key,
//! usage count and reference preserved; a non-empty target and a wrong key are refused.

#[path = "common/postgres.rs"]
mod test_postgres;
use std::process::Command;
use tbsecrets::migrate;
use tbsecrets::{ErrorCode, ListQuery, MasterKey, SecretStorage, SecretType, StorageOptions};
use test_postgres::postgres_url;

fn postgres_location(tag: &str) -> String {
    let url = postgres_url();
    format!("{url}?schema=migrate_{tag}_{}", std::process::id())
}

/// Everything observable through the API about a store's tenants.
fn snapshot(store: &SecretStorage, tenants: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for tenant in tenants {
        for info in store.list(tenant, &ListQuery::default()).unwrap().items {
            let value = store.get(tenant, &info.name).unwrap();
            let history: Vec<u64> = store
                .history(tenant, &info.name)
                .unwrap()
                .iter()
                .map(|v| v.version)
                .collect();
            let used: Vec<String> = store
                .where_used(tenant, &info.name)
                .unwrap()
                .into_iter()
                .map(|r| r.source_id)
                .collect();
            out.push(format!(
                "{tenant}/{} {} v{} {:?} desc={} history={history:?} used_by={used:?} uses={}",
                info.name,
                info.secret_type,
                info.version,
                value.as_bytes(),
                info.description,
                info.use_count
            ));
        }
    }
    out
}

#[test]
fn sqlite_to_postgres_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let options = || StorageOptions::with_master_key(key.clone());
    let source = dir.path().join("source.db");
    {
        let store = SecretStorage::open(&source, options()).unwrap();
        store
            .create("t1", "api", SecretType::Text, b"v1", "partner")
            .unwrap();
        store.update_value("t1", "api", b"v2", None).unwrap();
        store
            .create("t1", "ca", SecretType::TextFile, &[0, 255, 10, 13], "")
            .unwrap();
        store
            .create("t2", "ключ", SecretType::Text, "π".as_bytes(), "")
            .unwrap();
        store
            .track_references("t1", "node-1", "${secret:api}")
            .unwrap();
        store.get("t2", "ключ").unwrap();
        store
            .create("t2", "gone", SecretType::Text, b"deleted value", "")
            .unwrap();
        store.delete("t2", "gone").unwrap();
    }
    let tenants = ["t1", "t2"];
    let before = snapshot(&SecretStorage::open(&source, options()).unwrap(), &tenants);

    let pg = postgres_location("rt");
    let report = migrate(&source, &pg, options()).unwrap();
    assert_eq!(
        (
            report.secrets,
            report.versions,
            report.tenants,
            report.references,
            report.verified
        ),
        (4, 5, 2, 1, 4)
    );
    let on_pg = snapshot(&SecretStorage::open(&pg, options()).unwrap(), &tenants);

    let back = dir.path().join("back.db");
    migrate(&pg, &back, options()).unwrap();
    let on_back = snapshot(&SecretStorage::open(&back, options()).unwrap(), &tenants);
    // Each snapshot reads every value once, so use counts grow by one per hop.
    let strip = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|l| l.split(" uses=").next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(strip(&before), strip(&on_pg));
    assert_eq!(strip(&before), strip(&on_back));
    assert!(before.iter().any(|l| l.contains("used_by=[\"node-1\"]")));
    // The deleted secret went along, still deleted and recoverable on both copies.
    let deleted = ListQuery {
        deleted: true,
        ..ListQuery::default()
    };
    for location in [pg.as_str(), back.to_str().unwrap()] {
        let copy = SecretStorage::open(location, options()).unwrap();
        assert_eq!(copy.list("t2", &deleted).unwrap().items[0].name, "gone");
        assert_eq!(
            copy.get("t2", "gone").unwrap_err().code(),
            ErrorCode::NotFound
        );
    }
    SecretStorage::open(&back, options())
        .unwrap()
        .undelete("t2", "gone")
        .unwrap();
    assert_eq!(
        SecretStorage::open(&back, options())
            .unwrap()
            .get("t2", "gone")
            .unwrap()
            .as_bytes(),
        b"deleted value"
    );
    // The copy's pointers stay sealed and its own log starts a new chain that verifies.
    {
        let copy = SecretStorage::open(&back, options()).unwrap();
        copy.update_value("t1", "api", b"v3", None).unwrap();
        assert_eq!(copy.get("t1", "api").unwrap().as_bytes(), b"v3");
        let report = copy.verify_audit_log(None).unwrap();
        assert!(report.is_intact(), "{report:?}");
    }

    // The target must be empty; the key must open the source.
    let again = migrate(&source, &pg, options()).unwrap_err();
    assert_eq!(again.code(), ErrorCode::AlreadyExists);
    let wrong = migrate(
        &source,
        dir.path().join("x.db"),
        StorageOptions::with_master_key(MasterKey::generate()),
    )
    .unwrap_err();
    assert_eq!(wrong.code(), ErrorCode::WrongMasterKey);
}

#[test]
fn cli_migrate_reports_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.db");
    let bin = env!("CARGO_BIN_EXE_tbsecrets");
    let run = |args: &[&str], stdin: Option<&[u8]>| {
        use std::io::Write;
        let mut child = Command::new(bin)
            .arg("--store")
            .arg(&store)
            .args(args)
            .env_remove("TBS_MASTER_KEY")
            .env_remove("TBS_MASTER_KEY_FILE")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            input.write_all(bytes).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    };
    assert!(run(&["init"], None).status.success());
    assert!(run(&["put", "pw"], Some(b"secret\n")).status.success());
    let pg = postgres_location("cli");
    let out = run(
        &[
            "migrate",
            "--from",
            store.to_str().unwrap(),
            "--to",
            &pg,
            "--json",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verified"], 1);
    let key_file = format!("{}.key", store.display());
    let out = Command::new(bin)
        .args(["--store", &pg, "--key-file", &key_file, "reveal", "pw"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"secret");
}
