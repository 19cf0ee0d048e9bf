//! K-quant dots in the tiled f32 order (`quant::tiled_k`), one weight row against four
//! activation rows at once (prompt processing, batches of 8+ rows).
//!
//! Each weight block's codes and scales are unpacked once for four tokens. The integer block sums
//! (s1, s2) are exact in any order; the f32 epilogue per block is the scalar one of
//! `quant::tiled_k` done in four lanes, one token per lane (lane-wise IEEE operations round
//! exactly like their scalar forms), so results are bit-identical to
//! `vec_dot_q4_k_q8_k_tiled` / `vec_dot_q6_k_q8_k_tiled`.

use core::arch::x86_64::*;

use alloc::vec;
use alloc::vec::Vec;

use fovea_formats::blocks::{BlockQ4K, BlockQ6K, BlockQ8K, QK_K};

use crate::x86::chunks;

use super::common::{f16_to_f32, load_i8x32, load_u8x32};
use super::q4_k::mins_dot_bsums;

/// Rows x (nr, n) as Q4_K against four Q8_K tokens y[t] (n,): out (4, nr),
/// out[t * nr + r] = tiled dot(x[r], y[t]).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. x holds nr * n / 256 blocks and each y[t] n / 256.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot4_rows_q4_k_q8_k_tiled(n: usize, x: &[BlockQ4K], y: [&[BlockQ8K]; 4], out: &mut [f32]) {
    let nb = n / QK_K;
    let nr = out.len() / 4;
    let (mut stack, mut heap) = ([0.0f32; 4 * 64], vec![]);
    let dy = token_scales(nb, y, &mut stack, &mut heap);
    for r in 0..nr {
        let quad = vec_dot4_q4_k(&x[r * nb..(r + 1) * nb], y, dy);
        store_quad(out, nr, r, quad);
    }
}

/// Rows x (nr, n) as Q6_K against four Q8_K tokens y[t] (n,): out (4, nr),
/// out[t * nr + r] = tiled dot(x[r], y[t]).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. x holds nr * n / 256 blocks and each y[t] n / 256.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot4_rows_q6_k_q8_k_tiled(n: usize, x: &[BlockQ6K], y: [&[BlockQ8K]; 4], out: &mut [f32]) {
    let nb = n / QK_K;
    let nr = out.len() / 4;
    let (mut stack, mut heap) = ([0.0f32; 4 * 64], vec![]);
    let dy = token_scales(nb, y, &mut stack, &mut heap);
    for r in 0..nr {
        let quad = vec_dot4_q6_k(&x[r * nb..(r + 1) * nb], y, dy);
        store_quad(out, nr, r, quad);
    }
}

/// The four tokens' block scales: dy (nb, 4), in `stack` for rows up to 64 blocks, else in
/// `heap` (an allocation per call measured at 10% of prompt processing).
fn token_scales<'a>(
    nb: usize,
    y: [&[BlockQ8K]; 4],
    stack: &'a mut [f32; 4 * 64],
    heap: &'a mut Vec<f32>,
) -> &'a [f32] {
    let dy: &mut [f32] = if nb <= 64 {
        &mut stack[..4 * nb]
    } else {
        heap.resize(4 * nb, 0.0);
        heap
    };
    for (b, d) in dy.chunks_exact_mut(4).enumerate() {
        for t in 0..4 {
            d[t] = y[t][b].d;
        }
    }
    dy
}

/// out (4, nr): out[t * nr + r] = lane t of `quad`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn store_quad(out: &mut [f32], nr: usize, r: usize, quad: __m128) {
    let mut lanes = [0.0f32; 4];
    // SAFETY: `lanes` covers 16 writable bytes; storeu has no alignment requirement.
    unsafe { _mm_storeu_ps(lanes.as_mut_ptr(), quad) };
    for (t, v) in lanes.into_iter().enumerate() {
        out[t * nr + r] = v;
    }
}

/// Per token t (lane t): acc = fma(r, dy, acc) over the blocks, r = f32(s1) * d - dmin * f32(s2).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn vec_dot4_q4_k(x: &[BlockQ4K], y: [&[BlockQ8K]; 4], dy: &[f32]) -> __m128 {
    let low_nibble = _mm256_set1_epi8(0x0F);
    let mut acc = _mm_setzero_ps();
    for (b, bx) in x.iter().enumerate() {
        let (scales, mins) = q4_k_scales_mins(&bx.scales);
        let mut sumi = [_mm256_setzero_si256(); 4];
        let (q4_chunks, _) = chunks::<_, 32>(&bx.qs); // 4 x (32 bytes = 64 elements)
        for (c, q4) in q4_chunks.iter().enumerate() {
            let q4 = load_u8x32(q4);
            let low = _mm256_and_si256(q4, low_nibble);
            let high = _mm256_and_si256(_mm256_srli_epi16::<4>(q4), low_nibble);
            let sc_low = _mm256_set1_epi16(i16::from(scales[2 * c]));
            let sc_high = _mm256_set1_epi16(i16::from(scales[2 * c + 1]));
            for t in 0..4 {
                let (y_chunks, _) = chunks::<_, 32>(&y[t][b].qs); // 8 x 32 activations
                let p_low =
                    _mm256_madd_epi16(_mm256_maddubs_epi16(low, load_i8x32(&y_chunks[2 * c])), sc_low);
                let p_high =
                    _mm256_madd_epi16(_mm256_maddubs_epi16(high, load_i8x32(&y_chunks[2 * c + 1])), sc_high);
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(p_low, p_high));
            }
        }
        let s1 = hsum4_i32x8(sumi);
        let s2 = hsum4_i32x4(core::array::from_fn(|t| mins_dot_bsums(mins, &y[t][b].bsums)));
        let r = _mm_mul_ps(_mm_cvtepi32_ps(s1), _mm_set1_ps(f16_to_f32(bx.d)));
        let r = _mm_fnmadd_ps(_mm_set1_ps(f16_to_f32(bx.dmin)), _mm_cvtepi32_ps(s2), r);
        // SAFETY: dy holds 4 floats per block; loadu has no alignment requirement.
        acc = _mm_fmadd_ps(r, unsafe { _mm_loadu_ps(dy[4 * b..4 * b + 4].as_ptr()) }, acc);
    }
    acc
}

