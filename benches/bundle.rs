//! Export bundles at the scale of a large tenant: 10,000 TEXT secrets exported to one age
//! recipient and imported into a fresh store, each against its same-run baseline:
//! - `bundle/export_10k` vs `bundle/baseline_get_10k`: reading every value once through `get`
//!   (the decryption an export cannot avoid);
//! - `bundle/import_10k` vs `bundle/baseline_create_1k`: creating secrets one by one (one
//!   durable transaction each; 1,000 of them, compare per secret: criterion's elements/s).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use tbsecrets::bundle::{ExportOptions, ImportOptions};
use tbsecrets::{MasterKey, SecretStorage, SecretType, StorageOptions};

const SECRETS: usize = 10_000;
const TENANT: &str = "tenant-a";

fn open(path: &std::path::Path) -> SecretStorage {
    SecretStorage::open(path, StorageOptions::with_master_key(MasterKey::generate()))
        .expect("open store")
}

fn name(i: usize) -> String {
    format!("secret-{i:05}")
}

fn bench_bundle(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let identity = {
        use age::secrecy::ExposeSecret;
        identity.to_string().expose_secret().to_owned()
    };

    // The source store, filled by one import of a bundle made on a scratch store.
    let source = open(&dir.path().join("source.db"));
    {
        let scratch = open(&dir.path().join("scratch.db"));
        for i in 0..SECRETS {
            scratch
                .create(TENANT, &name(i), SecretType::Text, &[b'v'; 32], "")
                .expect("create");
        }
        let bundle = scratch
            .export_bundle(TENANT, &recipient, &ExportOptions::default())
            .expect("export");
        let trust = ImportOptions::default()
            .trust(&scratch.export_key().expect("key").to_string())
            .expect("trust");
        source
            .import_bundle(TENANT, &bundle.bytes, &identity, &trust)
            .expect("import");
    }
    let trust_source = ImportOptions::default()
        .trust(&source.export_key().expect("key").to_string())
        .expect("trust");
    let bundle = source
        .export_bundle(TENANT, &recipient, &ExportOptions::default())
        .expect("export");
    assert_eq!(bundle.secrets, SECRETS);

    let mut group = c.benchmark_group("bundle");
    group.sample_size(10);
    group.throughput(Throughput::Elements(SECRETS as u64));
    group.bench_function("export_10k", |b| {
        b.iter(|| {
            source
                .export_bundle(TENANT, &recipient, &ExportOptions::default())
                .expect("export")
                .bytes
                .len()
        })
    });
    group.bench_function("baseline_get_10k", |b| {
        b.iter(|| {
            source.forget_keys(); // an export reads from the store, not the cache
            for i in 0..SECRETS {
                black_box(source.get(TENANT, &name(i)).expect("get"));
            }
        })
    });
    let mut fresh = 0;
    group.bench_function("import_10k", |b| {
        b.iter_batched(
            || {
                fresh += 1;
                open(&dir.path().join(format!("import-{fresh}.db")))
            },
            |target| {
                let report = target
                    .import_bundle(TENANT, &bundle.bytes, &identity, &trust_source)
                    .expect("import");
                black_box(report);
                target
            },
            BatchSize::PerIteration,
        )
    });
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("baseline_create_1k", |b| {
        b.iter_batched(
            || {
                fresh += 1;
                open(&dir.path().join(format!("create-{fresh}.db")))
            },
            |target| {
                for i in 0..1_000 {
                    target
                        .create(TENANT, &name(i), SecretType::Text, &[b'v'; 32], "")
                        .expect("create");
                }
                target
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_bundle);
criterion_main!(benches);
