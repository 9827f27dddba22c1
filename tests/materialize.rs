//! Materialised TEXT_FILE values and `resolve -o` temporaries (issue 12, finding 6): the
//! directory must be a real directory owned by this user with mode 0700, files are never
//! written through a pre-planted symlink, and what a SIGKILLed process left behind is removed
//! by the next run.
//!
//! The killed processes are this test binary re-executed on `child_materializes` with
//! `TBS_TEST_CHILD_STORE` set; without it that test returns at once.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use tbsecrets::service::{write_private_atomically, MaterializeOptions, ResolveOptions};
use tbsecrets::{ErrorCode, MasterKey, SecretStorage, SecretType, StorageOptions};

const T: &str = "t";
const PEM: &[u8] = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const CHILD_STORE: &str = "TBS_TEST_CHILD_STORE";
const CHILD_DIR: &str = "TBS_TEST_CHILD_DIR";
const CHILD_KEY: &str = "TBS_TEST_CHILD_KEY";

fn open(db: &Path, key: &MasterKey, materialize: Option<MaterializeOptions>) -> SecretStorage {
    let mut options = StorageOptions::with_master_key(key.clone());
    options.materialize = materialize;
    SecretStorage::open(db, options).expect("open store")
}

fn private_dir(path: &Path) -> PathBuf {
    std::fs::create_dir(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
    path.to_path_buf()
}

fn configured(dir: &Path) -> Option<MaterializeOptions> {
    Some(MaterializeOptions {
        dir: dir.to_path_buf(),
        keep_on_close: false,
    })
}

fn materialize(store: &SecretStorage) -> tbsecrets::Result<String> {
    store
        .resolve_str_with(
            T,
            "${secret:ca}",
            ResolveOptions {
                materialize_files: true,
                ..ResolveOptions::default()
            },
        )
        .map(|s| s.into_owned())
}

/// A store holding one TEXT_FILE secret "ca".
fn store_with_ca(dir: &Path, materialize: Option<MaterializeOptions>) -> SecretStorage {
    let store = open(&dir.join("s.db"), &MasterKey::generate(), materialize);
    store
        .create(T, "ca", SecretType::TextFile, PEM, "")
        .unwrap();
    store
}

/// A pid that no process has any more (a child that ran and was reaped).
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn directory_owned_by_another_user_is_refused() {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: only root can give a directory to another user");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let foreign = private_dir(&tmp.path().join("foreign"));
    std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
    let store = store_with_ca(tmp.path(), configured(&foreign));
    let err = materialize(&store).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(err.message().contains("owned by uid 65534"), "{err}");
    assert_eq!(std::fs::read_dir(&foreign).unwrap().count(), 0);
}

#[test]
fn symlinked_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let real = private_dir(&tmp.path().join("real"));
    let link = tmp.path().join("link");
    symlink(&real, &link).unwrap();
    let store = store_with_ca(tmp.path(), configured(&link));
    let err = materialize(&store).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(err.message().contains("not a symlink"), "{err}");
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0);
}

#[test]
fn open_directory_is_refused_and_private_one_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let open_dir = private_dir(&tmp.path().join("open"));
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o750)).unwrap();
    let store = store_with_ca(tmp.path(), configured(&open_dir));
    let err = materialize(&store).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert!(err.message().contains("0750"), "{err}");
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = materialize(&store).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), PEM);
}

#[test]
fn preplanted_symlink_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = private_dir(&tmp.path().join("certs"));
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, b"untouched").unwrap();
    // The name the first file of a fresh handle in this process gets.
    let planted = dir.join(format!("tbsecrets-{}-1-ca-v1.pem", std::process::id()));
    symlink(&victim, &planted).unwrap();
    let store = store_with_ca(tmp.path(), configured(&dir));
    let err = materialize(&store).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Storage);
    assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
}

/// Spawns a child that materialises "ca" and reports the path, then waits on stdin.
fn spawn_materializer(db: &Path, key: &MasterKey, dir: Option<&Path>, tmpdir: &Path) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_materializes",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_STORE, db)
    .env(CHILD_KEY, key.to_base64().as_str())
    .env("TMPDIR", tmpdir)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped());
    if let Some(dir) = dir {
        cmd.env(CHILD_DIR, dir);
    }
    cmd.spawn().unwrap()
}

