//! Float ops with AVX-512 F: one ggml vector per register, as llama.cpp's x86 build runs them.

use core::arch::x86_64::*;

use crate::ops::attention::{ValueAcc, ValueOrder};
use crate::ops::dot::DOT_STEP;
use crate::ops::expf::{C1, C2, C3, C4, C5, INV_LN2, LN2_HI, LN2_LO, N_LIMIT, SHIFT};
use half::f16;

use crate::ops::panel::{PANEL, SIBLINGS};
use crate::ops::reduce::LANES;
use crate::ops::softmax::{row_max, scale_by_inverse, SoftmaxStats};

/// Lanes `0..n` (n <= 16) as a load/store mask.
#[inline]
fn tail_mask(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

/// x[i..i + 16], masked to the `n - i` lanes that exist; missing lanes read `fill`.
///
/// # Safety
/// The CPU must support AVX-512 F.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
unsafe fn load16(x: &[f32], i: usize, fill: __m512) -> __m512 {
    let rest = x.len() - i;
    if rest >= LANES {
        // SAFETY: 16 floats at i..i + 16 are inside x.
        unsafe { _mm512_loadu_ps(x.as_ptr().add(i)) }
    } else {
        // SAFETY: the mask covers only lanes i..x.len() of x; masked lanes are not touched.
        unsafe { _mm512_mask_loadu_ps(fill, tail_mask(rest), x.as_ptr().add(i)) }
    }
}

/// Stores the lanes of v that fall inside x[i..].
///
/// # Safety
/// The CPU must support AVX-512 F.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
unsafe fn store16(x: &mut [f32], i: usize, v: __m512) {
    let rest = x.len() - i;
    if rest >= LANES {
        // SAFETY: 16 floats at i..i + 16 are inside x.
        unsafe { _mm512_storeu_ps(x.as_mut_ptr().add(i), v) }
    } else {
        // SAFETY: the mask covers only lanes i..x.len() of x.
        unsafe { _mm512_mask_storeu_ps(x.as_mut_ptr().add(i), tail_mask(rest), v) }
    }
}

/// Sum of the 16 lanes in `_mm512_reduce_add_ps`'s order (`ops::hsum16`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn hsum(v: __m512) -> f32 {
    let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
    let h = _mm256_add_ps(hi, _mm512_castps512_ps256(v));
    let q = _mm_add_ps(_mm256_extractf128_ps::<1>(h), _mm256_castps256_ps128(h));
    let t = _mm_add_ps(q, _mm_movehl_ps(q, q)); // lanes 0+2, 1+3
    _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)))
}

/// hsum of 16 vectors at once, lane by lane: out lane d = hsum over k of v[k] lane d.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn hsum_columns(v: &[__m512; LANES]) -> __m512 {
    let h: [__m512; 8] = core::array::from_fn(|i| _mm512_add_ps(v[i + 8], v[i]));
    let q: [__m512; 4] = core::array::from_fn(|i| _mm512_add_ps(h[i + 4], h[i]));
    _mm512_add_ps(_mm512_add_ps(q[0], q[2]), _mm512_add_ps(q[1], q[3]))
}

