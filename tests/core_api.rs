//! The service API through `SecretStorage`: round trips, every validation rule, existence
//! errors, immutability of name and type, tenant isolation, listing, check-and-set, versions,
//! rollback, usage counters, closing and `Debug` redaction.

mod common;

use common::{expect_code, expect_invalid, Fixture, TENANT};
use tbsecrets::{
    ErrorCode, Limits, ListQuery, MasterKey, SecretStorage, SecretType, StorageOptions,
};

const KIB: usize = 1024;

#[test]
fn text_round_trips_including_unicode() {
    let f = Fixture::new();
    let values: [(&str, String); 5] = [
        ("ascii", "p@ssw0rd!".to_owned()),
        ("unicode", "ключ 🔑 漢字 — ü\u{301}".to_owned()),
        ("spaces", "  leading and trailing  \t".to_owned()),
        ("max-2-byte", "é".repeat(2048)),
        ("max-4-byte", "🔑".repeat(2048)),
    ];
    for (name, value) in &values {
        let info = f
            .store
            .create(
                TENANT,
                name,
                SecretType::Text,
                value.as_bytes(),
                "a description",
            )
            .unwrap();
        assert_eq!(info.tenant, TENANT);
        assert_eq!(info.name, *name);
        assert_eq!(info.secret_type, SecretType::Text);
        assert_eq!(info.description, "a description");
        assert_eq!(info.version, 1);
        assert_eq!(info.use_count, 0);
        assert_eq!(info.last_used_at, None);
        assert_eq!(info.created_at, info.updated_at);
    }
    // Read through the writing handle and through a fresh one (nothing cached).
    let other = f.reopen();
    for store in [&f.store, &other] {
        for (name, value) in &values {
            let got = store.get(TENANT, name).unwrap();
            assert_eq!(got.as_str().unwrap(), value.as_str(), "{name}");
            assert_eq!(got.as_bytes(), value.as_bytes());
            assert_eq!(got.secret_type(), SecretType::Text);
            assert_eq!(got.version(), 1);
        }
    }
    let info = other.info(TENANT, "max-4-byte").unwrap();
    assert_eq!(info.secret_type, SecretType::Text);
    assert_eq!(info.version, 1);
}

#[test]
fn text_file_round_trips_exact_bytes_up_to_512_kib() {
    let f = Fixture::new();
    let mut big = common::pseudo_random_bytes(512 * KIB, 7);
    big[0] = 0x00;
    big[1] = 0xff;
    big[512 * KIB - 2] = 0xff;
    big[512 * KIB - 1] = 0x00;
    assert_eq!(big.len(), 524_288);
    assert!(
        std::str::from_utf8(&big).is_err(),
        "must not be valid UTF-8"
    );
    let pem = b"-----BEGIN CERTIFICATE-----\nMIIB\r\n-----END CERTIFICATE-----\n\n".to_vec();
    let tiny = vec![0u8, 0xff, 0, 0xff];

    f.store
        .create(TENANT, "big.bin", SecretType::TextFile, &big, "")
        .unwrap();
    f.store
        .create(TENANT, "ca.pem", SecretType::TextFile, &pem, "CA")
        .unwrap();
    f.store
        .create(TENANT, "tiny", SecretType::TextFile, &tiny, "")
        .unwrap();

    let other = f.reopen();
    for store in [&f.store, &other] {
        let got = store.get(TENANT, "big.bin").unwrap();
        assert_eq!(got.secret_type(), SecretType::TextFile);
        assert_eq!(got.as_bytes().len(), big.len());
        assert!(got.as_bytes() == big.as_slice(), "512 KiB value differs");
        // Trailing newlines and CRLF are kept verbatim for files.
        assert_eq!(store.get(TENANT, "ca.pem").unwrap().as_bytes(), pem);
        assert_eq!(store.get(TENANT, "tiny").unwrap().as_bytes(), tiny);
    }
    // Binary bytes are not text.
    let got = other.get(TENANT, "tiny").unwrap();
    expect_code(got.as_str(), ErrorCode::InvalidArgument);
    assert_eq!(got.into_bytes().as_slice(), tiny.as_slice());
}

