//! Online key rotation on SQLite and PostgreSQL: readers keep reading correct values through
//! a rotation, a write made while a rotation runs survives it, an interrupted tenant-key
//! rotation leaves every value readable and a second run finishes it, keys added while a
//! master-key rotation prepares are rewrapped by its commit; and the dry runs
//! (`plan_*_rotation`): what they report, their typed errors, and that they change nothing.

#[path = "common/postgres.rs"]
mod test_postgres;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tbsecrets::{ErrorCode, MasterKey, Principal, Role, SecretStorage, SecretType, StorageOptions};
use test_postgres::postgres_url;

const T: &str = "13814000-1dd2-11b2-8080-808080808080";

/// One store location on one backend, with its key.
struct Harness {
    location: String,
    key: MasterKey,
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    fn sqlite() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        Harness {
            location: dir.path().join("store.db").to_str().unwrap().to_owned(),
            key: MasterKey::generate(),
            _dir: Some(dir),
        }
    }

    fn postgres() -> Harness {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let schema = format!(
            "rot_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let url = postgres_url();
        let sep = if url.contains('?') { '&' } else { '?' };
        Harness {
            location: format!("{url}{sep}schema={schema}&pool_max=4"),
            key: MasterKey::generate(),
            _dir: None,
        }
    }

    fn open_with(&self, key: &MasterKey) -> SecretStorage {
        SecretStorage::open(&self.location, StorageOptions::with_master_key(key.clone()))
            .unwrap_or_else(|e| panic!("open {}: {e}", self.location))
    }

    fn open(&self) -> SecretStorage {
        self.open_with(&self.key)
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&super::Harness::sqlite()); } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(&super::Harness::postgres()); } )*
        }
    };
}

on_both_backends!(
    tenant_rotation_while_readers_read,
    writes_during_a_tenant_rotation_survive,
    interrupted_tenant_rotation_reads_and_a_rerun_finishes,
    keys_added_while_a_master_rotation_prepares_are_rewrapped,
    plans_report_what_rotations_then_do,
    plan_errors_are_typed,
);

/// The value of secret `i` at version `v`.
fn value(i: usize, v: usize) -> Vec<u8> {
    format!("value {i} v{v}").into_bytes()
}

/// `n` secrets `s0…` in tenant `T`, each with versions 1..=`versions`.
fn fill(store: &SecretStorage, n: usize, versions: usize) {
    for i in 0..n {
        store
            .create(T, &format!("s{i}"), SecretType::Text, &value(i, 1), "")
            .unwrap();
        for v in 2..=versions {
            store
                .update_value(T, &format!("s{i}"), &value(i, v), None)
                .unwrap();
        }
    }
}

/// Every secret of `T` reads its current value (version `versions`).
fn check_all(store: &SecretStorage, n: usize, versions: usize) {
    for i in 0..n {
        let got = store.get(T, &format!("s{i}")).unwrap();
        assert_eq!(got.as_bytes(), value(i, versions), "s{i}");
    }
}

/// Every secret's version 1 still opens: rolled back to it (a new version), it reads as written.
fn check_first_versions(store: &SecretStorage, n: usize) {
    for i in 0..n {
        let name = format!("s{i}");
        store.rollback(T, &name, 1).unwrap();
        assert_eq!(
            store.get(T, &name).unwrap().as_bytes(),
            value(i, 1),
            "{name} v1"
        );
    }
}

fn tenant_rotation_while_readers_read(h: &Harness) {
    // 300 secrets × 2 versions: three batches of 256.
    let store = Arc::new(h.open());
    fill(&store, 300, 2);
    let other = Arc::new(h.open()); // another handle on the same store
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = [store.clone(), store.clone(), other.clone()]
        .into_iter()
        .enumerate()
        .map(|(r, reader)| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut reads = 0usize;
                while !stop.load(Ordering::Relaxed) || reads < 100 {
                    let i = (reads * 7 + r) % 300;
                    let got = reader.get(T, &format!("s{i}")).unwrap();
                    assert_eq!(got.as_bytes(), value(i, 2));
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let report = store.rotate_tenant_key(T).unwrap();
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().unwrap() >= 100);
    }
    assert_eq!((report.keys, report.versions, report.key_id), (1, 600, 2));
    check_all(&store, 300, 2);
    check_all(&h.open(), 300, 2);
    check_first_versions(&store, 300);
}

