//! The audit log: a record for every action (and denied attempt), never a value; the chain
//! catches deleted, swapped and edited lines; sinks; several writers on one file; the CLI.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use tbsecrets::audit::AuditOptions;
use tbsecrets::ResolveOptions;
use tbsecrets::{ErrorCode, MasterKey, Principal, Role, SecretStorage, SecretType};

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn log_of(f: &Fixture) -> std::path::PathBuf {
    f.store.audit_log_path().expect("a SQLite store has a log")
}

/// Records whose action is `action`.
fn with_action<'a>(all: &'a [Value], action: &str) -> Vec<&'a Value> {
    all.iter().filter(|r| r["action"] == action).collect()
}

const VALUES: [&str; 4] = [
    "pa55-W0rd-first",
    "pa55-W0rd-second",
    "-----BEGIN CERTIFICATE-----MIIBfake",
    "api-token-3f9a",
];

#[test]
fn every_action_is_recorded_and_no_value_is_written() {
    let f = Fixture::new();
    let t = TENANT;
    let admin = f
        .store
        .session(Principal::new(t, Role::TenantAdmin).with_id("alice"));
    let service = f
        .store
        .session(Principal::new(t, Role::Service).with_id("rule-engine"));
    let sys = f.store.session(Principal::new("root", Role::SysAdmin));

    admin
        .create(t, "db", SecretType::Text, VALUES[0].as_bytes(), "database")
        .unwrap();
    admin
        .update_value(t, "db", VALUES[1].as_bytes(), Some(1))
        .unwrap();
    admin.update_description(t, "db", "primary db").unwrap();
    admin.rollback(t, "db", 1).unwrap();
    sys.create(t, "ca", SecretType::TextFile, VALUES[2].as_bytes(), "")
        .unwrap();
    admin
        .create(t, "token", SecretType::Text, VALUES[3].as_bytes(), "")
        .unwrap();
    admin
        .track_references(t, "node-1", r#"{"p":"${secret:db}","q":"${secret:token}"}"#)
        .unwrap();
    service.get(t, "db").unwrap();
    service.get(t, "db").unwrap();
    // One resolve call naming `db` three times: one use of db, one of token.
    service
        .resolve_str(
            t,
            "${secret:db} ${secret:db;type:TEXT} ${secret:db} ${secret:token}",
            ResolveOptions::default(),
        )
        .unwrap();
    let failed = service
        .resolve_str(
            t,
            "${secret:missing} ${secret:db}",
            ResolveOptions::default(),
        )
        .unwrap_err();
    assert_eq!(failed.code(), ErrorCode::Unresolved);
    // A refused argument is a failed call too.
    let bad_tenant = f
        .store
        .resolve_str("bad\ttenant", "${secret:db}")
        .unwrap_err();
    assert_eq!(bad_tenant.code(), ErrorCode::InvalidArgument);
    // Denied attempts: a tenant admin reading a value, a service writing, another tenant.
    expect_code(admin.get(t, "db"), ErrorCode::PermissionDenied);
    expect_code(
        service.create(t, "x", SecretType::Text, b"x", ""),
        ErrorCode::PermissionDenied,
    );
    let intruder = f.store.session(Principal::new("other", Role::TenantAdmin));
    expect_code(intruder.delete(t, "db"), ErrorCode::PermissionDenied);
    expect_code(intruder.info(t, "db"), ErrorCode::PermissionDenied);
    expect_code(
        admin.rotate_master_key(&MasterKey::generate()),
        ErrorCode::PermissionDenied,
    );
    admin.rotate_tenant_key(t).unwrap();
    admin.untrack(t, "node-1").unwrap();
    admin.delete(t, "token").unwrap();
    let new_key = MasterKey::generate();
    sys.rotate_master_key(&new_key).unwrap();
    f.store.get(t, "db").unwrap(); // the host, unchecked but audited
    f.store.close().unwrap();

    let log = log_of(&f);
    let all = records(&log);
    let one = |action: &str| {
        let found = with_action(&all, action);
        assert_eq!(found.len(), 1, "{action}: {found:?}");
        found[0].clone()
    };
    let create = with_action(&all, "CREATE");
    assert_eq!(create.len(), 4, "3 creates and 1 denied: {create:?}");
    assert_eq!(create[0]["role"], "TENANT_ADMIN");
    assert_eq!(create[0]["principal"], "alice");
    assert_eq!(create[0]["names"][0], "db");
    assert_eq!(create[0]["version"], 1);
    assert_eq!(create[0]["outcome"], "OK");
    assert_eq!(create[1]["role"], "SYS_ADMIN");
    assert_eq!(create[1]["principal_tenant"], "root");
    let denied_create = create.iter().find(|r| r["role"] == "SERVICE").unwrap();
    assert_eq!(denied_create["outcome"], "PERMISSION_DENIED");
    assert_eq!(one("UPDATE")["version"], 2);
    assert_eq!(one("DESCRIBE")["outcome"], "OK");
    assert_eq!(one("ROLLBACK")["version"], 3);
    let track = one("TRACK_REFERENCES");
    assert_eq!(track["source"], "node-1");
    assert_eq!(track["names"], serde_json::json!(["db", "token"]));
    assert_eq!(one("UNTRACK_REFERENCES")["source"], "node-1");
    let deletes = with_action(&all, "DELETE");
    assert_eq!(deletes.len(), 2);
    assert_eq!(deletes[0]["outcome"], "PERMISSION_DENIED");
    assert_eq!(deletes[0]["principal_tenant"], "other");
    assert_eq!(deletes[1]["names"][0], "token");
    assert_eq!(one("READ")["outcome"], "PERMISSION_DENIED");
    assert_eq!(one("ROTATE_TENANT_KEY")["version"], 2);
    let master = with_action(&all, "ROTATE_MASTER_KEY");
    assert_eq!(
        master
            .iter()
            .map(|r| r["outcome"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["PERMISSION_DENIED", "OK"]
    );
    assert_eq!(master[1]["tenant"], "*");

    // Uses: the service's two gets are one batched record, the tenant admin's denied get
    // another, the host's get a third.
    let gets = with_action(&all, "GET");
    let service_gets: Vec<_> = gets.iter().filter(|r| r["role"] == "SERVICE").collect();
    assert_eq!(service_gets.len(), 1, "{gets:?}");
    assert_eq!(service_gets[0]["count"], 2);
    assert!(service_gets[0]["since"].is_string());
    assert!(gets
        .iter()
        .any(|r| r["role"] == "TENANT_ADMIN" && r["outcome"] == "PERMISSION_DENIED"));
    assert!(gets
        .iter()
        .any(|r| r["role"] == "HOST" && r["outcome"] == "OK"));
    // Resolve: one record per secret for the successful call, one for the failed call.
    let resolves = with_action(&all, "RESOLVE");
    let ok: Vec<_> = resolves.iter().filter(|r| r["outcome"] == "OK").collect();
    assert_eq!(ok.len(), 2, "{resolves:?}");
    for r in &ok {
        assert_eq!(r["count"], 1, "one call, however many placeholders: {r}");
    }
    let failed: Vec<_> = resolves.iter().filter(|r| r["outcome"] != "OK").collect();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0]["outcome"], "UNRESOLVED");
    assert_eq!(failed[0]["names"], serde_json::json!(["missing"]));
    assert_eq!(failed[1]["outcome"], "INVALID_ARGUMENT");
    assert_eq!(failed[1]["role"], "HOST");

    // Sequence numbers run 1..n; no value appears anywhere in the file.
    for (i, record) in all.iter().enumerate() {
        assert_eq!(record["seq"], i as u64 + 1);
    }
    let bytes = std::fs::read(&log).unwrap();
    for value in VALUES {
        assert!(
            !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
            "a value leaked into the audit log"
        );
    }
    // The log still verifies with the rotated key (the audit key was rewrapped).
    let reopened = open(&f.path, &new_key);
    let report = reopened.verify_audit_log(None).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records as usize, all.len());
}

