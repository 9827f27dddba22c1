//! The CLI's process hardening and master-key sources (issues 12 and 19): core dumps off by
//! default, the key from a descriptor (`--master-key-fd`) or stdin (`--master-key-stdin`), and
//! an all-zero key refused from every source.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tbsecrets::{ErrorCode, MasterKey};

/// An all-zero 32-byte key in base64.
const ZERO_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

struct Cli {
    _dir: tempfile::TempDir,
    store: PathBuf,
    key: MasterKey,
}

impl Cli {
    /// A store created with a key given on stdin (no key file is written).
    fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("s.db");
        let cli = Cli {
            store,
            key: MasterKey::generate(),
            _dir: dir,
        };
        let out = cli.run(
            &["--master-key-stdin", "init"],
            Some(cli.key_text().as_bytes()),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            !key_file_of(&cli.store).exists(),
            "a given key is not written"
        );
        cli
    }

    fn key_text(&self) -> String {
        self.key.to_base64().as_str().to_owned()
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tbsecrets"));
        for var in [
            "TBS_MASTER_KEY",
            "TBS_MASTER_KEY_FILE",
            "TBS_STORE",
            "TBS_TENANT",
        ] {
            cmd.env_remove(var);
        }
        cmd.arg("--store").arg(&self.store);
        cmd
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        run(self.cmd().args(args), stdin)
    }
}

fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        // The CLI may exit before reading (a usage error); that is what the test checks.
        let _ = pipe.write_all(bytes);
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn key_file_of(store: &Path) -> PathBuf {
    let mut p = store.as_os_str().to_owned();
    p.push(".key");
    p.into()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn fails_with(out: &Output, code: ErrorCode, text: &str) {
    assert_eq!(out.status.code(), Some(code.as_i32()), "{}", stderr(out));
    assert!(out.stdout.is_empty());
    let err = stderr(out);
    assert!(err.contains(code.as_str()) && err.contains(text), "{err}");
}

#[test]
fn key_from_stdin_opens_the_store() {
    let cli = Cli::new();
    let put = cli.run(
        &["--master-key-stdin", "put", "pw", "--file", "/dev/null"],
        Some(cli.key_text().as_bytes()),
    );
    assert!(put.status.success(), "{}", stderr(&put));
    let list = cli.run(
        &["--master-key-stdin", "list"],
        Some(cli.key_text().as_bytes()),
    );
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(String::from_utf8_lossy(&list.stdout).contains("pw"));

    let wrong = MasterKey::generate();
    let out = cli.run(
        &["--master-key-stdin", "list"],
        Some(wrong.to_base64().as_bytes()),
    );
    fails_with(&out, ErrorCode::WrongMasterKey, "");
    // stdin cannot carry both the key and a value.
    let out = cli.run(
        &["--master-key-stdin", "put", "x"],
        Some(cli.key_text().as_bytes()),
    );
    fails_with(&out, ErrorCode::InvalidArgument, "--file");
    let out = cli.run(
        &["--master-key-fd", "0", "put", "x"],
        Some(cli.key_text().as_bytes()),
    );
    fails_with(&out, ErrorCode::InvalidArgument, "--file");
    let out = cli.run(&["--master-key-stdin", "list"], Some(b"not a key"));
    fails_with(&out, ErrorCode::InvalidArgument, "--master-key-stdin");
    assert!(!stderr(&out).contains("not a key"));
}

#[test]
fn key_from_a_descriptor_opens_the_store() {
    let cli = Cli::new();
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("key.b64");
    std::fs::write(&key_path, format!("{}\n", cli.key_text())).unwrap();
    let key_file = std::fs::File::open(&key_path).unwrap();
    let fd = key_file.as_raw_fd();
    let mut cmd = cli.cmd();
    cmd.args(["--master-key-fd", "7", "list"]);
    // SAFETY: dup2 is async-signal-safe; fd stays open in the parent until after spawn.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(fd, 7) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run(&mut cmd, None);
    assert!(out.status.success(), "{}", stderr(&out));

    let out = cli.run(&["--master-key-fd", "9", "list"], None);
    fails_with(&out, ErrorCode::InvalidArgument, "not open");
    let out = cli.run(&["--master-key-fd", "1", "list"], None);
    fails_with(&out, ErrorCode::InvalidArgument, "--master-key-fd 1");
    let out = cli.run(
        &["--master-key-fd", "3", "--master-key-stdin", "list"],
        None,
    );
    fails_with(&out, ErrorCode::InvalidArgument, "cannot be used with");
}

#[test]
fn all_zero_key_is_refused_from_every_source() {
    let cli = Cli::new();
    let out = cli.run(&["--master-key-stdin", "list"], Some(ZERO_KEY.as_bytes()));
    fails_with(&out, ErrorCode::InvalidArgument, "all zero");
    let out = run(cli.cmd().env("TBS_MASTER_KEY", ZERO_KEY).arg("list"), None);
    fails_with(&out, ErrorCode::InvalidArgument, "all zero");
    let dir = tempfile::tempdir().unwrap();
    let zero_file = dir.path().join("zero.key");
    std::fs::write(&zero_file, ZERO_KEY).unwrap();
    std::fs::set_permissions(
        &zero_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let out = cli.run(&["--key-file", zero_file.to_str().unwrap(), "list"], None);
    fails_with(&out, ErrorCode::InvalidArgument, "all zero");
    let out = run(
        cli.cmd().env("TBS_MASTER_KEY_FILE", &zero_file).arg("list"),
        None,
    );
    fails_with(&out, ErrorCode::InvalidArgument, "all zero");
    // Nor can a new store be made with one.
    let fresh = dir.path().join("new.db");
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_tbsecrets"))
            .env_remove("TBS_MASTER_KEY_FILE")
            .env("TBS_MASTER_KEY", ZERO_KEY)
            .arg("--store")
            .arg(&fresh)
            .arg("init"),
        None,
    );
    fails_with(&out, ErrorCode::InvalidArgument, "all zero");
    assert!(!fresh.exists());
}

/// Core file size limits ("soft hard") of a process, from /proc/PID/limits.
fn core_limits(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max core file size"))?;
    let fields: Vec<&str> = line["Max core file size".len()..]
        .split_whitespace()
        .collect();
    Some(format!("{} {}", fields.first()?, fields.get(1)?))
}

#[test]
fn the_cli_disables_core_dumps() {
    let cli = Cli::new();
    let mut cmd = cli.cmd();
    cmd.args(["--master-key-stdin", "list"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The child starts with core dumps allowed, so only the CLI can have turned them off.
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let allow = libc::rlimit {
                rlim_cur: libc::RLIM_INFINITY,
                rlim_max: libc::RLIM_INFINITY,
            };
            let fallback = libc::rlimit {
                rlim_cur: 1 << 20,
                rlim_max: 1 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_CORE, &allow) != 0
                && libc::setrlimit(libc::RLIMIT_CORE, &fallback) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    // The CLI hardens itself before it reads the key, and blocks on stdin until the key
    // arrives: wait (bounded) until its limits show the change, while it is still running.
    // Only once /proc/PID/exe is the CLI has the pre-exec limit been applied.
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_tbsecrets")).unwrap();
    let watchdog = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen = None;
    while std::time::Instant::now() < watchdog {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        let running_cli = std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|p| p == exe);
        if running_cli {
            seen = core_limits(pid);
            if seen.as_deref() == Some("0 0") {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(cli.key_text().as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        seen.as_deref(),
        Some("0 0"),
        "RLIMIT_CORE of the running CLI (soft hard)"
    );
}