/// The horizontal sums of 16 vectors at once: out lane j = hsum(v[j]), each in `hsum`'s order
/// (halves, quarters, lanes 0+2 and 1+3, then the two), by transposing while adding.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn hsum_rows(v: &[__m512; LANES]) -> __m512 {
    // Halves: h[i] = v[i+8] + v[i]; keys 2i and 2i+1 side by side (8 lanes each).
    let h: [__m512; 8] = core::array::from_fn(|i| {
        let (a, b) = (v[2 * i], v[2 * i + 1]);
        _mm512_add_ps(_mm512_shuffle_f32x4::<0xEE>(a, b), _mm512_shuffle_f32x4::<0x44>(a, b))
    });
    // Quarters: q[i] = h[i+4] + h[i]; keys 4i..4i+4, one per 128-bit lane.
    let q: [__m512; 4] = core::array::from_fn(|i| {
        let (a, b) = (h[2 * i], h[2 * i + 1]);
        _mm512_add_ps(_mm512_shuffle_f32x4::<0xDD>(a, b), _mm512_shuffle_f32x4::<0x88>(a, b))
    });
    // t0 = q0 + q2, t1 = q1 + q3; 128-bit lane c holds keys c, c+4 (first) or c+8, c+12.
    let t: [__m512; 2] = core::array::from_fn(|i| {
        let (a, b) = (q[2 * i], q[2 * i + 1]);
        _mm512_add_ps(_mm512_shuffle_ps::<0x44>(a, b), _mm512_shuffle_ps::<0xEE>(a, b))
    });
    // t0 + t1; lane 4c + m holds key c + 4m.
    let r = _mm512_add_ps(_mm512_shuffle_ps::<0x88>(t[0], t[1]), _mm512_shuffle_ps::<0xDD>(t[0], t[1]));
    let idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_permutexvar_ps(idx, r)
}

/// `ops::exp_poly` on 16 lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn exp16(x: __m512) -> __m512 {
    let c = _mm512_set1_ps;
    let shift = c(SHIFT);
    let z = _mm512_fmadd_ps(x, c(INV_LN2), shift);
    let n = _mm512_sub_ps(z, shift);
    let b = _mm512_fnmadd_ps(n, c(LN2_LO), _mm512_fnmadd_ps(n, c(LN2_HI), x));
    let u = _mm512_mul_ps(b, b);
    let p_hi = _mm512_fmadd_ps(_mm512_fmadd_ps(c(C5), b, c(C4)), u, _mm512_fmadd_ps(c(C3), b, c(C2)));
    let j = _mm512_fmadd_ps(p_hi, u, _mm512_fmadd_ps(c(C1), b, c(1.0)));
    let res = _mm512_scalef_ps(j, n);
    let out_of_range = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(_mm512_abs_ps(n), c(N_LIMIT));
    if out_of_range == 0 {
        return res;
    }
    let zero = _mm512_setzero_ps();
    let non_positive = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(n, zero);
    let limit = _mm512_mask_blend_ps(non_positive, c(f32::INFINITY), zero);
    _mm512_mask_blend_ps(out_of_range, res, limit)
}

/// `ops::silu_poly` on 16 lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn silu16(x: __m512) -> __m512 {
    let e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
    _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0), e))
}

/// `ops::softmax_in_place`.
///
/// # Safety
/// The CPU must support AVX-512 F + BW + VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub unsafe fn softmax_in_place(x: &mut [f32]) -> SoftmaxStats {
    let Some(max) = row_max(x) else {
        x.fill(0.0);
        return SoftmaxStats::MASKED;
    };
    let (neg_inf, vmax) = (_mm512_set1_ps(f32::NEG_INFINITY), _mm512_set1_ps(max));
    let mut sum = 0.0f64;
    for i in (0..x.len()).step_by(LANES) {
        // SAFETY (both): load16/store16 stay inside x; AVX-512 checked by the caller.
        let e = exp16(_mm512_sub_ps(unsafe { load16(x, i, neg_inf) }, vmax));
        unsafe { store16(x, i, e) };
        sum += hsum(e) as f64;
    }
    scale_by_inverse(x, sum);
    SoftmaxStats { max, sum }
}

/// `ops::f16_to_f32`: 16 halves per `vcvtph2ps`.
///
/// # Safety
/// The CPU must support AVX-512 F + BW + VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub unsafe fn f16_to_f32(src: &[half::f16], dst: &mut [f32]) {
    let n = src.len().min(dst.len());
    let whole = n / LANES * LANES;
    for i in (0..whole).step_by(LANES) {
        // SAFETY: i + 16 <= whole <= n, inside both slices; f16 is 2 bytes (repr(transparent) u16).
        unsafe {
            let h = _mm256_loadu_si256(src.as_ptr().add(i).cast());
            _mm512_storeu_ps(dst.as_mut_ptr().add(i), _mm512_cvtph_ps(h));
        }
    }
    crate::ops::f16_to_f32(&src[whole..n], &mut dst[whole..n]);
}

