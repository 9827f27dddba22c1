//! The data model and its validation rules (docs/ARCHITECTURE.md, "The model"). Pure: no I/O,
//! no crypto.

use crate::error::{Error, Result};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// Longest tenant id, in bytes.
pub const MAX_TENANT_BYTES: usize = 255;
/// Longest secret name, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 255;
/// Default limit of a TEXT value, in characters (ThingsBoard's default).
pub const DEFAULT_MAX_TEXT_CHARS: usize = 2048;
/// Default limit of a TEXT_FILE value, in bytes (ThingsBoard's default).
pub const DEFAULT_MAX_FILE_BYTES: usize = 512 * 1024;
/// Default number of versions kept per secret.
pub const DEFAULT_MAX_VERSIONS: u32 = 10;
/// The tenant used by the CLI and C callers that have no tenants.
pub const DEFAULT_TENANT: &str = "default";

/// The kind of a secret: a UTF-8 text or a file's bytes (typically PEM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SecretType {
    /// A UTF-8 string, such as a password, token or API key.
    #[serde(rename = "TEXT")]
    Text,
    /// Arbitrary bytes, such as a CA certificate or a private key.
    #[serde(rename = "TEXT_FILE")]
    TextFile,
}

impl SecretType {
    /// The canonical name: `TEXT` or `TEXT_FILE`.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretType::Text => "TEXT",
            SecretType::TextFile => "TEXT_FILE",
        }
    }

    /// The stable number used by the C ABI and the JNI bridge (TEXT = 0, TEXT_FILE = 1).
    pub fn as_u8(self) -> u8 {
        match self {
            SecretType::Text => 0,
            SecretType::TextFile => 1,
        }
    }

    /// The type for a stable number.
    pub fn from_u8(value: u8) -> Option<SecretType> {
        match value {
            0 => Some(SecretType::Text),
            1 => Some(SecretType::TextFile),
            _ => None,
        }
    }
}

impl fmt::Display for SecretType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SecretType {
    type Err = Error;

    /// Accepts `TEXT`, `TEXT_FILE` and the alias `FILE` (case-insensitive, `-` as `_`).
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_uppercase().replace('-', "_").as_str() {
            "TEXT" => Ok(SecretType::Text),
            "TEXT_FILE" | "FILE" => Ok(SecretType::TextFile),
            _ => Err(Error::invalid(format!(
                "unknown secret type '{s}': expected TEXT, TEXT_FILE or FILE"
            ))),
        }
    }
}

/// Size limits applied to values (options of the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest TEXT value, in characters.
    pub max_text_chars: usize,
    /// Longest TEXT_FILE value, in bytes.
    pub max_file_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_text_chars: DEFAULT_MAX_TEXT_CHARS,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// Checks a tenant id: non-empty UTF-8, at most 255 bytes, no control characters.
pub fn validate_tenant(tenant: &str) -> Result<()> {
    if tenant.is_empty() {
        return Err(Error::invalid("tenant must not be empty"));
    }
    if tenant.len() > MAX_TENANT_BYTES {
        return Err(Error::invalid(format!(
            "tenant is {} bytes long; the limit is {MAX_TENANT_BYTES} bytes",
            tenant.len()
        )));
    }
    if tenant.chars().any(char::is_control) {
        return Err(Error::invalid("tenant must not contain control characters"));
    }
    Ok(())
}

/// Checks a secret name: 1–255 characters, not all whitespace, none of `{ } ;` nor control
/// characters.
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid("secret name must not be empty"));
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(Error::invalid(format!(
            "secret name is {chars} characters long; the limit is {MAX_NAME_CHARS}"
        )));
    }
    if name.chars().all(char::is_whitespace) {
        return Err(Error::invalid(
            "secret name must not consist only of whitespace",
        ));
    }
    if let Some(bad) = name.chars().find(|c| matches!(c, '{' | '}' | ';')) {
        return Err(Error::invalid(format!(
            "secret name must not contain '{bad}' (the characters {{ }} ; are reserved by the placeholder syntax)"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "secret name must not contain control characters",
        ));
    }
    Ok(())
}

/// Checks a description: at most 255 characters, no control characters other than tab.
pub fn validate_description(description: &str) -> Result<()> {
    let chars = description.chars().count();
    if chars > MAX_DESCRIPTION_CHARS {
        return Err(Error::invalid(format!(
            "description is {chars} characters long; the limit is {MAX_DESCRIPTION_CHARS}"
        )));
    }
    if description.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Error::invalid(
            "description must not contain control characters",
        ));
    }
    Ok(())
}

