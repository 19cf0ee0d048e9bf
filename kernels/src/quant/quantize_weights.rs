//! Weight quantizers, for tests and tools that need quantized data (the engine only reads it).
//!
//! `Q4_0`, `Q4_1`, `Q5_0`, `Q5_1` and `Q8_0` are bit-exact with ggml's `quantize_row_*_ref`
//! (they truncate `x + 0.5` style offsets as the C code does). The K-quants are SIMPLE versions:
//! same block layout and the same scale encoding as ggml's `_ref`, but the per-sub-block scale
//! is plain min/max (or signed max) instead of ggml's iterative error search, so their bytes
//! differ from llama.cpp's quantizer. They are valid blocks with error within half a step.

use fovea_formats::blocks::{
    BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K, QK, QK_K,
};
use half::f16;

use super::quantize::nearest_int;
pub use super::quantize::quantize_row_q8_0;

/// Signed value of largest magnitude (first one wins ties), 0 for an all-zero slice.
fn signed_max(x: &[f32]) -> f32 {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

fn min_max(x: &[f32]) -> (f32, f32) {
    x.iter().fold((f32::MAX, -f32::MAX), |(lo, hi), &v| {
        (if v < lo { v } else { lo }, if v > hi { v } else { hi })
    })
}

/// Inverse scale, 0 for a zero scale (ggml's `d ? 1/d : 0`).
fn inverse(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

/// x (n,) -> (n / 32,): d = max / -8, q = min(15, trunc(x / d + 8.5)).
pub fn quantize_row_q4_0(x: &[f32], out: &mut [BlockQ4_0]) {
    debug_assert_eq!(x.len(), out.len() * QK);
    for (xb, b) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let d = signed_max(xb) / -8.0;
        let id = inverse(d);
        b.d = f16::from_f32(d);
        for j in 0..QK / 2 {
            let q0 = ((xb[j] * id + 8.5) as i8).min(15) as u8;
            let q1 = ((xb[j + QK / 2] * id + 8.5) as i8).min(15) as u8;
            b.qs[j] = q0 | (q1 << 4);
        }
    }
}

/// x (n,) -> (n / 32,): d = (max - min) / 15, m = min, q = min(15, trunc((x - min) / d + 0.5)).
pub fn quantize_row_q4_1(x: &[f32], out: &mut [BlockQ4_1]) {
    debug_assert_eq!(x.len(), out.len() * QK);
    for (xb, b) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let (min, max) = min_max(xb);
        let d = (max - min) / 15.0;
        let id = inverse(d);
        b.d = f16::from_f32(d);
        b.m = f16::from_f32(min);
        for j in 0..QK / 2 {
            let q0 = (((xb[j] - min) * id + 0.5) as i8).min(15) as u8;
            let q1 = (((xb[j + QK / 2] - min) * id + 0.5) as i8).min(15) as u8;
            b.qs[j] = q0 | (q1 << 4);
        }
    }
}

/// Packs 32 5-bit quants into (qh, qs).
fn pack_q5(q: &[u8; QK]) -> ([u8; 4], [u8; QK / 2]) {
    let mut qh = 0u32;
    let mut qs = [0u8; QK / 2];
    for j in 0..QK / 2 {
        let (q0, q1) = (q[j], q[j + QK / 2]);
        qs[j] = (q0 & 0xF) | ((q1 & 0xF) << 4);
        qh |= (((q0 & 0x10) >> 4) as u32) << j;
        qh |= (((q1 & 0x10) >> 4) as u32) << (j + QK / 2);
    }
    (qh.to_le_bytes(), qs)
}

/// x (n,) -> (n / 32,): d = max / -16, q = min(31, trunc(x / d + 16.5)).
pub fn quantize_row_q5_0(x: &[f32], out: &mut [BlockQ5_0]) {
    debug_assert_eq!(x.len(), out.len() * QK);
    for (xb, b) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let d = signed_max(xb) / -16.0;
        let id = inverse(d);
        b.d = f16::from_f32(d);
        let q: [u8; QK] = core::array::from_fn(|j| ((xb[j] * id + 16.5) as i8).min(31) as u8);
        (b.qh, b.qs) = pack_q5(&q);
    }
}

/// x (n,) -> (n / 32,): d = (max - min) / 31, m = min, q = trunc((x - min) / d + 0.5).
pub fn quantize_row_q5_1(x: &[f32], out: &mut [BlockQ5_1]) {
    debug_assert_eq!(x.len(), out.len() * QK);
    for (xb, b) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let (min, max) = min_max(xb);
        let d = (max - min) / 31.0;
        let id = inverse(d);
        b.d = f16::from_f32(d);
        b.m = f16::from_f32(min);
        let q: [u8; QK] = core::array::from_fn(|j| ((xb[j] - min) * id + 0.5) as u8);
        (b.qh, b.qs) = pack_q5(&q);
    }
}

