//! Acting on behalf of someone: a [`Session`] checks the store's access policy before every
//! operation of a principal (deny by default), runs it, and writes the audit record —
//! denied attempts included. The host's own calls ([`SecretStorage`] methods) run through a
//! host session: not checked, still audited. The operations themselves are `Session`
//! methods in the file of their concern (`secrets.rs`, `read.rs`, `resolve/`,
//! `references.rs`, `rotation.rs`, `audit.rs`), each run through `operation.rs`.

use super::SecretStorage;
use crate::access::{Actor, Policy, Principal};
use std::borrow::Cow;

/// The host program's actor.
pub(super) static HOST: Actor = Actor::Host;

/// The store as seen by one actor.
///
/// ```
/// use tbsecrets::{ErrorCode, MasterKey, Principal, Role};
/// use tbsecrets::{SecretStorage, SecretType, StorageOptions};
///
/// let dir = tempfile::tempdir()?;
/// let options = StorageOptions::with_master_key(MasterKey::generate());
/// let store = SecretStorage::open(dir.path().join("tbsecrets.db"), options)?;
///
/// let admin = store.session(Principal::new("tenant-a", Role::TenantAdmin));
/// admin.create("tenant-a", "MyApiKey", SecretType::Text, b"s3cr3t", "")?; // WRITE: allowed
/// let denied = admin.get("tenant-a", "MyApiKey"); // administrators never read values
/// assert_eq!(denied.unwrap_err().code(), ErrorCode::PermissionDenied);
///
/// let rule_engine = store.session(Principal::new("tenant-a", Role::Service));
/// assert_eq!(rule_engine.get("tenant-a", "MyApiKey")?.as_str()?, "s3cr3t"); // RESOLVE
/// let other_tenant = rule_engine.get("tenant-b", "MyApiKey");
/// assert_eq!(other_tenant.unwrap_err().code(), ErrorCode::PermissionDenied);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Session<'a> {
    pub(super) store: &'a SecretStorage,
    pub(super) actor: Cow<'a, Actor>,
}

impl SecretStorage {
    /// A session acting as `principal`, checked against the store's policy.
    pub fn session(&self, principal: Principal) -> Session<'_> {
        Session {
            store: self,
            actor: Cow::Owned(Actor::Principal(principal)),
        }
    }

    /// A session acting as `actor`, borrowed (no copy: cheap enough per call).
    pub fn acting<'a>(&'a self, actor: &'a Actor) -> Session<'a> {
        Session {
            store: self,
            actor: Cow::Borrowed(actor),
        }
    }

    /// The host's session (what the plain `SecretStorage` methods use).
    pub(super) fn host(&self) -> Session<'_> {
        self.acting(&HOST)
    }

    /// The access policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

impl<'a> Session<'a> {
    /// Who this session acts as.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The principal this session acts as (`None` for the host).
    pub fn principal(&self) -> Option<&Principal> {
        self.actor.principal()
    }
}
