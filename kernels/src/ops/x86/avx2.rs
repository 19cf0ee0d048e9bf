//! Float ops with AVX2 + FMA. llama.cpp's reference arithmetic is its AVX-512 build, so each
//! 16-lane ggml vector is carried as two 8-lane halves ([`V16`]), and AVX-512's `vscalefps`
//! is replaced by two exact power-of-two multiplies that round the same way.

use core::arch::x86_64::*;

use crate::ops::attention::{ValueAcc, ValueOrder};
use crate::ops::dot::DOT_STEP;
use crate::ops::expf::{C1, C2, C3, C4, C5, INV_LN2, LN2_HI, LN2_LO, N_LIMIT, SHIFT};
use half::f16;

use crate::ops::panel::{PANEL, SIBLINGS};
use crate::ops::reduce::LANES;
use crate::ops::softmax::{row_max, scale_by_inverse, SoftmaxStats};

/// One 16-lane ggml vector: lanes 0..8 and 8..16.
#[derive(Clone, Copy)]
struct V16 {
    lo: __m256,
    hi: __m256,
}

/// Lane-wise op on both halves.
macro_rules! both {
    ($f:ident, $a:expr, $b:expr) => {{
        let (a, b) = ($a, $b);
        V16 { lo: $f(a.lo, b.lo), hi: $f(a.hi, b.hi) }
    }};
    ($f:ident, $a:expr, $b:expr, $c:expr) => {{
        let (a, b, c) = ($a, $b, $c);
        V16 { lo: $f(a.lo, b.lo, c.lo), hi: $f(a.hi, b.hi, c.hi) }
    }};
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn splat(x: f32) -> V16 {
    V16 { lo: _mm256_set1_ps(x), hi: _mm256_set1_ps(x) }
}

/// x[i..i + 16]; lanes past the end of x read `fill`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load16(x: &[f32], i: usize, fill: f32) -> V16 {
    let rest = &x[i..];
    let mut buf = [fill; LANES];
    let src = if rest.len() >= LANES {
        &rest[..LANES]
    } else {
        buf[..rest.len()].copy_from_slice(rest);
        &buf[..]
    };
    // SAFETY: src holds 16 floats.
    unsafe { V16 { lo: _mm256_loadu_ps(src.as_ptr()), hi: _mm256_loadu_ps(src.as_ptr().add(8)) } }
}

/// Stores the lanes of v that fall inside x[i..].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn store16(x: &mut [f32], i: usize, v: V16) {
    let mut buf = [0.0f32; LANES];
    // SAFETY: buf holds 16 floats.
    unsafe {
        _mm256_storeu_ps(buf.as_mut_ptr(), v.lo);
        _mm256_storeu_ps(buf.as_mut_ptr().add(8), v.hi);
    }
    let rest = &mut x[i..];
    let n = rest.len().min(LANES);
    rest[..n].copy_from_slice(&buf[..n]);
}

/// Sum of the 16 lanes in `_mm512_reduce_add_ps`'s order (`ops::hsum16`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum(v: V16) -> f32 {
    let h = _mm256_add_ps(v.hi, v.lo);
    let q = _mm_add_ps(_mm256_extractf128_ps::<1>(h), _mm256_castps256_ps128(h));
    let t = _mm_add_ps(q, _mm_movehl_ps(q, q)); // lanes 0+2, 1+3
    _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)))
}

/// hsum of 16 vectors lane by lane: out lane d = hsum over k of v[k] lane d.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_columns(v: &[V16; LANES]) -> V16 {
    let h: [V16; 8] = core::array::from_fn(|i| both!(_mm256_add_ps, v[i + 8], v[i]));
    let q: [V16; 4] = core::array::from_fn(|i| both!(_mm256_add_ps, h[i + 4], h[i]));
    both!(_mm256_add_ps, both!(_mm256_add_ps, q[0], q[2]), both!(_mm256_add_ps, q[1], q[3]))
}

/// 2^k for whole k in -126..=127, built from the exponent bits.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn pow2i(k: __m256i) -> __m256 {
    _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(k, _mm256_set1_epi32(127))))
}

