//! Dot products of the K-quant super-blocks with `Q8_K` activations, computed as ggml's
//! `ggml_vec_dot_q*_K_q8_K_generic`.
//!
//! ggml's generic code unpacks a super-block into 256 small signed integers, forms exact integer
//! sums in eight lanes (lane l takes the elements with index % 8 == l, each times its sub-block
//! scale), and accumulates `d * lane` into eight f32 sums that are added together only at the
//! end of the row. The integer sums are exact in any order; the f32 steps are kept in ggml's
//! order so the result is bit-identical. `Q2_K` instead folds each block into one f32 term.
//!
//! `n` is the element count (a multiple of 256); both slices hold at least n / 256 blocks.

use fovea_formats::blocks::{BlockQ2K, BlockQ3K, BlockQ4K, BlockQ5K, BlockQ6K, BlockQ8K, QK_K};

#[inline]
fn block_pairs<'a, X>(
    n: usize,
    x: &'a [X],
    y: &'a [BlockQ8K],
) -> impl Iterator<Item = (&'a X, &'a BlockQ8K)> {
    debug_assert!(n.is_multiple_of(QK_K), "vec_dot: n = {n} is not a multiple of {QK_K}");
    debug_assert!(x.len() >= n / QK_K && y.len() >= n / QK_K, "vec_dot: fewer than n / {QK_K} blocks");
    x.iter().zip(y).take(n / QK_K)
}

/// The eight lane sums: lane l = sum over elements e with e % 8 == l of
/// scale[e / 16] * w[e] * q8[e].
#[inline]
fn lane_sums(w: &[i8; QK_K], q8: &[i8; QK_K], scale16: &[i32; 16]) -> [i32; 8] {
    let mut lanes = [0i32; 8];
    for ((wg, qg), &sc) in w.chunks_exact(16).zip(q8.chunks_exact(16)).zip(scale16) {
        for (e, (&a, &b)) in wg.iter().zip(qg).enumerate() {
            lanes[e % 8] += sc * (a as i32 * b as i32);
        }
    }
    lanes
}

/// Lane accumulators for one row: `sums[l] += d * lane[l]` per block, summed once at the end.
struct Lanes {
    sums: [f32; 8],
}

impl Lanes {
    fn new() -> Self {
        Lanes { sums: [0.0; 8] }
    }

    #[inline]
    fn add(&mut self, d: f32, lanes: &[i32; 8]) {
        for (s, &l) in self.sums.iter_mut().zip(lanes) {
            *s += d * l as f32;
        }
    }

    /// ggml adds the lane sums after everything else: `for l: sumf += sums[l]`.
    fn finish(self, mut sumf: f32) -> f32 {
        for s in self.sums {
            sumf += s;
        }
        sumf
    }
}

/// Q2_K: per block, d_y * d_x * sum(sc * q * q8) - d_y * dmin_x * sum(m * bsum).
pub fn vec_dot_q2_k_q8_k(n: usize, x: &[BlockQ2K], y: &[BlockQ8K]) -> f32 {
    let mut sumf = 0.0f32;
    for (bx, by) in block_pairs(n, x, y) {
        let summs: i32 = by.bsums.iter().zip(&bx.scales).map(|(&s, &sc)| s as i32 * (sc >> 4) as i32).sum();
        let dall = by.d * bx.d.to_f32();
        let dmin = by.d * bx.dmin.to_f32();
        let mut isum = 0i32;
        // Element 128h + 32k + l is bits 2k of qs[32h + l]; its sub-block is the index / 16.
        for (g, q8g) in by.qs.chunks_exact(16).enumerate() {
            let (h, k, l0) = (g / 8, (g % 8) / 2, (g % 2) * 16);
            let q2 = &bx.qs[32 * h + l0..32 * h + l0 + 16];
            let isuml: i32 = q2.iter().zip(q8g).map(|(&q, &a)| ((q >> (2 * k)) & 3) as i32 * a as i32).sum();
            isum += (bx.scales[g] & 0xF) as i32 * isuml;
        }
        sumf += dall * isum as f32 - dmin * summs as f32;
    }
    sumf
}

