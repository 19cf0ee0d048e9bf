//! One weight row against four activation rows at once (prompt processing).
//!
//! Each weight block is unpacked once and multiplied with four tokens' blocks, instead of once per
//! token. Per (row, token) the arithmetic is exactly that of the single-row kernels in `q4.rs` and
//! `q8.rs` (same lane order, same accumulation), so results are bit-identical to them.

use core::arch::x86_64::*;

use fovea_formats::blocks::{BlockQ4_1, BlockQ8_0, BlockQ8_1, QK};

use alloc::vec;

use super::common::{dot_u8_i8, f16_pair, f16_to_f32, hsum_f32x8, load_i8x32, nibbles_u8x32, scale_product};

/// Rows of up to this many blocks (2048 elements) keep their converted scales on the stack.
const STACK_BLOCKS: usize = 64;

/// Rows x (nr, n) against four tokens y[t] (n,): out (4, nr), out[t * nr + r] = dot(x[r], y[t]).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. x holds nr * n / 32 blocks and each y[t] n / 32.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot4_rows_q4_1_q8_1(n: usize, x: &[BlockQ4_1], y: [&[BlockQ8_1]; 4], out: &mut [f32]) {
    let nb = n / QK;
    let nr = out.len() / 4;
    // The tokens' (d, s) as f32, converted once for all rows: sy (nb, 4 tokens, 2). On the
    // stack for rows up to STACK_BLOCKS blocks: a heap allocation per call cost 14% of pp512.
    let mut stack = [0.0f32; 8 * STACK_BLOCKS];
    let mut heap = vec![];
    let sy: &mut [f32] = if nb <= STACK_BLOCKS {
        &mut stack[..nb * 8]
    } else {
        heap.resize(nb * 8, 0.0);
        &mut heap
    };
    for (b, pairs) in sy.chunks_exact_mut(8).enumerate() {
        for t in 0..4 {
            pairs[2 * t] = f16_to_f32(y[t][b].d);
            pairs[2 * t + 1] = f16_to_f32(y[t][b].s);
        }
    }
    for r in 0..nr {
        let quad = vec_dot4_q4_1_q8_1(n, &x[r * nb..(r + 1) * nb], y, sy);
        for (t, v) in quad.into_iter().enumerate() {
            out[t * nr + r] = v;
        }
    }
}

/// Rows x (nr, n) against four tokens y[t] (n,): out (4, nr), out[t * nr + r] = dot(x[r], y[t]).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C. x holds nr * n / 32 blocks and each y[t] n / 32.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot4_rows_q8_0_q8_0(n: usize, x: &[BlockQ8_0], y: [&[BlockQ8_0]; 4], out: &mut [f32]) {
    let nb = n / QK;
    let nr = out.len() / 4;
    for r in 0..nr {
        let quad = vec_dot4_q8_0_q8_0(n, &x[r * nb..(r + 1) * nb], y);
        for (t, v) in quad.into_iter().enumerate() {
            out[t * nr + r] = v;
        }
    }
}

/// out[t] = dot(x (n,), y[t] (n,)) for t in 0..4; the per-token math of `vec_dot_q4_1_q8_1`
/// (the scale products are the same f32 products, only loaded pre-converted from `sy`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn vec_dot4_q4_1_q8_1(n: usize, x: &[BlockQ4_1], y: [&[BlockQ8_1]; 4], sy: &[f32]) -> [f32; 4] {
    let nb = n / QK;
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut mins = [_mm_setzero_ps(); 4];
    for (b, bx) in x[..nb].iter().enumerate() {
        let qx = nibbles_u8x32(&bx.qs);
        let dm = f16_pair(bx.d, bx.m);
        let pairs = &sy[b * 8..b * 8 + 8];
        for t in 0..4 {
            let sumi = dot_u8_i8(qx, load_i8x32(&y[t][b].qs));
            // SAFETY: pairs[2t..2t+2] is in bounds (8 floats per block); an unaligned 8-byte load.
            let ds = _mm_castpd_ps(unsafe { _mm_load_sd(pairs[2 * t..].as_ptr().cast()) });
            let scales = _mm_mul_ps(dm, ds);
            acc[t] = _mm256_fmadd_ps(_mm256_broadcastss_ps(scales), _mm256_cvtepi32_ps(sumi), acc[t]);
            mins[t] = _mm_add_ps(mins[t], scales);
        }
    }
    core::array::from_fn(|t| hsum_f32x8(acc[t]) + _mm_cvtss_f32(_mm_movehdup_ps(mins[t])))
}

/// out[t] = dot(x (n,), y[t] (n,)) for t in 0..4; the per-token math of `vec_dot_q8_0_q8_0`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn vec_dot4_q8_0_q8_0(n: usize, x: &[BlockQ8_0], y: [&[BlockQ8_0]; 4]) -> [f32; 4] {
    let nb = n / QK;
    let mut acc = [_mm256_setzero_ps(); 4];
    for (b, bx) in x[..nb].iter().enumerate() {
        let qx = load_i8x32(&bx.qs);
        // |x| once per block; each token's y takes x's signs (the `dot_i8_i8` identity).
        let ax = _mm256_sign_epi8(qx, qx);
        for t in 0..4 {
            let by = &y[t][b];
            let sumi = dot_u8_i8(ax, _mm256_sign_epi8(load_i8x32(&by.qs), qx));
            acc[t] = _mm256_fmadd_ps(scale_product(bx.d, by.d), _mm256_cvtepi32_ps(sumi), acc[t]);
        }
    }
    core::array::from_fn(|t| hsum_f32x8(acc[t]))
}
