//! x86-64 SIMD versions of the float ops, under the reference names. Each computes the
//! reference's operations in the reference's order, so results are equal to the bit (see
//! `tests/ops_simd_vs_reference.rs`). AVX2 carries each 16-lane ggml vector as two halves.
//!
//! Every function is a `#[target_feature]` `unsafe fn`; only `ops::OpKernels` calls them,
//! after `Isa::require` has checked the CPU.

pub(crate) mod avx2;
pub(crate) mod avx512;
