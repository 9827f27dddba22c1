//! A cheap wall clock for usage timestamps on the hot path.

/// Milliseconds since the Unix epoch from the coarse real-time clock (a few ns, ~4 ms
/// resolution), falling back to the precise clock.
#[inline]
pub fn coarse_now_millis() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0 {
        ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
    } else {
        crate::model::now_millis()
    }
}