/// Every operation that takes a tenant checks it the same way.
#[test]
fn bad_tenants_are_rejected_by_every_operation() {
    let f = Fixture::new();
    let s = &f.store;
    s.create(TENANT, "n", SecretType::Text, b"v", "").unwrap();
    let long = "t".repeat(256);
    let cases: [(&str, &[&str]); 3] = [
        ("", &["tenant", "empty"]),
        (&long, &["tenant", "256 bytes", "255 bytes"]),
        ("ten\nant", &["tenant", "control"]),
    ];
    for (tenant, words) in cases {
        expect_invalid(s.create(tenant, "n", SecretType::Text, b"v", ""), words);
        expect_invalid(s.update_value(tenant, "n", b"v", None), words);
        expect_invalid(s.update_description(tenant, "n", "d"), words);
        expect_invalid(s.info(tenant, "n"), words);
        expect_invalid(s.get(tenant, "n"), words);
        expect_invalid(s.history(tenant, "n"), words);
        expect_invalid(s.rollback(tenant, "n", 1), words);
        expect_invalid(s.list(tenant, &ListQuery::default()), words);
        expect_invalid(s.delete(tenant, "n"), words);
    }
    // 255 bytes is fine.
    let max = "t".repeat(255);
    s.create(&max, "n", SecretType::Text, b"w", "").unwrap();
    assert_eq!(s.get(&max, "n").unwrap().as_bytes(), b"w");
}

#[test]
fn bad_names_are_rejected_with_the_rule_named() {
    let f = Fixture::new();
    let s = &f.store;
    let long = "é".repeat(256);
    let cases: [(&str, &[&str]); 9] = [
        ("", &["name", "empty"]),
        ("   ", &["name", "whitespace"]),
        (" \t\u{3000} ", &["name", "whitespace"]),
        ("a{b", &["name", "'{'", "reserved"]),
        ("a}b", &["name", "'}'", "reserved"]),
        ("a;b", &["name", "';'", "reserved"]),
        ("a\u{0}b", &["name", "control"]),
        ("tab\there", &["name", "control"]),
        (&long, &["name", "256 characters", "255"]),
    ];
    for (name, words) in cases {
        expect_invalid(s.create(TENANT, name, SecretType::Text, b"v", ""), words);
        expect_invalid(s.update_value(TENANT, name, b"v", None), words);
        expect_invalid(s.update_description(TENANT, name, ""), words);
        expect_invalid(s.get(TENANT, name), words);
        expect_invalid(s.info(TENANT, name), words);
        expect_invalid(s.history(TENANT, name), words);
        expect_invalid(s.rollback(TENANT, name, 1), words);
        expect_invalid(s.delete(TENANT, name), words);
    }
    assert_eq!(s.list(TENANT, &ListQuery::default()).unwrap().total, 0);

    // The edges of the rules are accepted: 255 characters, inner spaces, other punctuation.
    for name in [
        "é".repeat(255),
        " padded name ".to_owned(),
        "ключ API 🔑".to_owned(),
        "a$b(c)[d]<e>:f,g=h".to_owned(),
    ] {
        s.create(TENANT, &name, SecretType::Text, name.as_bytes(), "")
            .unwrap();
        assert_eq!(s.get(TENANT, &name).unwrap().as_bytes(), name.as_bytes());
    }
    // Names are exact and case-sensitive.
    s.create(TENANT, "Key", SecretType::Text, b"upper", "")
        .unwrap();
    s.create(TENANT, "key", SecretType::Text, b"lower", "")
        .unwrap();
    assert_eq!(s.get(TENANT, "Key").unwrap().as_bytes(), b"upper");
    assert_eq!(s.get(TENANT, "key").unwrap().as_bytes(), b"lower");
    expect_code(s.get(TENANT, "KEY"), ErrorCode::NotFound);
    expect_code(s.get(TENANT, "key "), ErrorCode::NotFound);
}

#[test]
fn descriptions_are_limited_to_255_characters_without_control_characters() {
    let f = Fixture::new();
    let s = &f.store;
    let long = "d".repeat(256);
    expect_invalid(
        s.create(TENANT, "n", SecretType::Text, b"v", &long),
        &["description", "256 characters", "255"],
    );
    expect_invalid(
        s.create(TENANT, "n", SecretType::Text, b"v", "line\nbreak"),
        &["description", "control"],
    );
    expect_code(s.info(TENANT, "n"), ErrorCode::NotFound);

    let max = "д".repeat(255);
    s.create(TENANT, "n", SecretType::Text, b"v", &max).unwrap();
    assert_eq!(s.info(TENANT, "n").unwrap().description, max);
    expect_invalid(
        s.update_description(TENANT, "n", &long),
        &["description", "256 characters"],
    );
    expect_invalid(
        s.update_description(TENANT, "n", "bell\u{7}"),
        &["description", "control"],
    );
    assert_eq!(s.info(TENANT, "n").unwrap().description, max);
    let info = s.update_description(TENANT, "n", "tab\tis fine").unwrap();
    assert_eq!(info.description, "tab\tis fine");
}

