//! The reader's one buffer: records are parsed in place and handed out as slices of it.

use std::io::{ErrorKind, Read};

use super::CaptureError;

/// A source of bytes with a reusable buffer and the file offset of every byte in it.
///
/// `buf[start..end]` holds bytes read but not yet consumed; `base` is the file offset of `buf[0]`.
pub(super) struct Input<R> {
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    base: u64,
}

impl<R: Read> Input<R> {
    pub(super) fn new(reader: R, size: usize) -> Self {
        Input {
            reader,
            buf: vec![0; size.max(16)],
            start: 0,
            end: 0,
            base: 0,
        }
    }

    /// The file offset of the first unconsumed byte.
    #[inline]
    pub(super) fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    /// The unconsumed bytes in the buffer.
    #[inline]
    pub(super) fn available(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Makes at least `n` unconsumed bytes available if the input has them; returns how many are
    /// available (fewer than `n` only at the end of the input).
    #[inline]
    pub(super) fn fill(&mut self, n: usize) -> Result<usize, CaptureError> {
        let avail = self.end - self.start;
        if avail >= n {
            Ok(avail)
        } else {
            self.refill(n)
        }
    }

    /// Moves the unconsumed bytes (less than one record) to the front, grows the buffer if one record
    /// needs more, then reads until `n` bytes are available or the input ends.
    #[cold]
    #[inline(never)]
    fn refill(&mut self, n: usize) -> Result<usize, CaptureError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        if n > self.buf.len() {
            // Only for a record larger than the buffer; callers have bounded `n` (16 MiB at most).
            self.buf.resize(n.max(self.buf.len() * 2), 0);
        }
        while self.end < n {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => break,
                // min: a misbehaving reader that claims more than the slice must not move `end` past it.
                Ok(k) => self.end += k.min(self.buf.len() - self.end),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(CaptureError::Io {
                        offset: self.base + self.end as u64,
                        source,
                    })
                }
            }
        }
        Ok(self.end)
    }

    /// Consumes `n` available bytes and returns them (the caller has checked they are available).
    #[inline]
    pub(super) fn consume(&mut self, n: usize) -> &[u8] {
        debug_assert!(self.start + n <= self.end);
        let from = self.start;
        self.start += n;
        &self.buf[from..self.start]
    }

    /// Consumes `n` available bytes.
    #[inline]
    pub(super) fn skip(&mut self, n: usize) {
        debug_assert!(self.start + n <= self.end);
        self.start += n;
    }
}
