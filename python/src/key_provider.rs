//! Who holds the master key for `SecretStorage.open` (a key, a key file or a provider spec,
//! docs/KEY-CUSTODY.md) and the data-key cache lifetime.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tbsecrets::{Error, KeyProvider, MasterKey, Result};

/// The provider of `open`'s arguments: `key_provider=` (a spec), `master_key=`,
/// `master_key_file=` (at most one), else `TBS_KEY_PROVIDER`, else the raw key of the
/// environment.
pub fn provider_of(
    key: Option<MasterKey>,
    key_file: Option<PathBuf>,
    spec: Option<&str>,
) -> Result<Arc<dyn KeyProvider>> {
    let given =
        usize::from(key.is_some()) + usize::from(key_file.is_some()) + usize::from(spec.is_some());
    if given > 1 {
        return Err(Error::invalid(
            "give one of master_key, master_key_file and key_provider",
        ));
    }
    if let Some(spec) = spec {
        return tbsecrets::key_provider_from_spec(spec);
    }
    if let Some(key) = key {
        return Ok(Arc::new(key));
    }
    if let Some(file) = key_file {
        return Ok(Arc::new(tbsecrets::read_key_file(&file)?));
    }
    if let Some(provider) = tbsecrets::key_provider_from_env()? {
        return Ok(provider);
    }
    match tbsecrets::master_key_from_env()? {
        Some(key) => Ok(Arc::new(key)),
        None => Err(Error::invalid(
            "no master key: give master_key=, master_key_file=, key_provider=, or set TBS_MASTER_KEY / TBS_MASTER_KEY_FILE / TBS_KEY_PROVIDER",
        )),
    }
}

/// `key_cache_ttl_seconds=`: a positive number of seconds, or `None` for the handle's
/// lifetime.
pub fn cache_ttl(seconds: Option<f64>) -> Result<Option<Duration>> {
    match seconds {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(Error::invalid(format!(
            "key_cache_ttl_seconds must be a positive number of seconds, got {s}"
        ))),
    }
}
