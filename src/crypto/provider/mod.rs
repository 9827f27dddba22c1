//! Key providers: who holds the master key (docs/ARCHITECTURE.md, "Key custody").
//!
//! The master key only ever seals and opens two kinds of small blobs: tenant data keys and
//! the key check value. A [`KeyProvider`] does exactly that, so the key can live anywhere:
//! - [`MasterKey`] (`raw`): 32 bytes in this process's locked memory;
//! - a PKCS#11 token (`pkcs11`), a program (`command`) or the host application (a callback):
//!   the key never enters the process; each seal or open is a call to its holder.
//!
//! Providers that hold an AES key themselves write the [sealed blob](super::blob) format.
//! Providers that only offer opaque wrap/unwrap calls implement [`KeyWrapper`] and are
//! adapted by [`WrapperProvider`], which writes the wrapped-blob format (version 2).

mod command;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
mod spec;
mod wrapper;

pub use command::{CommandWrapper, KEY_AAD_ENV, KEY_COMMAND_TIMEOUT_ENV};
#[cfg(feature = "pkcs11")]
pub use pkcs11::{PinSource, Pkcs11Config, Pkcs11Provider, TokenSelector};
pub use spec::{key_provider_from_env, key_provider_from_spec, KEY_PROVIDER_ENV};
pub use wrapper::{KeyWrapper, WrapperProvider, WRAPPED_BLOB_VERSION};

use super::blob::{self, BlobContext};
use super::keys::{DataKey, MasterKey, KEY_LEN};
use crate::error::{Error, ErrorCode, Result};
use std::fmt;
use zeroize::Zeroizing;

/// Plaintext stored in the key check value.
const KEY_CHECK_PLAINTEXT: &[u8] = b"tbsecrets key check v1";

