//! Scenarios on a full disk: a test re-runs one of its own binary's tests in a private mount
//! namespace (`unshare -m`, root or CAP_SYS_ADMIN) with a small tmpfs, which the child fills.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Runs the test `child` of the current test binary in a private mount namespace with a tmpfs
/// of `size` (e.g. `64k`) mounted at `DIR/mnt`, where DIR is a new temporary directory passed
/// in the environment variable `dir_var` (the child returns at once without it). Asserts that
/// the child succeeded and printed `mark`, and that the tmpfs stayed in its namespace; echoes
/// the child's output.
pub fn run_child_on_tmpfs(child: &str, size: &str, dir_var: &str, mark: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let exe = std::env::current_exe().unwrap();
    let output = Command::new("unshare")
        .args(["-m", "--propagation", "private", "--", "sh", "-c"])
        .arg(
            "mount -t tmpfs -o size=\"$1\" tmpfs \"$2\" && \
             exec \"$3\" --exact \"$4\" --nocapture --test-threads=1",
        )
        .arg("sh")
        .arg(size)
        .arg(&mnt)
        .arg(&exe)
        .arg(child)
        .env(dir_var, tmp.path())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `unshare` (util-linux) for a private mount namespace: {e}")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the full-disk scenario {child} failed ({}). It needs `unshare -m` and `mount -t tmpfs` \
         (root or CAP_SYS_ADMIN); if those are not permitted here, this test cannot run.\n\
         stdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains(mark),
        "the child scenario {child} did not run to its end:\n{stdout}\n{stderr}"
    );
    eprint!("{stdout}");
    // The namespace was private: nothing stays mounted on the host.
    assert!(
        std::fs::read_dir(&mnt).unwrap().next().is_none(),
        "the tmpfs leaked out of its mount namespace"
    );
}

/// Fills the file system holding `path` (a new file) until it refuses with ENOSPC, the partly
/// filled last page included.
pub fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    let mut until_full = |chunk: &[u8]| {
        let e = loop {
            if let Err(e) = file.write_all(chunk) {
                break e;
            }
        };
        assert_eq!(
            e.raw_os_error(),
            Some(libc::ENOSPC),
            "filling the tmpfs failed otherwise: {e}"
        );
    };
    until_full(&[0u8; 4096]);
    until_full(&[0u8]);
}

/// Fills the file system holding `dir` but for about `slack` bytes; the filler's path (remove
/// it to free the space).
pub fn fill_leaving(dir: &Path, slack: usize) -> PathBuf {
    let reserve = dir.join("slack");
    std::fs::write(&reserve, vec![0u8; slack]).unwrap();
    let filler = dir.join("filler");
    fill(&filler);
    std::fs::remove_file(reserve).unwrap();
    filler
}
