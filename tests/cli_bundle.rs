//! `tbsecrets export`, `import`, `export-key` and `manifest` as processes.

use age::secrecy::ExposeSecret;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tbsecrets::ErrorCode;

fn tbsecrets(dir: &Path, store: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tbsecrets"));
    for var in [
        "TBS_MASTER_KEY",
        "TBS_MASTER_KEY_FILE",
        "TBS_STORE",
        "TBS_TENANT",
    ] {
        cmd.env_remove(var);
    }
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn put(dir: &Path, store: &str, tenant: &str, name: &str, value: &str, ty: &str) {
    let file = dir.join("value.tmp");
    std::fs::write(&file, value).unwrap();
    ok(&tbsecrets(
        dir,
        store,
        &[
            "--tenant",
            tenant,
            "put",
            name,
            "--type",
            ty,
            "--file",
            file.to_str().unwrap(),
        ],
    ));
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/thingsboard")
}

#[test]
fn export_import_round_trip_with_trust_dry_run_and_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&tbsecrets(d, "a.db", &["init"]));
    ok(&tbsecrets(d, "b.db", &["init"]));
    put(d, "a.db", "t1", "db", "db-secret", "TEXT");
    put(d, "a.db", "t1", "ca", "-----BEGIN-----", "TEXT_FILE");
    let identity = age::x25519::Identity::generate();
    std::fs::write(
        d.join("key.txt"),
        format!("{}\n", identity.to_string().expose_secret()),
    )
    .unwrap();
    std::fs::write(
        d.join("recipients.txt"),
        format!("# ops\n{}\n", identity.to_public()),
    )
    .unwrap();

    let exported: Value = serde_json::from_str(&ok(&tbsecrets(
        d,
        "a.db",
        &[
            "--tenant",
            "t1",
            "export",
            "-R",
            "recipients.txt",
            "-o",
            "bundle.age",
            "--json",
        ],
    )))
    .unwrap();
    assert_eq!(exported["secrets"], 2);
    let bundle = std::fs::read(d.join("bundle.age")).unwrap();
    assert!(!bundle.windows(9).any(|w| w == b"db-secret"));

    let key = ok(&tbsecrets(d, "a.db", &["export-key"]));
    let key = key.trim();
    assert!(key.starts_with("ed25519:"), "{key}");

    // Without trusting a's key, b refuses the bundle: INTEGRITY (11), nothing on stdout.
    let refused = tbsecrets(
        d,
        "b.db",
        &["--tenant", "t2", "import", "bundle.age", "-i", "key.txt"],
    );
    assert_eq!(refused.status.code(), Some(ErrorCode::Integrity.as_i32()));
    assert!(refused.stdout.is_empty());

    let dry = ok(&tbsecrets(
        d,
        "b.db",
        &[
            "--tenant",
            "t2",
            "import",
            "bundle.age",
            "-i",
            "key.txt",
            "--trust",
            key,
            "--dry-run",
        ],
    ));
    assert!(
        dry.contains("would import") && dry.contains("2 created"),
        "{dry}"
    );
    let listed = ok(&tbsecrets(d, "b.db", &["--tenant", "t2", "list", "--json"]));
    assert_eq!(
        serde_json::from_str::<Value>(&listed)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        0
    );

    std::fs::write(d.join("trusted.txt"), format!("# store a\n{key}\n")).unwrap();
    let args = [
        "--tenant",
        "t2",
        "import",
        "bundle.age",
        "-i",
        "key.txt",
        "--trusted-keys",
        "trusted.txt",
    ];
    let report: Value = serde_json::from_str(&ok(&tbsecrets(
        d,
        "b.db",
        &[&args[..], &["--json"]].concat(),
    )))
    .unwrap();
    assert_eq!(report["items"].as_array().unwrap().len(), 2);
    let got = ok(&tbsecrets(d, "b.db", &["--tenant", "t2", "get", "db"]));
    assert_eq!(got, "db-secret");

    // Again: the default policy `fail` refuses (ALREADY_EXISTS, 3); skip imports nothing.
    let again = tbsecrets(d, "b.db", &args);
    assert_eq!(again.status.code(), Some(ErrorCode::AlreadyExists.as_i32()));
    let skipped = ok(&tbsecrets(
        d,
        "b.db",
        &[&args[..], &["--on-conflict", "skip"]].concat(),
    ));
    assert!(skipped.contains("2 skipped"), "{skipped}");

    // Another identity cannot open it: INVALID_ARGUMENT (1).
    let other = age::x25519::Identity::generate();
    std::fs::write(d.join("other.txt"), other.to_string().expose_secret()).unwrap();
    let wrong = tbsecrets(
        d,
        "b.db",
        &["--tenant", "t2", "import", "bundle.age", "-i", "other.txt"],
    );
    assert_eq!(
        wrong.status.code(),
        Some(ErrorCode::InvalidArgument.as_i32())
    );
}

#[test]
fn manifest_lists_needs_and_reports_every_missing_secret_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = fixtures();
    let files = [
        f.join("rule_chain_with_secrets.json"),
        f.join("http_integration.json"),
    ];
    let files: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();

    // No --tenant: no store is needed; the needs alone, exit 0.
    let offline = ok(&tbsecrets(
        d,
        "none.db",
        &[&["manifest"][..], &files].concat(),
    ));
    assert_eq!(offline.lines().count(), 13, "{offline}");
    assert!(offline.contains("smtp-password (TEXT): "), "{offline}");

    ok(&tbsecrets(d, "s.db", &["init"]));
    put(d, "s.db", "t", "smtp-password", "x", "TEXT");
    let checked = tbsecrets(
        d,
        "s.db",
        &[&["--tenant", "t", "manifest", "--json"][..], &files].concat(),
    );
    assert_eq!(checked.status.code(), Some(ErrorCode::NotFound.as_i32()));
    let report: Value = serde_json::from_slice(&checked.stdout).unwrap();
    let missing = report["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "MISSING")
        .count();
    assert_eq!(missing, 12);
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(
        stderr.contains("12 secret(s)") && stderr.contains("gateway-uplink-token"),
        "{stderr}"
    );
}
