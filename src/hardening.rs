//! Process hardening: no core dumps, and key material in locked, wiped memory.
//!
//! The CLI calls [`harden_process`] first thing; a library host asks for it with
//! [`crate::StorageOptions::harden_process`] (a JVM host should rather configure the JVM, see
//! SECURITY.md). Key holders ([`crate::MasterKey`], tenant data keys) keep their bytes and
//! prepared ciphers in a `LockedBox`: memory of its own pages, locked with `mlock` so it is
//! never swapped, excluded from core dumps (`MADV_DONTDUMP`), guarded by inaccessible pages on
//! both sides, and wiped when freed. Locking is best effort: when `RLIMIT_MEMLOCK` is exhausted
//! the memory is simply not locked, and nothing fails.

use crate::error::{Error, Result};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// Makes this process unable to dump core: `RLIMIT_CORE` 0 (soft and hard) and, on Linux,
/// `PR_SET_DUMPABLE` 0 (which also keeps other processes of the same user from attaching with
/// ptrace or reading `/proc/PID/mem` and `/proc/PID/environ`). Idempotent.
///
/// Errors (INTERNAL) only if the operating system refuses; the caller decides whether that is
/// fatal (the CLI treats it as fatal, since it promises hardening).
pub fn harden_process() -> Result<()> {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `setrlimit` reads the struct we pass; no memory is retained.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) } != 0 {
        return Err(Error::internal(format!(
            "cannot disable core dumps (setrlimit RLIMIT_CORE): {}",
            std::io::Error::last_os_error()
        )));
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: PR_SET_DUMPABLE takes one integer argument; the rest are ignored.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
            return Err(Error::internal(format!(
                "cannot disable core dumps (prctl PR_SET_DUMPABLE): {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    Ok(())
}

/// Whether the process may dump core: `false` once [`harden_process`] has run (both
/// `RLIMIT_CORE` is 0 and, on Linux, the process is not dumpable).
pub fn core_dumps_disabled() -> bool {
    let mut limit = libc::rlimit {
        rlim_cur: 1,
        rlim_max: 1,
    };
    // SAFETY: `getrlimit` writes the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) } != 0 || limit.rlim_cur != 0 {
        return false;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: PR_GET_DUMPABLE takes no arguments and returns the flag.
        if unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) } != 0 {
            return false;
        }
    }
    true
}

/// The pid in a file name of the form `<prefix><pid>-<rest>`, with `rest` for `accept` to check.
pub(crate) fn pid_in_name(name: &str, prefix: &str, accept: impl Fn(&str) -> bool) -> Option<u32> {
    let (digits, rest) = name.strip_prefix(prefix)?.split_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || !accept(rest) {
        return None;
    }
    digits.parse().ok().filter(|&pid| pid > 0)
}

/// Whether no process `pid` exists (so files named after it are leftovers of a killed run).
/// A pid that was reused counts as alive: its leftovers wait for a later run.
pub(crate) fn process_is_gone(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 || pid == std::process::id() as libc::pid_t {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is delivered.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
    !alive
}

/// Removes, best effort, the entries of `dir` named `<prefix><pid>-<rest>` (with `accept(rest)`)
/// whose process is gone and which the effective user owns: files (and symlinks) are unlinked,
/// private directories (mode 0700 or stricter, not symlinks) removed with their contents.
/// Returns how many were removed.
pub(crate) fn remove_leftovers(
    dir: &std::path::Path,
    prefix: &str,
    accept: impl Fn(&str) -> bool,
) -> usize {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    // SAFETY: `geteuid` has no preconditions.
    let me = unsafe { libc::geteuid() };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| pid_in_name(n, prefix, &accept)) else {
            continue;
        };
        if !process_is_gone(pid) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.uid() != me {
            continue;
        }
        let done = if meta.is_dir() {
            meta.mode() & 0o077 == 0 && std::fs::remove_dir_all(&path).is_ok()
        } else {
            std::fs::remove_file(&path).is_ok()
        };
        removed += usize::from(done);
    }
    removed
}

