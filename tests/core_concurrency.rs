//! One store, several handles and threads: caches of other handles are invalidated by
//! commits, and readers racing writers only ever see complete, correctly versioned values.

mod common;

use common::{expect_code, Fixture, TENANT};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use tbsecrets::{ErrorCode, ListQuery, SecretStorage, SecretType};

#[test]
fn another_handles_writes_invalidate_the_cache() {
    let f = Fixture::new();
    let a = &f.store;
    let b = f.reopen();

    b.create(TENANT, "s", SecretType::Text, b"v1", "").unwrap();
    let got = a.get(TENANT, "s").unwrap();
    assert_eq!((got.version(), got.as_bytes()), (1, &b"v1"[..]));
    assert_eq!(a.get(TENANT, "s").unwrap().as_bytes(), b"v1"); // now cached

    b.update_value(TENANT, "s", b"v2", None).unwrap();
    let got = a.get(TENANT, "s").unwrap();
    assert_eq!((got.version(), got.as_bytes()), (2, &b"v2"[..]));

    b.rollback(TENANT, "s", 1).unwrap();
    let got = a.get(TENANT, "s").unwrap();
    assert_eq!((got.version(), got.as_bytes()), (3, &b"v1"[..]));

    b.delete(TENANT, "s").unwrap();
    expect_code(a.get(TENANT, "s"), ErrorCode::NotFound);
    b.undelete(TENANT, "s").unwrap();
    let got = a.get(TENANT, "s").unwrap();
    assert_eq!((got.version(), got.as_bytes()), (3, &b"v1"[..]));
    b.destroy(TENANT, "s").unwrap();
    expect_code(a.get(TENANT, "s"), ErrorCode::NotFound);

    // Re-created with another type: A sees the new secret, not a ghost of the old one.
    b.create(TENANT, "s", SecretType::TextFile, b"\x00file", "")
        .unwrap();
    let got = a.get(TENANT, "s").unwrap();
    assert_eq!(got.secret_type(), SecretType::TextFile);
    assert_eq!((got.version(), got.as_bytes()), (1, &b"\x00file"[..]));

    // A secret A looked for in vain appears once B creates it.
    expect_code(a.get(TENANT, "late"), ErrorCode::NotFound);
    b.create(TENANT, "late", SecretType::Text, b"here", "")
        .unwrap();
    assert_eq!(a.get(TENANT, "late").unwrap().as_bytes(), b"here");
}

/// A's own commit between B's commit and A's next read must not hide B's change.
#[test]
fn a_local_write_does_not_mask_a_foreign_one() {
    let f = Fixture::new();
    let a = &f.store;
    let b = f.reopen();
    a.create(TENANT, "x", SecretType::Text, b"x1", "").unwrap();
    a.create(TENANT, "y", SecretType::Text, b"y1", "").unwrap();
    assert_eq!(a.get(TENANT, "x").unwrap().as_bytes(), b"x1");
    assert_eq!(b.get(TENANT, "y").unwrap().as_bytes(), b"y1");

    b.update_value(TENANT, "x", b"x2", None).unwrap(); // foreign commit
    a.update_value(TENANT, "y", b"y2", None).unwrap(); // local commit
    assert_eq!(a.get(TENANT, "x").unwrap().as_bytes(), b"x2");
    assert_eq!(b.get(TENANT, "y").unwrap().as_bytes(), b"y2");

    // Many alternations, each read straight after the other handle's write.
    for i in 0..100u32 {
        let (writer, reader) = if i % 2 == 0 { (&b, a) } else { (a, &b) };
        let value = format!("round {i}");
        writer
            .update_value(TENANT, "x", value.as_bytes(), None)
            .unwrap();
        let got = reader.get(TENANT, "x").unwrap();
        assert_eq!(got.as_bytes(), value.as_bytes(), "round {i}");
        assert_eq!(got.version(), u64::from(i) + 3);
    }
}

