//! Group commit: concurrent writers share one sync (SQLite: of the WAL; PostgreSQL: of its
//! WAL through one flush). Every change reported committed is in the store after a reopen,
//! the audit chain holds one record per change in order, and the anchor and the log never
//! get ahead of the store (no rollback is detected on reopen).

mod common;
#[cfg(feature = "postgres")]
#[path = "common/postgres.rs"]
mod test_postgres;

use common::{options, TENANT};
use std::path::Path;
use std::sync::{Arc, Barrier};
use tbsecrets::{ListQuery, MasterKey, SecretStorage, SecretType};

const THREADS: usize = 8;
const PER_THREAD: usize = 25;

/// `THREADS` threads each create `PER_THREAD` secrets at once; every create must succeed.
fn create_concurrently(store: &Arc<SecretStorage>, prefix: &str) {
    let start = Arc::new(Barrier::new(THREADS));
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let store = store.clone();
            let start = start.clone();
            scope.spawn(move || {
                start.wait();
                for i in 0..PER_THREAD {
                    let name = format!("{prefix}-{t}-{i}");
                    store
                        .create(TENANT, &name, SecretType::Text, name.as_bytes(), "")
                        .expect("a concurrent create commits");
                }
            });
        }
    });
}

/// Every secret created is there with its value, as a fresh handle reads it.
fn assert_all_present(store: &SecretStorage, prefix: &str) {
    for t in 0..THREADS {
        for i in 0..PER_THREAD {
            let name = format!("{prefix}-{t}-{i}");
            let got = store.get(TENANT, &name).expect("committed before reported");
            assert_eq!(got.as_bytes(), name.as_bytes());
        }
    }
    let page = store
        .list(
            TENANT,
            &ListQuery {
                limit: 10_000,
                ..ListQuery::default()
            },
        )
        .unwrap();
    let ours = page
        .items
        .iter()
        .filter(|s| s.name.starts_with(prefix))
        .count();
    assert_eq!(ours, THREADS * PER_THREAD, "exactly the secrets created");
}

/// The log holds one create record per secret (plus what the store wrote before), in an
/// intact chain.
fn assert_log_complete(store: &SecretStorage, log: Option<&Path>, at_least: u64) {
    let report = store.verify_audit_log(log).unwrap();
    assert!(report.is_intact(), "{:?}", report.problem);
    assert!(
        report.records >= at_least,
        "{} records for {at_least} creates",
        report.records
    );
}

#[test]
fn concurrent_sqlite_creates_are_all_durable_audited_and_in_order() {
    let (dir, path) = common::temp_store();
    let key = MasterKey::generate();
    let store = Arc::new(SecretStorage::open(&path, options(&key)).unwrap());
    create_concurrently(&store, "g");
    assert_log_complete(&store, None, (THREADS * PER_THREAD) as u64);
    store.close().unwrap();
    drop(store);

    // The log has each create exactly once.
    let log = std::fs::read_to_string(tbsecrets::audit::default_log_path(&path)).unwrap();
    for t in 0..THREADS {
        for i in 0..PER_THREAD {
            let name = format!("\"g-{t}-{i}\"");
            assert_eq!(log.matches(&name).count(), 1, "{name} in the log once");
        }
    }
    // A new handle: no rollback detected (anchor and log not ahead), every secret there.
    let reopened = SecretStorage::open(&path, options(&key)).expect("reopen without rollback");
    assert_all_present(&reopened, "g");
    assert_log_complete(&reopened, None, (THREADS * PER_THREAD) as u64);
    drop(dir);
}

#[test]
fn concurrent_creates_of_two_handles_interleave_into_one_chain() {
    let (_dir, path) = common::temp_store();
    let key = MasterKey::generate();
    let a = Arc::new(SecretStorage::open(&path, options(&key)).unwrap());
    let b = Arc::new(SecretStorage::open(&path, options(&key)).unwrap());
    std::thread::scope(|scope| {
        scope.spawn(|| create_concurrently(&a, "a"));
        scope.spawn(|| create_concurrently(&b, "b"));
    });
    a.close().unwrap();
    b.close().unwrap();
    let reopened = SecretStorage::open(&path, options(&key)).expect("reopen without rollback");
    assert_all_present(&reopened, "a");
    assert_all_present(&reopened, "b");
    assert_log_complete(&reopened, None, (2 * THREADS * PER_THREAD) as u64);
}