#[test]
fn value_rules_apply_on_create_and_update() {
    let f = Fixture::new();
    let s = &f.store;
    let text_2049 = "ü".repeat(2049);
    let ascii_2049 = "a".repeat(2049);
    let file_over = vec![0xA5u8; 512 * KIB + 1];
    for too_long in [&text_2049, &ascii_2049] {
        expect_invalid(
            s.create(TENANT, "t", SecretType::Text, too_long.as_bytes(), ""),
            &["TEXT", "2049 characters", "2048"],
        );
    }
    let invalid_utf8: &[u8] = b"valid start \xc3\x28 then invalid";
    expect_invalid(
        s.create(TENANT, "t", SecretType::Text, invalid_utf8, ""),
        &["TEXT", "UTF-8"],
    );
    expect_invalid(
        s.create(TENANT, "f", SecretType::TextFile, &file_over, ""),
        &["TEXT_FILE", "524289 bytes", "524288"],
    );
    assert_eq!(s.list(TENANT, &ListQuery::default()).unwrap().total, 0);

    // The same rules on update, and a rejected update changes nothing.
    s.create(TENANT, "t", SecretType::Text, b"text v1", "")
        .unwrap();
    s.create(TENANT, "f", SecretType::TextFile, b"file v1", "")
        .unwrap();
    expect_invalid(
        s.update_value(TENANT, "t", text_2049.as_bytes(), None),
        &["2049 characters"],
    );
    expect_invalid(s.update_value(TENANT, "t", invalid_utf8, None), &["UTF-8"]);
    expect_invalid(
        s.update_value(TENANT, "f", &file_over, None),
        &["524289 bytes"],
    );
    for (name, v1) in [("t", b"text v1"), ("f", b"file v1")] {
        assert_eq!(s.get(TENANT, name).unwrap().as_bytes(), v1);
        assert_eq!(s.info(TENANT, name).unwrap().version, 1);
        assert_eq!(s.history(TENANT, name).unwrap().len(), 1);
    }
    // The exact limits are accepted.
    s.update_value(TENANT, "t", "ü".repeat(2048).as_bytes(), None)
        .unwrap();
    s.update_value(TENANT, "f", &file_over[..512 * KIB], None)
        .unwrap();
    assert_eq!(s.get(TENANT, "f").unwrap().as_bytes().len(), 512 * KIB);
}

#[test]
fn custom_limits_from_options_are_enforced() {
    let f = Fixture::with_options(|o| {
        o.limits = Limits {
            max_text_chars: 10,
            max_file_bytes: 100,
        }
    });
    let s = &f.store;
    assert_eq!(s.options().limits.max_text_chars, 10);
    s.create(TENANT, "t", SecretType::Text, "0123456789".as_bytes(), "")
        .unwrap();
    s.create(TENANT, "u", SecretType::Text, "ääääääääää".as_bytes(), "")
        .unwrap();
    expect_invalid(
        s.create(TENANT, "t2", SecretType::Text, b"0123456789A", ""),
        &["11 characters", "limit is 10"],
    );
    expect_invalid(
        s.update_value(TENANT, "t", b"0123456789A", None),
        &["11 characters", "limit is 10"],
    );
    s.create(TENANT, "f", SecretType::TextFile, &[1u8; 100], "")
        .unwrap();
    expect_invalid(
        s.create(TENANT, "f2", SecretType::TextFile, &[1u8; 101], ""),
        &["101 bytes", "limit is 100 bytes"],
    );
    expect_invalid(
        s.update_value(TENANT, "f", &[2u8; 101], None),
        &["101 bytes", "limit is 100 bytes"],
    );
    assert_eq!(s.get(TENANT, "f").unwrap().as_bytes(), &[1u8; 100]);

    // A handle on the same file with default limits accepts what the small one refused:
    // limits are options of the handle, not of the file.
    let wide = f.reopen();
    wide.update_value(TENANT, "f", &[3u8; 101], None).unwrap();
    assert_eq!(s.get(TENANT, "f").unwrap().as_bytes(), &[3u8; 101]);
}

