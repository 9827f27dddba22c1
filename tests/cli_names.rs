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

#[test]
fn resolve_var_fills_per_message_names_within_the_allow_list() {
    let cli = Cli::new();
    cli.put("device-sensor-7-token", b"cli-dyn-s3cr3t");
    cli.put("db-password", b"cli-db-s3cr3t");
    let doc = cli.write(
        "node.json",
        r#"{"auth":"Bearer ${secret:device-{{metadata.deviceName}}-token}","n":"${deviceName}"}"#,
    );
    let allow = ["--allow", "device-*-token"];
    let mut args = vec!["resolve", doc.as_str(), "--var", "deviceName=sensor-7"];
    args.extend_from_slice(&allow);
    let ok = cli.run(&args, None);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert_eq!(
        text(&ok.stdout),
        r#"{"auth":"Bearer cli-dyn-s3cr3t","n":"${deviceName}"}"#
    );
    // metadata. and data. prefixes.
    let by_data = cli.write("data.txt", "${secret:device-{{data.device}}-token}");
    let out = cli.run(
        &[
            "--allow",
            "device-*",
            "resolve",
            &by_data,
            "--var",
            "data.device=sensor-7",
        ],
        None,
    );
    assert_eq!(text(&out.stdout), "cli-dyn-s3cr3t", "{}", text(&out.stderr));

    // Without --allow: refused, naming the placeholder.
    let out = cli.run(&["resolve", &doc, "--var", "deviceName=sensor-7"], None);
    let stderr = failed_with(&out, ErrorCode::Unresolved);
    assert!(
        stderr.contains("device-{{metadata.deviceName}}-token") && stderr.contains("allow-list"),
        "{stderr}"
    );
    // Hostile values: refused, never reaching another secret.
    let long = format!("deviceName={}", "a".repeat(300));
    for var in [
        "deviceName=../db-password",
        "deviceName=*",
        "deviceName=a;b",
        "deviceName=}",
        "deviceName=a\nb",
        long.as_str(),
        "deviceName=",
    ] {
        let mut args = vec!["resolve", doc.as_str(), "--var", var];
        args.extend_from_slice(&allow);
        let out = cli.run(&args, None);
        let stderr = failed_with(&out, ErrorCode::Unresolved);
        assert!(
            stderr.contains("{{metadata.deviceName}}"),
            "{var:?}: {stderr}"
        );
        assert!(!stderr.contains("s3cr3t"));
    }
    // A missing variable, and a malformed --var.
    let mut args = vec!["resolve", doc.as_str()];
    args.extend_from_slice(&allow);
    let stderr = failed_with(&cli.run(&args, None), ErrorCode::Unresolved);
    assert!(stderr.contains("no {{metadata.deviceName}}"), "{stderr}");
    let mut args = vec!["resolve", doc.as_str(), "--var", "deviceName"];
    args.extend_from_slice(&allow);
    let stderr = failed_with(&cli.run(&args, None), ErrorCode::InvalidArgument);
    assert!(stderr.contains("KEY=VALUE"), "{stderr}");

    // References keep the pattern; where-used of a concrete name lists the source whose
    // pattern matches it.
    let out = cli.run(&["refs", &doc], None);
    assert!(
        text(&out.stdout).contains("device-{{metadata.deviceName}}-token"),
        "{}",
        text(&out.stderr)
    );
    let mut args = vec![
        "resolve",
        doc.as_str(),
        "--var",
        "deviceName=sensor-7",
        "--source",
        "rule-node-1",
    ];
    args.extend_from_slice(&allow);
    let tracked = cli.run(&args, None);
    assert!(tracked.status.success(), "{}", text(&tracked.stderr));
    let out = cli.run(&["where-used", "device-sensor-7-token"], None);
    assert!(
        text(&out.stdout).contains("rule-node-1"),
        "{}",
        text(&out.stderr)
    );
    let out = cli.run(&["where-used", "db-password"], None);
    assert!(!text(&out.stdout).contains("rule-node-1"));
}
