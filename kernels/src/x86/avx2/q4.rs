//! `Q4_0 x Q8_0` and `Q4_1 x Q8_1` with AVX2: one 32-element block per 256-bit register. Each
//! kernel also exists with 256-bit VNNI (`_vnni`), from the same body.

use core::arch::x86_64::*;

use fovea_formats::blocks::{BlockQ4_0, BlockQ4_1, BlockQ8_0, BlockQ8_1, QK};

use super::common::{
    dot_i8_i8, dot_i8_i8_vnni, dot_u8_i8, dot_u8_i8_vnni, f16_pair, hsum_f32x8, load_i8x32, nibbles_u8x32,
    prefetch_ahead, scale_product,
};

macro_rules! q4_0_q8_0_kernel {
    ($name:ident, $features:literal, $dot:ident) => {
        /// x (n,) as Q4_0 . y (n,) as Q8_0; n a multiple of 32.
        ///
        /// # Safety
        #[doc = concat!("The CPU must support ", $features, ".")]
        #[target_feature(enable = $features)]
        pub unsafe fn $name(n: usize, x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
            let nb = n / QK;
            let mut acc = _mm256_setzero_ps();
            for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
                prefetch_ahead(bx);
                // q - 8 as signed bytes, element order.
                let qx = _mm256_sub_epi8(nibbles_u8x32(&bx.qs), _mm256_set1_epi8(8));
                let sumi = $dot(qx, load_i8x32(&by.qs));
                let d = scale_product(bx.d, by.d);
                acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
            }
            hsum_f32x8(acc)
        }
    };
}

macro_rules! q4_1_q8_1_kernel {
    ($name:ident, $features:literal, $dot:ident) => {
        /// x (n,) as Q4_1 . y (n,) as Q8_1; n a multiple of 32.
        /// Per block: dx * dy * sum(qx * qy) + mx * sy, where sy = dy * sum(qy) is stored in y.
        ///
        /// # Safety
        #[doc = concat!("The CPU must support ", $features, ".")]
        #[target_feature(enable = $features)]
        pub unsafe fn $name(n: usize, x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
            let nb = n / QK;
            let mut acc = _mm256_setzero_ps();
            // Lane 1 collects mx * sy; lanes 0, 2, 3 are dropped at the end.
            let mut mins = _mm_setzero_ps();
            for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
                prefetch_ahead(bx);
                let sumi = $dot(nibbles_u8x32(&bx.qs), load_i8x32(&by.qs));
                // [dx * dy, mx * sy, 0, 0]
                let scales = _mm_mul_ps(f16_pair(bx.d, bx.m), f16_pair(by.d, by.s));
                acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(scales), _mm256_cvtepi32_ps(sumi), acc);
                mins = _mm_add_ps(mins, scales);
            }
            hsum_f32x8(acc) + _mm_cvtss_f32(_mm_movehdup_ps(mins))
        }
    };
}

q4_0_q8_0_kernel!(vec_dot_q4_0_q8_0, "avx2,fma,f16c", dot_i8_i8);
q4_0_q8_0_kernel!(vec_dot_q4_0_q8_0_vnni, "avx2,fma,f16c,avx512f,avx512vl,avx512vnni", dot_i8_i8_vnni);
q4_1_q8_1_kernel!(vec_dot_q4_1_q8_1, "avx2,fma,f16c", dot_u8_i8);
q4_1_q8_1_kernel!(vec_dot_q4_1_q8_1_vnni, "avx2,fma,f16c,avx512f,avx512vl,avx512vnni", dot_u8_i8_vnni);
