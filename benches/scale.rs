//! Scale benchmarks (issue 15, goal 6): a store of 1,000,000 secrets over 10,000 tenants
//! against a store of 100,000 secrets over 1,000 tenants, in the same run:
//! - `scale_open/1m` vs `scale_open/100k` (goal: ≤ 200 ms);
//! - resident memory after open and after touching 10% of the secrets (printed, `VmRSS`);
//! - `scale_get/1m` vs `scale_get/100k` (warm) and `scale_session_get/*` (a SERVICE session)
//!   (goal: within 1.2×);
//! - `scale_list_page/1m_10k_tenant/{first,last}` (100 secrets a page of a 10,000-secret
//!   tenant, the first page and the last one read after its cursor; goal ≤ 10 ms a page) vs
//!   `.../last_by_offset` (the last page skipped to with an offset) and
//!   `scale_list_page/100k_100_tenant/*`;
//! - `scale_where_used/100k_sources` vs `scale_where_used/1k_sources` (ten sources use the
//!   secret asked for in both);
//! - master-key rotation of the 10,000 tenants with two reader threads running: the readers'
//!   p50 and p99 during the rotation against theirs just before it (printed;
//!   `TBS_SCALE_ONLY_ROTATION=1` runs only this report).
//!
//! The stores are generated once (see `scale/generate.rs`, also the `gen_large_store`
//! example) and cached under `target/bench-data/`. Run as a test (`cargo test --benches`,
//! `--all-targets`: criterion's test mode, without `--bench`), every step runs once on two
//! small stores of the same shape instead, so a test run does not generate a million secrets.

#[path = "scale/generate.rs"]
mod generate;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use generate::Shape;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tbsecrets::{ListQuery, MasterKey, Principal, Role, SecretStorage, StorageOptions};

const LARGE: Shape = Shape {
    secrets: 1_000_000,
    tenants: 10_000,
    big_tenant: 10_000,
    sources: 100_000,
};

const SMALL: Shape = Shape {
    secrets: 100_000,
    tenants: 1_000,
    big_tenant: 100,
    sources: 1_000,
};

/// [`LARGE`]'s shape at 1/500 of its size, for criterion's test mode.
const TEST_LARGE: Shape = Shape {
    secrets: 2_000,
    tenants: 20,
    big_tenant: 200,
    sources: 200,
};

/// [`SMALL`]'s shape at 1/100 of its size, for criterion's test mode.
const TEST_SMALL: Shape = Shape {
    secrets: 1_000,
    tenants: 10,
    big_tenant: 100,
    sources: 10,
};

const PAGE: usize = 100;

/// The stores compared, with the labels of their cached files: the full-size ones when run
/// as a benchmark (`cargo bench` passes `--bench`), small ones in criterion's test mode.
struct Stores {
    large: (Shape, &'static str),
    small: (Shape, &'static str),
}

fn stores() -> Stores {
    let args: Vec<String> = std::env::args().collect();
    let test_mode = !args.iter().any(|a| a == "--bench") || args.iter().any(|a| a == "--test");
    if test_mode {
        Stores {
            large: (TEST_LARGE, "scale-test-large"),
            small: (TEST_SMALL, "scale-test-small"),
        }
    } else {
        Stores {
            large: (LARGE, "scale-1m"),
            small: (SMALL, "scale-100k"),
        }
    }
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data")
}

fn open(path: &Path, key: &MasterKey) -> SecretStorage {
    SecretStorage::open(path, StorageOptions::with_master_key(key.clone())).expect("open store")
}

/// This process's resident memory in KiB (`VmRSS` of /proc/self/status).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Reads every tenth secret of `shape` (10% of them) once.
fn touch_tenth(store: &SecretStorage, shape: Shape) {
    for i in (0..shape.secrets).step_by(10) {
        let (tenant, name) = shape.secret(i);
        black_box(store.get(&tenant, &name).expect("get"));
    }
}

/// Prints the resident memory a store of `shape` adds after open and after touching 10%.
fn report_memory(label: &str, path: &Path, key: &MasterKey, shape: Shape) {
    let before = rss_kib();
    let store = open(path, key);
    let opened = rss_kib();
    touch_tenth(&store, shape);
    let touched = rss_kib();
    println!(
        "scale_memory/{label}: +{} KiB after open, +{} KiB after touching 10% ({} secrets)",
        opened.saturating_sub(before),
        touched.saturating_sub(before),
        shape.secrets / 10
    );
    store.close().expect("close");
}

/// The `q`-quantile of `samples` (sorted in place).
fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let at = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[at]
}

/// Rotates the master key of a copy of the large store while two threads read from it;
/// prints the readers' p99 during the rotation against their p99 just before it.
fn report_rotation(path: &Path, key: &MasterKey, shape: Shape) {
    let scratch = tempfile::tempdir_in(data_dir()).expect("scratch");
    let copy = scratch.path().join("rotate.db");
    std::fs::copy(path, &copy).expect("copy");
    let store = open(&copy, key);
    let rotating = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let (report, elapsed, mut before, mut during) = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let (store, rotating, done) = (&store, &rotating, &done);
                scope.spawn(move || {
                    let (mut before, mut during) = (Vec::new(), Vec::new());
                    let mut i = r * 7919;
                    while !done.load(Ordering::Acquire) {
                        i = (i + 104_729) % shape.secrets;
                        let (tenant, name) = shape.secret(i);
                        let phase = rotating.load(Ordering::Acquire);
                        let start = Instant::now();
                        black_box(store.get(&tenant, &name).expect("get during rotation"));
                        let took = start.elapsed();
                        if phase {
                            during.push(took);
                        } else {
                            before.push(took);
                        }
                    }
                    (before, during)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(1)); // the readers' baseline
        rotating.store(true, Ordering::Release);
        let start = Instant::now();
        let report = store
            .rotate_master_key(&MasterKey::generate())
            .expect("rotate");
        let elapsed = start.elapsed();
        done.store(true, Ordering::Release);
        let (mut before, mut during) = (Vec::new(), Vec::new());
        for reader in readers {
            let (b, d) = reader.join().expect("reader");
            before.extend(b);
            during.extend(d);
        }
        (report, elapsed, before, during)
    });
    let (p50_before, p50_during) = (quantile(&mut before, 0.5), quantile(&mut during, 0.5));
    let (p99_before, p99_during) = (quantile(&mut before, 0.99), quantile(&mut during, 0.99));
    println!(
        "scale_rotation/10k_tenants: {} keys rewrapped in {elapsed:.1?} with 2 readers; \
         readers' p99 {p99_during:.1?} during ({} gets) vs {p99_before:.1?} before ({} gets), \
         ratio {:.2}; p50 {p50_during:.1?} during vs {p50_before:.1?} before",
        report.keys,
        during.len(),
        before.len(),
        p99_during.as_secs_f64() / p99_before.as_secs_f64().max(1e-9)
    );
}

