//! AVX2 `group_scores` and `group_values_add` (orders in `ops::group_attention`).
//!
//! The reference's 16 lanes are carried as two 8-wide halves (dimensions d with d % 16 < 8,
//! then the rest), so the tree's first level is the sum of the halves; the other three reduce
//! 8 keys together with two shuffles and one add per pair of vectors.

use core::arch::x86_64::*;

use crate::ops::group_attention::{raw_rows, values_shape, KvRows};
use crate::ops::prefetch::{prefetch_bytes, ROWS_AHEAD};
use crate::ops::reduce::LANES;

/// Queries per block: 4 x 2 value accumulators are half of the 16 vector registers.
const MAX_G: usize = 4;
/// Keys reduced together, one per lane of a vector.
const KEYS: usize = 8;

/// 8 elements of `rows` from element i, as f32: f32 loaded, f16 widened (exact).
///
/// # Safety
/// The CPU must support AVX2 and F16C; elements i..i + 8 of the rows must exist (`rows` points
/// at f32 elements when HALF is false, f16 ones when true).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load8<const HALF: bool>(rows: *const u8, i: usize) -> __m256 {
    // SAFETY: the caller guarantees the 8 elements at i are inside the rows.
    unsafe {
        if HALF {
            _mm256_cvtph_ps(_mm_loadu_si128(rows.add(2 * i).cast()))
        } else {
            _mm256_loadu_ps(rows.add(4 * i).cast())
        }
    }
}

/// `ops::group_scores`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
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

/// G queries q (G, hd) against n key rows -> out[g * stride + j], 8 keys at a time.
///
/// # Safety
/// As for `load8` over n rows of hd elements; hd a multiple of 16; out holds G rows of n.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
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
    let scale = _mm256_set1_ps(scale);
    let row_bytes = hd * if HALF { 2 } else { 4 };
    for j0 in (0..n).step_by(KEYS) {
        let m = (n - j0).min(KEYS);
        prefetch_bytes(keys.wrapping_add((j0 + ROWS_AHEAD) * row_bytes), KEYS * row_bytes);
        let mut lanes = [[_mm256_setzero_ps(); KEYS]; G];
        for jj in 0..m {
            let row = (j0 + jj) * hd;
            let (mut lo, mut hi) = ([_mm256_setzero_ps(); G], [_mm256_setzero_ps(); G]);
            for c in (0..hd).step_by(LANES) {
                // SAFETY: row + c + 16 <= n * hd (caller).
                let (klo, khi) = unsafe { (load8::<HALF>(keys, row + c), load8::<HALF>(keys, row + c + 8)) };
                for (g, (lo, hi)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
                    // SAFETY: g * hd + c + 16 <= G * hd = q.len().
                    let (qlo, qhi) = unsafe {
                        let at = q.as_ptr().add(g * hd + c);
                        (_mm256_loadu_ps(at), _mm256_loadu_ps(at.add(8)))
                    };
                    *lo = _mm256_fmadd_ps(qlo, klo, *lo);
                    *hi = _mm256_fmadd_ps(qhi, khi, *hi);
                }
            }
            // Tree level 1: lane l + lane l + 8.
            for ((l, lo), hi) in lanes.iter_mut().zip(lo).zip(hi) {
                l[jj] = _mm256_add_ps(lo, hi);
            }
        }
        for (g, l) in lanes.iter().enumerate() {
            let mut dots = [0.0f32; KEYS];
            // SAFETY: dots holds 8 floats.
            unsafe { _mm256_storeu_ps(dots.as_mut_ptr(), _mm256_mul_ps(tree8(l), scale)) };
            out[g * stride + j0..g * stride + j0 + m].copy_from_slice(&dots[..m]);
        }
    }
}

