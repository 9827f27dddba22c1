//! Sessions restricted to an allow-list of names: exact names and globs, denials audited like
//! policy denials (read back from the audit log), resolve naming every outside name, and the
//! operations a restricted session may not run at all (enumeration, store-wide work).

use tbsecrets::access::{AllowList, Principal, Role};
use tbsecrets::model::ListQuery;
use tbsecrets::service::ResolveOptions;
use tbsecrets::{ErrorCode, MasterKey, SecretStorage, SecretType, StorageOptions};

const VALUE: &str = "allow-s3cr3t-value";

fn store() -> (tempfile::TempDir, SecretStorage) {
    let dir = tempfile::tempdir().unwrap();
    let options = StorageOptions::with_master_key(MasterKey::generate());
    let store = SecretStorage::open(dir.path().join("a.db"), options).unwrap();
    for name in [
        "MyApiKey",
        "device-a-token",
        "device-b-token",
        "db-password",
    ] {
        store
            .create(
                "t",
                name,
                SecretType::Text,
                format!("{VALUE}-{name}").as_bytes(),
                "",
            )
            .unwrap();
    }
    (dir, store)
}

fn node(entries: &[&str]) -> Principal {
    Principal::new("t", Role::Service)
        .with_id("node-1")
        .with_allowed_names(AllowList::new(entries).unwrap())
}

/// The audit records (parsed) after closing the store.
fn audit_records(dir: &tempfile::TempDir, store: SecretStorage) -> Vec<serde_json::Value> {
    store.close().unwrap();
    let text = std::fs::read_to_string(dir.path().join("a.db.audit.jsonl")).unwrap();
    assert!(!text.contains(VALUE), "the audit log holds a value");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn has_record(records: &[serde_json::Value], action: &str, name: &str, outcome: &str) -> bool {
    records.iter().any(|r| {
        r["action"] == action
            && r["outcome"] == outcome
            && r["principal"] == "node-1"
            && r["names"].as_array().unwrap().iter().any(|n| n == name)
    })
}

#[test]
fn exact_names_and_globs_allowed_everything_else_denied_and_audited() {
    let (dir, store) = store();
    {
        let session = store.session(node(&["MyApiKey", "device-?-token"]));
        assert_eq!(
            session.get("t", "MyApiKey").unwrap().as_str().unwrap(),
            format!("{VALUE}-MyApiKey")
        );
        assert!(session.get("t", "device-a-token").is_ok());
        for name in [
            "db-password",
            "MyApiKey2",
            "device-ab-token",
            "mykey",
            "myapikey",
        ] {
            let e = session.get("t", name).unwrap_err();
            assert_eq!(e.code(), ErrorCode::PermissionDenied, "{name}");
            assert!(e.message().contains(&format!("'{name}'")), "{e}");
        }
        // A missing name outside the list is denied, not NOT_FOUND: no probing.
        let e = session.info("t", "no-such-secret").unwrap_err();
        assert_eq!(e.code(), ErrorCode::PermissionDenied);
        assert_eq!(session.info("t", "MyApiKey").unwrap().name, "MyApiKey");
        assert_eq!(
            session.history("t", "db-password").unwrap_err().code(),
            ErrorCode::PermissionDenied
        );
        assert_eq!(
            session.where_used("t", "db-password").unwrap_err().code(),
            ErrorCode::PermissionDenied
        );
        // The policy still applies inside the list: SERVICE may not write.
        let e = session
            .update_value("t", "MyApiKey", b"new", None)
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::PermissionDenied);
    }
    let records = audit_records(&dir, store);
    assert!(has_record(
        &records,
        "GET",
        "db-password",
        "PERMISSION_DENIED"
    ));
    assert!(has_record(
        &records,
        "READ",
        "no-such-secret",
        "PERMISSION_DENIED"
    ));
    assert!(has_record(
        &records,
        "READ",
        "db-password",
        "PERMISSION_DENIED"
    ));
    assert!(has_record(&records, "GET", "MyApiKey", "OK"));
}

