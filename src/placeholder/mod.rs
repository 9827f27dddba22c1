//! Secret placeholders: parsing, references and resolution (docs/ARCHITECTURE.md,
//! "Placeholders"). Pure: no storage, no crypto; values come from a [`SecretSource`] the store
//! implements.
//!
//! ```text
//! placeholder := "${secret:" NAME [";type:" TYPE] "}"
//! TYPE        := "TEXT" | "TEXT_FILE" | "FILE"      (FILE = TEXT_FILE; no type = any type)
//! escape      := "$${secret:"                        (the literal text "${secret:")
//! NAME        := a name, or a per-message pattern: a name with "{{metadata.KEY}}" or
//!                "{{data.KEY}}" parts, filled at resolve time (see `Variables`)
//! ```
//!
//! Resolution is strict: every placeholder is checked, every distinct name is fetched once per
//! call, and output is handed out only if every placeholder resolved. Otherwise the error lists
//! every offending placeholder by name and byte offset, never a value. Substituted values are
//! never scanned again. Buffers that held values are zeroized (the returned output is the
//! caller's).

mod dynamic;
mod json;
mod json_string;
#[cfg(test)]
mod linear_tests;
mod output;
mod references;
mod resolve;
mod scan;
mod stream;
#[cfg(test)]
mod test_support;
mod work;
mod yaml;

pub use dynamic::{
    is_dynamic, pattern_matches, VariableSource, Variables, MAX_VARIABLE_CHARS,
    MAX_VARIABLE_KEY_CHARS,
};
pub use json::{resolve_json, resolve_json_into, resolve_json_with};
pub use references::{references, Reference};
pub use resolve::{resolve_text, resolve_text_into, resolve_text_with};
pub use scan::{contains_placeholder, scan, Malformed, Placeholder, Scan, Token, OPEN};
pub use stream::{resolve_text_stream, CHUNK_BYTES};
pub use yaml::resolve_yaml;

use crate::error::Error;
use crate::model::SecretType;
use crate::Result;
use std::fmt;
use zeroize::Zeroizing;

/// Largest document (text, JSON or YAML) that [`resolve_text`], [`resolve_json`],
/// [`resolve_yaml`] and [`references`]
/// accept: 64 MiB, far above any ThingsBoard configuration or rule chain export. Readers of
/// documents (the CLI, the C ABI) stop at this many bytes + 1.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024 * 1024;

/// `INVALID_ARGUMENT` if a document of `len` bytes is over [`MAX_DOCUMENT_BYTES`].
pub fn check_document_len(len: usize) -> Result<()> {
    if len > MAX_DOCUMENT_BYTES {
        return Err(Error::invalid(format!(
            "the document is {len} bytes long; the limit is {MAX_DOCUMENT_BYTES} bytes (64 MiB)"
        )));
    }
    Ok(())
}

/// What a [`SecretSource`] answers for one secret name.
pub enum Fetched {
    /// The secret exists and can be substituted.
    Found {
        /// The secret's stored type, checked against the placeholder's `;type:`.
        secret_type: SecretType,
        /// The text that replaces the placeholder (the value, or e.g. the path of a
        /// materialised file). Zeroized when the resolver drops it.
        replacement: Zeroizing<String>,
    },
    /// No secret has that name.
    Missing,
    /// The caller may not use this name (e.g. it is outside the session's allow-list): a
    /// PERMISSION_DENIED problem. Nothing is said about whether the secret exists.
    Denied {
        /// Why, without any value.
        reason: String,
    },
    /// The secret exists but cannot be substituted (for example a TEXT_FILE value that is not
    /// UTF-8).
    Unusable {
        /// Why, without the value: it is copied into the error.
        reason: String,
    },
}

impl fmt::Debug for Fetched {
    /// Never shows the replacement.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fetched::Found { secret_type, .. } => f
                .debug_struct("Found")
                .field("secret_type", secret_type)
                .field("replacement", &"<redacted>")
                .finish(),
            Fetched::Missing => f.write_str("Missing"),
            Fetched::Unusable { reason } => {
                f.debug_struct("Unusable").field("reason", reason).finish()
            }
            Fetched::Denied { reason } => f.debug_struct("Denied").field("reason", reason).finish(),
        }
    }
}

/// Where the resolver gets secrets from; the store implements it.
///
/// The resolver calls [`fetch`](SecretSource::fetch) at most once per distinct name per
/// resolve call.
pub trait SecretSource {
    /// Looks one secret up. `Err` is a hard error (storage, integrity) that aborts the resolve
    /// call with that error; an absent or unusable secret is an `Ok` answer instead.
    fn fetch(&mut self, name: &str) -> Result<Fetched>;

    /// Looks up the secret a per-message placeholder names once filled (`name` is already
    /// checked as a name). The default refuses: a source has to opt in to names chosen by
    /// message data (the store does for sessions restricted to an allow-list the name matches).
    fn fetch_filled(&mut self, name: &str) -> Result<Fetched> {
        let _ = name;
        Ok(Fetched::Denied {
            reason: "per-message names are not allowed here".to_owned(),
        })
    }
}

/// Any `FnMut(&str) -> Result<Fetched>` closure is a source (handy for tests and callbacks).
impl<F> SecretSource for F
where
    F: FnMut(&str) -> Result<Fetched>,
{
    fn fetch(&mut self, name: &str) -> Result<Fetched> {
        self(name)
    }
}