#[test]
fn create_twice_is_already_exists_and_changes_nothing() {
    let f = Fixture::new();
    let s = &f.store;
    s.create(TENANT, "api", SecretType::Text, b"first", "original")
        .unwrap();
    let err = expect_code(
        s.create(TENANT, "api", SecretType::Text, b"second", "other"),
        ErrorCode::AlreadyExists,
    );
    assert!(err.message().contains("'api'"), "{err}");
    assert!(!err.message().contains("second"));
    // A different type does not sneak past either.
    expect_code(
        s.create(TENANT, "api", SecretType::TextFile, b"third", ""),
        ErrorCode::AlreadyExists,
    );
    let fresh = f.reopen();
    for store in [s, &fresh] {
        let info = store.info(TENANT, "api").unwrap();
        assert_eq!(info.secret_type, SecretType::Text);
        assert_eq!(info.description, "original");
        assert_eq!(info.version, 1);
        assert_eq!(store.get(TENANT, "api").unwrap().as_bytes(), b"first");
    }
}

#[test]
fn missing_secrets_are_not_found_everywhere() {
    let f = Fixture::new();
    let s = &f.store;
    let check = |name: &str| {
        for err in [
            expect_code(s.get(TENANT, name), ErrorCode::NotFound),
            expect_code(s.info(TENANT, name), ErrorCode::NotFound),
            expect_code(
                s.update_value(TENANT, name, b"x", None),
                ErrorCode::NotFound,
            ),
            expect_code(
                s.update_value(TENANT, name, b"x", Some(1)),
                ErrorCode::NotFound,
            ),
            expect_code(s.update_description(TENANT, name, "d"), ErrorCode::NotFound),
            expect_code(s.history(TENANT, name), ErrorCode::NotFound),
            expect_code(s.rollback(TENANT, name, 1), ErrorCode::NotFound),
            expect_code(s.delete(TENANT, name), ErrorCode::NotFound),
        ] {
            assert!(err.message().contains(name), "{err}");
        }
    };
    check("never-created");

    // Deleted secrets are gone with all their versions; the name is reserved until destroyed,
    // then it can be reused afresh.
    s.create(TENANT, "gone", SecretType::Text, b"v1", "")
        .unwrap();
    s.update_value(TENANT, "gone", b"v2", None).unwrap();
    assert_eq!(s.get(TENANT, "gone").unwrap().as_bytes(), b"v2");
    s.delete(TENANT, "gone").unwrap();
    check("gone");
    expect_code(f.reopen().get(TENANT, "gone"), ErrorCode::NotFound);
    let taken = expect_code(
        s.create(TENANT, "gone", SecretType::TextFile, b"new", ""),
        ErrorCode::AlreadyExists,
    );
    assert!(taken.message().contains("undelete"), "{taken}");
    s.destroy(TENANT, "gone").unwrap();
    let info = s
        .create(TENANT, "gone", SecretType::TextFile, b"new", "")
        .unwrap();
    assert_eq!(info.version, 1);
    assert_eq!(info.secret_type, SecretType::TextFile);
    let history = s.history(TENANT, "gone").unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    expect_code(s.rollback(TENANT, "gone", 2), ErrorCode::NotFound);
    assert_eq!(s.get(TENANT, "gone").unwrap().as_bytes(), b"new");
}

/// There is no API to rename a secret or change its type: updates keep the type, and the
/// type keeps governing which values are accepted.
#[test]
fn updates_keep_name_and_type() {
    let f = Fixture::new();
    let s = &f.store;
    s.create(TENANT, "cert", SecretType::TextFile, b"pem", "")
        .unwrap();
    s.create(TENANT, "pw", SecretType::Text, b"pw1", "")
        .unwrap();

    // Bytes that are not UTF-8 are fine for a file, and it stays a file.
    let info = s
        .update_value(TENANT, "cert", b"\xff\x00\xfe", None)
        .unwrap();
    assert_eq!(info.secret_type, SecretType::TextFile);
    assert_eq!(info.name, "cert");
    assert_eq!(info.version, 2);
    let got = s.get(TENANT, "cert").unwrap();
    assert_eq!(got.secret_type(), SecretType::TextFile);
    assert_eq!(got.as_bytes(), b"\xff\x00\xfe");

    // A TEXT secret stays TEXT: the same bytes are refused.
    expect_invalid(
        s.update_value(TENANT, "pw", b"\xff\x00\xfe", None),
        &["UTF-8"],
    );
    let info = s.update_value(TENANT, "pw", b"pw2", None).unwrap();
    assert_eq!(info.secret_type, SecretType::Text);
    let info = s.update_description(TENANT, "pw", "renamed?").unwrap();
    assert_eq!(
        (info.name.as_str(), info.secret_type),
        ("pw", SecretType::Text)
    );
    let info = s.rollback(TENANT, "pw", 1).unwrap();
    assert_eq!(info.secret_type, SecretType::Text);
    let fresh = f.reopen();
    assert_eq!(
        fresh.info(TENANT, "pw").unwrap().secret_type,
        SecretType::Text
    );
    assert_eq!(
        fresh.info(TENANT, "cert").unwrap().secret_type,
        SecretType::TextFile
    );
    assert_eq!(
        fresh.get(TENANT, "pw").unwrap().secret_type(),
        SecretType::Text
    );
}