/// `ops::f32_to_f16`: 16 floats per `vcvtps2ph`, rounding to nearest even.
///
/// # Safety
/// The CPU must support AVX-512 F + BW + VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub unsafe fn f32_to_f16(src: &[f32], dst: &mut [half::f16]) {
    let n = src.len().min(dst.len());
    let whole = n / LANES * LANES;
    for i in (0..whole).step_by(LANES) {
        // SAFETY: i + 16 <= whole <= n, inside both slices; f16 is 2 bytes (repr(transparent) u16).
        unsafe {
            let h = _mm512_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm512_loadu_ps(src.as_ptr().add(i)));
            _mm256_storeu_si256(dst.as_mut_ptr().add(i).cast(), h);
        }
    }
    crate::ops::f32_to_f16(&src[whole..n], &mut dst[whole..n]);
}

/// `ops::swiglu_row`.
///
/// # Safety
/// The CPU must support AVX-512 F + BW + VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub unsafe fn swiglu_row(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let whole = n / LANES * LANES;
    for i in (0..whole).step_by(LANES) {
        // SAFETY: i + 16 <= whole <= len of both slices.
        unsafe {
            let g = _mm512_loadu_ps(gate.as_ptr().add(i));
            let u = _mm512_loadu_ps(up.as_ptr().add(i));
            _mm512_storeu_ps(gate.as_mut_ptr().add(i), _mm512_mul_ps(silu16(g), u));
        }
    }
    crate::ops::activation::swiglu_tail(&mut gate[whole..n], &up[whole..n]);
}

/// `ops::geglu_in_place`: the same table entries, 16 at a time. x rounds to f16 as
/// `half::f16::from_f32` does (to nearest, ties to even), its bits index the table through a
/// gather, and the entry times `up` is the scalar product; the clamps at -10 and 10 are masks.
///
/// # Safety
/// The CPU must support AVX-512 F + BW + VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub unsafe fn geglu(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let whole = n / LANES * LANES;
    let table = crate::ops::activation::gelu_table_bits();
    let (lo, hi) = (_mm512_set1_ps(-10.0), _mm512_set1_ps(10.0));
    for i in (0..whole).step_by(LANES) {
        // SAFETY: i + 16 <= whole <= len of both slices; the gather reads 4 bytes at
        // table + 2 * index for an index below 65536, inside the table and its padding.
        unsafe {
            let x = _mm512_loadu_ps(gate.as_ptr().add(i));
            let u = _mm512_loadu_ps(up.as_ptr().add(i));
            let h = _mm512_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x);
            let entry = _mm512_i32gather_epi32::<2>(_mm512_cvtepu16_epi32(h), table.cast());
            let g = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(entry)), u);
            let g = _mm512_mask_mul_ps(g, _mm512_cmp_ps_mask::<_CMP_GE_OQ>(x, hi), x, u);
            let g = _mm512_maskz_mov_ps(!_mm512_cmp_ps_mask::<_CMP_LE_OQ>(x, lo), g);
            _mm512_storeu_ps(gate.as_mut_ptr().add(i), g);
        }
    }
    crate::ops::geglu_in_place(&mut gate[whole..n], &up[whole..n]);
}

