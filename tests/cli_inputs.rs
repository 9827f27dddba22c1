//! The command line reads bounded input: a value or a document over its limit is
//! INVALID_ARGUMENT after reading at most the limit + 1 bytes, and a directory given as a file
//! is INVALID_ARGUMENT. Each run is a process in a temporary directory with a clean
//! environment and an address-space limit, so an unbounded read fails instead of eating the
//! machine's memory.

use std::fs::File;
use std::io::{Seek, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use tbsecrets::placeholder::MAX_DOCUMENT_BYTES;
use tbsecrets::ErrorCode;
use tempfile::TempDir;

const ENV_VARS: [&str; 4] = [
    "TBS_MASTER_KEY",
    "TBS_MASTER_KEY_FILE",
    "TBS_STORE",
    "TBS_TENANT",
];

/// The defaults the CLI runs with.
const MAX_TEXT_CHARS: usize = tbsecrets::model::DEFAULT_MAX_TEXT_CHARS;
const MAX_FILE_BYTES: usize = tbsecrets::model::DEFAULT_MAX_FILE_BYTES;

/// The most memory a run may map: far more than bounded reads need (a 64 MiB document), far
/// less than an unbounded read of `/dev/zero` reaches.
const ADDRESS_SPACE_LIMIT: libc::rlim_t = 1 << 30;

/// What one run printed and returned.
struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "failed: {}", self.stderr);
        std::str::from_utf8(&self.stdout).expect("stdout is UTF-8")
    }

    /// Asserts INVALID_ARGUMENT: its exit status, nothing on stdout, one stderr line naming
    /// the code and containing every one of `words`.
    #[track_caller]
    fn invalid(&self, words: &[&str]) {
        let code = ErrorCode::InvalidArgument;
        assert_eq!(self.code, code.as_i32(), "stderr {:?}", self.stderr);
        assert!(self.stdout.is_empty(), "stdout not empty");
        let line = self.stderr.trim_end();
        assert!(!line.contains('\n'), "stderr is not one line: {line:?}");
        assert!(line.contains(code.as_str()), "{line:?}");
        for word in words {
            assert!(line.contains(word), "{line:?} does not say {word:?}");
        }
    }
}

struct Cli {
    dir: TempDir,
    store: PathBuf,
}