#[test]
fn tenants_are_isolated() {
    let f = Fixture::new();
    let s = &f.store;
    let (a, b, c) = ("tenant-a", "tenant-b", "tenant-c");
    s.create(a, "shared-name", SecretType::Text, b"value of a", "A")
        .unwrap();
    s.create(b, "shared-name", SecretType::TextFile, b"value of b", "B")
        .unwrap();
    s.create(a, "only-a", SecretType::Text, b"a only", "")
        .unwrap();

    let fresh = f.reopen();
    for store in [s, &fresh] {
        assert_eq!(
            store.get(a, "shared-name").unwrap().as_bytes(),
            b"value of a"
        );
        assert_eq!(
            store.get(b, "shared-name").unwrap().as_bytes(),
            b"value of b"
        );
        assert_eq!(
            store.info(a, "shared-name").unwrap().secret_type,
            SecretType::Text
        );
        assert_eq!(
            store.info(b, "shared-name").unwrap().secret_type,
            SecretType::TextFile
        );
        expect_code(store.get(b, "only-a"), ErrorCode::NotFound);
        expect_code(store.get(c, "shared-name"), ErrorCode::NotFound);
        // Tenant ids are exact: no prefix or case folding.
        expect_code(store.get("TENANT-A", "shared-name"), ErrorCode::NotFound);
        expect_code(store.get("tenant-", "shared-name"), ErrorCode::NotFound);
    }
    let names = |t: &str| -> Vec<String> {
        s.list(t, &ListQuery::default())
            .unwrap()
            .items
            .into_iter()
            .map(|i| {
                assert_eq!(i.tenant, t);
                i.name
            })
            .collect()
    };
    assert_eq!(names(a), ["only-a", "shared-name"]);
    assert_eq!(names(b), ["shared-name"]);
    assert!(names(c).is_empty());

    // Writes in one tenant never touch the other.
    s.update_value(b, "shared-name", b"b v2", None).unwrap();
    assert_eq!(s.info(a, "shared-name").unwrap().version, 1);
    s.delete(a, "shared-name").unwrap();
    assert_eq!(s.get(b, "shared-name").unwrap().as_bytes(), b"b v2");
    assert_eq!(fresh.get(b, "shared-name").unwrap().as_bytes(), b"b v2");
    expect_code(fresh.get(a, "shared-name"), ErrorCode::NotFound);
}

#[test]
fn listing_filters_pages_and_never_shows_values() {
    let f = Fixture::new();
    let s = &f.store;
    for i in 0..7 {
        let name = format!("db-{i}");
        s.create(
            TENANT,
            &name,
            SecretType::Text,
            format!("VALUE-{i}").as_bytes(),
            "",
        )
        .unwrap();
    }
    s.create(TENANT, "api-key", SecretType::Text, b"VALUE-api", "")
        .unwrap();
    s.create("other", "db-other", SecretType::Text, b"VALUE-other", "")
        .unwrap();

    let all = s.list(TENANT, &ListQuery::default()).unwrap();
    assert_eq!(all.total, 8);
    assert!(!all.has_more);
    let names: Vec<&str> = all.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        ["api-key", "db-0", "db-1", "db-2", "db-3", "db-4", "db-5", "db-6"]
    );
    let shown = format!("{all:?}");
    assert!(
        !shown.contains("VALUE-"),
        "a listing shows a value: {shown}"
    );

    let page = |offset, limit, filter: Option<&str>| {
        s.list(
            TENANT,
            &ListQuery {
                name_contains: filter.map(str::to_owned),
                offset,
                limit,
                ..ListQuery::default()
            },
        )
        .unwrap()
    };
    let p = page(0, 3, Some("db-"));
    assert_eq!((p.total, p.items.len(), p.has_more), (7, 3, true));
    assert_eq!(p.items[0].name, "db-0");
    let p = page(6, 3, Some("db-"));
    assert_eq!((p.total, p.items.len(), p.has_more), (7, 1, false));
    assert_eq!(p.items[0].name, "db-6");
    let p = page(3, 3, Some("db-"));
    assert_eq!(p.items[0].name, "db-3");
    assert!(p.has_more);
    let p = page(0, 0, Some("API"));
    assert_eq!(p.total, 0, "the filter is case-sensitive");
    let p = page(0, 0, Some("key"));
    assert_eq!(p.items.len(), 1);
    // The filter is a plain substring: SQL LIKE wildcards match only themselves.
    assert_eq!(page(0, 0, Some("%")).total, 0);
    assert_eq!(page(0, 0, Some("_")).total, 0);
    s.create(TENANT, "snake_case", SecretType::Text, b"v", "")
        .unwrap();
    let p = page(0, 0, Some("_"));
    assert_eq!((p.total, p.items[0].name.as_str()), (1, "snake_case"));
}

