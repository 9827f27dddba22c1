//! "At most every N milliseconds", shared by threads without a lock: batched work on the
//! hot path (usage counters, audit records) is started by whichever caller first sees it due.

use std::sync::atomic::{AtomicI64, Ordering};

/// A lock-free timer that lets one caller through per interval.
#[derive(Debug)]
pub(crate) struct Throttle {
    last: AtomicI64,
    every_ms: i64,
}

impl Throttle {
    /// A throttle whose first interval starts at `now` (ms).
    pub fn new(every_ms: i64, now: i64) -> Throttle {
        Throttle {
            last: AtomicI64::new(now),
            every_ms,
        }
    }

    /// True for exactly one caller once `every_ms` passed since the last one let through.
    #[inline]
    pub fn due(&self, now: i64) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        now - last >= self.every_ms
            && self
                .last
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lets_one_caller_through_per_interval() {
        let throttle = Throttle::new(100, 1_000);
        assert!(!throttle.due(1_050));
        assert!(throttle.due(1_100));
        assert!(!throttle.due(1_100), "only once");
        assert!(!throttle.due(1_199));
        assert!(throttle.due(1_200));
    }
}
