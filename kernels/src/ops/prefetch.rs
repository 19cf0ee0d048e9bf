//! Cache prefetch hints for data a kernel is about to read from scattered places (the tree's
//! sibling groups, 1 KiB each, that one selection scores): issued together, their cache-line
//! misses overlap instead of being waited on one group at a time; and rows a streaming kernel
//! reads next (`prefetch_bytes`). A hint changes no result.

/// Asks the CPU to bring every cache line of `data` into cache (x86-64; elsewhere nothing).
#[inline]
pub fn prefetch<T>(data: &[T]) {
    prefetch_bytes(data.as_ptr().cast(), core::mem::size_of_val(data));
}

/// Rows ahead of the one being read that the group attention kernels prefetch. The kept keys
/// and values of a decoded token (B entries per layer and KV head) come from DRAM: the weights
/// streamed between two tokens evict them from the caches, and the hardware prefetcher alone
/// left the loads waiting. SmolLM2 at 12K depth, B = 512, f16 (AMD EPYC Zen 5, 2 vCPUs; perf
/// samples of the two group kernels per 100 of the Q4_1 weight dot): 27.1 without, 21.3 / 20.0
/// / 21.0 at 16 / 32 / 64 rows ahead.
pub(crate) const ROWS_AHEAD: usize = 32;

/// Asks the CPU to bring the cache lines of the `bytes` bytes from `at` into cache (x86-64;
/// elsewhere nothing). `at` need not point into an allocation: a prefetch never faults, and past
/// the rows' end it only fetches nothing useful.
#[inline]
pub(crate) fn prefetch_bytes(at: *const u8, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        for off in (0..bytes).step_by(64) {
            // SAFETY: a prefetch never faults, whatever the address (wrapping_add computes it
            // without claiming it is in bounds).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(off).cast()) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (at, bytes);
}
