//! Core benchmarks (issue: core). Each figure has its baseline in the same run:
//! - `get/tbsecrets` vs `get/bare_aes_gcm_open` (same blob size and AAD length);
//! - `get/audit_off` vs `get/tbsecrets` (audit on, host) and
//!   `get/audit_on_service_session` (a SERVICE principal: policy check + batched audit),
//!   and the same with 4 threads (`get_value_4_threads/*`, aggregate time per get);
//! - `create/durable` (one fsync'd transaction per create, plus the synced audit record) vs
//!   `create/baseline_write_4k_fdatasync` and `create/durable_audit_off`, and creates/s with 1
//!   4 and 8 threads (in the steady state: `common/creates.rs`);
//! - `open/100k_secrets_1k_tenants` (nothing is loaded or decrypted eagerly);
//! - `audit_verify/200k_records` vs reading the same log line by line with one HMAC per line.

use aes_gcm::aead::{Aead, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, KeyInit};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hmac::Mac;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tbsecrets::{MasterKey, Principal, Role, SecretStorage, SecretType, StorageOptions};
use zeroize::Zeroizing;

#[path = "common/creates.rs"]
mod creates;

/// HMAC-SHA256, the MAC of the audit chain (the floor of `audit_verify`).
type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn open_store(path: &Path, key: &MasterKey) -> SecretStorage {
    SecretStorage::open(path, StorageOptions::with_master_key(key.clone())).expect("open store")
}

fn bench_get_value(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = MasterKey::generate();
    let store = open_store(&dir.path().join("get.db"), &key);
    let value = [b'x'; 32];
    store
        .create("default", "api-key", SecretType::Text, &value, "")
        .expect("create");
    assert_eq!(
        store.get("default", "api-key").expect("warm").as_bytes(),
        &value
    );

    // Baseline: a bare aes-gcm open of a blob of the same size with an AAD of the same length.
    let cipher = Aes256Gcm::new(&Aes256Gcm::generate_key(&mut OsRng));
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let aad = vec![7u8; 4 + 18 + 4 + 17 + 4 + 7 + 4 + 7 + 4 + 4 + 4 + 8];
    let sealed = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: &value,
                aad: &aad,
            },
        )
        .expect("seal");

    // The same store without an audit log (another file, same secret).
    let unaudited = SecretStorage::open(
        dir.path().join("get-unaudited.db"),
        StorageOptions {
            audit: tbsecrets::audit::AuditOptions::disabled(),
            ..StorageOptions::with_master_key(key.clone())
        },
    )
    .expect("open unaudited");
    unaudited
        .create("default", "api-key", SecretType::Text, &value, "")
        .expect("create");
    let service = store.session(tbsecrets::Principal::new(
        "default",
        tbsecrets::Role::Service,
    ));

    let mut group = c.benchmark_group("get");
    group.throughput(Throughput::Elements(1));
    group.bench_function("audit_off", |b| {
        b.iter(|| unaudited.get("default", "api-key").expect("get"))
    });
    group.bench_function("tbsecrets", |b| {
        b.iter(|| store.get("default", "api-key").expect("get"))
    });
    group.bench_function("audit_on_service_session", |b| {
        b.iter(|| service.get("default", "api-key").expect("get"))
    });
    group.bench_function("bare_aes_gcm_open", |b| {
        b.iter(|| {
            cipher
                .decrypt(
                    &nonce,
                    Payload {
                        msg: &sealed,
                        aad: &aad,
                    },
                )
                .expect("open")
        })
    });
    group.finish();
}

