//! A SIGKILL loop over CLI writers: `put` (stdin and `--file`), `rm`, `rollback`,
//! `rotate-tenant-key` and `rotate-master-key`, each process killed after a varying,
//! deterministic pseudo-random delay (or, every tenth run, left to finish). The delay only
//! moves where the kill lands; no assertion depends on it.
//!
//! Afterwards the store opens normally with the key of the last master rotation that
//! committed, `audit verify` finds the log intact and reaching the store's sealed head, every
//! secret's current version is the one its last audited change wrote (and every secret whose
//! last audited change is a DELETE is gone), the OK `ROTATE_MASTER_KEY` records are exactly
//! the master rotations that committed, and the outbox is empty after a normal close.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tbsecrets::{read_key_file, write_key_file};
use tbsecrets::{MasterKey, SecretStorage, StorageOptions};

const BIN: &str = env!("CARGO_BIN_EXE_tbsecrets");
/// The CLI's default tenant.
const TENANT: &str = "default";
/// Processes that must die by SIGKILL.
const KILLS: usize = 1_000;
/// A bound on the loop, so that a machine where kills never land fails instead of hanging.
const MAX_RUNS: usize = 8 * KILLS;
/// What a run of each kind of command is first assumed to take (some tens of milliseconds
/// for a debug build); the runs left to finish refine it, so that kills keep landing across
/// the whole life of a process on a fast or a slow machine alike.
const FIRST_ESTIMATE: Duration = Duration::from_millis(20);
/// TEXT secrets `t0..` (put from stdin) and TEXT_FILE secrets `f0..` (put with --file).
const TEXT_NAMES: u64 = 8;
const FILE_NAMES: u64 = 3;

const ENV_VARS: [&str; 7] = [
    "TBS_MASTER_KEY",
    "TBS_MASTER_KEY_FILE",
    "TBS_STORE",
    "TBS_TENANT",
    "TBS_ROLE",
    "TBS_AUDIT_LOG",
    "TBS_ANCHOR_FILE",
];

/// xorshift64*: deterministic, so every run of the test issues the same commands.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One writer command.
#[derive(Debug, Clone)]
enum Op {
    PutStdin(String),
    PutFile(String),
    Rm(String),
    Rollback(String),
    RotateTenant,
    RotateMaster,
}

fn pick(rng: &mut Rng) -> Op {
    let text = |rng: &mut Rng| format!("t{}", rng.below(TEXT_NAMES));
    let file = |rng: &mut Rng| format!("f{}", rng.below(FILE_NAMES));
    match rng.below(100) {
        0..=34 => Op::PutStdin(text(rng)),
        35..=49 => Op::PutFile(file(rng)),
        50..=61 => Op::Rm(if rng.below(4) == 0 {
            file(rng)
        } else {
            text(rng)
        }),
        62..=71 => Op::Rollback(text(rng)),
        72..=85 => Op::RotateTenant,
        _ => Op::RotateMaster,
    }
}

/// The test's directory, store and the key file that opens the store now.
struct Scene {
    dir: PathBuf,
    store: PathBuf,
    key_file: PathBuf,
}

impl Scene {
    fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        for var in ENV_VARS {
            cmd.env_remove(var);
        }
        cmd.current_dir(&self.dir)
            .arg("--store")
            .arg(&self.store)
            .arg("--key-file")
            .arg(&self.key_file)
            .arg("--principal")
            .arg("killer")
            // `rm` erases at once: the loop puts names it removed again, which a recoverable
            // (soft-deleted) name refuses until it is destroyed; the erasing path is the one
            // with the most to tear under a kill (overwrite, delete, WAL truncation).
            .arg("--deleted-retention-days")
            .arg("0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn log(&self) -> PathBuf {
        suffixed(&self.store, ".audit.jsonl")
    }
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    p.into()
}

/// The master key id in the store header, read with SQLite directly (no process runs then).
fn kek_id(store: &Path) -> u32 {
    let conn = rusqlite::Connection::open(store).expect("open the store with SQLite");
    let value: Vec<u8> = conn
        .query_row("SELECT value FROM tbs_meta WHERE key = 'kek_id'", [], |r| {
            r.get(0)
        })
        .expect("the header's key id");
    u32::from_be_bytes(value.try_into().expect("a 4-byte key id"))
}

