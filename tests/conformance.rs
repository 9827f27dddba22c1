//! The backend conformance suite: every backend-dependent behaviour, run against SQLite and
//! against PostgreSQL (the server `./scripts/test-all.sh` starts; its URL comes in
//! `TBS_TEST_POSTGRES_URL`, and each test works in a schema of its own), and once more on
//! SQLite with the master key in a SoftHSM2 token (the `pkcs11` key provider).

#[cfg(feature = "pkcs11")]
#[path = "common/softhsm.rs"]
mod softhsm;
#[path = "common/postgres.rs"]
mod test_postgres;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use tbsecrets::{
    ErrorCode, KeyProvider, ListQuery, MasterKey, SecretStorage, SecretType, StorageOptions,
};
use test_postgres::postgres_url;

const T: &str = "13814000-1dd2-11b2-8080-808080808080";

/// One store location on one backend, with its key (raw, or a provider's).
struct Harness {
    location: String,
    key: MasterKey,
    provider: Option<Arc<dyn KeyProvider>>,
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    fn sqlite() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        Harness {
            location: dir.path().join("store.db").to_str().unwrap().to_owned(),
            key: MasterKey::generate(),
            provider: None,
            _dir: Some(dir),
        }
    }

    /// SQLite, the master key in a SoftHSM2 token.
    #[cfg(feature = "pkcs11")]
    fn pkcs11() -> Harness {
        let hsm = softhsm::softhsm();
        Harness {
            provider: Some(Arc::new(hsm.provider(softhsm::KEY))),
            ..Harness::sqlite()
        }
    }

    /// Options opening the store with its key.
    fn options(&self) -> StorageOptions {
        match &self.provider {
            Some(provider) => StorageOptions::with_key_provider(provider.clone()),
            None => StorageOptions::with_master_key(self.key.clone()),
        }
    }

    fn postgres() -> Harness {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let schema = format!(
            "t_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let url = postgres_url();
        let sep = if url.contains('?') { '&' } else { '?' };
        Harness {
            location: format!("{url}{sep}schema={schema}&pool_max=4"),
            key: MasterKey::generate(),
            provider: None,
            _dir: None,
        }
    }

    fn open(&self) -> SecretStorage {
        SecretStorage::open(&self.location, self.options())
            .unwrap_or_else(|e| panic!("open {}: {e}", self.location))
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&super::Harness::sqlite()); } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(&super::Harness::postgres()); } )*
        }
        #[cfg(feature = "pkcs11")]
        mod pkcs11 {
            $( #[test] fn $name() { super::$name(&super::Harness::pkcs11()); } )*
        }
    };
}

conformance!(
    round_trips_both_types,
    existence_errors,
    check_and_set,
    versions_history_rollback_and_pruning,
    listing_pages_and_filters,
    keyset_pages_yield_every_secret_once_in_order,
    keyset_pages_while_secrets_come_and_go,
    keyset_pages_keep_deleted_secrets_apart,
    reference_index_and_in_use,
    wrong_master_key_changes_nothing,
    another_handle_sees_updates_within_a_bound,
    concurrent_check_and_set_has_one_winner,
    concurrent_creates_from_threads,
    usage_is_persisted,
    fixtures_resolve_identically,
    uncached_handle_reads_through,
    master_key_rotation_is_online_and_retires_the_old_key,
    tenant_key_rotation_reencrypts_every_version,
    soft_delete_undelete_and_destroy,
    deleted_names_are_reserved_until_destroyed,
    retention_purge_on_open_and_on_delete,
    rotation_keeps_deleted_secrets_recoverable,
    per_message_patterns_keep_the_names_they_can_fill_in_use,
);

fn round_trips_both_types(h: &Harness) {
    let store = h.open();
    let pem: Vec<u8> = (0..=255u8).cycle().take(512 * 1024).collect();
    store
        .create(T, "ключ 🔑", SecretType::Text, "значение ✓".as_bytes(), "d")
        .unwrap();
    store
        .create(T, "ca", SecretType::TextFile, &pem, "")
        .unwrap();
    assert_eq!(
        store.get(T, "ключ 🔑").unwrap().as_str().unwrap(),
        "значение ✓"
    );
    assert_eq!(store.get(T, "ca").unwrap().as_bytes(), &pem[..]);
    let info = store.info(T, "ca").unwrap();
    assert_eq!((info.secret_type, info.version), (SecretType::TextFile, 1));
    // Another handle (another connection) reads the same.
    assert_eq!(h.open().get(T, "ca").unwrap().as_bytes(), &pem[..]);
    // Tenants are separate.
    assert_eq!(
        store.get("other", "ca").unwrap_err().code(),
        ErrorCode::NotFound
    );
}

