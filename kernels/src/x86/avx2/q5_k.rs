//! `Q5_K x Q8_K` with AVX2: as `Q4_K`, plus the fifth bit from `qh` (bit 2c / 2c+1 for chunk c).

use core::arch::x86_64::*;

use crate::x86::chunks;

use fovea_formats::blocks::{BlockQ5K, BlockQ8K, QK_K};

use super::common::{f16_to_f32, hsum_f32x8, load_i8x32, load_u8x32, prefetch_ahead};
use super::q4_k::mins_dot_bsums;

/// x (n,) as Q5_K . y (n,) as Q8_K; n a multiple of 256.
///
/// As ggml's AVX2 `ggml_vec_dot_q5_K_q8_K`: the scale sums in eight f32 lanes (one FMA per
/// block), the min term of each block summed exactly as an integer and added to a scalar
/// (`summs += dmin * total`, which gcc contracts to an FMA), the two added at the end.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot_q5_k_q8_k(n: usize, x: &[BlockQ5K], y: &[BlockQ8K]) -> f32 {
    let nb = n / QK_K;
    let low_nibble = _mm256_set1_epi8(0x0F);
    let bit0 = _mm256_set1_epi8(1);
    let mut acc = _mm256_setzero_ps();
    let mut summs = 0.0f32;
    for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
        prefetch_ahead(bx);
        let mut scales = [0u8; 8];
        let mut mins = [0u8; 8];
        for j in 0..8 {
            (scales[j], mins[j]) = bx.scale_min(j);
        }
        let prod = mins_dot_bsums(mins, &by.bsums);
        let total = _mm_cvtsi128_si32(_mm_hadd_epi32(_mm_hadd_epi32(prod, prod), prod));
        summs = libm::fmaf(-by.d * f16_to_f32(bx.dmin), total as f32, summs);

        // Bit 0 of each byte is the fifth bit of the current chunk's low half; shifted by 2 per
        // chunk (bits leaking in from the neighbour byte are masked off).
        let mut qh = load_u8x32(&bx.qh);
        let mut sumi = _mm256_setzero_si256();
        let (q4_chunks, _) = chunks::<_, 32>(&bx.qs); // 4 x (32 bytes = 64 elements)
        let (y_chunks, _) = chunks::<_, 32>(&by.qs); // 8 x 32 activations
        for (c, q4) in q4_chunks.iter().enumerate() {
            let q4 = load_u8x32(q4);
            let high_bit_low = _mm256_slli_epi16::<4>(_mm256_and_si256(qh, bit0));
            let high_bit_high = _mm256_slli_epi16::<4>(_mm256_and_si256(_mm256_srli_epi16::<1>(qh), bit0));
            qh = _mm256_srli_epi16::<2>(qh);
            let low = _mm256_or_si256(_mm256_and_si256(q4, low_nibble), high_bit_low);
            let high =
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(q4), low_nibble), high_bit_high);
            let p_low = _mm256_maddubs_epi16(low, load_i8x32(&y_chunks[2 * c]));
            let p_high = _mm256_maddubs_epi16(high, load_i8x32(&y_chunks[2 * c + 1]));
            let p_low = _mm256_madd_epi16(p_low, _mm256_set1_epi16(i16::from(scales[2 * c])));
            let p_high = _mm256_madd_epi16(p_high, _mm256_set1_epi16(i16::from(scales[2 * c + 1])));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p_low, p_high));
        }
        let d = _mm256_set1_ps(by.d * f16_to_f32(bx.d));
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_f32x8(acc) + summs
}
