//! `Q6_K x Q8_K` with NEON: 6-bit quants rebuilt from `ql` nibbles and `qh` bit pairs, walked as
//! sixteen 16-element groups that each have one scale.

use core::arch::aarch64::*;

use fovea_formats::blocks::{BlockQ6K, BlockQ8K, QK_K};

use super::common::{
    add_scaled_lanes, f16_pair, finish_lanes, lanes_mod8, load_i8x16, load_u8x16, I8Dot, Sdot,
};

/// x (n,) as Q6_K . y (n,) as Q8_K; n a multiple of 256. Bit-identical to the reference (its
/// eight lanes of element index mod 8, see `quant::dot_k`).
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub unsafe fn vec_dot_q6_k_q8_k(n: usize, x: &[BlockQ6K], y: &[BlockQ8K]) -> f32 {
    let nb = n / QK_K;
    let mut sums = [vdupq_n_f32(0.0); 2];
    for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
        let mut lanes = [vdupq_n_s32(0); 2];
        for_each_group(bx, by, |w, y, scale| lanes_mod8(&mut lanes, w, y, scale));
        let (d, _) = f16_pair(bx.d, bx.d);
        add_scaled_lanes(&mut sums, d * by.d, &lanes);
    }
    finish_lanes(0.0, &sums)
}

/// As [`vec_dot_q6_k_q8_k`] with `sdot`, one integer sum per block (equal to the reference up
/// to f32 summation order).
///
/// # Safety
/// The CPU must support NEON and dotprod.
#[target_feature(enable = "neon,dotprod")]
pub unsafe fn vec_dot_q6_k_q8_k_dotprod(n: usize, x: &[BlockQ6K], y: &[BlockQ8K]) -> f32 {
    let nb = n / QK_K;
    let mut sumf = 0.0f32;
    for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
        let mut sumi = vdupq_n_s32(0);
        for_each_group(bx, by, |w, y, scale| {
            // SAFETY: the caller guarantees dotprod.
            let dot = unsafe { Sdot::dot(vdupq_n_s32(0), w, y) };
            sumi = vmlaq_n_s32(sumi, dot, i32::from(scale));
        });
        let (d, _) = f16_pair(bx.d, bx.d);
        sumf += (d * by.d) * vaddvq_s32(sumi) as f32;
    }
    sumf
}

/// Calls `f(weights, activations, scale)` for the 16 groups of 16 elements of one block, in
/// each once (not in element order), weights q - 32 in -32..32.
#[inline]
#[target_feature(enable = "neon")]
fn for_each_group(bx: &BlockQ6K, by: &BlockQ8K, mut f: impl FnMut(int8x16_t, int8x16_t, i16)) {
    let (ql, _) = bx.ql.as_chunks::<16>(); // 8 x 16: four per 128-element half
    let (qh, _) = bx.qh.as_chunks::<16>(); // 4 x 16: two per half
    let (y_groups, _) = by.qs.as_chunks::<16>(); // 16 x 16 activations
    let (low_nibble, bits45, offset) = (vdupq_n_u8(0x0F), vdupq_n_u8(0x30), vdupq_n_s8(32));
    for half in 0..2 {
        // Element 128 half + 32 k + l (l < 32): low 4 bits from ql[64 half + 32 (k % 2) + l]
        // (high nibble when k >= 2), bits 4..6 from bits 2k of qh[32 half + l].
        for sub in 0..2 {
            // l in 16 sub .. 16 sub + 16.
            let ql0 = load_u8x16(&ql[4 * half + sub]); // k = 0 (low) and 2 (high)
            let ql1 = load_u8x16(&ql[4 * half + 2 + sub]); // k = 1 (low) and 3 (high)
            let qh = load_u8x16(&qh[2 * half + sub]);
            let quarters = [
                vorrq_u8(vandq_u8(ql0, low_nibble), vandq_u8(vshlq_n_u8::<4>(qh), bits45)),
                vorrq_u8(vandq_u8(ql1, low_nibble), vandq_u8(vshlq_n_u8::<2>(qh), bits45)),
                vorrq_u8(vshrq_n_u8::<4>(ql0), vandq_u8(qh, bits45)),
                vorrq_u8(vshrq_n_u8::<4>(ql1), vandq_u8(vshrq_n_u8::<2>(qh), bits45)),
            ];
            for (k, q) in quarters.into_iter().enumerate() {
                let g = 8 * half + 2 * k + sub;
                let w = vsubq_s8(vreinterpretq_s8_u8(q), offset);
                f(w, load_i8x16(&y_groups[g]), i16::from(bx.scales[g]));
            }
        }
    }
}