/// Checks a value against its type and the limits. The error never contains the value.
pub fn validate_value(secret_type: SecretType, value: &[u8], limits: &Limits) -> Result<()> {
    match secret_type {
        SecretType::Text => {
            let text = std::str::from_utf8(value).map_err(|e| {
                Error::invalid(format!(
                    "a TEXT value must be valid UTF-8 (invalid byte at offset {})",
                    e.valid_up_to()
                ))
            })?;
            // Cheap bound first: a string of n bytes has at most n characters.
            if text.len() > limits.max_text_chars {
                let chars = text.chars().count();
                if chars > limits.max_text_chars {
                    return Err(Error::invalid(format!(
                        "a TEXT value is {chars} characters long; the limit is {}",
                        limits.max_text_chars
                    )));
                }
            }
        }
        SecretType::TextFile => {
            if value.len() > limits.max_file_bytes {
                return Err(Error::invalid(format!(
                    "a TEXT_FILE value is {} bytes long; the limit is {} bytes",
                    value.len(),
                    limits.max_file_bytes
                )));
            }
        }
    }
    Ok(())
}

/// Metadata of a secret. Never contains the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretInfo {
    /// Tenant the secret belongs to.
    pub tenant: String,
    /// Secret name, unique in the tenant.
    pub name: String,
    /// Secret type.
    #[serde(rename = "type")]
    pub secret_type: SecretType,
    /// Free-text description.
    pub description: String,
    /// Current version (1 after creation).
    pub version: u64,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Last value or description change, milliseconds since the Unix epoch.
    pub updated_at: i64,
    /// Time the current value was written, milliseconds since the Unix epoch.
    pub value_updated_at: i64,
    /// Last time the value was read or resolved, if ever (milliseconds since the epoch).
    pub last_used_at: Option<i64>,
    /// How many times the value was read or resolved.
    pub use_count: u64,
    /// When the secret was deleted (milliseconds since the epoch), for a deleted secret still
    /// recoverable with `undelete` (listed only with [`ListQuery::deleted`]); `None` for a live
    /// secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<i64>,
}

/// One kept version of a secret (no value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    /// The version number.
    pub version: u64,
    /// When it was written, milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Whether it is the current version.
    pub current: bool,
}

/// A page request for [`crate::SecretStorage::list`].
///
/// Page through a tenant with `after` (keyset paging): start with `None`, then pass the
/// previous page's [`Page::next_after`]. Each page is read from the primary key starting at the
/// cursor, so the last page of a large tenant costs what the first does, and secrets created
/// or deleted between pages neither repeat nor hide the others. `offset` skips entries after
/// that (kept for compatibility; its cost grows with the number skipped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Case-sensitive substring the name must contain, if any.
    pub name_contains: Option<String>,
    /// Only names after this one (in name order, byte-wise), if any: the cursor.
    pub after: Option<String>,
    /// Number of entries to skip (in name order), after `after`.
    pub offset: usize,
    /// Page size; 0 means "all".
    pub limit: usize,
    /// List the deleted secrets still recoverable with `undelete` instead of the live ones.
    pub deleted: bool,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    /// The entries of this page.
    pub items: Vec<T>,
    /// Number of entries that match the filter, over all pages.
    pub total: usize,
    /// Whether entries follow this page.
    pub has_more: bool,
    /// The cursor of the next page (the last name of this one) when entries follow: pass it
    /// as [`ListQuery::after`].
    pub next_after: Option<String>,
}

/// The current time in milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `INVALID_ARGUMENT` when a pointer + length argument is longer than `limit` bytes. Called
/// before the bytes are touched, so an oversized length costs nothing and reads nothing.
fn check_len(len: usize, limit: usize, what: &str, rule: impl FnOnce() -> String) -> Result<()> {
    if len > limit {
        return Err(Error::invalid(format!(
            "{what} is {len} bytes long; {}",
            rule()
        )));
    }
    Ok(())
}

