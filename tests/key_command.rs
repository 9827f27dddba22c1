//! The `command` key provider with the age-backed example program: open, reopen, rotation
//! raw → command → raw, and programs that fail, print garbage, hang, are missing or are
//! killed mid-rotation (KEY_UNAVAILABLE, nothing written, a rerun finishes).

mod common;

use common::key_command::{age_installed, KeyCommand};
use std::sync::Arc;
use std::time::Duration;
use tbsecrets::{
    key_provider_from_spec, CommandWrapper, ErrorCode, KeyProvider, MasterKey, SecretStorage,
    SecretType, StorageOptions, WrapperProvider,
};

fn with_provider(provider: Arc<dyn KeyProvider>) -> StorageOptions {
    StorageOptions {
        create_if_missing: true,
        ..StorageOptions::with_key_provider(provider)
    }
}

fn provider(command: &KeyCommand) -> Arc<dyn KeyProvider> {
    key_provider_from_spec(&command.spec()).unwrap()
}

macro_rules! require_age {
    () => {
        if !age_installed() {
            eprintln!("skipped: the age tool is not installed");
            return;
        }
    };
}

#[test]
fn an_age_backed_store_opens_reopens_and_rotates_raw_command_raw() {
    require_age!();
    let kms = KeyCommand::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let example = format!(
        "command:{} {} {}",
        common::key_command::example().display(),
        std::fs::read_to_string(kms.dir.path().join("recipient"))
            .unwrap()
            .trim(),
        kms.dir.path().join("identity.txt").display()
    );
    let store = SecretStorage::open(
        &path,
        with_provider(key_provider_from_spec(&example).unwrap()),
    )
    .unwrap();
    store
        .create("t", "ApiKey", SecretType::Text, b"s3cr3t", "")
        .unwrap();
    assert_eq!(
        store.get("t", "ApiKey").unwrap().as_str().unwrap(),
        "s3cr3t"
    );
    store.close().unwrap();
    let again = SecretStorage::open(
        &path,
        with_provider(key_provider_from_spec(&example).unwrap()),
    )
    .unwrap();
    assert_eq!(
        again.get("t", "ApiKey").unwrap().as_str().unwrap(),
        "s3cr3t"
    );
    again.close().unwrap();
    let other = KeyCommand::new();
    let err = SecretStorage::open(&path, with_provider(provider(&other))).unwrap_err();
    assert_eq!(
        err.code(),
        ErrorCode::KeyUnavailable,
        "age cannot decrypt: {err}"
    );

    // raw → command → raw
    let raw_path = dir.path().join("r.db");
    let raw = MasterKey::generate();
    let store =
        SecretStorage::open(&raw_path, StorageOptions::with_master_key(raw.clone())).unwrap();
    store
        .create("t", "A", SecretType::Text, b"one", "")
        .unwrap();
    store
        .create("u", "B", SecretType::Text, b"two", "")
        .unwrap();
    let report = store
        .rotate_key_provider(provider(&kms), &mut |_, _| {})
        .unwrap();
    assert_eq!(report.keys, 2);
    assert_eq!(store.get("u", "B").unwrap().as_str().unwrap(), "two");
    store.close().unwrap();
    let err =
        SecretStorage::open(&raw_path, StorageOptions::with_master_key(raw.clone())).unwrap_err();
    assert_eq!(err.code(), ErrorCode::WrongMasterKey, "{err}");
    let store = SecretStorage::open(&raw_path, with_provider(provider(&kms))).unwrap();
    assert_eq!(store.get("t", "A").unwrap().as_str().unwrap(), "one");
    let back = MasterKey::generate();
    store
        .rotate_key_provider(Arc::new(back.clone()), &mut |_, _| {})
        .unwrap();
    store.close().unwrap();
    let store = SecretStorage::open(&raw_path, StorageOptions::with_master_key(back)).unwrap();
    assert_eq!(store.get("u", "B").unwrap().as_str().unwrap(), "two");
    store.close().unwrap();
    let err = SecretStorage::open(&raw_path, with_provider(provider(&kms))).unwrap_err();
    assert_eq!(err.code(), ErrorCode::WrongMasterKey, "{err}");
}

