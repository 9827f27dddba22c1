//! Delivering committed audit records to the log file, through the CLI:
//!
//! - a write whose log cannot be written after its commit (a full disk) still succeeds,
//!   warns on stderr naming the log, and the next run with space delivers the backlog;
//! - a log that is not a regular file (`/dev/null`) is refused before anything commits;
//! - every single-record deletion, truncation and adjacent reorder of a log, made between
//!   runs as an attacker with file access would, fails `audit verify` (exit status 11)
//!   naming the first bad line and the missing or misplaced record.
//!
//! The full disk is a tiny tmpfs mounted in a private mount namespace (`unshare -m`): this
//! test binary is re-executed there on `child_full_disk` with `TBS_TEST_DELIVERY_DIR` set.

mod common;

use common::full_disk::fill;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_tbsecrets");
const CHILD_DIR: &str = "TBS_TEST_DELIVERY_DIR";
const MARK: &str = "@tbs-child@ full disk scenario done";
/// Exit status of INTEGRITY and of INVALID_ARGUMENT, and of NOT_FOUND.
const INTEGRITY: i32 = 11;
const INVALID_ARGUMENT: i32 = 1;
const NOT_FOUND: i32 = 2;

const ENV_VARS: [&str; 8] = [
    "TBS_MASTER_KEY",
    "TBS_MASTER_KEY_FILE",
    "TBS_STORE",
    "TBS_TENANT",
    "TBS_ROLE",
    "TBS_AUDIT_LOG",
    "TBS_ANCHOR_FILE",
    "TBS_POLICY_FILE",
];

/// What one run printed and returned.
struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().expect("exited normally"),
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    #[track_caller]
    fn ok(&self) -> String {
        assert_eq!(self.code, 0, "failed: {}", self.stderr);
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }
}

/// The CLI on one store, with an optional `--audit-log`.
struct Cli {
    dir: PathBuf,
    store: PathBuf,
    log: Option<PathBuf>,
}

impl Cli {
    fn new(dir: &Path) -> Cli {
        Cli {
            dir: dir.to_path_buf(),
            store: dir.join("store.db"),
            log: None,
        }
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new(BIN);
        for var in ENV_VARS {
            cmd.env_remove(var);
        }
        cmd.current_dir(&self.dir)
            .arg("--store")
            .arg(&self.store)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(log) = &self.log {
            cmd.arg("--audit-log").arg(log);
        }
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd().args(args).output().expect("run tbsecrets"))
    }

    fn put(&self, name: &str, value: &str) -> Run {
        let mut child = self
            .cmd()
            .args(["put", name])
            .stdin(Stdio::piped())
            .spawn()
            .expect("run tbsecrets");
        let mut pipe = child.stdin.take().unwrap();
        // A command that fails before reading its input closes the pipe early.
        let _ = pipe.write_all(value.as_bytes());
        drop(pipe);
        Run::from(child.wait_with_output().unwrap())
    }

    fn verify(&self) -> Run {
        self.run(&["--as", "SYS_ADMIN", "audit", "verify"])
    }

    fn default_log(&self) -> PathBuf {
        let mut p = self.store.as_os_str().to_owned();
        p.push(".audit.jsonl");
        p.into()
    }
}

fn records(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record"))
        .collect()
}

// ---- (a) a full disk after the commit -------------------------------------------------------

#[test]
fn a_full_disk_after_the_commit_warns_and_the_next_run_delivers_the_backlog() {
    common::full_disk::run_child_on_tmpfs("child_full_disk", "64k", CHILD_DIR, MARK);
}

