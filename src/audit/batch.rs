//! Batching of value uses: the hot path adds to an in-memory counter per (principal,
//! tenant, secret, action, outcome); a flush turns each counter into one record.

use super::entry::{AuditAction, AuditEntry};
use crate::access::Actor;
use crate::error::ErrorCode;
use foldhash::HashMap;
use parking_lot::Mutex;
use std::cell::RefCell;

/// Pending use counters.
#[derive(Debug, Default)]
pub(crate) struct UseBatch {
    pending: Mutex<HashMap<Box<str>, AuditEntry>>,
}

thread_local! {
    /// The lookup key under construction (reused: no allocation on the hot path).
    static KEY: RefCell<String> = const { RefCell::new(String::new()) };
}

impl UseBatch {
    /// Counts one call by `actor` that used (or failed to use) `name` at `now`.
    pub fn note(
        &self,
        actor: &Actor,
        action: AuditAction,
        tenant: &str,
        name: &str,
        outcome: ErrorCode,
        now: i64,
    ) {
        KEY.with_borrow_mut(|key| {
            key.clear();
            key.push_str(actor.role_name());
            key.push('\u{1f}');
            if let Some(p) = actor.principal() {
                key.push_str(&p.tenant);
                key.push('\u{1f}');
                key.push_str(p.id.as_deref().unwrap_or(""));
            }
            key.push('\u{1f}');
            key.push_str(tenant);
            key.push('\u{1f}');
            key.push_str(name);
            key.push('\u{1f}');
            key.push_str(action.as_str());
            key.push('\u{1f}');
            key.push_str(outcome.as_str());
            let mut pending = self.pending.lock();
            match pending.get_mut(key.as_str()) {
                Some(entry) => {
                    entry.count += 1;
                    entry.time = entry.time.max(now);
                }
                None => {
                    // An attempt refused before any secret was named has no name.
                    let names = if name.is_empty() {
                        Vec::new()
                    } else {
                        vec![name.to_owned()]
                    };
                    let mut entry = AuditEntry::new(actor, action, tenant, names, outcome);
                    entry.time = now;
                    entry.since = Some(now);
                    pending.insert(key.as_str().into(), entry);
                }
            }
        });
    }

    /// Takes every pending record, oldest first.
    pub fn take(&self) -> Vec<AuditEntry> {
        let mut entries: Vec<AuditEntry> = std::mem::take(&mut *self.pending.lock())
            .into_values()
            .collect();
        entries.sort_by(|a, b| (a.since, &a.tenant, &a.names).cmp(&(b.since, &b.tenant, &b.names)));
        entries
    }

    /// Puts records back after a failed write (merging with uses counted meanwhile is not
    /// needed: they are separate records of the same facts).
    pub fn restore(&self, entries: Vec<AuditEntry>) {
        let mut pending = self.pending.lock();
        for (i, entry) in entries.into_iter().enumerate() {
            // A key that cannot collide with the hot path's (those never start with NUL).
            let key = format!("\0{i}\0{}", pending.len());
            pending.insert(key.into(), entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Principal, Role};

    #[test]
    fn counts_per_principal_secret_and_outcome() {
        let batch = UseBatch::default();
        let service = Actor::Principal(Principal::new("t", Role::Service));
        batch.note(&service, AuditAction::Get, "t", "a", ErrorCode::Ok, 10);
        batch.note(&service, AuditAction::Get, "t", "a", ErrorCode::Ok, 30);
        batch.note(&Actor::Host, AuditAction::Get, "t", "a", ErrorCode::Ok, 20);
        batch.note(
            &service,
            AuditAction::Get,
            "t",
            "a",
            ErrorCode::NotFound,
            40,
        );
        let entries = batch.take();
        assert!(batch.take().is_empty());
        assert_eq!(entries.len(), 3);
        let first = &entries[0];
        assert_eq!(
            (first.role, first.count, first.since, first.time),
            ("SERVICE", 2, Some(10), 30)
        );
        assert_eq!((entries[1].role, entries[1].count), ("HOST", 1));
        assert_eq!(entries[2].outcome, ErrorCode::NotFound);
    }
}
