//! `Q5_0 x Q8_0` and `Q5_1 x Q8_1` with NEON: the fifth bits spread to bytes and merged into
//! the nibbles, one exact integer dot per block, then the reference's scale expression.

use core::arch::aarch64::*;

use fovea_formats::blocks::{BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1, QK};

use super::common::{block_dot, f16_pair, f16x4_to_f32, load_i8x32, nibbles, I8Dot, Sdot, Widen};

/// x (n,) as Q5_0 . y (n,) as Q8_0; n a multiple of 32. Bit-identical to the reference.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub unsafe fn vec_dot_q5_0_q8_0(n: usize, x: &[BlockQ5_0], y: &[BlockQ8_0]) -> f32 {
    // SAFETY: `Widen` needs only NEON, which the caller guarantees.
    unsafe { dot_q5_0::<Widen>(n, x, y) }
}

/// As [`vec_dot_q5_0_q8_0`] with `sdot`.
///
/// # Safety
/// The CPU must support NEON and dotprod.
#[target_feature(enable = "neon,dotprod")]
pub unsafe fn vec_dot_q5_0_q8_0_dotprod(n: usize, x: &[BlockQ5_0], y: &[BlockQ8_0]) -> f32 {
    // SAFETY: `Sdot` needs dotprod, which the caller guarantees.
    unsafe { dot_q5_0::<Sdot>(n, x, y) }
}

/// x (n,) as Q5_1 . y (n,) as Q8_1; n a multiple of 32. Bit-identical to the reference.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub unsafe fn vec_dot_q5_1_q8_1(n: usize, x: &[BlockQ5_1], y: &[BlockQ8_1]) -> f32 {
    // SAFETY: `Widen` needs only NEON, which the caller guarantees.
    unsafe { dot_q5_1::<Widen>(n, x, y) }
}

/// As [`vec_dot_q5_1_q8_1`] with `sdot`.
///
/// # Safety
/// The CPU must support NEON and dotprod.
#[target_feature(enable = "neon,dotprod")]
pub unsafe fn vec_dot_q5_1_q8_1_dotprod(n: usize, x: &[BlockQ5_1], y: &[BlockQ8_1]) -> f32 {
    // SAFETY: `Sdot` needs dotprod, which the caller guarantees.
    unsafe { dot_q5_1::<Sdot>(n, x, y) }
}

/// Bits 0..32 of `qh` -> (bytes of elements 0..16, bytes of elements 16..32), 0xFF where set.
#[inline]
#[target_feature(enable = "neon")]
fn fifth_bits(qh: [u8; 4]) -> (uint8x16_t, uint8x16_t) {
    // Byte j of a half tests bit j % 8 of qh byte j / 8 of that half.
    let bit_of_byte = vcombine_u8(vcreate_u8(0x8040_2010_0804_0201), vcreate_u8(0x8040_2010_0804_0201));
    let spread = |a: u8, b: u8| vtstq_u8(vcombine_u8(vdup_n_u8(a), vdup_n_u8(b)), bit_of_byte);
    (spread(qh[0], qh[1]), spread(qh[2], qh[3]))
}

/// sum_b (d_x * d_y) * sumi_b, weights q - 16.
///
/// # Safety
/// As for `D::dot`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_q5_0<D: I8Dot>(n: usize, x: &[BlockQ5_0], y: &[BlockQ8_0]) -> f32 {
    let nb = n / QK;
    let mut sumf = 0.0f32;
    for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
        // q - 16 as a signed byte: with the fifth bit set that is the nibble itself, without it
        // the nibble with the top four bits set (nibble - 16 in two's complement).
        let (lo, hi) = nibbles(&bx.qs);
        let (set_lo, set_hi) = fifth_bits(bx.qh);
        let top = vdupq_n_u8(0xF0);
        let w = (
            vreinterpretq_s8_u8(vorrq_u8(lo, vbicq_u8(top, set_lo))),
            vreinterpretq_s8_u8(vorrq_u8(hi, vbicq_u8(top, set_hi))),
        );
        // SAFETY: forwarded to the caller.
        let sumi = unsafe { block_dot::<D>(w, load_i8x32(&by.qs)) };
        let (dx, dy) = f16_pair(bx.d, by.d);
        sumf += (dx * dy) * sumi as f32;
    }
    sumf
}

/// sum_b (d_x * d_y) * sumi_b + m_x * s_y, weights q in 0..32.
///
/// # Safety
/// As for `D::dot`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_q5_1<D: I8Dot>(n: usize, x: &[BlockQ5_1], y: &[BlockQ8_1]) -> f32 {
    let nb = n / QK;
    let mut sumf = 0.0f32;
    for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
        let (lo, hi) = nibbles(&bx.qs);
        let (set_lo, set_hi) = fifth_bits(bx.qh);
        let sixteen = vdupq_n_u8(0x10);
        let w = (
            vreinterpretq_s8_u8(vorrq_u8(lo, vandq_u8(set_lo, sixteen))),
            vreinterpretq_s8_u8(vorrq_u8(hi, vandq_u8(set_hi, sixteen))),
        );
        // SAFETY: forwarded to the caller.
        let sumi = unsafe { block_dot::<D>(w, load_i8x32(&by.qs)) };
        // [dx, mx, dy, sy] times itself rotated by two: [dx * dy, mx * sy, ..].
        let scales = f16x4_to_f32([bx.d, bx.m, by.d, by.s]);
        let prod = vmulq_f32(scales, vextq_f32::<2>(scales, scales));
        sumf += vgetq_lane_f32::<0>(prod) * sumi as f32 + vgetq_lane_f32::<1>(prod);
    }
    sumf
}