/// `ops::exp_poly` on 8 lanes. j * 2^n is computed as (j * 2^(n>>1)) * 2^(n - (n>>1)): both
/// factors are normal for |n| <= 192, the first product is exact, so the one rounding is
/// the same as `vscalefps`'s.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn exp8(x: __m256) -> __m256 {
    let c = _mm256_set1_ps;
    let shift = c(SHIFT);
    let z = _mm256_fmadd_ps(x, c(INV_LN2), shift);
    let n = _mm256_sub_ps(z, shift);
    let b = _mm256_fnmadd_ps(n, c(LN2_LO), _mm256_fnmadd_ps(n, c(LN2_HI), x));
    let u = _mm256_mul_ps(b, b);
    let p_hi = _mm256_fmadd_ps(_mm256_fmadd_ps(c(C5), b, c(C4)), u, _mm256_fmadd_ps(c(C3), b, c(C2)));
    let j = _mm256_fmadd_ps(p_hi, u, _mm256_fmadd_ps(c(C1), b, c(1.0)));
    let ni = _mm256_cvtps_epi32(n);
    let n1 = _mm256_srai_epi32::<1>(ni);
    let n2 = _mm256_sub_epi32(ni, n1);
    let res = _mm256_mul_ps(_mm256_mul_ps(j, pow2i(n1)), pow2i(n2));
    let abs_n = _mm256_andnot_ps(c(-0.0), n);
    let out_of_range = _mm256_cmp_ps::<_CMP_GT_OQ>(abs_n, c(N_LIMIT));
    if _mm256_movemask_ps(out_of_range) == 0 {
        return res;
    }
    let non_positive = _mm256_cmp_ps::<_CMP_LE_OQ>(n, _mm256_setzero_ps());
    let limit = _mm256_blendv_ps(c(f32::INFINITY), _mm256_setzero_ps(), non_positive);
    _mm256_blendv_ps(res, limit, out_of_range)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn exp16(x: V16) -> V16 {
    V16 { lo: exp8(x.lo), hi: exp8(x.hi) }
}

/// `ops::silu_poly` on 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn silu8(x: __m256) -> __m256 {
    let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
    _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0), e))
}

/// `ops::softmax_in_place`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn softmax_in_place(x: &mut [f32]) -> SoftmaxStats {
    let Some(max) = row_max(x) else {
        x.fill(0.0);
        return SoftmaxStats::MASKED;
    };
    let vmax = splat(max);
    let mut sum = 0.0f64;
    for i in (0..x.len()).step_by(LANES) {
        let e = exp16(both!(_mm256_sub_ps, load16(x, i, f32::NEG_INFINITY), vmax));
        store16(x, i, e);
        sum += hsum(e) as f64;
    }
    scale_by_inverse(x, sum);
    SoftmaxStats { max, sum }
}

/// `ops::f16_to_f32`: 8 halves per `vcvtph2ps`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn f16_to_f32(src: &[half::f16], dst: &mut [f32]) {
    let n = src.len().min(dst.len());
    let whole = n / 8 * 8;
    for i in (0..whole).step_by(8) {
        // SAFETY: i + 8 <= whole <= n, inside both slices; f16 is 2 bytes (repr(transparent) u16).
        unsafe {
            let h = _mm_loadu_si128(src.as_ptr().add(i).cast());
            _mm256_storeu_ps(dst.as_mut_ptr().add(i), _mm256_cvtph_ps(h));
        }
    }
    crate::ops::f16_to_f32(&src[whole..n], &mut dst[whole..n]);
}

/// `ops::f32_to_f16`: 8 floats per `vcvtps2ph`, rounding to nearest even.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn f32_to_f16(src: &[f32], dst: &mut [half::f16]) {
    let n = src.len().min(dst.len());
    let whole = n / 8 * 8;
    for i in (0..whole).step_by(8) {
        // SAFETY: i + 8 <= whole <= n, inside both slices; f16 is 2 bytes (repr(transparent) u16).
        unsafe {
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(src.as_ptr().add(i)));
            _mm_storeu_si128(dst.as_mut_ptr().add(i).cast(), h);
        }
    }
    crate::ops::f32_to_f16(&src[whole..n], &mut dst[whole..n]);
}

