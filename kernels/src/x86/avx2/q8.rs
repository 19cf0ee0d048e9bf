//! `Q8_0 x Q8_0` with AVX2, and the same kernel with 256-bit VNNI.

use core::arch::x86_64::*;

use fovea_formats::blocks::{BlockQ8_0, QK};

use super::common::{dot_i8_i8, dot_i8_i8_vnni, hsum_f32x8, load_i8x32, prefetch_ahead, scale_product};

macro_rules! q8_0_q8_0_kernel {
    ($name:ident, $features:literal, $dot:ident) => {
        /// x (n,) as Q8_0 . y (n,) as Q8_0; n a multiple of 32.
        ///
        /// # Safety
        #[doc = concat!("The CPU must support ", $features, ".")]
        #[target_feature(enable = $features)]
        pub unsafe fn $name(n: usize, x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
            let nb = n / QK;
            let mut acc = _mm256_setzero_ps();
            for (bx, by) in x[..nb].iter().zip(&y[..nb]) {
                prefetch_ahead(bx);
                let sumi = $dot(load_i8x32(&bx.qs), load_i8x32(&by.qs));
                let d = scale_product(bx.d, by.d);
                acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
            }
            hsum_f32x8(acc)
        }
    };
}

q8_0_q8_0_kernel!(vec_dot_q8_0_q8_0, "avx2,fma,f16c", dot_i8_i8);
q8_0_q8_0_kernel!(vec_dot_q8_0_q8_0_vnni, "avx2,fma,f16c,avx512f,avx512vl,avx512vnni", dot_i8_i8_vnni);
