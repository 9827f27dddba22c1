//! The output buffer of a resolve call: it holds secret values, so it never leaves a copy
//! behind in freed memory.

use zeroize::Zeroize;

/// A growable string that zeroizes its old buffer whenever it grows, and its contents when
/// dropped (unless handed over with [`into_string`](OutputBuffer::into_string)).
pub(crate) struct OutputBuffer(String);

impl OutputBuffer {
    /// An empty buffer; `capacity` is a guess, not a limit.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        OutputBuffer(String::with_capacity(capacity))
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