fn existence_errors(h: &Harness) {
    let store = h.open();
    store.create(T, "a", SecretType::Text, b"1", "").unwrap();
    let dup = store
        .create(T, "a", SecretType::Text, b"2", "")
        .unwrap_err();
    assert_eq!(dup.code(), ErrorCode::AlreadyExists);
    assert_eq!(store.get(T, "a").unwrap().as_bytes(), b"1");
    for err in [
        store.info(T, "b").unwrap_err(),
        store.update_value(T, "b", b"x", None).unwrap_err(),
        store.update_description(T, "b", "x").unwrap_err(),
        store.delete(T, "b").unwrap_err(),
        store.history(T, "b").unwrap_err(),
    ] {
        assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    }
    store.delete(T, "a").unwrap();
    assert_eq!(store.get(T, "a").unwrap_err().code(), ErrorCode::NotFound);
}

fn check_and_set(h: &Harness) {
    let store = h.open();
    store.create(T, "k", SecretType::Text, b"v1", "").unwrap();
    assert_eq!(
        store.update_value(T, "k", b"v2", Some(1)).unwrap().version,
        2
    );
    let err = store.update_value(T, "k", b"stale", Some(1)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert_eq!(store.get(T, "k").unwrap().as_bytes(), b"v2");
}

fn versions_history_rollback_and_pruning(h: &Harness) {
    let mut options = h.options();
    options.max_versions = 3;
    let store = SecretStorage::open(&h.location, options).unwrap();
    store.create(T, "k", SecretType::Text, b"v1", "").unwrap();
    for v in 2..=6 {
        store
            .update_value(T, "k", format!("v{v}").as_bytes(), None)
            .unwrap();
    }
    let history = store.history(T, "k").unwrap();
    let numbers: Vec<u64> = history.iter().map(|v| v.version).collect();
    assert_eq!(numbers, [6, 5, 4]);
    assert!(history[0].current && !history[1].current);
    assert_eq!(store.rollback(T, "k", 4).unwrap().version, 7);
    assert_eq!(store.get(T, "k").unwrap().as_bytes(), b"v4");
    assert_eq!(
        store.rollback(T, "k", 2).unwrap_err().code(),
        ErrorCode::NotFound
    );
    store.update_description(T, "k", "new").unwrap();
    assert_eq!(store.info(T, "k").unwrap().version, 7);
}

fn listing_pages_and_filters(h: &Harness) {
    let store = h.open();
    for name in ["b-key", "a-key", "C-key", "api", "x"] {
        store.create(T, name, SecretType::Text, b"v", "").unwrap();
    }
    let all = store.list(T, &ListQuery::default()).unwrap();
    let names: Vec<&str> = all.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["C-key", "a-key", "api", "b-key", "x"], "byte order");
    let page = store
        .list(
            T,
            &ListQuery {
                name_contains: Some("key".into()),
                offset: 1,
                limit: 1,
                ..ListQuery::default()
            },
        )
        .unwrap();
    assert_eq!(
        (page.total, page.has_more, page.items[0].name.as_str()),
        (3, true, "a-key")
    );
    let none = store
        .list(
            T,
            &ListQuery {
                name_contains: Some("KEY".into()),
                ..ListQuery::default()
            },
        )
        .unwrap();
    assert_eq!(none.total, 0, "case-sensitive");
}