/// A value on pages of its own: locked in memory where the limit allows, left out of core
/// dumps, and wiped when dropped. Falls back to an ordinary (still wiped) heap block if the
/// guarded allocation itself fails.
pub(crate) struct LockedBox<T> {
    ptr: NonNull<T>,
    guarded: bool,
}

// SAFETY: a `LockedBox<T>` owns its `T` exactly like a `Box<T>` does.
unsafe impl<T: Send> Send for LockedBox<T> {}
// SAFETY: shared access only hands out `&T`.
unsafe impl<T: Sync> Sync for LockedBox<T> {}

impl<T> LockedBox<T> {
    /// Moves `value` into locked memory.
    pub(crate) fn new(value: T) -> LockedBox<T> {
        // SAFETY: `memsec::malloc` returns memory fit for one `T` (page-backed, with `T`'s
        // size a multiple of its alignment it ends aligned at a page end) or `None`.
        match unsafe { memsec::malloc::<T>() } {
            Some(ptr) => {
                // SAFETY: `ptr` is valid for writes of one `T` and uninitialised.
                unsafe { ptr.as_ptr().write(value) };
                LockedBox { ptr, guarded: true }
            }
            None => {
                let ptr = NonNull::from(Box::leak(Box::new(value)));
                LockedBox {
                    ptr,
                    guarded: false,
                }
            }
        }
    }
}

impl<T> Deref for LockedBox<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `ptr` holds an initialised `T` owned by `self` until drop.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> DerefMut for LockedBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` is exclusive.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T: Clone> Clone for LockedBox<T> {
    fn clone(&self) -> LockedBox<T> {
        LockedBox::new(T::clone(self))
    }
}

impl<T> Drop for LockedBox<T> {
    fn drop(&mut self) {
        let ptr = self.ptr.as_ptr();
        // SAFETY: the `T` is dropped exactly once, here; afterwards its bytes are only wiped
        // and the block released by the allocator it came from.
        unsafe {
            std::ptr::drop_in_place(ptr);
            if self.guarded {
                // `free` wipes the pages (munlock zeroes them) before releasing them.
                memsec::free(self.ptr);
            } else {
                memsec::memzero(ptr.cast::<u8>(), std::mem::size_of::<T>());
                drop(Box::from_raw(ptr.cast::<std::mem::MaybeUninit<T>>()));
            }
        }
    }
}

impl<T> fmt::Debug for LockedBox<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockedBox(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_names_carry_a_live_or_dead_pid() {
        let hex = |rest: &str| rest.len() == 4 && rest.bytes().all(|b| b.is_ascii_hexdigit());
        assert_eq!(pid_in_name("tbs-42-abcd", "tbs-", hex), Some(42));
        assert_eq!(pid_in_name("tbs-42-abcx", "tbs-", hex), None);
        assert_eq!(pid_in_name("tbs--abcd", "tbs-", hex), None);
        assert_eq!(pid_in_name("tbs-0-abcd", "tbs-", hex), None);
        assert_eq!(pid_in_name("other-42-abcd", "tbs-", hex), None);
        assert!(!process_is_gone(std::process::id()));
        assert!(!process_is_gone(1));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(process_is_gone(pid));
    }

    #[test]
    fn locked_box_holds_clones_and_drops_its_value() {
        let mut a = LockedBox::new([7u8; 32]);
        a[0] = 1;
        let b = a.clone();
        assert_eq!(b[0], 1);
        assert_eq!(b[1], 7);
        let shared = std::rc::Rc::new(());
        let holder = LockedBox::new(shared.clone());
        assert_eq!(std::rc::Rc::strong_count(&shared), 2);
        drop(holder);
        assert_eq!(std::rc::Rc::strong_count(&shared), 1);
        assert!(format!("{b:?}").contains("redacted"));
    }
}