/// A's own usage flush (which keeps A's cache) must not hide B's commit: neither one that
/// came just before the flush nor one that landed while it committed. A thread of A reads and
/// flushes without pause while B writes; after each of B's writes, A reads the new value.
#[test]
fn a_usage_flush_does_not_mask_a_foreign_commit() {
    let f = Fixture::new();
    let a = &f.store;
    let b = f.reopen();
    a.create(TENANT, "busy", SecretType::Text, b"used", "")
        .unwrap();
    a.create(TENANT, "x", SecretType::Text, b"x0", "").unwrap();
    assert_eq!(a.get(TENANT, "x").unwrap().as_bytes(), b"x0");

    // Deterministic order first: B's write, then A's flush (of a use counted before), then
    // A's read.
    a.get(TENANT, "busy").unwrap();
    b.update_value(TENANT, "x", b"x1", None).unwrap();
    a.flush_usage().unwrap();
    assert_eq!(a.get(TENANT, "x").unwrap().as_bytes(), b"x1");

    /// Stops the flushing thread when dropped, also when an assertion fails (the scope would
    /// otherwise wait for it forever).
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Acquire) {
                a.get(TENANT, "busy").unwrap();
                a.flush_usage().unwrap();
            }
        });
        let _stop = StopOnDrop(&stop);
        for i in 2..100u32 {
            let value = format!("x{i}");
            b.update_value(TENANT, "x", value.as_bytes(), None).unwrap();
            let got = a.get(TENANT, "x").unwrap();
            assert_eq!(got.as_bytes(), value.as_bytes(), "round {i}");
        }
    });
}

/// Three handles, each reading what the others wrote, in every order.
#[test]
fn several_handles_agree() {
    let f = Fixture::new();
    let handles: Vec<SecretStorage> = (0..3).map(|_| f.reopen()).collect();
    handles[0]
        .create(TENANT, "k", SecretType::Text, b"0", "")
        .unwrap();
    for round in 1..=30u64 {
        let writer = &handles[(round % 3) as usize];
        writer
            .update_value(TENANT, "k", round.to_string().as_bytes(), Some(round))
            .unwrap();
        for h in handles.iter().chain([&f.store]) {
            let got = h.get(TENANT, "k").unwrap();
            assert_eq!(got.as_bytes(), round.to_string().as_bytes());
            assert_eq!(got.version(), round + 1);
        }
    }
}

const WRITERS: usize = 2;
const READERS: usize = 8;
const WRITES_PER_WRITER: usize = 60;

fn written_value(writer: usize, seq: usize) -> Vec<u8> {
    // Lengths vary, so a torn or mixed-up read would not look like any known value.
    format!(
        "writer-{writer}-seq-{seq:03}-{}",
        "#".repeat((writer * 31 + seq * 7) % 97)
    )
    .into_bytes()
}

