//! `Q4_K x Q8_K` with NEON: per 64-element chunk, 32 bytes of nibbles against 64 activations,
//! walked as sixteen 16-element groups that each have one scale.

use core::arch::aarch64::*;

use fovea_formats::blocks::{BlockQ4K, BlockQ8K, QK_K};

use super::common::{add_scaled_lanes, f16_pair, finish_lanes, lanes_mod8, load_i8x16, nibbles, I8Dot, Sdot};

/// x (n,) as Q4_K . y (n,) as Q8_K; n a multiple of 256. Bit-identical to the reference (its
/// eight lanes of element index mod 8, see `quant::dot_k`).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub unsafe fn vec_dot_q4_k_q8_k(n: usize, x: &[BlockQ4K], y: &[BlockQ8K]) -> f32 {
    let nb = n / QK_K;
    let mut sums = [vdupq_n_f32(0.0); 2];
    let mut sumf = 0.0f32;
    for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
        let mut lanes = [vdupq_n_s32(0); 2];
        let min_sum = for_each_group(bx, by, |w, y, scale| lanes_mod8(&mut lanes, w, y, scale));
        let (d, dmin) = f16_pair(bx.d, bx.dmin);
        add_scaled_lanes(&mut sums, d * by.d, &lanes);
        sumf -= (dmin * by.d) * min_sum as f32;
    }
    finish_lanes(sumf, &sums)
}

/// As [`vec_dot_q4_k_q8_k`] with `sdot`, one integer sum per block (equal to the reference up
/// to f32 summation order).
///
/// # Safety
/// The CPU must support NEON and dotprod.
#[target_feature(enable = "neon,dotprod")]
pub unsafe fn vec_dot_q4_k_q8_k_dotprod(n: usize, x: &[BlockQ4K], y: &[BlockQ8K]) -> f32 {
    let nb = n / QK_K;
    let mut sumf = 0.0f32;
    for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
        let mut sumi = vdupq_n_s32(0);
        let min_sum = for_each_group(bx, by, |w, y, scale| {
            // SAFETY: the caller guarantees dotprod.
            let dot = unsafe { Sdot::dot(vdupq_n_s32(0), w, y) };
            sumi = vmlaq_n_s32(sumi, dot, i32::from(scale));
        });
        let (d, dmin) = f16_pair(bx.d, bx.dmin);
        sumf += (d * by.d) * vaddvq_s32(sumi) as f32 - (dmin * by.d) * min_sum as f32;
    }
    sumf
}

/// Calls `f(weights, activations, scale)` for the 16 groups of 16 elements of one block, in
/// element order, weights in 0..16; returns the min term sum_g bsums[g] * min(g / 2).
#[inline]
#[target_feature(enable = "neon")]
fn for_each_group(bx: &BlockQ4K, by: &BlockQ8K, mut f: impl FnMut(int8x16_t, int8x16_t, i16)) -> i32 {
    let mut scales = [0u8; 8];
    let mut mins = [0u8; 8];
    for j in 0..8 {
        (scales[j], mins[j]) = bx.scale_min(j);
    }
    let (q4_halves, _) = bx.qs.as_chunks::<16>(); // 8 x 16 bytes: two per 64-element chunk
    let (y_groups, _) = by.qs.as_chunks::<16>(); // 16 x 16 activations
    for c in 0..4 {
        // Chunk c: elements 64c.. are the low nibbles of its 32 bytes, 64c + 32.. the high ones.
        let (lo0, hi0) = nibbles(&q4_halves[2 * c]);
        let (lo1, hi1) = nibbles(&q4_halves[2 * c + 1]);
        let (sc_lo, sc_hi) = (i16::from(scales[2 * c]), i16::from(scales[2 * c + 1]));
        f(vreinterpretq_s8_u8(lo0), load_i8x16(&y_groups[4 * c]), sc_lo);
        f(vreinterpretq_s8_u8(lo1), load_i8x16(&y_groups[4 * c + 1]), sc_lo);
        f(vreinterpretq_s8_u8(hi0), load_i8x16(&y_groups[4 * c + 2]), sc_hi);
        f(vreinterpretq_s8_u8(hi1), load_i8x16(&y_groups[4 * c + 3]), sc_hi);
    }
    // bsums of each 32-element sub-block (pairs of 16-sums) times its min.
    // SAFETY: `bsums` covers 16 readable i16; `ld1` has no alignment requirement.
    let (b0, b1) = unsafe { (vld1q_s16(by.bsums.as_ptr()), vld1q_s16(by.bsums.as_ptr().add(8))) };
    let pair_sums = vpaddq_s16(b0, b1); // |sum| <= 32 * 128, no overflow
    let mins = vreinterpretq_s16_u16(vmovl_u8(vcreate_u8(u64::from_le_bytes(mins))));
    let terms = vmlal_high_s16(vmull_s16(vget_low_s16(pair_sums), vget_low_s16(mins)), pair_sums, mins);
    vaddvq_s32(terms)
}
