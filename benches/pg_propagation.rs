//! Propagation between two processes sharing one store (issue 15, goal 6: on PostgreSQL, an
//! update seen by the other process within p99 ≤ 50 ms under a load of 1,000 gets/s).
//!
//! This program is both processes. The reader (the program as started) opens the store,
//! creates the probe secret, re-executes itself as the writer and reads the probe at a paced
//! 1,000 gets/s; the writer updates the probe `UPDATES` times, one every `EVERY`, each value
//! holding the update's number and the time it was written (`CLOCK_MONOTONIC`, one clock for
//! every process of the machine). For each new value the reader sees it records
//! now − written, and prints p50/p99/max and the get rate it achieved; then the same run on
//! SQLite (two processes on one file) as the comparison line.
//!
//! Run: `cargo bench --bench pg_propagation` (uses `TBS_TEST_POSTGRES_URL`, or starts a
//! throwaway server with scripts/pg-test-server.sh as `benches/postgres.rs` does).

#[path = "common/pg_server.rs"]
mod pg_server;

use pg_server::Server;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use tbsecrets::{MasterKey, SecretStorage, SecretType, StorageOptions};

const TENANT: &str = "tenant-propagation";
const PROBE: &str = "probe";
const UPDATES: u64 = 300;
const EVERY: Duration = Duration::from_millis(20);
const GETS_PER_SECOND: u32 = 1_000;
/// How long the reader waits for the last update after the writer has exited.
const GRACE: Duration = Duration::from_secs(2);

/// Environment of the writer process: the store location and the key file.
const ROLE_LOCATION: &str = "TBS_PROPAGATION_WRITER_LOCATION";
const ROLE_KEY: &str = "TBS_PROPAGATION_WRITER_KEY";

/// `CLOCK_MONOTONIC` in nanoseconds: system-wide on Linux, so comparable across processes.
fn monotonic_nanos() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn open(location: &str, key: &MasterKey) -> SecretStorage {
    SecretStorage::open(location, StorageOptions::with_master_key(key.clone()))
        .unwrap_or_else(|e| panic!("open {location}: {e}"))
}

/// The probe's value: `number:written_at_nanos`.
fn probe(number: u64) -> Vec<u8> {
    format!("{number}:{}", monotonic_nanos()).into_bytes()
}

fn parse(value: &[u8]) -> (u64, u64) {
    let text = std::str::from_utf8(value).expect("probe is UTF-8");
    let (number, at) = text.split_once(':').expect("number:nanos");
    (number.parse().expect("number"), at.parse().expect("nanos"))
}

/// The writer: `UPDATES` paced updates of the probe.
fn writer(location: &str, key_file: &Path) {
    let key = tbsecrets::read_key_file(key_file).expect("key file");
    let store = open(location, &key);
    let mut next = Instant::now() + EVERY;
    for number in 1..=UPDATES {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += EVERY;
        store
            .update_value(TENANT, PROBE, &probe(number), None)
            .expect("update");
    }
    store.close().expect("close");
}

fn spawn_writer(location: &str, key_file: &Path) -> Child {
    Command::new(std::env::current_exe().expect("this program"))
        .env(ROLE_LOCATION, location)
        .env(ROLE_KEY, key_file)
        .spawn()
        .expect("start the writer")
}

/// What the reader measured.
struct Run {
    delays: Vec<Duration>,
    gets: u64,
    elapsed: Duration,
}

/// The reader: paced gets until the last update is seen (or the writer is gone for `GRACE`).
fn reader(store: &SecretStorage, mut writer: Child) -> Run {
    let period = Duration::from_secs(1) / GETS_PER_SECOND;
    let (mut delays, mut gets, mut seen) = (Vec::new(), 0u64, 0u64);
    let started = Instant::now();
    let mut next = started;
    let mut exited_at: Option<Instant> = None;
    while seen < UPDATES && exited_at.is_none_or(|at| at.elapsed() < GRACE) {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += period;
        let value = store.get(TENANT, PROBE).expect("get");
        let now = monotonic_nanos();
        gets += 1;
        let (number, written) = parse(value.as_bytes());
        if number > seen {
            seen = number;
            delays.push(Duration::from_nanos(now.saturating_sub(written)));
        }
        if exited_at.is_none() && writer.try_wait().expect("writer").is_some() {
            exited_at = Some(Instant::now());
        }
    }
    let status = writer.wait().expect("writer");
    assert!(status.success(), "writer failed: {status}");
    Run {
        delays,
        gets,
        elapsed: started.elapsed(),
    }
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted
        .get(((sorted.len().saturating_sub(1)) as f64 * q).round() as usize)
        .copied()
        .unwrap_or_default()
}

fn measure(label: &str, location: &str, dir: &Path) {
    let key = MasterKey::generate();
    let key_file = dir.join(format!("{label}.key"));
    tbsecrets::write_key_file(&key_file, &key).expect("key file");
    let store = open(location, &key);
    store
        .create(TENANT, PROBE, SecretType::Text, &probe(0), "")
        .expect("create the probe");
    store.get(TENANT, PROBE).expect("warm");
    let mut run = reader(&store, spawn_writer(location, &key_file));
    store.close().expect("close");
    run.delays.sort_unstable();
    println!(
        "pg_propagation/{label}: {} of {UPDATES} updates seen, delay p50 {:.2?} p99 {:.2?} \
         max {:.2?}; {:.0} gets/s achieved ({} gets in {:.1?})",
        run.delays.len(),
        quantile(&run.delays, 0.5),
        quantile(&run.delays, 0.99),
        run.delays.last().copied().unwrap_or_default(),
        run.gets as f64 / run.elapsed.as_secs_f64(),
        run.gets,
        run.elapsed
    );
}

fn main() {
    if let (Ok(location), Ok(key_file)) = (std::env::var(ROLE_LOCATION), std::env::var(ROLE_KEY)) {
        writer(&location, Path::new(&key_file));
        return;
    }
    // `cargo bench` passes `--bench`; a filter argument is not supported (one measurement).
    let server = Server::get();
    let dir = tempfile::tempdir().expect("temporary directory");
    let postgres = format!(
        "{}?schema=propagation_{}&pool_max=4",
        server.url,
        std::process::id()
    );
    measure("postgres", &postgres, dir.path());
    let sqlite = dir.path().join("propagation.db");
    measure("sqlite", sqlite.to_str().expect("UTF-8 path"), dir.path());
}
