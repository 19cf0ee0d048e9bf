//! AVX-512 (F + BW + VL) kernels for the hottest dots, two 32-element blocks per 512-bit register.
//!
//! Each kernel exists twice, from one body: `name` multiplies bytes with `vpmaddubsw` +
//! `vpmaddwd`, `name_vnni` with one `vpdpbusd` (AVX-512 VNNI). The table picks the VNNI one
//! when the CPU has it. Block counts that are not a multiple of 4 finish with the AVX2 kernel.
//! `tile_q4_1`, `tile_q5_0` and `tile_k` are VNNI only: prompt-processing tiles that reproduce
//! the bits of the dots they stand for (the AVX2 ones; the tiled order for the K-quants).

mod common;
mod q4_1;
mod q8_0;
mod tile_k;
mod tile_q4_1;
mod tile_q5_0;

pub use q4_1::{vec_dot_q4_1_q8_1, vec_dot_q4_1_q8_1_vnni};
pub use q8_0::{vec_dot_q8_0_q8_0, vec_dot_q8_0_q8_0_vnni};
pub use tile_k::{vec_dot_tile_q4_k_q8_k_tiled_vnni, vec_dot_tile_q6_k_q8_k_tiled_vnni};
pub use tile_q4_1::vec_dot_tile_q4_1_q8_1_vnni;
pub use tile_q5_0::vec_dot_tile_q5_0_q8_0_vnni;
