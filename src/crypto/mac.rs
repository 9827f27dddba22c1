//! HMAC-SHA256 keys for authenticating records that are not encrypted (the audit log chain).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// Length of a MAC tag, in bytes.
pub const MAC_LEN: usize = 32;

/// A 256-bit HMAC-SHA256 key, wiped on drop, never printed.
#[derive(Clone)]
pub struct MacKey(Zeroizing<[u8; 32]>);

impl MacKey {
    /// `HMAC-SHA256(secret, label)`: a key for one purpose from a secret used for others.
    pub fn derive(secret: &[u8], label: &[u8]) -> MacKey {
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&MacKey::tag_with(secret, label));
        MacKey(key)
    }

    /// The key's bytes, as the seed of a key derived from it (`DataKey::derive_signing_key`).
    pub(super) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The tag of `data`.
    pub fn tag(&self, data: &[u8]) -> [u8; MAC_LEN] {
        MacKey::tag_with(self.0.as_ref(), data)
    }

    /// Whether `tag` is the tag of `data` (constant-time comparison).
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        // HMAC accepts keys of any length: construction cannot fail.
        let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(self.0.as_ref()) else {
            return false;
        };
        mac.update(data);
        mac.verify_slice(tag).is_ok()
    }

    /// Whether `tag` is the tag of the concatenation of `parts` (constant-time comparison).
    pub fn verify_parts(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(self.0.as_ref()) else {
            return false;
        };
        for part in parts {
            mac.update(part);
        }
        mac.verify_slice(tag).is_ok()
    }

    fn tag_with(key: &[u8], data: &[u8]) -> [u8; MAC_LEN] {
        let mut out = [0u8; MAC_LEN];
        if let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(key) {
            mac.update(data);
            out.copy_from_slice(&mac.finalize().into_bytes());
        }
        out
    }
}

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe".
        let tag = MacKey::tag_with(b"Jefe", b"what do ya want for nothing?");
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verify_rejects_other_data_and_keys() {
        let key = MacKey::derive(b"secret", b"label");
        let tag = key.tag(b"record");
        assert!(key.verify(b"record", &tag));
        assert!(!key.verify(b"recorD", &tag));
        assert!(!MacKey::derive(b"secret", b"other").verify(b"record", &tag));
        assert!(!key.verify(b"record", &tag[..31]));
        assert!(key.verify_parts(&[b"rec", b"ord"], &tag));
        assert!(!key.verify_parts(&[b"rec", b"orD"], &tag));
    }
}