/// Every page after the previous page's cursor, until the last: the names, and the pages' sizes.
fn page_through(
    store: &SecretStorage,
    filter: Option<&str>,
    limit: usize,
    mut between: impl FnMut(usize, &str),
) -> (Vec<String>, Vec<usize>) {
    let (mut names, mut sizes) = (Vec::new(), Vec::new());
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list(
                T,
                &ListQuery {
                    name_contains: filter.map(str::to_owned),
                    after: after.clone(),
                    limit,
                    ..ListQuery::default()
                },
            )
            .unwrap();
        sizes.push(page.items.len());
        names.extend(page.items.iter().map(|i| i.name.clone()));
        assert_eq!(page.has_more, page.next_after.is_some());
        match page.next_after {
            Some(next) => {
                assert_eq!(
                    Some(&next),
                    names.last(),
                    "the cursor is the page's last name"
                );
                between(sizes.len(), &next);
                after = Some(next);
            }
            None => return (names, sizes),
        }
    }
}

fn keyset_pages_yield_every_secret_once_in_order(h: &Harness) {
    let store = h.open();
    // Byte order of UTF-8 (as SQLite compares and `COLLATE "C"` orders), whatever the
    // PostgreSQL database's collation: upper case before lower, 'é' after 'z'.
    let mut expected: Vec<String> = (0..23).map(|i| format!("s{i:02}")).collect();
    expected.extend(["Zeta", "alpha", "zulu", "\u{e9}t\u{e9}", "a b"].map(String::from));
    for name in &expected {
        store.create(T, name, SecretType::Text, b"v", "").unwrap();
    }
    store
        .create("other-tenant", "s00", SecretType::Text, b"v", "")
        .unwrap();
    expected.sort();
    let (names, sizes) = page_through(&store, None, 5, |_, _| {});
    assert_eq!(names, expected);
    assert_eq!(sizes, [5, 5, 5, 5, 5, 3]);
    // A page of exactly the remaining entries is the last one: no empty page follows.
    let (names, sizes) = page_through(&store, None, 14, |_, _| {});
    assert_eq!((names.len(), sizes), (28, vec![14, 14]));
    // With a filter, and with the cursor of a name that does not exist.
    let (names, _) = page_through(&store, Some("s1"), 4, |_, _| {});
    assert_eq!(
        names,
        expected
            .iter()
            .filter(|n| n.contains("s1"))
            .cloned()
            .collect::<Vec<_>>()
    );
    let after_gap = store
        .list(
            T,
            &ListQuery {
                after: Some("s015".into()),
                limit: 2,
                ..ListQuery::default()
            },
        )
        .unwrap();
    let got: Vec<&str> = after_gap.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        (got, after_gap.total, after_gap.next_after.as_deref()),
        (vec!["s02", "s03"], 28, Some("s03"))
    );
}

/// Deleted secrets are on no page of the live ones (nor in their total), and page alike with
/// `deleted`.
fn keyset_pages_keep_deleted_secrets_apart(h: &Harness) {
    let store = h.open();
    let all: Vec<String> = (0..12).map(|i| format!("s{i:02}")).collect();
    for name in &all {
        store.create(T, name, SecretType::Text, b"v", "").unwrap();
    }
    let deleted = ["s03", "s04", "s07", "s11"];
    for name in deleted {
        store.delete(T, name).unwrap();
    }
    let live: Vec<String> = all
        .iter()
        .filter(|n| !deleted.contains(&n.as_str()))
        .cloned()
        .collect();
    let (names, sizes) = page_through(&store, None, 3, |_, _| {});
    assert_eq!((names, sizes), (live.clone(), vec![3, 3, 2]));
    let page = |after: Option<&str>, deleted: bool| {
        store
            .list(
                T,
                &ListQuery {
                    after: after.map(str::to_owned),
                    limit: 3,
                    deleted,
                    ..ListQuery::default()
                },
            )
            .unwrap()
    };
    let first = page(Some("s02"), false);
    let got: Vec<&str> = first.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!((got, first.total), (vec!["s05", "s06", "s08"], 8));
    let first = page(None, true);
    let got: Vec<&str> = first.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!((got, first.total), (vec!["s03", "s04", "s07"], 4));
    assert!(first.items.iter().all(|i| i.deleted_at.is_some()));
    let next = page(first.next_after.as_deref(), true);
    let got: Vec<&str> = next.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!((got, next.next_after), (vec!["s11"], None));
    // Undeleted, a secret is back on the live pages at its place.
    store.undelete(T, "s04").unwrap();
    let again = page(Some("s02"), false);
    let got: Vec<&str> = again.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(got, ["s04", "s05", "s06"]);
}

