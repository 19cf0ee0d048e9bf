//! Float ops of a transformer layer, scalar reference versions. Plain loops; the optimizer
//! vectorizes the simple ones, and `ops_simd` (per ISA) takes over the hot ones.

mod activation;
mod dot;
mod rmsnorm;
mod rope;
mod softmax;

pub use activation::{gelu_tanh, gelu_tanh_in_place, silu, silu_mul_in_place};
pub use dot::{axpy, dot_f32, scale_in_place};
pub use rmsnorm::{rms_norm, rms_norm_in_place};
pub use rope::{RopeLayout, RopeTable};
pub use softmax::softmax_in_place;