#[test]
fn readers_racing_writers_see_only_complete_values() {
    let f = Fixture::new();
    let store = Arc::new(f.reopen());
    let initial = b"initial value".to_vec();
    let cold = common::pseudo_random_bytes(4096, 5);
    store
        .create(TENANT, "hot", SecretType::Text, &initial, "")
        .unwrap();
    store
        .create(TENANT, "cold", SecretType::TextFile, &cold, "")
        .unwrap();

    let known: Arc<HashSet<Vec<u8>>> = Arc::new(
        (0..WRITERS)
            .flat_map(|w| (0..WRITES_PER_WRITER).map(move |i| written_value(w, i)))
            .chain([initial.clone()])
            .collect(),
    );
    let start = Arc::new(Barrier::new(WRITERS + READERS));
    let writers_done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));

    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (store, known, start, done, reads, cold) = (
                store.clone(),
                known.clone(),
                start.clone(),
                writers_done.clone(),
                reads.clone(),
                cold.clone(),
            );
            std::thread::spawn(move || {
                start.wait();
                let mut seen: Vec<(u64, Vec<u8>)> = Vec::new();
                let mut last_version = 0;
                let mut iteration = 0u64;
                // Keep reading until the writers are done; the last read starts after they
                // finished, so it must see the final version.
                loop {
                    let finished = done.load(Ordering::Acquire);
                    iteration += 1;
                    let got = store
                        .get(TENANT, "hot")
                        .unwrap_or_else(|e| panic!("reader {r}: {e}"));
                    assert!(known.contains(got.as_bytes()), "reader {r}: unknown value");
                    assert!(
                        got.version() >= last_version,
                        "reader {r}: version went back from {last_version} to {}",
                        got.version()
                    );
                    last_version = got.version();
                    seen.push((got.version(), got.as_bytes().to_vec()));
                    let c = store.get(TENANT, "cold").unwrap();
                    assert!(
                        c.as_bytes() == cold.as_slice(),
                        "reader {r}: cold value differs"
                    );
                    reads.fetch_add(2, Ordering::Relaxed);
                    if iteration.is_multiple_of(64) {
                        let info = store.info(TENANT, "hot").unwrap();
                        assert!(info.version >= last_version);
                    }
                    if finished && iteration >= 50 {
                        break;
                    }
                }
                seen
            })
        })
        .collect();

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, start) = (store.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                (0..WRITES_PER_WRITER)
                    .map(|i| {
                        let value = written_value(w, i);
                        let info = store.update_value(TENANT, "hot", &value, None).unwrap();
                        assert_eq!(info.secret_type, SecretType::Text);
                        (info.version, value)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();

    let written: Vec<_> = writers.into_iter().map(|w| w.join()).collect();
    writers_done.store(true, Ordering::Release); // even if a writer failed: readers stop
    let mut by_version: HashMap<u64, Vec<u8>> = HashMap::from([(1, initial)]);
    for w in written {
        for (version, value) in w.expect("writer panicked") {
            assert!(
                by_version.insert(version, value).is_none(),
                "version {version} written twice"
            );
        }
    }
    let total_writes = WRITERS * WRITES_PER_WRITER;
    let last = 1 + total_writes as u64;
    assert_eq!(by_version.len(), total_writes + 1);
    assert!(
        (1..=last).all(|v| by_version.contains_key(&v)),
        "versions are not 1..={last}"
    );

    for r in readers {
        let seen = r.join().expect("reader panicked");
        assert_eq!(
            seen.last().map(|s| s.0),
            Some(last),
            "a read after the writes is stale"
        );
        for (version, value) in seen {
            assert_eq!(
                by_version.get(&version),
                Some(&value),
                "a read of version {version} returned another version's value"
            );
        }
    }

    let info = store.info(TENANT, "hot").unwrap();
    assert_eq!(info.version, last);
    let history = store.history(TENANT, "hot").unwrap();
    let versions: Vec<u64> = history.iter().map(|h| h.version).collect();
    let expected: Vec<u64> = (last - 9..=last).rev().collect();
    assert_eq!(versions, expected);
    // Usage counters are statistics (a use racing a write may go uncounted), but they never
    // exceed the reads made.
    store.flush_usage().unwrap();
    let fresh = f.reopen();
    let reads = reads.load(Ordering::Relaxed);
    let counted = fresh.info(TENANT, "hot").unwrap().use_count
        + fresh.info(TENANT, "cold").unwrap().use_count;
    assert!(counted <= reads, "counted {counted} uses for {reads} reads");
    assert!(
        counted >= reads / 2,
        "counted {counted} uses for {reads} reads"
    );

    let got = fresh.get(TENANT, "hot").unwrap();
    assert_eq!(
        (got.version(), got.as_bytes()),
        (last, by_version[&last].as_slice())
    );
    assert_eq!(fresh.list(TENANT, &ListQuery::default()).unwrap().total, 2);
}

/// A 128 KiB value whose first 8 bytes carry `tag`, the rest derived from it.
fn tagged_value(tag: u64) -> Vec<u8> {
    let mut value = common::pseudo_random_bytes(128 * 1024, tag);
    value[..8].copy_from_slice(&tag.to_be_bytes());
    value
}

/// Unconditional updates (`expected_version: None`) from several handles (separate
/// connections, as several processes would have) must all succeed: CONFLICT is only for a
/// caller that asked for check-and-set. Large values widen the window between reading the
/// current version and committing the next one.
#[test]
fn unconditional_updates_from_several_handles_all_succeed() {
    let f = Fixture::new();
    f.store
        .create(TENANT, "blob", SecretType::TextFile, b"", "")
        .unwrap();
    const HANDLES: u64 = 3;
    const UPDATES: u64 = 15;
    let start = Arc::new(Barrier::new(HANDLES as usize));
    let threads: Vec<_> = (0..HANDLES)
        .map(|h| {
            let store = f.reopen();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                for i in 0..UPDATES {
                    store
                        .update_value(TENANT, "blob", &tagged_value(h * 1000 + i), None)
                        .unwrap_or_else(|e| panic!("handle {h} update {i}: {e}"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer panicked");
    }
    let info = f.store.info(TENANT, "blob").unwrap();
    assert_eq!(info.version, 1 + HANDLES * UPDATES);
    let got = f.reopen().get(TENANT, "blob").unwrap();
    let tag = u64::from_be_bytes(got.as_bytes()[..8].try_into().unwrap());
    assert_eq!(
        tag % 1000,
        UPDATES - 1,
        "the last value is some handle's last write"
    );
    assert!(got.as_bytes() == tagged_value(tag).as_slice());
    assert_eq!(got.version(), info.version);
}

/// Check-and-set writers on separate handles: exactly one wins each version, the losers get
/// CONFLICT and retry with the version they re-read; nothing is lost or written twice.
#[test]
fn check_and_set_writers_on_separate_handles_serialise() {
    let f = Fixture::new();
    f.store
        .create(TENANT, "counter", SecretType::Text, b"0", "")
        .unwrap();
    const HANDLES: usize = 3;
    const INCREMENTS: usize = 30;
    let start = Arc::new(Barrier::new(HANDLES));
    let threads: Vec<_> = (0..HANDLES)
        .map(|h| {
            let store = f.reopen();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let mut conflicts = 0;
                let mut done = 0;
                while done < INCREMENTS {
                    let current = store.get(TENANT, "counter").unwrap();
                    let n: u64 = current.as_str().unwrap().parse().unwrap();
                    let next = (n + 1).to_string();
                    match store.update_value(
                        TENANT,
                        "counter",
                        next.as_bytes(),
                        Some(current.version()),
                    ) {
                        Ok(info) => {
                            assert_eq!(info.version, current.version() + 1);
                            done += 1;
                        }
                        Err(e) if e.code() == ErrorCode::Conflict => {
                            // Each conflict means another handle wrote after this handle's
                            // read, and the next read sees that write: so there are at most
                            // as many conflicts as other handles' writes. More means stale
                            // reads (and would otherwise loop forever).
                            conflicts += 1;
                            assert!(
                                conflicts <= (HANDLES - 1) * INCREMENTS,
                                "handle {h}: {conflicts} conflicts, reads are stale"
                            );
                        }
                        Err(e) => panic!("handle {h}: {e}"),
                    }
                }
                conflicts
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer panicked");
    }
    let total = (HANDLES * INCREMENTS) as u64;
    let got = f.store.get(TENANT, "counter").unwrap();
    assert_eq!(
        got.as_str().unwrap(),
        total.to_string(),
        "an increment was lost"
    );
    assert_eq!(got.version(), 1 + total);
}

/// Several connections opening the same *new* store at once (services starting together):
/// every open succeeds, one header wins and all of them use it.
#[test]
fn concurrent_first_opens_of_a_new_store_all_succeed() {
    const OPENERS: usize = 4;
    for round in 0..30 {
        let (_dir, path) = common::temp_store();
        let key = tbsecrets::MasterKey::generate();
        let start = Arc::new(Barrier::new(OPENERS));
        let threads: Vec<_> = (0..OPENERS)
            .map(|i| {
                let (start, path, key) = (start.clone(), path.clone(), key.clone());
                std::thread::spawn(move || {
                    start.wait();
                    let store = SecretStorage::open(&path, common::options(&key))?;
                    store.create(TENANT, &format!("n{i}"), SecretType::Text, b"v", "")?;
                    Ok::<_, tbsecrets::Error>(())
                })
            })
            .collect();
        for (i, t) in threads.into_iter().enumerate() {
            if let Err(e) = t.join().expect("opener panicked") {
                panic!("round {round}: opener {i} failed: {e}");
            }
        }
        let store = common::open(&path, &key);
        assert_eq!(
            store.list(TENANT, &ListQuery::default()).unwrap().total,
            OPENERS
        );
    }
}
