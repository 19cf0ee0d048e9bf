//! `Q8_0 x Q8_0` with NEON: one block's exact integer dot, then the reference's scale expression.

use fovea_formats::blocks::{BlockQ8_0, QK};

use super::common::{block_dot, f16_pair, load_i8x32, I8Dot, Sdot, Widen};

/// x (n,) as Q8_0 . y (n,) as Q8_0; n a multiple of 32. Bit-identical to the reference.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub unsafe fn vec_dot_q8_0_q8_0(n: usize, x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    // SAFETY: `Widen` needs only NEON, which the caller guarantees.
    unsafe { dot::<Widen>(n, x, y) }
}

/// As [`vec_dot_q8_0_q8_0`] with `sdot`.
///
/// # Safety
/// The CPU must support NEON and dotprod.
#[target_feature(enable = "neon,dotprod")]
pub unsafe fn vec_dot_q8_0_q8_0_dotprod(n: usize, x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    // SAFETY: `Sdot` needs dotprod, which the caller guarantees.
    unsafe { dot::<Sdot>(n, x, y) }
}

/// # Safety
/// As for `D::dot`.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot<D: I8Dot>(n: usize, x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    let nb = n / QK;
    let mut sumf = 0.0f32;
    for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
        // SAFETY: forwarded to the caller.
        let sumi = unsafe { block_dot::<D>(load_i8x32(&bx.qs), load_i8x32(&by.qs)) };
        let (dx, dy) = f16_pair(bx.d, by.d);
        sumf += sumi as f32 * (dx * dy);
    }
    sumf
}
