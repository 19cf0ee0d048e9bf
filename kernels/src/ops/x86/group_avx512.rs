//! AVX-512 `group_scores` and `group_values_add` (orders in `ops::group_attention`).
//!
//! A key or value row is loaded, and for f16 rows widened, once per block of up to 4 queries;
//! each query's 16-lane accumulators stay in registers. Scores reduce 16 keys' lanes together
//! (a transposing tree: two shuffles and one add per pair of vectors, no per-key horizontal
//! sum), in the reference's tree order.

use core::arch::x86_64::*;

use crate::ops::group_attention::{raw_rows, values_shape, KvRows};
use crate::ops::prefetch::{prefetch_bytes, ROWS_AHEAD};
use crate::ops::reduce::LANES;

/// Queries per block: 4 x 4 value accumulators are 16 of the 32 vector registers.
const MAX_G: usize = 4;
/// Column vectors per pass of the value sum.
const PASS: usize = 4;

/// 16 elements of `rows` from element i, as f32: f32 loaded, f16 widened (exact).
///
/// # Safety
/// The CPU must support AVX-512 F; elements i..i + 16 of the rows must exist (`rows` points at
/// f32 elements when HALF is false, f16 ones when true).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
unsafe fn load16<const HALF: bool>(rows: *const u8, i: usize) -> __m512 {
    // SAFETY: the caller guarantees the 16 elements at i are inside the rows.
    unsafe {
        if HALF {
            _mm512_cvtph_ps(_mm256_loadu_si256(rows.add(2 * i).cast()))
        } else {
            _mm512_loadu_ps(rows.add(4 * i).cast())
        }
    }
}

/// `ops::group_scores`.
///
/// # Safety
/// The CPU must support AVX-512 F + BW + VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub unsafe fn group_scores(
    q: &[f32],
    keys: KvRows<'_>,
    hd: usize,
    scale: f32,
    scores: &mut [f32],
    stride: usize,
) {
    group_scores_by_blocks!(q, keys, hd, scale, scores, stride, scores_block)
}

/// G queries q (G, hd) against n key rows -> out[g * stride + j], 16 keys at a time.
///
/// The 16 keys' lane vectors are reduced as they come, pair by pair (each level of the
/// transposing tree applied as soon as both of its inputs exist): the same additions in the
/// same order as reducing all 16 at the end, but only a few vectors per query stay live instead
/// of 16, so nothing spills to the stack (3.0 -> 1.7 us for 512 f16 keys of width 64 and 3
/// queries on a Zen 5 core, `examples/group_attention_speed.rs`). The next block's rows are
/// prefetched (see `ROWS_AHEAD`).
///
/// # Safety
/// As for `load16` over n rows of hd elements; hd a multiple of 16; out holds G rows of n.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
unsafe fn scores_block<const HALF: bool, const G: usize>(
    q: &[f32],
    keys: *const u8,
    hd: usize,
    n: usize,
    scale: f32,
    out: &mut [f32],
    stride: usize,
) {
    let q = &q[..G * hd];
    let scale = _mm512_set1_ps(scale);
    let row_bytes = hd * if HALF { 2 } else { 4 };
    for j0 in (0..n).step_by(LANES) {
        let m = (n - j0).min(LANES);
        prefetch_bytes(keys.wrapping_add((j0 + ROWS_AHEAD) * row_bytes), LANES * row_bytes);
        // quads[i][g]: keys 4i..4i + 4 through the tree's first two levels (quarter r = key
        // 4i + r's four partial sums), each key's dots reduced as soon as its pair is done.
        // (Plain loops: helpers returning vector arrays were not inlined, and closures do not
        // inherit the target features.)
        let mut quads = [[_mm512_setzero_ps(); G]; 4];
        for (i, quad) in quads.iter_mut().enumerate() {
            let mut pairs = [[_mm512_setzero_ps(); G]; 2];
            for (h, pair) in pairs.iter_mut().enumerate() {
                let mut a = [[_mm512_setzero_ps(); G]; 2];
                for (t, a) in a.iter_mut().enumerate() {
                    let jj = 4 * i + 2 * h + t;
                    if jj >= m {
                        continue;
                    }
                    let row = (j0 + jj) * hd;
                    for c in (0..hd).step_by(LANES) {
                        // SAFETY: jj < m, so row j0 + jj is below n (caller).
                        let k = unsafe { load16::<HALF>(keys, row + c) };
                        for (g, a) in a.iter_mut().enumerate() {
                            // SAFETY: g * hd + c + 16 <= G * hd = q.len().
                            let qv = unsafe { _mm512_loadu_ps(q.as_ptr().add(g * hd + c)) };
                            *a = _mm512_fmadd_ps(qv, k, *a);
                        }
                    }
                }
                for g in 0..G {
                    pair[g] = level1(a[0][g], a[1][g]);
                }
            }
            for g in 0..G {
                quad[g] = level2(pairs[0][g], pairs[1][g]);
            }
        }
        let mask = ((1u32 << m) - 1) as __mmask16;
        for g in 0..G {
            let (r0, r1) = (level3(quads[0][g], quads[1][g]), level3(quads[2][g], quads[3][g]));
            let dots = _mm512_mul_ps(level4(r0, r1), scale);
            let o = &mut out[g * stride + j0..g * stride + j0 + m];
            // SAFETY: the mask keeps the m lanes o holds.
            unsafe { _mm512_mask_storeu_ps(o.as_mut_ptr(), mask, dots) };
        }
    }
}

