//! Per-session allow-lists of names (docs/ARCHITECTURE.md, "Allow-lists"): the checks a
//! restricted principal's session runs on top of the policy. The list itself is
//! [`crate::access::AllowList`]; the session audits every denial these checks give.

use crate::access::{AllowList, Principal};
use crate::audit::AuditAction;
use crate::error::{Error, ErrorCode, Result};
use crate::placeholder;

/// The allow-list of `principal`, if it has one.
pub(super) fn of(principal: &Principal) -> Option<&AllowList> {
    principal.allowed_names()
}

/// PERMISSION_DENIED unless a restricted principal may run `action` on `names`: every name
/// must be on its list, and an action on no name at all is allowed only where the names come
/// from a document checked later (resolve, track references). Everything else on a whole
/// tenant (list, usage reports, untrack, tenant key rotation) is refused, so a restricted
/// session can never enumerate the names it is not given.
pub(super) fn check(principal: &Principal, action: AuditAction, names: &[&str]) -> Result<()> {
    let Some(list) = of(principal) else {
        return Ok(());
    };
    if names.is_empty() {
        return match action {
            AuditAction::Resolve | AuditAction::TrackReferences => Ok(()),
            _ => Err(restricted(principal, "work on a whole tenant")),
        };
    }
    match names.iter().find(|name| !list.allows(name)) {
        None => Ok(()),
        Some(name) => Err(outside(principal, name)),
    }
}

/// PERMISSION_DENIED for a store-wide operation of a restricted principal.
pub(super) fn check_store_wide(principal: &Principal, what: &str) -> Result<()> {
    match of(principal) {
        None => Ok(()),
        Some(_) => Err(restricted(principal, what)),
    }
}

/// The names `document` references that a restricted principal's list does not allow
/// (sorted, distinct); empty for an unrestricted one. A malformed document is its own error.
pub(super) fn names_outside(principal: &Principal, document: &str) -> Result<Vec<String>> {
    let Some(list) = of(principal) else {
        return Ok(Vec::new());
    };
    let mut outside: Vec<String> = placeholder::references(document)?
        .into_iter()
        .map(|r| r.name)
        .filter(|name| !list.allows(name))
        .collect();
    outside.sort();
    outside.dedup();
    Ok(outside)
}

/// The error for a name outside the list (the name is not a secret; the list is not shown).
pub(super) fn outside(principal: &Principal, name: &str) -> Error {
    Error::new(
        ErrorCode::PermissionDenied,
        format!(
            "{} of tenant '{}' is restricted to an allow-list of names; '{name}' is not on it",
            principal.role, principal.tenant
        ),
    )
}

/// The reason a resolve problem gives for a per-message name in a session without a list.
pub(super) const DYNAMIC_NEEDS_LIST: &str =
    "a per-message name resolves only in a session restricted to an allow-list of names (none is set)";

/// The reason a resolve problem gives for a name outside the list.
pub(super) const OUTSIDE_REASON: &str = "the name is not on this session's allow-list";

fn restricted(principal: &Principal, what: &str) -> Error {
    Error::new(
        ErrorCode::PermissionDenied,
        format!(
            "{} of tenant '{}' is restricted to an allow-list of names and may not {what}",
            principal.role, principal.tenant
        ),
    )
}
