//! `Q6_K x Q8_K` with AVX2: 6-bit quants rebuilt from `ql` nibbles and `qh` bit pairs, 32 at a time.

use core::arch::x86_64::*;

use crate::x86::chunks;

use fovea_formats::blocks::{BlockQ6K, BlockQ8K, QK_K};

use super::common::{f16_to_f32, hsum_f32x8, load_i8x32, load_u8x32, prefetch_ahead};
use super::q4_k::{fma_f32, hsum_i32x8};

/// x (n,) as Q6_K . y (n,) as Q8_K; n a multiple of 256.
///
/// Per super-block: d * sum_g(scale_g * sum((q - 32) * y)) over 16 groups of 16, in the lanes
/// of ggml's AVX2 `ggml_vec_dot_q6_K_q8_K`: the unsigned q (0..64) times y per lane, minus the
/// offset term 32 * (sc[2k] bsum[2k] + sc[2k+1] bsum[2k+1]) in lane k, then one FMA per block.
/// (Integer lanes are exact; which lane holds which term decides the f32 rounding.)
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot_q6_k_q8_k(n: usize, x: &[BlockQ6K], y: &[BlockQ8K]) -> f32 {
    let nb = n / QK_K;
    let mut acc = _mm256_setzero_ps();
    for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
        prefetch_ahead(bx);
        let sumi = block_sums(bx, by);
        let d = _mm256_set1_ps(by.d * f16_to_f32(bx.d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_f32x8(acc)
}

/// [`vec_dot_q6_k_q8_k`] in the f32 order of ggml's tiled matmul (batches of 8+ rows; see
/// `quant::tiled_k`): per block acc += (f32(s1) * d) * d_y, the last step an FMA.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot_q6_k_q8_k_tiled(n: usize, x: &[BlockQ6K], y: &[BlockQ8K]) -> f32 {
    let nb = n / QK_K;
    let mut acc = 0.0f32;
    for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
        let s1 = hsum_i32x8(block_sums(bx, by));
        acc = fma_f32(s1 as f32 * f16_to_f32(bx.d), by.d, acc);
    }
    acc
}

/// One block's exact integer sums in ggml's 8 lanes: sum of scale * q * y minus the offset term.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn block_sums(bx: &BlockQ6K, by: &BlockQ8K) -> __m256i {
    let low_nibble = _mm256_set1_epi8(0x0F);
    let bits45 = _mm256_set1_epi8(0x30);
    let (ql_chunks, _) = chunks::<_, 32>(&bx.ql); // 4 x 32: two per 128-element half
    let (qh_chunks, _) = chunks::<_, 32>(&bx.qh); // 2 x 32: one per half
    let (y_chunks, _) = chunks::<_, 32>(&by.qs); // 8 x 32 activations

    // SAFETY: both references cover the bytes read; loadu has no alignment requirement.
    let (bsums, scales) =
        unsafe { (_mm256_loadu_si256(by.bsums.as_ptr().cast()), _mm_loadu_si128(bx.scales.as_ptr().cast())) };
    let offset_term = _mm256_slli_epi32::<5>(_mm256_madd_epi16(bsums, _mm256_cvtepi8_epi16(scales)));
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
        let mut p = [_mm256_setzero_si256(); 4];
        for (k, q) in quarters.into_iter().enumerate() {
            let yq = load_i8x32(&y_chunks[4 * half + k]);
            // Low 128 bits are group g, high 128 bits group g + 1.
            let g = 8 * half + 2 * k;
            let scale = _mm256_set_m128i(
                _mm_set1_epi16(i16::from(bx.scales[g + 1])),
                _mm_set1_epi16(i16::from(bx.scales[g])),
            );
            p[k] = _mm256_madd_epi16(_mm256_maddubs_epi16(q, yq), scale);
        }
        sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p[0], p[1]));
        sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p[2], p[3]));
    }
    _mm256_sub_epi32(sumi, offset_term)
}