/// Per token t (lane t): acc = fma(f32(s1) * d, dy, acc) over the blocks.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn vec_dot4_q6_k(x: &[BlockQ6K], y: [&[BlockQ8K]; 4], dy: &[f32]) -> __m128 {
    let low_nibble = _mm256_set1_epi8(0x0F);
    let bits45 = _mm256_set1_epi8(0x30);
    let mut acc = _mm_setzero_ps();
    for (b, bx) in x.iter().enumerate() {
        let (ql_chunks, _) = chunks::<_, 32>(&bx.ql); // 4 x 32: two per 128-element half
        let (qh_chunks, _) = chunks::<_, 32>(&bx.qh); // 2 x 32: one per half
        let mut sumi = [_mm256_setzero_si256(); 4];
        for half in 0..2 {
            let ql0 = load_u8x32(&ql_chunks[2 * half]);
            let ql1 = load_u8x32(&ql_chunks[2 * half + 1]);
            let qh = load_u8x32(&qh_chunks[half]);
            // The four 32-element quarters of this half, q in 0..64 (as in `q6_k::block_sums`).
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
                // Low 128 bits are group g, high 128 bits group g + 1.
                let g = 8 * half + 2 * k;
                let scale = _mm256_set_m128i(
                    _mm_set1_epi16(i16::from(bx.scales[g + 1])),
                    _mm_set1_epi16(i16::from(bx.scales[g])),
                );
                for t in 0..4 {
                    let (y_chunks, _) = chunks::<_, 32>(&y[t][b].qs); // 8 x 32 activations
                    let p = _mm256_madd_epi16(
                        _mm256_maddubs_epi16(q, load_i8x32(&y_chunks[4 * half + k])),
                        scale,
                    );
                    sumi[t] = _mm256_add_epi32(sumi[t], p);
                }
            }
        }
        // The unsigned codes are q + 32: take 32 * sum_g scale_g * bsum_g back out, per token.
        // SAFETY: the reference covers 16 readable bytes; loadu has no alignment requirement.
        let scales = _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(bx.scales.as_ptr().cast()) });
        for (t, s) in sumi.iter_mut().enumerate() {
            // SAFETY: the reference covers 32 readable bytes; loadu has no alignment requirement.
            let bsums = unsafe { _mm256_loadu_si256(y[t][b].bsums.as_ptr().cast()) };
            *s = _mm256_sub_epi32(*s, _mm256_slli_epi32::<5>(_mm256_madd_epi16(bsums, scales)));
        }
        let r = _mm_mul_ps(_mm_cvtepi32_ps(hsum4_i32x8(sumi)), _mm_set1_ps(f16_to_f32(bx.d)));
        // SAFETY: dy holds 4 floats per block; loadu has no alignment requirement.
        acc = _mm_fmadd_ps(r, unsafe { _mm_loadu_ps(dy[4 * b..4 * b + 4].as_ptr()) }, acc);
    }
    acc
}

/// The eight 6-bit scales and eight 6-bit mins of a Q4_K/Q5_K block at once (the layout of
/// `BlockQ4K::scale_min`, decoded with word-wide masks instead of per sub-block).
#[inline]
fn q4_k_scales_mins(packed: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let word = |i: usize| {
        u32::from_le_bytes([packed[4 * i], packed[4 * i + 1], packed[4 * i + 2], packed[4 * i + 3]])
    };
    let (w0, w1, w2) = (word(0), word(1), word(2));
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    // Sub-blocks 0..4: the low 6 bits of bytes 0..4 (scales) and 4..8 (mins). Sub-blocks 4..8:
    // the low (scales) and high (mins) nibbles of bytes 8..12, topped by bits 6..8 of bytes 0..8.
    let scales_lo = w0 & LOW6;
    let scales_hi = (w2 & LOW4) | (((w0 >> 6) & LOW2) << 4);
    let mins_lo = w1 & LOW6;
    let mins_hi = ((w2 >> 4) & LOW4) | (((w1 >> 6) & LOW2) << 4);
    let join = |lo: u32, hi: u32| (u64::from(lo) | (u64::from(hi) << 32)).to_le_bytes();
    (join(scales_lo, scales_hi), join(mins_lo, mins_hi))
}

/// [sum of v[0], sum of v[1], sum of v[2], sum of v[3]] over their 8 lanes (exact).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum4_i32x8(v: [__m256i; 4]) -> __m128i {
    let pairs = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    _mm_add_epi32(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256::<1>(pairs))
}

/// [sum of v[0], .., sum of v[3]] over their 4 lanes (exact).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum4_i32x4(v: [__m128i; 4]) -> __m128i {
    _mm_hadd_epi32(_mm_hadd_epi32(v[0], v[1]), _mm_hadd_epi32(v[2], v[3]))
}