/// Asymmetric sub-block fit shared by Q2_K/Q4_K/Q5_K: per sub-block of `sub` elements,
/// scale = (max - min) / nmax and min = -min(x, 0). Returns (scales, mins) per sub-block.
fn min_max_fit<const S: usize>(x: &[f32], sub: usize, nmax: f32) -> ([f32; S], [f32; S]) {
    let mut scales = [0.0f32; S];
    let mut mins = [0.0f32; S];
    for (j, xs) in x.chunks_exact(sub).enumerate().take(S) {
        let (lo, hi) = min_max(xs);
        let lo = lo.min(0.0);
        scales[j] = (hi - lo) / nmax;
        mins[j] = -lo;
    }
    (scales, mins)
}

fn max_of(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, &s| if s > m { s } else { m })
}

/// Q4_K and Q5_K: 6-bit scales/mins packed as ggml does, quants 0..=nmax per element.
fn quantize_k4(x: &[f32], nmax: i32) -> (f16, f16, [u8; 12], [u8; QK_K]) {
    let (scales, mins) = min_max_fit::<8>(x, 32, nmax as f32);
    let (max_scale, max_min) = (max_of(&scales), max_of(&mins));
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut packed = [0u8; 12];
    for j in 0..8 {
        let ls = nearest_int(inv_scale * scales[j]).min(63) as u8;
        let lm = nearest_int(inv_min * mins[j]).min(63) as u8;
        if j < 4 {
            packed[j] = ls;
            packed[j + 4] = lm;
        } else {
            packed[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            packed[j - 4] |= (ls >> 4) << 6;
            packed[j] |= (lm >> 4) << 6;
        }
    }
    let d = f16::from_f32(max_scale / 63.0);
    let dmin = f16::from_f32(max_min / 63.0);
    let probe = BlockQ4K { d, dmin, scales: packed, qs: [0; QK_K / 2] };
    let mut l = [0u8; QK_K];
    for (j, (xs, ls)) in x.chunks_exact(32).zip(l.chunks_exact_mut(32)).enumerate() {
        let (sc, m) = probe.scale_min(j);
        let dj = d.to_f32() * sc as f32;
        if dj == 0.0 {
            continue;
        }
        let dm = dmin.to_f32() * m as f32;
        for (q, &v) in ls.iter_mut().zip(xs) {
            *q = nearest_int((v + dm) / dj).clamp(0, nmax) as u8;
        }
    }
    (d, dmin, packed, l)
}

/// Simple Q4_K (see module docs): x (n,) -> (n / 256,).
pub fn quantize_row_q4_k(x: &[f32], out: &mut [BlockQ4K]) {
    debug_assert_eq!(x.len(), out.len() * QK_K);
    for (xb, b) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        let (d, dmin, scales, l) = quantize_k4(xb, 15);
        *b = BlockQ4K { d, dmin, scales, qs: [0; QK_K / 2] };
        for c in 0..QK_K / 64 {
            for i in 0..32 {
                b.qs[32 * c + i] = l[64 * c + i] | (l[64 * c + 32 + i] << 4);
            }
        }
    }
}

/// Simple Q5_K (see module docs): x (n,) -> (n / 256,).
pub fn quantize_row_q5_k(x: &[f32], out: &mut [BlockQ5K]) {
    debug_assert_eq!(x.len(), out.len() * QK_K);
    for (xb, b) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        let (d, dmin, scales, l) = quantize_k4(xb, 31);
        *b = BlockQ5K { d, dmin, scales, qh: [0; QK_K / 8], qs: [0; QK_K / 2] };
        for c in 0..QK_K / 64 {
            for i in 0..32 {
                let (l1, l2) = (l[64 * c + i], l[64 * c + 32 + i]);
                b.qs[32 * c + i] = (l1 & 0xF) | ((l2 & 0xF) << 4);
                b.qh[i] |= ((l1 >> 4) << (2 * c)) | ((l2 >> 4) << (2 * c + 1));
            }
        }
    }
}

/// Simple Q6_K (see module docs): per 16 elements scale = signed max / -32, then ggml's 8-bit
/// scale encoding with iscale = -128 / (scale of largest magnitude).
pub fn quantize_row_q6_k(x: &[f32], out: &mut [BlockQ6K]) {
    debug_assert_eq!(x.len(), out.len() * QK_K);
    for (xb, b) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        *b = bytemuck::Zeroable::zeroed();
        let scales: [f32; 16] = core::array::from_fn(|g| signed_max(&xb[16 * g..16 * g + 16]) / -32.0);
        let max_scale = signed_max(&scales);
        if max_scale.abs() < 1e-15 {
            continue;
        }
        let iscale = -128.0 / max_scale;
        b.d = f16::from_f32(1.0 / iscale);
        for (s, &sc) in b.scales.iter_mut().zip(&scales) {
            *s = nearest_int(iscale * sc).min(127) as i8;
        }
        let mut l = [32u8; QK_K];
        for (g, (xs, ls)) in xb.chunks_exact(16).zip(l.chunks_exact_mut(16)).enumerate() {
            let d = b.d.to_f32() * b.scales[g] as f32;
            if d == 0.0 {
                continue;
            }
            for (q, &v) in ls.iter_mut().zip(xs) {
                *q = (nearest_int(v / d).clamp(-32, 31) + 32) as u8;
            }
        }
        for h in 0..2 {
            let (lh, ql, qh) = (&l[128 * h..], &mut b.ql[64 * h..], &mut b.qh[32 * h..]);
            for i in 0..32 {
                ql[i] = (lh[i] & 0xF) | ((lh[i + 64] & 0xF) << 4);
                ql[i + 32] = (lh[i + 32] & 0xF) | ((lh[i + 96] & 0xF) << 4);
                qh[i] = (lh[i] >> 4)
                    | ((lh[i + 32] >> 4) << 2)
                    | ((lh[i + 64] >> 4) << 4)
                    | ((lh[i + 96] >> 4) << 6);
            }
        }
    }
}

