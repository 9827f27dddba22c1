//! Generates a large store for the scale benchmark (`benches/scale.rs`) and the
//! `gen_large_store` example: secrets spread over tenants, TEXT and TEXT_FILE mixed, every
//! row written through the public API (real ciphertexts, sealed pointers), plus tracked
//! sources for where-used.
//!
//! Fast because it is built where a sync costs nothing (a directory on tmpfs, `/dev/shm`,
//! when there is one) with the audit log off and several writer threads sharing the commits;
//! the finished file is then checkpointed and copied to its place, next to its key file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tbsecrets::{MasterKey, SecretStorage, SecretType, StorageOptions};

/// The shape of a generated store.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Secrets in all.
    pub secrets: usize,
    /// Tenants in all (`tenant-0` … ).
    pub tenants: usize,
    /// Secrets of `tenant-0`, the big tenant listed page by page; the others share the rest.
    pub big_tenant: usize,
    /// Tracked sources in `tenant-1` (each references two secrets; the first ten also `s0`).
    pub sources: usize,
}

impl Shape {
    /// The tenant and name of secret `i` (`0 <= i < secrets`).
    pub fn secret(&self, i: usize) -> (String, String) {
        if i < self.big_tenant {
            return ("tenant-0".to_owned(), format!("s{i}"));
        }
        let rest = i - self.big_tenant;
        let others = self.tenants - 1;
        (
            format!("tenant-{}", 1 + rest % others),
            format!("s{}", rest / others),
        )
    }

    /// Secrets of each tenant other than `tenant-0` (at least).
    pub fn per_small_tenant(&self) -> usize {
        (self.secrets - self.big_tenant) / (self.tenants - 1)
    }
}

/// The value of secret `i`: TEXT for three in four, a small multi-line TEXT_FILE otherwise.
pub fn value(i: usize) -> (SecretType, String) {
    if i % 4 == 3 {
        (
            SecretType::TextFile,
            format!("-----BEGIN KEY {i}-----\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ{i:08}\n-----END KEY-----\n"),
        )
    } else {
        (SecretType::Text, format!("value-of-secret-{i:08}"))
    }
}

/// The store file and key file of `shape` under `dir`, generated unless both exist already.
/// Returns the store's path and master key.
pub fn cached_store(dir: &Path, label: &str, shape: Shape) -> (PathBuf, MasterKey) {
    std::fs::create_dir_all(dir).expect("store directory");
    let path = dir.join(format!("{label}.db"));
    let key_path = dir.join(format!("{label}.key"));
    if path.exists() && key_path.exists() {
        let key = tbsecrets::read_key_file(&key_path).expect("key file");
        return (path, key);
    }
    let started = std::time::Instant::now();
    let key = generate(&path, shape);
    tbsecrets::write_key_file(&key_path, &key).expect("key file");
    eprintln!(
        "generated {label}: {} secrets over {} tenants, {} sources in {:.1?}",
        shape.secrets,
        shape.tenants,
        shape.sources,
        started.elapsed()
    );
    (path, key)
}

/// Generates the store of `shape` at `path` (replacing whatever is there) and returns its
/// master key.
pub fn generate(path: &Path, shape: Shape) -> MasterKey {
    assert!(shape.tenants >= 2 && shape.big_tenant < shape.secrets);
    let shm = Path::new("/dev/shm");
    let scratch = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("scratch directory");
    let building = scratch.path().join("building.db");
    let key = MasterKey::generate();
    {
        let options = StorageOptions {
            audit: tbsecrets::AuditOptions::disabled(),
            cache_values: false,
            ..StorageOptions::with_master_key(key.clone())
        };
        let store = Arc::new(SecretStorage::open(&building, options).expect("open"));
        let next = Arc::new(AtomicUsize::new(0));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let store = store.clone();
                let next = next.clone();
                scope.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= shape.secrets {
                        break;
                    }
                    let (tenant, name) = shape.secret(i);
                    let (secret_type, value) = value(i);
                    store
                        .create(&tenant, &name, secret_type, value.as_bytes(), "")
                        .expect("create");
                });
            }
        });
        let names = shape.per_small_tenant().max(3);
        for j in 0..shape.sources {
            let mut document = format!(
                "{{\"a\": \"${{secret:s{}}}\", \"b\": \"${{secret:s{}}}\"",
                1 + j % (names - 1),
                1 + (j + 1) % (names - 1)
            );
            if j < 10 {
                document.push_str(", \"c\": \"${secret:s0}\"");
            }
            document.push('}');
            store
                .track_references("tenant-1", &format!("rule-node-{j}"), &document)
                .expect("track");
        }
        store.close().expect("close");
    }
    let conn = rusqlite::Connection::open(&building).expect("sqlite");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    drop(conn);
    // Whatever an older run left beside `path` (WAL, anchor, audit log) goes: a new key could
    // not open it.
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
        let name = name.to_string_lossy();
        for entry in std::fs::read_dir(dir).expect("store directory").flatten() {
            if entry.file_name().to_string_lossy().starts_with(&*name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    std::fs::copy(&building, path).expect("copy the store");
    let mut anchor = building.as_os_str().to_owned();
    anchor.push(".anchor");
    let mut target_anchor = path.as_os_str().to_owned();
    target_anchor.push(".anchor");
    if Path::new(&anchor).exists() {
        std::fs::copy(&anchor, &target_anchor).expect("copy the anchor");
    }
    key
}
