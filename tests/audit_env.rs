//! `TBS_AUDIT_LOG` names the audit log when the options do not (alone in its binary: it sets
//! a process-wide environment variable).

use tbsecrets::{MasterKey, SecretStorage, SecretType, StorageOptions};

#[test]
fn the_environment_names_the_log_when_the_options_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("elsewhere.jsonl");
    std::env::set_var(tbsecrets::audit::AUDIT_LOG_ENV, &log);
    let store = SecretStorage::open(
        dir.path().join("s.db"),
        StorageOptions::with_master_key(MasterKey::generate()),
    )
    .unwrap();
    store.create("t", "a", SecretType::Text, b"v", "").unwrap();
    assert_eq!(store.audit_log_path().as_deref(), Some(log.as_path()));
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1);
    // Options win over the environment.
    let mut options = StorageOptions::with_master_key(MasterKey::generate());
    options.audit.path = Some(dir.path().join("given.jsonl"));
    let other = SecretStorage::open(dir.path().join("o.db"), options).unwrap();
    assert_eq!(
        other.audit_log_path().as_deref(),
        Some(dir.path().join("given.jsonl").as_path())
    );
    std::env::remove_var(tbsecrets::audit::AUDIT_LOG_ENV);
}