/// Packs 256 2-bit values as Q2_K/Q3_K `qs`.
fn pack_2bit(l: &[u8; QK_K]) -> [u8; QK_K / 4] {
    core::array::from_fn(|i| {
        let (h, j) = (i / 32, i % 32);
        let at = |k: usize| l[128 * h + 32 * k + j] & 3;
        at(0) | (at(1) << 2) | (at(2) << 4) | (at(3) << 6)
    })
}

/// Simple Q2_K (see module docs): 4-bit scales and mins per 16 elements.
pub fn quantize_row_q2_k(x: &[f32], out: &mut [BlockQ2K]) {
    debug_assert_eq!(x.len(), out.len() * QK_K);
    for (xb, b) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        *b = bytemuck::Zeroable::zeroed();
        let (scales, mins) = min_max_fit::<16>(xb, 16, 3.0);
        let (max_scale, max_min) = (max_of(&scales), max_of(&mins));
        if max_scale > 0.0 {
            for (s, &sc) in b.scales.iter_mut().zip(&scales) {
                *s = nearest_int(15.0 / max_scale * sc) as u8;
            }
            b.d = f16::from_f32(max_scale / 15.0);
        }
        if max_min > 0.0 {
            for (s, &m) in b.scales.iter_mut().zip(&mins) {
                *s |= (nearest_int(15.0 / max_min * m) as u8) << 4;
            }
            b.dmin = f16::from_f32(max_min / 15.0);
        }
        let mut l = [0u8; QK_K];
        for (g, (xs, ls)) in xb.chunks_exact(16).zip(l.chunks_exact_mut(16)).enumerate() {
            let d = b.d.to_f32() * (b.scales[g] & 0xF) as f32;
            if d == 0.0 {
                continue;
            }
            let dm = b.dmin.to_f32() * (b.scales[g] >> 4) as f32;
            for (q, &v) in ls.iter_mut().zip(xs) {
                *q = nearest_int((v + dm) / d).clamp(0, 3) as u8;
            }
        }
        b.qs = pack_2bit(&l);
    }
}

/// Simple Q3_K (ggml's `_ref` without its error search): per 16 elements scale = signed max
/// / -4, 6-bit signed scales with iscale = -32 / (scale of largest magnitude).
pub fn quantize_row_q3_k(x: &[f32], out: &mut [BlockQ3K]) {
    debug_assert_eq!(x.len(), out.len() * QK_K);
    for (xb, b) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        *b = bytemuck::Zeroable::zeroed();
        let scales: [f32; 16] = core::array::from_fn(|g| signed_max(&xb[16 * g..16 * g + 16]) / -4.0);
        let max_scale = signed_max(&scales);
        if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            for (j, &sc) in scales.iter().enumerate() {
                let l = (nearest_int(iscale * sc).clamp(-32, 31) + 32) as u8;
                if j < 8 {
                    b.scales[j] = l & 0xF;
                } else {
                    b.scales[j - 8] |= (l & 0xF) << 4;
                }
                b.scales[j % 4 + 8] |= (l >> 4) << (2 * (j / 4));
            }
            b.d = f16::from_f32(1.0 / iscale);
        }
        let sc = b.scales_i8();
        let mut l = [4u8; QK_K];
        for (g, (xs, ls)) in xb.chunks_exact(16).zip(l.chunks_exact_mut(16)).enumerate() {
            let d = b.d.to_f32() * sc[g] as f32;
            if d == 0.0 {
                continue;
            }
            for (q, &v) in ls.iter_mut().zip(xs) {
                *q = (nearest_int(v / d).clamp(-4, 3) + 4) as u8;
            }
        }
        // The high bit (value >= 4 means "no -4") goes to hmask; element 128h + 32k + i uses
        // bit 4h + k of byte i.
        for (e, q) in l.iter_mut().enumerate() {
            if *q > 3 {
                let (h, k, i) = (e / 128, (e % 128) / 32, e % 32);
                b.hmask[i] |= 1 << (4 * h + k);
                *q -= 4;
            }
        }
        b.qs = pack_2bit(&l);
    }
}
