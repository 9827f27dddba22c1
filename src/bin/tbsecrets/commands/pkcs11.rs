//! `pkcs11-keygen`: creates the master key of the `pkcs11` key provider in a token.

use crate::render;
use serde::Serialize;
use std::path::Path;
use tbsecrets::{PinSource, Pkcs11Config, Pkcs11Provider, Result, TokenSelector};

/// What `pkcs11-keygen` made: the key's label, its token and the provider spec that uses it.
#[derive(Serialize)]
struct Created<'a> {
    key_label: &'a str,
    token: &'a str,
    key_provider: String,
}

/// `pkcs11-keygen --module M --token T --key-label K --pin-file F`: generates the AES-256
/// key in the token and prints the provider spec that uses it.
pub fn keygen(
    module: &Path,
    token: &str,
    key_label: &str,
    pin_file: &Path,
    json: bool,
) -> Result<Vec<u8>> {
    let config = Pkcs11Config {
        module: module.to_path_buf(),
        token: TokenSelector::Label(token.to_owned()),
        key_label: key_label.to_owned(),
        pin: PinSource::File(pin_file.to_path_buf()),
    };
    Pkcs11Provider::generate_key(&config)?;
    let created = Created {
        key_label,
        token,
        key_provider: format!(
            "pkcs11:module={},token={token},key={key_label},pin-file={}",
            module.display(),
            pin_file.display()
        ),
    };
    render::report(json, &created, || {
        format!(
            "created AES-256 key '{key_label}' in token '{token}'; use it with --key-provider '{}'",
            created.key_provider
        )
    })
}