/// `ops::attn_scores`: scores (n,) = keys (n, hd) · q (hd,) * scale, each dot in
/// `ops::dot_f32_4x16`'s order.
///
/// # Safety
/// The CPU must support AVX-512 F + BW + VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub unsafe fn attn_scores(q: &[f32], keys: &[f32], scale: f32, scores: &mut [f32]) {
    let hd = q.len();
    let whole = hd / DOT_STEP * DOT_STEP;
    let mut done = 0;
    if whole == hd && hd > 0 {
        // 16 keys at a time: one transposing reduction instead of 16 horizontal sums, in the
        // same addition order, so the bits are those of the loop below.
        let blocks = scores.len() / LANES;
        for (sb, kb) in scores.chunks_exact_mut(LANES).zip(keys.chunks_exact(LANES * hd)).take(blocks) {
            let folded: [__m512; LANES] =
                core::array::from_fn(|j| folded_dot(q, &kb[j * hd..(j + 1) * hd], hd));
            let dots = _mm512_mul_ps(hsum_rows(&folded), _mm512_set1_ps(scale));
            // SAFETY: sb holds 16 floats.
            unsafe { _mm512_storeu_ps(sb.as_mut_ptr(), dots) };
        }
        done = blocks * LANES;
    }
    for (s, k) in scores[done..].iter_mut().zip(keys[done * hd..].chunks_exact(hd.max(1))) {
        let mut dot = hsum(folded_dot(q, k, whole));
        for (a, b) in q[whole..].iter().zip(&k[whole..]) {
            dot = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(*a), _mm_set_ss(*b), _mm_set_ss(dot)));
        }
        *s = dot * scale;
    }
}

/// The 16 lanes of ggml's f32 dot over the first `whole` (a multiple of 64) elements of q and k:
/// four accumulators along the row, folded (0 + 2) + (1 + 3), not yet summed across lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn folded_dot(q: &[f32], k: &[f32], whole: usize) -> __m512 {
    // Bounds-checked once here, so the loads below stay in range.
    let (q, k) = (&q[..whole], &k[..whole]);
    let mut acc = [_mm512_setzero_ps(); 4];
    for i in (0..whole / DOT_STEP * DOT_STEP).step_by(DOT_STEP) {
        for (a, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 64 <= whole (the loop stops at the last multiple of 64) and q, k hold
            // whole floats, so i + 16a + 16 <= whole.
            let (qv, kv) = unsafe {
                (
                    _mm512_loadu_ps(q.as_ptr().add(i + a * LANES)),
                    _mm512_loadu_ps(k.as_ptr().add(i + a * LANES)),
                )
            };
            *acc = _mm512_fmadd_ps(qv, kv, *acc);
        }
    }
    _mm512_add_ps(_mm512_add_ps(acc[0], acc[2]), _mm512_add_ps(acc[1], acc[3]))
}

/// `ops::attn_values_add`: acc += Σ_j w[j] values[j] over the next positions, values (n, hdv).
///
/// Each 16-column block has its own accumulators (16 or 64 vectors, kept in `acc` between
/// calls); positions are walked in tiles of [`TILE`] rows, every column block per tile, so the
/// rows a tile reads for the first block are still in cache for the others.
///
/// # Safety
/// The CPU must support AVX-512 F + BW + VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub unsafe fn attn_values_add(acc: &mut ValueAcc, w: &[f32], values: &[f32]) {
    match acc.order() {
        ValueOrder::Gemm => add_in_order::<LANES>(acc, w, values),
        ValueOrder::VecDot => add_in_order::<DOT_STEP>(acc, w, values),
    }
}

/// Positions per tile: 256 rows of a 64-wide head are 64 KiB, which stays in L2. A multiple of
/// 64, so every tile starts on the same accumulator as the chunk does.
const TILE: usize = 256;

