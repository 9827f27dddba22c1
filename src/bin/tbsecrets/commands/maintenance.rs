//! The store maintenance commands that need more than a line: `init` and `audit verify`.

use super::{admin, is_url, open_existing, redact_password};
use crate::args::Global;
use crate::progress::{Progress, Unit};
use crate::{keys, render};
use std::path::Path;
use std::sync::Arc;
use tbsecrets::write_key_file;
use tbsecrets::{Error, ErrorCode, KeyProvider, MasterKey, Result, SecretStorage, StorageOptions};

/// Creates the store, generating a key file beside it when no key is configured.
pub(super) fn init(g: &Global, json: bool) -> Result<Vec<u8>> {
    if let Some(provider) = keys::configured_provider(g)? {
        return init_on_provider(g, provider, json);
    }
    if is_url(&g.store) {
        // A database: `init` creates the schema; the key must be configured (never beside it).
        let key = keys::configured_key(g.key_file.as_deref())?.ok_or_else(|| {
            Error::invalid("a postgres:// store needs a configured key: --key-file, TBS_MASTER_KEY or TBS_MASTER_KEY_FILE")
        })?;
        SecretStorage::open(&g.store, StorageOptions::with_master_key(key))?.close()?;
        let store = redact_password(&g.store.to_string_lossy());
        let done = render::Initialized {
            store: &store,
            key_file: None,
        };
        return render::report(json, &done, || {
            format!("initialized store {store} (the key is the configured one)")
        });
    }
    if g.store.exists() {
        return Err(Error::new(
            ErrorCode::AlreadyExists,
            format!("store {} already exists", g.store.display()),
        ));
    }
    let mut key_file = None;
    let key = match keys::configured_key(g.key_file.as_deref())? {
        Some(key) => key,
        None => {
            let key = MasterKey::generate();
            let path = keys::default_key_file(&g.store);
            write_key_file(&path, &key)?;
            eprintln!(
                "warning: the master key was written beside the store; in production keep the key and the data apart (move the key file and use --key-file or TBS_MASTER_KEY_FILE)"
            );
            key_file = Some(path);
            key
        }
    };
    let store = SecretStorage::open(&g.store, StorageOptions::with_master_key(key))?;
    store.close()?;
    let store = g.store.display().to_string();
    let key_file = key_file.map(|path| path.display().to_string());
    let done = render::Initialized {
        store: &store,
        key_file: key_file.as_deref(),
    };
    render::report(json, &done, || match &key_file {
        Some(path) => format!("initialized store {store} with a new master key in key file {path}"),
        None => format!("initialized store {store} (the key is the configured one)"),
    })
}

/// Creates the store on a key provider (`--key-provider`): no key file is written.
fn init_on_provider(g: &Global, provider: Arc<dyn KeyProvider>, json: bool) -> Result<Vec<u8>> {
    if !is_url(&g.store) && g.store.exists() {
        return Err(Error::new(
            ErrorCode::AlreadyExists,
            format!("store {} already exists", g.store.display()),
        ));
    }
    let described = provider.describe();
    SecretStorage::open(&g.store, StorageOptions::with_key_provider(provider))?.close()?;
    let store = redact_password(&g.store.to_string_lossy());
    let done = render::Initialized {
        store: &store,
        key_file: None,
    };
    render::report(json, &done, || {
        format!("initialized store {store} (the key is held by the key provider {described})")
    })
}

/// Verifies the audit log with the store's key; store-wide, so by default only SYS_ADMIN.
pub(super) fn audit_verify(g: &Global, log: Option<&Path>, json: bool) -> Result<Vec<u8>> {
    let store = open_existing(g)?;
    let progress = Progress::new("verifying audit log", Unit::Bytes);
    let report = admin(&store, g)?
        .verify_audit_log_with_progress(log, &mut |done, total| progress.update(done, total))?;
    drop(progress);
    let path = log
        .map(Path::to_path_buf)
        .or_else(|| store.audit_log_path())
        .unwrap_or_default();
    store.close()?;
    if let Some(problem) = &report.problem {
        return Err(Error::new(
            ErrorCode::Integrity,
            format!(
                "audit log {} is broken at line {}: {} ({} records before it verified)",
                path.display(),
                problem.line,
                problem.reason,
                report.records
            ),
        ));
    }
    if json {
        render::json(&report)
    } else {
        Ok(format!(
            "audit log {}: {} records intact (last sequence number {})\n",
            path.display(),
            report.records,
            report.last_seq
        )
        .into_bytes())
    }
}
