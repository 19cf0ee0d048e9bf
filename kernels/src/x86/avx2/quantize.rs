//! Activation quantizers with AVX2, bit-exact with `quant::reference`: same scale arithmetic,
//! same rounding (half away from zero for Q8_0/Q8_1, half to even for Q8_K), same f16 rounding.

use core::arch::x86_64::*;

use crate::x86::{chunks, chunks_mut};

use fovea_formats::blocks::{BlockQ8K, BlockQ8_0, BlockQ8_1, QK, QK_K};

use super::common::{f32_to_f16, hmax_f32x8};

/// x (k,) f32 -> y (k/32,) Q8_0 blocks; k a multiple of 32.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn quantize_row_q8_0(x: &[f32], y: &mut [BlockQ8_0]) {
    let (x_blocks, _) = chunks::<_, QK>(x);
    for (xb, yb) in x_blocks.iter().zip(y.iter_mut()) {
        let (d, q) = quantize_block_32(xb);
        yb.d = f32_to_f16(d);
        store_i8x32(&mut yb.qs, pack_i32x32_to_i8(q));
    }
}

/// x (k,) f32 -> y (k/32,) Q8_1 blocks (with s = d * sum(qs)); k a multiple of 32.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn quantize_row_q8_1(x: &[f32], y: &mut [BlockQ8_1]) {
    let (x_blocks, _) = chunks::<_, QK>(x);
    for (xb, yb) in x_blocks.iter().zip(y.iter_mut()) {
        let (d, q) = quantize_block_32(xb);
        let sum = hsum_i32x8(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
        yb.d = f32_to_f16(d);
        yb.s = f32_to_f16(sum as f32 * d);
        store_i8x32(&mut yb.qs, pack_i32x32_to_i8(q));
    }
}

/// x (k,) f32 -> y (k/256,) Q8_K blocks; k a multiple of 256.
///
/// The scale maps the element of largest magnitude (the first one, on ties) to -127, as ggml
/// does; bsums are the sums of each 16 quants.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn quantize_row_q8_k(x: &[f32], y: &mut [BlockQ8K]) {
    let (x_blocks, _) = chunks::<_, QK_K>(x);
    for (xb, yb) in x_blocks.iter().zip(y.iter_mut()) {
        let (x_octets, _) = chunks::<_, 8>(xb); // 32 x 8 floats
        let mut amax = _mm256_setzero_ps();
        for o in x_octets {
            // max_ps returns its second operand when one is NaN: NaNs are ignored as f32::max does.
            amax = _mm256_max_ps(abs_ps(load_f32x8(o)), amax);
        }
        let amax = hmax_f32x8(amax);
        if amax == 0.0 {
            yb.d = 0.0;
            yb.qs = [0; QK_K];
            yb.bsums = [0; QK_K / 16];
            continue;
        }
        let max = first_with_magnitude(xb, amax);
        let iscale = -127.0 / max;
        let scale = _mm256_set1_ps(iscale);
        let q_chunks = chunks_mut::<_, 32>(&mut yb.qs);
        let (x_quads, _) = chunks::<_, 4>(x_octets); // 8 x 32 floats
        for (c, (xq, qc)) in x_quads.iter().zip(q_chunks).enumerate() {
            let q: [__m256i; 4] = core::array::from_fn(|k| {
                let v = nearest_int(_mm256_mul_ps(load_f32x8(&xq[k]), scale));
                // `.min(127) as i8` keeps the low byte; sign-extend it back to i32.
                let v = _mm256_min_epi32(v, _mm256_set1_epi32(127));
                _mm256_srai_epi32::<24>(_mm256_slli_epi32::<24>(v))
            });
            let [first, second] = group_sums_of_16(q);
            yb.bsums[2 * c] = first as i16;
            yb.bsums[2 * c + 1] = second as i16;
            store_i8x32(qc, pack_i32x32_to_i8(q));
        }
        yb.d = 1.0 / iscale;
    }
}

