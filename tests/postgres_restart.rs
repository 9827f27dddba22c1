//! PostgreSQL restarted while handles are open: calls fail with STORAGE during the outage and
//! succeed after it, and nothing is lost. Runs alone in its own test binary, against the server
//! `./scripts/test-all.sh` started (`TBS_TEST_PG_DIR`), which it stops and resumes.

#[path = "common/postgres.rs"]
mod test_postgres;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tbsecrets::{ErrorCode, MasterKey, SecretStorage, SecretType, StorageOptions};
use test_postgres::postgres_url;

const T: &str = "tenant";
const BOUND: Duration = Duration::from_secs(30);

fn server(command: &str) {
    let dir = std::env::var("TBS_TEST_PG_DIR")
        .expect("TBS_TEST_PG_DIR is not set: run ./scripts/test-all.sh");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-test-server.sh");
    let status = Command::new(script).arg(command).arg(dir).status().unwrap();
    assert!(status.success(), "pg-test-server.sh {command} failed");
}

/// Polls `f` until it returns true, failing after `BOUND`.
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < BOUND, "{what} not within {BOUND:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn restart_fails_calls_with_storage_then_recovers_with_nothing_lost() {
    let url = postgres_url();
    let location = format!("{url}?schema=restart_{}&pool_max=2", std::process::id());
    let mut options = StorageOptions::with_master_key(MasterKey::generate());
    options.busy_timeout = Duration::from_secs(2);
    let node_a = SecretStorage::open(&location, options.clone()).unwrap();
    let node_b = SecretStorage::open(&location, options).unwrap();
    for i in 0..20 {
        node_a
            .create(
                T,
                &format!("s{i}"),
                SecretType::Text,
                format!("v{i}").as_bytes(),
                "",
            )
            .unwrap();
    }
    assert_eq!(node_b.get(T, "s0").unwrap().as_bytes(), b"v0");

    server("stop");
    // Writes and metadata reads need the database: STORAGE, never a panic or a hang.
    let err = node_a
        .create(T, "during", SecretType::Text, b"x", "")
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Storage, "{err}");
    assert_eq!(node_b.info(T, "s1").unwrap_err().code(), ErrorCode::Storage);
    // Once the listener notices, cached reads stop too (read through, which fails).
    eventually(
        "cached reads failing during the outage",
        || matches!(node_b.get(T, "s0"), Err(e) if e.code() == ErrorCode::Storage),
    );

    server("resume");
    eventually("node A writing again", || {
        node_a
            .create(T, "after", SecretType::Text, b"y", "")
            .is_ok()
    });
    eventually("node B reading again", || node_b.get(T, "after").is_ok());
    for i in 0..20 {
        assert_eq!(
            node_b.get(T, &format!("s{i}")).unwrap().as_bytes(),
            format!("v{i}").as_bytes()
        );
    }
    assert_eq!(
        node_a.get(T, "during").unwrap_err().code(),
        ErrorCode::NotFound
    );
    // Invalidation works again after the listener reconnected.
    node_a.update_value(T, "s0", b"new", None).unwrap();
    eventually("node B seeing the update", || {
        node_b
            .get(T, "s0")
            .map(|v| v.as_bytes() == b"new")
            .unwrap_or(false)
    });
}
