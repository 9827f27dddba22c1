//! Owned results: the bytes behind a [`tbs_buffer`], handed out without a copy where possible
//! and wiped when freed.

use super::tbs_buffer;
use crate::error::{Error, Result};
use zeroize::{Zeroize, Zeroizing};

/// What follows the bytes of every buffer: the NUL, then the allocation's capacity (native
/// endian, unaligned), which `release` needs to free it. Carrying the capacity lets a buffer
/// take over a `Vec`'s own allocation (a resolved document, JSON) instead of copying it.
const TRAILER: usize = 1 + std::mem::size_of::<usize>();

/// A library-owned copy of `bytes`, for a [`tbs_buffer`]. Allocated at its final size, so no
/// partial copy of a secret is left behind by a reallocation.
pub(crate) fn buffer_from(bytes: &[u8]) -> tbs_buffer {
    let mut owned = Vec::with_capacity(bytes.len() + TRAILER);
    owned.extend_from_slice(bytes);
    into_buffer(owned)
}

/// A [`tbs_buffer`] made of `bytes`' own allocation when it has room for the trailer (no copy);
/// otherwise of a copy, and `bytes` is wiped.
pub(crate) fn buffer_from_vec(mut bytes: Zeroizing<Vec<u8>>) -> tbs_buffer {
    if bytes.capacity() - bytes.len() < TRAILER {
        return buffer_from(&bytes);
    }
    into_buffer(std::mem::take(&mut *bytes))
}

/// Appends the trailer (which must fit without growing) and hands the allocation over.
fn into_buffer(mut bytes: Vec<u8>) -> tbs_buffer {
    let len = bytes.len();
    let capacity = bytes.capacity();
    debug_assert!(capacity - len >= TRAILER);
    bytes.push(0);
    bytes.extend_from_slice(&capacity.to_ne_bytes());
    debug_assert_eq!(
        bytes.capacity(),
        capacity,
        "the trailer must not reallocate"
    );
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    tbs_buffer {
        data: bytes.as_mut_ptr(),
        len,
    }
}

/// A buffer holding the JSON text of metadata (never a secret value).
pub(crate) fn json_buffer<T: serde::Serialize>(value: &T) -> Result<tbs_buffer> {
    let json = serde_json::to_vec(value)
        .map_err(|e| Error::internal(format!("cannot render JSON: {e}")))?;
    Ok(buffer_from_vec(Zeroizing::new(json)))
}

/// Wipes (the whole allocation, spare capacity included) and frees a buffer's bytes.
///
/// # Safety
/// `data` must be NULL or come from [`into_buffer`] with this `len`, not freed yet.
pub(crate) unsafe fn release(data: *mut u8, len: usize) {
    if data.is_null() {
        return;
    }
    let mut capacity = [0u8; std::mem::size_of::<usize>()];
    // SAFETY: `into_buffer` wrote the capacity right after the NUL that follows `len` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(data.add(len + 1), capacity.as_mut_ptr(), capacity.len())
    };
    let capacity = usize::from_ne_bytes(capacity);
    // SAFETY: `data` is the pointer of a `Vec<u8>` of that capacity holding `len + TRAILER`
    // initialised bytes, handed over by `into_buffer` and not freed since.
    let mut bytes = unsafe { Vec::from_raw_parts(data, len + TRAILER, capacity) };
    bytes.zeroize();
}
