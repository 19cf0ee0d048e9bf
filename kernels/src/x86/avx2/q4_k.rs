//! `Q4_K x Q8_K` with AVX2: per 64-element chunk, 32 bytes of nibbles against 64 activations.

use core::arch::x86_64::*;

use crate::x86::chunks;

use fovea_formats::blocks::{BlockQ4K, BlockQ8K, QK_K};

use super::common::{f16_to_f32, hsum_f32x8, load_i8x32, load_u8x32};

/// x (n,) as Q4_K . y (n,) as Q8_K; n a multiple of 256.
///
/// Per super-block: d * sum_j(scale_j * sum(q * y)) - dmin * sum_j(min_j * sum(y over j)),
/// the second sum taken from the precomputed `bsums` of y.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot_q4_k_q8_k(n: usize, x: &[BlockQ4K], y: &[BlockQ8K]) -> f32 {
    let nb = n / QK_K;
    let low_nibble = _mm256_set1_epi8(0x0F);
    let mut acc = _mm256_setzero_ps();
    let mut acc_mins = _mm256_setzero_ps();
    for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
        let mut scales = [0u8; 8];
        let mut mins = [0u8; 8];
        for j in 0..8 {
            (scales[j], mins[j]) = bx.scale_min(j);
        }
        acc_mins = _mm256_fmadd_ps(
            _mm256_set1_ps(-by.d * f16_to_f32(bx.dmin)),
            _mm256_cvtepi32_ps(mins_dot_bsums(mins, &by.bsums)),
            acc_mins,
        );

        let mut sumi = _mm256_setzero_si256();
        let (q4_chunks, _) = chunks::<_, 32>(&bx.qs); // 4 x (32 bytes = 64 elements)
        let (y_chunks, _) = chunks::<_, 32>(&by.qs); // 8 x 32 activations
        for (c, q4) in q4_chunks.iter().enumerate() {
            let q4 = load_u8x32(q4);
            let low = _mm256_and_si256(q4, low_nibble);
            let high = _mm256_and_si256(_mm256_srli_epi16::<4>(q4), low_nibble);
            let p_low = _mm256_maddubs_epi16(low, load_i8x32(&y_chunks[2 * c]));
            let p_high = _mm256_maddubs_epi16(high, load_i8x32(&y_chunks[2 * c + 1]));
            let p_low = _mm256_madd_epi16(p_low, _mm256_set1_epi16(i16::from(scales[2 * c])));
            let p_high = _mm256_madd_epi16(p_high, _mm256_set1_epi16(i16::from(scales[2 * c + 1])));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p_low, p_high));
        }
        let d = _mm256_set1_ps(by.d * f16_to_f32(bx.d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_f32x8(acc) + hsum_f32x8(acc_mins)
}

/// sum_j min_j * (bsums[2j] + bsums[2j + 1]) spread over 8 i32 lanes (lane j holds term j).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn mins_dot_bsums(mins: [u8; 8], bsums: &[i16; 16]) -> __m256i {
    let mins = _mm_cvtsi64_si128(i64::from_le_bytes(mins));
    // [m0, m0, m1, m1, ..] as i16, one per 16-element bsum.
    let mins = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mins, mins));
    // SAFETY: the reference covers 32 readable bytes; loadu has no alignment requirement.
    let bsums = unsafe { _mm256_loadu_si256(bsums.as_ptr().cast()) };
    _mm256_madd_epi16(mins, bsums)
}