/// `ops::geglu_in_place`: the same table entries, 8 at a time (see the AVX-512 `geglu`).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn geglu(gate: &mut [f32], up: &[f32]) {
    const W: usize = 8;
    let n = gate.len().min(up.len());
    let whole = n / W * W;
    let table = crate::ops::activation::gelu_table_bits();
    let (lo, hi) = (_mm256_set1_ps(-10.0), _mm256_set1_ps(10.0));
    let low16 = _mm256_set1_epi32(0xffff);
    for i in (0..whole).step_by(W) {
        // SAFETY: i + 8 <= whole <= len of both slices; the gather reads 4 bytes at
        // table + 2 * index for an index below 65536, inside the table and its padding.
        unsafe {
            let x = _mm256_loadu_ps(gate.as_ptr().add(i));
            let u = _mm256_loadu_ps(up.as_ptr().add(i));
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x);
            let entry = _mm256_i32gather_epi32::<2>(table.cast(), _mm256_cvtepu16_epi32(h));
            // Low 16 bits of each lane, packed into 8 halves (unsigned saturation is exact).
            let e = _mm256_and_si256(entry, low16);
            let packed = _mm256_permute4x64_epi64::<0b1000>(_mm256_packus_epi32(e, e));
            let g = _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(packed)), u);
            let g = _mm256_blendv_ps(g, _mm256_mul_ps(x, u), _mm256_cmp_ps::<_CMP_GE_OQ>(x, hi));
            let g = _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(x, lo), g);
            _mm256_storeu_ps(gate.as_mut_ptr().add(i), g);
        }
    }
    crate::ops::geglu_in_place(&mut gate[whole..n], &up[whole..n]);
}

/// `ops::swiglu_row`.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn swiglu_row(gate: &mut [f32], up: &[f32]) {
    let n = gate.len().min(up.len());
    let whole = n / LANES * LANES;
    for i in (0..whole).step_by(8) {
        // SAFETY: i + 8 <= whole <= len of both slices.
        unsafe {
            let g = _mm256_loadu_ps(gate.as_ptr().add(i));
            let u = _mm256_loadu_ps(up.as_ptr().add(i));
            _mm256_storeu_ps(gate.as_mut_ptr().add(i), _mm256_mul_ps(silu8(g), u));
        }
    }
    crate::ops::activation::swiglu_tail(&mut gate[whole..n], &up[whole..n]);
}

/// `ops::attn_scores`: scores (n,) = keys (n, hd) · q (hd,) * scale.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn attn_scores(q: &[f32], keys: &[f32], scale: f32, scores: &mut [f32]) {
    let hd = q.len();
    let whole = hd / DOT_STEP * DOT_STEP;
    for (s, k) in scores.iter_mut().zip(keys.chunks_exact(hd.max(1))) {
        let mut acc = [splat(0.0); 4];
        for i in (0..whole).step_by(DOT_STEP) {
            for (a, acc) in acc.iter_mut().enumerate() {
                let at = i + a * LANES;
                // SAFETY: at + 16 <= whole <= hd = len of q and k.
                let (qv, kv) = unsafe {
                    let (qp, kp) = (q.as_ptr().add(at), k.as_ptr().add(at));
                    (
                        V16 { lo: _mm256_loadu_ps(qp), hi: _mm256_loadu_ps(qp.add(8)) },
                        V16 { lo: _mm256_loadu_ps(kp), hi: _mm256_loadu_ps(kp.add(8)) },
                    )
                };
                *acc = both!(_mm256_fmadd_ps, qv, kv, *acc);
            }
        }
        let folded =
            both!(_mm256_add_ps, both!(_mm256_add_ps, acc[0], acc[2]), both!(_mm256_add_ps, acc[1], acc[3]));
        let mut dot = hsum(folded);
        for (a, b) in q[whole..].iter().zip(&k[whole..]) {
            dot = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(*a), _mm_set_ss(*b), _mm_set_ss(dot)));
        }
        *s = dot * scale;
    }
}