/// The tree's first level for keys 2i and 2i + 1: lanes 0..8 = a[l] + a[l + 8], lanes 8..16
/// the same of b.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn level1(a: __m512, b: __m512) -> __m512 {
    _mm512_add_ps(_mm512_shuffle_f32x4::<0x44>(a, b), _mm512_shuffle_f32x4::<0xEE>(a, b))
}

/// The second level: quarter r = key 4i + r's four partial sums.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn level2(a: __m512, b: __m512) -> __m512 {
    _mm512_add_ps(_mm512_shuffle_f32x4::<0x88>(a, b), _mm512_shuffle_f32x4::<0xDD>(a, b))
}

/// The third level: quarter r = keys 8i + r and 8i + 4 + r, two partial sums each.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn level3(a: __m512, b: __m512) -> __m512 {
    _mm512_add_ps(_mm512_shuffle_ps::<0x44>(a, b), _mm512_shuffle_ps::<0xEE>(a, b))
}

/// The last level (lane 4r + s = key r + 4s), then back to key order.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn level4(a: __m512, b: __m512) -> __m512 {
    let e = _mm512_add_ps(_mm512_shuffle_ps::<0x88>(a, b), _mm512_shuffle_ps::<0xDD>(a, b));
    let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_permutexvar_ps(order, e)
}

