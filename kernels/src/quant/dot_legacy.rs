//! Dot products of the 32-element block types with their `Q8_0`/`Q8_1` activations, computed
//! as ggml's `ggml_vec_dot_*_generic`: an exact integer dot per block, then one f32 scale
//! expression per block in ggml's operand order, accumulated into one f32.
//!
//! `n` is the element count (a multiple of 32); both slices hold at least n / 32 blocks.

use fovea_formats::blocks::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1, QK};

/// The first n / 32 block pairs.
#[inline]
fn block_pairs<'a, X, Y>(n: usize, x: &'a [X], y: &'a [Y]) -> impl Iterator<Item = (&'a X, &'a Y)> {
    debug_assert!(n.is_multiple_of(QK), "vec_dot: n = {n} is not a multiple of {QK}");
    debug_assert!(x.len() >= n / QK && y.len() >= n / QK, "vec_dot: fewer than n / {QK} blocks");
    x.iter().zip(y).take(n / QK)
}

/// Integer dot of 32 4/5-bit weights (given as two 16-element halves) with 32 int8 activations.
#[inline]
fn idot(w_lo: impl Iterator<Item = i32>, w_hi: impl Iterator<Item = i32>, a: &[i8; QK]) -> i32 {
    let (a_lo, a_hi) = a.split_at(QK / 2);
    let lo: i32 = w_lo.zip(a_lo).map(|(w, &q)| w * q as i32).sum();
    let hi: i32 = w_hi.zip(a_hi).map(|(w, &q)| w * q as i32).sum();
    lo + hi
}

/// The 5-bit quants (0..32) of a Q5 block as (first half, second half).
#[inline]
fn q5_halves(qh: [u8; 4], qs: &[u8; QK / 2]) -> ([i32; QK / 2], [i32; QK / 2]) {
    let qh = u32::from_le_bytes(qh);
    let lo = core::array::from_fn(|j| ((qs[j] & 0xF) as u32 | (((qh >> j) << 4) & 0x10)) as i32);
    let hi = core::array::from_fn(|j| ((qs[j] >> 4) as u32 | ((qh >> (j + 12)) & 0x10)) as i32);
    (lo, hi)
}

/// sum_b sumi_b * d_x * d_y, weights q - 8.
pub fn vec_dot_q4_0_q8_0(n: usize, x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    let mut sumf = 0.0f32;
    for (bx, by) in block_pairs(n, x, y) {
        let lo = bx.qs.iter().map(|&q| (q & 0xF) as i32 - 8);
        let hi = bx.qs.iter().map(|&q| (q >> 4) as i32 - 8);
        let sumi = idot(lo, hi, &by.qs);
        sumf += sumi as f32 * bx.d.to_f32() * by.d.to_f32();
    }
    sumf
}

/// sum_b (d_x * d_y) * sumi_b + m_x * s_y: the min times the activation sum, which Q8_1 carries.
pub fn vec_dot_q4_1_q8_1(n: usize, x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
    let mut sumf = 0.0f32;
    for (bx, by) in block_pairs(n, x, y) {
        let lo = bx.qs.iter().map(|&q| (q & 0xF) as i32);
        let hi = bx.qs.iter().map(|&q| (q >> 4) as i32);
        let sumi = idot(lo, hi, &by.qs);
        sumf += (bx.d.to_f32() * by.d.to_f32()) * sumi as f32 + bx.m.to_f32() * by.s.to_f32();
    }
    sumf
}

/// sum_b (d_x * d_y) * sumi_b, weights q - 16.
pub fn vec_dot_q5_0_q8_0(n: usize, x: &[BlockQ5_0], y: &[BlockQ8_0]) -> f32 {
    let mut sumf = 0.0f32;
    for (bx, by) in block_pairs(n, x, y) {
        let (lo, hi) = q5_halves(bx.qh, &bx.qs);
        let sumi = idot(lo.into_iter().map(|q| q - 16), hi.into_iter().map(|q| q - 16), &by.qs);
        sumf += (bx.d.to_f32() * by.d.to_f32()) * sumi as f32;
    }
    sumf
}

/// sum_b (d_x * d_y) * sumi_b + m_x * s_y.
pub fn vec_dot_q5_1_q8_1(n: usize, x: &[BlockQ5_1], y: &[BlockQ8_1]) -> f32 {
    let mut sumf = 0.0f32;
    for (bx, by) in block_pairs(n, x, y) {
        let (lo, hi) = q5_halves(bx.qh, &bx.qs);
        let sumi = idot(lo.into_iter(), hi.into_iter(), &by.qs);
        sumf += (bx.d.to_f32() * by.d.to_f32()) * sumi as f32 + bx.m.to_f32() * by.s.to_f32();
    }
    sumf
}

/// sum_b sumi_b * (d_x * d_y).
pub fn vec_dot_q8_0_q8_0(n: usize, x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    let mut sumf = 0.0f32;
    for (bx, by) in block_pairs(n, x, y) {
        let sumi: i32 = bx.qs.iter().zip(&by.qs).map(|(&a, &b)| a as i32 * b as i32).sum();
        sumf += sumi as f32 * (bx.d.to_f32() * by.d.to_f32());
    }
    sumf
}