fn outbox_len(store: &Path) -> i64 {
    let conn = rusqlite::Connection::open(store).expect("open the store with SQLite");
    conn.query_row("SELECT COUNT(*) FROM tbs_audit_outbox", [], |r| r.get(0))
        .expect("count the outbox")
}

/// The highest sequence number in the outbox (0 when empty).
fn outbox_max(store: &Path) -> u64 {
    let conn = rusqlite::Connection::open(store).expect("open the store with SQLite");
    conn.query_row(
        "SELECT COALESCE(MAX(seq), 0) FROM tbs_audit_outbox",
        [],
        |r| r.get::<_, i64>(0),
    )
    .expect("the outbox's last record") as u64
}

/// The sequence number of the log's last complete line, and whether a torn line follows it.
fn log_head(log: &Path) -> (u64, bool) {
    let text = std::fs::read(log).unwrap_or_default();
    let torn = !text.is_empty() && !text.ends_with(b"\n");
    let complete = match text.iter().rposition(|&b| b == b'\n') {
        Some(at) => &text[..at],
        None => &text[..0],
    };
    let last = complete.rsplit(|&b| b == b'\n').next().unwrap_or_default();
    let seq = serde_json::from_slice::<Value>(last)
        .ok()
        .and_then(|r| r["seq"].as_u64())
        .unwrap_or(0);
    (seq, torn)
}

/// A change the CLI reported as done (exit status 0), to be found in the log.
#[derive(Debug)]
struct Acknowledged {
    action: &'static str,
    name: Option<String>,
    version: Option<u64>,
}

