//! `Q4_K x Q8_K` with AVX2: per 64-element chunk, 32 bytes of nibbles against 64 activations.

use core::arch::x86_64::*;

use crate::x86::chunks;

use fovea_formats::blocks::{BlockQ4K, BlockQ8K, QK_K};

use super::common::{f16_to_f32, hsum_f32x8, load_i8x32, load_u8x32, prefetch_ahead};

/// x (n,) as Q4_K . y (n,) as Q8_K; n a multiple of 256.
///
/// Per super-block: d * sum_j(scale_j * sum(q * y)) - dmin * sum_j(min_j * sum(y over j)),
/// the second sum taken from the precomputed `bsums` of y. The f32 steps are those of ggml's
/// AVX2 `ggml_vec_dot_q4_K_q8_K` (what llama.cpp runs on x86): the scale sums in eight lanes,
/// the min sums in four lanes (lane k = m[2k] s[2k] + m[2k+1] s[2k+1], s[j] the sum of y over
/// sub-block j), each lane accumulated with an FMA per block and reduced at the end.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot_q4_k_q8_k(n: usize, x: &[BlockQ4K], y: &[BlockQ8K]) -> f32 {
    let nb = n / QK_K;
    let mut acc = _mm256_setzero_ps();
    let mut acc_mins = _mm_setzero_ps();
    for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
        prefetch_ahead(bx);
        let (sumi, mins) = block_sums(bx, by);
        acc_mins = _mm_fmadd_ps(_mm_set1_ps(-by.d * f16_to_f32(bx.dmin)), _mm_cvtepi32_ps(mins), acc_mins);
        let d = _mm256_set1_ps(by.d * f16_to_f32(bx.d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_f32x8(acc) + hsum_f32x4(acc_mins)
}

/// [`vec_dot_q4_k_q8_k`] in the f32 order of ggml's tiled matmul (batches of 8+ rows; see
/// `quant::tiled_k`): per block r = f32(s1) * d - dmin * f32(s2) (one FMA), acc += r * d_y (FMA).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot_q4_k_q8_k_tiled(n: usize, x: &[BlockQ4K], y: &[BlockQ8K]) -> f32 {
    let nb = n / QK_K;
    let mut acc = 0.0f32;
    for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
        let (sumi, mins) = block_sums(bx, by);
        let r = hsum_i32x8(sumi) as f32 * f16_to_f32(bx.d);
        let r = fma_f32(-f16_to_f32(bx.dmin), hsum_i32x4(mins) as f32, r);
        acc = fma_f32(r, by.d, acc);
    }
    acc
}

/// One block's exact integer sums: the scale sums in 8 lanes (lane l = sum of scale * q * y
/// over the elements maddubs/madd put in lane l) and the min sums in 4 lanes (see
/// [`mins_dot_bsums`]).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn block_sums(bx: &BlockQ4K, by: &BlockQ8K) -> (__m256i, __m128i) {
    let low_nibble = _mm256_set1_epi8(0x0F);
    let mut scales = [0u8; 8];
    let mut mins = [0u8; 8];
    for j in 0..8 {
        (scales[j], mins[j]) = bx.scale_min(j);
    }
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
    (sumi, mins_dot_bsums(mins, &by.bsums))
}

/// a * b + c rounded once, like `libm::fmaf` (which is not inlined and dispatches at run time:
/// 5% of the batch K-quant time).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn fma_f32(a: f32, b: f32, c: f32) -> f32 {
    _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)))
}

/// Sum of 8 i32 lanes (exact).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn hsum_i32x8(v: __m256i) -> i32 {
    hsum_i32x4(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v)))
}

/// Sum of 4 i32 lanes (exact).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_i32x4(v: __m128i) -> i32 {
    let v = _mm_add_epi32(v, _mm_unpackhi_epi64(v, v));
    _mm_cvtsi128_si32(_mm_add_epi32(v, _mm_shuffle_epi32::<1>(v)))
}

/// Sum of 4 lanes as ggml reduces `acc_m`: (l0 + l2) + (l1 + l3).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_f32x4(v: __m128) -> f32 {
    let x2 = _mm_add_ps(v, _mm_movehl_ps(v, v));
    _mm_cvtss_f32(_mm_add_ss(x2, _mm_movehdup_ps(x2)))
}

/// sum_j min_j * (bsums[2j] + bsums[2j + 1]) in 4 i32 lanes as ggml forms it: the sub-block sums
/// s[j] by a pairwise horizontal add of the 16 bsums, then lane k = m[2k] s[2k] + m[2k+1] s[2k+1].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn mins_dot_bsums(mins: [u8; 8], bsums: &[i16; 16]) -> __m128i {
    let mins = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(i64::from_le_bytes(mins)));
    // SAFETY: the reference covers 32 readable bytes; loadu has no alignment requirement.
    let bsums = unsafe { _mm256_loadu_si256(bsums.as_ptr().cast()) };
    let sub_sums = _mm_hadd_epi16(_mm256_castsi256_si128(bsums), _mm256_extracti128_si256::<1>(bsums));
    _mm_madd_epi16(mins, sub_sums)
}
