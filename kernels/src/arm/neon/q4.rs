//! `Q4_0 x Q8_0` and `Q4_1 x Q8_1` with NEON: nibbles unpacked to bytes, one exact integer dot
//! per block, then the reference's scale expression in the reference's order.

use core::arch::aarch64::*;

use fovea_formats::blocks::{BlockQ4_0, BlockQ4_1, BlockQ8_0, BlockQ8_1, QK};

use super::common::{block_dot, f16_pair, f16x4_to_f32, load_i8x32, nibbles, I8Dot, Sdot, Widen};

/// x (n,) as Q4_0 . y (n,) as Q8_0; n a multiple of 32. Bit-identical to the reference.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub unsafe fn vec_dot_q4_0_q8_0(n: usize, x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    // SAFETY: `Widen` needs only NEON, which the caller guarantees.
    unsafe { dot_q4_0::<Widen>(n, x, y) }
}

/// As [`vec_dot_q4_0_q8_0`] with `sdot`.
///
/// # Safety
/// The CPU must support NEON and dotprod.
#[target_feature(enable = "neon,dotprod")]
pub unsafe fn vec_dot_q4_0_q8_0_dotprod(n: usize, x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    // SAFETY: `Sdot` needs dotprod, which the caller guarantees.
    unsafe { dot_q4_0::<Sdot>(n, x, y) }
}

/// x (n,) as Q4_1 . y (n,) as Q8_1; n a multiple of 32. Bit-identical to the reference.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub unsafe fn vec_dot_q4_1_q8_1(n: usize, x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
    // SAFETY: `Widen` needs only NEON, which the caller guarantees.
    unsafe { dot_q4_1::<Widen>(n, x, y) }
}

/// As [`vec_dot_q4_1_q8_1`] with `sdot`.
///
/// # Safety
/// The CPU must support NEON and dotprod.
#[target_feature(enable = "neon,dotprod")]
pub unsafe fn vec_dot_q4_1_q8_1_dotprod(n: usize, x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
    // SAFETY: `Sdot` needs dotprod, which the caller guarantees.
    unsafe { dot_q4_1::<Sdot>(n, x, y) }
}

/// sum_b (sumi_b * d_x) * d_y, weights q - 8.
///
/// # Safety
/// As for `D::dot`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_q4_0<D: I8Dot>(n: usize, x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    let nb = n / QK;
    let mut sumf = 0.0f32;
    for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
        let (lo, hi) = nibbles(&bx.qs);
        let eight = vdupq_n_s8(8);
        let w = (vsubq_s8(vreinterpretq_s8_u8(lo), eight), vsubq_s8(vreinterpretq_s8_u8(hi), eight));
        // SAFETY: forwarded to the caller.
        let sumi = unsafe { block_dot::<D>(w, load_i8x32(&by.qs)) };
        let (dx, dy) = f16_pair(bx.d, by.d);
        sumf += sumi as f32 * dx * dy;
    }
    sumf
}

/// sum_b (d_x * d_y) * sumi_b + m_x * s_y: the min times the activation sum Q8_1 carries.
///
/// # Safety
/// As for `D::dot`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_q4_1<D: I8Dot>(n: usize, x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
    let nb = n / QK;
    let mut sumf = 0.0f32;
    for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
        let (lo, hi) = nibbles(&bx.qs);
        let w = (vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi));
        // SAFETY: forwarded to the caller.
        let sumi = unsafe { block_dot::<D>(w, load_i8x32(&by.qs)) };
        // [dx, mx, dy, sy] in one conversion, times itself rotated by two: [dx * dy, mx * sy, ..].
        let scales = f16x4_to_f32([bx.d, bx.m, by.d, by.s]);
        let prod = vmulq_f32(scales, vextq_f32::<2>(scales, scales));
        let (dxdy, mxsy) = (vgetq_lane_f32::<0>(prod), vgetq_lane_f32::<1>(prod));
        sumf += dxdy * sumi as f32 + mxsy;
    }
    sumf
}
