//! Flat combining of deferred changes on the one write connection.
//!
//! Handing the write connection from one change to the next costs a wake-up: the thread that
//! releases it wakes the next one waiting, which then needs a CPU, and the connection stands
//! idle meanwhile (30–40 µs a change on the 2-vCPU machine; CONTRIBUTING.md, "Combining").
//!
//! So a change does not wait for the connection: it queues its work ([`ChangeFn`]) and the
//! change that holds the connection, the *combiner*, runs the queued work of the others one
//! after another, each as its own change in the open batch (`group_commit.rs`), before it lets
//! the connection go. A change whose work another thread ran wakes up once, with its outcome,
//! off the connection's path. The combiner runs at most [`MAX_COMBINED`] changes, then passes
//! the role to the oldest change still queued, so no caller serves others for long. A change
//! that must run on its own thread (it may call a key provider outside the process, which the
//! store calls on the thread of the store call) gets the role when its turn comes, in queue
//! order, and runs itself.
//!
//! A change's work runs on the combiner's thread while its own thread waits for it, so it
//! must be `Send` (it borrows from the waiting thread's stack, which outlives the run). A
//! panic in it is caught on the combiner's thread and resumed on the change's own; the
//! combiner goes on with the next.

use super::group_commit::GroupCommit;
use super::SqliteStore;
use crate::error::{Error, Result};
use crate::store::{ChangeFn, Store};
use parking_lot::Mutex;
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread::Thread;

/// A combiner runs at most this many changes (its own included) before it passes the role on.
pub const MAX_COMBINED: usize = 32;

/// What running a change gave: its ticket (or error), or its panic.
type Outcome = std::thread::Result<Result<Option<u64>>>;

/// The changes queued for the combiner, and whether there is one.
#[derive(Debug, Default)]
pub struct Combiner {
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    /// Whether a change is the combiner now (runs, or is about to run, the queued changes).
    active: bool,
    waiting: VecDeque<RequestRef>,
}

/// A queued change, on the stack of the thread that waits for it.
struct Request<'a> {
    scope: &'a str,
    /// Its work may run on the combiner's thread; if not, the combiner passes the role to it.
    anywhere: bool,
    work: UnsafeCell<&'a mut ChangeFn<'a>>,
    outcome: UnsafeCell<Option<Outcome>>,
    /// [`QUEUED`], then [`DONE`] (its outcome is in) or [`COMBINE`] (it is the combiner now).
    state: AtomicU8,
    thread: Thread,
}

const QUEUED: u8 = 0;
const DONE: u8 = 1;
const COMBINE: u8 = 2;