/// [`attn_values_add`] with K accumulators per column block: K = 16 is tinyBLAS's order (one
/// 16-lane accumulator along positions), K = 64 `ggml_vec_dot_f32`'s (four of them).
///
/// The accumulators are walked 16 at a time (a pass), so each pass's 16 vectors stay in
/// registers over the whole tile instead of being loaded and stored at every position; K = 64
/// then costs what K = 16 does. Every accumulator still takes its positions in order.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn add_in_order<const K: usize>(acc: &mut ValueAcc, w: &[f32], values: &[f32]) {
    let hdv = acc.hdv();
    debug_assert_eq!(values.len(), w.len() * hdv);
    let n = w.len().min(values.len() / hdv.max(1));
    // lanes (blocks, K, 16): block b's accumulator l takes positions with (seen + j) % K == l.
    let (lanes, seen) = acc.advance(n);
    for t0 in (0..n).step_by(TILE) {
        let tile = &w[t0..(t0 + TILE).min(n)];
        for (b, state) in lanes.chunks_exact_mut(K * LANES).enumerate() {
            let d = b * LANES;
            let mask = tail_mask((hdv - d).min(LANES));
            // SAFETY: t0 + j < n and n * hdv <= values.len(); the mask keeps columns below hdv.
            let row =
                |j: usize| unsafe { _mm512_maskz_loadu_ps(mask, values.as_ptr().add((t0 + j) * hdv + d)) };
            for (pass, state) in state.chunks_exact_mut(LANES * LANES).enumerate() {
                // SAFETY: a pass's state holds 16 accumulators of 16 floats.
                let mut a: [__m512; LANES] =
                    core::array::from_fn(|l| unsafe { _mm512_loadu_ps(state.as_ptr().add(l * LANES)) });
                accumulate_pass::<K>(&mut a, seen % K, pass * LANES, tile, &row);
                for (l, a) in a.iter().enumerate() {
                    // SAFETY: as for the load.
                    unsafe { _mm512_storeu_ps(state.as_mut_ptr().add(l * LANES), *a) };
                }
            }
        }
    }
}

/// a[l] += w[j] row(j) for the positions j of one tile whose accumulator is lo + l, the first
/// position's accumulator being `first`. Whole runs of 16 are unrolled with constant indices,
/// so `a` stays in registers.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn accumulate_pass<const K: usize>(
    a: &mut [__m512; LANES],
    first: usize,
    lo: usize,
    w: &[f32],
    row: &impl Fn(usize) -> __m512,
) {
    let len = w.len();
    // Round r covers the positions whose accumulators are 0..K: r * K - first ..; accumulator
    // lo + l of round r is position r * K + lo + l - first.
    for r in 0..(len + first).div_ceil(K) {
        let Some(j0) = (r * K + lo).checked_sub(first).filter(|&j0| j0 + LANES <= len) else {
            // A partial run (the tile's first or last round).
            for (l, a) in a.iter_mut().enumerate() {
                if let Some(j) = (r * K + lo + l).checked_sub(first).filter(|&j| j < len) {
                    *a = _mm512_fmadd_ps(row(j), _mm512_set1_ps(w[j]), *a);
                }
            }
            continue;
        };
        for (l, a) in a.iter_mut().enumerate() {
            *a = _mm512_fmadd_ps(row(j0 + l), _mm512_set1_ps(w[j0 + l]), *a);
        }
    }
}

/// `ops::attn_values_finish`: out (hdv,) = the value sum in acc.
///
/// # Safety
/// The CPU must support AVX-512 F + BW + VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub unsafe fn attn_values_finish(acc: &ValueAcc, out: &mut [f32]) {
    debug_assert_eq!(out.len(), acc.hdv());
    let k = acc.order().accumulators();
    for (b, state) in acc.lanes().chunks_exact(k * LANES).enumerate() {
        // SAFETY: accumulator l of the block is state[16l..16l + 16], inside state.
        let at = |l: usize| unsafe { _mm512_loadu_ps(state.as_ptr().add(l * LANES)) };
        let folded: [__m512; LANES] = match acc.order() {
            ValueOrder::Gemm => core::array::from_fn(at),
            // (0 + 2) + (1 + 3) by 16-lane quarter, as ggml folds its four accumulators.
            ValueOrder::VecDot => core::array::from_fn(|l| {
                _mm512_add_ps(
                    _mm512_add_ps(at(l), at(2 * LANES + l)),
                    _mm512_add_ps(at(LANES + l), at(3 * LANES + l)),
                )
            }),
        };
        // SAFETY: store16 writes only columns inside out.
        unsafe { store16(out, b * LANES, hsum_columns(&folded)) };
    }
}

