//! Several processes on one store, and durability when a writer is SIGKILLed.
//!
//! The child processes are this test binary re-executed on one test (`child_*`) with
//! `TBS_TEST_CHILD` telling it what to do; without that variable the child tests return at once.

mod common;

use common::{open, raw_connection, temp_store, TENANT};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use tbsecrets::{ErrorCode, ListQuery, MasterKey, SecretStorage, SecretType, StorageOptions};

const CHILD_ROLE: &str = "TBS_TEST_CHILD";
const CHILD_STORE: &str = "TBS_TEST_STORE";
const CHILD_PREFIX: &str = "TBS_TEST_PREFIX";
const CHILD_START: &str = "TBS_TEST_START";
const CHILD_COUNT: &str = "TBS_TEST_COUNT";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"))
}

fn env_num(name: &str) -> usize {
    env(name).parse().expect("number")
}

/// Spawns this test binary running only `test`, as a child with `role`.
fn spawn_child(
    test: &str,
    role: &str,
    store: &Path,
    key: &MasterKey,
    vars: &[(&str, String)],
) -> ChildGuard {
    let mut cmd = Command::new(std::env::current_exe().expect("current exe"));
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_ROLE, role)
        .env(CHILD_STORE, store)
        // The child opens with `master_key: None`: the key comes from the environment.
        .env("TBS_MASTER_KEY", key.to_base64().as_str())
        .env_remove("TBS_MASTER_KEY_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    ChildGuard(cmd.spawn().expect("spawn child test process"))
}

/// Marks protocol messages in a child's stdout. The test harness writes there too, and its
/// `test name ... ` has no newline before the test runs, so a message may not start a line.
const MARK: &str = "@tbs-child@ ";

/// The next protocol message from a child, or `None` at the end of its output.
fn next_line(out: &mut BufReader<ChildStdout>) -> Option<String> {
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).expect("read child stdout") == 0 {
            return None;
        }
        if let Some(at) = line.find(MARK) {
            return Some(line[at + MARK.len()..].trim_end().to_owned());
        }
    }
}

/// Writes one protocol message to stdout, flushed (the harness's capture does not apply to
/// direct writes).
fn say(message: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{MARK}{message}").unwrap();
    out.flush().unwrap();
}

/// A child process that is SIGKILLed and reaped if the parent test fails, so a failing test
/// never leaves a writer behind or hangs on it.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The value of secret `k{i}` in the durability test: mixed types and sizes.
fn durable_value(i: usize) -> (SecretType, Vec<u8>) {
    if i.is_multiple_of(3) {
        let len = 1000 + (i * 7919) % 60_000;
        (
            SecretType::TextFile,
            common::pseudo_random_bytes(len, i as u64 + 1),
        )
    } else {
        (
            SecretType::Text,
            format!("value of k{i}: {}", "ж".repeat(i % 500)).into_bytes(),
        )
    }
}

/// Children wait long for the write lock: SQLite's busy handler is not fair, and on a loaded
/// machine with slow fsyncs one writer can hold off the other past the default 10 s.
fn child_options() -> StorageOptions {
    StorageOptions {
        busy_timeout: std::time::Duration::from_secs(120),
        ..StorageOptions::default()
    }
}

fn batch_value(prefix: &str, i: usize) -> Vec<u8> {
    format!("{prefix} secret number {i}").into_bytes()
}

// ---- children -------------------------------------------------------------------------------

/// Child: opens the store, says READY, waits for a line on stdin, then creates COUNT secrets
/// `{PREFIX}-{i}` and bumps the shared secret after each.
#[test]
fn child_batch_creator() {
    if std::env::var(CHILD_ROLE).as_deref() != Ok("batch") {
        return;
    }
    let store = SecretStorage::open(env(CHILD_STORE), child_options()).expect("child open");
    let (prefix, count) = (env(CHILD_PREFIX), env_num(CHILD_COUNT));
    say("READY");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    for i in 0..count {
        store
            .create(
                TENANT,
                &format!("{prefix}-{i}"),
                SecretType::Text,
                &batch_value(&prefix, i),
                "",
            )
            .unwrap_or_else(|e| panic!("{prefix}-{i}: {e}"));
        store
            .update_value(TENANT, "shared", format!("{prefix} {i}").as_bytes(), None)
            .unwrap_or_else(|e| panic!("shared update {prefix} {i}: {e}"));
    }
    store.close().unwrap();
    say("DONE");
}