/// `ops::group_values_add`.
///
/// # Safety
/// The CPU must support AVX-512 F + BW + VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub unsafe fn group_values_add(w: &[f32], stride: usize, values: KvRows<'_>, hdv: usize, acc: &mut [f32]) {
    if !hdv.is_multiple_of(LANES) {
        return crate::ops::group_values_add(w, stride, values, hdv, acc);
    }
    let Some((g_count, n)) = values_shape(w, stride, values, hdv, acc) else {
        return;
    };
    let (rows, half) = raw_rows(values);
    let mut g0 = 0;
    while g0 < g_count {
        let gs = (g_count - g0).min(MAX_G);
        let (w, acc) = (&w[g0 * stride..], &mut acc[g0 * hdv..(g0 + gs) * hdv]);
        let mut col = 0;
        while col < hdv {
            let wide = hdv - col >= PASS * LANES;
            // SAFETY: values holds n rows of hdv elements of the type `half` names; w holds gs
            // rows of n weights, stride apart; the pass's columns lie below hdv.
            unsafe {
                match (gs, wide, half) {
                    (1, true, false) => values_pass::<false, 1, PASS>(w, stride, rows, hdv, n, col, acc),
                    (2, true, false) => values_pass::<false, 2, PASS>(w, stride, rows, hdv, n, col, acc),
                    (3, true, false) => values_pass::<false, 3, PASS>(w, stride, rows, hdv, n, col, acc),
                    (4, true, false) => values_pass::<false, 4, PASS>(w, stride, rows, hdv, n, col, acc),
                    (1, false, false) => values_pass::<false, 1, 1>(w, stride, rows, hdv, n, col, acc),
                    (2, false, false) => values_pass::<false, 2, 1>(w, stride, rows, hdv, n, col, acc),
                    (3, false, false) => values_pass::<false, 3, 1>(w, stride, rows, hdv, n, col, acc),
                    (4, false, false) => values_pass::<false, 4, 1>(w, stride, rows, hdv, n, col, acc),
                    (1, true, true) => values_pass::<true, 1, PASS>(w, stride, rows, hdv, n, col, acc),
                    (2, true, true) => values_pass::<true, 2, PASS>(w, stride, rows, hdv, n, col, acc),
                    (3, true, true) => values_pass::<true, 3, PASS>(w, stride, rows, hdv, n, col, acc),
                    (4, true, true) => values_pass::<true, 4, PASS>(w, stride, rows, hdv, n, col, acc),
                    (1, false, true) => values_pass::<true, 1, 1>(w, stride, rows, hdv, n, col, acc),
                    (2, false, true) => values_pass::<true, 2, 1>(w, stride, rows, hdv, n, col, acc),
                    (3, false, true) => values_pass::<true, 3, 1>(w, stride, rows, hdv, n, col, acc),
                    (4, false, true) => values_pass::<true, 4, 1>(w, stride, rows, hdv, n, col, acc),
                    _ => unreachable!("blocks of 1..=4 queries"),
                }
            }
            col += if wide { PASS * LANES } else { LANES };
        }
        g0 += gs;
    }
}

/// acc[g * hdv + col..][..16 P] += Σ_j w[g * stride + j] row_j[col..][..16 P] for G queries,
/// the G x P accumulators in registers over all n rows.
///
/// # Safety
/// As for `load16` over n rows of hdv elements; col + 16 P <= hdv; w holds G rows of n
/// weights, stride apart; acc holds G rows of hdv.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn values_pass<const HALF: bool, const G: usize, const P: usize>(
    w: &[f32],
    stride: usize,
    values: *const u8,
    hdv: usize,
    n: usize,
    col: usize,
    acc: &mut [f32],
) {
    let acc = &mut acc[..G * hdv];
    assert!(col + P * LANES <= hdv && w.len() >= (G - 1) * stride + n);
    let mut a = [[_mm512_setzero_ps(); P]; G];
    for (g, a) in a.iter_mut().enumerate() {
        for (p, a) in a.iter_mut().enumerate() {
            // SAFETY: g * hdv + col + 16 (p + 1) <= G * hdv = acc.len() (the assert).
            *a = unsafe { _mm512_loadu_ps(acc.as_ptr().add(g * hdv + col + p * LANES)) };
        }
    }
    let esz = if HALF { 2 } else { 4 };
    for j in 0..n {
        prefetch_bytes(values.wrapping_add(((j + ROWS_AHEAD) * hdv + col) * esz), P * LANES * esz);
        // SAFETY: row j's columns col..col + 16 P lie inside the n rows (caller, the assert).
        let v: [__m512; P] =
            core::array::from_fn(|p| unsafe { load16::<HALF>(values, j * hdv + col + p * LANES) });
        for (g, a) in a.iter_mut().enumerate() {
            // SAFETY: g * stride + j < (G - 1) * stride + n <= w.len() (the assert).
            let wj = _mm512_set1_ps(unsafe { *w.get_unchecked(g * stride + j) });
            for (a, v) in a.iter_mut().zip(&v) {
                *a = _mm512_fmadd_ps(wj, *v, *a);
            }
        }
    }
    for (g, a) in a.iter().enumerate() {
        for (p, a) in a.iter().enumerate() {
            // SAFETY: as for the loads.
            unsafe { _mm512_storeu_ps(acc.as_mut_ptr().add(g * hdv + col + p * LANES), *a) };
        }
    }
}