fn keyset_pages_while_secrets_come_and_go(h: &Harness) {
    let store = h.open();
    let kept: Vec<String> = (0..40).map(|i| format!("k{i:02}")).collect();
    for name in &kept {
        store.create(T, name, SecretType::Text, b"v", "").unwrap();
    }
    for i in 0..10 {
        store
            .create(T, &format!("k{i:02}x"), SecretType::Text, b"v", "")
            .unwrap();
    }
    let (mut created_ahead, mut deleted) = (Vec::new(), Vec::new());
    let (names, _) = page_through(&store, None, 7, |page, cursor| {
        // Between pages: delete a name ahead of the cursor and one behind it, create one
        // behind it (not listed: the cursor has passed) and one ahead (listed once).
        let ahead = format!("k{:02}x", page + 4);
        if ahead.as_str() > cursor && store.delete(T, &ahead).is_ok() {
            deleted.push(ahead);
        }
        let behind = format!("a-new-{page}");
        store
            .create(T, &behind, SecretType::Text, b"v", "")
            .unwrap();
        let new_ahead = format!("{cursor}~new");
        store
            .create(T, &new_ahead, SecretType::Text, b"v", "")
            .unwrap();
        created_ahead.push(new_ahead);
    });
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted, "in order, none twice");
    for name in &kept {
        assert!(names.contains(name), "{name} was there all along");
    }
    for name in &created_ahead {
        assert!(
            names.contains(name),
            "{name} was created ahead of the cursor"
        );
    }
    assert!(!deleted.is_empty());
    for name in &deleted {
        assert!(!names.contains(name), "{name} was deleted before its page");
    }
    assert!(
        names.iter().all(|n| !n.starts_with("a-new-")),
        "behind the cursor"
    );
}

