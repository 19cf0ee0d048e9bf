//! K-quant dots in the tiled f32 order (`quant::tiled_k`, what llama.cpp runs for batches of 8+
//! rows) for a tile of weight rows against every token of a batch, with AVX-512 VNNI: two tokens
//! per 512-bit register (token 2p in the low 256 bits, 2p + 1 in the high).
//!
//! Bit-identical to `vec_dot_q4_k_q8_k_tiled` / `vec_dot_q6_k_q8_k_tiled`: per block the integer
//! sums (s1, and s2 for the mins of Q4_K) are exact whatever the order (here one `vpdpbusd` per
//! 32 elements, then `vpmaddwd` by the sub-block scales), and the f32 epilogue of the reference
//! runs lane-wise, which rounds exactly as its scalar form. Each weight block is unpacked (codes,
//! scales) once per call for all tokens; each token pair is prepared once per call for all rows.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use alloc::vec::Vec;

use fovea_formats::blocks::{BlockQ4K, BlockQ6K, BlockQ8K, QK_K};

use super::common::{init_with, join_i256};
use crate::x86::avx2::f16_to_f32;

/// Storage kept on the stack up to this many elements, else on the heap: 16 rows of 8 blocks
/// (the engine's row tile at Gemma's widest K-quant rows, 2048) and two token pairs of 8 blocks.
const STACK_ROW_BLOCKS: usize = 16 * 8;
const STACK_PAIR_BLOCKS: usize = 2 * 8;

/// One K-quant type's pieces of the tile: its unpacked weight block and its per-block dot.
trait Kind {
    type Block;
    type Row: Copy;
    /// # Safety
    /// The CPU must support what the tile kernels enable.
    unsafe fn unpack(bx: &Self::Block) -> Self::Row;
    /// acc[i][p] += row i's block against token pair p's, token 2p in lane 0, 2p + 1 in lane 4.
    /// # Safety
    /// As for `unpack`.
    unsafe fn dot_block<const R: usize>(
        acc: &mut [[__m512; 2]; R],
        rows: [&Self::Row; R],
        pair: &[PairBlock],
    );
}

/// One Q8_K block of a token pair.
#[derive(Clone, Copy)]
#[repr(C)]
struct PairBlock {
    /// The 32 quants of each 32-element group: token 2p's, then token 2p + 1's.
    q: [__m512i; 8],
    /// bsums of token 2p (16 i16), then of token 2p + 1.
    bsums: __m512i,
    /// bsums paired (bsums[2s] + bsums[2s + 1], s = 0..8) as i32, token 2p then 2p + 1.
    bs: __m512i,
    /// dy of token 2p in lane 0, of token 2p + 1 in lane 4.
    dy: __m512,
}

/// Rows x (nr, n) as Q4_K against Q8_K tokens y (n_tok, n): out (n_tok, nr), out[t * nr + r] =
/// tiled dot(x[r], y[t]).
///
/// # Safety
/// The CPU must support AVX-512 F/BW/VL/VNNI, AVX2, FMA and F16C. x holds nr * n / 256 blocks,
/// y n_tok * n / 256, out n_tok * nr floats.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn vec_dot_tile_q4_k_q8_k_tiled_vnni(
    n: usize,
    x: &[BlockQ4K],
    y: &[BlockQ8K],
    n_tok: usize,
    out: &mut [f32],
) {
    // SAFETY: the caller guarantees the features Q4K's pieces enable.
    unsafe { tile::<Q4K>(n, x, y, n_tok, out) }
}

