//! The scalar reference kernels under the names every ISA module mirrors
//! (`x86::avx2::vec_dot_q4_0_q8_0`, ...). SIMD versions are tested against these.

pub use super::dot_float::{vec_dot_bf16_bf16, vec_dot_f16_f16, vec_dot_f32};
pub use super::dot_k::{
    vec_dot_q2_k_q8_k, vec_dot_q3_k_q8_k, vec_dot_q4_k_q8_k, vec_dot_q5_k_q8_k, vec_dot_q6_k_q8_k,
};
pub use super::dot_legacy::{
    vec_dot_q4_0_q8_0, vec_dot_q4_1_q8_1, vec_dot_q5_0_q8_0, vec_dot_q5_1_q8_1, vec_dot_q8_0_q8_0,
};
pub use super::quantize::{
    quantize_row_bf16, quantize_row_f16, quantize_row_q8_0, quantize_row_q8_1, quantize_row_q8_k,
};