/// A store with a few records in its log; returns the fixture and the log's lines.
fn logged_store() -> (Fixture, Vec<String>) {
    let f = Fixture::new();
    for i in 0..5 {
        f.store
            .create(TENANT, &format!("s{i}"), SecretType::Text, b"v", "")
            .unwrap();
    }
    f.store.flush_usage().unwrap();
    let lines = std::fs::read_to_string(log_of(&f))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    (f, lines)
}

fn rewrite(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

fn first_bad_line(f: &Fixture) -> (u64, String) {
    let report = f.store.verify_audit_log(None).unwrap();
    let problem = report.clone().problem.expect("tampering detected");
    let err = report.into_result().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Integrity);
    assert!(err.message().contains(&format!("line {}", problem.line)));
    (problem.line, problem.reason)
}

#[test]
fn verify_accepts_an_intact_log() {
    let (f, lines) = logged_store();
    let report = f.store.verify_audit_log(None).unwrap();
    assert!(report.is_intact());
    assert_eq!(report.records as usize, lines.len());
    assert_eq!(report.last_seq as usize, lines.len());
}

#[test]
fn verify_catches_a_deleted_line() {
    let (f, mut lines) = logged_store();
    lines.remove(2);
    rewrite(&log_of(&f), &lines);
    let (line, reason) = first_bad_line(&f);
    assert_eq!(line, 3);
    assert!(reason.contains("chain"), "{reason}");
    // Deleting the first line is caught too.
    let (f, mut lines) = logged_store();
    lines.remove(0);
    rewrite(&log_of(&f), &lines);
    assert_eq!(first_bad_line(&f).0, 1);
}

