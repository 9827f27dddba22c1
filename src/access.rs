//! Principals and the access policy (pure: no I/O).
//!
//! Every operation of a [`crate::service::Session`] runs on behalf of a principal — a tenant
//! and a role — and is allowed only if the policy says so; deny by default. The default policy
//! follows ThingsBoard: tenant administrators manage their own tenant's secrets but never see
//! values; the rule engine and integrations (SERVICE) read metadata and resolve in their own
//! tenant; the system administrator manages any tenant, never sees values; customer users get
//! nothing.

use crate::error::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use wildmatch::WildMatch;

/// Who acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// The platform's system administrator.
    SysAdmin,
    /// A tenant's administrator.
    TenantAdmin,
    /// A customer's user.
    CustomerUser,
    /// The rule engine or an integration.
    Service,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [
        Role::SysAdmin,
        Role::TenantAdmin,
        Role::CustomerUser,
        Role::Service,
    ];

    /// The stable upper-case name, e.g. `TENANT_ADMIN`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::SysAdmin => "SYS_ADMIN",
            Role::TenantAdmin => "TENANT_ADMIN",
            Role::CustomerUser => "CUSTOMER_USER",
            Role::Service => "SERVICE",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(&s.replace('-', "_")))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown role '{s}': expected SYS_ADMIN, TENANT_ADMIN, CUSTOMER_USER or SERVICE"
                ))
            })
    }
}

/// What is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Operation {
    /// Read metadata: info, list, history, where-used, usage reports.
    Read,
    /// Create, update, rollback, change descriptions, track references, rotate tenant keys.
    Write,
    /// Delete secrets.
    Delete,
    /// Get a value or resolve a document.
    Resolve,
}

impl Operation {
    /// The stable upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "READ",
            Operation::Write => "WRITE",
            Operation::Delete => "DELETE",
            Operation::Resolve => "RESOLVE",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tenant and a role, plus an optional id (a user or service name) for the audit log, and
/// optionally an [`AllowList`] of the secret names it may touch at all.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Principal {
    /// The tenant the principal belongs to.
    pub tenant: String,
    /// Its role.
    pub role: Role,
    /// Who exactly, if known (e.g. a user id); never used for decisions.
    pub id: Option<String>,
    /// The names this principal is restricted to (`None`: whatever the policy grants).
    #[serde(skip)]
    allowed_names: Option<Arc<AllowList>>,
}

impl Principal {
    /// A principal without an id.
    pub fn new(tenant: impl Into<String>, role: Role) -> Principal {
        Principal {
            tenant: tenant.into(),
            role,
            id: None,
            allowed_names: None,
        }
    }

    /// The same principal restricted to the names of `allowed` (least privilege, e.g. for one
    /// rule node): on top of the policy, every operation on a name outside the list is
    /// PERMISSION_DENIED and audited as a denial; operations on a whole tenant or the whole
    /// store (list, usage reports, untrack, key rotation, audit log) are refused, so a
    /// restricted session can never enumerate names. See docs/ARCHITECTURE.md, "Allow-lists".
    ///
    /// ```
    /// use tbsecrets::{AllowList, ErrorCode, MasterKey, Principal, Role};
    /// use tbsecrets::{SecretStorage, SecretType, StorageOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let options = StorageOptions::with_master_key(MasterKey::generate());
    /// let store = SecretStorage::open(dir.path().join("tbsecrets.db"), options)?;
    /// store.create("t", "mqtt-password", SecretType::Text, b"p", "")?;
    /// store.create("t", "db-password", SecretType::Text, b"q", "")?;
    ///
    /// let allowed = AllowList::new(["mqtt-*"])?;
    /// let node = store.session(Principal::new("t", Role::Service).with_allowed_names(allowed));
    /// assert_eq!(node.get("t", "mqtt-password")?.as_str()?, "p");
    /// let denied = node.get("t", "db-password").unwrap_err();
    /// assert_eq!(denied.code(), ErrorCode::PermissionDenied);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_allowed_names(mut self, allowed: AllowList) -> Principal {
        self.allowed_names = Some(Arc::new(allowed));
        self
    }

    /// The allow-list this principal is restricted to, if any.
    pub fn allowed_names(&self) -> Option<&AllowList> {
        self.allowed_names.as_deref()
    }

    /// The same principal with an id (a user or service name) for the audit log.
    pub fn with_id(mut self, id: impl Into<String>) -> Principal {
        self.id = Some(id.into());
        self
    }
}