fn reference_index_and_in_use(h: &Harness) {
    let store = h.open();
    store.create(T, "api", SecretType::Text, b"a", "").unwrap();
    store
        .create(T, "api-old", SecretType::Text, b"b", "")
        .unwrap();
    store
        .track_references(T, "node-2", "${secret:api;type:TEXT}")
        .unwrap();
    store
        .track_references(T, "node-1", r#"{"h":"${secret:api}"}"#)
        .unwrap();
    let sources: Vec<String> = store
        .where_used(T, "api")
        .unwrap()
        .into_iter()
        .map(|r| r.source_id)
        .collect();
    assert_eq!(sources, ["node-1", "node-2"]);
    assert!(store.where_used(T, "api-old").unwrap().is_empty());
    let err = store.delete(T, "api").unwrap_err();
    assert_eq!(err.code(), ErrorCode::InUse);
    assert!(err.message().contains("node-1"));
    assert_eq!(store.untrack(T, "node-1").unwrap(), 1);
    store.track_references(T, "node-2", "nothing").unwrap();
    store.delete(T, "api").unwrap();
    store
        .track_references(T, "node-3", "${secret:api-old}")
        .unwrap();
    store.delete_with(T, "api-old", true).unwrap();
}

fn wrong_master_key_changes_nothing(h: &Harness) {
    h.open().create(T, "k", SecretType::Text, b"v", "").unwrap();
    let wrong = SecretStorage::open(
        &h.location,
        StorageOptions::with_master_key(MasterKey::generate()),
    )
    .unwrap_err();
    assert_eq!(wrong.code(), ErrorCode::WrongMasterKey);
    assert_eq!(h.open().get(T, "k").unwrap().as_bytes(), b"v");
}

/// Two handles stand in for two cluster nodes: an update through one is seen by the other's
/// next reads within a bound (immediately for SQLite; after the notification for PostgreSQL).
fn another_handle_sees_updates_within_a_bound(h: &Harness) {
    const BOUND: Duration = Duration::from_secs(5);
    let node_a = h.open();
    let node_b = h.open();
    node_a.create(T, "k", SecretType::Text, b"v1", "").unwrap();
    assert_eq!(node_b.get(T, "k").unwrap().as_bytes(), b"v1"); // now cached on B
    let mut worst = Duration::ZERO;
    for round in 2..=6 {
        let value = format!("v{round}");
        node_a.update_value(T, "k", value.as_bytes(), None).unwrap();
        let start = Instant::now();
        loop {
            if node_b.get(T, "k").unwrap().as_bytes() == value.as_bytes() {
                break;
            }
            assert!(start.elapsed() < BOUND, "update not seen within {BOUND:?}");
            std::thread::yield_now();
        }
        worst = worst.max(start.elapsed());
    }
    eprintln!(
        "propagation delay ({}): worst of 5 = {worst:?}",
        h.location.split(':').next().unwrap_or("?")
    );
    node_a.delete(T, "k").unwrap();
    let start = Instant::now();
    while node_b.get(T, "k").is_ok() {
        assert!(start.elapsed() < BOUND, "delete not seen within {BOUND:?}");
        std::thread::yield_now();
    }
}

fn concurrent_check_and_set_has_one_winner(h: &Harness) {
    let a = Arc::new(h.open());
    let b = Arc::new(h.open());
    a.create(T, "k", SecretType::Text, b"v1", "").unwrap();
    for round in 1..=10u64 {
        let barrier = Arc::new(Barrier::new(2));
        let results: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .enumerate()
            .map(|(i, store)| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    store.update_value(T, "k", format!("{round}-{i}").as_bytes(), Some(round))
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        for r in &results {
            if let Err(e) = r {
                assert_eq!(e.code(), ErrorCode::Conflict);
            }
        }
    }
    assert_eq!(a.info(T, "k").unwrap().version, 11);
}

fn concurrent_creates_from_threads(h: &Harness) {
    let store = Arc::new(h.open());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    store
                        .create(
                            &format!("tenant-{}", i % 3),
                            &format!("s-{t}-{i}"),
                            SecretType::Text,
                            b"v",
                            "",
                        )
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let total: usize = (0..3)
        .map(|i| {
            store
                .list(&format!("tenant-{i}"), &ListQuery::default())
                .unwrap()
                .total
        })
        .sum();
    assert_eq!(total, 100);
}

fn usage_is_persisted(h: &Harness) {
    let store = h.open();
    store.create(T, "k", SecretType::Text, b"v", "").unwrap();
    for _ in 0..3 {
        store.get(T, "k").unwrap();
    }
    store.resolve_str(T, "${secret:k}${secret:k}").unwrap();
    store.close().unwrap();
    let info = h.open().info(T, "k").unwrap();
    assert_eq!(info.use_count, 4);
    assert!(info.last_used_at.is_some());
}

fn fixtures_resolve_identically(h: &Harness) {
    let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs");
    let secrets: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(configs.join("secrets.json")).unwrap())
            .unwrap();
    let store = h.open();
    for s in secrets["secrets"].as_array().unwrap() {
        let t: SecretType = s["type"].as_str().unwrap().parse().unwrap();
        store
            .create(
                "default",
                s["name"].as_str().unwrap(),
                t,
                s["value"].as_str().unwrap().as_bytes(),
                "",
            )
            .unwrap();
    }
    let doc = std::fs::read_to_string(configs.join("rule_chain_with_secrets.json")).unwrap();
    let resolved = store.resolve_json("default", &doc).unwrap();
    assert!(!resolved.contains("${secret:"));
    serde_json::from_str::<serde_json::Value>(&resolved).unwrap();
}

fn uncached_handle_reads_through(h: &Harness) {
    let writer = h.open();
    let mut options = h.options();
    options.cache_values = false;
    let reader = SecretStorage::open(&h.location, options).unwrap();
    writer.create(T, "k", SecretType::Text, b"v1", "").unwrap();
    assert_eq!(reader.get(T, "k").unwrap().as_bytes(), b"v1");
    writer.update_value(T, "k", b"v2", None).unwrap();
    // No notification or probe needed: every read goes to the database.
    assert_eq!(reader.get(T, "k").unwrap().as_bytes(), b"v2");
    reader.resolve_str(T, "${secret:k}").unwrap();
    reader.close().unwrap();
    assert_eq!(writer.info(T, "k").unwrap().use_count, 3);
}

fn master_key_rotation_is_online_and_retires_the_old_key(h: &Harness) {
    let store = Arc::new(h.open());
    let bystander = h.open(); // another node still holding the old key
                              // 1,000 secrets across 50 tenants.
    for t in 0..50 {
        for i in 0..20 {
            store
                .create(
                    &format!("t{t}"),
                    &format!("s{i}"),
                    SecretType::Text,
                    format!("{t}-{i}").as_bytes(),
                    "",
                )
                .unwrap();
        }
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let store = store.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) || reads < 50 {
                    let (t, i) = ((reads as usize + r) % 50, reads as usize % 20);
                    let value = store.get(&format!("t{t}"), &format!("s{i}")).unwrap();
                    assert_eq!(value.as_bytes(), format!("{t}-{i}").as_bytes());
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let new_key = MasterKey::generate();
    let report = store.rotate_master_key(&new_key).unwrap();
    assert_eq!((report.keys, report.key_id), (50, 2));
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().unwrap() >= 50);
    }
    // The rotating handle goes on with the new key, including for a new tenant.
    store
        .create("t-new", "k", SecretType::Text, b"v", "")
        .unwrap();
    // Only the new key opens the store now.
    let old = SecretStorage::open(&h.location, h.options()).unwrap_err();
    assert_eq!(old.code(), ErrorCode::WrongMasterKey);
    let reopened =
        SecretStorage::open(&h.location, StorageOptions::with_master_key(new_key)).unwrap();
    for t in 0..50 {
        assert_eq!(
            reopened.get(&format!("t{t}"), "s19").unwrap().as_bytes(),
            format!("{t}-19").as_bytes()
        );
    }
    assert_eq!(reopened.get("t-new", "k").unwrap().as_bytes(), b"v");
    // A node still on the old key cannot add a tenant key wrapped by it.
    let err = bystander
        .create("t-other", "k", SecretType::Text, b"v", "")
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::WrongMasterKey, "{err}");
}

