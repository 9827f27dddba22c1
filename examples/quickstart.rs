//! Quick start: the main job on the embedded default store.
//!
//! 1. Creates a store in a temporary folder with a generated master key.
//! 2. Stores the secrets of `examples/configs/secrets.json` (TEXT and TEXT_FILE), reads them
//!    back, and shows that the database files hold no plaintext.
//! 3. Resolves a real ThingsBoard MQTT node config (`examples/configs/mqtt_node_tls.json`) end
//!    to end, once with the PEMs inline and once with the CA/cert/key materialised as private
//!    files, records its references and shows "where used" — printing no secret value.
//! 4. Acts as principals throughout (a TENANT_ADMIN writes, a SERVICE rule engine reads and
//!    resolves), shows the administrator refused a value, and verifies the audit log's chain
//!    and that no value reached it.
//!
//! Run: `cargo run --release --example quickstart`

use std::path::Path;
use tbsecrets::service::ResolveOptions;
use tbsecrets::{MasterKey, Principal, Role, SecretStorage, SecretType, StorageOptions};

const TENANT: &str = "default";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs");
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("tbsecrets.db");
    let store = SecretStorage::open(
        &path,
        StorageOptions::with_master_key(MasterKey::generate()),
    )?;
    println!("store: {}", path.display());
    // Who acts: a tenant administrator manages secrets, the rule engine resolves them.
    let admin = store.session(Principal::new(TENANT, Role::TenantAdmin).with_id("admin@plant"));
    let rule_engine = store.session(Principal::new(TENANT, Role::Service).with_id("rule-engine"));

    // 1-2. Store the fixture secrets and read them back.
    let secrets: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(configs.join("secrets.json"))?)?;
    let mut values = Vec::new();
    for s in secrets["secrets"]
        .as_array()
        .ok_or("secrets.json: no 'secrets' array")?
    {
        let name = s["name"].as_str().ok_or("secret without name")?;
        let secret_type: SecretType = s["type"].as_str().ok_or("secret without type")?.parse()?;
        let value = s["value"].as_str().ok_or("secret without value")?;
        let info = admin.create(
            TENANT,
            name,
            secret_type,
            value.as_bytes(),
            "from secrets.json",
        )?;
        let read = rule_engine.get(TENANT, name)?;
        if read.as_bytes() != value.as_bytes() {
            return Err(format!("{name}: read back a different value").into());
        }
        println!(
            "stored {:<28} {:<9} v{}  read back {} bytes: ok",
            info.name,
            info.secret_type,
            info.version,
            value.len()
        );
        values.push(value.to_owned());
    }
    // Reading the files while the store is open drops this process's POSIX locks on them when
    // the reads close their descriptors: harmless here (no other process uses this store),
    // never do it in a program that shares its store with others.
    let mut on_disk = Vec::new();
    for suffix in ["", "-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(format!("tbsecrets.db{suffix}"))) {
            on_disk.extend(bytes);
        }
    }
    let leaks = values
        .iter()
        .filter(|v| v.len() >= 8 && on_disk.windows(v.len()).any(|w| w == v.as_bytes()))
        .count();
    println!(
        "database + WAL: {} bytes scanned, plaintext values found: {leaks}",
        on_disk.len()
    );
    if leaks != 0 {
        return Err("plaintext found on disk".into());
    }

    // 3. Resolve a ThingsBoard MQTT node config at use time.
    let config = std::fs::read_to_string(configs.join("mqtt_node_tls.json"))?;
    let refs = admin.track_references(TENANT, "rule-node:mqtt-plant", &config)?;
    println!("mqtt_node_tls.json references {} secrets", refs.len());
    let inline = rule_engine.resolve_json(TENANT, &config, ResolveOptions::default())?;
    let parsed: serde_json::Value = serde_json::from_str(&inline)?;
    let ca = parsed["configuration"]["credentials"]["caCert"]
        .as_str()
        .unwrap_or("");
    println!(
        "resolved inline: valid JSON, caCert is a PEM of {} bytes, ${{deviceName}} kept: {}",
        ca.len(),
        inline.contains("plant/${deviceName}/telemetry")
    );
    let with_files = rule_engine.resolve_json(
        TENANT,
        &config,
        ResolveOptions {
            materialize_files: true,
            ..ResolveOptions::default()
        },
    )?;
    let parsed: serde_json::Value = serde_json::from_str(&with_files)?;
    let ca_path = parsed["configuration"]["credentials"]["caCert"]
        .as_str()
        .unwrap_or("");
    println!(
        "resolved with files: caCert -> {ca_path} (exists: {})",
        Path::new(ca_path).exists()
    );
    let used_by: Vec<String> = store
        .where_used(TENANT, "plant-broker-ca")?
        .into_iter()
        .map(|r| r.source_id)
        .collect();
    println!("plant-broker-ca is used by: {}", used_by.join(", "));

    // 4. Access control and the audit log: the administrator never sees a value; every
    // action above, and the refusal, is in the tamper-evident log, with no value in it.
    let denied = admin.get(TENANT, "smtp-password").unwrap_err();
    println!("tenant admin reading a value: {}", denied.code());
    store.flush_usage()?;
    let log = store.audit_log_path().ok_or("no audit log")?;
    let report = store.verify_audit_log(None)?.into_result()?;
    let logged = std::fs::read(&log)?;
    let leaks = values
        .iter()
        .filter(|v| logged.windows(v.len()).any(|w| w == v.as_bytes()))
        .count();
    println!(
        "audit log {}: {} records, chain intact, values found in it: {leaks}",
        log.display(),
        report.records
    );
    if leaks != 0 {
        return Err("a value reached the audit log".into());
    }
    store.close()?;
    println!(
        "closed: materialised files removed: {}",
        !Path::new(ca_path).exists()
    );
    Ok(())
}
