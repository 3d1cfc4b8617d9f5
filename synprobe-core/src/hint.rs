//! A cache hint for the replay's hot path.
//!
//! Closing an attempt reads its slot in the table of attempts in flight: a few MB, larger than this kind of
//! machine's L2 cache, so nearly every close waited for memory. The expiry queue says which attempt closes next,
//! long before its time comes (about five frames later at a busy capture point), so the matcher asks for that
//! slot ahead. On the 5 M-frame benchmark file, `replay --json` ran 4–8% faster with it (BENCHMARKS.md, sixth
//! round).

/// Ask the CPU to start loading every cache line of `value` into its caches. Only a hint: it changes nothing the
/// program can observe, and does nothing on targets without a prefetch instruction this crate knows.
#[inline]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        const LINE: usize = 64;
        let start = (value as *const T).cast::<i8>();
        // From the start of the line the value begins in, one hint per line up to its last byte.
        let misalign = start.addr() % LINE;
        let first = start.wrapping_sub(misalign);
        let mut offset = 0;
        while offset < misalign + std::mem::size_of::<T>() {
            #[allow(unsafe_code)]
            // SAFETY: `_mm_prefetch` is unsafe only because it is a `#[target_feature(enable = "sse")]` function;
            // SSE is enabled here (the cfg above; every x86_64 CPU has it). The instruction (PREFETCHT0) does not
            // access memory as far as the program can tell: it cannot fault, whatever the address, and it changes
            // no value. The address is in a cache line `value` occupies, and the reference keeps `value` alive.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(first.wrapping_add(offset));
            }
            offset += LINE;
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = value;
}
