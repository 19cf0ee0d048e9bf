//! Activation quantizers: f32 rows to the `vec_dot_type` partners (`Q8_0`, `Q8_1`, `Q8_K`,
//! `F16`, `BF16`).
//!
//! `Q8_0`/`Q8_1` follow what llama.cpp runs on x86 (its AVX2 quantizers: multiplier
//! `127 / amax`, ties to even) rather than ggml's portable `_ref` (`1 / (amax / 127)`, `roundf`),
//! since llama.cpp's outputs come from the former; `Q8_K` follows `quantize_row_q8_K_ref`
//! (`nearest_int`, ties to even). Every ISA's version is bit-exact with these references.

use fovea_formats::blocks::{BlockQ8K, BlockQ8_0, BlockQ8_1, QK, QK_K};
use half::{bf16, f16};

/// ggml's `nearest_int`: adding 1.5 * 2^23 pushes the fraction out of the mantissa, so the low
/// mantissa bits hold the rounded integer (ties to even). Valid for |x| <= 4194303.
#[inline]
pub fn nearest_int(x: f32) -> i32 {
    let shifted = x + 12_582_912.0;
    (shifted.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// Largest |v| of a slice (0 for an empty one); NaNs are ignored as `fmaxf` does.
#[inline]
fn abs_max(x: &[f32]) -> f32 {
    x.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

/// The scale and multiplier of one Q8_0/Q8_1 activation block, as llama.cpp computes them on x86
/// (AVX/AVX2 `quantize_row_q8_0/1`): d = amax / 127 and the multiplier 127 / amax (not 1 / d), with
/// rounding to nearest, ties to even. ggml's portable `_ref` uses 1 / d and `roundf`; the two differ
/// on rare last-bit ties, and llama.cpp's outputs on x86 come from the SIMD form, so that is the one
/// we reproduce, in the reference and every ISA alike.
#[inline]
fn q8_scale(xb: &[f32]) -> (f32, f32) {
    let amax = abs_max(xb);
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    (amax / 127.0, id)
}

/// Round to nearest, ties to even (`_mm256_round_ps(_MM_ROUND_NEAREST)`), saturated to i8.
#[inline]
pub fn round_even_i8(x: f32) -> i8 {
    libm::rintf(x) as i8
}

/// x (n,) -> out (n / 32,) blocks: d = amax / 127, q = round_even(x * 127 / amax).
pub fn quantize_row_q8_0(x: &[f32], out: &mut [BlockQ8_0]) {
    debug_assert_eq!(x.len(), out.len() * QK, "quantize_row_q8_0: x must be out.len() * 32");
    for (xb, b) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let (d, id) = q8_scale(xb);
        b.d = f16::from_f32(d);
        for (q, &v) in b.qs.iter_mut().zip(xb) {
            *q = round_even_i8(v * id);
        }
    }
}

/// x (n,) -> out (n / 32,) blocks: as `Q8_0`, plus s = fp16(sum(q) * d).
pub fn quantize_row_q8_1(x: &[f32], out: &mut [BlockQ8_1]) {
    debug_assert_eq!(x.len(), out.len() * QK, "quantize_row_q8_1: x must be out.len() * 32");
    for (xb, b) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let (d, id) = q8_scale(xb);
        b.d = f16::from_f32(d);
        let mut sum = 0i32;
        for (q, &v) in b.qs.iter_mut().zip(xb) {
            *q = round_even_i8(v * id);
            sum += *q as i32;
        }
        b.s = f16::from_f32(sum as f32 * d);
    }
}

/// x (n,) -> out (n / 256,) blocks. The scale comes from the signed value of largest magnitude,
/// `iscale = -127 / max`, so that value maps to -127 exactly; d = 1 / iscale is kept in f32.
pub fn quantize_row_q8_k(x: &[f32], out: &mut [BlockQ8K]) {
    debug_assert_eq!(x.len(), out.len() * QK_K, "quantize_row_q8_k: x must be out.len() * 256");
    for (xb, b) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        let (mut max, mut amax) = (0.0f32, 0.0f32);
        for &v in xb {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax == 0.0 {
            // ggml leaves bsums untouched here; we zero them so the block is fully defined.
            *b = bytemuck::Zeroable::zeroed();
            continue;
        }
        let iscale = -127.0 / max;
        for (q, &v) in b.qs.iter_mut().zip(xb) {
            *q = nearest_int(iscale * v).min(127) as i8;
        }
        for (sum, group) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
            *sum = group.iter().map(|&q| q as i16).sum();
        }
        b.d = 1.0 / iscale;
    }
}

/// x (n,) -> out (n,) f16, round to nearest even (ggml's `GGML_FP32_TO_FP16`).
pub fn quantize_row_f16(x: &[f32], out: &mut [f16]) {
    debug_assert_eq!(x.len(), out.len());
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f16::from_f32(v);
    }
}

/// x (n,) -> out (n,) bf16, round to nearest even (ggml's `GGML_FP32_TO_BF16`).
pub fn quantize_row_bf16(x: &[f32], out: &mut [bf16]) {
    debug_assert_eq!(x.len(), out.len());
    for (o, &v) in out.iter_mut().zip(x) {
        *o = bf16::from_f32(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytemuck::Zeroable;

    #[test]
    fn both_roundings_send_ties_to_even() {
        assert_eq!(round_even_i8(2.5), 2);
        assert_eq!(round_even_i8(-2.5), -2);
        assert_eq!(round_even_i8(0.49999997), 0);
        assert_eq!(nearest_int(2.5), 2);
        assert_eq!(nearest_int(3.5), 4);
        assert_eq!(nearest_int(-2.5), -2);
        assert_eq!(nearest_int(-126.6), -127);
        assert_eq!(nearest_int(0.0), 0);
    }

    #[test]
    fn q8_0_hand_values() {
        let mut x = [0.0f32; 32];
        x[0] = 127.0;
        x[1] = -63.5; // tie: to even -> -64
        x[2] = 0.5; // tie: to even -> 0
        x[3] = 2.5; // tie: to even -> 2
        let mut b = [BlockQ8_0::zeroed()];
        quantize_row_q8_0(&x, &mut b);
        assert_eq!(b[0].d.to_f32(), 1.0);
        assert_eq!(&b[0].qs[..5], &[127, -64, 0, 2, 0]);
    }

    #[test]
    fn q8_1_sum_and_zero_block() {
        let mut x = [0.0f32; 64];
        x[0] = 127.0;
        x[1] = 1.0;
        let mut b = [BlockQ8_1::zeroed(); 2];
        quantize_row_q8_1(&x, &mut b);
        assert_eq!(b[0].s.to_f32(), 128.0);
        assert_eq!((b[1].d.to_f32(), b[1].s.to_f32()), (0.0, 0.0));
        assert!(b[1].qs.iter().all(|&q| q == 0));
    }

    #[test]
    fn q8_k_uses_signed_max_and_fills_bsums() {
        let mut x = [0.0f32; 256];
        x[0] = -2.0; // largest magnitude: iscale = -127 / -2 = 63.5, so x[0] -> -127
        x[17] = 1.0;
        x[18] = 1.0;
        let mut b = [BlockQ8K::zeroed()];
        quantize_row_q8_k(&x, &mut b);
        assert_eq!(b[0].d, 1.0 / 63.5);
        assert_eq!(b[0].qs[0], -127);
        assert_eq!(b[0].qs[17], 64); // 63.5 ties to even -> 64
        assert_eq!(b[0].bsums[0], -127);
        assert_eq!(b[0].bsums[1], 128);
    }
}