/// `ops::panel_dots`: up to 8 queries per pass over a panel, so each 16-key row of the panel is
/// loaded once for all of them and each (query, dimension) is one broadcast FMA.
///
/// # Safety
/// The CPU must support AVX-512 F + BW + VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub unsafe fn panel_dots(q: &[f32], k: usize, panels: &[f32], out: &mut [f32]) {
    panel_dots_by_blocks!(q, k, panels, out, panel_block, [8, 7, 6, 5, 4, 3, 2, 1])
}

/// G queries q (G, k) against one panel (k, 16) -> out[g * width + at..][..16].
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn panel_block<const G: usize>(q: &[f32], k: usize, panel: &[f32], out: &mut [f32], at: usize, width: usize) {
    // Bounds-checked once here, so the loads below stay in range.
    let (q, panel) = (&q[..G * k], &panel[..k * PANEL]);
    let mut acc = [_mm512_setzero_ps(); G];
    for d in 0..k {
        // SAFETY: d < k, so d * 16 + 16 <= k * 16 = panel.len().
        let keys = unsafe { _mm512_loadu_ps(panel.as_ptr().add(d * PANEL)) };
        for (g, acc) in acc.iter_mut().enumerate() {
            // SAFETY: g < G and d < k, so g * k + d < G * k = q.len().
            let x = unsafe { *q.get_unchecked(g * k + d) };
            *acc = _mm512_fmadd_ps(_mm512_set1_ps(x), keys, *acc);
        }
    }
    for (g, acc) in acc.iter().enumerate() {
        let o = &mut out[g * width + at..g * width + at + PANEL];
        // SAFETY: o holds 16 floats.
        unsafe { _mm512_storeu_ps(o.as_mut_ptr(), *acc) };
    }
}

/// `ops::sibling_dots`: up to 8 queries per pass over the panel, each row of the two sibling
/// groups loaded as 8 + 8 halves and widened to one 16-lane vector for all of them.
///
/// # Safety
/// The CPU must support AVX-512 F + BW + VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub unsafe fn sibling_dots(
    q: &[f32],
    lo: &[&[f16]],
    hi: &[&[f16]],
    out: &mut [f32],
    at: usize,
    width: usize,
) {
    sibling_dots_by_blocks!(q, lo, hi, out, at, width, sibling_block, [8, 7, 6, 5, 4, 3, 2, 1])
}

/// G queries q (G, k) against the panel of groups lo | hi -> out[g * width + at..][..16].
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn sibling_block<const G: usize>(
    q: &[f32],
    k: usize,
    lo: &[&[f16]],
    hi: &[&[f16]],
    out: &mut [f32],
    at: usize,
    width: usize,
) {
    let q = &q[..G * k];
    let mut acc = [_mm512_setzero_ps(); G];
    let mut d = 0;
    for (b, l) in lo.iter().enumerate() {
        let h = hi.get(b).copied();
        for r in 0..l.len() / SIBLINGS {
            // SAFETY: r * 8 + 8 <= l.len(), and h (when present) is as long as l (sibling_shape).
            let keys = unsafe {
                let a = _mm_loadu_si128(l.as_ptr().add(r * SIBLINGS).cast());
                let b = match h {
                    Some(h) => _mm_loadu_si128(h.as_ptr().add(r * SIBLINGS).cast()),
                    None => _mm_setzero_si128(),
                };
                _mm512_cvtph_ps(_mm256_set_m128i(b, a))
            };
            for (g, acc) in acc.iter_mut().enumerate() {
                // SAFETY: g < G and d < k, so g * k + d < G * k = q.len().
                let x = unsafe { *q.get_unchecked(g * k + d) };
                *acc = _mm512_fmadd_ps(_mm512_set1_ps(x), keys, *acc);
            }
            d += 1;
        }
    }
    for (g, acc) in acc.iter().enumerate() {
        let o = &mut out[g * width + at..g * width + at + PANEL];
        // SAFETY: o holds 16 floats.
        unsafe { _mm512_storeu_ps(o.as_mut_ptr(), *acc) };
    }
}