/// One 32-float block -> (d, 32 quants as 4 x 8 i32 lanes in element order).
/// d = amax / 127, q = round_even(x * 127 / amax), as the reference.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn quantize_block_32(x: &[f32; QK]) -> (f32, [__m256i; 4]) {
    let (octets, _) = chunks::<_, 8>(x);
    let v: [__m256; 4] = core::array::from_fn(|k| load_f32x8(&octets[k]));
    let amax = hmax_f32x8(v.iter().fold(_mm256_setzero_ps(), |m, &x| _mm256_max_ps(abs_ps(x), m)));
    // Same scale, multiplier and rounding as the reference (`quant::quantize::q8_scale`).
    let id = _mm256_set1_ps(if amax != 0.0 { 127.0 / amax } else { 0.0 });
    let q = core::array::from_fn(|k| {
        let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(v[k], id));
        _mm256_cvttps_epi32(saturate_i8(r))
    });
    (amax / 127.0, q)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn saturate_i8(v: __m256) -> __m256 {
    let clamped = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-128.0)), _mm256_set1_ps(127.0));
    _mm256_and_ps(clamped, _mm256_cmp_ps::<_CMP_ORD_Q>(v, v))
}

/// ggml's `nearest_int` on 8 lanes, the same float trick (round half to even), so that even
/// non-finite inputs give the reference's integers.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn nearest_int(v: __m256) -> __m256i {
    let shifted = _mm256_castps_si256(_mm256_add_ps(v, _mm256_set1_ps(12_582_912.0)));
    _mm256_sub_epi32(
        _mm256_and_si256(shifted, _mm256_set1_epi32(0x007f_ffff)),
        _mm256_set1_epi32(0x0040_0000),
    )
}

/// `roundf` on 8 lanes: nearest integer, ties away from zero. Exact: trunc and x - trunc(x)
/// are both representable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn abs_ps(v: __m256) -> __m256 {
    _mm256_andnot_ps(_mm256_set1_ps(-0.0), v)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn load_f32x8(x: &[f32; 8]) -> __m256 {
    // SAFETY: the reference covers 8 readable floats; loadu has no alignment requirement.
    unsafe { _mm256_loadu_ps(x.as_ptr()) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn store_i8x32(out: &mut [i8; 32], v: __m256i) {
    // SAFETY: the reference covers 32 writable bytes; storeu has no alignment requirement.
    unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) }
}

/// 4 x 8 i32 (each in -128..=127) -> 32 i8 in the same element order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn pack_i32x32_to_i8(q: [__m256i; 4]) -> __m256i {
    // The packs work per 128-bit lane, leaving 4-element groups in order 0 2 4 6 1 3 5 7 ..
    let packed = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum_i32x8(v: __m256i) -> i32 {
    let x4 = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let x2 = _mm_add_epi32(x4, _mm_unpackhi_epi64(x4, x4));
    let x1 = _mm_add_epi32(x2, _mm_shuffle_epi32::<0b01>(x2));
    _mm_cvtsi128_si32(x1)
}

/// 32 quants as 4 x 8 i32 -> the sums of elements 0..16 and 16..32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn group_sums_of_16(q: [__m256i; 4]) -> [i32; 2] {
    [hsum_i32x8(_mm256_add_epi32(q[0], q[1])), hsum_i32x8(_mm256_add_epi32(q[2], q[3]))]
}

/// The first element whose |x| equals `amax` (ggml keeps the first on ties; its sign matters).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn first_with_magnitude(x: &[f32; QK_K], amax: f32) -> f32 {
    let target = _mm256_set1_ps(amax);
    let (octets, _) = chunks::<_, 8>(x);
    for o in octets {
        let hits = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(abs_ps(load_f32x8(o)), target));
        if hits != 0 {
            return o[hits.trailing_zeros() as usize];
        }
    }
    amax // unreachable for finite input: amax is the magnitude of some element
}