#[test]
fn verify_catches_a_swapped_pair() {
    let (f, mut lines) = logged_store();
    lines.swap(1, 2);
    rewrite(&log_of(&f), &lines);
    assert_eq!(first_bad_line(&f).0, 2);
}

#[test]
fn verify_catches_an_edited_field() {
    let (f, mut lines) = logged_store();
    lines[3] = lines[3].replace("\"s3\"", "\"s9\"");
    rewrite(&log_of(&f), &lines);
    let (line, reason) = first_bad_line(&f);
    assert_eq!(line, 4);
    assert!(reason.contains("MAC"), "{reason}");
    // A line re-sealed with another store's key does not pass either.
    let (f, lines) = logged_store();
    let (other, _) = logged_store();
    let mut mixed = lines.clone();
    mixed[1] = std::fs::read_to_string(log_of(&other))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    rewrite(&log_of(&f), &mixed);
    assert_eq!(first_bad_line(&f).0, 2);
}

#[test]
fn writers_in_turn_keep_one_chain_and_a_torn_line_is_cut() {
    let f = Fixture::new();
    let second = f.reopen();
    for i in 0..10 {
        let store = if i % 2 == 0 { &f.store } else { &second };
        store
            .create(TENANT, &format!("k{i}"), SecretType::Text, b"v", "")
            .unwrap();
    }
    // A crash mid-append leaves an unterminated line: the next writer cuts it off.
    let log = log_of(&f);
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut file, b"{\"seq\":11,\"ti").unwrap();
    second.delete(TENANT, "k0").unwrap();
    second.close().unwrap();
    let report = f.store.verify_audit_log(None).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.records, 11);
}