/// Child: creates `k{START}`, `k{START+1}`, ... forever, printing `ACK k{i}` after each create
/// returned. Secrets that already exist before its first create (created by a killed
/// predecessor after its last ACK the parent read) are acknowledged only if they hold the
/// right values.
#[test]
fn child_acking_writer() {
    if std::env::var(CHILD_ROLE).as_deref() != Ok("acker") {
        return;
    }
    let store = SecretStorage::open(env(CHILD_STORE), child_options()).expect("child open");
    let start = env_num(CHILD_START);
    // The killed predecessor may have created a few secrets after its last acknowledgement
    // that the parent read (it keeps writing until the signal lands): they must be there with
    // the right values, and this writer goes on after them.
    let mut created_any = false;
    for i in start..start + 100_000 {
        let name = format!("k{i}");
        let (secret_type, value) = durable_value(i);
        match store.create(TENANT, &name, secret_type, &value, "") {
            Ok(_) => created_any = true,
            Err(e) if e.code() == ErrorCode::AlreadyExists && !created_any => {
                let got = store.get(TENANT, &name).unwrap();
                assert!(
                    got.as_bytes() == value.as_slice(),
                    "{name} exists with a wrong value"
                );
            }
            Err(e) => panic!("{name}: {e}"),
        }
        say(&format!("ACK {name}"));
    }
}

/// Child: reports whether some other process holds a lock on SQLite's "DMS" byte of the
/// store's WAL-index (byte 128 of the `-shm` file): `HELD` or `FREE`. A process with an open
/// connection holds it shared; without it, the next process to open the store would take
/// itself for the first, truncate the WAL-index and rebuild it under the others' feet.
#[test]
fn child_dms_lock_probe() {
    if std::env::var(CHILD_ROLE).as_deref() != Ok("dms") {
        return;
    }
    let mut shm = std::ffi::OsString::from(env(CHILD_STORE));
    shm.push("-shm");
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&shm)
    {
        Ok(file) => file,
        // The last connection to close removes the WAL-index.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return say("FREE"),
        Err(e) => panic!("open -shm: {e}"),
    };
    // SAFETY: a zeroed flock is a valid value for every field.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as _;
    lock.l_whence = libc::SEEK_SET as _;
    lock.l_start = 128;
    lock.l_len = 1;
    // SAFETY: a valid descriptor and a valid flock.
    let rc = unsafe {
        libc::fcntl(
            std::os::unix::io::AsRawFd::as_raw_fd(&file),
            libc::F_GETLK,
            &mut lock,
        )
    };
    assert_eq!(rc, 0, "F_GETLK");
    say(if i32::from(lock.l_type) == libc::F_UNLCK {
        "FREE"
    } else {
        "HELD"
    });
}

// ---- parents --------------------------------------------------------------------------------

#[test]
fn an_open_handle_keeps_its_wal_index_lock() {
    let (_dir, path) = temp_store();
    let key = MasterKey::generate();
    let store = open(&path, &key);
    store
        .create(TENANT, "k", SecretType::Text, b"v", "")
        .unwrap();
    assert_eq!(store.get(TENANT, "k").unwrap().as_bytes(), b"v");
    let dms = || {
        let mut child = spawn_child("child_dms_lock_probe", "dms", &path, &key, &[]);
        let mut out = BufReader::new(child.0.stdout.take().unwrap());
        next_line(&mut out)
    };
    assert_eq!(dms().as_deref(), Some("HELD"));
    // Opening and dropping another handle in this process must not drop the lock either.
    drop(open(&path, &key));
    assert_eq!(dms().as_deref(), Some("HELD"));
    assert_eq!(store.get(TENANT, "k").unwrap().as_bytes(), b"v");
    drop(store);
    assert_eq!(dms().as_deref(), Some("FREE"), "released on close");
}

