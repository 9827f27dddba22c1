//! Key holders: the master key (KEK) and tenant data keys (DEK). Key bytes are zeroized on
//! drop and never printed by `Debug`.

use crate::error::{Error, Result};
use crate::hardening::LockedBox;
use aes_gcm::aead::{rand_core::RngCore, OsRng};
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use zeroize::Zeroizing;

/// Length of every key, in bytes (AES-256).
pub const KEY_LEN: usize = 32;

/// Generates 32 random bytes from the operating system.
fn random_key_bytes() -> Zeroizing<[u8; KEY_LEN]> {
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    OsRng.fill_bytes(bytes.as_mut());
    bytes
}

/// A prepared AES-256-GCM cipher that wipes every byte of itself when dropped.
///
/// `Aes256Gcm` keeps its AES key schedule (whose first round keys are the raw key bytes) and
/// its GHASH key inline, and wipes neither on drop unless the `aes` crate's own `zeroize`
/// feature is on. Even then, the schedule is a union of the AES-NI and the software
/// implementations: the bytes that the unused one would occupy keep whatever the stack held
/// when the cipher was built (key copies included) and travel with every move, into the heap
/// block of the store handle. So the whole value is wiped, padding and all, when dropped.
struct Cipher(ManuallyDrop<Aes256Gcm>);

impl Cipher {
    fn new(key: &[u8; KEY_LEN]) -> Cipher {
        Cipher(ManuallyDrop::new(Aes256Gcm::new(key.into())))
    }
}

impl Clone for Cipher {
    fn clone(&self) -> Cipher {
        Cipher(ManuallyDrop::new(Aes256Gcm::clone(&self.0)))
    }
}

impl Deref for Cipher {
    type Target = Aes256Gcm;

    fn deref(&self) -> &Aes256Gcm {
        &self.0
    }
}

impl Drop for Cipher {
    fn drop(&mut self) {
        // SAFETY: the cipher is dropped exactly once, here, and never used again. It holds only
        // arrays of integers and zero-sized tokens (no pointers, no Drop of its own after the
        // drop above), so writing zeros over all its bytes is sound; they are `self`'s own,
        // exclusively borrowed.
        unsafe {
            ManuallyDrop::drop(&mut self.0);
            zeroize::zeroize_flat_type(std::ptr::addr_of_mut!(self.0));
        }
    }
}

/// Key bytes with their prepared cipher, kept together in locked memory
/// ([`LockedBox`]: not swapped where `RLIMIT_MEMLOCK` allows, not in core dumps, wiped on drop).
#[derive(Clone)]
struct Material {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    cipher: Cipher,
}

impl Material {
    fn locked(bytes: &[u8; KEY_LEN]) -> LockedBox<Material> {
        LockedBox::new(Material {
            bytes: Zeroizing::new(*bytes),
            cipher: Cipher::new(bytes),
        })
    }
}

/// The master key (key-encryption key). It wraps tenant data keys and never touches values.
/// Its bytes live in locked memory (see [`crate::hardening`]).
#[derive(Clone)]
pub struct MasterKey {
    material: LockedBox<Material>,
}

impl MasterKey {
    /// A new random master key.
    pub fn generate() -> MasterKey {
        MasterKey::from_array(random_key_bytes())
    }

    fn from_array(bytes: Zeroizing<[u8; KEY_LEN]>) -> MasterKey {
        MasterKey {
            material: Material::locked(&bytes),
        }
    }

