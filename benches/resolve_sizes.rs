//! Resolution throughput against input size (issue 15, the benchmark report's
//! "resolve throughput against input size" plot): text and JSON documents of 64 KiB, 1 MiB and
//! 10 MiB, each with one placeholder per ~8 KiB over 50 secrets, resolved through the store
//! (`resolve_str`, `resolve_json`, and `resolve_into` with one output buffer reused), against a
//! bare `memchr::memmem` scan of the same buffer in the same run (the floor: every resolver
//! reads the whole input at least once).
//!
//! `cargo bench --bench resolve_sizes -- --warm-up-time 1 --measurement-time 2`

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use tbsecrets::{MasterKey, SecretStorage, SecretType, StorageOptions};

const KIB: usize = 1024;
const SIZES: [usize; 3] = [64 * KIB, 1024 * KIB, 10 * 1024 * KIB];
const SECRETS: usize = 50;

/// A JSON array of rule-node-like objects (at least `len` bytes), one placeholder per object
/// of about 8 KiB of filler text.
fn document(len: usize) -> String {
    let filler = "ThingsBoard rule node configuration text without secrets. ".repeat(136);
    let mut doc = String::with_capacity(len + 16 * KIB);
    doc.push('[');
    let mut i = 0;
    while doc.len() < len {
        if i > 0 {
            doc.push_str(",\n");
        }
        doc.push_str(&format!(
            "{{\"id\": {i}, \"password\": \"${{secret:s{:02}}}\", \"filler\": \"{filler}\"}}",
            i % SECRETS
        ));
        i += 1;
    }
    doc.push(']');
    doc
}

fn resolve_sizes(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SecretStorage::open(
        dir.path().join("sizes.db"),
        StorageOptions::with_master_key(MasterKey::generate()),
    )
    .expect("open store");
    for s in 0..SECRETS {
        store
            .create(
                "default",
                &format!("s{s:02}"),
                SecretType::Text,
                format!("value-{s:02}-of-a-secret").as_bytes(),
                "",
            )
            .expect("create");
    }
    let finder = memchr::memmem::Finder::new("${never-found:");
    let mut group = c.benchmark_group("resolve_sizes");
    group.sample_size(10);
    for size in SIZES {
        let doc = document(size);
        let text = store.resolve_str("default", &doc).expect("resolve text");
        assert!(!text.contains("${secret:") && text.contains("value-07-of-a-secret"));
        assert_eq!(
            store
                .resolve_json("default", &doc)
                .expect("resolve json")
                .len(),
            text.len()
        );
        group.throughput(Throughput::Bytes(doc.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("baseline_memmem_scan", size),
            &doc,
            |b, d| b.iter(|| finder.find(black_box(d.as_bytes()))),
        );
        group.bench_with_input(BenchmarkId::new("resolve_str", size), &doc, |b, d| {
            b.iter(|| {
                store
                    .resolve_str("default", black_box(d))
                    .expect("resolve")
                    .len()
            })
        });
        // The same into one output buffer reused call after call (no allocation).
        let mut out = vec![0u8; text.len()];
        let written = store
            .resolve_into("default", &doc, false, Default::default(), &mut out)
            .expect("resolve into");
        assert!(written == text.len() && out == text.as_bytes());
        group.bench_with_input(BenchmarkId::new("resolve_into_text", size), &doc, |b, d| {
            b.iter(|| {
                let options = tbsecrets::ResolveOptions::default();
                store
                    .resolve_into("default", black_box(d), false, options, &mut out)
                    .expect("resolve")
            })
        });
        group.bench_with_input(BenchmarkId::new("resolve_json", size), &doc, |b, d| {
            b.iter(|| {
                store
                    .resolve_json("default", black_box(d))
                    .expect("resolve")
                    .len()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_secs(1));
    targets = resolve_sizes
}
criterion_main!(benches);