/// Four threads reading the same secret at once, audit off vs on (SERVICE sessions): the
/// batch's lock is shared, so this is where contention would show. Time is per get.
fn bench_get_value_threads(c: &mut Criterion) {
    const THREADS: u64 = 4;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = MasterKey::generate();
    let open = |file: &str, audit: bool| {
        let store = SecretStorage::open(
            dir.path().join(file),
            StorageOptions {
                audit: if audit {
                    tbsecrets::audit::AuditOptions::default()
                } else {
                    tbsecrets::audit::AuditOptions::disabled()
                },
                ..StorageOptions::with_master_key(key.clone())
            },
        )
        .expect("open");
        store
            .create("default", "api-key", SecretType::Text, &[b'x'; 32], "")
            .expect("create");
        Arc::new(store)
    };
    let mut group = c.benchmark_group("get_value_4_threads");
    group.throughput(Throughput::Elements(1));
    for (label, audit) in [("audit_off", false), ("audit_on_service_session", true)] {
        let store = open(&format!("{label}.db"), audit);
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let per_thread = iters.div_ceil(THREADS);
                let start = Instant::now();
                std::thread::scope(|scope| {
                    for _ in 0..THREADS {
                        let store = store.clone();
                        scope.spawn(move || {
                            let session = store.session(tbsecrets::Principal::new(
                                "default",
                                tbsecrets::Role::Service,
                            ));
                            for _ in 0..per_thread {
                                std::hint::black_box(
                                    session.get("default", "api-key").expect("get"),
                                );
                            }
                        });
                    }
                });
                // Wall time for all `iters` gets: criterion reports aggregate time per get.
                start.elapsed()
            })
        });
    }
    group.finish();
}

fn bench_create(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = MasterKey::generate();
    let store = Arc::new(open_store(&dir.path().join("create.db"), &key));
    let counter = AtomicU64::new(0);
    let mut group = c.benchmark_group("create");
    group.sample_size(30);
    // Baseline: what one durable commit costs on this disk right now — a 4 KiB write plus
    // fdatasync in the same directory (a SQLite WAL commit is at least one of these).
    let probe_path = dir.path().join("fsync-probe");
    let mut probe = std::fs::File::create(&probe_path).expect("probe file");
    group.bench_function("baseline_write_4k_fdatasync", |b| {
        use std::io::{Seek, Write};
        let page = [0u8; 4096];
        b.iter(|| {
            probe.seek(std::io::SeekFrom::Start(0)).expect("seek");
            probe.write_all(&page).expect("write");
            probe.sync_data().expect("fdatasync");
        })
    });
    group.bench_function("durable", |b| {
        b.iter(|| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            store
                .create(
                    "default",
                    &format!("s{n}"),
                    SecretType::Text,
                    b"value-of-a-secret",
                    "",
                )
                .expect("create")
        })
    });
    // The same without the audit log: what the synced audit record adds to a create.
    let unaudited = SecretStorage::open(
        dir.path().join("create-unaudited.db"),
        StorageOptions {
            audit: tbsecrets::audit::AuditOptions::disabled(),
            ..StorageOptions::with_master_key(key.clone())
        },
    )
    .expect("open unaudited");
    group.bench_function("durable_audit_off", |b| {
        b.iter(|| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            unaudited
                .create(
                    "default",
                    &format!("s{n}"),
                    SecretType::Text,
                    b"value-of-a-secret",
                    "",
                )
                .expect("create")
        })
    });
    for threads in [1usize, 4, 8] {
        group.bench_with_input(
            BenchmarkId::new("threads", threads),
            &threads,
            |b, &threads| {
                // Time per create in the steady state, so criterion's "thrpt" reads as creates/s.
                b.iter_custom(|iters| creates::steady_creates(&store, &counter, threads, iters))
            },
        );
    }
    group.finish();
}