/// A pointer to a queued [`Request`], whose thread waits until the request leaves
/// [`QUEUED`] and touches it only after that (the lifetime is erased for the queue).
#[derive(Debug)]
struct RequestRef(NonNull<Request<'static>>);

// SAFETY: a request is reached through the queue by one combiner at a time, while the thread
// that owns it waits for it; its work is `Send`, and its other fields are `Sync`/`Send`.
unsafe impl Send for RequestRef {}

impl Combiner {
    /// Runs `work` as one deferred change on the write connection `conn`
    /// ([`Store::with_write_lock_deferred`] under `scope`): queues it when a combiner is
    /// active (it then runs on the combiner's thread), else becomes the combiner and runs it,
    /// then the changes queued meanwhile. A queued change counts as waiting for the
    /// connection in `group` (an open batch stays open for it while a sync runs). Its ticket.
    ///
    /// `anywhere` says whether `work` may run on another thread; it is asked under the
    /// queue's lock, so a change queued after something that made it false (a rotation to a
    /// provider outside the process staging its key) runs after it, on its own thread.
    pub fn run(
        &self,
        scope: &str,
        work: &mut ChangeFn<'_>,
        anywhere: &dyn Fn() -> bool,
        conn: &Mutex<SqliteStore>,
        group: &GroupCommit,
    ) -> Result<Option<u64>> {
        let mut queue = self.queue.lock();
        // Asked before the change counts as waiting, so that a panic here leaves no count.
        let request = Request {
            scope,
            anywhere: anywhere(),
            work: UnsafeCell::new(work),
            outcome: UnsafeCell::new(None),
            state: AtomicU8::new(QUEUED),
            thread: std::thread::current(),
        };
        group.waits();
        let combine = if queue.active {
            queue
                .waiting
                .push_back(RequestRef(NonNull::from(&request).cast()));
            drop(queue);
            loop {
                match request.state.load(Ordering::Acquire) {
                    DONE => break false,
                    COMBINE => break true,
                    _ => std::thread::park(),
                }
            }
        } else {
            queue.active = true;
            drop(queue);
            true
        };
        if combine {
            self.combine(&request, conn, group);
        }
        // SAFETY: the request is DONE (the combiner wrote its outcome before) or this thread
        // ran it: nobody else touches it any more.
        match unsafe { (*request.outcome.get()).take() } {
            Some(Ok(outcome)) => outcome,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Err(Error::internal(
                "a queued change came back without its outcome",
            )),
        }
    }

    /// The combiner's turn: runs `own`, then queued changes until none is left, the next one
    /// must run on its own thread, or [`MAX_COMBINED`] ran; hands the role to that next one
    /// in the two latter cases, once the connection is free.
    fn combine(&self, own: &Request<'_>, conn: &Mutex<SqliteStore>, group: &GroupCommit) {
        let mut conn = conn.lock();
        let own = NonNull::from(own);
        let mut request = own;
        let mut ran = 0;
        let heir = loop {
            // SAFETY: `own` is this thread's; a queued request's thread waits for it until its
            // state leaves QUEUED, which happens below after the last use of `current`.
            let current = unsafe { request.as_ref() };
            group.arrived();
            // SAFETY: only this combiner reaches the request's work and outcome now.
            let work: &mut ChangeFn<'_> = unsafe { &mut **current.work.get() };
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                conn.with_write_lock_deferred(current.scope, work)
            }));
            // SAFETY: as above; its thread reads the outcome only after DONE (or after its
            // own turn as combiner ends).
            unsafe { *current.outcome.get() = Some(outcome) };
            ran += 1;
            if request != own {
                let thread = current.thread.clone();
                current.state.store(DONE, Ordering::Release);
                thread.unpark();
            }
            let mut queue = self.queue.lock();
            let Some(RequestRef(next)) = queue.waiting.pop_front() else {
                queue.active = false;
                break None;
            };
            // SAFETY: a queued request's thread waits for it (see RequestRef).
            let on_its_thread = !unsafe { next.as_ref() }.anywhere;
            if ran >= MAX_COMBINED || on_its_thread {
                break Some(next);
            }
            request = next.cast();
        };
        drop(conn);
        if let Some(heir) = heir {
            // SAFETY: a queued request's thread waits for it (see RequestRef); the role
            // (`Queue::active` still set) passes to it.
            let heir = unsafe { heir.as_ref() };
            let thread = heir.thread.clone();
            heir.state.store(COMBINE, Ordering::Release);
            thread.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use std::sync::atomic::AtomicBool;
    use std::thread::ThreadId;

    /// A combiner over a store's write connection; each change's work records the thread it
    /// ran on and sets metadata of its own name.
    struct Harness {
        _dir: tempfile::TempDir,
        conn: Mutex<SqliteStore>,
        group: std::sync::Arc<GroupCommit>,
        combiner: Combiner,
        /// The threads the changes ran on, by change name, in the order they ran.
        ran: Mutex<Vec<(&'static str, ThreadId)>>,
    }

    impl Harness {
        fn new() -> Harness {
            let dir = tempfile::tempdir().unwrap();
            let store = SqliteStore::open(
                &dir.path().join("combine.db"),
                &super::super::SqliteOptions::default(),
            )
            .unwrap();
            Harness {
                _dir: dir,
                group: store.group.clone(),
                conn: Mutex::new(store),
                combiner: Combiner::default(),
                ran: Mutex::new(Vec::new()),
            }
        }

        /// Runs change `name`, whose work runs `work` first: its outcome.
        fn change(
            &self,
            name: &'static str,
            mut work: impl FnMut() -> Result<()> + Send,
        ) -> Result<Option<u64>> {
            let mut change = |tx: &mut dyn Store| {
                self.ran.lock().push((name, std::thread::current().id()));
                work()?;
                tx.put_meta(name, b"v")
            };
            self.combiner.run(
                name,
                &mut change,
                &|| name != "own",
                &self.conn,
                &self.group,
            )
        }

        fn queued(&self) -> usize {
            self.combiner.queue.lock().waiting.len()
        }

        /// Yields until `n` changes are queued behind the combiner.
        fn until_queued(&self, n: usize) {
            while self.queued() < n {
                std::thread::yield_now();
            }
        }
    }

    /// Spawns the combiner's first change, whose work holds the combiner role until
    /// `release` is set, and returns once that work runs: its thread and outcome on join.
    fn start_combiner<'s>(
        s: &'s std::thread::Scope<'s, '_>,
        harness: &'s Harness,
        release: &'s AtomicBool,
    ) -> std::thread::ScopedJoinHandle<'s, (ThreadId, Result<Option<u64>>)> {
        let combiner = s.spawn(move || {
            let gate = move || {
                while !release.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
                Ok(())
            };
            (std::thread::current().id(), harness.change("gate", gate))
        });
        while harness.ran.lock().is_empty() {
            std::thread::yield_now();
        }
        combiner
    }

    /// Spawns change `name` and returns once it is queued behind the combiner (the
    /// `position`-th).
    fn queue<'s>(
        s: &'s std::thread::Scope<'s, '_>,
        harness: &'s Harness,
        name: &'static str,
        work: impl FnMut() -> Result<()> + Send + 's,
        position: usize,
    ) -> std::thread::ScopedJoinHandle<'s, (ThreadId, Result<Option<u64>>)> {
        let queued = s.spawn(move || (std::thread::current().id(), harness.change(name, work)));
        harness.until_queued(position);
        queued
    }

    #[test]
    fn queued_changes_run_on_the_combiners_thread_and_each_gets_its_own_outcome() {
        let harness = Harness::new();
        let release = AtomicBool::new(false);
        std::thread::scope(|s| {
            let combiner = start_combiner(s, &harness, &release);
            let b = queue(s, &harness, "b", || Ok(()), 1);
            let c = queue(
                s,
                &harness,
                "c",
                || Err(Error::secret_not_found("t", "c")),
                2,
            );
            release.store(true, Ordering::Release);
            let (combiner_thread, own) = combiner.join().unwrap();
            let own = own.unwrap().expect("a ticket");
            assert_eq!(
                b.join().unwrap().1.unwrap(),
                Some(own + 1),
                "b's own ticket (no sync runs: each turn closes its batch)"
            );
            let err = c.join().unwrap().1.unwrap_err();
            assert_eq!(
                err.code(),
                crate::ErrorCode::NotFound,
                "c's error comes back to c"
            );
            let ran = harness.ran.lock().clone();
            let order: Vec<_> = ran.iter().map(|(name, _)| *name).collect();
            assert_eq!(order, ["gate", "b", "c"], "in the order they queued");
            assert!(
                ran.iter().all(|(_, thread)| *thread == combiner_thread),
                "all on the combiner's thread: {ran:?}"
            );
        });
        assert!(!harness.combiner.queue.lock().active, "no combiner left");
    }

    #[test]
    fn a_panic_in_a_queued_change_comes_back_on_its_thread_and_the_combiner_goes_on() {
        let harness = Harness::new();
        let release = AtomicBool::new(false);
        std::thread::scope(|s| {
            let combiner = start_combiner(s, &harness, &release);
            let b = queue(s, &harness, "b", || panic!("b panicked"), 1);
            let c = queue(s, &harness, "c", || Ok(()), 2);
            release.store(true, Ordering::Release);
            combiner.join().unwrap().1.unwrap();
            let panic = b.join().unwrap_err();
            assert_eq!(panic.downcast_ref::<&str>(), Some(&"b panicked"));
            c.join().unwrap().1.unwrap();
            let order: Vec<_> = harness.ran.lock().iter().map(|(name, _)| *name).collect();
            assert_eq!(order, ["gate", "b", "c"], "c ran after b's panic");
        });
        assert!(!harness.combiner.queue.lock().active);
    }

    /// A change that must run on its own thread (the harness's "own": it may call a key
    /// provider outside the process) is not run by the combiner: it gets the role in its turn,
    /// runs itself, and runs the changes queued after it.
    #[test]
    fn a_change_that_must_run_on_its_thread_gets_the_role_in_its_turn() {
        let harness = Harness::new();
        let release = AtomicBool::new(false);
        std::thread::scope(|s| {
            let combiner = start_combiner(s, &harness, &release);
            let b = queue(s, &harness, "b", || Ok(()), 1);
            let own = queue(s, &harness, "own", || Ok(()), 2);
            let c = queue(s, &harness, "c", || Ok(()), 3);
            release.store(true, Ordering::Release);
            let combiner_thread = combiner.join().unwrap().0;
            let (b, own, c) = (b.join().unwrap(), own.join().unwrap(), c.join().unwrap());
            for (_, outcome) in [&b, &own, &c] {
                assert!(outcome.as_ref().unwrap().is_some());
            }
            let ran = harness.ran.lock().clone();
            let expected = [
                ("gate", combiner_thread),
                ("b", combiner_thread),
                ("own", own.0),
                ("c", own.0),
            ];
            assert_eq!(
                ran, expected,
                "b by the combiner; own, then c, on own's thread"
            );
            assert_ne!(own.0, combiner_thread);
        });
        assert!(!harness.combiner.queue.lock().active);
    }

    /// Whether a change may run elsewhere is asked before it counts as waiting for the
    /// connection: when the question panics (a Rust key provider's `in_process`), no count is
    /// left behind to keep later batches open during every sync, and no combiner role either.
    #[test]
    fn a_panic_asking_where_a_change_may_run_leaves_no_waiting_count_and_no_combiner() {
        let harness = Harness::new();
        let mut change = |tx: &mut dyn Store| tx.put_meta("p", b"v");
        let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
            harness.combiner.run(
                "p",
                &mut change,
                &|| panic!("in_process panicked"),
                &harness.conn,
                &harness.group,
            )
        }));
        let panic = panicked.expect_err("the panic reaches the caller");
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"in_process panicked"));
        assert_eq!(
            harness.group.waiting_count(),
            0,
            "no change counted as waiting"
        );
        assert!(!harness.combiner.queue.lock().active, "no combiner left");
        assert_eq!(harness.queued(), 0, "nothing queued");
        let next = harness.change("next", || Ok(())).unwrap();
        assert!(next.is_some(), "the next change runs and gets a ticket");
        assert_eq!(harness.group.waiting_count(), 0);
    }

    #[test]
    fn the_combiner_passes_the_role_on_after_max_combined_changes() {
        let harness = Harness::new();
        let release = AtomicBool::new(false);
        std::thread::scope(|s| {
            let combiner = start_combiner(s, &harness, &release);
            let queued: Vec<_> = (1..=MAX_COMBINED)
                .map(|n| queue(s, &harness, "other", || Ok(()), n))
                .collect();
            release.store(true, Ordering::Release);
            let (combiner_thread, own) = combiner.join().unwrap();
            own.unwrap();
            let outcomes: Vec<_> = queued.into_iter().map(|t| t.join().unwrap()).collect();
            let heir = outcomes.last().unwrap().0;
            for (_, outcome) in &outcomes {
                assert!(outcome.as_ref().unwrap().is_some());
            }
            let ran = harness.ran.lock().clone();
            let on_combiner = ran.iter().filter(|(_, t)| *t == combiner_thread).count();
            assert_eq!(
                on_combiner, MAX_COMBINED,
                "the combiner ran {MAX_COMBINED}, its own included"
            );
            assert_eq!(
                ran.last().unwrap().1,
                heir,
                "the last queued change ran itself"
            );
        });
        assert!(!harness.combiner.queue.lock().active);
    }
}
