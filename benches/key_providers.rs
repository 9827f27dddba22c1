//! Key providers: what a get costs when the master key is in a PKCS#11 token (SoftHSM2,
//! in-process) rather than in this process (`raw`), each with its baseline in the same run:
//! - `get/warm_raw` vs `get/warm_pkcs11`: the tenant's data key is cached, so the provider
//!   is not called (the two should be equal);
//! - `get/cold_raw` vs `get/cold_pkcs11`: `forget_keys()` before each get, so every get
//!   unwraps the data key (raw: AES-GCM here; pkcs11: a `C_Decrypt` in the token).
//!
//! Needs SoftHSM2 (`apt-get install -y softhsm2`), like tests/pkcs11.rs.

#[path = "../tests/common/softhsm.rs"]
mod softhsm;

use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::Arc;
use tbsecrets::{MasterKey, SecretStorage, SecretType, StorageOptions};

fn store(dir: &std::path::Path, name: &str, options: StorageOptions) -> SecretStorage {
    let store = SecretStorage::open(dir.join(name), options).expect("open store");
    store
        .create("default", "api-key", SecretType::Text, &[b'x'; 32], "")
        .expect("create");
    store
}

fn bench_get(c: &mut Criterion) {
    let hsm = softhsm::softhsm();
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = store(
        dir.path(),
        "raw.db",
        StorageOptions::with_master_key(MasterKey::generate()),
    );
    let token = store(
        dir.path(),
        "pkcs11.db",
        StorageOptions::with_key_provider(Arc::new(hsm.provider(softhsm::KEY))),
    );
    let mut group = c.benchmark_group("get");
    for (name, store) in [("raw", &raw), ("pkcs11", &token)] {
        group.bench_function(format!("warm_{name}"), |b| {
            b.iter(|| store.get("default", "api-key").expect("get"))
        });
        group.bench_function(format!("cold_{name}"), |b| {
            b.iter(|| {
                store.forget_keys();
                store.get("default", "api-key").expect("get")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_get);
criterion_main!(benches);
