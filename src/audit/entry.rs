//! One audit record and its JSON line.

use crate::access::Actor;
use crate::crypto::mac::MAC_LEN;
use crate::crypto::MacKey;
use crate::error::{ErrorCode, Result};
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use serde::Serialize;
use std::time::{Duration, UNIX_EPOCH};

/// What was done (or attempted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuditAction {
    /// A secret was created.
    Create,
    /// A new value version was written.
    Update,
    /// A description was changed.
    Describe,
    /// A secret was deleted (recoverable until the retention passes, see `Undelete`; with a
    /// retention of 0, erased as by `Destroy`).
    Delete,
    /// A deleted secret was made live again.
    Undelete,
    /// A secret and all its versions were erased for good (by `destroy`, or by the retention
    /// purge, whose records say so in `detail`).
    Destroy,
    /// An older version was made current again.
    Rollback,
    /// A source's references were recorded.
    TrackReferences,
    /// A source's references were forgotten.
    UntrackReferences,
    /// A value was read (`get`).
    Get,
    /// A value was substituted into a document.
    Resolve,
    /// Metadata was read (audited only when denied).
    Read,
    /// The master key was replaced.
    RotateMasterKey,
    /// A tenant's data key was replaced.
    RotateTenantKey,
    /// The audit log was verified (outcome OK or INTEGRITY).
    VerifyAuditLog,
    /// An operator accepted a store older than its anchor or audit log (a deliberate
    /// restore); `detail` names the counters.
    AcceptRestore,
    /// A secret's value(s) were written into an export bundle.
    Export,
    /// A secret was written from an export bundle.
    Import,
}

impl AuditAction {
    /// The stable upper-case name written to the log.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::Create => "CREATE",
            AuditAction::Update => "UPDATE",
            AuditAction::Describe => "DESCRIBE",
            AuditAction::Delete => "DELETE",
            AuditAction::Undelete => "UNDELETE",
            AuditAction::Destroy => "DESTROY",
            AuditAction::Rollback => "ROLLBACK",
            AuditAction::TrackReferences => "TRACK_REFERENCES",
            AuditAction::UntrackReferences => "UNTRACK_REFERENCES",
            AuditAction::Get => "GET",
            AuditAction::Resolve => "RESOLVE",
            AuditAction::Read => "READ",
            AuditAction::RotateMasterKey => "ROTATE_MASTER_KEY",
            AuditAction::RotateTenantKey => "ROTATE_TENANT_KEY",
            AuditAction::VerifyAuditLog => "VERIFY_AUDIT_LOG",
            AuditAction::AcceptRestore => "ACCEPT_RESTORE",
            AuditAction::Export => "EXPORT",
            AuditAction::Import => "IMPORT",
        }
    }
}

/// One audit record before it is sealed into the chain. Holds names and codes, never values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// When it happened (for a batch: the last call), ms since the Unix epoch.
    #[serde(serialize_with = "rfc3339")]
    pub time: i64,
    /// For a batch of uses: the first call, ms since the Unix epoch.
    #[serde(
        serialize_with = "rfc3339_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub since: Option<i64>,
    /// The tenant acted on (`*` for the whole store).
    pub tenant: String,
    /// `HOST` or the principal's role.
    pub role: &'static str,
    /// The principal's own tenant, when it differs from `tenant`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_tenant: Option<String>,
    /// The principal's id (user or service), if given.
    pub principal: Option<String>,
    /// What was done.
    pub action: AuditAction,
    /// The secrets concerned.
    pub names: Vec<String>,
    /// The version written (or key id created), if any.
    pub version: Option<u64>,
    /// `OK` or the error code's name.
    #[serde(serialize_with = "code_name")]
    pub outcome: ErrorCode,
    /// The source (rule node, integration, file) concerned, if any.
    pub source: Option<String>,
    /// How many calls this record covers (1 unless batched).
    pub count: u64,
    /// What else the record must say (an accepted restore's counters), if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Longest tenant or name written to a record, in bytes: valid ones are far shorter, and an
/// oversized argument (refused with INVALID_ARGUMENT) must not bloat the log.
pub(crate) const MAX_FIELD_BYTES: usize = 1024;

/// `text` cut to at most [`MAX_FIELD_BYTES`] bytes on a character boundary.
pub(crate) fn clip(text: &str) -> &str {
    if text.len() <= MAX_FIELD_BYTES {
        return text;
    }
    let mut end = MAX_FIELD_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl AuditEntry {
    /// A record of one call by `actor` in `tenant` (over-long tenants and names are clipped).
    pub fn new(
        actor: &Actor,
        action: AuditAction,
        tenant: &str,
        mut names: Vec<String>,
        outcome: ErrorCode,
    ) -> AuditEntry {
        let tenant = clip(tenant);
        for name in &mut names {
            let clipped = clip(name).len();
            name.truncate(clipped);
        }
        let (principal_tenant, principal) = match actor.principal() {
            Some(p) => ((p.tenant != tenant).then(|| p.tenant.clone()), p.id.clone()),
            None => (None, None),
        };
        AuditEntry {
            time: crate::model::now_millis(),
            since: None,
            tenant: tenant.to_owned(),
            role: actor.role_name(),
            principal_tenant,
            principal,
            action,
            names,
            version: None,
            outcome,
            source: None,
            count: 1,
            detail: None,
        }
    }
}

/// The head of a chain: the last record's sequence number and MAC (base64).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ChainHead {
    /// Sequence number of the last record (0: none yet).
    pub seq: u64,
    /// MAC of the last record, base64 without padding ("" before the first).
    pub mac: String,
}

