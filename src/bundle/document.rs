//! The plaintext of a bundle: one JSON document carrying the signed payload.
//!
//! ```text
//! {"format":"tbsecrets-bundle","format_version":1,"signer":"ed25519:…","payload":{…},"signature":"…"}
//! ```
//!
//! `signature` is the base64 Ed25519 signature by `signer` of `SIGNATURE_CONTEXT` followed by
//! the exact bytes of the `payload` value as they appear in the document.

use super::invalid_bundle;
use crate::crypto::{ExportPublicKey, ExportSigner};
use crate::error::Result;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use zeroize::Zeroizing;

/// The `format` field.
pub(crate) const FORMAT: &str = "tbsecrets-bundle";
/// The `format_version` this code writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// What the signature covers before the payload bytes.
const SIGNATURE_CONTEXT: &[u8] = b"tbsecrets bundle v1\0";

/// The signed payload: a tenant's secrets.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Payload {
    /// The tenant exported.
    pub tenant: String,
    /// When, ms since the Unix epoch.
    pub exported_at: i64,
    /// Whether every kept version is included (else the current one).
    pub all_versions: bool,
    /// The secrets, in name order.
    pub secrets: Vec<BundledSecret>,
}

/// One secret of a payload.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BundledSecret {
    pub name: String,
    #[serde(rename = "type")]
    pub secret_type: String,
    pub description: String,
    /// Oldest first; the last is the current version.
    pub versions: Vec<BundledVersion>,
}

/// One version of a secret: the value as standard base64 (padded).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BundledVersion {
    pub version: u64,
    pub created_at: i64,
    pub value: Zeroizing<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Outer<'a> {
    format: String,
    format_version: u32,
    signer: String,
    #[serde(borrow)]
    payload: &'a RawValue,
    signature: String,
}

/// The signed document of `payload` (wiped on drop: it holds values).
pub(crate) fn sign(payload: &Payload, signer: &ExportSigner) -> Result<Zeroizing<Vec<u8>>> {
    let estimate = 256
        + payload
            .secrets
            .iter()
            .map(|s| {
                s.name.len() * 2
                    + s.description.len() * 2
                    + 96
                    + s.versions.iter().map(|v| v.value.len() + 80).sum::<usize>()
            })
            .sum::<usize>();
    let mut body = Zeroizing::new(Vec::with_capacity(estimate));
    serde_json::to_writer(&mut *body, payload)
        .map_err(|e| crate::error::Error::internal(format!("bundle payload: {e}")))?;
    let mut message = Zeroizing::new(Vec::with_capacity(SIGNATURE_CONTEXT.len() + body.len()));
    message.extend_from_slice(SIGNATURE_CONTEXT);
    message.extend_from_slice(&body);
    let signature = STANDARD_NO_PAD.encode(signer.sign(&message));
    let signer = signer.public_key().to_string();
    let head = format!(
        "{{\"format\":\"{FORMAT}\",\"format_version\":{FORMAT_VERSION},\"signer\":\"{signer}\",\"payload\":"
    );
    let tail = format!(",\"signature\":\"{signature}\"}}\n");
    let mut document = Zeroizing::new(Vec::with_capacity(head.len() + body.len() + tail.len()));
    document.extend_from_slice(head.as_bytes());
    document.extend_from_slice(&body);
    document.extend_from_slice(tail.as_bytes());
    Ok(document)
}

/// Verifies `document`'s signature by a key in `trusted` and returns the payload and its
/// signer. INTEGRITY for anything else: not a bundle document, another format version, a
/// signature that does not verify, a signer not trusted.
pub(crate) fn verify(
    document: &[u8],
    trusted: &[ExportPublicKey],
) -> Result<(Payload, ExportPublicKey)> {
    let outer: Outer<'_> = serde_json::from_slice(document).map_err(|e| {
        invalid_bundle(format!(
            "the bundle's content is not a bundle document: {e}"
        ))
    })?;
    if outer.format != FORMAT {
        return Err(invalid_bundle(format!(
            "the bundle's format is '{}', not '{FORMAT}'",
            outer.format.chars().take(64).collect::<String>()
        )));
    }
    if outer.format_version != FORMAT_VERSION {
        return Err(invalid_bundle(format!(
            "the bundle has format version {}; this tbsecrets reads version {FORMAT_VERSION}",
            outer.format_version
        )));
    }
    let signer: ExportPublicKey = outer
        .signer
        .parse()
        .map_err(|_| invalid_bundle("the bundle's signer is not an export public key"))?;
    let signature = STANDARD_NO_PAD
        .decode(outer.signature.trim_end_matches('='))
        .map_err(|_| invalid_bundle("the bundle's signature is not base64"))?;
    let raw = outer.payload.get().as_bytes();
    let mut message = Zeroizing::new(Vec::with_capacity(SIGNATURE_CONTEXT.len() + raw.len()));
    message.extend_from_slice(SIGNATURE_CONTEXT);
    message.extend_from_slice(raw);
    if !signer.verifies(&message, &signature) {
        return Err(invalid_bundle(
            "the bundle's signature does not verify: its content was changed after it was signed",
        ));
    }
    if !trusted.contains(&signer) {
        return Err(invalid_bundle(format!(
            "the bundle is signed by {signer}, which is not trusted: pass the exporting store's key (tbsecrets export-key) as a trusted signer"
        )));
    }
    let payload: Payload = serde_json::from_str(outer.payload.get())
        .map_err(|e| invalid_bundle(format!("the bundle's payload is malformed: {e}")))?;
    Ok((payload, signer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn payload() -> Payload {
        Payload {
            tenant: "t".into(),
            exported_at: 5,
            all_versions: false,
            secrets: vec![BundledSecret {
                name: "db".into(),
                secret_type: "TEXT".into(),
                description: "d".into(),
                versions: vec![BundledVersion {
                    version: 3,
                    created_at: 4,
                    value: Zeroizing::new("c2VjcmV0".into()),
                }],
            }],
        }
    }

    #[test]
    fn a_signed_document_verifies_only_unchanged_and_by_a_trusted_key() {
        let signer = ExportSigner::from_seed(&[1; 32]);
        let document = sign(&payload(), &signer).unwrap();
        let trusted = [signer.public_key()];
        let (back, by) = verify(&document, &trusted).unwrap();
        assert_eq!(by, signer.public_key());
        assert_eq!(back.secrets[0].versions[0].value.as_str(), "c2VjcmV0");

        let edited = String::from_utf8(document.to_vec())
            .unwrap()
            .replace("c2VjcmV0", "c2VjcmV1");
        let err = verify(edited.as_bytes(), &trusted).err().unwrap();
        assert_eq!(err.code(), ErrorCode::Integrity);
        assert!(err.message().contains("does not verify"), "{err}");

        let other = ExportSigner::from_seed(&[2; 32]);
        let resigned = sign(&payload(), &other).unwrap();
        let err = verify(&resigned, &trusted).err().unwrap();
        assert_eq!(err.code(), ErrorCode::Integrity);
        assert!(err.message().contains("not trusted"), "{err}");

        let err = verify(b"{\"format\":1}", &trusted).err().unwrap();
        assert_eq!(err.code(), ErrorCode::Integrity);
    }
}
