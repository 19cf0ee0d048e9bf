//! Activation quantizers with NEON, bit-exact with `quant::reference`: the same scale
//! arithmetic (scalar, in the same order), the same rounding (ties to even: `fcvtns` for
//! Q8_0/Q8_1, ggml's `nearest_int` float trick for Q8_K), the same saturation.

use core::arch::aarch64::*;

use fovea_formats::blocks::{BlockQ8K, BlockQ8_0, BlockQ8_1, QK, QK_K};
use half::f16;

/// x (k,) f32 -> y (k/32,) Q8_0 blocks; k a multiple of 32.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub unsafe fn quantize_row_q8_0(x: &[f32], y: &mut [BlockQ8_0]) {
    let (x_blocks, _) = x.as_chunks::<QK>();
    for (xb, yb) in x_blocks.iter().zip(y.iter_mut()) {
        let (d, q) = quantize_block_32(xb);
        yb.d = f16::from_f32(d);
        store_i8x32(&mut yb.qs, q);
    }
}

/// x (k,) f32 -> y (k/32,) Q8_1 blocks (with s = d * sum(qs)); k a multiple of 32.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub unsafe fn quantize_row_q8_1(x: &[f32], y: &mut [BlockQ8_1]) {
    let (x_blocks, _) = x.as_chunks::<QK>();
    for (xb, yb) in x_blocks.iter().zip(y.iter_mut()) {
        let (d, q) = quantize_block_32(xb);
        let sum = i32::from(vaddlvq_s8(q.0)) + i32::from(vaddlvq_s8(q.1));
        yb.d = f16::from_f32(d);
        yb.s = f16::from_f32(sum as f32 * d);
        store_i8x32(&mut yb.qs, q);
    }
}

/// x (k,) f32 -> y (k/256,) Q8_K blocks; k a multiple of 256.
///
/// The scale maps the element of largest magnitude (the first one, on ties) to -127, as ggml
/// does; bsums are the sums of each 16 quants.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
pub unsafe fn quantize_row_q8_k(x: &[f32], y: &mut [BlockQ8K]) {
    let (x_blocks, _) = x.as_chunks::<QK_K>();
    for (xb, yb) in x_blocks.iter().zip(y.iter_mut()) {
        let (quads, _) = xb.as_chunks::<4>(); // 64 x 4 floats
        let amax = abs_max(quads);
        if amax == 0.0 {
            yb.d = 0.0;
            yb.qs = [0; QK_K];
            yb.bsums = [0; QK_K / 16];
            continue;
        }
        let max = first_with_magnitude(quads, amax);
        let iscale = -127.0 / max;
        let (q_groups, _) = yb.qs.as_chunks_mut::<16>(); // 16 x 16 quants
        let (x_groups, _) = quads.as_chunks::<4>(); // 16 x (4 x 4 floats)
        for ((xg, qg), bsum) in x_groups.iter().zip(q_groups).zip(yb.bsums.iter_mut()) {
            let q: [int32x4_t; 4] = core::array::from_fn(|k| {
                let v = nearest_int(vmulq_n_f32(load_f32x4(&xg[k]), iscale));
                // `.min(127) as i8`: clamp above, then keep the low byte (the narrowing below).
                vminq_s32(v, vdupq_n_s32(127))
            });
            let q = narrow_i32x16_to_i8(q, Narrow::Truncate);
            *bsum = vaddlvq_s8(q);
            // SAFETY: `qg` covers 16 writable bytes; `st1` has no alignment requirement.
            unsafe { vst1q_s8(qg.as_mut_ptr(), q) };
        }
        yb.d = 1.0 / iscale;
    }
}

/// One 32-float block -> (d, 32 quants in element order).
/// d = amax / 127, q = round_even(x * 127 / amax) saturated to i8, as the reference.
#[inline]
#[target_feature(enable = "neon")]
fn quantize_block_32(x: &[f32; QK]) -> (f32, (int8x16_t, int8x16_t)) {
    let (quads, _) = x.as_chunks::<4>();
    let amax = abs_max(quads);
    // Same scale, multiplier and rounding as the reference (`quant::quantize::q8_scale`).
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    // `fcvtns` rounds ties to even and saturates to i32 (NaN -> 0), like `rintf(x) as i8`
    // does once the saturating narrowing below follows.
    let q: [int32x4_t; 8] = core::array::from_fn(|k| vcvtnq_s32_f32(vmulq_n_f32(load_f32x4(&quads[k]), id)));
    let lo = narrow_i32x16_to_i8([q[0], q[1], q[2], q[3]], Narrow::Saturate);
    let hi = narrow_i32x16_to_i8([q[4], q[5], q[6], q[7]], Narrow::Saturate);
    (amax / 127.0, (lo, hi))
}