/// As [`vec_dot_tile_q4_k_q8_k_tiled_vnni`] for Q6_K rows.
///
/// # Safety
/// As for [`vec_dot_tile_q4_k_q8_k_tiled_vnni`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub unsafe fn vec_dot_tile_q6_k_q8_k_tiled_vnni(
    n: usize,
    x: &[BlockQ6K],
    y: &[BlockQ8K],
    n_tok: usize,
    out: &mut [f32],
) {
    // SAFETY: the caller guarantees the features Q6K's pieces enable.
    unsafe { tile::<Q6K>(n, x, y, n_tok, out) }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn tile<K: Kind>(n: usize, x: &[K::Block], y: &[BlockQ8K], n_tok: usize, out: &mut [f32]) {
    let nb = n / QK_K;
    if nb == 0 || n_tok == 0 {
        out.fill(0.0);
        return;
    }
    let nr = out.len() / n_tok;
    let mut row_stack = [const { MaybeUninit::<K::Row>::uninit() }; STACK_ROW_BLOCKS];
    let mut row_heap = Vec::new();
    // SAFETY: the caller guarantees the features.
    let unpacked = init_with(&mut row_stack, &mut row_heap, nr * nb, |i| unsafe { K::unpack(&x[i]) });
    let mut pair_stack = [const { MaybeUninit::<PairBlock>::uninit() }; STACK_PAIR_BLOCKS];
    let mut pair_heap = Vec::new();
    for t0 in (0..n_tok).step_by(4) {
        // Four tokens (two pairs); a short last group repeats its last token and drops the copies.
        let token = |k: usize| &y[(t0 + k).min(n_tok - 1) * nb..][..nb];
        let tokens = [token(0), token(1), token(2), token(3)];
        let pairs =
            init_with(&mut pair_stack, &mut pair_heap, 2 * nb, |i| prepare_pair(tokens, i / 2, i % 2));
        let valid = (n_tok - t0).min(4);
        // Four rows at a time: eight independent FMA chains.
        let mut r = 0;
        while r + 4 <= nr {
            let mut acc = [[_mm512_setzero_ps(); 2]; 4];
            for (b, pair) in pairs.chunks_exact(2).enumerate() {
                let rows = core::array::from_fn(|i| &unpacked[(r + i) * nb + b]);
                // SAFETY: the caller guarantees the features.
                unsafe { K::dot_block(&mut acc, rows, pair) };
            }
            store_rows(out, nr, r, t0, valid, acc);
            r += 4;
        }
        for r in r..nr {
            let mut acc = [[_mm512_setzero_ps(); 2]; 1];
            for (b, pair) in pairs.chunks_exact(2).enumerate() {
                // SAFETY: the caller guarantees the features.
                unsafe { K::dot_block(&mut acc, [&unpacked[r * nb + b]], pair) };
            }
            store_rows(out, nr, r, t0, valid, acc);
        }
    }
}

/// Block b of token pair p (tokens 2p, 2p + 1 of `tokens`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn prepare_pair(tokens: [&[BlockQ8K]; 4], b: usize, p: usize) -> PairBlock {
    let (lo, hi) = (&tokens[2 * p][b], &tokens[2 * p + 1][b]);
    let q = core::array::from_fn(|s| {
        // SAFETY: qs holds 256 bytes and 32s + 32 <= 256; loadu has no alignment requirement.
        let (a, b) = unsafe {
            (
                _mm256_loadu_si256(lo.qs.as_ptr().add(32 * s).cast()),
                _mm256_loadu_si256(hi.qs.as_ptr().add(32 * s).cast()),
            )
        };
        join_i256(a, b)
    });
    // bsums[2s] + bsums[2s + 1] for s = 0..8, as i32.
    let paired = |y: &BlockQ8K| {
        // SAFETY: bsums holds 16 i16 (32 bytes); loadu has no alignment requirement.
        let bsums = unsafe { _mm256_loadu_si256(y.bsums.as_ptr().cast()) };
        _mm256_madd_epi16(bsums, _mm256_set1_epi16(1))
    };
    let dy = _mm512_setr_ps(lo.d, 0.0, 0.0, 0.0, hi.d, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    // SAFETY: bsums holds 16 i16 (32 bytes); loadu has no alignment requirement.
    let raw = |y: &BlockQ8K| unsafe { _mm256_loadu_si256(y.bsums.as_ptr().cast()) };
    PairBlock { q, bsums: join_i256(raw(lo), raw(hi)), bs: join_i256(paired(lo), paired(hi)), dy }
}

// ---- Q4_K ----

/// One Q4_K block unpacked.
#[derive(Clone, Copy)]
#[repr(C)]
struct Q4KRow {
    /// The codes 0..16 of sub-block s (32 elements, element order).
    codes: [__m256i; 8],
    /// Scales as `vpmaddwd` multipliers of `packs(t_2k, t_2k+1)`: per 128-bit lane the i16 words
    /// [sc_2k x 4, sc_2k+1 x 4].
    scales: [__m512i; 4],
    /// The 8 mins as i32, twice (one copy per token of a pair).
    mins: __m512i,
    d: f32,
    dmin: f32,
}

struct Q4K;

impl Kind for Q4K {
    type Block = BlockQ4K;
    type Row = Q4KRow;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
    unsafe fn unpack(bx: &BlockQ4K) -> Q4KRow {
        let low_nibble = _mm256_set1_epi8(0x0F);
        let mut codes = [_mm256_setzero_si256(); 8];
        for (c, pair) in codes.chunks_exact_mut(2).enumerate() {
            // SAFETY: qs holds 128 bytes and 32c + 32 <= 128; loadu has no alignment requirement.
            let q = unsafe { _mm256_loadu_si256(bx.qs.as_ptr().add(32 * c).cast()) };
            // Chunk c's 64 elements: the low nibbles are sub-block 2c, the high ones 2c + 1.
            pair[0] = _mm256_and_si256(q, low_nibble);
            pair[1] = _mm256_and_si256(_mm256_srli_epi16::<4>(q), low_nibble);
        }
        let (sc, m): ([i32; 8], [i32; 8]) = {
            let both: [(u8, u8); 8] = core::array::from_fn(|s| bx.scale_min(s));
            (core::array::from_fn(|s| i32::from(both[s].0)), core::array::from_fn(|s| i32::from(both[s].1)))
        };
        // An i16 scale in both words of a dword.
        let w = |s: usize| sc[s] | (sc[s] << 16);
        let scales = core::array::from_fn(|k| {
            _mm512_broadcast_i32x4(_mm_setr_epi32(w(2 * k), w(2 * k), w(2 * k + 1), w(2 * k + 1)))
        });
        let mins = _mm512_setr_epi32(
            m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7],
        );
        Q4KRow { codes, scales, mins, d: f16_to_f32(bx.d), dmin: f16_to_f32(bx.dmin) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn dot_block<const R: usize>(acc: &mut [[__m512; 2]; R], rows: [&Q4KRow; R], pair: &[PairBlock]) {
        for (acc, rb) in acc.iter_mut().zip(rows) {
            let codes: [__m512i; 8] = core::array::from_fn(|s| _mm512_broadcast_i64x4(rb.codes[s]));
            let (d, dmin) = (_mm512_set1_ps(rb.d), _mm512_set1_ps(rb.dmin));
            for (acc, pb) in acc.iter_mut().zip(pair) {
                let mut s1 = _mm512_setzero_si512();
                for k in 0..4 {
                    let t0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes[2 * k], pb.q[2 * k]);
                    let t1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes[2 * k + 1], pb.q[2 * k + 1]);
                    // |t| <= 4 * 15 * 128 fits i16, so the saturating pack is exact.
                    s1 = _mm512_add_epi32(s1, _mm512_madd_epi16(_mm512_packs_epi32(t0, t1), rb.scales[k]));
                }
                let s2 = _mm512_mullo_epi32(rb.mins, pb.bs);
                let (s1, s2) = totals(s1, s2);
                let r = _mm512_mul_ps(_mm512_cvtepi32_ps(s1), d);
                let r = _mm512_fnmadd_ps(dmin, _mm512_cvtepi32_ps(s2), r);
                *acc = _mm512_fmadd_ps(r, pb.dy, *acc);
            }
        }
    }
}

