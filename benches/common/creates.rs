//! Durable creates per second from N threads, measured in the steady state (issue 15, goal 4):
//! the creates/s of N writers is the rate while all N write, so the window timed leaves out
//! the threads' start (the first creates, while the others are still being spawned and the
//! first batch fills) and their end (the last creates of the threads still running once the
//! others stopped, with fewer writers to share a sync).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tbsecrets::{SecretStorage, SecretType};

/// The time `iters` durable creates took from `threads` threads writing at once, each into
/// its own tenant (`t0`, `t1`, …), under names drawn from `counter`.
///
/// Every thread creates until `warm + iters` creates have returned (`warm` = two a thread);
/// the window runs from the return of create number `warm` to that of number `warm + iters`,
/// so every thread is writing throughout it. The creates still running when the window
/// closes complete outside it.
pub fn steady_creates(
    store: &SecretStorage,
    counter: &AtomicU64,
    threads: usize,
    iters: u64,
) -> Duration {
    if iters == 0 {
        return Duration::ZERO;
    }
    let warm = 2 * threads as u64;
    let last = warm + iters;
    let returned = AtomicU64::new(0);
    let (start, end) = (OnceLock::new(), OnceLock::new());
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (returned, start, end) = (&returned, &start, &end);
            scope.spawn(move || {
                let tenant = format!("t{t}");
                while returned.load(Ordering::Acquire) < last {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    store
                        .create(&tenant, &format!("s{n}"), SecretType::Text, b"v", "")
                        .expect("create");
                    let number = returned.fetch_add(1, Ordering::AcqRel) + 1;
                    if number == warm {
                        let _ = start.set(Instant::now());
                    } else if number == last {
                        let _ = end.set(Instant::now());
                    }
                }
            });
        }
    });
    let start = start
        .get()
        .expect("the threads stop after create number `last` only");
    let end = end
        .get()
        .expect("the threads stop after create number `last` only");
    end.saturating_duration_since(*start)
}
