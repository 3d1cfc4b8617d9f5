//! Per-thread pools of the strings and vectors a report is built from.
//!
//! Judging an attempt builds a handful of small vectors (its findings and next steps, the attempt's SYNs and
//! replies), and a replay of millions of attempts freed them all again at once: malloc and free were a quarter of
//! the judging thread's time. A caller that is done with a
//! report hands it back (`Report::recycle`, in the engine: this module sits below it), and the next judgement
//! takes its buffers from here. Each pool keeps at most [`KEEP`] buffers of at most [`MAX_BYTES`], so what it
//! holds stays small, and a replay [`empty`]s the pools when it ends. A thread that never recycles simply finds its pools empty.

use std::cell::RefCell;
use std::thread::LocalKey;

use crate::findings::{Advice, Finding};
use crate::model::{Observed, Reply};

/// Buffers kept per pool and thread.
const KEEP: usize = 64;
/// Capacity, in bytes, above which a buffer is freed rather than kept.
const MAX_BYTES: usize = 4096;

/// A buffer that can be emptied and used again.
pub(crate) trait Pooled: Default + 'static {
    /// This thread's pool of it.
    fn pool() -> &'static LocalKey<RefCell<Vec<Self>>>;
    /// Its capacity in bytes.
    fn bytes(&self) -> usize;
    /// Empty it, keeping its capacity.
    fn clear(&mut self);
}

impl Pooled for String {
    fn pool() -> &'static LocalKey<RefCell<Vec<Self>>> {
        thread_local!(static POOL: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) });
        &POOL
    }
    fn bytes(&self) -> usize {
        self.capacity()
    }
    fn clear(&mut self) {
        String::clear(self);
    }
}

macro_rules! pooled_vec {
    ($($t:ty),*) => {$(
        impl Pooled for Vec<$t> {
            fn pool() -> &'static LocalKey<RefCell<Vec<Self>>> {
                thread_local!(static POOL: RefCell<Vec<Vec<$t>>> = const { RefCell::new(Vec::new()) });
                &POOL
            }
            fn bytes(&self) -> usize {
                self.capacity() * std::mem::size_of::<$t>()
            }
            fn clear(&mut self) {
                Vec::clear(self);
            }
        }
    )*};
}
pooled_vec!(Finding, Advice, Observed, Reply);

/// An empty buffer: one given back earlier on this thread if there is one, else a new one with `capacity`.
pub(crate) fn take<T: Pooled>(capacity: impl FnOnce() -> T) -> T {
    T::pool().with_borrow_mut(Vec::pop).unwrap_or_else(capacity)
}

/// Give a buffer back to this thread's pool (it is freed if the pool is full, or the buffer large or empty).
pub(crate) fn give<T: Pooled>(mut buffer: T) {
    let bytes = buffer.bytes();
    if bytes == 0 || bytes > MAX_BYTES {
        return;
    }
    buffer.clear();
    T::pool().with_borrow_mut(|pool| {
        if pool.len() < KEEP {
            pool.push(buffer);
        }
    });
}

/// Free what this thread's pools hold: a replay does this when it ends, so that an embedding program's thread
/// does not keep the buffers of a replay that is over.
pub(crate) fn empty() {
    fn free<T: Pooled>() {
        T::pool().with_borrow_mut(|pool| *pool = Vec::new());
    }
    free::<String>();
    free::<Vec<Finding>>();
    free::<Vec<Advice>>();
    free::<Vec<Observed>>();
    free::<Vec<Reply>>();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_empty_with_their_capacity_and_within_bounds() {
        let mut s = String::with_capacity(100);
        s.push_str("an observation");
        let at = s.as_ptr();
        give(s);
        let again: String = take(String::new);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), at, "the same buffer");
        assert!(again.capacity() >= 100);
        assert_eq!(
            take::<String>(String::new).capacity(),
            0,
            "the pool is empty again"
        );

        give(String::with_capacity(MAX_BYTES + 1));
        give(String::new());
        assert_eq!(
            take::<String>(String::new).capacity(),
            0,
            "large and empty buffers are not kept"
        );

        for _ in 0..KEEP + 10 {
            give(String::with_capacity(8));
        }
        assert_eq!(String::pool().with_borrow(Vec::len), KEEP);
        give(Vec::<Reply>::with_capacity(2));
        empty();
        assert_eq!(String::pool().with_borrow(Vec::capacity), 0);
        assert_eq!(<Vec<Reply>>::pool().with_borrow(Vec::capacity), 0);
    }
}
