//! `Q4_1 x Q8_1` for a tile of weight rows against every token of a batch, with AVX-512 VNNI:
//! two tokens per 512-bit register (token 2p in the low 8 lanes, 2p + 1 in the high 8).
//!
//! Bit-identical to the AVX2 `vec_dot_q4_1_q8_1` per (row, token), the kernel that runs
//! SmolLM2's prompts without this tile: lane l of a token holds the exact integer sum of products
//! 4l..4l+4 of the block (codes 0..16 are already unsigned, so one `vpdpbusd` from zero), scaled
//! by the same f32 product dx * dy and accumulated by the same FMA per block; the min term
//! mx * sy is the same f32 product added in block order; the lanes are reduced in the same order.
//! Work is shared both ways: each weight block is unpacked once per call for all tokens, each
//! token pair is prepared once per call for all rows.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use alloc::vec::Vec;

use fovea_formats::blocks::{BlockQ4_1, BlockQ8_1, QK};

use super::common::{hsum_halves, init_with, join_i256, join_ps256, load_i8x32};
use crate::x86::avx2::f16_to_f32;

/// One block of a token pair, prepared for the row loop.
#[derive(Clone, Copy)]
#[repr(C)]
struct PairBlock {
    /// The two tokens' 32 quants: token 2p in bytes 0..32, token 2p + 1 in bytes 32..64.
    q: __m512i,
    /// The tokens' scales dy, each in 8 lanes.
    d: __m512,
    /// The tokens' sy = dy * sum(qy) (stored in the block), each in 8 lanes.
    s: __m512,
}

/// One weight block unpacked: the 32 codes (0..16, element order), scale and min as f32.
#[derive(Clone, Copy)]
#[repr(C)]
struct RowBlock {
    u: __m256i,
    d: f32,
    m: f32,
}

/// Storage kept on the stack up to this many elements, else on the heap: 16 rows of 48 blocks
/// (the engine's row tile at SmolLM2's widest rows, 1536) and two token pairs of 48 blocks.
const STACK_ROW_BLOCKS: usize = 16 * 48;
const STACK_PAIR_BLOCKS: usize = 2 * 48;

/// Rows x (nr, n) against tokens y (n_tok, n): out (n_tok, nr), out[t * nr + r] = dot(x[r], y[t]).
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL/VNNI, AVX2, FMA and F16C. x holds nr * n / 32 blocks,
/// y n_tok * n / 32, out n_tok * nr floats.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn vec_dot_tile_q4_1_q8_1_vnni(
    n: usize,
    x: &[BlockQ4_1],
    y: &[BlockQ8_1],
    n_tok: usize,
    out: &mut [f32],
) {
    let nb = n / QK;
    if nb == 0 || n_tok == 0 {
        out.fill(0.0);
        return;
    }
    let nr = out.len() / n_tok;
    // Uninitialised storage, as in the Q5_0 tile (zeroing it per call is measurable).
    let mut row_stack = [const { MaybeUninit::<RowBlock>::uninit() }; STACK_ROW_BLOCKS];
    let mut row_heap = Vec::new();
    let unpacked = init_with(&mut row_stack, &mut row_heap, nr * nb, |i| {
        let bx = &x[i];
        RowBlock { u: codes_u8x32(&bx.qs), d: f16_to_f32(bx.d), m: f16_to_f32(bx.m) }
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
fn prepare_pair(tokens: [&[BlockQ8_1]; 4], b: usize, p: usize) -> PairBlock {
    let (lo, hi) = (&tokens[2 * p][b], &tokens[2 * p + 1][b]);
    let both = |a, b| join_ps256(_mm256_set1_ps(f16_to_f32(a)), _mm256_set1_ps(f16_to_f32(b)));
    PairBlock {
        q: join_i256(load_i8x32(&lo.qs), load_i8x32(&hi.qs)),
        d: both(lo.d, hi.d),
        s: both(lo.s, hi.s),
    }
}

/// Per row i and token pair p: the scaled integer sums (acc) and the min terms (mins), 8 lanes
/// per token, before the final reduction.
struct Sums<const R: usize> {
    acc: [[__m512; 2]; R],
    mins: [[__m512; 2]; R],
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn dot_rows<const R: usize>(rows: [&[RowBlock]; R], pairs: &[PairBlock]) -> Sums<R> {
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    let mut mins = [[_mm512_setzero_ps(); 2]; R];
    for (b, pair) in pairs.chunks_exact(2).enumerate() {
        for ((acc, mins), row) in acc.iter_mut().zip(mins.iter_mut()).zip(rows) {
            let u = _mm512_broadcast_i64x4(row[b].u);
            let (dx, mx) = (_mm512_set1_ps(row[b].d), _mm512_set1_ps(row[b].m));
            for ((acc, mins), pb) in acc.iter_mut().zip(mins.iter_mut()).zip(pair) {
                let sumi = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, pb.q);
                *acc = _mm512_fmadd_ps(_mm512_mul_ps(dx, pb.d), _mm512_cvtepi32_ps(sumi), *acc);
                // A product then a sum, two roundings, as the AVX2 kernel's mins lane.
                *mins = _mm512_add_ps(*mins, _mm512_mul_ps(mx, pb.s));
            }
        }
    }
    Sums { acc, mins }
}

/// out (n_tok, nr): tokens t0..t0 + valid of rows r..r + R, each reduced as the AVX2 dot reduces:
/// the 8 lanes by `hsum_f32x8`, then plus the min term.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn store_rows<const R: usize>(out: &mut [f32], nr: usize, r: usize, t0: usize, valid: usize, sums: Sums<R>) {
    for (i, (acc, mins)) in sums.acc.into_iter().zip(sums.mins).enumerate() {
        for (p, (acc, mins)) in acc.into_iter().zip(mins).enumerate() {
            let dots = hsum_halves(acc);
            // Lane 0 holds token 2p's min sum, lane 8 token 2p + 1's (all 8 lanes of a half agree).
            let m = [_mm512_cvtss_f32(mins), _mm512_cvtss_f32(_mm512_shuffle_f32x4::<0b1010>(mins, mins))];
            for k in 0..valid.saturating_sub(2 * p).min(2) {
                out[(t0 + 2 * p + k) * nr + r + i] = dots[k] + m[k];
            }
        }
    }
}

/// The block's 32 codes 0..16 in element order: low nibbles are elements 0..16, high 16..32.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn codes_u8x32(qs: &[u8; 16]) -> __m256i {
    // SAFETY: the reference covers 16 readable bytes; loadu has no alignment requirement.
    let packed = unsafe { _mm_loadu_si128(qs.as_ptr().cast()) };
    _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16::<4>(packed), packed), _mm256_set1_epi8(0x0F))
}