#[test]
fn sinks_get_every_line_and_files_can_be_turned_off() {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink_seen = seen.clone();
    let f = Fixture::with_options(|o| {
        o.audit.sink = Some(Arc::new(move |line: &str| {
            sink_seen.lock().unwrap().push(line.to_owned())
        }));
        o.audit.batch_uses = false;
    });
    f.store
        .create(TENANT, "a", SecretType::Text, b"secret-a", "")
        .unwrap();
    f.store.get(TENANT, "a").unwrap();
    // Unbatched: the use is in the file before the call returns.
    let file_lines: Vec<String> = std::fs::read_to_string(log_of(&f))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(file_lines.len(), 2);
    assert_eq!(*seen.lock().unwrap(), file_lines);

    // A log elsewhere than beside the store, plus a sink.
    let (_dir, path) = temp_store();
    let other_sink = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = other_sink.clone();
    let store = SecretStorage::open(
        &path,
        tbsecrets::StorageOptions {
            audit: AuditOptions {
                enabled: true,
                path: Some(path.with_extension("other.jsonl")),
                sink: Some(Arc::new(move |line: &str| {
                    sink.lock().unwrap().push(line.to_owned())
                })),
                batch_uses: true,
            },
            ..options(&MasterKey::generate())
        },
    )
    .unwrap();
    store.create("t", "a", SecretType::Text, b"v", "").unwrap();
    assert_eq!(
        store.audit_log_path().unwrap(),
        path.with_extension("other.jsonl")
    );
    assert_eq!(other_sink.lock().unwrap().len(), 1);
    store.close().unwrap();

    let off = Fixture::with_options(|o| o.audit = AuditOptions::disabled());
    off.store
        .create("t", "a", SecretType::Text, b"v", "")
        .unwrap();
    off.store.close().unwrap();
    assert!(off.store.audit_log_path().is_none());
    assert!(!tbsecrets::audit::default_log_path(&off.path).exists());
}

#[test]
fn cli_acts_as_roles_and_verifies_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.db");
    let bin = env!("CARGO_BIN_EXE_tbsecrets");
    let cli = |args: &[&str], stdin: Option<&[u8]>| {
        let mut cmd = Command::new(bin);
        cmd.arg("--store")
            .arg(&store)
            .args(["--tenant", "t1"])
            .args(args)
            .env_remove("TBS_MASTER_KEY")
            .env_remove("TBS_MASTER_KEY_FILE")
            .env_remove("TBS_ROLE")
            .env("TBS_PRINCIPAL", "ops-bot")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(bytes) = stdin {
            std::io::Write::write_all(&mut child.stdin.take().unwrap(), bytes).unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    };
    assert!(cli(&["init"], None).status.success());
    // put: TENANT_ADMIN by default; a SERVICE may not write.
    assert!(cli(&["put", "pw", "--type", "text"], Some(b"cli-secret-1"))
        .status
        .success());
    let denied = cli(&["--as", "service", "put", "pw2"], Some(b"x"));
    assert_eq!(denied.status.code(), Some(5));
    // reveal: SERVICE by default; a tenant admin never sees values.
    let shown = cli(&["reveal", "pw"], None);
    assert_eq!(shown.stdout, b"cli-secret-1");
    let denied = cli(&["--as", "TENANT_ADMIN", "reveal", "pw"], None);
    assert_eq!(denied.status.code(), Some(5));
    assert!(denied.stdout.is_empty());
    // Another tenant's administrator cannot read metadata of t1... (it acts in its own
    // tenant, where `pw` does not exist) and a customer user cannot even list.
    assert_eq!(
        cli(&["--as", "customer-user", "list"], None).status.code(),
        Some(5)
    );
    // A custom policy lets customer users read metadata.
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"rules":[{"role":"CUSTOMER_USER","operations":["READ"],"tenants":"own"}]}"#,
    )
    .unwrap();
    let listed = cli(
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--as",
            "customer-user",
            "list",
        ],
        None,
    );
    assert!(listed.status.success());
    assert!(String::from_utf8_lossy(&listed.stdout).contains("pw"));

    // Verify is store-wide: refused to a tenant administrator (the default role).
    assert_eq!(cli(&["audit", "verify"], None).status.code(), Some(5));
    // Intact, quiet on stderr when piped (no progress bar).
    let ok = cli(&["--as", "sys-admin", "audit", "verify", "--json"], None);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(ok.stderr.is_empty(), "no progress bar when piped");
    let report: Value = serde_json::from_slice(&ok.stdout).unwrap();
    let log = tbsecrets::audit::default_log_path(&store);
    let all = records(&log);
    // The verification itself is the last record (written after it ran).
    assert_eq!(report["records"], all.len() - 1);
    let last = all.last().unwrap();
    assert_eq!(last["action"], "VERIFY_AUDIT_LOG");
    assert_eq!(last["outcome"], "OK");
    assert!(all
        .iter()
        .any(|r| r["action"] == "VERIFY_AUDIT_LOG" && r["outcome"] == "PERMISSION_DENIED"));
    assert!(all
        .iter()
        .any(|r| r["role"] == "SERVICE" && r["action"] == "GET" && r["principal"] == "ops-bot"));
    assert!(all
        .iter()
        .any(|r| r["role"] == "TENANT_ADMIN" && r["outcome"] == "PERMISSION_DENIED"));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("cli-secret-1"));
    // Tampered: exit status INTEGRITY, the message names the line.
    let edited = text.replacen("\"pw\"", "\"pX\"", 1);
    std::fs::write(&log, edited).unwrap();
    let bad = cli(&["--as", "SYS_ADMIN", "audit", "verify"], None);
    assert_eq!(bad.status.code(), Some(11));
    let message = String::from_utf8_lossy(&bad.stderr);
    assert!(message.contains("line 1"), "{message}");
    assert!(bad.stdout.is_empty());
}

