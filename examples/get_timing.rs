//! The Rust side of the Python `get` figure (examples/python/bench.py): the same store set-up
//! and the same loop of `get` calls, timed. Run with `cargo run --profile wheel --example
//! get_timing` (the profile the Python wheel is built with).

use std::time::Instant;
use tbsecrets::{MasterKey, SecretStorage, SecretType, StorageOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const TENANT: &str = "13814000-1dd2-11b2-8080-808080808080";
    let dir = tempfile::tempdir()?;
    let mut options = StorageOptions::with_master_key(MasterKey::generate());
    options.audit.enabled = false;
    let store = SecretStorage::open(dir.path().join("b.db"), options)?;
    store.create(TENANT, "api-key", SecretType::Text, &[b'x'; 32], "")?;
    let n = 200_000u32;
    drop(store.get(TENANT, "api-key")?);
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(store.get(TENANT, "api-key")?);
    }
    let per_call = start.elapsed().as_nanos() / u128::from(n);
    println!("rust get: {per_call} ns/call ({n} calls)");
    Ok(())
}
