//! `Q5_0 x Q8_0` for a tile of weight rows against every token of a batch, with AVX-512 VNNI:
//! two tokens per 512-bit register (token 2p in the low 8 lanes, 2p + 1 in the high 8).
//!
//! Bit-identical to the AVX2 `vec_dot_q5_0_q8_0` per (row, token): lane l of a token holds the
//! exact integer sum of products 4l..4l+4 of the block (here as sum(u * y) - 16 * sum(y) with the
//! unsigned code u = q + 16, one `vpdpbusd` started from the precomputed -16 * sum(y)), scaled by
//! the same f32 product dx * dy and accumulated by the same FMA per block, then reduced in the
//! same order. Work is shared both ways: each weight block is unpacked once per call for all
//! tokens, each token pair is prepared (quants side by side, -16 * sum(y), dy) once per call for
//! all rows.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use alloc::vec::Vec;

use fovea_formats::blocks::{BlockQ5_0, BlockQ8_0, QK};

use super::common::{hsum_halves, init_with, join_i256, join_ps256, load_i8x32};
use crate::x86::avx2::f16_to_f32;

/// One block of a token pair, prepared for the row loop.
#[derive(Clone, Copy)]
#[repr(C)]
struct PairBlock {
    /// The two tokens' 32 quants: token 2p in bytes 0..32, token 2p + 1 in bytes 32..64.
    q: __m512i,
    /// -16 * (sum of the 4 quants of lane l), per lane: the start value of the VNNI dot.
    bias: __m512i,
    /// The tokens' scales, each in 8 lanes.
    d: __m512,
}

/// One weight block unpacked: the 32 codes q + 16 and the scale as f32.
#[derive(Clone, Copy)]
#[repr(C)]
struct RowBlock {
    u: __m256i,
    d: f32,
}

/// Storage kept on the stack up to this many elements, else on the heap: 16 rows of 32 blocks
/// (the engine's row tile at Gemma's width) and two token pairs of 32 blocks.
const STACK_ROW_BLOCKS: usize = 16 * 32;
const STACK_PAIR_BLOCKS: usize = 2 * 32;

/// Rows x (nr, n) against tokens y (n_tok, n): out (n_tok, nr), out[t * nr + r] = dot(x[r], y[t]).
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL/VNNI, AVX2, FMA and F16C. x holds nr * n / 32 blocks,
/// y n_tok * n / 32, out n_tok * nr floats.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn vec_dot_tile_q5_0_q8_0_vnni(
    n: usize,
    x: &[BlockQ5_0],
    y: &[BlockQ8_0],
    n_tok: usize,
    out: &mut [f32],
) {
    let nb = n / QK;
    if nb == 0 || n_tok == 0 {
        out.fill(0.0);
        return;
    }
    let nr = out.len() / n_tok;
    // Uninitialised storage: zeroing it per call measured at 14% of prompt processing.
    let mut row_stack = [const { MaybeUninit::<RowBlock>::uninit() }; STACK_ROW_BLOCKS];
    let mut row_heap = Vec::new();
    let unpacked = init_with(&mut row_stack, &mut row_heap, nr * nb, |i| {
        let bx = &x[i];
        RowBlock { u: codes_u8x32(bx), d: f16_to_f32(bx.d) }
    });
    let mut pair_stack = [const { MaybeUninit::<PairBlock>::uninit() }; STACK_PAIR_BLOCKS];
    let mut pair_heap = Vec::new();
    for t0 in (0..n_tok).step_by(4) {
        // Four tokens (two pairs); a short last group repeats its last token and drops the copies.
        let token = |k: usize| &y[(t0 + k).min(n_tok - 1) * nb..][..nb];
        let tokens = [token(0), token(1), token(2), token(3)];
        let pairs =
            init_with(&mut pair_stack, &mut pair_heap, 2 * nb, |i| prepare_pair(tokens, i / 2, i % 2));
        let valid = (n_tok - t0).min(4);
        // Four rows at a time: eight independent FMA chains hide the FMA latency of one row.
        let mut r = 0;
        while r + 4 <= nr {
            let rows: [&[RowBlock]; 4] = core::array::from_fn(|i| &unpacked[(r + i) * nb..(r + i + 1) * nb]);
            store_rows(out, nr, r, t0, valid, dot_rows(rows, pairs));
            r += 4;
        }
        for r in r..nr {
            store_rows(out, nr, r, t0, valid, dot_rows([&unpacked[r * nb..(r + 1) * nb]], pairs));
        }
    }
}

/// Block b of token pair p (tokens 2p, 2p + 1 of `tokens`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn prepare_pair(tokens: [&[BlockQ8_0]; 4], b: usize, p: usize) -> PairBlock {
    let (lo, hi) = (&tokens[2 * p][b], &tokens[2 * p + 1][b]);
    let q = join_i256(load_i8x32(&lo.qs), load_i8x32(&hi.qs));
    let sums16 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(16), q);
    let d = join_ps256(_mm256_set1_ps(f16_to_f32(lo.d)), _mm256_set1_ps(f16_to_f32(hi.d)));
    PairBlock { q, bias: _mm512_sub_epi32(_mm512_setzero_si512(), sums16), d }
}

/// acc[i][p]: row i against token pair p, 8 lanes per token, before the final reduction.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn dot_rows<const R: usize>(rows: [&[RowBlock]; R], pairs: &[PairBlock]) -> [[__m512; 2]; R] {
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    for (b, pair) in pairs.chunks_exact(2).enumerate() {
        for (acc, row) in acc.iter_mut().zip(rows) {
            let u = _mm512_broadcast_i64x4(row[b].u);
            let dx = _mm512_set1_ps(row[b].d);
            for (acc, pb) in acc.iter_mut().zip(pair) {
                let sumi = _mm512_dpbusd_epi32(pb.bias, u, pb.q);
                *acc = _mm512_fmadd_ps(_mm512_mul_ps(dx, pb.d), _mm512_cvtepi32_ps(sumi), *acc);
            }
        }
    }
    acc
}

/// out (n_tok, nr): tokens t0..t0 + valid of rows r..r + R, each reduced as `hsum_f32x8` reduces
/// the AVX2 dot.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn store_rows<const R: usize>(
    out: &mut [f32],
    nr: usize,
    r: usize,
    t0: usize,
    valid: usize,
    acc: [[__m512; 2]; R],
) {
    for (i, acc) in acc.into_iter().enumerate() {
        for (p, acc) in acc.into_iter().enumerate() {
            let sums = hsum_halves(acc);
            for (k, v) in sums.into_iter().enumerate().take(valid.saturating_sub(2 * p)) {
                out[(t0 + 2 * p + k) * nr + r + i] = v;
            }
        }
    }
}

/// The block's 32 codes q + 16 in 0..32, element order: nibbles plus 16 where the fifth bit is set.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn codes_u8x32(bx: &BlockQ5_0) -> __m256i {
    // SAFETY: the reference covers 16 readable bytes; loadu has no alignment requirement.
    let packed = unsafe { _mm_loadu_si128(bx.qs.as_ptr().cast()) };
    let nibbles =
        _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16::<4>(packed), packed), _mm256_set1_epi8(0x0F));
    _mm256_mask_add_epi8(nibbles, u32::from_le_bytes(bx.qh), nibbles, _mm256_set1_epi8(16))
}