#[derive(Serialize)]
struct Chained<'a> {
    seq: u64,
    #[serde(flatten)]
    entry: &'a AuditEntry,
    prev: &'a str,
}

/// The marker between a line's content and its MAC.
pub(crate) const MAC_MARKER: &str = ",\"mac\":\"";

/// Seals `entry` as the record after `head` and advances the head. The line is the JSON
/// object of the record (with `seq` and `prev`) and its MAC over the object without the MAC
/// field: `{...,"prev":"…","mac":"…"}` plus a newline.
pub(crate) fn seal_line(key: &MacKey, head: &mut ChainHead, entry: &AuditEntry) -> Result<String> {
    let seq = head.seq + 1;
    let content = serde_json::to_string(&Chained {
        seq,
        entry,
        prev: &head.mac,
    })
    .map_err(|e| crate::error::Error::internal(format!("cannot encode an audit record: {e}")))?;
    let mac = B64.encode(key.tag(content.as_bytes()));
    let mut line = String::with_capacity(content.len() + MAC_MARKER.len() + 48);
    line.push_str(&content[..content.len() - 1]);
    line.push_str(MAC_MARKER);
    line.push_str(&mac);
    line.push_str("\"}\n");
    *head = ChainHead { seq, mac };
    Ok(line)
}

/// A line's parts: the content its MAC covers is `body` followed by `}`; `mac` is the
/// decoded tag and `mac_text` its base64 form as written.
pub(crate) struct LineParts<'a> {
    /// The line up to (not including) the MAC field.
    pub body: &'a str,
    /// The MAC.
    pub mac: [u8; MAC_LEN],
    /// The MAC as written (base64 without padding).
    pub mac_text: &'a str,
}

/// Splits a line (without its newline) into the content its MAC covers and the MAC.
pub(crate) fn split_line(line: &str) -> Option<LineParts<'_>> {
    let body = line.strip_suffix("\"}")?;
    let at = body.rfind(MAC_MARKER)?;
    let mac_text = &body[at + MAC_MARKER.len()..];
    let mut mac = [0u8; MAC_LEN];
    if B64.decode_slice(mac_text, &mut mac).ok()? != MAC_LEN {
        return None;
    }
    Some(LineParts {
        body: &body[..at],
        mac,
        mac_text,
    })
}

/// The `seq` and `mac` of a line, to continue its chain.
pub(crate) fn head_of(line: &str) -> Option<ChainHead> {
    #[derive(serde::Deserialize)]
    struct Head {
        seq: u64,
        mac: String,
    }
    let head: Head = serde_json::from_str(line).ok()?;
    Some(ChainHead {
        seq: head.seq,
        mac: head.mac,
    })
}

fn time_text(ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

fn rfc3339<S: serde::Serializer>(ms: &i64, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&time_text(*ms))
}

fn rfc3339_opt<S: serde::Serializer>(
    ms: &Option<i64>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => rfc3339(ms, s),
        None => s.serialize_none(),
    }
}

fn code_name<S: serde::Serializer>(code: &ErrorCode, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(code.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Principal, Role};

    #[test]
    fn oversized_fields_are_clipped_on_a_character_boundary() {
        let long = "é".repeat(MAX_FIELD_BYTES);
        let entry = AuditEntry::new(
            &Actor::Host,
            AuditAction::Get,
            &long,
            vec![long.clone()],
            ErrorCode::InvalidArgument,
        );
        assert_eq!(entry.tenant.len(), MAX_FIELD_BYTES);
        assert_eq!(entry.names[0].len(), MAX_FIELD_BYTES);
        assert_eq!(clip("short"), "short");
        assert_eq!(clip(&format!("a{long}")).len(), MAX_FIELD_BYTES - 1);
    }

    #[test]
    fn lines_chain_and_split_back() {
        let key = MacKey::derive(b"k", b"l");
        let mut head = ChainHead::default();
        let actor = Actor::Principal(Principal::new("t1", Role::SysAdmin).with_id("ops"));
        let entry = AuditEntry::new(
            &actor,
            AuditAction::Create,
            "t2",
            vec!["db \"pw\"".into()],
            ErrorCode::Ok,
        );
        let first = seal_line(&key, &mut head, &entry).unwrap();
        let second = seal_line(&key, &mut head, &entry).unwrap();
        assert_eq!(head.seq, 2);
        let value: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert_eq!(value["seq"], 1);
        assert_eq!(value["prev"], "");
        assert_eq!(value["role"], "SYS_ADMIN");
        assert_eq!(value["principal_tenant"], "t1");
        assert_eq!(value["principal"], "ops");
        assert_eq!(value["outcome"], "OK");
        assert_eq!(value["names"][0], "db \"pw\"");
        let parts = split_line(first.trim_end()).unwrap();
        assert!(key.verify_parts(&[parts.body.as_bytes(), b"}"], &parts.mac));
        assert_eq!(parts.mac_text, value["mac"]);
        let second_value: serde_json::Value = serde_json::from_str(&second).unwrap();
        assert_eq!(second_value["prev"], value["mac"]);
        assert_eq!(head_of(second.trim_end()).unwrap(), head);
    }
}