fn bench_scale(c: &mut Criterion) {
    let dir = data_dir();
    let Stores {
        large: (large_shape, large_label),
        small: (small_shape, small_label),
    } = stores();
    let (large_path, large_key) = generate::cached_store(&dir, large_label, large_shape);
    if std::env::var_os("TBS_SCALE_ONLY_ROTATION").is_some() {
        // Only the rotation report (it copies the large store first).
        report_rotation(&large_path, &large_key, large_shape);
        return;
    }
    let (small_path, small_key) = generate::cached_store(&dir, small_label, small_shape);

    report_memory("100k", &small_path, &small_key, small_shape);
    report_memory("1m", &large_path, &large_key, large_shape);

    let mut group = c.benchmark_group("scale_open");
    group.sample_size(10);
    for (label, path, key) in [
        ("100k", &small_path, &small_key),
        ("1m", &large_path, &large_key),
    ] {
        group.bench_function(label, |b| {
            b.iter(|| {
                let store = open(path, key);
                store.get("tenant-1", "s0").expect("read");
            })
        });
    }
    group.finish();

    let large = open(&large_path, &large_key);
    let small = open(&small_path, &small_key);
    let stores = [("100k", &small), ("1m", &large)];

    let mut group = c.benchmark_group("scale_get");
    group.throughput(Throughput::Elements(1));
    for (label, store) in stores {
        store.get("tenant-1", "s5").expect("warm");
        group.bench_function(label, |b| {
            b.iter(|| store.get("tenant-1", "s5").expect("get"))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("scale_session_get");
    group.throughput(Throughput::Elements(1));
    for (label, store) in stores {
        let session = store.session(Principal::new("tenant-1", Role::Service));
        session.get("tenant-1", "s5").expect("warm");
        group.bench_function(label, |b| {
            b.iter(|| session.get("tenant-1", "s5").expect("get"))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("scale_list_page");
    for (label, store, secrets) in [
        ("100k_100_tenant", &small, small_shape.big_tenant),
        ("1m_10k_tenant", &large, large_shape.big_tenant),
    ] {
        // The cursor of the last page: the name before its first entry.
        let all = store.list("tenant-0", &ListQuery::default()).expect("list");
        assert_eq!(all.items.len(), secrets);
        let last_offset = (secrets - 1) / PAGE * PAGE;
        // (A tenant of one page has its first page only.)
        let before_last = last_offset
            .checked_sub(1)
            .map(|i| all.items[i].name.clone());
        let mut pages = vec![("first", None, 0)];
        if before_last.is_some() {
            pages.extend([
                ("last", before_last, 0),
                ("last_by_offset", None, last_offset),
            ]);
        }
        for (which, after, offset) in pages {
            let query = ListQuery {
                after,
                offset,
                limit: PAGE,
                ..ListQuery::default()
            };
            group.bench_function(format!("{label}/{which}"), |b| {
                b.iter(|| {
                    let listed = store.list("tenant-0", &query).expect("list");
                    assert!(!listed.items.is_empty());
                    listed
                })
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("scale_where_used");
    for (label, store) in [("1k_sources", &small), ("100k_sources", &large)] {
        group.bench_function(label, |b| {
            b.iter(|| {
                let used = store.where_used("tenant-1", "s0").expect("where used");
                assert_eq!(used.len(), 10);
                used
            })
        });
    }
    group.finish();
    drop((large, small));

    report_rotation(&large_path, &large_key, large_shape);
}

criterion_group! {
    name = scale_benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = bench_scale
}
criterion_main!(scale_benches);
