//! x86-64 SIMD versions of the kernels in `quant::reference`, under the same names.
//!
//! Every function here is a `#[target_feature]` `unsafe fn`: calling it on a CPU without the
//! features is undefined behaviour. Only `table::QuantKernels` calls them, after `isa::Isa`
//! has checked the CPU once. Results equal the reference up to float summation order (the
//! integer parts of every block dot are exact); the quantizers are bit-exact.
//!
//! Precondition shared by every dot here, as in ggml: activation quants are in -127..=127
//! (what our quantizers produce). The signed-by-signed products use `sign(y, x) * |x|`, which
//! would overflow for an activation of -128.

pub mod avx2;
pub mod avx512;

/// `slice.as_chunks::<N>()` (stable only since Rust 1.88): the whole N-arrays, then the rest.
#[inline]
pub(crate) fn chunks<T: bytemuck::Pod, const N: usize>(s: &[T]) -> (&[[T; N]], &[T]) {
    let (whole, rest) = s.split_at(s.len() / N * N);
    (bytemuck::cast_slice(whole), rest)
}

/// `slice.as_chunks_mut::<N>()` (stable only since Rust 1.88), whole N-arrays only.
#[inline]
pub(crate) fn chunks_mut<T: bytemuck::Pod, const N: usize>(s: &mut [T]) -> &mut [[T; N]] {
    let whole = s.len() / N * N;
    bytemuck::cast_slice_mut(&mut s[..whole])
}