/// Q3_K: lanes of (sc - 32) * q * q8 with q in -4..4, times d_x * d_y.
pub fn vec_dot_q3_k_q8_k(n: usize, x: &[BlockQ3K], y: &[BlockQ8K]) -> f32 {
    let mut acc = Lanes::new();
    for (bx, by) in block_pairs(n, x, y) {
        let w: [i8; QK_K] = core::array::from_fn(|e| {
            let (h, k, l) = (e / 128, (e % 128) / 32, e % 32);
            let low = ((bx.qs[32 * h + l] >> (2 * k)) & 3) as i8;
            let no_shift = bx.hmask[l] & (1 << (4 * h + k)) != 0;
            if no_shift {
                low
            } else {
                low - 4
            }
        });
        let scales = bx.scales_i8();
        let scale16: [i32; 16] = core::array::from_fn(|g| scales[g] as i32);
        acc.add(bx.d.to_f32() * by.d, &lane_sums(&w, &by.qs, &scale16));
    }
    acc.finish(0.0)
}

/// Scale per 16 elements and the min term sum(bsum * m) of a Q4_K/Q5_K block.
#[inline]
fn k4_scales(scale_min: impl Fn(usize) -> (u8, u8), bsums: &[i16; 16]) -> ([i32; 16], i32) {
    let scale16 = core::array::from_fn(|g| scale_min(g / 2).0 as i32);
    let min_sum = bsums.iter().enumerate().map(|(g, &s)| s as i32 * scale_min(g / 2).1 as i32).sum();
    (scale16, min_sum)
}

/// Q4_K: lanes of sc * q * q8 times d_x * d_y, minus dmin_x * d_y * sum(m * bsum) per block.
pub fn vec_dot_q4_k_q8_k(n: usize, x: &[BlockQ4K], y: &[BlockQ8K]) -> f32 {
    let mut acc = Lanes::new();
    let mut sumf = 0.0f32;
    for (bx, by) in block_pairs(n, x, y) {
        let w: [i8; QK_K] = core::array::from_fn(|e| {
            let (c, half, l) = (e / 64, (e % 64) / 32, e % 32);
            let q = bx.qs[32 * c + l];
            (if half == 0 { q & 0xF } else { q >> 4 }) as i8
        });
        let (scale16, min_sum) = k4_scales(|j| bx.scale_min(j), &by.bsums);
        acc.add(bx.d.to_f32() * by.d, &lane_sums(&w, &by.qs, &scale16));
        let dmin = bx.dmin.to_f32() * by.d;
        sumf -= dmin * min_sum as f32;
    }
    acc.finish(sumf)
}

/// Q5_K: as Q4_K with the fifth bit from `qh`.
pub fn vec_dot_q5_k_q8_k(n: usize, x: &[BlockQ5K], y: &[BlockQ8K]) -> f32 {
    let mut acc = Lanes::new();
    let mut sumf = 0.0f32;
    for (bx, by) in block_pairs(n, x, y) {
        let w: [i8; QK_K] = core::array::from_fn(|e| {
            let (c, half, l) = (e / 64, (e % 64) / 32, e % 32);
            let q = bx.qs[32 * c + l];
            let low = if half == 0 { q & 0xF } else { q >> 4 };
            let high = if bx.qh[l] & (1 << (2 * c + half)) != 0 { 16 } else { 0 };
            (low + high) as i8
        });
        let (scale16, min_sum) = k4_scales(|j| bx.scale_min(j), &by.bsums);
        acc.add(bx.d.to_f32() * by.d, &lane_sums(&w, &by.qs, &scale16));
        let dmin = bx.dmin.to_f32() * by.d;
        sumf -= dmin * min_sum as f32;
    }
    acc.finish(sumf)
}

/// Q6_K: lanes of sc * (q - 32) * q8 times d_x * d_y.
pub fn vec_dot_q6_k_q8_k(n: usize, x: &[BlockQ6K], y: &[BlockQ8K]) -> f32 {
    let mut acc = Lanes::new();
    for (bx, by) in block_pairs(n, x, y) {
        let w: [i8; QK_K] = core::array::from_fn(|e| {
            // Element 128h + 32k + l: low nibble from ql[64h + l + 32 * (k % 2)] (high nibble
            // when k >= 2), top 2 bits from bits 2k of qh[32h + l].
            let (h, k, l) = (e / 128, (e % 128) / 32, e % 32);
            let ql = bx.ql[64 * h + 32 * (k % 2) + l];
            let low = if k < 2 { ql & 0xF } else { ql >> 4 };
            let high = (bx.qh[32 * h + l] >> (2 * k)) & 3;
            (low | (high << 4)) as i8 - 32
        });
        let scale16: [i32; 16] = core::array::from_fn(|g| bx.scales[g] as i32);
        acc.add(bx.d.to_f32() * by.d, &lane_sums(&w, &by.qs, &scale16));
    }
    acc.finish(0.0)
}