impl Cli {
    /// A new store (`init`) in a new temporary directory.
    fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store.db");
        let cli = Cli { dir, store };
        cli.run(&["init"], Stdio::null()).ok();
        cli
    }

    fn run(&self, args: &[&str], stdin: Stdio) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tbsecrets"));
        for var in ENV_VARS {
            cmd.env_remove(var);
        }
        cmd.current_dir(self.dir.path())
            .arg("--store")
            .arg(&self.store)
            .args(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: ADDRESS_SPACE_LIMIT,
                    rlim_max: ADDRESS_SPACE_LIMIT,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let output = cmd.output().expect("run tbsecrets");
        Run {
            code: output
                .status
                .code()
                .unwrap_or_else(|| panic!("killed: {:?}", output.status)),
            stdout: output.stdout,
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    /// Runs with stdin read from a regular file holding `bytes`; also returns how many bytes
    /// of it the process consumed (the file offset it shares with the process).
    fn run_with_stdin_file(&self, args: &[&str], bytes: &[u8]) -> (Run, u64) {
        let path = self.dir.path().join("stdin.bin");
        let mut file = File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        file.write_all(bytes).unwrap();
        file.rewind().unwrap();
        let run = self.run(args, Stdio::from(file.try_clone().unwrap()));
        let consumed = file.stream_position().unwrap();
        (run, consumed)
    }

    fn write_file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn reveal(&self, name: &str) -> Vec<u8> {
        let run = self.run(&["reveal", name], Stdio::null());
        assert_eq!(run.code, 0, "reveal {name} failed: {}", run.stderr);
        run.stdout
    }
}

#[test]
fn put_from_stdin_stops_reading_one_byte_past_the_limit() {
    let cli = Cli::new();
    let big = vec![b'a'; 4 * MAX_FILE_BYTES];

    let (run, consumed) = cli.run_with_stdin_file(&["put", "--type", "file", "blob"], &big);
    run.invalid(&["larger than the limit", &format!("{MAX_FILE_BYTES} bytes")]);
    assert_eq!(consumed, MAX_FILE_BYTES as u64 + 1);

    // TEXT: 4 bytes per character, plus a typed line break.
    let text_bound = MAX_TEXT_CHARS * 4 + 2;
    let (run, consumed) = cli.run_with_stdin_file(&["put", "token"], &big);
    run.invalid(&[&format!("{MAX_TEXT_CHARS} characters")]);
    assert_eq!(consumed, text_bound as u64 + 1);

    // Nothing was stored.
    assert_eq!(
        cli.run(&["list", "--json"], Stdio::null()).ok().trim(),
        "[]"
    );
}

#[test]
fn put_from_dev_zero_is_invalid_argument() {
    let cli = Cli::new();
    for args in [
        &["put", "--type", "file", "zeros", "--file", "/dev/zero"][..],
        &["put", "zeros", "--file", "/dev/zero"],
    ] {
        cli.run(args, Stdio::null())
            .invalid(&["/dev/zero", "larger than the limit"]);
    }
    let dev_zero = File::open("/dev/zero").unwrap();
    cli.run(&["put", "--type", "file", "zeros"], Stdio::from(dev_zero))
        .invalid(&["stdin", "larger than the limit"]);
}

#[test]
fn values_at_the_limit_are_accepted_and_one_byte_more_is_not() {
    let cli = Cli::new();
    let exact = common_bytes(MAX_FILE_BYTES);
    let path = cli.write_file("exact.bin", &exact);
    let args = ["put", "--type", "file", "pem", "--file", &path];
    assert_eq!(
        cli.run(&args, Stdio::null()).ok(),
        "created secret 'pem' (TEXT_FILE) version 1\n"
    );
    assert!(cli.reveal("pem") == exact, "value changed");

    let over = common_bytes(MAX_FILE_BYTES + 1);
    let path = cli.write_file("over.bin", &over);
    cli.run(&["put", "pem", "--file", &path], Stdio::null())
        .invalid(&["larger than the limit", "TEXT_FILE"]);

    // The longest TEXT in bytes: every character 4 bytes, and a CRLF line break.
    let longest = "🔑".repeat(MAX_TEXT_CHARS);
    let (run, _) = cli.run_with_stdin_file(&["put", "key"], format!("{longest}\r\n").as_bytes());
    assert_eq!(run.ok(), "created secret 'key' (TEXT) version 1\n");
    assert_eq!(cli.reveal("key"), longest.as_bytes());
    // One character more is the store's own error, not the read bound's.
    let (run, _) = cli.run_with_stdin_file(&["put", "key"], format!("{longest}é").as_bytes());
    run.invalid(&["characters long"]);
}

#[test]
fn a_directory_given_as_a_file_is_invalid_argument() {
    let cli = Cli::new();
    let dir = cli.dir.path().to_str().unwrap().to_owned();
    cli.run(&["put", "x", "--file", &dir], Stdio::null())
        .invalid(&["directory"]);
    cli.run(&["refs", &dir], Stdio::null()).invalid(&[&dir]);
    cli.run(&["resolve", &dir], Stdio::null()).invalid(&[&dir]);
}

#[test]
fn documents_over_the_cap_are_invalid_argument() {
    let cli = Cli::new();
    cli.run(&["refs", "/dev/zero"], Stdio::null())
        .invalid(&["/dev/zero", &MAX_DOCUMENT_BYTES.to_string()]);
    cli.run(&["resolve", "/dev/zero"], Stdio::null())
        .invalid(&[&MAX_DOCUMENT_BYTES.to_string()]);
    // A large document under the cap is read (it has no placeholder).
    let doc = cli.write_file("big.txt", &vec![b' '; 1024 * 1024]);
    assert!(cli.run(&["refs", &doc], Stdio::null()).ok().is_empty());
}

/// `len` bytes of every value.
fn common_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}
