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
