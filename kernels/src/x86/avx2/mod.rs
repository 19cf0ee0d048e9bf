//! AVX2 + FMA + F16C kernels (Haswell and later), one file per weight family. The legacy-quant
//! dots also come as `_vnni` twins: the same body with one 256-bit `vpdpbusd` (AVX-512 VNNI + VL)
//! per block instead of `vpmaddubsw` + `vpmaddwd`, hence the same bits.

mod common;
mod float;
mod q4;
mod q4_k;
mod q5;
mod q5_k;
mod q6_k;
mod q8;
mod quantize;
mod tile4;
mod tile4_k;
mod tile4_q5_0;

pub use float::{vec_dot_f16_f16, vec_dot_f32};
pub use q4::{vec_dot_q4_0_q8_0, vec_dot_q4_0_q8_0_vnni, vec_dot_q4_1_q8_1, vec_dot_q4_1_q8_1_vnni};
pub use q4_k::{vec_dot_q4_k_q8_k, vec_dot_q4_k_q8_k_tiled};
pub use q5::{vec_dot_q5_0_q8_0, vec_dot_q5_0_q8_0_vnni, vec_dot_q5_1_q8_1, vec_dot_q5_1_q8_1_vnni};
pub use q5_k::vec_dot_q5_k_q8_k;
pub use q6_k::{vec_dot_q6_k_q8_k, vec_dot_q6_k_q8_k_tiled};
pub use q8::{vec_dot_q8_0_q8_0, vec_dot_q8_0_q8_0_vnni};
pub use quantize::{quantize_row_q8_0, quantize_row_q8_1, quantize_row_q8_k};
pub use tile4::{vec_dot4_rows_q4_1_q8_1, vec_dot4_rows_q8_0_q8_0};
pub use tile4_k::{vec_dot4_rows_q4_k_q8_k_tiled, vec_dot4_rows_q6_k_q8_k_tiled};
pub use tile4_q5_0::vec_dot4_rows_q5_0_q8_0;

pub(crate) use common::{f16_to_f32, hsum_f32x8, prefetch_ahead};
