//! The options of a `pkcs11:` provider spec and where its user PIN comes from.
//!
//! `module=PATH,token=LABEL|slot=N,key=LABEL,pin-file=PATH|pin-env=VAR`: comma-separated
//! `name=value` pairs, each exactly once. The PIN is never inline: it is read from a file that
//! group and others cannot access (like a key file), or from an environment variable.

use crate::error::{Error, Result};
use cryptoki::types::AuthPin;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use zeroize::Zeroizing;

/// Which token of the module holds the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSelector {
    /// The token with this label (`token=LABEL`).
    Label(String),
    /// The token in the slot with this id (`slot=N`).
    Slot(u64),
}

/// Where the user PIN is read from (never the PIN itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinSource {
    /// A file holding the PIN (one line); mode 0600 or stricter (`pin-file=PATH`).
    File(PathBuf),
    /// An environment variable holding the PIN (`pin-env=VAR`).
    Env(String),
}

/// A parsed `pkcs11:` spec: module, token, key label and PIN source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pkcs11Config {
    /// Path of the PKCS#11 module (shared library).
    pub module: PathBuf,
    /// The token holding the key.
    pub token: TokenSelector,
    /// `CKA_LABEL` of the AES-256 secret key.
    pub key_label: String,
    /// Where the user PIN comes from.
    pub pin: PinSource,
}

impl Pkcs11Config {
    /// Parses the options of a `pkcs11:` spec (the part after `pkcs11:`). INVALID_ARGUMENT
    /// names the missing, unknown or repeated option.
    pub fn parse(options: &str) -> Result<Pkcs11Config> {
        let (mut module, mut token, mut slot, mut key, mut pin_file, mut pin_env) =
            (None, None, None, None, None, None);
        for pair in options.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').ok_or_else(|| {
                Error::invalid(format!(
                    "pkcs11 provider: option '{pair}' is not name=value"
                ))
            })?;
            let (name, value) = (name.trim(), value.trim());
            if value.is_empty() {
                return Err(Error::invalid(format!(
                    "pkcs11 provider: option '{name}' has an empty value"
                )));
            }
            let slot_of = match name {
                "module" => &mut module,
                "token" => &mut token,
                "slot" => &mut slot,
                "key" => &mut key,
                "pin-file" => &mut pin_file,
                "pin-env" => &mut pin_env,
                "pin" => {
                    return Err(Error::invalid(
                        "pkcs11 provider: the PIN is never given inline; use pin-file=PATH or pin-env=VAR",
                    ))
                }
                other => {
                    return Err(Error::invalid(format!(
                        "pkcs11 provider: unknown option '{other}' (expected module, token or slot, key, pin-file or pin-env)"
                    )))
                }
            };
            if slot_of.replace(value.to_owned()).is_some() {
                return Err(Error::invalid(format!(
                    "pkcs11 provider: option '{name}' given twice"
                )));
            }
        }
        let missing = |name: &str| Error::invalid(format!("pkcs11 provider: missing {name}=…"));
        let token = match (token, slot) {
            (Some(label), None) => TokenSelector::Label(label),
            (None, Some(id)) => TokenSelector::Slot(id.parse().map_err(|_| {
                Error::invalid(format!("pkcs11 provider: slot '{id}' is not a number"))
            })?),
            (None, None) => return Err(missing("token")),
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "pkcs11 provider: give token= or slot=, not both",
                ))
            }
        };
        let pin = match (pin_file, pin_env) {
            (Some(path), None) => PinSource::File(PathBuf::from(path)),
            (None, Some(var)) => PinSource::Env(var),
            (None, None) => return Err(missing("pin-file")),
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "pkcs11 provider: give pin-file= or pin-env=, not both",
                ))
            }
        };
        Ok(Pkcs11Config {
            module: PathBuf::from(module.ok_or_else(|| missing("module"))?),
            token,
            key_label: key.ok_or_else(|| missing("key"))?,
            pin,
        })
    }

    /// The provider as messages and the audit log name it: token and key, never the PIN.
    pub fn describe(&self) -> String {
        match &self.token {
            TokenSelector::Label(label) => format!("pkcs11:token={label},key={}", self.key_label),
            TokenSelector::Slot(id) => format!("pkcs11:slot={id},key={}", self.key_label),
        }
    }

    /// The token as messages name it: `'LABEL'` or `in slot N`.
    pub(super) fn token_name(&self) -> String {
        match &self.token {
            TokenSelector::Label(label) => format!("'{label}'"),
            TokenSelector::Slot(id) => format!("in slot {id}"),
        }
    }
}