#[test]
fn two_processes_create_concurrently() {
    const PER_CHILD: usize = 200;
    let (_dir, path) = temp_store();
    let key = MasterKey::generate();
    let parent = open(&path, &key);
    parent
        .create(TENANT, "shared", SecretType::Text, b"start", "")
        .unwrap();
    assert_eq!(parent.get(TENANT, "shared").unwrap().as_bytes(), b"start");

    let mut children: Vec<(ChildGuard, BufReader<ChildStdout>)> = ["left", "right"]
        .iter()
        .map(|prefix| {
            let mut child = spawn_child(
                "child_batch_creator",
                "batch",
                &path,
                &key,
                &[
                    (CHILD_PREFIX, prefix.to_string()),
                    (CHILD_COUNT, PER_CHILD.to_string()),
                ],
            );
            let out = BufReader::new(child.0.stdout.take().unwrap());
            (child, out)
        })
        .collect();
    // Both are open before either starts writing.
    for (child, out) in &mut children {
        if next_line(out).as_deref() != Some("READY") {
            // Say how the child ended (a signal leaves no message on its stderr).
            panic!("a child ended before it was ready: {:?}", child.0.wait());
        }
    }
    for (child, _) in &mut children {
        child.0.stdin.as_mut().unwrap().write_all(b"GO\n").unwrap();
    }
    for (child, out) in &mut children {
        assert_eq!(
            next_line(out).as_deref(),
            Some("DONE"),
            "a child did not finish"
        );
        let status = child.0.wait().unwrap();
        assert!(status.success(), "child failed: {status}");
    }

    // The parent's long-lived handle and a fresh one both see everything.
    let fresh = open(&path, &key);
    for store in [&parent, &fresh] {
        let page = store.list(TENANT, &ListQuery::default()).unwrap();
        assert_eq!(page.total, 2 * PER_CHILD + 1);
        for prefix in ["left", "right"] {
            for i in 0..PER_CHILD {
                let got = store.get(TENANT, &format!("{prefix}-{i}")).unwrap();
                assert_eq!(got.as_bytes(), batch_value(prefix, i));
                assert_eq!(got.version(), 1);
            }
        }
        // No update of the shared secret was lost.
        let shared = store.get(TENANT, "shared").unwrap();
        assert_eq!(shared.version(), 1 + 2 * PER_CHILD as u64);
        let text = shared.as_str().unwrap();
        assert!(
            text == format!("left {}", PER_CHILD - 1) || text == format!("right {}", PER_CHILD - 1),
            "{text}"
        );
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    const ROUNDS: usize = 5;
    let (_dir, path) = temp_store();
    let key = MasterKey::generate();
    drop(open(&path, &key)); // create the store; no handle stays open across the kills

    // A random-ish number of acknowledgements per round (no fixed kill point).
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        ^ u64::from(std::process::id());
    let mut next_random = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };

    let mut acked: Vec<usize> = Vec::new();
    for round in 0..ROUNDS {
        let start = acked.last().map_or(0, |last| last + 1);
        let target = 3 + next_random() % 40;
        let mut child = spawn_child(
            "child_acking_writer",
            "acker",
            &path,
            &key,
            &[(CHILD_START, start.to_string())],
        );
        let mut out = BufReader::new(child.0.stdout.take().unwrap());
        let mut this_round = 0;
        while this_round < target {
            let line = next_line(&mut out).unwrap_or_else(|| {
                panic!("round {round}: the writer died after {this_round} acks")
            });
            let n: usize = line
                .strip_prefix("ACK k")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("unexpected line {line:?}"));
            assert_eq!(n, start + this_round, "acknowledgements out of order");
            acked.push(n);
            this_round += 1;
        }
        child.0.kill().expect("SIGKILL the writer"); // Child::kill sends SIGKILL
        let status = child.0.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "round {round}: {status}"
        );
    }
    assert!(acked.len() >= ROUNDS * 3);

    // The store opens, is structurally sound, and holds every acknowledged secret.
    let integrity: String = raw_connection(&path)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let store = open(&path, &key);
    for &i in &acked {
        let name = format!("k{i}");
        let got = store
            .get(TENANT, &name)
            .unwrap_or_else(|e| panic!("acknowledged {name} lost: {e}"));
        let (secret_type, value) = durable_value(i);
        assert_eq!(got.secret_type(), secret_type, "{name}");
        assert!(
            got.as_bytes() == value.as_slice(),
            "{name} has a wrong value"
        );
    }
    // Anything beyond the acknowledgements is what the last writer created before the signal
    // landed (it keeps going meanwhile): consecutive, each complete.
    let page = store.list(TENANT, &ListQuery::default()).unwrap();
    let last = *acked.last().unwrap();
    let mut found: Vec<usize> = page
        .items
        .iter()
        .map(|info| info.name.strip_prefix('k').unwrap().parse().unwrap())
        .collect();
    found.sort_unstable();
    assert_eq!(
        found,
        (0..found.len()).collect::<Vec<_>>(),
        "every secret from k0 on, no gap"
    );
    assert!(found.len() > last, "{} secrets", found.len());
    for info in page.items {
        let i: usize = info.name.strip_prefix('k').unwrap().parse().unwrap();
        let (secret_type, value) = durable_value(i);
        assert_eq!(info.secret_type, secret_type);
        assert_eq!(info.version, 1);
        assert!(store.get(TENANT, &info.name).unwrap().as_bytes() == value.as_slice());
    }
    // And it still takes writes.
    store
        .create(TENANT, "after", SecretType::Text, b"ok", "")
        .unwrap();
}