/// Builds (once, cached under target/) a store of 100,000 secrets over 1,000 tenants: one real
/// secret per tenant through the API, then rows copied in bulk with SQL (open decrypts nothing,
/// so copied ciphertexts measure open honestly).
fn big_store(key_path: &Path, store_path: &Path) -> MasterKey {
    if store_path.exists() && key_path.exists() {
        return tbsecrets::read_key_file(key_path).expect("key");
    }
    let _ = std::fs::remove_file(key_path);
    // A store left half-built goes with everything beside it (WAL, anchor file, audit log):
    // a new key could not open them.
    if let (Some(dir), Some(name)) = (store_path.parent(), store_path.file_name()) {
        let name = name.to_string_lossy();
        for entry in std::fs::read_dir(dir).expect("bench dir").flatten() {
            if entry.file_name().to_string_lossy().starts_with(&*name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let key = MasterKey::generate();
    {
        let store = open_store(store_path, &key);
        for t in 0..1000 {
            store
                .create(&format!("tenant-{t}"), "s0", SecretType::Text, b"v", "")
                .expect("create");
        }
    }
    let conn = rusqlite::Connection::open(store_path).expect("sqlite");
    conn.execute_batch(
        "BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 99)
         INSERT INTO tbs_secrets (tenant, name, type, description, version, created_at,
                updated_at, value_updated_at, last_used_at, use_count, seal_seq, seal)
         SELECT s.tenant, 's' || n.i, s.type, s.description, s.version, s.created_at,
                s.updated_at, s.value_updated_at, s.last_used_at, s.use_count, s.seal_seq, s.seal
           FROM tbs_secrets s, n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 99)
         INSERT INTO tbs_secret_versions (tenant, name, version, dek_id, value, created_at)
         SELECT v.tenant, 's' || n.i, v.version, v.dek_id,
                v.value, v.created_at
           FROM tbs_secret_versions v, n;
         COMMIT; PRAGMA wal_checkpoint(TRUNCATE);",
    )
    .expect("bulk copy");
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM tbs_secrets", [], |r| r.get(0))
        .expect("count");
    assert_eq!(count, 100_000);
    tbsecrets::write_key_file(key_path, &key).expect("key file");
    key
}

fn bench_open(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let store_path = dir.join("big.db");
    let key = big_store(&dir.join("big.key"), &store_path);
    let mut group = c.benchmark_group("open");
    group.sample_size(20);
    group.bench_function("100k_secrets_1k_tenants", |b| {
        b.iter(|| {
            let store = open_store(&store_path, &key);
            // Prove it is usable: one read from a tenant in the middle.
            store.get("tenant-500", "s0").expect("read");
        })
    });
    group.finish();
}

/// The authenticated data of a wrapped data key (docs/FORMATS.md, "Sealed blob"): the
/// length-prefixed label, blob header, tenant and data key id.
fn dek_aad(header: &[u8], tenant: &str, dek_id: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(64 + header.len());
    for field in [
        &b"tbsecrets/v1/dek"[..],
        header,
        tenant.as_bytes(),
        &dek_id.to_be_bytes(),
    ] {
        aad.extend_from_slice(&(field.len() as u32).to_be_bytes());
        aad.extend_from_slice(field);
    }
    aad
}

/// What `MasterKey::wrap` does, with `aes-gcm` alone: a sealed blob `version 1 | kek_id |
/// nonce | ciphertext | tag` of the data key under a fresh random nonce.
fn bare_wrap(kek: &Aes256Gcm, kek_id: u32, tenant: &str, dek_id: u32, key: &[u8; 32]) -> Vec<u8> {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let mut blob = Vec::with_capacity(1 + 4 + 12 + 32 + 16);
    blob.push(1);
    blob.extend_from_slice(&kek_id.to_be_bytes());
    blob.extend_from_slice(&nonce);
    let aad = dek_aad(&blob, tenant, dek_id);
    let sealed = kek
        .encrypt(
            &nonce,
            Payload {
                msg: key,
                aad: &aad,
            },
        )
        .expect("seal");
    blob.extend_from_slice(&sealed);
    blob
}

/// What `MasterKey::unwrap` does, with `aes-gcm` alone: open the blob, then prepare the data
/// key's cipher (its key schedule).
fn bare_unwrap(
    kek: &Aes256Gcm,
    tenant: &str,
    dek_id: u32,
    wrapped: &[u8],
) -> (Zeroizing<[u8; 32]>, Aes256Gcm) {
    let (header, body) = wrapped.split_at(1 + 4 + 12);
    let aad = dek_aad(header, tenant, dek_id);
    let plain = Zeroizing::new(
        kek.decrypt(
            aes_gcm::Nonce::from_slice(&header[5..]),
            Payload {
                msg: body,
                aad: &aad,
            },
        )
        .expect("unwrap"),
    );
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&plain);
    let cipher = Aes256Gcm::new(key.as_ref().into());
    (key, cipher)
}

/// Master-key rotation of a store with 10,000 tenants (one data key each): every data key is
/// unwrapped and wrapped again, the header replaced, in one transaction. Baseline in the same
/// run: the same number of bare unwrap+wrap operations in memory.
fn bench_rotation(c: &mut Criterion) {
    const TENANTS: usize = 10_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rot.db");
    let store = open_store(&path, &MasterKey::generate());
    for t in 0..TENANTS {
        store
            .create(&format!("tenant-{t}"), "s", SecretType::Text, b"v", "")
            .expect("create");
    }
    let mut group = c.benchmark_group("rotate_master_key");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TENANTS as u64));
    group.bench_function("10k_tenants", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let next = MasterKey::generate();
                let start = Instant::now();
                let report = store.rotate_master_key(&next).expect("rotate");
                total += start.elapsed();
                assert_eq!(report.keys, TENANTS);
            }
            total
        })
    });
    let kek = Aes256Gcm::new(&Aes256Gcm::generate_key(&mut OsRng));
    let dek = Zeroizing::new(<[u8; 32]>::from(Aes256Gcm::generate_key(&mut OsRng)));
    let wrapped = bare_wrap(&kek, 1, "tenant", 1, &dek);
    group.bench_function("baseline_in_memory_unwrap_wrap_10k", |b| {
        b.iter(|| {
            for _ in 0..TENANTS {
                let (k, cipher) = bare_unwrap(&kek, "tenant", 1, &wrapped);
                black_box(cipher);
                black_box(bare_wrap(&kek, 2, "tenant", 1, &k));
            }
        })
    });
    group.finish();
}

