//! The CLI's name restrictions: the global `--allow PATTERN` (repeatable) and, for
//! `resolve`, per-message names filled from `--var key=value`.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use tbsecrets::ErrorCode;

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        let cli = Cli {
            dir: tempfile::tempdir().unwrap(),
        };
        assert!(cli.run(&["init"], None).status.success());
        cli
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tbsecrets"));
        cmd.arg("--store")
            .arg(self.path("s.db"))
            .args(args)
            .env("TBS_PRINCIPAL", "cli-node")
            .env_remove("TBS_MASTER_KEY")
            .env_remove("TBS_MASTER_KEY_FILE")
            .env_remove("TBS_STORE")
            .env_remove("TBS_TENANT")
            .env_remove("TBS_ROLE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    fn put(&self, name: &str, value: &[u8]) {
        let out = self.run(&["put", name, "--type", "text"], Some(value));
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn audit_log(&self) -> String {
        std::fs::read_to_string(self.path("s.db.audit.jsonl")).unwrap()
    }
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

fn failed_with(out: &Output, code: ErrorCode) -> String {
    let stderr = text(&out.stderr).to_owned();
    assert_eq!(out.status.code(), Some(code.as_i32()), "{stderr}");
    assert!(out.stdout.is_empty());
    stderr
}

#[test]
fn allow_restricts_get_resolve_and_enumeration_and_denials_are_audited() {
    let cli = Cli::new();
    cli.put("MyApiKey", b"cli-s3cr3t-1");
    cli.put("device-a-token", b"cli-s3cr3t-2");
    cli.put("db-password", b"cli-s3cr3t-3");

    let ok = cli.run(
        &[
            "--allow",
            "MyApiKey",
            "--allow",
            "device-*",
            "get",
            "device-a-token",
        ],
        None,
    );
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert_eq!(ok.stdout, b"cli-s3cr3t-2");

    let denied = cli.run(&["get", "db-password", "--allow", "device-*"], None);
    let stderr = failed_with(&denied, ErrorCode::PermissionDenied);
    assert!(
        stderr.contains("'db-password'") && stderr.contains("allow-list"),
        "{stderr}"
    );
    assert!(!stderr.contains("cli-s3cr3t"));

    let doc = cli.write("node.txt", "a=${secret:MyApiKey} b=${secret:db-password}");
    let out = cli.run(&["--allow", "MyApiKey", "resolve", &doc], None);
    let stderr = failed_with(&out, ErrorCode::Unresolved);
    assert!(stderr.contains("db-password"), "{stderr}");
    assert!(!stderr.contains("cli-s3cr3t"));

    for args in [
        &["list"][..],
        &["unused", "--days", "1"],
        &["stale", "--days", "1"],
    ] {
        let mut all = vec!["--allow", "*"];
        all.extend_from_slice(args);
        let out = cli.run(&all, None);
        let stderr = failed_with(&out, ErrorCode::PermissionDenied);
        assert!(stderr.contains("allow-list"), "{args:?}: {stderr}");
    }
    let unrestricted = cli.run(&["list"], None);
    assert!(unrestricted.status.success());

    let log = cli.audit_log();
    assert!(!log.contains("cli-s3cr3t"));
    let denial = |action: &str, name: &str| {
        log.lines().any(|l| {
            l.contains(&format!("\"action\":\"{action}\""))
                && l.contains(&format!("\"{name}\""))
                && l.contains("\"PERMISSION_DENIED\"")
                && l.contains("\"cli-node\"")
        })
    };
    assert!(denial("GET", "db-password"), "{log}");
    assert!(denial("RESOLVE", "db-password"), "{log}");
}

#[test]
fn invalid_allow_patterns_are_refused() {
    let cli = Cli::new();
    for bad in ["", "a;b", "${secret:x}", "a}"] {
        let out = cli.run(&["--allow", bad, "get", "x"], None);
        let stderr = failed_with(&out, ErrorCode::InvalidArgument);
        assert!(stderr.contains("--allow"), "{bad:?}: {stderr}");
    }
}
