//! The holder through which a secret value leaves the library.

use crate::error::{Error, Result};
use crate::model::SecretType;
use std::fmt;
use zeroize::Zeroizing;

/// A decrypted secret value. The bytes are zeroized when it is dropped and `Debug` never
/// prints them.
pub struct SecretValue {
    secret_type: SecretType,
    version: u64,
    bytes: Zeroizing<Vec<u8>>,
}

impl SecretValue {
    pub(crate) fn new(secret_type: SecretType, version: u64, bytes: Zeroizing<Vec<u8>>) -> Self {
        SecretValue {
            secret_type,
            version,
            bytes,
        }
    }

    /// The secret's type.
    pub fn secret_type(&self) -> SecretType {
        self.secret_type
    }

    /// The version this value belongs to.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The value's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The value as UTF-8 text (always succeeds for TEXT secrets).
    pub fn as_str(&self) -> Result<&str> {
        std::str::from_utf8(&self.bytes)
            .map_err(|_| Error::invalid("the secret value is not valid UTF-8 text"))
    }

    /// Takes the zeroizing buffer out of the holder.
    pub fn into_bytes(self) -> Zeroizing<Vec<u8>> {
        self.bytes
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SecretValue {{ type: {}, version: {}, len: {}, value: <redacted> }}",
            self.secret_type,
            self.version,
            self.bytes.len()
        )
    }
}
