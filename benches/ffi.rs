//! The C ABI against the Rust API it wraps, in the same run (issue: C ABI).
//!
//! - `ffi_get_32B`: `tbs_store_get` + `tbs_buffer_free` vs `SecretStorage::get` of a
//!   32-byte secret on a warm handle;
//! - `ffi_resolve_json_1MiB`: `tbs_store_resolve_json` + `tbs_buffer_free` vs
//!   `SecretStorage::resolve_json` of a 1 MiB ThingsBoard rule-chain export (the fixture chain
//!   repeated; 6 placeholders per copy, TEXT and TEXT_FILE).
//!
//! The extern "C" functions are called from Rust exactly as C calls them, through the
//! declarations of `tests/common/c_abi.rs` (not inlined: they are the library's
//! `#[no_mangle]` exports). `benches/c/bench_ffi.c` measures
//! the same from a C program linked to the shared library.
//!
//! `cargo bench --bench ffi -- --warm-up-time 1 --measurement-time 3`

#[path = "../tests/common/c_abi.rs"]
mod c_abi;
#[path = "../tests/common/mod.rs"]
mod common;

use c_abi::{
    tbs_buffer, tbs_buffer_free, tbs_status, tbs_store, tbs_store_close, tbs_store_get,
    tbs_store_open, tbs_store_resolve_json,
};
use common::{fixture, fixture_secrets};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use std::ffi::CString;
use tbsecrets::{MasterKey, SecretStorage, StorageOptions};
use zeroize::Zeroizing;

const KEY: [u8; 32] = [0x42; 32];
const MIB: usize = 1024 * 1024;

struct Stores {
    _dir: tempfile::TempDir,
    rust: SecretStorage,
    c: *mut tbs_store,
}

/// One store file with the fixture secrets and a 32-byte `api-key`, opened twice: through the
/// Rust API and through the C ABI.
fn stores() -> Stores {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.db");
    let rust = SecretStorage::open(
        &path,
        StorageOptions::with_master_key(MasterKey::from_bytes(&KEY).expect("key")),
    )
    .expect("open");
    for (name, secret_type, value) in fixture_secrets() {
        rust.create("default", &name, secret_type, value.as_bytes(), "")
            .expect("create");
    }
    rust.create(
        "default",
        "api-key",
        tbsecrets::SecretType::Text,
        &[b'k'; 32],
        "",
    )
    .expect("create");
    let path_c = CString::new(path.to_str().expect("utf-8 path")).expect("path");
    let mut c = std::ptr::null_mut();
    // SAFETY: valid path, key and out pointer.
    let status =
        unsafe { tbs_store_open(path_c.as_ptr(), KEY.as_ptr(), 32, std::ptr::null(), &mut c) };
    assert_eq!(status, tbs_status::TBS_OK);
    Stores { _dir: dir, rust, c }
}

fn empty() -> tbs_buffer {
    tbs_buffer::empty()
}

fn get(c: &mut Criterion) {
    let stores = stores();
    let (tenant, name) = (c"default", c"api-key");
    let mut group = c.benchmark_group("ffi_get_32B");
    group.throughput(Throughput::Elements(1));
    group.bench_function("rust_get_value", |b| {
        b.iter(|| {
            stores
                .rust
                .get(black_box("default"), black_box("api-key"))
                .expect("get")
        })
    });
    group.bench_function("c_abi_tbs_store_get", |b| {
        b.iter(|| {
            let mut value = empty();
            // SAFETY: live handle, valid strings and buffer.
            unsafe {
                let status = tbs_store_get(
                    stores.c,
                    black_box(tenant.as_ptr()),
                    black_box(name.as_ptr()),
                    &mut value,
                );
                assert_eq!(status, tbs_status::TBS_OK);
                assert_eq!(value.len, 32);
                tbs_buffer_free(&mut value);
            }
        })
    });
    group.finish();
    // SAFETY: not used afterwards.
    unsafe { tbs_store_close(stores.c) };
}

/// The fixture rule chain repeated into a JSON array of at least 1 MiB.
fn config_1mib() -> String {
    let chain = fixture("rule_chain_with_secrets.json");
    let copies = MIB.div_ceil(chain.len() + 2);
    format!("[{}]", vec![chain.as_str(); copies].join(",\n"))
}

fn resolve(c: &mut Criterion) {
    let stores = stores();
    let doc = config_1mib();
    let mut group = c.benchmark_group("ffi_resolve_json_1MiB");
    group.throughput(Throughput::Bytes(doc.len() as u64));
    group.sample_size(30);
    group.bench_function("rust_resolve_json", |b| {
        b.iter(|| {
            Zeroizing::new(
                stores
                    .rust
                    .resolve_json("default", black_box(&doc))
                    .expect("resolve")
                    .into_owned(),
            )
        })
    });
    group.bench_function("c_abi_tbs_store_resolve_json", |b| {
        b.iter(|| {
            let mut out = empty();
            // SAFETY: live handle, valid strings and buffers.
            unsafe {
                let status = tbs_store_resolve_json(
                    stores.c,
                    c"default".as_ptr(),
                    black_box(doc.as_ptr()),
                    doc.len(),
                    0,
                    &mut out,
                );
                assert_eq!(status, tbs_status::TBS_OK);
                tbs_buffer_free(&mut out);
            }
        })
    });
    group.finish();
    // SAFETY: not used afterwards.
    unsafe { tbs_store_close(stores.c) };
}

criterion_group!(benches, get, resolve);
criterion_main!(benches);
