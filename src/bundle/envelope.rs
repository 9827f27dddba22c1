//! The bundle's encryption: an age file (age-encryption.org/v1) to X25519 recipients
//! (`age1…`), which the stock `age` tool opens with the matching identity.

use crate::error::{Error, ErrorCode, Result};
use std::io::{Read, Write};
use zeroize::Zeroizing;

/// The largest plaintext an import reads (a bundle of 10,000 secrets of 64 KiB is 900 MB).
pub(crate) const MAX_PLAINTEXT_BYTES: u64 = 1 << 30;

/// The recipients listed in `text`: `age1…` public keys, one per line or separated by
/// whitespace or commas (an age recipients file); blank lines and `#` comments are ignored.
pub(crate) fn recipients(text: &str) -> Result<Vec<age::x25519::Recipient>> {
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        for word in line.split(|c: char| c.is_whitespace() || c == ',') {
            if word.is_empty() {
                continue;
            }
            out.push(word.parse().map_err(|_| {
                Error::invalid(format!(
                    "recipient '{}' (line {}) is not an age X25519 recipient (age1…)",
                    word.chars().take(80).collect::<String>(),
                    number + 1
                ))
            })?);
        }
    }
    if out.is_empty() {
        return Err(Error::invalid(
            "no recipient: name at least one age public key (age1…) to encrypt the bundle to",
        ));
    }
    Ok(out)
}

/// `plaintext` encrypted to `recipients` as a binary age file.
pub(crate) fn encrypt(plaintext: &[u8], recipients: &[age::x25519::Recipient]) -> Result<Vec<u8>> {
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| Error::invalid(format!("cannot encrypt to these recipients: {e}")))?;
    let mut out = Vec::with_capacity(plaintext.len() + plaintext.len() / 4096 * 16 + 512);
    let io = |e: std::io::Error| Error::internal(format!("encrypting the bundle: {e}"));
    let mut writer = encryptor.wrap_output(&mut out).map_err(io)?;
    writer.write_all(plaintext).map_err(io)?;
    writer.finish().map_err(io)?;
    Ok(out)
}

/// Decrypts an age file with the identities in `identity` (the text of an age identity file:
/// `AGE-SECRET-KEY-1…` lines). INVALID_ARGUMENT when the identity file holds none or none of
/// them is a recipient of the bundle; INTEGRITY when the file is not an age file or was
/// changed.
pub(crate) fn decrypt(bundle: &[u8], identity: &str) -> Result<Zeroizing<Vec<u8>>> {
    let identities = age::IdentityFile::from_buffer(identity.as_bytes())
        .map_err(|e| Error::invalid(format!("the identity is not an age identity file: {e}")))?
        .into_identities()
        .map_err(|e| Error::invalid(format!("the identity file cannot be used: {e}")))?;
    if identities.is_empty() {
        return Err(Error::invalid(
            "the identity file holds no identity (AGE-SECRET-KEY-1…)",
        ));
    }
    let decryptor = age::Decryptor::new_buffered(bundle).map_err(|e| decrypt_error(&e))?;
    let mut reader = decryptor
        .decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity))
        .map_err(|e| decrypt_error(&e))?;
    let mut plaintext = Zeroizing::new(Vec::with_capacity(bundle.len()));
    (&mut reader)
        .take(MAX_PLAINTEXT_BYTES + 1)
        .read_to_end(&mut plaintext)
        .map_err(|e| {
            Error::new(
                ErrorCode::Integrity,
                format!("the bundle's encrypted payload does not authenticate (damaged or changed): {e}"),
            )
        })?;
    if plaintext.len() as u64 > MAX_PLAINTEXT_BYTES {
        return Err(Error::invalid(format!(
            "the bundle's content exceeds {MAX_PLAINTEXT_BYTES} bytes"
        )));
    }
    Ok(plaintext)
}

fn decrypt_error(e: &age::DecryptError) -> Error {
    match e {
        age::DecryptError::NoMatchingKeys => Error::invalid(
            "the identity does not open this bundle: it was encrypted to other recipients",
        ),
        other => Error::new(
            ErrorCode::Integrity,
            format!("the bundle is not an intact age file: {other}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_types_its_failures() {
        let identity = age::x25519::Identity::generate();
        let text = format!("# key\n{}\n", identity.to_string().expose_secret_owned());
        let to = recipients(&format!("# r\n\n{}\n", identity.to_public())).unwrap();
        let sealed = encrypt(b"hello", &to).unwrap();
        assert_eq!(decrypt(&sealed, &text).unwrap().as_slice(), b"hello");

        let other = age::x25519::Identity::generate();
        let other_text = other.to_string().expose_secret_owned();
        let err = decrypt(&sealed, &other_text).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument);

        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(
            decrypt(&flipped, &text).unwrap_err().code(),
            ErrorCode::Integrity
        );
        assert_eq!(
            decrypt(b"nope", &text).unwrap_err().code(),
            ErrorCode::Integrity
        );
        assert_eq!(
            decrypt(&sealed, "garbage").unwrap_err().code(),
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            recipients("age1nope").unwrap_err().code(),
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            recipients("# none\n").unwrap_err().code(),
            ErrorCode::InvalidArgument
        );
    }

    trait ExposeOwned {
        fn expose_secret_owned(&self) -> String;
    }

    impl ExposeOwned for age::secrecy::SecretString {
        fn expose_secret_owned(&self) -> String {
            use age::secrecy::ExposeSecret;
            self.expose_secret().to_owned()
        }
    }
}
