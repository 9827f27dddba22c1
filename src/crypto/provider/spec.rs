//! The provider spec: one string naming a store's key provider, the same on every surface
//! (`TBS_KEY_PROVIDER`, CLI `--key-provider`, C, Java, Python; docs/KEY-CUSTODY.md).
//!
//! - `raw`: the key's bytes from `TBS_MASTER_KEY` / `TBS_MASTER_KEY_FILE`;
//! - `command:PROGRAM [ARG…]`: a program (whitespace-split, executed without a shell), with
//!   its timeout from `TBS_KEY_COMMAND_TIMEOUT_MS` (default 10000);
//! - `pkcs11:module=PATH,token=LABEL,key=LABEL,pin-file=PATH` (builds with PKCS#11 support).

use super::command::CommandWrapper;
use super::{KeyProvider, WrapperProvider};
use crate::crypto::master_key_from_env;
use crate::error::{Error, Result};
use std::sync::Arc;

/// The environment variable holding a provider spec.
pub const KEY_PROVIDER_ENV: &str = "TBS_KEY_PROVIDER";

/// The key provider a spec names (see the module documentation); INVALID_ARGUMENT naming
/// the problem for a malformed spec.
///
/// ```
/// let err = tbsecrets::key_provider_from_spec("kms:thing").unwrap_err();
/// assert_eq!(err.code(), tbsecrets::ErrorCode::InvalidArgument);
/// let provider = tbsecrets::key_provider_from_spec("command:/usr/local/bin/kms-wrap --key k1")?;
/// assert_eq!(provider.describe(), "command:/usr/local/bin/kms-wrap");
/// # Ok::<(), tbsecrets::Error>(())
/// ```
pub fn key_provider_from_spec(spec: &str) -> Result<Arc<dyn KeyProvider>> {
    let spec = spec.trim();
    let (kind, rest) = match spec.split_once(':') {
        Some((kind, rest)) => (kind, Some(rest)),
        None => (spec, None),
    };
    match (kind, rest) {
        ("raw", None) => match master_key_from_env()? {
            Some(key) => Ok(Arc::new(key)),
            None => Err(Error::invalid(
                "key provider 'raw': no master key: set TBS_MASTER_KEY (base64) or TBS_MASTER_KEY_FILE, or pass the key",
            )),
        },
        ("raw", Some(_)) => Err(Error::invalid(
            "key provider 'raw' takes no options (the key comes from TBS_MASTER_KEY_FILE or TBS_MASTER_KEY)",
        )),
        ("command", Some(rest)) => {
            let mut words = rest.split_whitespace().map(str::to_owned);
            let program = words.next().ok_or_else(|| {
                Error::invalid("key provider 'command:PROGRAM [ARG…]': the program is missing")
            })?;
            let timeout = CommandWrapper::timeout_from_env()?;
            Ok(Arc::new(WrapperProvider::new(CommandWrapper::new(
                program,
                words.collect(),
                timeout,
            ))))
        }
        #[cfg(feature = "pkcs11")]
        ("pkcs11", Some(rest)) => Ok(Arc::new(super::pkcs11::Pkcs11Provider::from_spec_options(
            rest,
        )?)),
        #[cfg(not(feature = "pkcs11"))]
        ("pkcs11", Some(_)) => Err(Error::invalid(
            "key provider 'pkcs11': this build has no PKCS#11 support (rebuild with the Cargo feature `pkcs11`)",
        )),
        ("command" | "pkcs11", None) => Err(Error::invalid(format!(
            "key provider '{kind}' needs its options after '{kind}:' (docs/KEY-CUSTODY.md)"
        ))),
        ("", _) => Err(Error::invalid(
            "empty key provider spec: expected raw, command:PROGRAM [ARG…] or pkcs11:OPTIONS",
        )),
        _ => Err(Error::invalid(format!(
            "unknown key provider '{kind}': expected raw, command:PROGRAM [ARG…] or pkcs11:OPTIONS"
        ))),
    }
}

/// The key provider `TBS_KEY_PROVIDER` names, or `None` when it is unset or empty (the
/// `raw` default then applies).
pub fn key_provider_from_env() -> Result<Option<Arc<dyn KeyProvider>>> {
    match std::env::var(KEY_PROVIDER_ENV) {
        Ok(spec) if !spec.trim().is_empty() => key_provider_from_spec(&spec)
            .map(Some)
            .map_err(|e| e.prefixed_by(KEY_PROVIDER_ENV)),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(Error::invalid(format!("{KEY_PROVIDER_ENV} is not UTF-8")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn malformed_specs_are_invalid_arguments_naming_the_problem() {
        for (spec, says) in [
            ("", "empty"),
            ("kms:x", "unknown key provider 'kms'"),
            ("command:", "program is missing"),
            ("command:   ", "program is missing"),
            ("command", "needs its options"),
            ("raw:x", "takes no options"),
        ] {
            let err = key_provider_from_spec(spec).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidArgument, "{spec}");
            assert!(err.message().contains(says), "{spec}: {err}");
        }
    }

    #[test]
    fn a_command_spec_is_split_on_whitespace() {
        let provider = key_provider_from_spec(" command:/opt/kms  --key  k1 ").unwrap();
        assert_eq!(provider.describe(), "command:/opt/kms");
    }
}
