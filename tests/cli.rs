//! The `tbsecrets` command line, run as a process in a temporary directory with a clean
//! environment.

mod common;

use serde_json::Value;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tbsecrets::{ErrorCode, MasterKey, SecretStorage, SecretType, StorageOptions};
use tempfile::TempDir;

const ENV_VARS: [&str; 4] = [
    "TBS_MASTER_KEY",
    "TBS_MASTER_KEY_FILE",
    "TBS_STORE",
    "TBS_TENANT",
];

struct Cli {
    dir: TempDir,
    store: PathBuf,
}

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
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }

    fn stdout_text(&self) -> &str {
        std::str::from_utf8(&self.stdout).expect("stdout is UTF-8")
    }

    /// Asserts success and returns stdout as text.
    #[track_caller]
    fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "failed: {}", self.stderr);
        self.stdout_text()
    }

    /// Asserts the error convention: exit status = code number, nothing on stdout, one line on
    /// stderr naming the code. Returns the stderr line.
    #[track_caller]
    fn fails_with(&self, code: ErrorCode) -> &str {
        assert_eq!(
            self.code,
            code.as_i32(),
            "expected {code} ({}), got {}: stderr {:?} stdout {:?}",
            code.as_i32(),
            self.code,
            self.stderr,
            String::from_utf8_lossy(&self.stdout)
        );
        assert!(
            self.stdout.is_empty(),
            "stdout not empty: {:?}",
            self.stdout_text()
        );
        let line = self.stderr.strip_suffix('\n').unwrap_or(&self.stderr);
        assert!(
            !line.is_empty() && !line.contains('\n'),
            "stderr is not one line: {:?}",
            self.stderr
        );
        assert!(
            line.contains(code.as_str()),
            "stderr does not name {code}: {line:?}"
        );
        line
    }
}

impl Cli {
    fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store.db");
        Cli { dir, store }
    }

    /// The binary with a clean environment, run in the temporary directory (no --store).
    fn bare(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tbsecrets"));
        for var in ENV_VARS {
            cmd.env_remove(var);
        }
        cmd.current_dir(self.dir.path()).stdin(Stdio::null());
        cmd
    }

    /// The binary with `--store` pointing at this test's store.
    fn cmd(&self) -> Command {
        let mut cmd = self.bare();
        cmd.arg("--store").arg(&self.store);
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        run(self.cmd().args(args), None)
    }

    fn run_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        run(self.cmd().args(args), Some(stdin))
    }

    fn key_file(&self) -> PathBuf {
        let mut p = self.store.as_os_str().to_owned();
        p.push(".key");
        p.into()
    }

    fn init(&self) -> Run {
        let r = self.run(&["init"]);
        r.ok();
        r
    }

    /// The bytes `reveal` prints (which need not be text).
    fn reveal(&self, name: &str) -> Vec<u8> {
        let r = self.run(&["reveal", name]);
        assert_eq!(r.code, 0, "reveal {name} failed: {}", r.stderr);
        assert!(
            r.stderr.is_empty(),
            "reveal printed on stderr: {}",
            r.stderr
        );
        r.stdout
    }

    fn write_file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// The master key `init` wrote beside the store.
    fn master_key(&self) -> MasterKey {
        tbsecrets::read_key_file(&self.key_file()).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let r = self.run(args);
        serde_json::from_str(r.ok()).unwrap_or_else(|e| panic!("{args:?}: not JSON: {e}"))
    }
}

fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Run {
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run tbsecrets");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // A command that fails before reading its input closes the pipe early.
        if let Err(e) = pipe.write_all(bytes) {
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe,
                "writing stdin: {e}"
            );
        }
    }
    Run::from(child.wait_with_output().unwrap())
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_writes_a_private_key_file_and_refuses_to_run_twice() {
    let cli = Cli::new();
    let r = cli.init();
    let out = r.ok();
    let key_file = cli.key_file();
    assert_eq!(
        out,
        format!(
            "initialized store {} with a new master key in key file {}\n",
            cli.store.display(),
            key_file.display()
        ),
        "init must say where the store and the key are"
    );
    assert!(
        r.stderr.contains("warning"),
        "no warning about the key beside the store: {:?}",
        r.stderr
    );
    assert_eq!(mode(&key_file), 0o600, "key file mode");
    assert_eq!(mode(&cli.store), 0o600, "store file mode");

    // The key file holds the store's master key.
    let key_text = std::fs::read_to_string(&key_file).unwrap();
    let key = MasterKey::from_base64(&key_text).unwrap();
    let options = StorageOptions {
        create_if_missing: false,
        ..StorageOptions::with_master_key(key)
    };
    SecretStorage::open(&cli.store, options).unwrap();

    let again = cli.run(&["init"]);
    let line = again.fails_with(ErrorCode::AlreadyExists);
    assert!(line.contains("already exists"), "{line}");
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap(),
        key_text,
        "the key file changed"
    );
}

