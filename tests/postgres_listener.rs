//! PostgreSQL: closing a handle while a flood of NOTIFY messages arrives on its change
//! channel returns promptly (issue 12, finding 10). The listener thread used to drain
//! notifications until the flood paused, so dropping the handle (which joins it) hung.
//!
//! Runs against `TBS_TEST_POSTGRES_URL` (fails, never skips, without one).

#[path = "common/postgres.rs"]
mod test_postgres;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tbsecrets::{MasterKey, SecretStorage, StorageOptions};
use test_postgres::postgres_url;

/// Upper bound on flood batches, so the flooding thread ends even if nobody stops it.
const MAX_BATCHES: u64 = 200_000;
/// Generous watchdog for close; a hang is what the test detects, not slowness.
const WATCHDOG: Duration = Duration::from_secs(60);

#[test]
fn close_returns_while_notifications_flood_the_channel() {
    let url = postgres_url();
    let schema = format!("t_listen_{}", std::process::id());
    let sep = if url.contains('?') { '&' } else { '?' };
    let location = format!("{url}{sep}schema={schema}&pool_max=2");
    let store = SecretStorage::open(
        &location,
        StorageOptions::with_master_key(MasterKey::generate()),
    )
    .unwrap_or_else(|e| panic!("open {location}: {e}"));
    store
        .create("t", "k", tbsecrets::SecretType::Text, b"v", "")
        .expect("create");

    // The flood: batches of distinct payloads (identical ones would be folded by the server)
    // on the store's channel, until told to stop or the bound is reached.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let (started_tx, started_rx) = mpsc::channel();
    let flood = {
        let stop = stop.clone();
        let sent = sent.clone();
        let url = url.clone();
        let channel = format!("tbs_changes_{schema}");
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
            let sql =
                format!("SELECT pg_notify('{channel}', g::text) FROM generate_series(1, 200) g");
            let mut batches = 0u64;
            while !stop.load(Ordering::Acquire) && batches < MAX_BATCHES {
                client.batch_execute(&sql).expect("notify");
                batches += 1;
                sent.store(batches, Ordering::Release);
                if batches == 20 {
                    let _ = started_tx.send(());
                }
            }
            batches
        })
    };
    started_rx
        .recv_timeout(WATCHDOG)
        .expect("the flood started");

    let (closed_tx, closed_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let closed = store.close();
        drop(store); // joins the listener thread
        let _ = closed_tx.send(closed);
    });
    let closed = closed_rx.recv_timeout(WATCHDOG);
    let batches_at_close = sent.load(Ordering::Acquire);
    stop.store(true, Ordering::Release);
    let batches = flood.join().expect("the flood thread ends");
    assert!(
        matches!(closed, Ok(Ok(()))),
        "close must return under a NOTIFY flood: {closed:?}"
    );
    assert!(
        batches < MAX_BATCHES,
        "the flood was stopped by the test, not by its bound ({batches} batches)"
    );
    assert!(
        batches_at_close >= 20,
        "the flood was running while the handle closed"
    );
}