/// Runs inside the mount namespace, with the tmpfs mounted at `$TBS_TEST_DELIVERY_DIR/mnt`.
#[test]
fn child_full_disk() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return; // not re-executed by the test above
    };
    let dir = PathBuf::from(dir);
    let mnt = dir.join("mnt");
    let log = mnt.join("log.jsonl");
    let filler = mnt.join("filler");
    let mut cli = Cli::new(&dir);
    cli.run(&["init"]).ok();
    cli.log = Some(log.clone());
    assert_eq!(
        cli.put("first", "one\n").ok(),
        "created secret 'first' (TEXT) version 1\n"
    );
    assert_eq!(records(&log).len(), 1, "the log holds the first record");

    fill(&filler);
    // The log file may still have room in its last page: write until a record cannot go
    // out (each adds a line of some hundred bytes, so a page fills within a few dozen).
    let mut failed = None;
    for i in 0..64 {
        let name = format!("late{i}");
        let run = cli.put(&name, &format!("value {i}\n"));
        assert_eq!(
            run.code, 0,
            "a committed write must exit 0 even when its audit record is not written: {}",
            run.stderr
        );
        assert_eq!(
            run.stdout,
            format!("created secret '{name}' (TEXT) version 1\n").into_bytes()
        );
        if run.stderr.is_empty() {
            continue;
        }
        assert!(
            run.stderr.starts_with("tbsecrets: warning: ") && run.stderr.ends_with('\n'),
            "not one warning line: {:?}",
            run.stderr
        );
        assert_eq!(run.stderr.lines().count(), 1, "{:?}", run.stderr);
        assert!(
            run.stderr.contains(&log.display().to_string()),
            "the warning does not name the audit log: {:?}",
            run.stderr
        );
        assert!(
            run.stderr.contains("No space left"),
            "the warning does not say why: {:?}",
            run.stderr
        );
        println!(
            "@tbs-child@ write {i} was not delivered: {}",
            run.stderr.trim_end()
        );
        failed = Some((name, i));
        break;
    }
    let (name, i) = failed.expect("no write ever failed to reach the full log");
    let before = records(&log);
    assert!(
        !before.iter().any(|r| r["names"][0] == name.as_str()),
        "the undelivered record is in the log already"
    );

    // The change committed: its value is readable (the read warns too: the disk is full).
    let reveal = cli.run(&["reveal", &name]);
    assert_eq!(reveal.code, 0, "{}", reveal.stderr);
    assert_eq!(reveal.stdout, format!("value {i}").into_bytes());

    // Space returns: the next run delivers the backlog, in chain order, without a warning.
    std::fs::remove_file(&filler).unwrap();
    let list = cli.run(&["list"]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(list.stderr.is_empty(), "{}", list.stderr);
    let after = records(&log);
    assert!(after.len() > before.len());
    for (n, record) in after.iter().enumerate() {
        assert_eq!(record["seq"], n as u64 + 1);
    }
    assert!(
        after.iter().any(|r| r["action"] == "CREATE"
            && r["names"][0] == name.as_str()
            && r["outcome"] == "OK"),
        "the backlog's CREATE of {name} was not delivered"
    );
    let verify = cli.verify();
    let out = verify.ok();
    assert!(out.contains("intact"), "{out}");
    println!("{MARK}");
}

// ---- (b) a log that is not a regular file ---------------------------------------------------

#[test]
fn dev_null_as_the_audit_log_is_refused_and_nothing_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cli = Cli::new(tmp.path());
    cli.run(&["init"]).ok();
    cli.log = Some(PathBuf::from("/dev/null"));
    let run = cli.put("ghost", "boo\n");
    assert_eq!(run.code, INVALID_ARGUMENT, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("INVALID_ARGUMENT"), "{}", run.stderr);
    assert!(run.stderr.contains("/dev/null"), "{}", run.stderr);
    cli.log = None;
    let info = cli.run(&["info", "ghost"]);
    assert_eq!(info.code, NOT_FOUND, "the secret exists: {}", info.stderr);
    assert!(!cli.run(&["list"]).ok().contains("ghost"));
}

// ---- (c) tampering between runs -------------------------------------------------------------

/// Records in the tampering tests' log.
const RECORDS: usize = 12;

/// A store whose log holds exactly [`RECORDS`] records, every writer closed (so the outbox
/// holds nothing that could heal a cut log).
fn pristine() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let cli = Cli::new(tmp.path());
    cli.run(&["init"]).ok();
    for i in 0..RECORDS {
        cli.put(&format!("s{}", i % 5), &format!("value {i}\n"))
            .ok();
    }
    let lines = std::fs::read_to_string(cli.default_log()).unwrap();
    assert_eq!(lines.lines().count(), RECORDS);
    let conn = rusqlite::Connection::open(&cli.store).unwrap();
    let outbox: i64 = conn
        .query_row("SELECT COUNT(*) FROM tbs_audit_outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(outbox, 0, "closed writers left records in the outbox");
    tmp
}