/// On whose behalf an operation runs: the host program that opened the store (it holds the
/// master key, so no policy can restrain it; its operations are audited as `HOST`), or a
/// principal checked against the policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    /// The program that opened the store.
    Host,
    /// A tenant and role acting through a [`crate::service::Session`].
    Principal(Principal),
}

impl Actor {
    /// The role name written to the audit log: `HOST` or the principal's role.
    pub fn role_name(&self) -> &'static str {
        match self {
            Actor::Host => "HOST",
            Actor::Principal(p) => p.role.as_str(),
        }
    }

    /// The principal, unless this is the host.
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Actor::Host => None,
            Actor::Principal(p) => Some(p),
        }
    }
}

impl From<Principal> for Actor {
    fn from(principal: Principal) -> Actor {
        Actor::Principal(principal)
    }
}

/// Most entries an [`AllowList`] takes.
pub const MAX_ALLOW_LIST_ENTRIES: usize = 1024;

/// The secret names a restricted principal may touch: exact names and glob patterns (`*` any
/// run of characters, `?` one character; nothing else is special, matching is case-sensitive
/// and covers the whole name). An empty list allows nothing.
///
/// Each entry is checked like a secret name (1 to 255 characters, no control characters, none
/// of `{ } ;`), so a list can never hold placeholder syntax.
#[derive(Clone)]
pub struct AllowList {
    entries: Vec<String>,
    /// One matcher per entry (`wildmatch`: `*` and `?` only, linear-time matching).
    matchers: Vec<WildMatch>,
}

impl AllowList {
    /// A list from its entries; INVALID_ARGUMENT (naming the entry's position) for an entry
    /// that is not a valid name or pattern, or more than [`MAX_ALLOW_LIST_ENTRIES`] entries.
    ///
    /// ```
    /// use tbsecrets::{AllowList, ErrorCode};
    ///
    /// let list = AllowList::new(["MyApiKey", "device-*-token"])?;
    /// assert!(list.allows("MyApiKey"));
    /// assert!(list.allows("device-sensor 7-token"));
    /// assert!(!list.allows("MyApiKey2"));
    /// assert!(!AllowList::new(Vec::<String>::new())?.allows("MyApiKey"));
    /// let bad = AllowList::new(["${secret:x}"]).unwrap_err();
    /// assert_eq!(bad.code(), ErrorCode::InvalidArgument);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new<I, S>(entries: I) -> Result<AllowList>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = AllowList {
            entries: Vec::new(),
            matchers: Vec::new(),
        };
        for (i, entry) in entries.into_iter().enumerate() {
            let entry = entry.as_ref();
            if i >= MAX_ALLOW_LIST_ENTRIES {
                return Err(Error::invalid(format!(
                    "an allow-list takes at most {MAX_ALLOW_LIST_ENTRIES} entries"
                )));
            }
            crate::model::validate_name(entry).map_err(|e| {
                Error::invalid(format!("allow-list entry {}: {}", i + 1, e.message()))
            })?;
            list.entries.push(entry.to_owned());
            list.matchers.push(WildMatch::new(entry));
        }
        Ok(list)
    }

    /// Whether `name` matches an entry.
    pub fn allows(&self, name: &str) -> bool {
        self.matchers.iter().any(|m| m.matches(name))
    }

    /// The entries, as given.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// Whether the list has no entry (it then allows nothing).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AllowList").field(&self.entries).finish()
    }
}

impl PartialEq for AllowList {
    fn eq(&self, other: &AllowList) -> bool {
        self.entries == other.entries
    }
}

impl Eq for AllowList {}

impl std::hash::Hash for AllowList {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.entries.hash(state);
    }
}

/// Which tenants a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantScope {
    /// Only the principal's own tenant.
    Own,
    /// Every tenant.
    Any,
}

/// One grant: a role may do these operations in these tenants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The role granted.
    pub role: Role,
    /// The operations granted.
    pub operations: Vec<Operation>,
    /// Where.
    pub tenants: TenantScope,
}

/// The set of grants; anything not granted is denied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The grants.
    pub rules: Vec<Rule>,
}

impl Default for Policy {
    /// ThingsBoard's roles: TENANT_ADMIN READ/WRITE/DELETE in its tenant; SERVICE READ/RESOLVE
    /// in its tenant; SYS_ADMIN READ/WRITE/DELETE in any tenant; CUSTOMER_USER nothing.
    fn default() -> Policy {
        use Operation::*;
        Policy {
            rules: vec![
                Rule {
                    role: Role::TenantAdmin,
                    operations: vec![Read, Write, Delete],
                    tenants: TenantScope::Own,
                },
                Rule {
                    role: Role::Service,
                    operations: vec![Read, Resolve],
                    tenants: TenantScope::Own,
                },
                Rule {
                    role: Role::SysAdmin,
                    operations: vec![Read, Write, Delete],
                    tenants: TenantScope::Any,
                },
            ],
        }
    }
}