/// Largest |x| (0 for all zeros). `fmaxnm` ignores a quiet NaN operand, as `f32::max` does.
#[inline]
#[target_feature(enable = "neon")]
fn abs_max(quads: &[[f32; 4]]) -> f32 {
    let m = quads.iter().fold(vdupq_n_f32(0.0), |m, q| vmaxnmq_f32(m, vabsq_f32(load_f32x4(q))));
    vmaxnmvq_f32(m)
}

/// The first element whose |x| equals `amax` (ggml keeps the first on ties; its sign matters).
#[inline]
#[target_feature(enable = "neon")]
fn first_with_magnitude(quads: &[[f32; 4]], amax: f32) -> f32 {
    for q in quads {
        let hits = vceqq_f32(vabsq_f32(load_f32x4(q)), vdupq_n_f32(amax));
        if vmaxvq_u32(hits) != 0 {
            let hits: [u32; 4] = [
                vgetq_lane_u32::<0>(hits),
                vgetq_lane_u32::<1>(hits),
                vgetq_lane_u32::<2>(hits),
                vgetq_lane_u32::<3>(hits),
            ];
            if let Some(i) = hits.iter().position(|&h| h != 0) {
                return q[i];
            }
        }
    }
    amax // unreachable for finite input: amax is the magnitude of some element
}

/// ggml's `nearest_int` on 4 lanes, the same float trick (round half to even), so that even
/// non-finite inputs give the reference's integers.
#[inline]
#[target_feature(enable = "neon")]
fn nearest_int(v: float32x4_t) -> int32x4_t {
    let shifted = vreinterpretq_s32_f32(vaddq_f32(v, vdupq_n_f32(12_582_912.0)));
    vsubq_s32(vandq_s32(shifted, vdupq_n_s32(0x007f_ffff)), vdupq_n_s32(0x0040_0000))
}

/// How 32-bit quants become bytes.
#[derive(Clone, Copy)]
enum Narrow {
    /// Clamp to -128..=127 (`as i8` from a float).
    Saturate,
    /// Keep the low byte (`as i8` from an integer).
    Truncate,
}

/// 4 x 4 i32 -> 16 i8 in the same element order.
#[inline]
#[target_feature(enable = "neon")]
fn narrow_i32x16_to_i8(q: [int32x4_t; 4], how: Narrow) -> int8x16_t {
    match how {
        Narrow::Saturate => {
            let a = vqmovn_high_s32(vqmovn_s32(q[0]), q[1]);
            let b = vqmovn_high_s32(vqmovn_s32(q[2]), q[3]);
            vqmovn_high_s16(vqmovn_s16(a), b)
        }
        Narrow::Truncate => {
            let a = vmovn_high_s32(vmovn_s32(q[0]), q[1]);
            let b = vmovn_high_s32(vmovn_s32(q[2]), q[3]);
            vmovn_high_s16(vmovn_s16(a), b)
        }
    }
}

#[inline]
#[target_feature(enable = "neon")]
fn load_f32x4(x: &[f32; 4]) -> float32x4_t {
    // SAFETY: the reference covers 4 readable floats; `ld1` has no alignment requirement.
    unsafe { vld1q_f32(x.as_ptr()) }
}

#[inline]
#[target_feature(enable = "neon")]
fn store_i8x32(out: &mut [i8; 32], q: (int8x16_t, int8x16_t)) {
    let (halves, _) = out.as_chunks_mut::<16>();
    // SAFETY: each half covers 16 writable bytes; `st1` has no alignment requirement.
    unsafe {
        vst1q_s8(halves[0].as_mut_ptr(), q.0);
        vst1q_s8(halves[1].as_mut_ptr(), q.1);
    }
}