/// A copy of the pristine store's directory, its log replaced by `tamper(lines)` (`None`:
/// the log deleted). Returns the verification run.
fn verify_tampered(
    pristine: &Path,
    tamper: impl FnOnce(&mut Vec<String>) -> Option<String>,
) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(pristine).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
    }
    let cli = Cli::new(tmp.path());
    let log = cli.default_log();
    let mut lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| format!("{l}\n"))
        .collect();
    match tamper(&mut lines) {
        Some(text) => std::fs::write(&log, text).unwrap(),
        None => std::fs::remove_file(&log).unwrap(),
    }
    cli.verify()
}

/// Asserts that verification failed with INTEGRITY at `line`, saying each of `says`.
#[track_caller]
fn assert_broken(run: &Run, case: &str, line: usize, says: &[&str]) {
    assert_eq!(
        run.code, INTEGRITY,
        "{case}: expected INTEGRITY (11), got {}: {}",
        run.code, run.stderr
    );
    assert!(run.stdout.is_empty(), "{case}: stdout {:?}", run.stdout);
    let message = run.stderr.trim_end();
    assert!(!message.contains('\n'), "{case}: not one line: {message:?}");
    assert!(
        message.contains(&format!("is broken at line {line}:")),
        "{case}: the message does not name line {line}: {message}"
    );
    for text in says {
        assert!(
            message.contains(text),
            "{case}: the message does not say {text:?}: {message}"
        );
    }
}

#[test]
fn the_pristine_log_verifies() {
    let base = pristine();
    let run = verify_tampered(base.path(), |lines| Some(lines.concat()));
    let out = run.ok();
    assert!(out.contains(&format!("{RECORDS} records intact")), "{out}");
}

#[test]
fn every_single_record_deletion_is_reported() {
    let base = pristine();
    for i in 1..=RECORDS {
        let run = verify_tampered(base.path(), |lines| {
            lines.remove(i - 1);
            Some(lines.concat())
        });
        let case = format!("line {i} deleted");
        let follows = format!("record {} does not follow record {}", i + 1, i - 1);
        let missing = format!("record {RECORDS} is missing");
        let says: &[&str] = match i {
            1 => &["the log starts at record 2: record 1 is missing"],
            RECORDS => &["the log ends early", &missing],
            _ => &[&follows],
        };
        assert_broken(&run, &case, i, says);
    }
}

#[test]
fn every_truncation_is_reported() {
    let base = pristine();
    for kept in [0, 1, 2, 6, RECORDS - 2, RECORDS - 1] {
        let missing = if kept + 1 == RECORDS {
            format!("record {RECORDS} is missing")
        } else {
            format!("records {}–{RECORDS} are missing", kept + 1)
        };
        let how = if kept == 0 {
            "the log is empty"
        } else {
            "the log ends early"
        };
        let run = verify_tampered(base.path(), |lines| {
            lines.truncate(kept);
            Some(lines.concat())
        });
        assert_broken(
            &run,
            &format!("cut after line {kept}"),
            kept + 1,
            &[how, &missing],
        );
        // Cut inside the next line: the torn rest is no record and ends the log just the same.
        let run = verify_tampered(base.path(), |lines| {
            let half = lines[kept].len() / 2;
            let torn = lines[kept][..half].to_owned();
            lines.truncate(kept);
            Some(lines.concat() + &torn)
        });
        assert_broken(
            &run,
            &format!("cut inside line {}", kept + 1),
            kept + 1,
            &[how, &missing],
        );
    }
    // The file deleted: the next open starts an empty one, which reaches no record.
    let run = verify_tampered(base.path(), |_| None);
    let missing = format!("records 1–{RECORDS} are missing");
    assert_broken(&run, "log deleted", 1, &[&missing]);
}

#[test]
fn every_adjacent_reorder_is_reported() {
    let base = pristine();
    for i in 1..RECORDS {
        let run = verify_tampered(base.path(), |lines| {
            lines.swap(i - 1, i);
            Some(lines.concat())
        });
        let case = format!("lines {i} and {} swapped", i + 1);
        let follows = format!("record {} does not follow record {}", i + 1, i - 1);
        let says: &[&str] = if i == 1 {
            &["the log starts at record 2: record 1 is missing"]
        } else {
            &[&follows]
        };
        assert_broken(&run, &case, i, says);
    }
}