#[test]
fn check_and_set_detects_stale_versions() {
    let f = Fixture::new();
    let s = &f.store;
    s.create(TENANT, "cas", SecretType::Text, b"v1", "")
        .unwrap();
    let info = s.update_value(TENANT, "cas", b"v2", Some(1)).unwrap();
    assert_eq!(info.version, 2);
    let err = expect_code(
        s.update_value(TENANT, "cas", b"stale", Some(1)),
        ErrorCode::Conflict,
    );
    assert!(err.message().contains("version 2"), "{err}");
    assert!(!err.message().contains("stale"));
    expect_code(
        s.update_value(TENANT, "cas", b"future", Some(3)),
        ErrorCode::Conflict,
    );
    assert_eq!(s.get(TENANT, "cas").unwrap().as_bytes(), b"v2");
    assert_eq!(f.reopen().get(TENANT, "cas").unwrap().as_bytes(), b"v2");
    assert_eq!(s.info(TENANT, "cas").unwrap().version, 2);
    assert_eq!(s.history(TENANT, "cas").unwrap().len(), 2);

    // A stale version from another handle's write is detected too.
    let other = f.reopen();
    other.update_value(TENANT, "cas", b"v3", Some(2)).unwrap();
    expect_code(
        s.update_value(TENANT, "cas", b"lost", Some(2)),
        ErrorCode::Conflict,
    );
    assert_eq!(s.get(TENANT, "cas").unwrap().as_bytes(), b"v3");
    let info = s.update_value(TENANT, "cas", b"v4", Some(3)).unwrap();
    assert_eq!(info.version, 4);
    let got = other.get(TENANT, "cas").unwrap();
    assert_eq!((got.version(), got.as_bytes()), (4, &b"v4"[..]));
}

#[test]
fn history_keeps_max_versions_and_rollback_writes_a_new_version() {
    let f = Fixture::with_options(|o| o.max_versions = 3);
    let s = &f.store;
    let value = |v: u64| format!("value of version {v}");
    s.create(TENANT, "h", SecretType::Text, value(1).as_bytes(), "")
        .unwrap();
    for v in 2..=6 {
        let info = s
            .update_value(TENANT, "h", value(v).as_bytes(), None)
            .unwrap();
        assert_eq!(info.version, v);
    }
    let history = s.history(TENANT, "h").unwrap();
    let versions: Vec<u64> = history.iter().map(|h| h.version).collect();
    assert_eq!(versions, [6, 5, 4], "newest first, only the last 3 kept");
    let current: Vec<bool> = history.iter().map(|h| h.current).collect();
    assert_eq!(current, [true, false, false]);
    assert!(history
        .windows(2)
        .all(|w| w[0].created_at >= w[1].created_at));

    // Rolling back to 4 writes version 7 with version 4's value.
    let info = s.rollback(TENANT, "h", 4).unwrap();
    assert_eq!(info.version, 7);
    let got = s.get(TENANT, "h").unwrap();
    assert_eq!(
        (got.version(), got.as_str().unwrap()),
        (7, value(4).as_str())
    );
    let fresh = f.reopen();
    assert_eq!(fresh.get(TENANT, "h").unwrap().as_str().unwrap(), value(4));
    let versions: Vec<(u64, bool)> = s
        .history(TENANT, "h")
        .unwrap()
        .iter()
        .map(|h| (h.version, h.current))
        .collect();
    assert_eq!(versions, [(7, true), (6, false), (5, false)]);

    // Pruned, never-written and zero versions are NOT_FOUND, and change nothing.
    for gone in [1, 3, 4, 8, 0] {
        let err = expect_code(s.rollback(TENANT, "h", gone), ErrorCode::NotFound);
        assert!(err.message().contains(&format!("version {gone}")), "{err}");
    }
    assert_eq!(s.info(TENANT, "h").unwrap().version, 7);

    // Rolling back to a kept, older version works after pruning too (6 → version 8).
    s.rollback(TENANT, "h", 6).unwrap();
    let got = fresh.get(TENANT, "h").unwrap();
    assert_eq!(
        (got.version(), got.as_str().unwrap()),
        (8, value(6).as_str())
    );
}