fn tenant_key_rotation_reencrypts_every_version(h: &Harness) {
    let store = h.open();
    store.create(T, "a", SecretType::Text, b"a1", "").unwrap();
    store.update_value(T, "a", b"a2", None).unwrap();
    store
        .create(T, "b", SecretType::TextFile, &[0, 1, 2], "")
        .unwrap();
    store
        .create("other", "a", SecretType::Text, b"x", "")
        .unwrap();
    assert_eq!(store.get(T, "a").unwrap().as_bytes(), b"a2"); // cached before rotation
    let report = store.rotate_tenant_key(T).unwrap();
    assert_eq!((report.versions, report.key_id), (3, 2));
    assert_eq!(store.get(T, "a").unwrap().as_bytes(), b"a2");
    assert_eq!(store.get(T, "b").unwrap().as_bytes(), &[0, 1, 2]);
    assert_eq!(store.rollback(T, "a", 1).unwrap().version, 3);
    let fresh = h.open();
    assert_eq!(fresh.get(T, "a").unwrap().as_bytes(), b"a1");
    assert_eq!(fresh.get("other", "a").unwrap().as_bytes(), b"x");
    assert_eq!(store.rotate_tenant_key(T).unwrap().key_id, 3);
    assert_eq!(fresh.get(T, "b").unwrap().as_bytes(), &[0, 1, 2]);
}

fn names(page: tbsecrets::Page<tbsecrets::SecretInfo>) -> Vec<String> {
    page.items.into_iter().map(|i| i.name).collect()
}

fn deleted_query() -> ListQuery {
    ListQuery {
        deleted: true,
        ..ListQuery::default()
    }
}