/// `ops::attn_values_add`: acc += Σ_j w[j] values[j] over the next positions, values (n, hdv).
/// Tiled over positions like the AVX-512 version.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn attn_values_add(acc: &mut ValueAcc, w: &[f32], values: &[f32]) {
    match acc.order() {
        ValueOrder::Gemm => add_in_order::<LANES>(acc, w, values),
        ValueOrder::VecDot => add_in_order::<DOT_STEP>(acc, w, values),
    }
}

/// Positions per tile (a multiple of 64; see the AVX-512 version).
const TILE: usize = 256;

/// 16 floats at p as one ggml vector.
///
/// # Safety
/// p..p + 16 must be readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_v16(p: *const f32) -> V16 {
    // SAFETY: the caller guarantees 16 readable floats.
    unsafe { V16 { lo: _mm256_loadu_ps(p), hi: _mm256_loadu_ps(p.add(8)) } }
}

/// [`attn_values_add`] with K accumulators per 16-column block (16: tinyBLAS, 64: vec_dot).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
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
            // SAFETY: state holds K * 16 floats.
            let mut a: [V16; K] =
                core::array::from_fn(|l| unsafe { load_v16(state.as_ptr().add(l * LANES)) });
            if hdv - d >= LANES {
                // SAFETY: t0 + j < n and n * hdv <= values.len(); columns d..d + 16 <= hdv.
                let row = |j: usize| unsafe { load_v16(values.as_ptr().add((t0 + j) * hdv + d)) };
                accumulate(&mut a, seen % K, tile, row);
            } else {
                let row = |j: usize| load16(&values[(t0 + j) * hdv..(t0 + j + 1) * hdv], d, 0.0);
                accumulate(&mut a, seen % K, tile, row);
            }
            for (l, a) in a.iter().enumerate() {
                // SAFETY: as for the load.
                unsafe {
                    let p = state.as_mut_ptr().add(l * LANES);
                    _mm256_storeu_ps(p, a.lo);
                    _mm256_storeu_ps(p.add(8), a.hi);
                }
            }
        }
    }
}

/// a[(first + j) % K] += w[j] row(j) for the positions j of one tile, the accumulator of its
/// first position being `first`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn accumulate<const K: usize>(a: &mut [V16; K], first: usize, w: &[f32], row: impl Fn(usize) -> V16) {
    let head = ((K - first) % K).min(w.len());
    for j in 0..head {
        a[first + j] = both!(_mm256_fmadd_ps, row(j), splat(w[j]), a[first + j]);
    }
    let whole = head + (w.len() - head) / K * K;
    for j0 in (head..whole).step_by(K) {
        for (l, a) in a.iter_mut().enumerate() {
            *a = both!(_mm256_fmadd_ps, row(j0 + l), splat(w[j0 + l]), *a);
        }
    }
    for (a, j) in a.iter_mut().zip(whole..w.len()) {
        *a = both!(_mm256_fmadd_ps, row(j), splat(w[j]), *a);
    }
}

/// `ops::attn_values_finish`: out (hdv,) = the value sum in acc.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn attn_values_finish(acc: &ValueAcc, out: &mut [f32]) {
    debug_assert_eq!(out.len(), acc.hdv());
    let k = acc.order().accumulators();
    for (b, state) in acc.lanes().chunks_exact(k * LANES).enumerate() {
        // SAFETY: accumulator l of the block is state[16l..16l + 16], inside state.
        let at = |l: usize| unsafe { load_v16(state.as_ptr().add(l * LANES)) };
        let folded: [V16; LANES] = match acc.order() {
            ValueOrder::Gemm => core::array::from_fn(at),
            ValueOrder::VecDot => core::array::from_fn(|l| {
                both!(
                    _mm256_add_ps,
                    both!(_mm256_add_ps, at(l), at(2 * LANES + l)),
                    both!(_mm256_add_ps, at(LANES + l), at(3 * LANES + l))
                )
            }),
        };
        store16(out, b * LANES, hsum_columns(&folded));
    }
}

