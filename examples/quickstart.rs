//! Quick start: the main job on the embedded default store.
//!
//! Creates a store in a temporary folder with a generated master key, stores a TEXT and a
//! TEXT_FILE secret, reads them back, and shows that the database files hold no plaintext.
//!
//! Run: `cargo run --release --example quickstart`

use tbsecrets::{MasterKey, SecretStorage, SecretType, StorageOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("tbsecrets.db");
    let key = MasterKey::generate();
    let store = SecretStorage::open(&path, StorageOptions::with_master_key(key))?;
    println!("store: {}", path.display());

    let token = b"tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0";
    let ca = b"-----BEGIN CERTIFICATE-----\nMIIBquickstartTestCA\n-----END CERTIFICATE-----\n";
    let info = store.create(
        "default",
        "partner-api-token",
        SecretType::Text,
        token,
        "REST API bearer token",
    )?;
    println!(
        "created {} ({}, version {})",
        info.name, info.secret_type, info.version
    );
    let info = store.create(
        "default",
        "plant-broker-ca",
        SecretType::TextFile,
        ca,
        "MQTT broker CA",
    )?;
    println!(
        "created {} ({}, version {})",
        info.name, info.secret_type, info.version
    );

    let read = store.get_value("default", "partner-api-token")?;
    assert_eq!(read.as_bytes(), token);
    println!(
        "read back partner-api-token: {} bytes, matches: true",
        read.as_bytes().len()
    );
    let read = store.get_value("default", "plant-broker-ca")?;
    assert_eq!(read.as_bytes(), ca);
    println!(
        "read back plant-broker-ca: {} bytes, matches: true",
        read.as_bytes().len()
    );

    let mut on_disk = Vec::new();
    for suffix in ["", "-wal"] {
        let file = dir.path().join(format!("tbsecrets.db{suffix}"));
        if let Ok(bytes) = std::fs::read(&file) {
            on_disk.extend(bytes);
        }
    }
    let leaks = [&token[..], &ca[..]]
        .iter()
        .filter(|v| on_disk.windows(v.len()).any(|w| w == **v))
        .count();
    println!(
        "database + WAL: {} bytes scanned, plaintext values found: {leaks}",
        on_disk.len()
    );
    if leaks != 0 {
        return Err("plaintext found on disk".into());
    }
    store.close()?;
    Ok(())
}