fn soft_delete_undelete_and_destroy(h: &Harness) {
    let store = h.open();
    store.create(T, "db", SecretType::Text, b"v1", "d").unwrap();
    store.update_value(T, "db", b"v2", None).unwrap();
    store.create(T, "keep", SecretType::Text, b"k", "").unwrap();
    store.get(T, "db").unwrap();
    store.delete(T, "db").unwrap();
    // Deleted: missing to every reader, on this handle and another one.
    let other = h.open();
    for s in [&store, &other] {
        assert_eq!(s.get(T, "db").unwrap_err().code(), ErrorCode::NotFound);
        assert_eq!(s.info(T, "db").unwrap_err().code(), ErrorCode::NotFound);
        assert_eq!(s.history(T, "db").unwrap_err().code(), ErrorCode::NotFound);
        let err = s.resolve_str(T, "x=${secret:db}").unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unresolved);
        assert!(err.message().contains("db"), "{err}");
        assert_eq!(names(s.list(T, &ListQuery::default()).unwrap()), ["keep"]);
        let deleted = s.list(T, &deleted_query()).unwrap();
        assert_eq!(deleted.total, 1);
        assert_eq!(deleted.items[0].name, "db");
        assert!(deleted.items[0].deleted_at.is_some());
    }
    for err in [
        store.update_value(T, "db", b"x", None).unwrap_err(),
        store.update_description(T, "db", "x").unwrap_err(),
        store.rollback(T, "db", 1).unwrap_err(),
        store.delete(T, "db").unwrap_err(),
        store.undelete(T, "keep").unwrap_err(),
        store.undelete(T, "none").unwrap_err(),
        store.destroy(T, "none").unwrap_err(),
    ] {
        assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    }
    // Undelete: the value and the versions come back, on every handle.
    store.undelete(T, "db").unwrap();
    assert_eq!(store.get(T, "db").unwrap().as_bytes(), b"v2");
    assert_eq!(other.get(T, "db").unwrap().as_bytes(), b"v2");
    assert_eq!(store.history(T, "db").unwrap().len(), 2);
    assert_eq!(store.info(T, "db").unwrap().deleted_at, None);
    assert_eq!(store.list(T, &deleted_query()).unwrap().total, 0);
    store.rollback(T, "db", 1).unwrap();
    assert_eq!(store.get(T, "db").unwrap().as_bytes(), b"v1");
    // Destroy a live secret, and a deleted one: nothing comes back.
    store.destroy(T, "db").unwrap();
    store.delete(T, "keep").unwrap();
    store.destroy(T, "keep").unwrap();
    for name in ["db", "keep"] {
        assert_eq!(
            store.undelete(T, name).unwrap_err().code(),
            ErrorCode::NotFound
        );
        assert_eq!(store.get(T, name).unwrap_err().code(), ErrorCode::NotFound);
    }
    assert_eq!(store.list(T, &deleted_query()).unwrap().total, 0);
    assert_eq!(store.list(T, &ListQuery::default()).unwrap().total, 0);
    // Destroy keeps the IN_USE check of a live secret; a deleted one may be destroyed.
    store.create(T, "api", SecretType::Text, b"a", "").unwrap();
    store.track_references(T, "node", "${secret:api}").unwrap();
    assert_eq!(
        store.destroy(T, "api").unwrap_err().code(),
        ErrorCode::InUse
    );
    assert_eq!(store.delete(T, "api").unwrap_err().code(), ErrorCode::InUse);
    store.delete_with(T, "api", true).unwrap();
    store.destroy(T, "api").unwrap();
}

/// A source resolving `device-{{metadata.deviceName}}-token` per message uses every secret
/// that pattern can be filled to: delete and destroy refuse them (IN_USE, naming it) as
/// `where_used` lists it, force deletes anyway, and other names are not held.
fn per_message_patterns_keep_the_names_they_can_fill_in_use(h: &Harness) {
    let store = h.open();
    for name in ["device-7-token", "device-8-token", "gateway-token"] {
        store.create(T, name, SecretType::Text, b"v", "").unwrap();
    }
    store
        .track_references(
            T,
            "rule-node-1",
            r#"{"auth":"Bearer ${secret:device-{{metadata.deviceName}}-token}"}"#,
        )
        .unwrap();
    store
        .track_references(T, "rule-node-2", "${secret:device-8-token}")
        .unwrap();
    let used_by: Vec<String> = store
        .where_used(T, "device-7-token")
        .unwrap()
        .into_iter()
        .map(|r| r.source_id)
        .collect();
    assert_eq!(used_by, ["rule-node-1"]);

    let err = store.delete(T, "device-7-token").unwrap_err();
    assert_eq!(err.code(), ErrorCode::InUse);
    assert!(err.message().contains("rule-node-1"), "{err}");
    assert_eq!(
        store.destroy(T, "device-7-token").unwrap_err().code(),
        ErrorCode::InUse
    );
    assert_eq!(store.get(T, "device-7-token").unwrap().as_bytes(), b"v");
    // By name and by pattern: both sources are named.
    let err = store.delete(T, "device-8-token").unwrap_err();
    assert!(
        err.message().contains("rule-node-1") && err.message().contains("rule-node-2"),
        "{err}"
    );
    store.delete(T, "gateway-token").unwrap();
    store.delete_with(T, "device-7-token", true).unwrap();
    assert_eq!(
        store.get(T, "device-7-token").unwrap_err().code(),
        ErrorCode::NotFound
    );
    // A deleted secret may be destroyed whatever references it.
    store.destroy(T, "device-7-token").unwrap();
}