/// `ops::panel_dots`: up to 6 queries per pass over a panel (12 accumulators of 8 lanes), so
/// each 16-key row of the panel is loaded once for all of them.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn panel_dots(q: &[f32], k: usize, panels: &[f32], out: &mut [f32]) {
    panel_dots_by_blocks!(q, k, panels, out, panel_block, [6, 5, 4, 3, 2, 1])
}

/// G queries q (G, k) against one panel (k, 16) -> out[g * width + at..][..16].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn panel_block<const G: usize>(q: &[f32], k: usize, panel: &[f32], out: &mut [f32], at: usize, width: usize) {
    // Bounds-checked once here, so the loads below stay in range.
    let (q, panel) = (&q[..G * k], &panel[..k * PANEL]);
    let mut acc = [V16 { lo: _mm256_setzero_ps(), hi: _mm256_setzero_ps() }; G];
    for d in 0..k {
        // SAFETY: d < k, so d * 16 + 16 <= k * 16 = panel.len().
        let keys = unsafe {
            let at = panel.as_ptr().add(d * PANEL);
            V16 { lo: _mm256_loadu_ps(at), hi: _mm256_loadu_ps(at.add(8)) }
        };
        for (g, acc) in acc.iter_mut().enumerate() {
            // SAFETY: g < G and d < k, so g * k + d < G * k = q.len().
            let x = _mm256_set1_ps(unsafe { *q.get_unchecked(g * k + d) });
            *acc = V16 { lo: _mm256_fmadd_ps(x, keys.lo, acc.lo), hi: _mm256_fmadd_ps(x, keys.hi, acc.hi) };
        }
    }
    for (g, acc) in acc.iter().enumerate() {
        let o = &mut out[g * width + at..g * width + at + PANEL];
        // SAFETY: o holds 16 floats.
        unsafe {
            _mm256_storeu_ps(o.as_mut_ptr(), acc.lo);
            _mm256_storeu_ps(o.as_mut_ptr().add(8), acc.hi);
        }
    }
}

/// `ops::sibling_dots`: up to 6 queries per pass over the panel, each row of the two sibling
/// groups widened once (8 halves each) for all of them.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn sibling_dots(
    q: &[f32],
    lo: &[&[f16]],
    hi: &[&[f16]],
    out: &mut [f32],
    at: usize,
    width: usize,
) {
    sibling_dots_by_blocks!(q, lo, hi, out, at, width, sibling_block, [6, 5, 4, 3, 2, 1])
}

/// G queries q (G, k) against the panel of groups lo | hi -> out[g * width + at..][..16].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
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
    let mut acc = [V16 { lo: _mm256_setzero_ps(), hi: _mm256_setzero_ps() }; G];
    let mut d = 0;
    for (b, l) in lo.iter().enumerate() {
        let h = hi.get(b).copied();
        for r in 0..l.len() / SIBLINGS {
            // SAFETY: r * 8 + 8 <= l.len(), and h (when present) is as long as l (sibling_shape).
            let keys = unsafe {
                let a = _mm256_cvtph_ps(_mm_loadu_si128(l.as_ptr().add(r * SIBLINGS).cast()));
                let b = match h {
                    Some(h) => _mm256_cvtph_ps(_mm_loadu_si128(h.as_ptr().add(r * SIBLINGS).cast())),
                    None => _mm256_setzero_ps(),
                };
                V16 { lo: a, hi: b }
            };
            for (g, acc) in acc.iter_mut().enumerate() {
                // SAFETY: g < G and d < k, so g * k + d < G * k = q.len().
                let x = _mm256_set1_ps(unsafe { *q.get_unchecked(g * k + d) });
                *acc =
                    V16 { lo: _mm256_fmadd_ps(x, keys.lo, acc.lo), hi: _mm256_fmadd_ps(x, keys.hi, acc.hi) };
            }
            d += 1;
        }
    }
    for (g, acc) in acc.iter().enumerate() {
        let o = &mut out[g * width + at..g * width + at + PANEL];
        // SAFETY: o holds 16 floats.
        unsafe {
            _mm256_storeu_ps(o.as_mut_ptr(), acc.lo);
            _mm256_storeu_ps(o.as_mut_ptr().add(8), acc.hi);
        }
    }
}