/// Checks the length of a value of `secret_type` against the store's limits before the value
/// is read (by the C and JNI surfaces, and the CLI): a TEXT_FILE value has at most `max_file_bytes` bytes, a TEXT value of
/// `max_text_chars` characters at most 4 bytes per character; with the type not known yet
/// (`None`), the larger of the two. The store checks the value exactly afterwards.
pub fn check_value_len(len: usize, limits: &Limits, secret_type: Option<SecretType>) -> Result<()> {
    let text_bytes = limits.max_text_chars.saturating_mul(4);
    let text_rule = || {
        format!(
            "a TEXT value has at most {} characters ({text_bytes} bytes)",
            limits.max_text_chars
        )
    };
    let file_rule = || {
        format!(
            "a TEXT_FILE value has at most {} bytes",
            limits.max_file_bytes
        )
    };
    match secret_type {
        Some(SecretType::Text) => check_len(len, text_bytes, "value", text_rule),
        Some(SecretType::TextFile) => check_len(len, limits.max_file_bytes, "value", file_rule),
        None => check_len(len, text_bytes.max(limits.max_file_bytes), "value", || {
            format!("{}; {}", text_rule(), file_rule())
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn rule_of(result: Result<()>) -> String {
        let err = result.expect_err("must be rejected");
        assert_eq!(err.code(), ErrorCode::InvalidArgument);
        err.message().to_string()
    }

    #[test]
    fn tenant_rules() {
        assert!(validate_tenant("default").is_ok());
        assert!(validate_tenant("13814000-1dd2-11b2-8080-808080808080").is_ok());
        assert!(rule_of(validate_tenant("")).contains("empty"));
        assert!(rule_of(validate_tenant(&"t".repeat(256))).contains("255 bytes"));
        assert!(validate_tenant(&"t".repeat(255)).is_ok());
        assert!(rule_of(validate_tenant("a\nb")).contains("control"));
    }

    #[test]
    fn name_rules() {
        assert!(validate_name("MyApiKey").is_ok());
        assert!(validate_name("ключ API 🔑").is_ok());
        assert!(validate_name(&"é".repeat(255)).is_ok());
        assert!(rule_of(validate_name("")).contains("empty"));
        assert!(rule_of(validate_name("   \t")).contains("whitespace"));
        assert!(rule_of(validate_name(&"é".repeat(256))).contains("256 characters"));
        for bad in ["a{b", "a}b", "a;b"] {
            assert!(rule_of(validate_name(bad)).contains("reserved"), "{bad}");
        }
        assert!(rule_of(validate_name("a\u{7}b")).contains("control"));
    }

    #[test]
    fn description_rules() {
        assert!(validate_description("").is_ok());
        assert!(validate_description(&"d".repeat(255)).is_ok());
        assert!(rule_of(validate_description(&"d".repeat(256))).contains("255"));
        assert!(rule_of(validate_description("x\ny")).contains("control"));
    }

    #[test]
    fn value_rules() {
        let limits = Limits::default();
        assert!(validate_value(SecretType::Text, "ü".repeat(2048).as_bytes(), &limits).is_ok());
        assert!(rule_of(validate_value(
            SecretType::Text,
            "ü".repeat(2049).as_bytes(),
            &limits
        ))
        .contains("2049 characters"));
        assert!(rule_of(validate_value(SecretType::Text, b"ok\xff", &limits)).contains("UTF-8"));
        assert!(validate_value(SecretType::TextFile, &[0xff; 512 * 1024], &limits).is_ok());
        assert!(rule_of(validate_value(
            SecretType::TextFile,
            &vec![0u8; 512 * 1024 + 1],
            &limits
        ))
        .contains("bytes"));
        let small = Limits {
            max_text_chars: 3,
            max_file_bytes: 4,
        };
        assert!(validate_value(SecretType::Text, b"abcd", &small).is_err());
        assert!(validate_value(SecretType::TextFile, b"abcde", &small).is_err());
    }

    #[test]
    fn type_names_and_alias() {
        assert_eq!("TEXT".parse::<SecretType>().unwrap(), SecretType::Text);
        assert_eq!(
            "text-file".parse::<SecretType>().unwrap(),
            SecretType::TextFile
        );
        assert_eq!("FILE".parse::<SecretType>().unwrap(), SecretType::TextFile);
        assert!("BLOB".parse::<SecretType>().is_err());
        assert_eq!(
            SecretType::from_u8(SecretType::TextFile.as_u8()),
            Some(SecretType::TextFile)
        );
        assert_eq!(SecretType::from_u8(7), None);
    }
}
