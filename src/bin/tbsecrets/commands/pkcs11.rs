//! `pkcs11-keygen`: creates the master key of the `pkcs11` key provider in a token.

use std::path::Path;
use tbsecrets::{PinSource, Pkcs11Config, Pkcs11Provider, Result, TokenSelector};

/// `pkcs11-keygen --module M --token T --key-label K --pin-file F`: generates the AES-256
/// key in the token and prints the provider spec that uses it.
pub fn keygen(module: &Path, token: &str, key_label: &str, pin_file: &Path) -> Result<Vec<u8>> {
    let config = Pkcs11Config {
        module: module.to_path_buf(),
        token: TokenSelector::Label(token.to_owned()),
        key_label: key_label.to_owned(),
        pin: PinSource::File(pin_file.to_path_buf()),
    };
    Pkcs11Provider::generate_key(&config)?;
    Ok(format!(
        "created AES-256 key '{key_label}' in token '{token}'; use it with --key-provider \
         'pkcs11:module={},token={token},key={key_label},pin-file={}'\n",
        module.display(),
        pin_file.display()
    )
    .into_bytes())
}