/// The holder of a store's master key: seals and opens data keys and the key check value.
///
/// Implementations must be thread-safe: a store handle calls them from any thread. They must
/// never log, print or return key material or a PIN in errors or in [`KeyProvider::describe`].
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// What the provider is, for messages, plans and the audit log (e.g. `raw`,
    /// `pkcs11:token=tb,key=master`): never key material, a PIN or a password.
    fn describe(&self) -> String;

    /// Seals `plaintext` for master key id `kek_id`, bound to `context` (an authenticated
    /// blob that fails to open under any other context). A provider that cannot be reached
    /// fails with KEY_UNAVAILABLE.
    fn seal(&self, kek_id: u32, context: &BlobContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>>;

    /// Opens a blob that [`KeyProvider::seal`] made with the same `context`. A blob that fails
    /// authentication is INTEGRITY; a provider that cannot be reached is KEY_UNAVAILABLE.
    fn open(&self, context: &BlobContext<'_>, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>>;

    /// Whether [`KeyProvider::seal`] and [`KeyProvider::open`] run this library's code only,
    /// so that the store may call them on a thread other than the store call's (SQLite runs
    /// the changes queued behind the one holding its write connection on that change's
    /// thread). `false` (the default) for a provider that calls out — a token, a program, the
    /// host application: the store then calls it on the thread of the store call, as its
    /// surfaces document.
    fn in_process(&self) -> bool {
        false
    }
}

/// The raw provider: the key's bytes in this process (locked, wiped memory).
impl KeyProvider for MasterKey {
    fn describe(&self) -> String {
        "raw".to_owned()
    }

    fn in_process(&self) -> bool {
        true
    }

    fn seal(&self, kek_id: u32, context: &BlobContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
        blob::seal(self.cipher(), kek_id, context, plaintext)
    }

    fn open(&self, context: &BlobContext<'_>, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        blob::open(self.cipher(), context, blob)
    }
}

/// Creates the key check value stored in a new store (or by a master-key rotation).
pub(crate) fn key_check(provider: &dyn KeyProvider, kek_id: u32) -> Result<Vec<u8>> {
    provider.seal(kek_id, &BlobContext::KeyCheck, KEY_CHECK_PLAINTEXT)
}

/// Verifies a stored key check value: a provider whose key does not open it is
/// WRONG_MASTER_KEY; a provider that cannot be reached keeps its own error.
pub(crate) fn verify_key_check(provider: &dyn KeyProvider, check: &[u8]) -> Result<()> {
    match provider.open(&BlobContext::KeyCheck, check) {
        Ok(plain) if plain.as_slice() == KEY_CHECK_PLAINTEXT => Ok(()),
        Err(e) if e.code() == ErrorCode::KeyUnavailable => Err(e),
        _ => Err(Error::new(
            ErrorCode::WrongMasterKey,
            format!(
                "the master key ({}) does not open this store",
                provider.describe()
            ),
        )),
    }
}

/// Wraps a tenant's data key.
pub(crate) fn wrap(
    provider: &dyn KeyProvider,
    kek_id: u32,
    tenant: &str,
    key: &DataKey,
) -> Result<Vec<u8>> {
    let context = BlobContext::DataKey {
        tenant,
        dek_id: key.id(),
    };
    provider.seal(kek_id, &context, key.bytes())
}

/// Unwraps a tenant's data key; a blob that fails authentication means a wrong key or a
/// tampered store (INTEGRITY).
pub(crate) fn unwrap(
    provider: &dyn KeyProvider,
    tenant: &str,
    dek_id: u32,
    wrapped: &[u8],
) -> Result<DataKey> {
    let plain = open_data_key(provider, tenant, dek_id, wrapped)?;
    DataKey::from_bytes(dek_id, &plain)
}

/// Rewraps a data key sealed by `from` under `to` (id `to_kek_id`) without building a
/// [`DataKey`]: the key's bytes live only in a wiped buffer for the call.
pub(crate) fn rewrap(
    from: &dyn KeyProvider,
    tenant: &str,
    dek_id: u32,
    wrapped: &[u8],
    to: &dyn KeyProvider,
    to_kek_id: u32,
) -> Result<Vec<u8>> {
    let plain = open_data_key(from, tenant, dek_id, wrapped)?;
    to.seal(to_kek_id, &BlobContext::DataKey { tenant, dek_id }, &plain)
}

fn open_data_key(
    provider: &dyn KeyProvider,
    tenant: &str,
    dek_id: u32,
    wrapped: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let plain = provider
        .open(&BlobContext::DataKey { tenant, dek_id }, wrapped)
        .map_err(|e| match e.code() {
            ErrorCode::KeyUnavailable => e,
            _ => Error::integrity(format!(
                "data key {dek_id} of tenant '{tenant}' failed authentication (corrupt or tampered store)"
            )),
        })?;
    if plain.len() != KEY_LEN {
        return Err(Error::integrity("unwrapped data key has the wrong length"));
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_check_detects_wrong_key() {
        let key = MasterKey::generate();
        let check = key_check(&key, 1).unwrap();
        verify_key_check(&key, &check).unwrap();
        let other = MasterKey::generate();
        assert_eq!(
            verify_key_check(&other, &check).unwrap_err().code(),
            ErrorCode::WrongMasterKey
        );
    }

    #[test]
    fn wrap_binds_tenant_and_id() {
        let kek = MasterKey::generate();
        let dek = DataKey::generate(1);
        let wrapped = wrap(&kek, 1, "t", &dek).unwrap();
        assert_eq!(unwrap(&kek, "t", 1, &wrapped).unwrap().id(), 1);
        assert_eq!(
            unwrap(&kek, "u", 1, &wrapped).unwrap_err().code(),
            ErrorCode::Integrity
        );
        assert_eq!(
            unwrap(&kek, "t", 2, &wrapped).unwrap_err().code(),
            ErrorCode::Integrity
        );
    }

    #[test]
    fn rewrap_moves_a_key_between_providers() {
        let (from, to) = (MasterKey::generate(), MasterKey::generate());
        let dek = DataKey::generate(4);
        let wrapped = wrap(&from, 1, "t", &dek).unwrap();
        let again = rewrap(&from, "t", 4, &wrapped, &to, 2).unwrap();
        assert_eq!(blob::blob_key_id(&again).unwrap(), 2);
        let opened = unwrap(&to, "t", 4, &again).unwrap();
        assert_eq!(opened.bytes(), dek.bytes());
        assert!(unwrap(&from, "t", 4, &again).is_err());
    }
}