#[test]
fn init_with_a_configured_key_writes_no_key_file() {
    let cli = Cli::new();
    let key = MasterKey::generate();
    let r = run(
        cli.cmd()
            .arg("init")
            .env("TBS_MASTER_KEY", key.to_base64().as_str()),
        None,
    );
    let out = r.ok();
    assert!(!out.contains("key file"), "{out:?}");
    assert!(out.contains(&cli.store.display().to_string()), "{out:?}");
    assert!(!cli.key_file().exists());
    // Commands find the key in the environment.
    let put = run(
        cli.cmd()
            .args(["put", "n"])
            .env("TBS_MASTER_KEY", key.to_base64().as_str()),
        Some(b"v\n"),
    );
    put.ok();
    let store = SecretStorage::open(&cli.store, StorageOptions::with_master_key(key)).unwrap();
    assert_eq!(store.get("default", "n").unwrap().as_bytes(), b"v");
    // Without it, there is no key at all.
    let line = cli
        .run(&["list"])
        .fails_with(ErrorCode::InvalidArgument)
        .to_owned();
    assert!(line.contains("no master key"), "{line}");
}

#[test]
fn text_values_lose_one_trailing_newline_and_reveal_prints_exactly_the_value() {
    let cli = Cli::new();
    cli.init();
    let cases: [(&str, &[u8], &[u8]); 6] = [
        ("plain", b"s3cr3t\n", b"s3cr3t"),
        ("crlf", b"pass word\r\n", b"pass word"),
        ("no-newline", b"exact", b"exact"),
        ("two-newlines", b"line\n\n", b"line\n"),
        ("inner", b"a\nb\n", b"a\nb"),
        ("unicode", "ключ 🔑\n".as_bytes(), "ключ 🔑".as_bytes()),
    ];
    for (name, input, stored) in cases {
        assert_eq!(
            cli.run_stdin(&["put", name], input).ok(),
            format!("created secret '{name}' (TEXT) version 1\n")
        );
        assert_eq!(cli.reveal(name), stored, "{name}");
    }
    // The same stripping applies to a TEXT value read from a file.
    let file = cli.write_file("pw.txt", b"from file\n");
    cli.run(&["put", "from-file", "--file", file.to_str().unwrap()])
        .ok();
    assert_eq!(cli.reveal("from-file"), b"from file");

    let store = SecretStorage::open(
        &cli.store,
        StorageOptions::with_master_key(cli.master_key()),
    )
    .unwrap();
    assert_eq!(
        store.info("default", "plain").unwrap().secret_type,
        SecretType::Text
    );
}