    /// A master key from exactly 32 raw bytes. An all-zero key is refused (INVALID_ARGUMENT):
    /// it is what an unset buffer or a failed read leaves behind, never a real key.
    pub fn from_bytes(raw: &[u8]) -> Result<MasterKey> {
        if raw.len() != KEY_LEN {
            return Err(Error::invalid(format!(
                "a master key must be {KEY_LEN} bytes; got {} bytes",
                raw.len()
            )));
        }
        if raw.iter().fold(0u8, |acc, b| acc | b) == 0 {
            return Err(Error::invalid(
                "the master key is all zero bytes; generate a real key (tbsecrets init)",
            ));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(raw);
        Ok(MasterKey::from_array(bytes))
    }

    /// A master key from base64 text (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<MasterKey> {
        let decoded = Zeroizing::new(BASE64.decode(text.trim()).map_err(|_| {
            Error::invalid("the master key is not valid base64 (expected 32 bytes in base64)")
        })?);
        MasterKey::from_bytes(&decoded)
    }

    /// The key as base64 text, for writing a key file.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(BASE64.encode(self.material.bytes.as_ref()))
    }

    /// The prepared cipher of the key (the raw provider seals and opens with it).
    pub(crate) fn cipher(&self) -> &Aes256Gcm {
        &self.material.cipher
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// A tenant data key with its prepared AES key schedule, in locked memory.
pub struct DataKey {
    id: u32,
    material: LockedBox<Material>,
}

impl DataKey {
    /// A new random data key with the given id.
    pub fn generate(id: u32) -> DataKey {
        let bytes = random_key_bytes();
        DataKey {
            id,
            material: Material::locked(&bytes),
        }
    }

    /// A data key from its unwrapped bytes (INTEGRITY when they are not 32 bytes).
    pub(crate) fn from_bytes(id: u32, raw: &[u8]) -> Result<DataKey> {
        if raw.len() != KEY_LEN {
            return Err(Error::integrity("unwrapped data key has the wrong length"));
        }
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        bytes.copy_from_slice(raw);
        Ok(DataKey {
            id,
            material: Material::locked(&bytes),
        })
    }

    /// A MAC key derived from this key for one purpose (`label`), so the key itself is never
    /// used for anything but sealing.
    pub fn derive_mac_key(&self, label: &[u8]) -> super::MacKey {
        super::MacKey::derive(self.material.bytes.as_ref(), label)
    }

    /// An Ed25519 signing key derived from this key for one purpose (`label`): its seed is
    /// `HMAC-SHA256(key, label)`.
    pub fn derive_signing_key(&self, label: &[u8]) -> super::ExportSigner {
        let seed = super::MacKey::derive(self.material.bytes.as_ref(), label);
        super::ExportSigner::from_seed(seed.bytes())
    }

    /// The key's bytes, for wrapping by a key provider.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.material.bytes.as_ref()
    }

    /// The id of this key within its tenant.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The prepared cipher (key schedule built once).
    pub fn cipher(&self) -> &Aes256Gcm {
        &self.material.cipher
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey(id={}, <redacted>)", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn base64_round_trip_and_rules() {
        let key = MasterKey::generate();
        let text = key.to_base64();
        let again = MasterKey::from_base64(&format!(" {}\n", text.as_str())).unwrap();
        assert_eq!(again.to_base64().as_str(), text.as_str());
        assert!(MasterKey::from_base64("not base64!").is_err());
        assert!(MasterKey::from_bytes(&[0u8; 16]).is_err());
    }

    #[test]
    fn all_zero_key_is_refused_in_every_form() {
        let err = MasterKey::from_bytes(&[0u8; KEY_LEN]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
        assert!(err.message().contains("all zero"), "{err}");
        let zero_b64 = BASE64.encode([0u8; KEY_LEN]);
        let err = MasterKey::from_base64(&zero_b64).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
        assert!(err.message().contains("all zero"), "{err}");
        let mut one_bit = [0u8; KEY_LEN];
        one_bit[31] = 1;
        assert!(MasterKey::from_bytes(&one_bit).is_ok());
    }

    #[test]
    fn debug_never_prints_key_bytes() {
        let key = MasterKey::from_bytes(&[0xAB; 32]).unwrap();
        let shown = format!("{key:?} {:?}", DataKey::generate(3));
        assert!(shown.contains("redacted"));
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab, "));
        assert!(!shown.contains(key.to_base64().as_str()));
    }
}