fn writes_during_a_tenant_rotation_survive(h: &Harness) {
    let store = h.open();
    fill(&store, 300, 2);
    let writer = h.open(); // another handle writes while the rotation runs
    let mut calls = 0;
    let report = store
        .rotate_tenant_key_with_progress(T, &mut |done, _| {
            calls += 1;
            if calls == 1 {
                assert_eq!(done, 256, "the first batch is committed");
                // In (name, version) order s0 was re-encrypted already, s299, s98 and s99 not
                // yet; s98 is destroyed, s99 deleted (recoverable, so still re-encrypted).
                writer.update_value(T, "s0", b"updated 0", None).unwrap();
                writer
                    .update_value(T, "s299", b"updated 299", None)
                    .unwrap();
                writer.destroy(T, "s98").unwrap();
                writer.delete_with(T, "s99", true).unwrap();
                writer
                    .create(T, "new", SecretType::Text, b"created meanwhile", "")
                    .unwrap();
            }
        })
        .unwrap();
    assert!(calls >= 3);
    // 600 versions, two of them (s98's) destroyed before their batch; the deleted s99's are
    // re-encrypted like the live ones.
    assert_eq!(report.versions, 598);
    for reader in [&store, &h.open()] {
        assert_eq!(reader.get(T, "s0").unwrap().as_bytes(), b"updated 0");
        assert_eq!(reader.get(T, "s299").unwrap().as_bytes(), b"updated 299");
        assert_eq!(
            reader.get(T, "new").unwrap().as_bytes(),
            b"created meanwhile"
        );
        for gone in ["s98", "s99"] {
            assert_eq!(reader.get(T, gone).unwrap_err().code(), ErrorCode::NotFound);
        }
        assert_eq!(reader.get(T, "s100").unwrap().as_bytes(), value(100, 2));
    }
    // The deleted secret comes back readable under the new key, with its old versions.
    store.undelete(T, "s99").unwrap();
    assert_eq!(h.open().get(T, "s99").unwrap().as_bytes(), value(99, 2));
    store.rollback(T, "s99", 1).unwrap();
    assert_eq!(h.open().get(T, "s99").unwrap().as_bytes(), value(99, 1));
    // Nothing is left under the old key: a dry run sees every version, a rerun resealing
    // them all again under key 3.
    assert_eq!(store.plan_tenant_key_rotation(T).unwrap().key_id, 3);
    assert_eq!(store.rotate_tenant_key(T).unwrap().versions, 602);
    check_first_versions(&store, 10);
}

fn interrupted_tenant_rotation_reads_and_a_rerun_finishes(h: &Harness) {
    let store = h.open();
    fill(&store, 200, 3); // 600 versions
                          // Interrupted after the first batch (the progress callback panics there).
    let interrupted = catch_unwind(AssertUnwindSafe(|| {
        store.rotate_tenant_key_with_progress(T, &mut |_, _| panic!("interrupted"))
    }));
    assert!(interrupted.is_err());
    // Mixed: 256 versions under the new key 2, the rest under key 1; all read correctly,
    // on this handle and on a new one.
    check_all(&store, 200, 3);
    check_all(&h.open(), 200, 3);
    let report = store.rotate_tenant_key(T).unwrap();
    assert_eq!((report.versions, report.key_id), (600, 3));
    check_all(&h.open(), 200, 3);
    check_first_versions(&h.open(), 200);
}

