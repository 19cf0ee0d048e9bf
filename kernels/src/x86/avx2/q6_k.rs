//! `Q6_K x Q8_K` with AVX2: 6-bit quants rebuilt from `ql` nibbles and `qh` bit pairs, 32 at a time.

use core::arch::x86_64::*;

use crate::x86::chunks;

use fovea_formats::blocks::{BlockQ6K, BlockQ8K, QK_K};

use super::common::{f16_to_f32, hsum_f32x8, load_i8x32, load_u8x32};

/// x (n,) as Q6_K . y (n,) as Q8_K; n a multiple of 256.
///
/// Per super-block: d * sum_g(scale_g * sum((q - 32) * y)) over 16 groups of 16.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot_q6_k_q8_k(n: usize, x: &[BlockQ6K], y: &[BlockQ8K]) -> f32 {
    let nb = n / QK_K;
    let low_nibble = _mm256_set1_epi8(0x0F);
    let bits45 = _mm256_set1_epi8(0x30);
    let offset = _mm256_set1_epi8(32);
    let mut acc = _mm256_setzero_ps();
    for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
        let (ql_chunks, _) = chunks::<_, 32>(&bx.ql); // 4 x 32: two per 128-element half
        let (qh_chunks, _) = chunks::<_, 32>(&bx.qh); // 2 x 32: one per half
        let (y_chunks, _) = chunks::<_, 32>(&by.qs); // 8 x 32 activations
        let mut sumi = _mm256_setzero_si256();
        for half in 0..2 {
            let ql0 = load_u8x32(&ql_chunks[2 * half]);
            let ql1 = load_u8x32(&ql_chunks[2 * half + 1]);
            let qh = load_u8x32(&qh_chunks[half]);
            // The four 32-element quarters of this half, each q in 0..64: low 4 bits from ql,
            // bits 4..6 from the 2-bit field k of qh moved to bits 4..6.
            let quarters = [
                _mm256_or_si256(
                    _mm256_and_si256(ql0, low_nibble),
                    _mm256_and_si256(_mm256_slli_epi16::<4>(qh), bits45),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(ql1, low_nibble),
                    _mm256_and_si256(_mm256_slli_epi16::<2>(qh), bits45),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16::<4>(ql0), low_nibble),
                    _mm256_and_si256(qh, bits45),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), low_nibble),
                    _mm256_and_si256(_mm256_srli_epi16::<2>(qh), bits45),
                ),
            ];
            for (k, q) in quarters.into_iter().enumerate() {
                let yq = load_i8x32(&y_chunks[4 * half + k]);
                // (q - 32) * y as q * y - 32 * y: maddubs needs an unsigned left operand.
                let p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, yq), _mm256_maddubs_epi16(offset, yq));
                // Low 128 bits are group g, high 128 bits group g + 1.
                let g = 8 * half + 2 * k;
                let scale = _mm256_set_m128i(
                    _mm_set1_epi16(i16::from(bx.scales[g + 1])),
                    _mm_set1_epi16(i16::from(bx.scales[g])),
                );
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale));
            }
        }
        let d = _mm256_set1_ps(f16_to_f32(bx.d) * by.d);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_f32x8(acc)
}