fn deleted_names_are_reserved_until_destroyed(h: &Harness) {
    let store = h.open();
    store.create(T, "n", SecretType::Text, b"old", "").unwrap();
    store.delete(T, "n").unwrap();
    let err = store
        .create(T, "n", SecretType::Text, b"new", "")
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::AlreadyExists);
    assert!(err.message().contains("undelete"), "{err}");
    assert!(err.message().contains("destroy"), "{err}");
    store.destroy(T, "n").unwrap();
    store.create(T, "n", SecretType::Text, b"new", "").unwrap();
    assert_eq!(store.get(T, "n").unwrap().as_bytes(), b"new");
    assert_eq!(
        store.history(T, "n").unwrap().len(),
        1,
        "no old version came back"
    );
    // A live name still says only that it exists.
    let live = store
        .create(T, "n", SecretType::Text, b"x", "")
        .unwrap_err();
    assert!(!live.message().contains("undelete"), "{live}");
}

/// Waits (on the clock, not on another thread) until the millisecond clock passed `at`.
fn clock_past(at: i64) {
    while tbsecrets::model::now_millis() <= at {
        std::thread::yield_now();
    }
}

fn retention_purge_on_open_and_on_delete(h: &Harness) {
    let with_retention = |retention: Duration| {
        let mut options = StorageOptions::with_master_key(h.key.clone());
        options.deleted_retention = retention;
        SecretStorage::open(&h.location, options).unwrap()
    };
    let month = with_retention(Duration::from_secs(30 * 24 * 3600));
    for name in ["a", "b", "c", "d"] {
        month.create(T, name, SecretType::Text, b"v", "").unwrap();
    }
    month.delete(T, "a").unwrap();
    // Opening with the default retention keeps it; opening with none purges it.
    drop(with_retention(Duration::from_secs(24 * 3600)));
    assert_eq!(names(month.list(T, &deleted_query()).unwrap()), ["a"]);
    drop(with_retention(Duration::ZERO));
    assert_eq!(month.list(T, &deleted_query()).unwrap().total, 0);
    assert_eq!(
        month.undelete(T, "a").unwrap_err().code(),
        ErrorCode::NotFound
    );
    month
        .create(T, "a", SecretType::Text, b"again", "")
        .unwrap();
    // A zero retention: delete erases at once.
    let none = with_retention(Duration::ZERO);
    none.delete(T, "b").unwrap();
    assert_eq!(none.list(T, &deleted_query()).unwrap().total, 0);
    assert_eq!(
        month.undelete(T, "b").unwrap_err().code(),
        ErrorCode::NotFound
    );
    // A delete purges what expired meanwhile, in its own commit.
    let short = with_retention(Duration::from_millis(1));
    month.delete(T, "c").unwrap();
    let deleted_c = month.list(T, &deleted_query()).unwrap().items[0]
        .deleted_at
        .unwrap();
    clock_past(deleted_c + 1);
    short.delete(T, "d").unwrap();
    assert_eq!(names(month.list(T, &deleted_query()).unwrap()), ["d"]);
}

fn rotation_keeps_deleted_secrets_recoverable(h: &Harness) {
    let store = h.open();
    store.create(T, "s", SecretType::Text, b"v1", "").unwrap();
    store.update_value(T, "s", b"v2", None).unwrap();
    store.delete(T, "s").unwrap();
    store.rotate_tenant_key(T).unwrap();
    store.undelete(T, "s").unwrap();
    assert_eq!(store.get(T, "s").unwrap().as_bytes(), b"v2");
    store.rollback(T, "s", 1).unwrap();
    assert_eq!(store.get(T, "s").unwrap().as_bytes(), b"v1");
}
