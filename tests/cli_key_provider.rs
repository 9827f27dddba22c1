//! The CLI on a key provider: the global `--key-provider SPEC` (and `TBS_KEY_PROVIDER`) for
//! `init` and every command, and `rotate-master-key --to-key-provider SPEC` (with
//! `--dry-run`), with the age-backed key command.

mod common;

use common::key_command::{age_installed, KeyCommand};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use tbsecrets::ErrorCode;

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        Cli {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("s.db")
    }

    /// Runs the binary on the store with a clean environment plus `env`.
    fn run(&self, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tbsecrets"));
        cmd.arg("--store").arg(self.store()).args(args);
        for var in [
            "TBS_MASTER_KEY",
            "TBS_MASTER_KEY_FILE",
            "TBS_KEY_PROVIDER",
            "TBS_STORE",
            "TBS_TENANT",
            "TBS_ROLE",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }
}

#[track_caller]
fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "failed: {stderr}");
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[track_caller]
fn fails(out: &Output, code: ErrorCode) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code.as_i32()), "{stderr}");
    assert!(stderr.contains(code.as_str()), "{stderr}");
    stderr
}

#[test]
fn init_and_use_a_store_on_a_key_command() {
    if !age_installed() {
        eprintln!("skipped: the age tool is not installed");
        return;
    }
    let kms = KeyCommand::new();
    let cli = Cli::new();
    let spec = kms.spec();
    let flag = ["--key-provider", spec.as_str()];
    let out = ok(&cli.run(&[&flag[..], &["init"]].concat(), &[], b""));
    assert!(out.contains("held by the key provider command:"), "{out}");
    let mut key_file = cli.store().into_os_string();
    key_file.push(".key");
    assert!(!PathBuf::from(key_file).exists(), "no key file is written");
    ok(&cli.run(
        &[&flag[..], &["put", "Api", "--type", "text"]].concat(),
        &[],
        b"s3cr3t",
    ));
    let revealed = ok(&cli.run(&[&flag[..], &["reveal", "Api"]].concat(), &[], b""));
    assert_eq!(revealed, "s3cr3t");
    // The environment names the same provider.
    let revealed = ok(&cli.run(&["reveal", "Api"], &[("TBS_KEY_PROVIDER", &spec)], b""));
    assert_eq!(revealed, "s3cr3t");

    // Without the provider there is no key; with a raw key source as well it is ambiguous.
    fails(
        &cli.run(&["reveal", "Api"], &[], b""),
        ErrorCode::InvalidArgument,
    );
    let key = cli.dir.path().join("k");
    std::fs::write(&key, "x").unwrap();
    let key = key.display().to_string();
    let err = fails(
        &cli.run(
            &[&flag[..], &["--key-file", &key, "reveal", "Api"]].concat(),
            &[],
            b"",
        ),
        ErrorCode::InvalidArgument,
    );
    assert!(err.contains("--key-file"), "{err}");
    let err = fails(
        &cli.run(&["--key-provider", "kms:x", "reveal", "Api"], &[], b""),
        ErrorCode::InvalidArgument,
    );
    assert!(err.contains("unknown key provider 'kms'"), "{err}");

    // The program refuses: KEY_UNAVAILABLE, naming it.
    kms.set_mode("fail");
    let err = fails(
        &cli.run(&[&flag[..], &["reveal", "Api"]].concat(), &[], b""),
        ErrorCode::KeyUnavailable,
    );
    assert!(err.contains("access denied"), "{err}");
}

#[test]
fn rotate_master_key_moves_a_store_to_a_key_command_and_back() {
    if !age_installed() {
        eprintln!("skipped: the age tool is not installed");
        return;
    }
    let kms = KeyCommand::new();
    let cli = Cli::new();
    let spec = kms.spec();
    ok(&cli.run(&["init"], &[], b""));
    ok(&cli.run(&["put", "Api", "--type", "text"], &[], b"s3cr3t"));
    let admin = ["--as", "SYS_ADMIN", "rotate-master-key"];

    let dry = ok(&cli.run(
        &[
            &admin[..],
            &["--to-key-provider", &spec, "--dry-run", "--json"],
        ]
        .concat(),
        &[],
        b"",
    ));
    assert!(dry.contains("planned_master_key_rotation"), "{dry}");
    assert_eq!(
        ok(&cli.run(&["reveal", "Api"], &[], b"")),
        "s3cr3t",
        "dry run"
    );
    fails(
        &cli.run(
            &[&admin[..], &["--to-key-provider", "command:"]].concat(),
            &[],
            b"",
        ),
        ErrorCode::InvalidArgument,
    );

    // The raw key from the environment this time: the key command must not inherit it.
    let mut key_file = cli.store().into_os_string();
    key_file.push(".key");
    let raw_key = std::fs::read_to_string(PathBuf::from(key_file)).unwrap();
    let moved = ok(&cli.run(
        &[&admin[..], &["--to-key-provider", &spec, "--json"]].concat(),
        &[("TBS_MASTER_KEY", raw_key.trim())],
        b"",
    ));
    let moved: serde_json::Value = serde_json::from_str(&moved).unwrap();
    assert_eq!(moved["action"], "rotated_master_key");
    assert_eq!(moved["key_id"], 2);
    assert_eq!(
        moved["key_provider"],
        format!("command:{}", kms.script.display())
    );
    fails(
        &cli.run(&["reveal", "Api"], &[], b""),
        ErrorCode::WrongMasterKey,
    );
    let with = ["--key-provider", spec.as_str()];
    assert_eq!(
        ok(&cli.run(&[&with[..], &["reveal", "Api"]].concat(), &[], b"")),
        "s3cr3t"
    );

    // Back to a raw key file, from the provider.
    let new_key = cli.dir.path().join("new.key");
    tbsecrets::write_key_file(&new_key, &tbsecrets::MasterKey::generate()).unwrap();
    let new_key = new_key.display().to_string();
    ok(&cli.run(
        &[&with[..], &admin[..], &["--new-key-file", &new_key]].concat(),
        &[],
        b"",
    ));
    assert_eq!(
        ok(&cli.run(&["--key-file", &new_key, "reveal", "Api"], &[], b"")),
        "s3cr3t"
    );
    fails(
        &cli.run(&[&with[..], &["reveal", "Api"]].concat(), &[], b""),
        ErrorCode::WrongMasterKey,
    );
}
