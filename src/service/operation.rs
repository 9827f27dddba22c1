//! One path for every operation. An operation is one `Session` method whose body is
//! `self.change(op, |store, change| …)` (a write) or `self.read(op, |store| …)`: the
//! descriptor [`Op`] says what the policy checks and what the audit record names, the
//! wrapper applies both, and the closure does the work. The host's `SecretStorage` methods
//! are the same code run as [`Actor::Host`], declared one line each by [`host_operations!`].

use super::commit::Change;
use super::session::Session;
use super::SecretStorage;
use crate::access::{Actor, Operation};
use crate::audit::{AuditAction, AuditEntry};
use crate::error::{Error, ErrorCode, Result};

/// A tenant name no principal belongs to: only grants for any tenant match it.
const ALL_TENANTS: &str = "\u{1f}all tenants";

/// The tenant written to the audit log for store-wide operations.
pub(super) const STORE_WIDE: &str = "*";

/// Where an operation acts.
#[derive(Debug, Clone, Copy)]
pub(super) enum Scope<'s> {
    /// One tenant.
    Tenant(&'s str),
    /// Every tenant (audited as `*`); `what` completes "… may not" in a denial.
    StoreWide { what: &'static str },
}

/// What an operation is, for the policy check and its audit record.
#[derive(Debug, Clone, Copy)]
pub(super) struct Op<'s> {
    /// What the policy must grant.
    pub operation: Operation,
    /// What the audit record says was done.
    pub action: AuditAction,
    /// Where.
    pub scope: Scope<'s>,
    /// The secrets concerned, when known before the work runs.
    pub names: &'s [&'s str],
    /// The source a reference operation concerns.
    pub source: Option<&'s str>,
}

