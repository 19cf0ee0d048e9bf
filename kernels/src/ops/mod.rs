//! Float ops of a transformer layer. The functions here are the scalar references, written to
//! reproduce llama.cpp's CPU arithmetic (x86 AVX-512 build) operation for operation; the SIMD
//! versions in `x86` compute the same operations in the same order, so they agree to the bit.
//! [`OpKernels`] picks one set once per process.

mod activation;
mod attention;
mod convert;
mod dot;
mod expf;
mod group_attention;
mod panel;
mod prefetch;
mod reduce;
mod rmsnorm;
mod rope;
mod sincosf;
mod softmax;
mod table;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use activation::{
    geglu_in_place, gelu_f16_table, gelu_tanh, silu, silu_mul_in_place, silu_poly, swiglu_row,
};
pub use attention::{attn_scores, attn_values, attn_values_add, attn_values_finish, ValueAcc, ValueOrder};
pub use convert::{f16_to_f32, f32_to_f16};
pub use dot::{axpy, dot_f32, dot_f32_4x16, scale_in_place, DOT_STEP};
pub use expf::exp_poly;
pub use group_attention::{group_scores, group_values_add, KvRows};
pub use panel::{panel_dots, sibling_dots, PANEL, SIBLINGS};
pub use prefetch::prefetch;
pub use reduce::{hsum16, LANES};
pub use rmsnorm::{rms_norm, rms_norm_in_place};
pub use rope::{RopeLayout, RopeTable};
pub use sincosf::{cosf, sinf};
pub use softmax::{softmax_in_place, SoftmaxStats};
pub use table::OpKernels;
