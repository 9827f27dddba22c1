//! PostgreSQL backend benchmarks, each with its baseline in the same run:
//! - `warm_get/postgres` vs `warm_get/sqlite`: the cache, not the database, serves hot reads;
//! - `uncached_get/postgres` (and `/sqlite`): a read that goes to the database every time;
//! - `create_threads/postgres/8` vs `create_threads/postgres/1` (and `/sqlite/*`): creates per
//!   second from 8 client threads against one (group commit).
//!
//! Uses `TBS_TEST_POSTGRES_URL`, or starts a throwaway server with scripts/pg-test-server.sh.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tbsecrets::{MasterKey, SecretStorage, SecretType, StorageOptions};

#[path = "common/creates.rs"]
mod creates;
#[path = "common/pg_server.rs"]
mod pg_server;
use pg_server::Server;

/// The two store locations of a run.
fn locations(server: &Server, dir: &Path) -> (String, String) {
    let sqlite = dir.join("b.db").to_str().unwrap().to_owned();
    let postgres = format!(
        "{}?schema=bench_{}&pool_max=8",
        server.url,
        std::process::id()
    );
    (sqlite, postgres)
}

fn benches(c: &mut Criterion) {
    let server = Server::get();
    let dir = tempfile::tempdir().unwrap();
    let key = MasterKey::generate();
    let (sqlite_location, postgres_location) = locations(&server, dir.path());
    let open = |location: &str| {
        Arc::new(
            SecretStorage::open(location, StorageOptions::with_master_key(key.clone())).unwrap(),
        )
    };
    let sqlite = open(&sqlite_location);
    let postgres = open(&postgres_location);
    for store in [&sqlite, &postgres] {
        store
            .create("default", "api-key", SecretType::Text, &[b'x'; 32], "")
            .unwrap();
        store.get("default", "api-key").unwrap();
    }

    let mut group = c.benchmark_group("warm_get");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sqlite", |b| {
        b.iter(|| sqlite.get("default", "api-key").unwrap())
    });
    group.bench_function("postgres", |b| {
        b.iter(|| postgres.get("default", "api-key").unwrap())
    });
    group.finish();

    // Uncached: the same stores opened with the value cache off, so every read goes to the
    // database (one round trip for the row; the data key stays unwrapped in memory).
    let uncached = |location: &str| {
        let mut options = StorageOptions::with_master_key(key.clone());
        options.cache_values = false;
        SecretStorage::open(location, options).unwrap()
    };
    let sqlite_uncached = uncached(&sqlite_location);
    let postgres_uncached = uncached(&postgres_location);
    let mut group = c.benchmark_group("uncached_get");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sqlite", |b| {
        b.iter(|| sqlite_uncached.get("default", "api-key").unwrap())
    });
    group.bench_function("postgres", |b| {
        b.iter(|| postgres_uncached.get("default", "api-key").unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("create_threads");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    let counter = AtomicU64::new(0);
    for (name, store) in [("sqlite", &sqlite), ("postgres", &postgres)] {
        for threads in [1usize, 8] {
            group.bench_with_input(BenchmarkId::new(name, threads), &threads, |b, &threads| {
                // Time per create in the steady state, so criterion's "thrpt" reads as creates/s.
                b.iter_custom(|iters| creates::steady_creates(store, &counter, threads, iters))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = postgres_benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(postgres_benches);