impl PinSource {
    /// Reads the PIN. INVALID_ARGUMENT for an unreadable file, a file group or others can
    /// access, an unset variable or an empty PIN; the message never contains the PIN.
    pub fn read(&self) -> Result<AuthPin> {
        let text = match self {
            PinSource::File(path) => {
                let meta = fs::metadata(path).map_err(|e| {
                    Error::invalid(format!("cannot read PIN file {}: {e}", path.display()))
                })?;
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(Error::invalid(format!(
                        "PIN file {} is accessible by group or others (mode {mode:04o}); run `chmod 600 {}`",
                        path.display(),
                        path.display()
                    )));
                }
                Zeroizing::new(fs::read_to_string(path).map_err(|e| {
                    Error::invalid(format!("cannot read PIN file {}: {e}", path.display()))
                })?)
            }
            PinSource::Env(var) => Zeroizing::new(std::env::var(var).map_err(|_| {
                Error::invalid(format!("PIN variable {var} is not set (or not UTF-8)"))
            })?),
        };
        let pin = text.trim_end_matches(['\r', '\n']);
        if pin.is_empty() {
            return Err(Error::invalid("the PKCS#11 user PIN is empty"));
        }
        Ok(AuthPin::from(pin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn parses_label_and_slot_forms() {
        let c = Pkcs11Config::parse("module=/m.so, token=tb ,key=master,pin-file=/p").unwrap();
        assert_eq!(c.module, PathBuf::from("/m.so"));
        assert_eq!(c.token, TokenSelector::Label("tb".into()));
        assert_eq!(c.key_label, "master");
        assert_eq!(c.pin, PinSource::File("/p".into()));
        assert_eq!(c.describe(), "pkcs11:token=tb,key=master");
        let c = Pkcs11Config::parse("module=/m.so,slot=7,key=k,pin-env=PIN").unwrap();
        assert_eq!(c.token, TokenSelector::Slot(7));
        assert_eq!(c.pin, PinSource::Env("PIN".into()));
        assert_eq!(c.describe(), "pkcs11:slot=7,key=k");
    }

    #[test]
    fn rejects_bad_specs_without_echoing_a_pin() {
        for (spec, needle) in [
            ("token=t,key=k,pin-file=/p", "missing module"),
            ("module=/m,key=k,pin-file=/p", "missing token"),
            ("module=/m,token=t,pin-file=/p", "missing key"),
            ("module=/m,token=t,key=k", "missing pin-file"),
            ("module=/m,token=t,slot=1,key=k,pin-env=P", "not both"),
            ("module=/m,token=t,key=k,pin-env=P,pin-file=/p", "not both"),
            ("module=/m,token=t,token=u,key=k,pin-env=P", "twice"),
            ("module=/m,slot=x,key=k,pin-env=P", "not a number"),
            (
                "module=/m,token=t,key=k,colour=blue,pin-env=P",
                "unknown option",
            ),
            ("module=/m,token=t,key=k,pin-env=", "empty value"),
            (
                "module=/m,token=t,key=k,pin=s3cret-pin",
                "never given inline",
            ),
            ("module", "not name=value"),
        ] {
            let err = Pkcs11Config::parse(spec).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidArgument, "{spec}");
            assert!(err.message().contains(needle), "{spec}: {}", err.message());
            assert!(!err.message().contains("s3cret-pin"));
        }
    }

    #[test]
    fn pin_file_must_be_private() {
        use secrecy::ExposeSecret;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        fs::write(&path, "4321\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let source = PinSource::File(path.clone());
        let err = source.read().unwrap_err();
        assert!(err.message().contains("chmod 600"), "{}", err.message());
        assert!(!err.message().contains("4321"));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(source.read().unwrap().expose_secret(), "4321");
        let unset = PinSource::Env("TBS_TEST_PKCS11_PIN_UNSET_VAR".into());
        assert_eq!(unset.read().unwrap_err().code(), ErrorCode::InvalidArgument);
    }
}