// ---- Q6_K ----

/// One Q6_K block unpacked.
#[derive(Clone, Copy)]
#[repr(C)]
struct Q6KRow {
    /// The codes 0..64 of 32-element group g (element order).
    codes: [__m256i; 8],
    /// Scales as `vpmaddwd` multipliers of `packs(t_2k, t_2k+1)` (groups 2k, 2k + 1): 128-bit
    /// lane 0 of a token holds its group's first 16 elements (sub-block 2g), lane 1 the last 16
    /// (2g + 1), so per token the i16 words are [sc_4k x 4, sc_4k+2 x 4 | sc_4k+1 x 4,
    /// sc_4k+3 x 4].
    scales: [__m512i; 4],
    /// The 16 scales as i16, twice: the multipliers of the tokens' bsums for the bias term.
    sc16: __m512i,
    d: f32,
}

struct Q6K;

impl Kind for Q6K {
    type Block = BlockQ6K;
    type Row = Q6KRow;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
    unsafe fn unpack(bx: &BlockQ6K) -> Q6KRow {
        let (mask4, mask2) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(0x03));
        let mut codes = [_mm256_setzero_si256(); 8];
        for (g, code) in codes.iter_mut().enumerate() {
            let (h, k) = (g / 4, g % 4);
            // SAFETY: 64h + 32(k % 2) + 32 <= 128 = ql.len() and 32h + 32 <= 64 = qh.len(); loadu
            // has no alignment requirement.
            let (ql, qh) = unsafe {
                (
                    _mm256_loadu_si256(bx.ql.as_ptr().add(64 * h + 32 * (k % 2)).cast()),
                    _mm256_loadu_si256(bx.qh.as_ptr().add(32 * h).cast()),
                )
            };
            let low = if k < 2 { ql } else { _mm256_srli_epi16::<4>(ql) };
            let high = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * k as i32)), mask2);
            *code = _mm256_or_si256(_mm256_and_si256(low, mask4), _mm256_slli_epi16::<4>(high));
        }
        // An i16 scale in both words of a dword.
        let w = |s: usize| {
            let v = i32::from(bx.scales[s] as i16 as u16);
            v | (v << 16)
        };
        let scales = core::array::from_fn(|k| {
            let (a, b, c, d) = (w(4 * k), w(4 * k + 2), w(4 * k + 1), w(4 * k + 3));
            _mm512_setr_epi32(a, a, b, b, c, c, d, d, a, a, b, b, c, c, d, d)
        });
        let sc: [i16; 16] = core::array::from_fn(|s| i16::from(bx.scales[s]));
        // SAFETY: sc holds 16 i16 (32 bytes); loadu has no alignment requirement.
        let sc = unsafe { _mm256_loadu_si256(sc.as_ptr().cast()) };
        Q6KRow { codes, scales, sc16: join_i256(sc, sc), d: f16_to_f32(bx.d) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn dot_block<const R: usize>(acc: &mut [[__m512; 2]; R], rows: [&Q6KRow; R], pair: &[PairBlock]) {
        for (acc, rb) in acc.iter_mut().zip(rows) {
            let codes: [__m512i; 8] = core::array::from_fn(|g| _mm512_broadcast_i64x4(rb.codes[g]));
            let d = _mm512_set1_ps(rb.d);
            for (acc, pb) in acc.iter_mut().zip(pair) {
                // s1 = sum_s sc_s * raw_s - 32 * sum_s sc_s * bsum_s, both exact in i32.
                let bias = _mm512_madd_epi16(pb.bsums, rb.sc16);
                let mut s1 = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32::<5>(bias));
                for k in 0..4 {
                    let t0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes[2 * k], pb.q[2 * k]);
                    let t1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes[2 * k + 1], pb.q[2 * k + 1]);
                    // |t| <= 4 * 63 * 128 = 32256 fits i16, so the saturating pack is exact.
                    s1 = _mm512_add_epi32(s1, _mm512_madd_epi16(_mm512_packs_epi32(t0, t1), rb.scales[k]));
                }
                let (s1, _) = totals(s1, s1);
                *acc = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s1), d), pb.dy, *acc);
            }
        }
    }
}

