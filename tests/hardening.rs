//! Process hardening of the library (issue 12, finding 7): `StorageOptions::harden_process`
//! disables core dumps, and key material sits in locked memory that is released on drop and
//! degrades (unlocked, still working) when the process may not lock memory.
//!
//! Hardening is process-wide, so this binary holds only tests that tolerate it. The
//! no-lock child is this binary re-executed on `child_opens_without_memlock` with
//! `TBS_TEST_MEMLOCK_CHILD` set; without it that test returns at once.

use std::os::unix::process::CommandExt;
use std::process::Command;
use tbsecrets::hardening::core_dumps_disabled;
use tbsecrets::{MasterKey, SecretStorage, SecretType, StorageOptions};

#[path = "common/c_abi.rs"]
mod c_abi;

const CHILD: &str = "TBS_TEST_MEMLOCK_CHILD";

/// Locked memory of this process in kB (`VmLck` in /proc/self/status).
fn locked_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmLck:"))
        .expect("VmLck line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn core_limit() -> libc::rlim_t {
    let mut limit = libc::rlimit {
        rlim_cur: 99,
        rlim_max: 99,
    };
    // SAFETY: writes the struct we own.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) }, 0);
    limit.rlim_cur
}

#[test]
fn harden_option_disables_core_dumps_and_keys_are_locked() {
    // SAFETY: PR_GET_DUMPABLE takes no arguments.
    assert_eq!(
        unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) },
        1,
        "a fresh test process is dumpable"
    );
    assert!(!core_dumps_disabled());

    // Keys are locked while they live and unlocked when dropped.
    let before = locked_kb();
    let keys: Vec<MasterKey> = (0..8).map(|_| MasterKey::generate()).collect();
    let with_keys = locked_kb();
    assert!(
        with_keys >= before + 8 * 4,
        "8 keys lock at least 8 pages: {before} kB -> {with_keys} kB"
    );
    drop(keys);
    assert_eq!(
        locked_kb(),
        before,
        "dropped keys release their locked pages"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut options = StorageOptions::with_master_key(MasterKey::generate());
    options.harden_process = true;
    let store = SecretStorage::open(dir.path().join("s.db"), options).unwrap();
    store.create("t", "k", SecretType::Text, b"v", "").unwrap();
    assert!(core_dumps_disabled());
    assert_eq!(core_limit(), 0);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) }, 0);
    // SAFETY: tbs_harden_process takes no arguments.
    assert_eq!(
        unsafe { c_abi::tbs_harden_process() },
        c_abi::tbs_status::TBS_OK
    );
}

#[test]
fn child_opens_without_memlock() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: reads the struct we pass.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &zero) }, 0);
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let store = SecretStorage::open(
        dir.path().join("s.db"),
        StorageOptions::with_master_key(key.clone()),
    )
    .expect("open works without lockable memory");
    store
        .create("t", "k", SecretType::Text, b"value", "")
        .unwrap();
    assert_eq!(store.get("t", "k").unwrap().as_bytes(), b"value");
    assert_eq!(locked_kb(), 0, "nothing could be locked");
    store.close().unwrap();
    println!("CHILD-OK");
}

#[test]
fn mlock_failure_degrades_gracefully() {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_opens_without_memlock", "--nocapture"])
        .env(CHILD, "1")
        .env("TMPDIR", "/tmp");
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Root may lock memory regardless of RLIMIT_MEMLOCK: run the child as nobody.
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("CHILD-OK"),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