#[test]
fn verify_catches_lines_cut_off_the_end() {
    // The store seals the chain's head in its state row with every change, so a shorter but
    // valid chain is caught: by this handle and by a fresh one, after close too.
    let (f, _) = logged_store();
    let log = log_of(&f);
    let Fixture {
        dir: _dir,
        path,
        key,
        store,
    } = f;
    store.close().unwrap();
    let mut lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let total = lines.len() as u64;
    lines.pop();
    rewrite(&log, &lines);
    let reopened = open(&path, &key);
    let problem = reopened.verify_audit_log(None).unwrap().problem.unwrap();
    assert_eq!(problem.line, total);
    assert!(problem.reason.contains("cut off"), "{}", problem.reason);
    assert!(
        problem
            .reason
            .contains(&format!("record {total} is missing")),
        "{}",
        problem.reason
    );
    reopened.close().unwrap();

    lines.truncate(2);
    rewrite(&log, &lines);
    let reopened = open(&path, &key);
    let problem = reopened.verify_audit_log(None).unwrap().problem.unwrap();
    assert_eq!(problem.line, 3);
    assert!(problem.reason.contains("records 3–"), "{}", problem.reason);
}

#[test]
fn an_edited_state_row_fails_the_open() {
    let (f, _) = logged_store();
    f.store.close().unwrap();
    let conn = rusqlite::Connection::open(&f.path).unwrap();
    // Lower the audit head's sequence number by one (byte 16 is its last byte).
    let changed = conn
        .execute(
            "UPDATE tbs_meta SET value = substr(value, 1, 16) || X'01' || substr(value, 18) WHERE key = 'state'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1, "one state row");
    drop(conn);
    let err = tbsecrets::SecretStorage::open(
        &f.path,
        tbsecrets::StorageOptions::with_master_key(f.key.clone()),
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Integrity);
    assert!(err.message().contains("state row"), "{}", err.message());
}

#[test]
fn cli_draws_a_progress_bar_only_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.db");
    let bin = env!("CARGO_BIN_EXE_tbsecrets");
    let base = format!(
        "{bin} --store {} --as SYS_ADMIN audit verify",
        store.display()
    );
    let run = |command: &str| {
        Command::new("sh")
            .args(["-c", command])
            .env_remove("TBS_MASTER_KEY")
            .env_remove("TBS_MASTER_KEY_FILE")
            .env_remove("TBS_ROLE")
            .output()
            .unwrap()
    };
    assert!(run(&format!("{bin} --store {} init", store.display()))
        .status
        .success());
    assert!(run(&format!(
        "printf v | {bin} --store {} put a",
        store.display()
    ))
    .status
    .success());
    // Piped: the report only.
    let piped = run(&base);
    assert!(piped.status.success());
    assert!(piped.stderr.is_empty());
    // On a pseudo-terminal (util-linux `script`): the bar is drawn on stderr, then cleared.
    let tty = run(&format!("script -qec '{base}' /dev/null"));
    assert!(
        tty.status.success(),
        "{}",
        String::from_utf8_lossy(&tty.stderr)
    );
    let screen = String::from_utf8_lossy(&tty.stdout);
    assert!(screen.contains("verifying audit log ["), "{screen}");
    assert!(screen.contains("records intact"), "{screen}");
}
