//! NEON kernels (every AArch64 CPU), one file per weight family, and `sdot` variants named
//! `*_dotprod` for CPUs with the dotprod extension.
//!
//! The plain NEON dots are bit-identical to the scalar reference: the legacy types reduce each
//! block's exact integer dot to one number and scale it with the reference's f32 expression in
//! the reference's order; the K-quants keep the reference's eight lanes (element index mod 8),
//! which `vmull_s8` of a 16-byte group gives for free. The `sdot` K-quant dots sum 4 adjacent
//! bytes per lane, so they fold each block to one integer instead: equal up to f32 summation
//! order, within the tolerances of `tests/simd_vs_reference.rs`.

mod common;
mod q4;
mod q4_k;
mod q5;
mod q6_k;
mod q8;
mod quantize;

pub use q4::{vec_dot_q4_0_q8_0, vec_dot_q4_0_q8_0_dotprod, vec_dot_q4_1_q8_1, vec_dot_q4_1_q8_1_dotprod};
pub use q4_k::{vec_dot_q4_k_q8_k, vec_dot_q4_k_q8_k_dotprod};
pub use q5::{vec_dot_q5_0_q8_0, vec_dot_q5_0_q8_0_dotprod, vec_dot_q5_1_q8_1, vec_dot_q5_1_q8_1_dotprod};
pub use q6_k::{vec_dot_q6_k_q8_k, vec_dot_q6_k_q8_k_dotprod};
pub use q8::{vec_dot_q8_0_q8_0, vec_dot_q8_0_q8_0_dotprod};
pub use quantize::{quantize_row_q8_0, quantize_row_q8_1, quantize_row_q8_k};