/// Reads the child's `PATH=` line.
fn reported_path(child: &mut Child) -> PathBuf {
    let stdout = child.stdout.as_mut().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("the child reports a path before exiting")
            .unwrap();
        // libtest may print "test child_materializes ... " on the same line first.
        if let Some((_, path)) = line.split_once("PATH=") {
            return PathBuf::from(path);
        }
    }
}

fn kill9(child: &mut Child) {
    use std::os::unix::process::ExitStatusExt;
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
}

#[test]
fn child_materializes() {
    let Ok(db) = std::env::var(CHILD_STORE) else {
        return;
    };
    let key = MasterKey::from_base64(&std::env::var(CHILD_KEY).unwrap()).unwrap();
    let dir = std::env::var_os(CHILD_DIR).map(PathBuf::from);
    let store = open(Path::new(&db), &key, dir.as_deref().and_then(configured));
    println!("PATH={}", materialize(&store).unwrap());
    // Wait until the parent closes stdin (or kills this process).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    store.close().unwrap();
}

#[test]
fn files_left_by_a_killed_process_are_removed_by_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = private_dir(&tmp.path().join("certs"));
    let db = tmp.path().join("s.db");
    let key = MasterKey::generate();
    open(&db, &key, None)
        .create(T, "ca", SecretType::TextFile, PEM, "")
        .unwrap();

    let mut child = spawn_materializer(&db, &key, Some(&dir), tmp.path());
    let left = reported_path(&mut child);
    kill9(&mut child);
    assert_eq!(std::fs::read(&left).unwrap(), PEM, "left behind by SIGKILL");

    // Files that are not leftovers of a dead process stay.
    let live = dir.join(format!("tbsecrets-{}-9-x-v1.pem", std::process::id()));
    let kept = dir.join("ca-0123456789abcdef-v1.pem");
    let other = dir.join("notes.txt");
    for f in [&live, &kept, &other] {
        std::fs::write(f, b"x").unwrap();
    }

    let store = open(&db, &key, configured(&dir));
    let fresh = materialize(&store).unwrap();
    assert!(
        !left.exists(),
        "{} is a leftover of a dead process",
        left.display()
    );
    assert!(live.exists() && kept.exists() && other.exists());
    assert_eq!(std::fs::read(&fresh).unwrap(), PEM);
    store.close().unwrap();
    assert!(!Path::new(&fresh).exists());
}

#[test]
fn temporary_directories_left_by_a_killed_process_are_removed_by_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let tmpdir = private_dir(&tmp.path().join("tmp"));
    let db = tmp.path().join("s.db");
    let key = MasterKey::generate();
    open(&db, &key, None)
        .create(T, "ca", SecretType::TextFile, PEM, "")
        .unwrap();

    let mut first = spawn_materializer(&db, &key, None, &tmpdir);
    let left = reported_path(&mut first);
    kill9(&mut first);
    let left_dir = left.parent().unwrap().to_path_buf();
    assert!(left_dir.starts_with(&tmpdir) && left.exists());

    let mut second = spawn_materializer(&db, &key, None, &tmpdir);
    let fresh = reported_path(&mut second);
    assert!(!left_dir.exists(), "{} is a leftover", left_dir.display());
    assert_eq!(std::fs::read(&fresh).unwrap(), PEM);
    drop(second.stdin.take()); // lets the child close its handle and exit
    assert!(second.wait().unwrap().success());
    assert!(!fresh.exists() && !fresh.parent().unwrap().exists());
}

#[test]
fn resolve_output_temporaries_of_dead_processes_are_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let dead = tmp
        .path()
        .join(format!(".tbsecrets-{}-AbC123.tmp", dead_pid()));
    let live = tmp
        .path()
        .join(format!(".tbsecrets-{}-XyZ789.tmp", std::process::id()));
    let unrelated = tmp.path().join(".tbsecrets-notes");
    for f in [&dead, &live, &unrelated] {
        std::fs::write(f, b"partial").unwrap();
    }
    let target = tmp.path().join("out.conf");
    write_private_atomically(&target, b"resolved").unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"resolved");
    assert!(!dead.exists(), "left by a dead process");
    assert!(live.exists() && unrelated.exists());
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.len(),
        3,
        "no temporary of this write remains: {names:?}"
    );
}
