//! The cross-surface contract (`tests/contract/cases.tsv`) run against the `tbsecrets` command
//! line: one fresh store, one process per case (`put`, `get`, `delete`, `rollback`, `resolve`),
//! the exit status read as the error code's number. Cases the CLI cannot express are marked
//! `cli` in the file's skip column.

#[path = "contract/cases.rs"]
mod cases;

use cases::{check, Case};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tbsecrets::ErrorCode;
use tempfile::TempDir;

const ENV_VARS: [&str; 8] = [
    "TBS_MASTER_KEY",
    "TBS_MASTER_KEY_FILE",
    "TBS_STORE",
    "TBS_TENANT",
    "TBS_ROLE",
    "TBS_PRINCIPAL",
    "TBS_POLICY_FILE",
    "TBS_AUDIT_LOG",
];

struct Cli {
    dir: TempDir,
    store: PathBuf,
}

/// What one run returned: the code its exit status names, stdout and stderr.
struct Run {
    code: ErrorCode,
    stdout: Vec<u8>,
    stderr: String,
}

impl Cli {
    fn new() -> Cli {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store.db");
        let cli = Cli { dir, store };
        let init = cli.run(None, &["init"], None);
        assert_eq!(init.code, ErrorCode::Ok, "init: {}", init.stderr);
        cli
    }

    /// Runs `tbsecrets [--tenant T] ARGS` with `stdin` (or none) in a clean environment.
    fn run(&self, tenant: Option<&str>, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tbsecrets"));
        for var in ENV_VARS {
            cmd.env_remove(var);
        }
        cmd.current_dir(self.dir.path())
            .arg("--store")
            .arg(&self.store);
        if let Some(tenant) = tenant {
            cmd.arg("--tenant").arg(tenant);
        }
        cmd.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run tbsecrets");
        if let Some(bytes) = stdin {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            // The CLI may stop reading early (one byte past a limit): a broken pipe is fine.
            let _ = pipe.write_all(bytes);
        }
        let output = child.wait_with_output().expect("wait for tbsecrets");
        let status = output
            .status
            .code()
            .expect("exited normally, not by a signal");
        let code = ErrorCode::from_i32(status)
            .unwrap_or_else(|| panic!("exit status {status} is no error code"));
        Run {
            code,
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// A document written to a file for `resolve`.
    fn document(&self, line: usize, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(format!("doc-{line}"));
        std::fs::write(&path, bytes).expect("write the document");
        path
    }

    /// The current version of a secret, from `info --json`.
    fn version(&self, tenant: &str, name: &str) -> Option<u64> {
        let run = self.run(Some(tenant), &["info", "--json", "--", name], None);
        assert_eq!(run.code, ErrorCode::Ok, "info {name}: {}", run.stderr);
        let info: serde_json::Value =
            serde_json::from_slice(&run.stdout).expect("info --json prints JSON");
        info["version"].as_u64()
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Runs one case as the CLI spells it.
fn run_case(cli: &Cli, case: &Case) -> Run {
    let tenant = case.tenant_str();
    let name = case.name_str();
    let t = Some(tenant.as_str());
    match case.op.as_str() {
        "create" => {
            let kind = if case.secret_type == "TEXT" {
                "text"
            } else {
                "file"
            };
            cli.run(t, &["put", "--type", kind, "--", &name], Some(&case.value))
        }
        "update" => {
            assert!(
                case.arg.is_none(),
                "{}: the CLI has no check-and-set",
                case.describe()
            );
            cli.run(t, &["put", "--", &name], Some(&case.value))
        }
        "rollback" => {
            let version = case.arg.expect("rollback needs a version").to_string();
            cli.run(t, &["rollback", "--", &name, &version], None)
        }
        "get" => cli.run(t, &["get", "--", &name], None),
        "delete" => cli.run(t, &["delete", "--", &name], None),
        "undelete" => cli.run(t, &["undelete", "--", &name], None),
        "destroy" => cli.run(t, &["destroy", "--yes", "--", &name], None),
        "resolve_text" | "resolve_json" => {
            let format = if case.op == "resolve_text" {
                "text"
            } else {
                "json"
            };
            let doc = cli.document(case.line, &case.value);
            cli.run(t, &["resolve", "--format", format, path_str(&doc)], None)
        }
        other => panic!("line {}: unknown op {other:?}", case.line),
    }
}

#[test]
fn the_cli_keeps_the_contract() {
    let cli = Cli::new();
    let cases = cases::load();
    let ran = cases::report_skips(&cases, "cli");
    for case in cases.iter().filter(|c| !c.skips("cli")) {
        let run = run_case(&cli, case);
        if run.code != ErrorCode::Ok {
            // The CLI's error convention: nothing on stdout, the code named on stderr.
            assert!(
                run.stdout.is_empty(),
                "{}: stdout on failure",
                case.describe()
            );
            assert!(
                run.stderr.contains(run.code.as_str()),
                "{}: stderr does not name {}: {:?}",
                case.describe(),
                run.code,
                run.stderr
            );
        }
        let writes = matches!(case.op.as_str(), "create" | "update" | "rollback");
        let version = if run.code == ErrorCode::Ok && writes && !case.result_empty {
            cli.version(&case.tenant_str(), &case.name_str())
        } else {
            None
        };
        let bytes = (run.code == ErrorCode::Ok && !writes).then_some(run.stdout.as_slice());
        check(case, run.code, bytes, version);
    }
    assert!(ran > 50, "the contract ran only {ran} cases");
}