impl<'s> Op<'s> {
    /// `operation` in `tenant` on `names`, audited as `action`.
    #[inline]
    pub fn new(
        operation: Operation,
        action: AuditAction,
        tenant: &'s str,
        names: &'s [&'s str],
    ) -> Op<'s> {
        Op {
            operation,
            action,
            scope: Scope::Tenant(tenant),
            names,
            source: None,
        }
    }

    /// A WRITE in `tenant` on `names`, audited as `action`.
    pub fn write(action: AuditAction, tenant: &'s str, names: &'s [&'s str]) -> Op<'s> {
        Op::new(Operation::Write, action, tenant, names)
    }

    /// A metadata READ in `tenant` on `names` (denials audited as READ).
    pub fn read(tenant: &'s str, names: &'s [&'s str]) -> Op<'s> {
        Op::new(Operation::Read, AuditAction::Read, tenant, names)
    }

    /// `operation` in every tenant, audited as `action`; a denial says the actor may not `what`.
    pub fn store_wide(operation: Operation, action: AuditAction, what: &'static str) -> Op<'s> {
        Op {
            operation,
            action,
            scope: Scope::StoreWide { what },
            names: &[],
            source: None,
        }
    }

    /// The same operation concerning the reference source `source_id`.
    pub fn source(self, source_id: &'s str) -> Op<'s> {
        Op {
            source: Some(source_id),
            ..self
        }
    }

    /// The tenant the audit record names.
    pub fn audit_tenant(&self) -> &'s str {
        match self.scope {
            Scope::Tenant(tenant) => tenant,
            Scope::StoreWide { .. } => STORE_WIDE,
        }
    }
}

impl<'a> Session<'a> {
    /// Runs a read-only operation: `run` gets the store if the policy allows `op`.
    #[inline]
    pub(super) fn read<T>(
        &self,
        op: Op<'_>,
        run: impl FnOnce(&'a SecretStorage) -> Result<T>,
    ) -> Result<T> {
        run(self.allow(&op)?)
    }

    /// Runs a change: if the policy allows `op`, `run` commits it together with its audit
    /// record (see `SecretStorage::commit`). A failed change is audited on its own, with its
    /// outcome; the error stands even if that record cannot be written.
    pub(super) fn change<T>(
        &self,
        op: Op<'_>,
        run: impl FnOnce(&'a SecretStorage, &mut Change) -> Result<T>,
    ) -> Result<T> {
        let store = self.allow(&op)?;
        let record = store.audit.is_some().then(|| {
            let mut entry = self.entry(&op, ErrorCode::Ok);
            entry.source = op.source.map(str::to_owned);
            entry
        });
        let mut change = Change::new(record);
        let result = run(store, &mut change);
        if let Err(e) = &result {
            if e.code() != ErrorCode::Closed {
                for mut record in change.into_records() {
                    record.outcome = e.code();
                    record.version = None;
                    let _ = store.audit_record(record);
                }
            }
        }
        result
    }

    /// The store if the policy lets this actor do `op`; a denial is audited as an attempt
    /// of `op` (at once and synced, except for value reads, which are batched like every use).
    #[inline]
    pub(super) fn allow(&self, op: &Op<'_>) -> Result<&'a SecretStorage> {
        let Actor::Principal(principal) = &*self.actor else {
            return Ok(self.store);
        };
        let denied = match op.scope {
            Scope::Tenant(tenant) => match self.store.policy.check(principal, op.operation, tenant)
            {
                // A session restricted to an allow-list is also denied names outside it.
                Ok(()) => match super::allow_list::check(principal, op.action, op.names) {
                    Ok(()) => return Ok(self.store),
                    Err(outside) => outside,
                },
                Err(denied) => denied,
            },
            Scope::StoreWide { what } => {
                let restricted = super::allow_list::check_store_wide(principal, what);
                if restricted.is_ok()
                    && self
                        .store
                        .policy
                        .allows(principal, op.operation, ALL_TENANTS)
                {
                    return Ok(self.store);
                }
                restricted.err().unwrap_or_else(|| Error::new(
                    ErrorCode::PermissionDenied,
                    format!(
                        "{} of tenant '{}' may not {what}: that needs {} in every tenant (by default only SYS_ADMIN has it)",
                        principal.role, principal.tenant, op.operation
                    ),
                ))
            }
        };
        if op.operation == Operation::Resolve {
            // Value reads are batched like every use; a call naming no secret counts as "".
            let now = super::clock::coarse_now_millis();
            let names: &[&str] = if op.names.is_empty() { &[""] } else { op.names };
            for name in names {
                let outcome = ErrorCode::PermissionDenied;
                let tenant = op.audit_tenant();
                self.store
                    .note_use(&self.actor, op.action, tenant, name, outcome, now);
            }
            return Err(denied);
        }
        // The denial stands even if its record cannot be written.
        let _ = self
            .store
            .audit_record(self.entry(op, ErrorCode::PermissionDenied));
        Err(denied)
    }

    /// The audit record of `op` by this actor with `outcome`.
    pub(super) fn entry(&self, op: &Op<'_>, outcome: ErrorCode) -> AuditEntry {
        AuditEntry::new(
            &self.actor,
            op.action,
            op.audit_tenant(),
            op.names.iter().map(|n| (*n).to_owned()).collect(),
            outcome,
        )
    }
}

/// Declares `SecretStorage` methods that are the [`Session`] operation of the same
/// signature run by the host (`self.host().op(…)`): one line per operation, its doc
/// comment and doctest kept. `=> target` names a `Session` method of another name.
macro_rules! host_operations {
    ($(
        $(#[$meta:meta])*
        fn $name:ident $(<$lt:lifetime>)? (&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty
            $(=> $target:ident)?;
    )*) => {
        impl SecretStorage {$(
            $(#[$meta])*
            pub fn $name $(<$lt>)? (&self $(, $arg: $ty)*) -> $ret {
                host_operations!(@call self.host(), $name $(, $target)?, ($($arg),*))
            }
        )*}
    };
    (@call $session:expr, $name:ident, ($($arg:ident),*)) => { $session.$name($($arg),*) };
    (@call $session:expr, $name:ident, $target:ident, ($($arg:ident),*)) => {
        $session.$target($($arg),*)
    };
}
