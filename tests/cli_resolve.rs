//! The CLI's resolution commands: resolve (stdout, -o, formats, materialisation, --source),
//! refs, where-used, rm --force.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Cli {
        let cli = Cli {
            dir: tempfile::tempdir().unwrap(),
        };
        assert!(cli.run(&["init"], None).status.success());
        cli
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tbsecrets"));
        cmd.arg("--store")
            .arg(self.path("s.db"))
            .args(args)
            .env_remove("TBS_MASTER_KEY")
            .env_remove("TBS_MASTER_KEY_FILE")
            .env_remove("TBS_STORE")
            .env_remove("TBS_TENANT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    fn put(&self, name: &str, kind: &str, value: &[u8]) {
        let out = self.run(&["put", name, "--type", kind], Some(value));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn resolve_to_stdout_and_to_a_private_file() {
    let cli = Cli::new();
    cli.put("pw", "text", b"s3cr3t \"q\"\n");
    let config = cli.write(
        "node.json",
        r#"{"password":"${secret:pw;type:TEXT}","topic":"${deviceName}"}"#,
    );
    let out = cli.run(&["resolve", config.to_str().unwrap()], None);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        r#"{"password":"s3cr3t \"q\"","topic":"${deviceName}"}"#
    );

    let target = cli.path("out/resolved.json");
    std::fs::create_dir(cli.path("out")).unwrap();
    let out = cli.run(
        &[
            "resolve",
            config.to_str().unwrap(),
            "-o",
            target.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!(
            "resolved {} into {} (mode 0600)\n",
            config.display(),
            target.display()
        ),
        "-o: the document goes to the file, one sentence to stdout"
    );
    assert_eq!(mode(&target), 0o600);
    let parsed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&target).unwrap()).unwrap();
    assert_eq!(parsed["password"], "s3cr3t \"q\"");
    // Only the output file is left: the temporary file was renamed over it.
    assert_eq!(std::fs::read_dir(cli.path("out")).unwrap().count(), 1);

    // --format text treats the JSON as text: the value is inserted without JSON escaping.
    let out = cli.run(
        &["resolve", config.to_str().unwrap(), "--format", "text"],
        None,
    );
    assert_eq!(
        text(&out.stdout),
        r#"{"password":"s3cr3t "q"","topic":"${deviceName}"}"#
    );
}

#[test]
fn failed_resolve_names_every_problem_and_writes_nothing() {
    let cli = Cli::new();
    cli.put("ca", "text-file", b"PEM");
    let config = cli.write(
        "app.conf",
        "a=${secret:nope}\nb=${secret:ca;type:TEXT}\nc=${secret:also-missing}\n",
    );
    let target = cli.path("resolved.conf");
    let out = cli.run(
        &[
            "resolve",
            config.to_str().unwrap(),
            "-o",
            target.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(9), "UNRESOLVED");
    let err = text(&out.stderr);
    assert!(
        err.contains("UNRESOLVED")
            && err.contains("'nope'")
            && err.contains("'ca'")
            && err.contains("'also-missing'"),
        "{err}"
    );
    assert!(!err.contains("PEM"));
    assert!(out.stdout.is_empty());
    assert!(!target.exists());
    assert_eq!(
        std::fs::read_dir(cli.dir.path())
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".tbsecrets-"))
            .count(),
        0
    );

    let bad = cli.write("bad.conf", "x=${secret:open");
    let out = cli.run(&["resolve", bad.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(8), "MALFORMED_PLACEHOLDER");
}

#[test]
fn materialize_dir_keeps_files_for_the_rendered_config() {
    let cli = Cli::new();
    cli.put(
        "ca",
        "text-file",
        b"-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n",
    );
    let config = cli.write("gw.json", r#"{"caFile":"${secret:ca;type:FILE}"}"#);
    let certs = cli.path("certs");
    let out = cli.run(
        &[
            "resolve",
            config.to_str().unwrap(),
            "--materialize-dir",
            certs.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let parsed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = PathBuf::from(parsed["caFile"].as_str().unwrap());
    assert!(file.starts_with(&certs));
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n"
    );
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&certs), 0o700);
}

