//! `Q8_0 x Q8_0` with AVX2.

use core::arch::x86_64::*;

use fovea_formats::blocks::{BlockQ8_0, QK};

use super::common::{dot_i8_i8, hsum_f32x8, load_i8x32, scale_product};

/// x (n,) as Q8_0 . y (n,) as Q8_0; n a multiple of 32.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot_q8_0_q8_0(n: usize, x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    let nb = n / QK;
    let mut acc = _mm256_setzero_ps();
    for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
        let sumi = dot_i8_i8(load_i8x32(&bx.qs), load_i8x32(&by.qs));
        let d = scale_product(bx.d, by.d);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_f32x8(acc)
}