#[test]
fn description_changes_do_not_create_versions() {
    let f = Fixture::new();
    let s = &f.store;
    let created = s
        .create(TENANT, "d", SecretType::Text, b"value", "one")
        .unwrap();
    let info = s.update_description(TENANT, "d", "two").unwrap();
    assert_eq!(info.version, 1);
    assert_eq!(info.description, "two");
    assert_eq!(info.value_updated_at, created.value_updated_at);
    assert!(info.updated_at >= created.updated_at);
    assert_eq!(s.history(TENANT, "d").unwrap().len(), 1);
    let got = s.get(TENANT, "d").unwrap();
    assert_eq!((got.version(), got.as_bytes()), (1, &b"value"[..]));
    s.update_value(TENANT, "d", b"value 2", None).unwrap();
    assert_eq!(f.reopen().info(TENANT, "d").unwrap().description, "two");
}

#[test]
fn max_versions_zero_keeps_one_version() {
    let f = Fixture::with_options(|o| o.max_versions = 0);
    let s = &f.store;
    s.create(TENANT, "one", SecretType::Text, b"1", "").unwrap();
    s.update_value(TENANT, "one", b"2", None).unwrap();
    s.update_value(TENANT, "one", b"3", None).unwrap();
    let history = s.history(TENANT, "one").unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].version, history[0].current), (3, true));
    assert_eq!(s.get(TENANT, "one").unwrap().as_bytes(), b"3");
}

#[test]
fn use_counts_are_recorded() {
    let f = Fixture::new();
    let s = &f.store;
    s.create(TENANT, "used", SecretType::Text, b"v", "")
        .unwrap();
    s.create(TENANT, "unused", SecretType::Text, b"v", "")
        .unwrap();
    for _ in 0..5 {
        s.get(TENANT, "used").unwrap();
    }
    // A write in between must not lose the counts of the replaced cache entry.
    s.update_value(TENANT, "used", b"v2", None).unwrap();
    for _ in 0..3 {
        s.get(TENANT, "used").unwrap();
    }
    let info = s.info(TENANT, "used").unwrap();
    assert_eq!(info.use_count, 8);
    assert!(info
        .last_used_at
        .is_some_and(|t| t >= info.created_at - 1000));
    assert_eq!(s.info(TENANT, "unused").unwrap().use_count, 0);
    assert_eq!(s.info(TENANT, "unused").unwrap().last_used_at, None);
    // Counts reach the file: another handle sees them after a flush or close.
    s.get(TENANT, "used").unwrap();
    s.close().unwrap();
    assert_eq!(f.reopen().info(TENANT, "used").unwrap().use_count, 9);
}

/// A secret deleted (and destroyed) and created again under the same name starts with no
/// uses: the unflushed counts of the deleted one are not carried over.
#[test]
fn use_counts_of_a_deleted_secret_do_not_carry_over() {
    let f = Fixture::new();
    let s = &f.store;
    s.create(TENANT, "s", SecretType::Text, b"old", "").unwrap();
    for _ in 0..3 {
        s.get(TENANT, "s").unwrap();
    }
    s.update_value(TENANT, "s", b"old 2", None).unwrap(); // counts move to the pending list
    s.get(TENANT, "s").unwrap(); // and some stay on the cache entry
    s.delete(TENANT, "s").unwrap();
    s.destroy(TENANT, "s").unwrap();
    let info = s.create(TENANT, "s", SecretType::Text, b"new", "").unwrap();
    assert_eq!(info.use_count, 0);
    let info = s.info(TENANT, "s").unwrap();
    assert_eq!((info.use_count, info.last_used_at), (0, None));
    s.get(TENANT, "s").unwrap();
    s.close().unwrap();
    assert_eq!(f.reopen().info(TENANT, "s").unwrap().use_count, 1);
}