#[test]
fn sigkilled_cli_writers_leave_a_store_whose_every_committed_change_is_audited() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let store = dir.join("store.db");
    let mut scene = Scene {
        dir: dir.clone(),
        key_file: suffixed(&store, ".key"),
        store,
    };
    let init = {
        let mut cmd = Command::new(BIN);
        for var in ENV_VARS {
            cmd.env_remove(var);
        }
        cmd.current_dir(&dir)
            .arg("--store")
            .arg(&scene.store)
            .arg("init")
            .output()
            .unwrap()
    };
    assert!(
        init.status.success(),
        "init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    assert!(scene.key_file.exists(), "init wrote no key file");
    let first_kek = kek_id(&scene.store);
    let value_file = dir.join("value.bin");

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut killed = 0usize;
    let mut finished = 0usize;
    let mut master_committed = 0u32;
    let mut master_attempts = 0usize;
    let mut acknowledged = Vec::new();
    let mut runs = 0usize;
    let mut backlogs = 0usize;
    let mut estimates = HashMap::new();
    let mut torn_lines = 0usize;
    while killed < KILLS {
        assert!(
            runs < MAX_RUNS,
            "only {killed} of {runs} writers were killed before finishing"
        );
        let op = pick(&mut rng);
        let kind = std::mem::discriminant(&op);
        let estimate = *estimates.entry(kind).or_insert(FIRST_ESTIMATE);
        // Anywhere from before exec to a little past the typical end of the run.
        let delay = estimate.mul_f64(rng.below(1_100) as f64 / 1_000.0);
        let let_finish = runs % 10 == 9;
        runs += 1;

        let mut cmd = scene.command();
        let mut stdin_value = None;
        let mut next_key = None;
        match &op {
            Op::PutStdin(name) => {
                cmd.args(["put", name, "--json"]).stdin(Stdio::piped());
                stdin_value = Some(format!("value of {name} in run {runs}\n"));
            }
            Op::PutFile(name) => {
                let len = 1 + rng.below(3000) as usize;
                let bytes: Vec<u8> = (0..len)
                    .map(|i| (i as u64 * 31 + runs as u64) as u8)
                    .collect();
                std::fs::write(&value_file, bytes).unwrap();
                cmd.args(["put", name, "--json", "--type", "text-file", "--file"])
                    .arg(&value_file);
            }
            Op::Rm(name) => {
                cmd.args(["rm", name]);
            }
            Op::Rollback(name) => {
                cmd.args(["rollback", name, "1", "--json"]);
            }
            Op::RotateTenant => {
                cmd.arg("rotate-tenant-key");
            }
            Op::RotateMaster => {
                master_attempts += 1;
                let path = dir.join(format!("master-{master_attempts}.key"));
                write_key_file(&path, &MasterKey::generate()).unwrap();
                // Store-wide: only SYS_ADMIN may.
                cmd.args(["--as", "SYS_ADMIN", "rotate-master-key", "--new-key-file"])
                    .arg(&path);
                next_key = Some(path);
            }
        }
        let kek_before = kek_id(&scene.store);
        let spawned = Instant::now();
        let mut child = cmd.spawn().expect("spawn tbsecrets");
        if let Some(value) = stdin_value {
            let mut pipe = child.stdin.take().unwrap();
            // A process killed before reading its input closes the pipe early.
            let _ = pipe.write_all(value.as_bytes());
        }
        if !let_finish {
            std::thread::sleep(delay);
            // Killing a process that already exited (not yet reaped) does nothing.
            child.kill().expect("send SIGKILL");
        }
        let output = child.wait_with_output().unwrap();
        if let_finish {
            let took = spawned.elapsed();
            estimates.insert(kind, (estimate + took) / 2);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let status = output.status;

        if let Some(path) = next_key {
            let kek_after = kek_id(&scene.store);
            if kek_after == kek_before + 1 {
                master_committed += 1;
                scene.key_file = path;
            } else {
                assert_eq!(kek_after, kek_before, "the key id moved by more than one");
                assert!(
                    !status.success(),
                    "a master rotation reported success but the header kept key id {kek_before}"
                );
            }
        }

        if status.signal() == Some(libc::SIGKILL) {
            killed += 1;
            // Where the kill landed (reported, never asserted: that is timing).
            let (logged, torn) = log_head(&scene.log());
            backlogs += usize::from(outbox_max(&scene.store) > logged);
            torn_lines += usize::from(torn);
            continue;
        }
        finished += 1;
        let code = status.code().expect("exited normally or by SIGKILL");
        // NOT_FOUND: rm or rollback of a secret that does not exist (or lacks version 1).
        let not_found_allowed = matches!(op, Op::Rm(_) | Op::Rollback(_));
        assert!(
            code == 0 || (code == 2 && not_found_allowed),
            "run {runs} {op:?} after kills failed with status {code}: {stderr}"
        );
        if code != 0 {
            continue;
        }
        assert!(
            !stderr.contains("warning"),
            "run {runs} {op:?} warned: {stderr}"
        );
        // put and rollback print their result as JSON (--json): the new version.
        let number = || {
            serde_json::from_slice::<Value>(&output.stdout)
                .ok()
                .and_then(|v| v["version"].as_u64())
        };
        acknowledged.push(match &op {
            Op::PutStdin(name) | Op::PutFile(name) => Acknowledged {
                action: "CREATE_OR_UPDATE",
                name: Some(name.clone()),
                version: Some(number().expect("put prints the version")),
            },
            Op::Rm(name) => Acknowledged {
                action: "DELETE",
                name: Some(name.clone()),
                version: None,
            },
            Op::Rollback(name) => Acknowledged {
                action: "ROLLBACK",
                name: Some(name.clone()),
                version: Some(number().expect("rollback prints the version")),
            },
            Op::RotateTenant => Acknowledged {
                action: "ROTATE_TENANT_KEY",
                name: None,
                version: None,
            },
            Op::RotateMaster => Acknowledged {
                action: "ROTATE_MASTER_KEY",
                name: None,
                version: Some(u64::from(kek_id(&scene.store))),
            },
        });
    }
    let loop_time = started.elapsed();

    // The key that opens the store now is the last committed rotation's.
    let key = read_key_file(&scene.key_file).unwrap();
    let final_kek = kek_id(&scene.store);
    assert_eq!(final_kek, first_kek + master_committed);
    assert!(
        master_committed > 0,
        "no master rotation committed ({master_attempts} attempts)"
    );

    // A normal open: the backlog goes out, every current value is readable; then close.
    let stored: BTreeMap<String, u64> = {
        let conn = rusqlite::Connection::open(&scene.store).unwrap();
        let mut stmt = conn
            .prepare("SELECT tenant, name, version FROM tbs_secrets")
            .unwrap();
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .unwrap();
        rows.map(|row| {
            let (tenant, name, version) = row.unwrap();
            assert_eq!(tenant, TENANT);
            (name, version as u64)
        })
        .collect()
    };
    let handle = SecretStorage::open(
        &scene.store,
        StorageOptions {
            create_if_missing: false,
            ..StorageOptions::with_master_key(key)
        },
    )
    .expect("the store opens normally after the kills");
    for name in stored.keys() {
        let value = handle
            .get(TENANT, name)
            .unwrap_or_else(|e| panic!("secret {name} is unreadable: {e}"));
        assert!(!value.as_bytes().is_empty());
    }
    let verified = handle.verify_audit_log(None).unwrap();
    assert!(verified.is_intact(), "{:?}", verified.problem);
    handle.close().unwrap();
    assert!(handle.audit_delivery_error().is_none());
    drop(handle);
    assert_eq!(
        outbox_len(&scene.store),
        0,
        "records remain in the outbox after a normal close"
    );

    // The CLI agrees that the log is intact and reaches the store's sealed head.
    let verify = scene
        .command()
        .args(["--as", "SYS_ADMIN", "audit", "verify", "--json"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "audit verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let report: Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(report["problem"], Value::Null, "{report}");
    assert_eq!(outbox_len(&scene.store), 0);

    // Every committed change is in the log.
    let text = std::fs::read_to_string(scene.log()).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record"))
        .collect();
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record["seq"], i as u64 + 1, "record {i} out of sequence");
    }
    let ok = |r: &&Value| r["outcome"] == "OK";
    let name_of = |r: &Value| r["names"][0].as_str().map(str::to_owned);
    let mut last: HashMap<String, (String, Option<u64>)> = HashMap::new();
    for record in records.iter().filter(ok) {
        let action = record["action"].as_str().unwrap();
        if matches!(action, "CREATE" | "UPDATE" | "ROLLBACK" | "DELETE") {
            assert_eq!(record["tenant"], TENANT);
            let name = name_of(record).expect("a change names its secret");
            last.insert(name, (action.to_owned(), record["version"].as_u64()));
        }
    }
    for (name, version) in &stored {
        match last.get(name) {
            Some((action, Some(logged))) if action != "DELETE" => assert_eq!(
                logged, version,
                "secret {name} is at version {version} but its last audited change ({action}) wrote {logged}"
            ),
            other => panic!(
                "secret {name} (version {version}) has no audited CREATE/UPDATE/ROLLBACK as its last change: {other:?}"
            ),
        }
    }
    for (name, (action, _)) in &last {
        if action == "DELETE" {
            assert!(
                !stored.contains_key(name),
                "secret {name} is still stored though the log deleted it last"
            );
        } else {
            assert!(
                stored.contains_key(name),
                "secret {name} is missing though its last audited change is {action}"
            );
        }
    }
    let master_versions: Vec<u64> = records
        .iter()
        .filter(ok)
        .filter(|r| r["action"] == "ROTATE_MASTER_KEY")
        .map(|r| {
            r["version"]
                .as_u64()
                .expect("a master rotation names its key id")
        })
        .collect();
    let expected: Vec<u64> = (u64::from(first_kek) + 1..=u64::from(final_kek)).collect();
    assert_eq!(
        master_versions, expected,
        "OK ROTATE_MASTER_KEY records differ from the {master_committed} committed rotations"
    );
    for ack in &acknowledged {
        let found = records.iter().filter(ok).any(|r| {
            let action = r["action"].as_str().unwrap_or_default();
            let action_matches = match ack.action {
                "CREATE_OR_UPDATE" => action == "CREATE" || action == "UPDATE",
                wanted => action == wanted,
            };
            action_matches
                && ack
                    .name
                    .as_ref()
                    .is_none_or(|n| name_of(r).as_ref() == Some(n))
                && ack.version.is_none_or(|v| r["version"].as_u64() == Some(v))
        });
        assert!(
            found,
            "a change the CLI reported done is not in the log: {ack:?}"
        );
    }
    eprintln!(
        "kill loop: {runs} runs, {killed} killed ({backlogs} left records undelivered, {torn_lines} a torn log line), {finished} finished, {master_committed} of {master_attempts} master rotations committed, {} secrets, {} records; loop {:.1?}, total {:.1?}",
        stored.len(),
        records.len(),
        loop_time,
        started.elapsed()
    );
}