#[test]
fn refs_where_used_and_forced_rm() {
    let cli = Cli::new();
    cli.put("token", "text", b"t");
    let config = cli.write(
        "rest.json",
        r#"{"headers":{"Authorization":"Bearer ${secret:token;type:TEXT}","X":"${secret:other}"}}"#,
    );
    let out = cli.run(&["refs", config.to_str().unwrap()], None);
    assert_eq!(text(&out.stdout), "token\tTEXT\nother\t*\n");
    let out = cli.run(&["refs", config.to_str().unwrap(), "--json"], None);
    let refs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(refs[0]["name"], "token");
    assert_eq!(refs[1]["type"], serde_json::Value::Null);

    // Resolving fails (other is missing), so the references are not recorded either.
    let out = cli.run(
        &[
            "resolve",
            config.to_str().unwrap(),
            "--source",
            "rule-node-1",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(9));
    assert!(cli.run(&["where-used", "token"], None).stdout.is_empty());

    cli.put("other", "text", b"o");
    let out = cli.run(
        &[
            "resolve",
            config.to_str().unwrap(),
            "--source",
            "rule-node-1",
        ],
        None,
    );
    assert!(out.status.success());
    assert_eq!(
        text(&cli.run(&["where-used", "token"], None).stdout),
        "rule-node-1\n"
    );
    let out = cli.run(&["where-used", "token", "--json"], None);
    let used: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(used[0]["source_id"], "rule-node-1");

    let out = cli.run(&["rm", "token"], None);
    assert_eq!(out.status.code(), Some(6), "IN_USE");
    assert!(text(&out.stderr).contains("rule-node-1"));
    assert!(cli.run(&["rm", "token", "--force"], None).status.success());
    assert_eq!(cli.run(&["reveal", "token"], None).status.code(), Some(2));
}

#[test]
fn resolve_to_a_file_confirms_as_json_and_json_needs_a_file() {
    let cli = Cli::new();
    cli.put("pw", "TEXT", b"Canary-77\n");
    let config = cli.write("app.conf", "password=${secret:pw}\n");
    let target = cli.path("app.resolved");
    let out = cli.run(
        &[
            "resolve",
            config.to_str().unwrap(),
            "-o",
            target.to_str().unwrap(),
            "--source",
            "app-1",
            "--json",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let done: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["action"], "resolved");
    assert_eq!(done["file"], config.to_str().unwrap());
    assert_eq!(done["output"], target.to_str().unwrap());
    assert_eq!(done["source"], "app-1");
    assert!(
        !text(&out.stdout).contains("Canary"),
        "the value in the JSON"
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "password=Canary-77\n"
    );

    // Without -o, stdout is the document: --json there is a usage error, and nothing is written.
    let out = cli.run(&["resolve", config.to_str().unwrap(), "--json"], None);
    assert_eq!(out.status.code(), Some(1), "INVALID_ARGUMENT");
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert!(
        err.contains("INVALID_ARGUMENT") && err.contains("--output"),
        "{err}"
    );
}

/// A text of several of the CLI's read chunks (`CHUNK_BYTES`) is streamed: placeholders on
/// either side of every chunk border resolve as in a small file, to stdout and to `-o`; a
/// problem near the end writes nothing to stdout and leaves no output file.
#[test]
fn long_text_streams_with_placeholders_across_chunk_borders() {
    let cli = Cli::new();
    cli.put("pw", "text", b"s3cr3t");
    let line = "é${deviceName} $${secret:pw} ${secret:pw} ".repeat(1000);
    let mut doc = String::new();
    let mut expected = String::new();
    while doc.len() < 3 * tbsecrets::placeholder::CHUNK_BYTES + 500 {
        doc.push_str(&line);
        doc.push('\n');
    }
    for piece in doc.split_inclusive('\n') {
        expected.push_str(
            &piece
                .replace("$${secret:pw}", "\u{0}")
                .replace("${secret:pw}", "s3cr3t")
                .replace('\u{0}', "${secret:pw}"),
        );
    }
    let config = cli.write("big.txt", &doc);
    let out = cli.run(&["resolve", config.to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout == expected.as_bytes(), "stdout differs");
    let target = cli.path("big.out");
    let out = cli.run(
        &[
            "resolve",
            config.to_str().unwrap(),
            "-o",
            target.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::read(&target).unwrap() == expected.as_bytes());
    assert_eq!(mode(&target), 0o600);

    let broken = cli.write("broken.txt", &format!("{doc}${{secret:gone}}"));
    let out = cli.run(&["resolve", broken.to_str().unwrap()], None);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing on stdout after a failure");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("gone") && !stderr.contains("s3cr3t"),
        "{stderr}"
    );
    let target = cli.path("broken.out");
    let out = cli.run(
        &[
            "resolve",
            broken.to_str().unwrap(),
            "-o",
            target.to_str().unwrap(),
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(!target.exists());
    let leftovers: Vec<_> = std::fs::read_dir(cli.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary file left behind");
}