#[test]
fn text_file_values_keep_their_exact_bytes() {
    let cli = Cli::new();
    cli.init();
    let mut bytes =
        b"-----BEGIN CERTIFICATE-----\r\nMIIB\x00\xff\n-----END CERTIFICATE-----\n\n".to_vec();
    bytes.extend(common::pseudo_random_bytes(100_000, 11));
    bytes.push(b'\n');
    let file = cli.write_file("cert.pem", &bytes);
    let out = cli.run(&[
        "put",
        "cert",
        "--type",
        "text-file",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.ok(), "created secret 'cert' (TEXT_FILE) version 1\n");
    assert!(cli.reveal("cert") == bytes, "file bytes changed");

    // From stdin, and with the `file` alias.
    let small = b"\x00\x01 binary \xfe\xff\n";
    cli.run_stdin(&["put", "--type", "file", "blob"], small)
        .ok();
    assert_eq!(cli.reveal("blob"), small);

    // A new version of an existing file needs no --type and keeps the bytes exact.
    assert_eq!(
        cli.run_stdin(&["put", "blob"], b"v2\n").ok(),
        "updated secret 'blob' to version 2\n"
    );
    assert_eq!(cli.reveal("blob"), b"v2\n");
    let info = cli.json(&["info", "blob", "--json"]);
    assert_eq!(info["type"], "TEXT_FILE");
}

#[test]
fn put_on_an_existing_secret_writes_a_version_and_cannot_change_the_type() {
    let cli = Cli::new();
    cli.init();
    assert_eq!(
        cli.run_stdin(&["put", "api", "--description", "first"], b"v1\n")
            .ok(),
        "created secret 'api' (TEXT) version 1\n"
    );
    assert_eq!(
        cli.run_stdin(&["put", "api"], b"v2\n").ok(),
        "updated secret 'api' to version 2\n"
    );
    assert_eq!(
        cli.run_stdin(&["put", "api", "--type", "text"], b"v3\n")
            .ok(),
        "updated secret 'api' to version 3\n"
    );
    assert_eq!(cli.reveal("api"), b"v3");
    let info = cli.json(&["info", "api", "--json"]);
    assert_eq!(
        info["description"], "first",
        "a put without --description keeps it"
    );
    cli.run_stdin(&["put", "api", "--description", "second"], b"v4\n")
        .ok();
    let info = cli.json(&["info", "api", "--json"]);
    assert_eq!(
        (info["description"].as_str(), info["version"].as_u64()),
        (Some("second"), Some(4))
    );

    let r = cli.run_stdin(&["put", "api", "--type", "text-file"], b"binary\n");
    let line = r.fails_with(ErrorCode::TypeMismatch);
    assert!(line.contains("api") && line.contains("TEXT"), "{line}");
    assert_eq!(cli.reveal("api"), b"v4");
    assert_eq!(cli.json(&["info", "api", "--json"])["version"], 4);
}

#[test]
fn listing_info_and_history_never_show_values() {
    let cli = Cli::new();
    cli.init();
    const VALUE: &[u8] = b"Value-Canary-93be";
    cli.run_stdin(&["put", "db-password", "--description", "main db"], VALUE)
        .ok();
    cli.run_stdin(&["put", "db-password"], b"Value-Canary-93be-v2")
        .ok();
    cli.run_stdin(&["put", "ca", "--type", "text-file"], VALUE)
        .ok();
    cli.run_stdin(&["put", "api-token"], VALUE).ok();
    cli.run(&["reveal", "api-token"]).ok();

    let list = cli.json(&["list", "--json"]);
    let items = list.as_array().expect("list --json is an array");
    let names: Vec<&str> = items.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["api-token", "ca", "db-password"]);
    let db = &items[2];
    assert_eq!(db["tenant"], "default");
    assert_eq!(db["type"], "TEXT");
    assert_eq!(db["description"], "main db");
    assert_eq!(db["version"], 2);
    for field in ["created_at", "updated_at", "value_updated_at"] {
        assert!(
            db[field].as_i64().is_some_and(|t| t > 1_600_000_000_000),
            "{field}: {db}"
        );
    }
    assert_eq!(db["use_count"], 0);
    assert!(db["last_used_at"].is_null());
    assert_eq!(items[1]["type"], "TEXT_FILE");
    assert_eq!(items[0]["use_count"], 1, "the reveal counts as a use");
    assert!(items[0]["last_used_at"].is_i64());
    let fields: Vec<&String> = db.as_object().unwrap().keys().collect();
    assert!(
        !fields
            .iter()
            .any(|k| k.contains("value") && *k != "value_updated_at"),
        "{fields:?}"
    );

    let filtered = cli.json(&["list", "--json", "--filter", "db"]);
    assert_eq!(filtered.as_array().unwrap().len(), 1);
    assert_eq!(cli.json(&["list", "--all", "--json"]), list);

    // Paging by cursor: one page, the next cursor in the JSON and in the table.
    let first = cli.json(&["list", "--json", "--limit", "2"]);
    let names = |page: &serde_json::Value| -> Vec<String> {
        let items = page["items"].as_array().expect("a page object");
        items
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&first), ["api-token", "ca"]);
    assert_eq!(
        (&first["total"], &first["has_more"], &first["next_after"]),
        (
            &serde_json::json!(3),
            &serde_json::json!(true),
            &serde_json::json!("ca")
        )
    );
    let last = cli.json(&["list", "--json", "--limit", "2", "--after", "ca"]);
    assert_eq!(names(&last), ["db-password"]);
    assert!(last["next_after"].is_null() && last["has_more"] == false);
    let table = cli
        .run(&["list", "--limit", "1", "--after", "api-token"])
        .ok()
        .to_owned();
    assert!(
        table.contains("ca ") && !table.contains("db-password ") && !table.contains("api-token")
    );
    assert!(table.ends_with("next: --after ca\n"), "{table}");
    let end = cli
        .run(&["list", "--limit", "5", "--after", "ca"])
        .ok()
        .to_owned();
    assert!(
        end.contains("db-password") && !end.contains("next:"),
        "{end}"
    );
    cli.run(&["list", "--limit", "0"])
        .fails_with(ErrorCode::InvalidArgument);
    cli.run(&["list", "--limit", "2", "--all"])
        .fails_with(ErrorCode::InvalidArgument);

    let info = cli.json(&["info", "ca", "--json"]);
    assert_eq!(
        (info["name"].as_str(), info["type"].as_str()),
        (Some("ca"), Some("TEXT_FILE"))
    );
    assert_eq!(info["version"], 1);

    let history = cli.json(&["history", "db-password", "--json"]);
    let history = history.as_array().unwrap();
    let versions: Vec<(u64, bool)> = history
        .iter()
        .map(|h| {
            (
                h["version"].as_u64().unwrap(),
                h["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(versions, [(2, true), (1, false)]);
    assert!(history[0]["created_at"].is_i64());

    // No output of any metadata command contains a value, in JSON or as a table.
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["info", "db-password"],
        &["info", "db-password", "--json"],
        &["info", "ca"],
        &["history", "db-password"],
        &["history", "db-password", "--json"],
    ] {
        let r = cli.run(args);
        let out = r.ok();
        assert!(
            !out.contains("Value-Canary"),
            "{args:?} shows a value: {out}"
        );
        assert!(!r.stderr.contains("Value-Canary"));
    }
    let table = cli.run(&["list"]);
    for name in ["api-token", "ca", "db-password", "main db", "TEXT_FILE"] {
        assert!(
            table.ok().contains(name),
            "{name} missing from {}",
            table.ok()
        );
    }
    let info = cli.run(&["info", "db-password"]);
    assert!(info.ok().contains("version:       2"), "{}", info.ok());
}

#[test]
fn rollback_and_rm() {
    let cli = Cli::new();
    cli.init();
    cli.run_stdin(&["put", "k"], b"first\n").ok();
    cli.run_stdin(&["put", "k"], b"second\n").ok();
    assert_eq!(
        cli.run(&["rollback", "k", "1"]).ok(),
        "rolled secret 'k' back to version 1: now version 3\n"
    );
    assert_eq!(cli.reveal("k"), b"first");
    let versions: Vec<u64> = cli
        .json(&["history", "k", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [3, 2, 1]);
    let line = cli
        .run(&["rollback", "k", "9"])
        .fails_with(ErrorCode::NotFound)
        .to_owned();
    assert!(line.contains("version 9"), "{line}");

    let said = cli.run(&["rm", "k"]).ok().to_owned();
    assert!(
        said.starts_with("deleted secret 'k': recoverable with `tbsecrets undelete k` until 20")
            && said.ends_with("; `tbsecrets destroy k --yes` erases it now\n"),
        "{said}"
    );
    let line = cli
        .run(&["reveal", "k"])
        .fails_with(ErrorCode::NotFound)
        .to_owned();
    assert!(line.contains("'k'"), "{line}");
    cli.run(&["rm", "k"]).fails_with(ErrorCode::NotFound);
    cli.run(&["history", "k"]).fails_with(ErrorCode::NotFound);
    assert_eq!(cli.json(&["list", "--json"]).as_array().unwrap().len(), 0);
}

#[test]
fn undelete_destroy_and_list_deleted() {
    let cli = Cli::new();
    cli.init();
    cli.run_stdin(&["put", "k"], b"first\n").ok();
    cli.run_stdin(&["put", "k"], b"second\n").ok();
    cli.run_stdin(&["put", "other"], b"x").ok();
    cli.run(&["delete", "k"]).ok();
    let names = |args: &[&str]| -> Vec<String> {
        cli.json(args)
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&["list", "--json"]), ["other"]);
    let deleted = cli.json(&["list", "--deleted", "--json"]);
    assert_eq!(deleted[0]["name"], "k");
    assert!(deleted[0]["deleted_at"].as_i64().is_some(), "{deleted}");
    let table = cli.run(&["list", "--deleted"]).ok().to_owned();
    assert!(
        table.starts_with("NAME") && table.contains("DELETED"),
        "{table}"
    );
    let line = cli
        .run_stdin(&["put", "k"], b"new")
        .fails_with(ErrorCode::AlreadyExists)
        .to_owned();
    assert!(line.contains("undelete"), "{line}");
    assert_eq!(cli.run(&["undelete", "k"]).ok(), "undeleted secret 'k'\n");
    assert_eq!(cli.reveal("k"), b"second");
    assert_eq!(
        cli.json(&["history", "k", "--json"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    cli.run(&["undelete", "k"]).fails_with(ErrorCode::NotFound);
    // destroy needs --yes, and then nothing comes back.
    let line = cli
        .run(&["destroy", "k"])
        .fails_with(ErrorCode::InvalidArgument)
        .to_owned();
    assert!(line.contains("--yes"), "{line}");
    assert_eq!(cli.reveal("k"), b"second", "refused: nothing changed");
    let done = cli.json(&["destroy", "--yes", "k", "--json"]);
    assert_eq!(done["action"], "destroyed");
    cli.run(&["undelete", "k"]).fails_with(ErrorCode::NotFound);
    cli.run(&["reveal", "k"]).fails_with(ErrorCode::NotFound);
    assert!(names(&["list", "--deleted", "--json"]).is_empty());
    // A retention of 0 days: the next open erases what is deleted.
    cli.run(&["delete", "other"]).ok();
    assert_eq!(names(&["list", "--deleted", "--json"]), ["other"]);
    cli.run(&["--deleted-retention-days", "0", "list"]).ok();
    assert!(names(&["list", "--deleted", "--json"]).is_empty());
}

#[test]
fn errors_follow_the_exit_status_convention() {
    let cli = Cli::new();
    cli.init();
    cli.run_stdin(&["put", "exists"], b"value\n").ok();
    cli.run_stdin(&["put", "file", "--type", "text-file"], b"bytes")
        .ok();

    let too_long = format!("Leak-Canary-{}", "x".repeat(2100));
    /// Arguments, stdin, the expected code and words of the message.
    type Case<'a> = (Vec<&'a str>, Option<&'a [u8]>, ErrorCode, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["reveal", "missing"],
            None,
            ErrorCode::NotFound,
            "missing",
        ),
        (
            vec!["info", "missing"],
            None,
            ErrorCode::NotFound,
            "missing",
        ),
        (vec!["rm", "missing"], None, ErrorCode::NotFound, "missing"),
        (
            vec!["rollback", "exists", "7"],
            None,
            ErrorCode::NotFound,
            "version 7",
        ),
        (
            vec!["put", "a{b"],
            Some(b"v"),
            ErrorCode::InvalidArgument,
            "reserved",
        ),
        (
            vec!["put", "  "],
            Some(b"v"),
            ErrorCode::InvalidArgument,
            "whitespace",
        ),
        (
            vec!["put", "long"],
            Some(too_long.as_bytes()),
            ErrorCode::InvalidArgument,
            "2048",
        ),
        (
            vec!["put", "utf8"],
            Some(b"\xff\xfe"),
            ErrorCode::InvalidArgument,
            "UTF-8",
        ),
        (
            vec!["put", "exists", "--type", "file"],
            Some(b"v"),
            ErrorCode::TypeMismatch,
            "exists",
        ),
        (
            vec!["put", "file", "--type", "text"],
            Some(b"v"),
            ErrorCode::TypeMismatch,
            "file",
        ),
        (
            vec!["--tenant", "", "list"],
            None,
            ErrorCode::InvalidArgument,
            "tenant",
        ),
        (
            vec!["init"],
            None,
            ErrorCode::AlreadyExists,
            "already exists",
        ),
    ];
    for (args, stdin, code, words) in cases {
        let r = match stdin {
            Some(bytes) => cli.run_stdin(&args, bytes),
            None => cli.run(&args),
        };
        let line = r.fails_with(code);
        assert!(line.contains(words), "{args:?}: {line}");
        assert!(
            !line.contains("Leak-Canary"),
            "{args:?} echoes the value: {line}"
        );
    }
    // Nothing above changed the store.
    assert_eq!(cli.reveal("exists"), b"value");
    assert_eq!(cli.json(&["list", "--json"]).as_array().unwrap().len(), 2);

    // Command-line syntax errors are INVALID_ARGUMENT too, on one line like every error.
    let r = cli.run(&["put", "x", "--type", "blob"]);
    let line = r.fails_with(ErrorCode::InvalidArgument);
    assert!(line.contains("'blob'"), "{line}");
    let r = cli.run(&["no-such-command"]);
    let line = r.fails_with(ErrorCode::InvalidArgument);
    assert!(line.contains("no-such-command"), "{line}");
}

#[test]
fn a_missing_store_says_to_run_init() {
    let cli = Cli::new();
    for args in [&["list"][..], &["reveal", "x"], &["info", "x"]] {
        let line = cli.run(args).fails_with(ErrorCode::NotFound).to_owned();
        assert!(
            line.contains("does not exist") && line.contains("init"),
            "{line}"
        );
    }
    let r = cli.run_stdin(&["put", "x"], b"v\n");
    let line = r.fails_with(ErrorCode::NotFound);
    assert!(line.contains("init"), "{line}");
    assert!(!cli.store.exists(), "a failed command created the store");
}

#[test]
fn key_files_readable_by_others_are_refused() {
    let cli = Cli::new();
    let key = MasterKey::generate();
    let key_path = cli.dir.path().join("master.key");
    tbsecrets::write_key_file(&key_path, &key).unwrap();
    let key_arg = key_path.to_str().unwrap();
    run(cli.cmd().args(["--key-file", key_arg, "init"]), None).ok();
    assert!(
        !cli.key_file().exists(),
        "init with --key-file must not write another key"
    );
    run(
        cli.cmd().args(["--key-file", key_arg, "put", "n"]),
        Some(b"v\n"),
    )
    .ok();

    for loose in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(loose)).unwrap();
        let r = run(cli.cmd().args(["--key-file", key_arg, "reveal", "n"]), None);
        let line = r.fails_with(ErrorCode::InvalidArgument);
        assert!(line.contains("group or others"), "{loose:o}: {line}");
        // The same through the environment variable.
        let r = run(
            cli.cmd()
                .args(["reveal", "n"])
                .env("TBS_MASTER_KEY_FILE", &key_path),
            None,
        );
        assert!(r
            .fails_with(ErrorCode::InvalidArgument)
            .contains("group or others"));
    }
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = run(cli.cmd().args(["--key-file", key_arg, "reveal", "n"]), None);
    assert_eq!(r.ok(), "v");
    let r = run(
        cli.cmd()
            .args(["reveal", "n"])
            .env("TBS_MASTER_KEY_FILE", &key_path),
        None,
    );
    assert_eq!(r.ok(), "v");

    // The key file `init` writes beside a store is checked the same way.
    let other = Cli::new();
    other.init();
    std::fs::set_permissions(other.key_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(other
        .run(&["list"])
        .fails_with(ErrorCode::InvalidArgument)
        .contains("group or others"));
}

#[test]
fn a_wrong_master_key_exits_10_and_changes_nothing() {
    let cli = Cli::new();
    cli.init();
    cli.run_stdin(&["put", "n"], b"value\n").ok();
    let before = common::dump_store(&cli.store);
    let wrong = MasterKey::generate();
    let wrong_file = cli.dir.path().join("wrong.key");
    tbsecrets::write_key_file(&wrong_file, &wrong).unwrap();
    let attempts = [
        run(
            cli.cmd()
                .args(["reveal", "n"])
                .env("TBS_MASTER_KEY", wrong.to_base64().as_str()),
            None,
        ),
        run(
            cli.cmd()
                .args(["--key-file", wrong_file.to_str().unwrap(), "list"]),
            None,
        ),
        run(
            cli.cmd()
                .args(["put", "n"])
                .env("TBS_MASTER_KEY_FILE", &wrong_file),
            Some(b"overwrite\n"),
        ),
    ];
    for r in &attempts {
        assert_eq!(r.code, 10);
        r.fails_with(ErrorCode::WrongMasterKey);
    }
    assert_eq!(common::dump_store(&cli.store), before);
    assert_eq!(cli.reveal("n"), b"value");
}

#[test]
fn store_and_tenant_come_from_the_environment() {
    let cli = Cli::new();
    let with_env = |tenant: Option<&str>| {
        let mut cmd = cli.bare();
        cmd.env("TBS_STORE", &cli.store);
        if let Some(t) = tenant {
            cmd.env("TBS_TENANT", t);
        }
        cmd
    };
    run(with_env(None).arg("init"), None).ok();
    assert!(cli.store.exists(), "TBS_STORE was not used by init");
    assert!(!cli.dir.path().join("tbsecrets.db").exists());

    run(
        with_env(Some("tenant-x")).args(["put", "n"]),
        Some(b"x value\n"),
    )
    .ok();
    run(with_env(None).args(["put", "n"]), Some(b"default value\n")).ok();
    let out = run(with_env(Some("tenant-x")).args(["reveal", "n"]), None);
    assert_eq!(out.ok(), "x value");
    let out = run(with_env(None).args(["reveal", "n"]), None);
    assert_eq!(out.ok(), "default value");
    // The flag wins over the environment.
    let out = run(
        with_env(Some("tenant-x")).args(["--tenant", "default", "reveal", "n"]),
        None,
    );
    assert_eq!(out.ok(), "default value");
    let info: Value = serde_json::from_slice(
        &run(
            with_env(Some("tenant-x")).args(["info", "n", "--json"]),
            None,
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(info["tenant"], "tenant-x");
    run(with_env(Some("tenant-y")).args(["reveal", "n"]), None).fails_with(ErrorCode::NotFound);

    // The library sees the same tenants.
    let store = SecretStorage::open(
        &cli.store,
        StorageOptions::with_master_key(cli.master_key()),
    )
    .unwrap();
    assert_eq!(store.get("tenant-x", "n").unwrap().as_bytes(), b"x value");
    assert_eq!(
        store.get("default", "n").unwrap().as_bytes(),
        b"default value"
    );

    // Without TBS_STORE or --store, the default store in the working directory is used.
    let r = run(cli.bare().args(["list"]), None);
    assert!(r.fails_with(ErrorCode::NotFound).contains("tbsecrets.db"));
}

#[test]
fn type_names_are_accepted_in_any_case() {
    let cli = Cli::new();
    cli.init();
    let cases = [
        ("TEXT", "TEXT"),
        ("text", "TEXT"),
        ("Text", "TEXT"),
        ("TEXT_FILE", "TEXT_FILE"),
        ("text_file", "TEXT_FILE"),
        ("Text_File", "TEXT_FILE"),
        ("text-file", "TEXT_FILE"),
        ("FILE", "TEXT_FILE"),
        ("file", "TEXT_FILE"),
    ];
    for (i, (given, stored)) in cases.into_iter().enumerate() {
        let name = format!("s{i}");
        let out = cli.run_stdin(&["put", &name, "--type", given], b"v\n");
        assert_eq!(
            out.ok(),
            format!("created secret '{name}' ({stored}) version 1\n"),
            "--type {given}"
        );
        assert_eq!(
            cli.json(&["info", &name, "--json"])["type"],
            stored,
            "--type {given}"
        );
    }
    // An unknown type names the accepted ones, as the output prints them.
    let r = cli.run_stdin(&["put", "x", "--type", "binary"], b"v\n");
    let line = r.fails_with(ErrorCode::InvalidArgument);
    assert!(
        line.contains("'binary'") && line.contains("TEXT") && line.contains("TEXT_FILE"),
        "{line}"
    );
    // --format takes any case too.
    let doc = cli.write_file("doc.txt", b"${secret:s0}");
    let out = cli.run(&["resolve", doc.to_str().unwrap(), "--format", "TEXT"]);
    assert_eq!(out.ok(), "v");
}

#[test]
fn changing_commands_print_a_sentence_or_json_with_the_same_facts() {
    let cli = Cli::new();
    let init = cli.run(&["init", "--json"]);
    let init: Value = serde_json::from_str(init.ok()).unwrap();
    assert_eq!(init["store"], cli.store.to_str().unwrap());
    assert_eq!(init["key_file"], cli.key_file().to_str().unwrap());

    let created: Value = serde_json::from_str(
        cli.run_stdin(
            &["put", "db", "--json", "--description", "main"],
            b"Canary-1\n",
        )
        .ok(),
    )
    .unwrap();
    assert_eq!(
        (
            created["action"].as_str(),
            created["name"].as_str(),
            created["tenant"].as_str(),
            created["type"].as_str(),
            created["version"].as_u64(),
            created["description"].as_str()
        ),
        (
            Some("created"),
            Some("db"),
            Some("default"),
            Some("TEXT"),
            Some(1),
            Some("main")
        )
    );
    let updated: Value =
        serde_json::from_str(cli.run_stdin(&["put", "db", "--json"], b"Canary-2\n").ok()).unwrap();
    assert_eq!(
        (updated["action"].as_str(), updated["version"].as_u64()),
        (Some("updated"), Some(2))
    );
    let rolled = cli.json(&["rollback", "db", "1", "--json"]);
    assert_eq!(
        (
            rolled["action"].as_str(),
            rolled["restored_version"].as_u64(),
            rolled["version"].as_u64()
        ),
        (Some("rolled_back"), Some(1), Some(3))
    );
    assert_eq!(cli.reveal("db"), b"Canary-1");
    for out in [&created, &updated, &rolled] {
        assert!(!out.to_string().contains("Canary"), "a value in {out}");
    }

    let tenant = cli.json(&["rotate-tenant-key", "--json"]);
    assert_eq!(
        (
            tenant["action"].as_str(),
            tenant["tenant"].as_str(),
            tenant["versions"].as_u64()
        ),
        (Some("rotated_tenant_key"), Some("default"), Some(3))
    );
    assert!(tenant["key_id"].is_u64(), "{tenant}");

    let new_key = cli.dir.path().join("new.key");
    tbsecrets::write_key_file(&new_key, &MasterKey::generate()).unwrap();
    let rotated = cli.json(&[
        "--as",
        "SYS_ADMIN",
        "rotate-master-key",
        "--new-key-file",
        new_key.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        (rotated["action"].as_str(), rotated["new_key_file"].as_str()),
        (Some("rotated_master_key"), new_key.to_str())
    );
    // Every data key the tenant holds (the rotated-out one included) is rewrapped.
    assert!(
        rotated["keys"].as_u64().is_some_and(|k| k >= 1) && rotated["key_id"].is_u64(),
        "{rotated}"
    );
    std::fs::copy(&new_key, cli.key_file()).unwrap();

    let recovered = cli.json(&["recover", "--json"]);
    assert_eq!(
        (
            recovered["consistent"].as_bool(),
            recovered["accept_restore"].as_bool()
        ),
        (Some(true), Some(false))
    );
    assert_eq!(
        cli.run(&["recover"]).ok(),
        "the store is consistent with its anchor file and audit log: nothing to recover\n"
    );

    let deleted = cli.json(&["rm", "db", "--json"]);
    assert_eq!(
        (
            deleted["action"].as_str(),
            deleted["name"].as_str(),
            deleted["tenant"].as_str(),
            deleted["force"].as_bool()
        ),
        (Some("deleted"), Some("db"), Some("default"), Some(false))
    );
    // Recoverable for the default 30 days from its deletion time.
    let listed = cli.json(&["list", "--deleted", "--json"]);
    assert_eq!(
        deleted["recoverable_until"].as_i64(),
        listed[0]["deleted_at"]
            .as_i64()
            .map(|at| at + 30 * 86_400_000),
        "{deleted} {listed}"
    );
    assert_eq!(cli.json(&["list", "--json"]).as_array().unwrap().len(), 0);
}

#[test]
fn reveal_has_no_json_and_get_and_delete_are_its_aliases() {
    let cli = Cli::new();
    cli.init();
    cli.run_stdin(&["put", "k"], b"the value\n").ok();
    // --json would put the secret into a JSON document: refused as a usage error.
    let line = cli
        .run(&["reveal", "k", "--json"])
        .fails_with(ErrorCode::InvalidArgument)
        .to_owned();
    assert!(line.contains("--json"), "{line}");
    assert!(!line.contains("the value"), "{line}");
    // `get` is `reveal`: exactly the value, nothing else.
    assert_eq!(cli.run(&["get", "k"]).ok(), "the value");
    // With a retention of 0 a delete erases at once, and says so.
    assert_eq!(
        cli.run(&["--deleted-retention-days", "0", "delete", "k"])
            .ok(),
        "deleted secret 'k' and erased it (deleted retention 0)\n"
    );
    cli.run(&["get", "k"]).fails_with(ErrorCode::NotFound);
    assert_eq!(
        cli.json(&["list", "--deleted", "--json"]),
        serde_json::json!([])
    );
}

#[test]
fn usage_errors_keep_clap_details_on_their_one_line() {
    let cli = Cli::new();
    cli.init();
    let line = cli
        .run(&["put"])
        .fails_with(ErrorCode::InvalidArgument)
        .to_owned();
    assert!(
        line.contains("<NAME>"),
        "the missing argument is named: {line}"
    );
}

/// Every command a user can type; completions and the manual page must name each.
const COMMANDS: [&str; 22] = [
    "init",
    "put",
    "list",
    "info",
    "history",
    "get",
    "delete",
    "undelete",
    "destroy",
    "resolve",
    "migrate",
    "rotate-master-key",
    "rotate-tenant-key",
    "unused",
    "stale",
    "references",
    "where-used",
    "audit",
    "rollback",
    "recover",
    "completions",
    "man",
];

#[test]
fn completion_scripts_name_every_command() {
    let cli = Cli::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell", "BASH"] {
        let r = run(cli.bare().args(["completions", shell]), None);
        let script = r.ok();
        assert!(r.stderr.is_empty(), "{shell}: {}", r.stderr);
        for command in COMMANDS {
            assert!(script.contains(command), "{shell}: no {command}");
        }
        // Options too (fish writes them without the dashes).
        assert!(script.contains("master-key-fd"), "{shell}: no options");
    }
    let bash = run(cli.bare().args(["completions", "bash"]), None);
    let bash = bash.ok();
    assert!(bash.contains("complete -F _tbsecrets"), "not a bash script");
    for value in ["TEXT", "TEXT_FILE"] {
        assert!(bash.contains(value), "the --type values: no {value}");
    }
    run(cli.bare().args(["completions", "cmd.exe"]), None).fails_with(ErrorCode::InvalidArgument);
}

#[test]
fn manual_pages_render_for_the_program_and_each_command() {
    let cli = Cli::new();
    let r = run(cli.bare().arg("man"), None);
    let page = r.ok().to_owned();
    assert!(page.contains(".TH tbsecrets 1"), "no title: {page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for command in COMMANDS {
        assert!(
            page.contains(&format!("tbsecrets\\-{}", command.replace('-', "\\-"))),
            "the page does not list {command}"
        );
    }
    assert!(page.contains("TBS_STORE"), "environment variables listed");

    let put = run(cli.bare().args(["man", "put"]), None);
    let put = put.ok();
    assert!(put.contains(".TH tbsecrets-put 1"), "{put}");
    assert!(
        put.contains("\\-\\-type") && put.contains("TEXT_FILE"),
        "{put}"
    );
    assert!(
        put.contains("\\-\\-store"),
        "global options on a command's page"
    );
    let verify = run(cli.bare().args(["man", "audit", "verify"]), None);
    assert!(verify.ok().contains(".TH tbsecrets-audit-verify 1"));
    let line = run(cli.bare().args(["man", "nope"]), None)
        .fails_with(ErrorCode::InvalidArgument)
        .to_owned();
    assert!(
        line.contains("'nope'") && line.contains("rotate-tenant-key"),
        "{line}"
    );

    // With man(1) installed, the page renders as a manual.
    let file = cli.write_file("tbsecrets.1", page.as_bytes());
    if let Ok(shown) = Command::new("man")
        .arg("-l")
        .arg(&file)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
    {
        assert!(shown.status.success(), "man -l failed: {:?}", shown);
        let text = String::from_utf8_lossy(&shown.stdout);
        for section in ["NAME", "SYNOPSIS", "OPTIONS", "SUBCOMMANDS"] {
            assert!(
                text.contains(section),
                "rendered page lacks {section}: {text}"
            );
        }
        assert!(text.contains("rotate-tenant-key"), "{text}");
    }
}