#[cfg(feature = "postgres")]
#[test]
fn concurrent_postgres_creates_are_all_durable_audited_and_in_order() {
    let url = format!(
        "{}?schema=group_commit_{}&pool_max=8",
        test_postgres::postgres_url(),
        std::process::id()
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("pg.audit.jsonl");
    let key = MasterKey::generate();
    let open = || {
        let options = tbsecrets::StorageOptions {
            audit: tbsecrets::AuditOptions {
                path: Some(log.clone()),
                ..Default::default()
            },
            ..tbsecrets::StorageOptions::with_master_key(key.clone())
        };
        SecretStorage::open(url.as_str(), options).unwrap()
    };
    let store = Arc::new(open());
    create_concurrently(&store, "p");
    store.close().unwrap();
    drop(store);
    let reopened = open();
    assert_all_present(&reopened, "p");
    assert_log_complete(&reopened, Some(&log), (THREADS * PER_THREAD) as u64);
}

// ---- a full disk under concurrent creates ---------------------------------------------------

const CHILD_DIR: &str = "TBS_TEST_GROUP_COMMIT_DIR";
const MARK: &str = "@tbs-child@ batches on a full disk done";

/// Concurrent creates share batch transactions (SQLite); when the disk fills up midway, a
/// batch's commit fails for every change in it. Each create's answer must say exactly what
/// committed: after space is freed and the store reopened, every create that succeeded is
/// there with its value, every one that failed (a STORAGE error) is absent, and the audit
/// chain is intact with no rollback detected.
#[test]
fn on_a_full_disk_every_concurrent_create_is_reported_exactly_as_it_committed() {
    common::full_disk::run_child_on_tmpfs("child_batches_on_a_full_disk", "2m", CHILD_DIR, MARK);
}

/// Runs inside the mount namespace, with a 2 MiB tmpfs at `$TBS_TEST_GROUP_COMMIT_DIR/mnt`.
#[test]
fn child_batches_on_a_full_disk() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return; // not re-executed by the test above
    };
    let mnt = Path::new(&dir).join("mnt");
    let path = mnt.join("store.db");
    let key = MasterKey::generate();
    let store = Arc::new(SecretStorage::open(&path, options(&key)).unwrap());
    store
        .create(TENANT, "before", SecretType::Text, b"v", "")
        .unwrap();
    let filler = common::full_disk::fill_leaving(&mnt, 256 * 1024);

    const ATTEMPTS: usize = 40;
    let value = |name: &str| format!("{name}:{}", "x".repeat(3000));
    let start = Barrier::new(THREADS);
    type Outcome = Result<(), (tbsecrets::ErrorCode, String)>;
    let outcomes: Vec<(String, Outcome)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let (store, start) = (&store, &start);
                s.spawn(move || {
                    start.wait();
                    (0..ATTEMPTS)
                        .map(|i| {
                            let name = format!("full-{t}-{i}");
                            let made = store.create(
                                TENANT,
                                &name,
                                SecretType::TextFile,
                                value(&name).as_bytes(),
                                "",
                            );
                            (
                                name,
                                made.map(|_| ()).map_err(|e| (e.code(), e.to_string())),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let committed = outcomes.iter().filter(|(_, o)| o.is_ok()).count();
    let refused = outcomes.len() - committed;
    println!("{committed} creates committed, {refused} refused on the full disk");
    assert!(committed > 0, "256 KiB hold the first creates");
    assert!(
        refused > 0,
        "the disk filled up: {} creates of 2 KiB",
        outcomes.len()
    );
    for (name, outcome) in &outcomes {
        if let Err((code, message)) = outcome {
            assert_eq!(*code, tbsecrets::ErrorCode::Storage, "{name}: {message}");
        }
    }

    std::fs::remove_file(filler).unwrap();
    drop(store);
    let reopened = SecretStorage::open(&path, options(&key)).expect("reopen: no rollback detected");
    for (name, outcome) in &outcomes {
        match outcome {
            Ok(()) => {
                let got = reopened.get(TENANT, name).expect("reported committed");
                assert_eq!(got.as_bytes(), value(name).as_bytes(), "{name}");
            }
            Err(_) => {
                let err = reopened.get(TENANT, name).err();
                assert_eq!(
                    err.map(|e| e.code()),
                    Some(tbsecrets::ErrorCode::NotFound),
                    "{name} was reported not committed"
                );
            }
        }
    }
    let report = reopened.verify_audit_log(None).unwrap();
    assert!(report.is_intact(), "{:?}", report.problem);
    println!("{MARK}");
}