fn keys_added_while_a_master_rotation_prepares_are_rewrapped(h: &Harness) {
    let store = h.open();
    for t in 0..300 {
        store
            .create(&format!("t{t}"), "s", SecretType::Text, b"before", "")
            .unwrap();
    }
    let other = h.open(); // another handle, still on the old key
    let new_key = MasterKey::generate();
    let mut added = false;
    let report = store
        .rotate_master_key_with_progress(&new_key, &mut |_, _| {
            if !added {
                // While the keys are rewrapped in memory: a new tenant gets its first key.
                other
                    .create("late", "s", SecretType::Text, b"added meanwhile", "")
                    .unwrap();
                added = true;
            }
        })
        .unwrap();
    assert!(added);
    assert_eq!((report.keys, report.key_id), (301, 2));
    drop((store, other));
    let reopened = h.open_with(&new_key);
    assert_eq!(
        reopened.get("late", "s").unwrap().as_bytes(),
        b"added meanwhile"
    );
    assert_eq!(reopened.get("t299", "s").unwrap().as_bytes(), b"before");
    let old = SecretStorage::open(&h.location, StorageOptions::with_master_key(h.key.clone()));
    assert_eq!(old.unwrap_err().code(), ErrorCode::WrongMasterKey);
}

fn plans_report_what_rotations_then_do(h: &Harness) {
    let store = h.open();
    fill(&store, 10, 3);
    store.create("u", "x", SecretType::Text, b"x", "").unwrap();
    let plan = store.plan_tenant_key_rotation(T).unwrap();
    assert_eq!(
        (
            plan.tenants,
            plan.keys,
            plan.secrets,
            plan.versions,
            plan.key_id,
            plan.sampled
        ),
        (1, 1, 10, 30, 2, 30)
    );
    assert_eq!(
        store.plan_tenant_key_rotation(T).unwrap().key_id,
        2,
        "nothing created"
    );
    let master = store.plan_master_key_rotation().unwrap();
    assert_eq!(
        (
            master.tenants,
            master.keys,
            master.secrets,
            master.versions,
            master.key_id
        ),
        (2, 2, 0, 0, 2)
    );
    let report = store.rotate_tenant_key(T).unwrap();
    assert_eq!(
        (report.versions, report.key_id),
        (plan.versions, plan.key_id)
    );
    // T has two data keys now: both are rewrapped.
    assert_eq!(store.plan_master_key_rotation().unwrap().keys, 3);
    let report = store.rotate_master_key(&MasterKey::generate()).unwrap();
    assert_eq!((report.keys, report.key_id), (3, master.key_id));
    check_all(&store, 10, 3);
}

fn plan_errors_are_typed(h: &Harness) {
    let store = h.open();
    store.create(T, "a", SecretType::Text, b"a", "").unwrap();
    let unknown = store.plan_tenant_key_rotation("nobody").unwrap_err();
    assert_eq!(unknown.code(), ErrorCode::NotFound, "{unknown}");
    assert_eq!(
        store.rotate_tenant_key("nobody").unwrap_err().code(),
        ErrorCode::NotFound
    );
    assert_eq!(
        store.plan_tenant_key_rotation("").unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
    let admin = store.session(Principal::new(T, Role::TenantAdmin));
    assert_eq!(admin.plan_tenant_key_rotation(T).unwrap().versions, 1);
    assert_eq!(
        admin.plan_master_key_rotation().unwrap_err().code(),
        ErrorCode::PermissionDenied
    );
    let intruder = store.session(Principal::new("other", Role::TenantAdmin));
    assert_eq!(
        intruder.plan_tenant_key_rotation(T).unwrap_err().code(),
        ErrorCode::PermissionDenied
    );
    let service = store.session(Principal::new(T, Role::Service));
    assert_eq!(
        service.plan_tenant_key_rotation(T).unwrap_err().code(),
        ErrorCode::PermissionDenied
    );
    let sys = store.session(Principal::new(T, Role::SysAdmin));
    assert_eq!(sys.plan_master_key_rotation().unwrap().keys, 1);
}
