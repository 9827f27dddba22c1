//! The authenticated blob format shared by values and wrapped keys (docs/FORMATS.md, "Sealed
//! blob").
//!
//! `version u8 = 1 | key_id u32 BE | nonce[12] | ciphertext | tag[16]`. The whole header is
//! authenticated: AAD = domain label | header | length-prefixed context fields, so a blob moved
//! to another tenant, name, type, version or key id fails to open.

use crate::error::{Error, Result};
use crate::model::SecretType;
use aes_gcm::aead::{AeadInPlace, OsRng};
use aes_gcm::{AeadCore, Aes256Gcm, Nonce, Tag};
use zeroize::Zeroizing;

/// Format version written in the first byte of every blob.
pub const BLOB_VERSION: u8 = 1;
/// Length of the header: version, key id, nonce.
pub const HEADER_LEN: usize = 1 + 4 + 12;
/// Length of the GCM tag.
pub const TAG_LEN: usize = 16;

/// What a blob is bound to. Every field becomes part of the authenticated data.
#[derive(Clone, Copy)]
pub enum BlobContext<'a> {
    /// A secret value of one version.
    Value {
        /// Tenant of the secret.
        tenant: &'a str,
        /// Secret name.
        name: &'a str,
        /// Secret type.
        secret_type: SecretType,
        /// Version the value was written as.
        version: u64,
    },
    /// A tenant data key wrapped by the master key.
    DataKey {
        /// Tenant that owns the data key.
        tenant: &'a str,
        /// Identifier of the data key within the tenant.
        dek_id: u32,
    },
    /// The key check value that proves the master key at open.
    KeyCheck,
}

impl BlobContext<'_> {
    fn label(&self) -> &'static [u8] {
        match self {
            BlobContext::Value { .. } => b"tbsecrets/v1/value",
            BlobContext::DataKey { .. } => b"tbsecrets/v1/dek",
            BlobContext::KeyCheck => b"tbsecrets/v1/kcv",
        }
    }

    /// Builds the complete additional authenticated data for a blob header.
    pub fn aad(&self, header: &[u8]) -> Vec<u8> {
        fn field(out: &mut Vec<u8>, bytes: &[u8]) {
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        let mut out = Vec::with_capacity(64 + header.len());
        field(&mut out, self.label());
        field(&mut out, header);
        match *self {
            BlobContext::Value {
                tenant,
                name,
                secret_type,
                version,
            } => {
                field(&mut out, tenant.as_bytes());
                field(&mut out, name.as_bytes());
                field(&mut out, secret_type.as_str().as_bytes());
                field(&mut out, &version.to_be_bytes());
            }
            BlobContext::DataKey { tenant, dek_id } => {
                field(&mut out, tenant.as_bytes());
                field(&mut out, &dek_id.to_be_bytes());
            }
            BlobContext::KeyCheck => {}
        }
        out
    }
}

/// Reads the key id from a blob header without opening it.
pub fn blob_key_id(blob: &[u8]) -> Result<u32> {
    if blob.len() < HEADER_LEN + TAG_LEN {
        return Err(Error::integrity(format!(
            "stored blob is {} bytes, shorter than the minimum {}",
            blob.len(),
            HEADER_LEN + TAG_LEN
        )));
    }
    if blob[0] != BLOB_VERSION {
        return Err(Error::integrity(format!(
            "stored blob has unknown format version {}",
            blob[0]
        )));
    }
    Ok(u32::from_be_bytes([blob[1], blob[2], blob[3], blob[4]]))
}

/// Encrypts `plaintext` under `cipher` with a fresh random nonce, bound to `context`.
pub fn seal(
    cipher: &Aes256Gcm,
    key_id: u32,
    context: &BlobContext<'_>,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let mut blob = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    blob.push(BLOB_VERSION);
    blob.extend_from_slice(&key_id.to_be_bytes());
    blob.extend_from_slice(&nonce);
    let aad = context.aad(&blob[..HEADER_LEN]);
    blob.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_in_place_detached(&nonce, &aad, &mut blob[HEADER_LEN..])
        .map_err(|_| Error::internal("AES-GCM encryption failed"))?;
    blob.extend_from_slice(&tag);
    Ok(blob)
}