#[test]
fn resolve_lists_every_outside_name_and_audits_each_denial() {
    let (dir, store) = store();
    {
        let session = store.session(node(&["device-*"]));
        let options = ResolveOptions::default;
        let ok = session
            .resolve_json("t", r#"{"a":"${secret:device-b-token}"}"#, options())
            .unwrap();
        assert_eq!(ok, format!(r#"{{"a":"{VALUE}-device-b-token"}}"#));
        let doc =
            "${secret:device-a-token} ${secret:MyApiKey} ${secret:db-password} ${secret:nope}";
        let e = session.resolve_str("t", doc, options()).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Unresolved);
        let mut names: Vec<&str> = e.problems().iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["MyApiKey", "db-password", "nope"]);
        let denied = e.problems().iter().find(|p| p.name == "MyApiKey").unwrap();
        assert_eq!(denied.code, ErrorCode::PermissionDenied);
        assert!(denied.reason.contains("allow-list"), "{}", denied.reason);
        assert!(!e.to_string().contains(VALUE));
    }
    let records = audit_records(&dir, store);
    assert!(has_record(
        &records,
        "RESOLVE",
        "MyApiKey",
        "PERMISSION_DENIED"
    ));
    assert!(has_record(&records, "RESOLVE", "nope", "PERMISSION_DENIED"));
    assert!(!has_record(
        &records,
        "RESOLVE",
        "device-a-token",
        "PERMISSION_DENIED"
    ));
}

#[test]
fn empty_list_allows_nothing() {
    let (_dir, store) = store();
    let session = store.session(node(&[]));
    assert_eq!(
        session.get("t", "MyApiKey").unwrap_err().code(),
        ErrorCode::PermissionDenied
    );
    let e = session
        .resolve_str("t", "${secret:MyApiKey}", ResolveOptions::default())
        .unwrap_err();
    assert_eq!(e.problems()[0].name, "MyApiKey");
}

#[test]
fn restricted_sessions_cannot_enumerate_or_work_store_wide() {
    let (dir, store) = store();
    {
        let session = store.session(node(&["*"]));
        assert!(
            session.get("t", "db-password").is_ok(),
            "'*' allows every name"
        );
        let day = std::time::Duration::from_secs(86_400);
        let denied = [
            session.list("t", &ListQuery::default()).map(|_| ()),
            session.unused("t", day).map(|_| ()),
            session.stale("t", day).map(|_| ()),
            session.verify_audit_log(None).map(|_| ()),
            session.audit_log_path().map(|_| ()),
        ];
        for result in denied {
            let e = result.unwrap_err();
            assert_eq!(e.code(), ErrorCode::PermissionDenied);
            assert!(e.message().contains("allow-list"), "{e}");
        }
        let admin = store.session(
            Principal::new("t", Role::TenantAdmin)
                .with_id("node-1")
                .with_allowed_names(AllowList::new(["device-*"]).unwrap()),
        );
        admin
            .track_references("t", "rule-node-1", "${secret:device-a-token}")
            .unwrap();
        let e = admin
            .track_references(
                "t",
                "rule-node-2",
                "${secret:device-b-token} ${secret:MyApiKey}",
            )
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::PermissionDenied);
        for e in [
            admin.untrack("t", "rule-node-1").map(|_| ()).unwrap_err(),
            admin.rotate_tenant_key("t").map(|_| ()).unwrap_err(),
            admin.delete("t", "MyApiKey").unwrap_err(),
        ] {
            assert_eq!(e.code(), ErrorCode::PermissionDenied);
        }
        admin
            .create("t", "device-c-token", SecretType::Text, b"v", "")
            .unwrap();
        assert!(store.where_used("t", "MyApiKey").unwrap().is_empty());
        assert_eq!(store.where_used("t", "device-a-token").unwrap().len(), 1);
    }
    let records = audit_records(&dir, store);
    assert!(has_record(
        &records,
        "TRACK_REFERENCES",
        "MyApiKey",
        "PERMISSION_DENIED"
    ));
    let denied = |action: &str, tenant: &str| {
        records.iter().any(|r| {
            r["action"] == action
                && r["tenant"] == tenant
                && r["outcome"] == "PERMISSION_DENIED"
                && r["principal"] == "node-1"
        })
    };
    assert!(denied("READ", "t"), "the refused list is audited");
    assert!(denied("VERIFY_AUDIT_LOG", "*"));
    assert!(denied("UNTRACK_REFERENCES", "t"));
}

#[test]
fn invalid_entries_are_refused_naming_their_position() {
    for bad in [
        vec!["ok", ""],
        vec!["a;b"],
        vec!["${secret:x}"],
        vec!["a\nb"],
        vec!["   "],
    ] {
        let e = AllowList::new(&bad).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidArgument, "{bad:?}");
        assert!(e.message().contains("allow-list entry"), "{e}");
    }
    let long = "x".repeat(256);
    assert!(AllowList::new([long.as_str()]).is_err());
    let many = vec!["a"; tbsecrets::access::MAX_ALLOW_LIST_ENTRIES + 1];
    assert_eq!(
        AllowList::new(many).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
    assert!(AllowList::new(["a"; 1024]).is_ok());
}