/// `HMAC-SHA256(key, data)`, keyed afresh on each call.
fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <HmacSha256 as hmac::KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `audit verify` of a large log (200,000 records, one per unbatched use) vs its floor in
/// the same run: reading the file line by line and computing one HMAC-SHA256 per line.
fn bench_audit_verify(c: &mut Criterion) {
    const RECORDS: usize = 200_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let options = StorageOptions::with_master_key(MasterKey::generate());
    let store = SecretStorage::open(dir.path().join("audit.db"), options).expect("open");
    store
        .create("default", "api-key", SecretType::Text, b"v", "")
        .expect("create");
    // A batch of uses writes one record per principal and secret it saw: gets by 200,000
    // SERVICE principals (a user id each) are 200,000 records from a few batched flushes
    // (a durable change per get took 100 s of the report's run).
    for i in 0..RECORDS {
        let principal = Principal::new("default", Role::Service).with_id(format!("user-{i}"));
        store
            .session(principal)
            .get("default", "api-key")
            .expect("get");
    }
    store.flush_usage().expect("flush");
    let log = store.audit_log_path().expect("log");
    let bytes = std::fs::metadata(&log).expect("log size").len();
    let mut group = c.benchmark_group("audit_verify");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("200k_records", |b| {
        b.iter(|| {
            let report = store.verify_audit_log(Some(&log)).expect("verify");
            assert!(report.is_intact());
            assert!(
                report.records >= RECORDS as u64,
                "{} records",
                report.records
            );
        })
    });
    // A 32-byte key derived as the audit chain derives its keys; one HMAC set up per line.
    let key = hmac_sha256(b"bench", b"floor");
    group.bench_function("baseline_read_lines_and_hmac", |b| {
        use std::io::BufRead;
        b.iter(|| {
            let file = std::fs::File::open(&log).expect("open log");
            let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
            let mut line = Vec::new();
            let mut tags = 0u64;
            while reader.read_until(b'\n', &mut line).expect("read") > 0 {
                tags += u64::from(hmac_sha256(&key, &line)[0]);
                line.clear();
            }
            tags
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_get_value, bench_get_value_threads, bench_create, bench_audit_verify, bench_open, bench_rotation
}
criterion_main!(benches);
