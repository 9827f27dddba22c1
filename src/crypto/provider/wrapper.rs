//! Providers that only offer opaque wrap and unwrap calls (a program, a host callback, a
//! KMS): the wrapped-blob format (docs/FORMATS.md, "Wrapped blob").
//!
//! `version u8 = 2 | key_id u32 BE | what the wrapper returned`. The wrapper is given the
//! blob's authenticated context (`aad`: domain label, header, tenant, data key id) to bind
//! if it can; whether it does or not, the plaintext it wraps is `SHA-256(aad) | key`, and
//! an unwrapped plaintext whose digest does not match is refused, so a wrapped key moved to
//! another tenant, data key id or master key id fails to open (INTEGRITY) with any wrapper.

use super::KeyProvider;
use crate::crypto::blob::BlobContext;
use crate::error::{Error, ErrorCode, Result};
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

/// Format version written in the first byte of a wrapped blob.
pub const WRAPPED_BLOB_VERSION: u8 = 2;
/// Length of the wrapped blob's header: version and key id.
const HEADER_LEN: usize = 1 + 4;
/// Length of the context digest prefixed to the wrapped plaintext.
const DIGEST_LEN: usize = 32;

/// An external holder of the master key that wraps and unwraps small byte strings (data
/// keys) and never reveals its key: a program, a host application's KMS client, an HSM API.
///
/// `aad` is the context the wrapped bytes belong to: a wrapper that supports associated data
/// should bind it; one that does not may ignore it (the context is checked anyway).
pub trait KeyWrapper: Send + Sync {
    /// What the wrapper is, for messages (never a credential).
    fn describe(&self) -> String;

    /// Wraps `plaintext`; KEY_UNAVAILABLE when the holder cannot be reached or refuses.
    fn wrap(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>>;

    /// Unwraps what [`KeyWrapper::wrap`] returned; KEY_UNAVAILABLE when the holder cannot be
    /// reached, INTEGRITY (or WRONG_MASTER_KEY) when the bytes are not its own.
    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>>;
}

/// A [`KeyProvider`] over a [`KeyWrapper`], writing wrapped blobs (version 2).
pub struct WrapperProvider<W: KeyWrapper> {
    wrapper: W,
}

impl<W: KeyWrapper> WrapperProvider<W> {
    /// A provider over `wrapper`.
    pub fn new(wrapper: W) -> WrapperProvider<W> {
        WrapperProvider { wrapper }
    }
}

impl<W: KeyWrapper> fmt::Debug for WrapperProvider<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WrapperProvider({})", self.wrapper.describe())
    }
}

impl<W: KeyWrapper> KeyProvider for WrapperProvider<W> {
    fn describe(&self) -> String {
        self.wrapper.describe()
    }

    fn seal(&self, kek_id: u32, context: &BlobContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut blob = Vec::with_capacity(HEADER_LEN + 64);
        blob.push(WRAPPED_BLOB_VERSION);
        blob.extend_from_slice(&kek_id.to_be_bytes());
        let aad = context.aad(&blob);
        let mut bound = Zeroizing::new(Vec::with_capacity(DIGEST_LEN + plaintext.len()));
        bound.extend_from_slice(&Sha256::digest(&aad));
        bound.extend_from_slice(plaintext);
        let wrapped = self.wrapper.wrap(&aad, &bound)?;
        if wrapped.is_empty() {
            return Err(Error::new(
                ErrorCode::KeyUnavailable,
                format!("the key provider ({}) returned nothing", self.describe()),
            ));
        }
        blob.extend_from_slice(&wrapped);
        Ok(blob)
    }

    fn open(&self, context: &BlobContext<'_>, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if blob.len() <= HEADER_LEN || blob[0] != WRAPPED_BLOB_VERSION {
            return Err(Error::integrity(format!(
                "a stored key is not a wrapped blob of the key provider ({}): written by another provider?",
                self.describe()
            )));
        }
        let aad = context.aad(&blob[..HEADER_LEN]);
        let bound = self.wrapper.unwrap(&aad, &blob[HEADER_LEN..])?;
        let expected = Sha256::digest(&aad);
        // The digest is of public data: a plain comparison leaks nothing.
        if bound.len() < DIGEST_LEN || bound[..DIGEST_LEN] != expected[..] {
            return Err(Error::integrity(
                "an unwrapped key belongs to another context (moved or tampered store)",
            ));
        }
        Ok(Zeroizing::new(bound[DIGEST_LEN..].to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::MasterKey;

    /// A wrapper that seals with a raw key and ignores `aad`, as a KMS without associated data
    /// would.
    struct IgnoresAad(MasterKey);

    impl KeyWrapper for IgnoresAad {
        fn describe(&self) -> String {
            "test".into()
        }
        fn wrap(&self, _aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
            self.0.seal(9, &BlobContext::KeyCheck, plaintext)
        }
        fn unwrap(&self, _aad: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
            self.0.open(&BlobContext::KeyCheck, wrapped)
        }
    }

    #[test]
    fn context_is_bound_even_when_the_wrapper_ignores_it() {
        let provider = WrapperProvider::new(IgnoresAad(MasterKey::generate()));
        let ctx = BlobContext::DataKey {
            tenant: "t",
            dek_id: 1,
        };
        let blob = provider.seal(3, &ctx, &[7u8; 32]).unwrap();
        assert_eq!(blob[0], WRAPPED_BLOB_VERSION);
        assert_eq!(&blob[1..5], &3u32.to_be_bytes());
        assert_eq!(provider.open(&ctx, &blob).unwrap().as_slice(), &[7u8; 32]);
        let moved = BlobContext::DataKey {
            tenant: "u",
            dek_id: 1,
        };
        assert_eq!(
            provider.open(&moved, &blob).unwrap_err().code(),
            ErrorCode::Integrity
        );
        let mut other_kek = blob.clone();
        other_kek[4] ^= 1;
        assert_eq!(
            provider.open(&ctx, &other_kek).unwrap_err().code(),
            ErrorCode::Integrity
        );
        let mut version_one = blob;
        version_one[0] = 1;
        assert_eq!(
            provider.open(&ctx, &version_one).unwrap_err().code(),
            ErrorCode::Integrity
        );
    }
}
