//! `Q5_0 x Q8_0` and `Q5_1 x Q8_1` with AVX2: the fifth bits spread to bytes, OR-ed onto the nibbles.

use core::arch::x86_64::*;

use fovea_formats::blocks::{BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1, QK};

use super::common::{
    bits_to_bytes_u8x32, dot_i8_i8, dot_u8_i8, f16_pair, hsum_f32x8, load_i8x32, nibbles_u8x32, scale_product,
};

/// x (n,) as Q5_0 . y (n,) as Q8_0; n a multiple of 32.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot_q5_0_q8_0(n: usize, x: &[BlockQ5_0], y: &[BlockQ8_0]) -> f32 {
    let nb = n / QK;
    let mut acc = _mm256_setzero_ps();
    for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
        // q - 16 as a signed byte: with the fifth bit set that is the nibble itself, without it
        // the nibble with the top four bits set (nibble - 16 in two's complement).
        let high_clear = _mm256_andnot_si256(
            bits_to_bytes_u8x32(u32::from_le_bytes(bx.qh)),
            _mm256_set1_epi8(0xF0u8 as i8),
        );
        let qx = _mm256_or_si256(nibbles_u8x32(&bx.qs), high_clear);
        let sumi = dot_i8_i8(qx, load_i8x32(&by.qs));
        let d = scale_product(bx.d, by.d);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_f32x8(acc)
}

/// x (n,) as Q5_1 . y (n,) as Q8_1; n a multiple of 32.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot_q5_1_q8_1(n: usize, x: &[BlockQ5_1], y: &[BlockQ8_1]) -> f32 {
    let nb = n / QK;
    let mut acc = _mm256_setzero_ps();
    // Lane 1 collects mx * sy; lanes 0, 2, 3 are dropped at the end.
    let mut mins = _mm_setzero_ps();
    for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
        let high = _mm256_and_si256(bits_to_bytes_u8x32(u32::from_le_bytes(bx.qh)), _mm256_set1_epi8(0x10));
        let qx = _mm256_or_si256(nibbles_u8x32(&bx.qs), high);
        let sumi = dot_u8_i8(qx, load_i8x32(&by.qs));
        // [dx * dy, mx * sy, 0, 0]
        let scales = _mm_mul_ps(f16_pair(bx.d, bx.m), f16_pair(by.d, by.s));
        acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(scales), _mm256_cvtepi32_ps(sumi), acc);
        mins = _mm_add_ps(mins, scales);
    }
    hsum_f32x8(acc) + _mm_cvtss_f32(_mm_movehdup_ps(mins))
}