#[test]
fn a_closed_handle_refuses_everything() {
    let f = Fixture::new();
    let s = &f.store;
    s.create(TENANT, "n", SecretType::Text, b"v", "").unwrap();
    s.get(TENANT, "n").unwrap(); // cached: close must still win
    assert!(!s.is_closed());
    s.close().unwrap();
    assert!(s.is_closed());
    s.close().unwrap(); // idempotent
    expect_code(s.get(TENANT, "n"), ErrorCode::Closed);
    expect_code(
        s.create(TENANT, "m", SecretType::Text, b"v", ""),
        ErrorCode::Closed,
    );
    expect_code(s.update_value(TENANT, "n", b"v", None), ErrorCode::Closed);
    expect_code(s.update_description(TENANT, "n", ""), ErrorCode::Closed);
    expect_code(s.info(TENANT, "n"), ErrorCode::Closed);
    expect_code(s.list(TENANT, &ListQuery::default()), ErrorCode::Closed);
    expect_code(s.history(TENANT, "n"), ErrorCode::Closed);
    expect_code(s.rollback(TENANT, "n", 1), ErrorCode::Closed);
    expect_code(s.delete(TENANT, "n"), ErrorCode::Closed);
    expect_code(s.flush_usage(), ErrorCode::Closed);
    // The data is untouched.
    assert_eq!(f.reopen().get(TENANT, "n").unwrap().as_bytes(), b"v");
}

#[test]
fn debug_output_never_contains_values_or_keys() {
    const CANARY: &str = "Canary-Secret-7f3a9c";
    let f = Fixture::new();
    let s = &f.store;
    s.create(TENANT, "text", SecretType::Text, CANARY.as_bytes(), "")
        .unwrap();
    s.create(TENANT, "file", SecretType::TextFile, CANARY.as_bytes(), "")
        .unwrap();
    let text = s.get(TENANT, "text").unwrap();
    let file = s.get(TENANT, "file").unwrap();
    assert_eq!(text.as_bytes(), CANARY.as_bytes());

    let key = MasterKey::from_bytes(&[0x5a; 32]).unwrap();
    let key_b64 = key.to_base64();
    let opts = StorageOptions::with_master_key(key.clone());

    // Errors produced while handling the value must not echo it either.
    let too_long = format!("{CANARY}{}", "x".repeat(2100));
    let mut bad_utf8 = CANARY.as_bytes().to_vec();
    bad_utf8.push(0xff);
    let wrong_key =
        SecretStorage::open(&f.path, StorageOptions::with_master_key(key.clone())).unwrap_err();
    assert_eq!(wrong_key.code(), ErrorCode::WrongMasterKey);
    let errors = [
        wrong_key,
        s.create(TENANT, "x", SecretType::Text, too_long.as_bytes(), "")
            .unwrap_err(),
        s.create(TENANT, "x", SecretType::Text, &bad_utf8, "")
            .unwrap_err(),
        s.update_value(TENANT, "text", &bad_utf8, None).unwrap_err(),
        s.update_value(TENANT, "text", CANARY.as_bytes(), Some(9))
            .unwrap_err(),
        s.create(TENANT, "text", SecretType::Text, CANARY.as_bytes(), "")
            .unwrap_err(),
    ];

    let mut shown = vec![
        format!("{text:?}"),
        format!("{file:?}"),
        format!("{text:#?}"),
        format!("{s:?}"),
        format!("{s:#?}"),
        format!("{key:?}"),
        format!("{key:#?}"),
        format!("{opts:?}"),
        format!("{:?}", s.info(TENANT, "text").unwrap()),
        format!("{:?}", s.history(TENANT, "text").unwrap()),
    ];
    for e in &errors {
        shown.push(format!("{e:?}"));
        shown.push(format!("{e}"));
        shown.push(e.message().to_owned());
    }
    let raw_key_decimal = "90, 90, 90"; // 0x5a as Debug of a byte array would show it
    for out in &shown {
        assert!(!out.contains(CANARY), "value leaked: {out}");
        assert!(!out.contains(&CANARY[..8]), "value prefix leaked: {out}");
        assert!(!out.contains(key_b64.as_str()), "key leaked: {out}");
        assert!(!out.contains(raw_key_decimal), "key bytes leaked: {out}");
        assert!(!out.contains("5a5a5a") && !out.contains("5A5A5A"), "{out}");
    }
    assert!(shown[0].contains("redacted"), "{}", shown[0]);
    assert!(shown[5].contains("redacted"), "{}", shown[5]);
}