/// The per-token totals of x and y (16 i32 lanes each, token 2p in lanes 0..8, 2p + 1 in 8..16):
/// x's in lanes 0 and 4 of the first result, y's in lanes 0 and 4 of the second.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn totals(x: __m512i, y: __m512i) -> (__m512i, __m512i) {
    // 128-bit lanes [x0 x1 x2 x3], [y0 y1 y2 y3] -> [x0 + x1, x2 + x3, y0 + y1, y2 + y3].
    let even = _mm512_shuffle_i32x4::<0b10_00_10_00>(x, y);
    let odd = _mm512_shuffle_i32x4::<0b11_01_11_01>(x, y);
    let v = _mm512_add_epi32(even, odd);
    // Sum each 128-bit lane into all of its dwords.
    let v = _mm512_add_epi32(v, _mm512_shuffle_epi32::<0b01_00_11_10>(v));
    let v = _mm512_add_epi32(v, _mm512_shuffle_epi32::<0b10_11_00_01>(v));
    // y's totals (128-bit lanes 2, 3) moved down to lanes 0, 1.
    (v, _mm512_shuffle_i32x4::<0b11_10_11_10>(v, v))
}

/// out (n_tok, nr): tokens t0..t0 + valid of rows r..r + R.
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
            let mut lanes = [0.0f32; 16];
            // SAFETY: `lanes` covers 64 writable bytes; storeu has no alignment requirement.
            unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), acc) };
            for k in 0..valid.saturating_sub(2 * p).min(2) {
                out[(t0 + 2 * p + k) * nr + r + i] = lanes[4 * k];
            }
        }
    }
}
