//! K-quant dots in the f32 order of ggml's tiled matmul (`ggml-cpu/tiled`), which llama.cpp uses
//! instead of `vec_dot` for Q2_K..Q6_K weights when the batch has 8 or more rows.
//!
//! Per block the integer sums are exact: s1 = sum_s scale_s * (raw_s - BIAS * bsum_s) and (for
//! Q4_K/Q5_K) s2 = sum_s min_s * bsum_s. The f32 epilogue per block is
//! r = f32(s1) * d_w; r = fma(-dmin_w, f32(s2), r); acc = acc + r * d_y (a product, then a sum).

use fovea_formats::blocks::{BlockQ4K, BlockQ6K, BlockQ8K, QK_K};

/// Q4_K . Q8_K in the tiled order.
pub fn vec_dot_q4_k_q8_k_tiled(n: usize, x: &[BlockQ4K], y: &[BlockQ8K]) -> f32 {
    let mut acc = 0.0f32;
    for (bx, by) in x.iter().zip(y).take(n / QK_K) {
        let (mut s1, mut s2) = (0i32, 0i32);
        for s in 0..8 {
            let (sc, m) = bx.scale_min(s);
            let mut raw = 0i32;
            for e in 0..32 {
                let idx = 32 * s + e;
                let (c, half, l) = (idx / 64, (idx % 64) / 32, idx % 32);
                let q = bx.qs[32 * c + l];
                let q = if half == 0 { q & 0xF } else { q >> 4 };
                raw += q as i32 * by.qs[idx] as i32;
            }
            let bsum = by.bsums[2 * s] as i32 + by.bsums[2 * s + 1] as i32;
            s1 += sc as i32 * raw;
            s2 += m as i32 * bsum;
        }
        let r = s1 as f32 * bx.d.to_f32();
        let r = libm::fmaf(-bx.dmin.to_f32(), s2 as f32, r);
        acc = libm::fmaf(r, by.d, acc);
    }
    acc
}

/// Q6_K . Q8_K in the tiled order (BIAS 32: q stored unsigned 0..64).
pub fn vec_dot_q6_k_q8_k_tiled(n: usize, x: &[BlockQ6K], y: &[BlockQ8K]) -> f32 {
    let mut acc = 0.0f32;
    for (bx, by) in x.iter().zip(y).take(n / QK_K) {
        let mut s1 = 0i32;
        for s in 0..16 {
            let mut raw = 0i32;
            for e in 0..16 {
                let idx = 16 * s + e;
                let (h, k, l) = (idx / 128, (idx % 128) / 32, idx % 32);
                let ql = bx.ql[64 * h + 32 * (k % 2) + l];
                let low = if k < 2 { ql & 0xF } else { ql >> 4 };
                let high = (bx.qh[32 * h + l] >> (2 * k)) & 3;
                raw += (low | (high << 4)) as i32 * by.qs[idx] as i32;
            }
            s1 += bx.scales[s] as i32 * (raw - 32 * by.bsums[s] as i32);
        }
        acc = libm::fmaf(s1 as f32 * bx.d.to_f32(), by.d, acc);
    }
    acc
}
