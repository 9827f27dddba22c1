//! Sessions: the full role × operation × own/other tenant matrix through real operations, a
//! custom JSON policy, and master-key rotation reserved to the system administrator.

use tbsecrets::access::{Operation, Policy, Principal, Role};
use tbsecrets::ResolveOptions;
use tbsecrets::{ErrorCode, MasterKey, SecretStorage, SecretType, StorageOptions};

fn store(policy: Option<Policy>) -> (tempfile::TempDir, SecretStorage) {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StorageOptions::with_master_key(MasterKey::generate());
    options.policy = policy;
    let store = SecretStorage::open(dir.path().join("a.db"), options).unwrap();
    for tenant in ["a", "b"] {
        store
            .create(tenant, "k", SecretType::Text, b"value", "")
            .unwrap();
    }
    (dir, store)
}

/// Runs `operation` as `principal` in `tenant`; true if allowed (the call did not fail with
/// PERMISSION_DENIED), asserting that a denied call changed nothing.
fn attempt(
    store: &SecretStorage,
    principal: &Principal,
    operation: Operation,
    tenant: &str,
) -> bool {
    let session = store.session(principal.clone());
    let before = store.info(tenant, "k").unwrap();
    let outcome = match operation {
        Operation::Read => session.info(tenant, "k").map(|_| ()),
        Operation::Write => session.update_value(tenant, "k", b"new", None).map(|_| ()),
        Operation::Delete => session.delete_with(tenant, "k", true),
        Operation::Resolve => session
            .resolve_str(tenant, "${secret:k}", ResolveOptions::default())
            .map(|_| ())
            .and_then(|()| session.get(tenant, "k").map(|_| ())),
    };
    match outcome {
        Ok(()) => {
            // Put things back for the next attempt.
            if operation == Operation::Delete {
                store.undelete(tenant, "k").unwrap();
            }
            true
        }
        Err(e) => {
            assert_eq!(e.code(), ErrorCode::PermissionDenied, "{e}");
            let after = store.info(tenant, "k").unwrap();
            assert_eq!(
                (before.version, before.use_count),
                (after.version, after.use_count)
            );
            false
        }
    }
}

#[test]
fn default_policy_matrix_through_real_operations() {
    use Operation::*;
    let (_dir, store) = store(None);
    let expected: [(Role, &[Operation], &[Operation]); 4] = [
        (Role::TenantAdmin, &[Read, Write, Delete], &[]),
        (Role::Service, &[Read, Resolve], &[]),
        (
            Role::SysAdmin,
            &[Read, Write, Delete],
            &[Read, Write, Delete],
        ),
        (Role::CustomerUser, &[], &[]),
    ];
    for (role, own, other) in expected {
        let principal = Principal::new("a", role);
        for op in [Read, Write, Delete, Resolve] {
            assert_eq!(
                attempt(&store, &principal, op, "a"),
                own.contains(&op),
                "{role} {op} own"
            );
            assert_eq!(
                attempt(&store, &principal, op, "b"),
                other.contains(&op),
                "{role} {op} other"
            );
        }
    }
}

#[test]
fn custom_policy_and_master_rotation_rights() {
    let policy = Policy::from_json(
        r#"{"rules":[
            {"role":"CUSTOMER_USER","operations":["READ"],"tenants":"own"},
            {"role":"SERVICE","operations":["RESOLVE"],"tenants":"any"}
        ]}"#,
    )
    .unwrap();
    let (_dir, store) = store(Some(policy));
    assert!(attempt(
        &store,
        &Principal::new("a", Role::CustomerUser),
        Operation::Read,
        "a"
    ));
    assert!(!attempt(
        &store,
        &Principal::new("a", Role::CustomerUser),
        Operation::Read,
        "b"
    ));
    assert!(attempt(
        &store,
        &Principal::new("a", Role::Service),
        Operation::Resolve,
        "b"
    ));
    assert!(!attempt(
        &store,
        &Principal::new("a", Role::TenantAdmin),
        Operation::Read,
        "a"
    ));

    let (_dir2, store) = store_default();
    let new_key = MasterKey::generate();
    let denied = store
        .session(Principal::new("a", Role::TenantAdmin))
        .rotate_master_key(&new_key)
        .unwrap_err();
    assert_eq!(denied.code(), ErrorCode::PermissionDenied);
    let report = store
        .session(Principal::new("platform", Role::SysAdmin))
        .rotate_master_key(&new_key)
        .unwrap();
    assert_eq!(report.key_id, 2);
}

fn store_default() -> (tempfile::TempDir, SecretStorage) {
    store(None)
}

#[test]
fn audit_log_verification_needs_read_in_every_tenant() {
    let (_dir, store) = store_default();
    let denied = store
        .session(Principal::new("a", Role::TenantAdmin))
        .verify_audit_log(None)
        .unwrap_err();
    assert_eq!(denied.code(), ErrorCode::PermissionDenied);
    let verified = store
        .session(Principal::new("platform", Role::SysAdmin))
        .verify_audit_log(None)
        .unwrap();
    assert!(verified.is_intact());
    // The two creates, then the denied attempt.
    assert_eq!(verified.records, 3);
    // Then the verification itself, by SYS_ADMIN, after it ran.
    let log = std::fs::read_to_string(store.audit_log_path().unwrap()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 4);
    let denied = lines[2];
    assert!(denied.contains("\"VERIFY_AUDIT_LOG\""), "{denied}");
    assert!(denied.contains("\"PERMISSION_DENIED\"") && denied.contains("\"TENANT_ADMIN\""));
    let done = lines[3];
    assert!(done.contains("\"VERIFY_AUDIT_LOG\"") && done.contains("\"SYS_ADMIN\""));
    assert!(done.contains("\"outcome\":\"OK\""), "{done}");
}
