//! A step counter for the linear-time tests: every loop of the scanners reports how many bytes
//! it examined. Outside `cfg(test)` [`step`] compiles to nothing.

#[cfg(test)]
use std::cell::Cell;

#[cfg(test)]
thread_local! {
    /// Bytes examined on this thread since the last [`count`] began.
    static STEPS: Cell<u64> = const { Cell::new(0) };
}

/// Records that `bytes` bytes (or characters, or loop rounds) were examined.
#[inline(always)]
pub(crate) fn step(bytes: usize) {
    #[cfg(test)]
    STEPS.with(|steps| steps.set(steps.get().saturating_add(bytes as u64)));
    #[cfg(not(test))]
    let _ = bytes;
}

/// Runs `f` and returns its result with the number of steps it recorded on this thread.
#[cfg(test)]
pub(crate) fn count<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = STEPS.with(Cell::get);
    let result = f();
    (result, STEPS.with(Cell::get) - before)
}