/// Lane j = the tree sum (l + (l + 4), + 2, + 1) of v[j]'s 8 lanes (levels 2 to 4 of the
/// reference's tree; level 1 is already in v).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn tree8(v: &[__m256; KEYS]) -> __m256 {
    // Level 2: the 128-bit half r of c[i] = key 2i + r's four partial sums.
    let c: [__m256; 4] = core::array::from_fn(|i| {
        let (a, b) = (v[2 * i], v[2 * i + 1]);
        _mm256_add_ps(_mm256_permute2f128_ps::<0x20>(a, b), _mm256_permute2f128_ps::<0x31>(a, b))
    });
    // Level 3: half r of d[i] = keys 4i + r and 4i + 2 + r, two partial sums each.
    let d: [__m256; 2] = core::array::from_fn(|i| {
        let (a, b) = (c[2 * i], c[2 * i + 1]);
        _mm256_add_ps(_mm256_shuffle_ps::<0x44>(a, b), _mm256_shuffle_ps::<0xEE>(a, b))
    });
    // Level 4: lane 4r + s = key r + 2s; then back to key order.
    let (a, b) = (d[0], d[1]);
    let e = _mm256_add_ps(_mm256_shuffle_ps::<0x88>(a, b), _mm256_shuffle_ps::<0xDD>(a, b));
    _mm256_permutevar8x32_ps(e, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// `ops::group_values_add`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
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
        for col in (0..hdv).step_by(LANES) {
            // SAFETY: values holds n rows of hdv elements of the type `half` names; w holds gs
            // rows of n weights, stride apart; columns col..col + 16 lie below hdv.
            unsafe {
                match (gs, half) {
                    (1, false) => values_pass::<false, 1>(w, stride, rows, hdv, n, col, acc),
                    (2, false) => values_pass::<false, 2>(w, stride, rows, hdv, n, col, acc),
                    (3, false) => values_pass::<false, 3>(w, stride, rows, hdv, n, col, acc),
                    (4, false) => values_pass::<false, 4>(w, stride, rows, hdv, n, col, acc),
                    (1, true) => values_pass::<true, 1>(w, stride, rows, hdv, n, col, acc),
                    (2, true) => values_pass::<true, 2>(w, stride, rows, hdv, n, col, acc),
                    (3, true) => values_pass::<true, 3>(w, stride, rows, hdv, n, col, acc),
                    (4, true) => values_pass::<true, 4>(w, stride, rows, hdv, n, col, acc),
                    _ => unreachable!("blocks of 1..=4 queries"),
                }
            }
        }
        g0 += gs;
    }
}

/// acc[g * hdv + col..][..16] += Σ_j w[g * stride + j] row_j[col..][..16] for G queries, the
/// G x 2 accumulators in registers over all n rows.
///
/// # Safety
/// As for `load8` over n rows of hdv elements; col + 16 <= hdv; w holds G rows of n weights,
/// stride apart; acc holds G rows of hdv.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn values_pass<const HALF: bool, const G: usize>(
    w: &[f32],
    stride: usize,
    values: *const u8,
    hdv: usize,
    n: usize,
    col: usize,
    acc: &mut [f32],
) {
    let acc = &mut acc[..G * hdv];
    assert!(col + LANES <= hdv && w.len() >= (G - 1) * stride + n);
    let mut a = [[_mm256_setzero_ps(); 2]; G];
    for (g, a) in a.iter_mut().enumerate() {
        for (p, a) in a.iter_mut().enumerate() {
            // SAFETY: g * hdv + col + 8 (p + 1) <= G * hdv = acc.len() (the assert).
            *a = unsafe { _mm256_loadu_ps(acc.as_ptr().add(g * hdv + col + 8 * p)) };
        }
    }
    let esz = if HALF { 2 } else { 4 };
    for j in 0..n {
        prefetch_bytes(values.wrapping_add(((j + ROWS_AHEAD) * hdv + col) * esz), 16 * esz);
        // SAFETY: row j's columns col..col + 16 lie inside the n rows (caller, the assert).
        let v = unsafe { [load8::<HALF>(values, j * hdv + col), load8::<HALF>(values, j * hdv + col + 8)] };
        for (g, a) in a.iter_mut().enumerate() {
            // SAFETY: g * stride + j < (G - 1) * stride + n <= w.len() (the assert).
            let wj = _mm256_set1_ps(unsafe { *w.get_unchecked(g * stride + j) });
            for (a, v) in a.iter_mut().zip(&v) {
                *a = _mm256_fmadd_ps(wj, *v, *a);
            }
        }
    }
    for (g, a) in a.iter().enumerate() {
        for (p, a) in a.iter().enumerate() {
            // SAFETY: as for the loads.
            unsafe { _mm256_storeu_ps(acc.as_mut_ptr().add(g * hdv + col + 8 * p), *a) };
        }
    }
}