#[test]
fn a_failing_program_is_key_unavailable_and_changes_nothing() {
    require_age!();
    let kms = KeyCommand::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = SecretStorage::open(&path, with_provider(provider(&kms))).unwrap();
    store
        .create("t", "A", SecretType::Text, b"one", "")
        .unwrap();
    store.close().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let script = kms.script.display().to_string();
    for (mode, says) in [
        ("fail", "(exit status 1): kms: access denied for key k1"),
        ("garbage", "not one line of base64"),
        ("empty", "printed nothing"),
        ("echo", "stderr withheld"),
    ] {
        kms.set_mode(mode);
        let err = SecretStorage::open(&path, with_provider(provider(&kms))).unwrap_err();
        assert_eq!(err.code(), ErrorCode::KeyUnavailable, "{mode}: {err}");
        assert!(err.message().contains(&script), "{mode}: {err}");
        assert!(err.message().contains(says), "{mode}: {err}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{mode}: nothing written"
        );
    }

    // Down while a handle is open: a write that needs the provider fails and writes nothing.
    kms.set_mode("ok");
    let store = SecretStorage::open(&path, with_provider(provider(&kms))).unwrap();
    assert_eq!(store.get("t", "A").unwrap().as_str().unwrap(), "one");
    kms.set_mode("fail");
    let err = store
        .create("new-tenant", "B", SecretType::Text, b"two", "")
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::KeyUnavailable, "{err}");
    assert_eq!(
        store.get("t", "A").unwrap().as_str().unwrap(),
        "one",
        "cached key"
    );
    kms.set_mode("ok");
    let err = store.get("new-tenant", "B").unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    store.close().unwrap();
}

#[test]
fn a_missing_program_is_key_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-kms");
    let spec = format!("command:{}", missing.display());
    let err = SecretStorage::open(
        dir.path().join("s.db"),
        with_provider(key_provider_from_spec(&spec).unwrap()),
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::KeyUnavailable, "{err}");
    assert!(err.message().contains("cannot be started"), "{err}");
    assert!(err.message().contains("no-such-kms"), "{err}");
}

#[test]
fn a_hanging_program_times_out_and_is_reaped() {
    require_age!();
    let kms = KeyCommand::new();
    kms.set_mode("hang");
    let wrapper = CommandWrapper::new(&kms.script, Vec::new(), Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let err = SecretStorage::open(
        dir.path().join("s.db"),
        with_provider(Arc::new(WrapperProvider::new(wrapper))),
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::KeyUnavailable, "{err}");
    assert!(err.message().contains("timed out after 300 ms"), "{err}");
    // The program was killed and waited for: no process (not even a zombie) is left.
    let pid = kms.hung_pid().expect("the program started");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} is left behind"
    );
}

#[test]
fn a_provider_killed_mid_rotation_leaves_the_store_as_it_was_and_a_rerun_finishes() {
    require_age!();
    let kms = KeyCommand::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let raw = MasterKey::generate();
    let store = SecretStorage::open(&path, StorageOptions::with_master_key(raw.clone())).unwrap();
    for tenant in ["a", "b", "c", "d"] {
        store
            .create(tenant, "X", SecretType::Text, tenant.as_bytes(), "")
            .unwrap();
    }
    // The program is killed (SIGKILL) at its third call, in the middle of the rewrapping.
    kms.set_mode("die-at-3");
    let err = store
        .rotate_key_provider(provider(&kms), &mut |_, _| {})
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::KeyUnavailable, "{err}");
    assert!(err.message().contains("killed by signal 9"), "{err}");
    assert_eq!(store.get("c", "X").unwrap().as_str().unwrap(), "c");
    store.close().unwrap();
    let store = SecretStorage::open(&path, StorageOptions::with_master_key(raw.clone())).unwrap();
    assert_eq!(
        store.get("d", "X").unwrap().as_str().unwrap(),
        "d",
        "still the raw key"
    );

    kms.set_mode("ok");
    let report = store
        .rotate_key_provider(provider(&kms), &mut |_, _| {})
        .unwrap();
    assert_eq!(report.keys, 4);
    store.close().unwrap();
    let store = SecretStorage::open(&path, with_provider(provider(&kms))).unwrap();
    for tenant in ["a", "b", "c", "d"] {
        assert_eq!(store.get(tenant, "X").unwrap().as_str().unwrap(), tenant);
    }
    store.close().unwrap();
}