impl Policy {
    /// A policy from JSON: `{"rules":[{"role":"SERVICE","operations":["READ","RESOLVE"],
    /// "tenants":"own"}]}`. Unknown fields, roles or operations are INVALID_ARGUMENT.
    ///
    /// ```
    /// use tbsecrets::{ErrorCode, MasterKey, Policy, StorageOptions};
    ///
    /// let policy = Policy::from_json(
    ///     r#"{"rules":[{"role":"SERVICE","operations":["READ","RESOLVE"],"tenants":"own"}]}"#,
    /// )?;
    /// let options = StorageOptions {
    ///     policy: Some(policy), // replaces the default ThingsBoard roles
    ///     ..StorageOptions::with_master_key(MasterKey::generate())
    /// };
    /// # drop(options);
    /// let typo = r#"{"rules":[{"role":"SERVICES","operations":["READ"],"tenants":"own"}]}"#;
    /// assert_eq!(Policy::from_json(typo).unwrap_err().code(), ErrorCode::InvalidArgument);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_json(text: &str) -> Result<Policy> {
        serde_json::from_str(text).map_err(|e| Error::invalid(format!("invalid policy JSON: {e}")))
    }

    /// Whether `principal` may do `operation` in `tenant`.
    pub fn allows(&self, principal: &Principal, operation: Operation, tenant: &str) -> bool {
        self.rules.iter().any(|rule| {
            rule.role == principal.role
                && rule.operations.contains(&operation)
                && match rule.tenants {
                    TenantScope::Any => true,
                    TenantScope::Own => principal.tenant == tenant,
                }
        })
    }

    /// PERMISSION_DENIED unless `principal` may do `operation` in `tenant`.
    pub fn check(&self, principal: &Principal, operation: Operation, tenant: &str) -> Result<()> {
        if self.allows(principal, operation, tenant) {
            return Ok(());
        }
        Err(Error::new(
            ErrorCode::PermissionDenied,
            format!(
                "{} of tenant '{}' may not {} in tenant '{}'",
                principal.role, principal.tenant, operation, tenant
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Operation::*;

    #[test]
    fn default_policy_matrix() {
        let policy = Policy::default();
        let expect = |role, own: &[Operation], other: &[Operation]| {
            let p = Principal::new("a", role);
            for op in [Read, Write, Delete, Resolve] {
                assert_eq!(
                    policy.allows(&p, op, "a"),
                    own.contains(&op),
                    "{role} {op} own"
                );
                assert_eq!(
                    policy.allows(&p, op, "b"),
                    other.contains(&op),
                    "{role} {op} other"
                );
            }
        };
        expect(Role::TenantAdmin, &[Read, Write, Delete], &[]);
        expect(Role::Service, &[Read, Resolve], &[]);
        expect(
            Role::SysAdmin,
            &[Read, Write, Delete],
            &[Read, Write, Delete],
        );
        expect(Role::CustomerUser, &[], &[]);
        let err = policy
            .check(&Principal::new("a", Role::TenantAdmin), Resolve, "a")
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied);
        assert!(err.message().contains("TENANT_ADMIN") && err.message().contains("RESOLVE"));
    }

    #[test]
    fn custom_policy_from_json() {
        let policy = Policy::from_json(
            r#"{"rules":[{"role":"CUSTOMER_USER","operations":["READ"],"tenants":"own"}]}"#,
        )
        .unwrap();
        assert!(policy.allows(&Principal::new("a", Role::CustomerUser), Read, "a"));
        assert!(!policy.allows(&Principal::new("a", Role::TenantAdmin), Read, "a"));
        for bad in [
            r#"{"rules":[{"role":"ROOT","operations":[],"tenants":"own"}]}"#,
            r#"{"rules":[{"role":"SERVICE","operations":["FLY"],"tenants":"own"}]}"#,
            r#"{"rules":[],"extra":1}"#,
            "not json",
        ] {
            assert_eq!(
                Policy::from_json(bad).unwrap_err().code(),
                ErrorCode::InvalidArgument
            );
        }
        assert_eq!("tenant-admin".parse::<Role>().unwrap(), Role::TenantAdmin);
    }
}
