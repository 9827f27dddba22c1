//! The export signing key: an Ed25519 key pair derived from a store-wide secret, so every
//! handle of a store (and a migrated copy) signs export bundles with the same key, and a
//! master-key rotation does not change it. Its public half is printed as `ed25519:BASE64`.

use crate::error::{Error, ErrorCode, Result};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use std::fmt;
use std::str::FromStr;

/// The prefix of a printed export public key.
const PREFIX: &str = "ed25519:";

/// The export signing key of a store (wiped on drop, never printed).
pub struct ExportSigner(SigningKey);

impl ExportSigner {
    /// The signing key whose 32-byte seed is `seed`.
    pub fn from_seed(seed: &[u8; 32]) -> ExportSigner {
        ExportSigner(SigningKey::from_bytes(seed))
    }

    /// The public key bundles signed by this key verify with.
    pub fn public_key(&self) -> ExportPublicKey {
        ExportPublicKey(self.0.verifying_key())
    }

    /// The 64-byte Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for ExportSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExportSigner(<redacted>)")
    }
}

/// The public key of a store's export signing key, printed as `ed25519:` and the standard
/// base64 of its 32 bytes without padding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ExportPublicKey(VerifyingKey);

impl ExportPublicKey {
    /// Whether `signature` is this key's signature of `message` (strict verification).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
            return false;
        };
        self.0
            .verify_strict(message, &Signature::from_bytes(&bytes))
            .is_ok()
    }
}

impl fmt::Display for ExportPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", STANDARD_NO_PAD.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for ExportPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExportPublicKey({self})")
    }
}

impl FromStr for ExportPublicKey {
    type Err = Error;

    /// Parses `ed25519:BASE64` (INVALID_ARGUMENT naming the rule otherwise).
    fn from_str(text: &str) -> Result<ExportPublicKey> {
        let invalid = || {
            Error::new(
                ErrorCode::InvalidArgument,
                format!(
                    "'{}' is not an export public key: expected 'ed25519:' and the base64 of 32 bytes (tbsecrets export-key prints it)",
                    text.chars().take(80).collect::<String>()
                ),
            )
        };
        let encoded = text.trim().strip_prefix(PREFIX).ok_or_else(invalid)?;
        let bytes = STANDARD_NO_PAD
            .decode(encoded.trim_end_matches('='))
            .map_err(|_| invalid())?;
        let bytes = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| invalid())?;
        VerifyingKey::from_bytes(&bytes)
            .map(ExportPublicKey)
            .map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_verifies_and_round_trips_the_public_key() {
        let signer = ExportSigner::from_seed(&[7u8; 32]);
        let public = signer.public_key();
        let signature = signer.sign(b"payload");
        assert!(public.verifies(b"payload", &signature));
        assert!(!public.verifies(b"payloaD", &signature));
        assert!(!public.verifies(b"payload", &signature[..63]));
        let parsed: ExportPublicKey = public.to_string().parse().unwrap();
        assert_eq!(parsed, public);
        let other = ExportSigner::from_seed(&[8u8; 32]).public_key();
        assert!(!other.verifies(b"payload", &signature));
        for bad in [
            "",
            "ed25519:",
            "ed25519:AAAA",
            "rsa:abc",
            &public.to_string()[1..],
        ] {
            let err = bad.parse::<ExportPublicKey>().unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidArgument, "{bad}");
        }
        assert_eq!(format!("{signer:?}"), "ExportSigner(<redacted>)");
    }
}