/// Opens a blob with a precomputed AAD (the hot path: see [`BlobContext::aad`]).
pub fn open_with_aad(cipher: &Aes256Gcm, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    blob_key_id(blob)?;
    let body_end = blob.len() - TAG_LEN;
    let nonce = Nonce::from_slice(&blob[5..HEADER_LEN]);
    let tag = Tag::from_slice(&blob[body_end..]);
    let mut plaintext = Zeroizing::new(blob[HEADER_LEN..body_end].to_vec());
    cipher
        .decrypt_in_place_detached(nonce, aad, plaintext.as_mut_slice(), tag)
        .map_err(|_| Error::integrity("stored data failed authentication (corrupt or tampered)"))?;
    Ok(plaintext)
}

/// Opens a blob bound to `context`.
pub fn open(
    cipher: &Aes256Gcm,
    context: &BlobContext<'_>,
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    blob_key_id(blob)?;
    let aad = context.aad(&blob[..HEADER_LEN]);
    open_with_aad(cipher, &aad, blob)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use aes_gcm::KeyInit;

    fn cipher(byte: u8) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(&[byte; 32]).expect("32-byte key")
    }

    fn value_ctx<'a>(tenant: &'a str, name: &'a str, t: SecretType, v: u64) -> BlobContext<'a> {
        BlobContext::Value {
            tenant,
            name,
            secret_type: t,
            version: v,
        }
    }

    #[test]
    fn round_trip_and_fresh_nonces() {
        let c = cipher(1);
        let ctx = value_ctx("t", "n", SecretType::Text, 1);
        let a = seal(&c, 7, &ctx, b"secret").unwrap();
        let b = seal(&c, 7, &ctx, b"secret").unwrap();
        assert_ne!(a, b, "nonce must be fresh per seal");
        assert_eq!(blob_key_id(&a).unwrap(), 7);
        assert_eq!(open(&c, &ctx, &a).unwrap().as_slice(), b"secret");
        assert_eq!(a.len(), HEADER_LEN + 6 + TAG_LEN);
    }

    #[test]
    fn moved_blob_fails_to_open() {
        let c = cipher(2);
        let blob = seal(&c, 1, &value_ctx("t", "n", SecretType::Text, 3), b"v").unwrap();
        for ctx in [
            value_ctx("u", "n", SecretType::Text, 3),
            value_ctx("t", "m", SecretType::Text, 3),
            value_ctx("t", "n", SecretType::TextFile, 3),
            value_ctx("t", "n", SecretType::Text, 4),
            BlobContext::DataKey {
                tenant: "t",
                dek_id: 1,
            },
        ] {
            assert_eq!(
                open(&c, &ctx, &blob).unwrap_err().code(),
                ErrorCode::Integrity
            );
        }
        // Field boundaries are length-prefixed: ("ab","c") differs from ("a","bc").
        let b2 = seal(&c, 1, &value_ctx("ab", "c", SecretType::Text, 1), b"v").unwrap();
        assert!(open(&c, &value_ctx("a", "bc", SecretType::Text, 1), &b2).is_err());
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let c = cipher(3);
        let ctx = value_ctx("t", "n", SecretType::Text, 1);
        let blob = seal(&c, 1, &ctx, b"0123456789").unwrap();
        for i in 0..blob.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = blob.clone();
                bad[i] ^= bit;
                let err = open(&c, &ctx, &bad).unwrap_err();
                assert_eq!(err.code(), ErrorCode::Integrity, "byte {i}");
            }
        }
        assert!(open(&c, &ctx, &blob[..HEADER_LEN + TAG_LEN - 1]).is_err());
        assert!(open(&cipher(4), &ctx, &blob).is_err());
    }
}