/// Child: rotates the data key of tenants `r0`..`r19` in turn, printing `ROTATED rN` after
/// each, then the master key to `TBS_TEST_NEW_KEY` (printing `MASTER`), and starts over.
#[test]
fn child_rotator() {
    if std::env::var(CHILD_ROLE).as_deref() != Ok("rotator") {
        return;
    }
    let store = SecretStorage::open(env(CHILD_STORE), child_options()).expect("child open");
    let new_key = MasterKey::from_base64(&env("TBS_TEST_NEW_KEY")).expect("new key");
    loop {
        for t in 0..ROTATION_TENANTS {
            store
                .rotate_tenant_key(&format!("r{t}"))
                .expect("tenant rotation");
            say(&format!("ROTATED r{t}"));
        }
        if store.rotate_master_key(&new_key).is_ok() {
            say("MASTER");
        }
    }
}

const ROTATION_TENANTS: usize = 20;

/// A rotation killed with SIGKILL at a random point: the store opens (with the old key if the
/// master rotation had not committed, else with the new one) and every secret reads back.
#[test]
fn rotation_killed_midway_loses_nothing() {
    let (_dir, path) = temp_store();
    let key = MasterKey::generate();
    let new_key = MasterKey::generate();
    {
        let store = open(&path, &key);
        for t in 0..ROTATION_TENANTS {
            for i in 0..10 {
                store
                    .create(
                        &format!("r{t}"),
                        &format!("s{i}"),
                        SecretType::Text,
                        format!("{t}:{i}").as_bytes(),
                        "",
                    )
                    .unwrap();
            }
        }
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as usize;
    // Somewhere in the first pass, or in or after the master rotation that ends it.
    let target = 1 + seed % (ROTATION_TENANTS + 3);
    let mut child = spawn_child(
        "child_rotator",
        "rotator",
        &path,
        &key,
        &[("TBS_TEST_NEW_KEY", new_key.to_base64().to_string())],
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    for seen in 0..target {
        next_line(&mut out).unwrap_or_else(|| panic!("the rotator died after {seen} messages"));
    }
    child.0.kill().expect("SIGKILL the rotator");
    child.0.wait().unwrap();

    let store = match SecretStorage::open(&path, StorageOptions::with_master_key(key)) {
        Ok(store) => store,
        Err(e) if e.code() == ErrorCode::WrongMasterKey => {
            SecretStorage::open(&path, StorageOptions::with_master_key(new_key)).unwrap()
        }
        Err(e) => panic!("reopen after a killed rotation: {e}"),
    };
    for t in 0..ROTATION_TENANTS {
        for i in 0..10 {
            let value = store.get(&format!("r{t}"), &format!("s{i}")).unwrap();
            assert_eq!(value.as_bytes(), format!("{t}:{i}").as_bytes());
        }
    }
    let ok: String = raw_connection(&path)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}
