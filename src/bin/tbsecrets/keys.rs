//! Which master key the CLI uses, and the key file `init` writes beside a store.

use std::path::{Path, PathBuf};
use tbsecrets::crypto::{master_key_from_env, read_key_file};
use tbsecrets::{Error, MasterKey, Result};

/// The key file `init` generates for a store: `<store>.key`.
pub fn default_key_file(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// The configured key: `--key-file`, else the environment, else none.
pub fn configured_key(key_file: Option<&Path>) -> Result<Option<MasterKey>> {
    match key_file {
        Some(path) => read_key_file(path).map(Some),
        None => master_key_from_env(),
    }
}

/// The key for an existing store: the configured one, else the key file beside the store.
pub fn key_for_store(store: &Path, key_file: Option<&Path>) -> Result<MasterKey> {
    if let Some(key) = configured_key(key_file)? {
        return Ok(key);
    }
    let beside = default_key_file(store);
    if beside.exists() {
        return read_key_file(&beside);
    }
    Err(Error::invalid(format!(
        "no master key: use --key-file, set TBS_MASTER_KEY or TBS_MASTER_KEY_FILE, or keep the key file {} that `tbsecrets init` wrote",
        beside.display()
    )))
}
