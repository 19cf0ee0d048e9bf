//! Float dot products with AVX2 + FMA: four independent accumulators hide the FMA latency.

use core::arch::x86_64::*;

use crate::x86::chunks;

use half::f16;

use super::common::{f16_to_f32, hsum_f32x8};

/// x (n,) . y (n,) in f32.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot_f32(n: usize, x: &[f32], y: &[f32]) -> f32 {
    let (x, y) = (&x[..n], &y[..n]);
    let (x_chunks, x_tail) = chunks::<_, 32>(x);
    let (y_chunks, y_tail) = chunks::<_, 32>(y);
    let mut acc = [_mm256_setzero_ps(); 4];
    for (xc, yc) in x_chunks.iter().zip(y_chunks) {
        for (k, a) in acc.iter_mut().enumerate() {
            // SAFETY: 8 floats at 8k..8k+8 lie inside the 32-float chunks; loadu is unaligned.
            let (xv, yv) =
                unsafe { (_mm256_loadu_ps(xc.as_ptr().add(8 * k)), _mm256_loadu_ps(yc.as_ptr().add(8 * k))) };
            *a = _mm256_fmadd_ps(xv, yv, *a);
        }
    }
    let acc = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let tail: f32 = x_tail.iter().zip(y_tail).map(|(a, b)| a * b).sum();
    hsum_f32x8(acc) + tail
}

/// x (n,) . y (n,) in f16, accumulated in f32.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn vec_dot_f16_f16(n: usize, x: &[f16], y: &[f16]) -> f32 {
    let (x, y) = (&x[..n], &y[..n]);
    let (x_chunks, x_tail) = chunks::<_, 32>(x);
    let (y_chunks, y_tail) = chunks::<_, 32>(y);
    let mut acc = [_mm256_setzero_ps(); 4];
    for (xc, yc) in x_chunks.iter().zip(y_chunks) {
        for (k, a) in acc.iter_mut().enumerate() {
            // SAFETY: 8 halves (16 bytes) at 8k..8k+8 lie inside the 32-element chunks.
            let (xv, yv) = unsafe {
                (
                    _mm_loadu_si128(xc.as_ptr().add(8 * k).cast()),
                    _mm_loadu_si128(yc.as_ptr().add(8 * k).cast()),
                )
            };
            *a = _mm256_fmadd_ps(_mm256_cvtph_ps(xv), _mm256_cvtph_ps(yv), *a);
        }
    }
    let acc = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let tail: f32 = x_tail.iter().zip(y_tail).map(|(a, b)| f16_to_f32(*a) * f16_to_f32(*b)).sum();
    hsum_f32x8(acc) + tail
}
