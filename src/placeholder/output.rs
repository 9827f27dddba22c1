//! Where a resolve call writes its output: a growable buffer that never leaves a copy of a
//! secret value behind in freed memory, or the caller's own buffer.

use zeroize::Zeroize;

/// The output of a resolve call, written piece by piece.
pub(crate) trait Output {
    /// Appends `s`.
    fn push(&mut self, s: &str);
}

/// A growable string that zeroizes its old buffer whenever it grows, and its contents when
/// dropped (unless handed over with [`into_string`](OutputBuffer::into_string)).
pub(crate) struct OutputBuffer(String);

impl OutputBuffer {
    /// An empty buffer; `capacity` is a guess, not a limit.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        OutputBuffer(String::with_capacity(capacity))
    }

    /// An empty buffer for the resolution of a document of `len` bytes (room for values
    /// longer than their placeholders).
    pub(crate) fn for_document(len: usize) -> Self {
        OutputBuffer::with_capacity(len + len / 8 + 256)
    }

    /// Appends `s`.
    pub(crate) fn push(&mut self, s: &str) {
        if self.0.capacity() - self.0.len() < s.len() {
            // Grow by hand rather than let `String` reallocate: the old buffer is wiped first.
            let wanted = (self.0.len() + s.len()).max(self.0.capacity() * 2);
            let mut bigger = String::with_capacity(wanted);
            bigger.push_str(&self.0);
            self.wipe();
            self.0 = bigger;
        }
        self.0.push_str(s);
    }

    /// The contents so far.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Empties the buffer, keeping (and later overwriting) its capacity.
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// The contents, now the caller's.
    pub(crate) fn into_string(mut self) -> String {
        std::mem::take(&mut self.0)
    }

    fn wipe(&mut self) {
        self.0.as_mut_str().zeroize();
        self.0.clear();
    }
}

impl Output for OutputBuffer {
    fn push(&mut self, s: &str) {
        OutputBuffer::push(self, s);
    }
}

/// Output written into a caller's buffer while it fits; past its end only the length is
/// counted, so that the caller learns the size it needs.
pub(crate) struct SliceOutput<'b> {
    buf: &'b mut [u8],
    /// The length of the output so far (written or not).
    len: usize,
    /// How much of `buf` was written: everything up to the first piece that did not fit.
    filled: usize,
}

impl<'b> SliceOutput<'b> {
    /// Runs `write` with output into `buf`, from its start; see [`SliceOutput::finish`].
    pub(crate) fn write_into(
        buf: &'b mut [u8],
        write: impl FnOnce(&mut SliceOutput<'b>) -> crate::Result<()>,
    ) -> crate::Result<usize> {
        let mut sink = SliceOutput::new(buf);
        let outcome = write(&mut sink);
        sink.finish(outcome)
    }

    /// Output into `buf`, from its start.
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        SliceOutput {
            buf,
            len: 0,
            filled: 0,
        }
    }

    /// The length of the whole output when `outcome` is `Ok` and it fit in the buffer (it is
    /// then in `buf[..len]`), or the length it needs when it did not fit; the error of a
    /// failed call. Unless the whole output is there, what was written is zeroed.
    pub(crate) fn finish(self, outcome: crate::Result<()>) -> crate::Result<usize> {
        if outcome.is_err() || self.len > self.filled {
            self.buf[..self.filled].zeroize();
        }
        outcome.map(|()| self.len)
    }
}

impl Output for SliceOutput<'_> {
    fn push(&mut self, s: &str) {
        let end = self.len + s.len();
        if self.filled == self.len {
            if let Some(out) = self.buf.get_mut(self.len..end) {
                out.copy_from_slice(s.as_bytes());
                self.filled = end;
            }
        }
        self.len = end;
    }
}

impl Drop for OutputBuffer {
    fn drop(&mut self) {
        self.wipe();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_without_losing_contents() {
        let mut out = OutputBuffer::with_capacity(2);
        for piece in ["ab", "cde", "", "fghijklmnop", "q"] {
            out.push(piece);
        }
        assert_eq!(out.into_string(), "abcdefghijklmnopq");
    }

    #[test]
    fn a_slice_output_that_fits_holds_the_output() {
        let mut buf = [7u8; 8];
        let mut out = SliceOutput::new(&mut buf);
        out.push("abc");
        out.push("de");
        assert_eq!(out.finish(Ok(())).unwrap(), 5);
        assert_eq!(&buf, b"abcde\x07\x07\x07");
    }

    #[test]
    fn a_slice_output_too_small_counts_the_length_needed_and_is_zeroed() {
        let mut buf = [7u8; 4];
        let mut out = SliceOutput::new(&mut buf);
        for piece in ["ab", "cde", "f"] {
            out.push(piece);
        }
        assert_eq!(out.finish(Ok(())).unwrap(), 6);
        assert_eq!(
            buf,
            [0, 0, 7, 7],
            "the piece that fitted is wiped, the rest untouched"
        );
    }

    #[test]
    fn a_failed_call_leaves_nothing_in_the_slice() {
        let mut buf = [7u8; 8];
        let mut out = SliceOutput::new(&mut buf);
        out.push("secret");
        let err = out
            .finish(Err(crate::Error::invalid("unresolved")))
            .unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::InvalidArgument);
        assert_eq!(buf, [0, 0, 0, 0, 0, 0, 7, 7]);
    }

    #[test]
    fn grows_only_when_full() {
        let mut out = OutputBuffer::with_capacity(8);
        out.push("1234");
        let before = out.0.as_ptr();
        out.push("5678");
        assert_eq!(out.0.as_ptr(), before);
        out.push("9");
        assert!(out.0.capacity() >= 16);
        assert_eq!(out.0, "123456789");
    }
}
