//! `Q8_0 x Q8_0` with AVX-512: four blocks per iteration, two per register.

use core::arch::x86_64::*;

use crate::x86::chunks;

use fovea_formats::blocks::{BlockQ8_0, QK};

use super::common::{abs_and_signed, dot_u8_i8_madd, dot_u8_i8_vnni, load_2x32, spread_2};
use crate::x86::avx2;

macro_rules! q8_0_q8_0_kernel {
    ($name:ident, $features:literal, $dot:ident) => {
        /// x (n,) as Q8_0 . y (n,) as Q8_0; n a multiple of 32.
        ///
        /// # Safety
        #[doc = concat!("The CPU must support ", $features, ".")]
        #[target_feature(enable = $features)]
        pub unsafe fn $name(n: usize, x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
            let nb = n / QK;
            let (x4, x_rest) = chunks::<_, 4>(&x[..nb]);
            let (y4, y_rest) = chunks::<_, 4>(&y[..nb]);
            let mut acc = [_mm512_setzero_ps(); 2];
            for (bx, by) in x4.iter().zip(y4) {
                avx2::prefetch_ahead(bx);
                // [dxA dxB dxC dxD dyA dyB dyC dyD] -> [dxA*dyA, .., dxD*dyD] in lanes 0..4.
                let d = _mm256_cvtph_ps(_mm_setr_epi16(
                    bx[0].d.to_bits() as i16,
                    bx[1].d.to_bits() as i16,
                    bx[2].d.to_bits() as i16,
                    bx[3].d.to_bits() as i16,
                    by[0].d.to_bits() as i16,
                    by[1].d.to_bits() as i16,
                    by[2].d.to_bits() as i16,
                    by[3].d.to_bits() as i16,
                ));
                let prod = _mm256_castps128_ps256(_mm_mul_ps(
                    _mm256_castps256_ps128(d),
                    _mm256_extractf128_ps::<1>(d),
                ));
                for (k, a) in acc.iter_mut().enumerate() {
                    let (b0, b1) = (2 * k, 2 * k + 1);
                    let (ax, sy) =
                        abs_and_signed(load_2x32(&bx[b0].qs, &bx[b1].qs), load_2x32(&by[b0].qs, &by[b1].qs));
                    let sumi = $dot(ax, sy);
                    let scale = spread_2(prod, b0 as i32, b1 as i32);
                    *a = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(sumi), *a);
                }
            }
            // SAFETY: this function's features include AVX2, FMA and F16C.
            let rest = unsafe { avx2::vec_dot_q8_0_q8_0(x_rest.len() * QK, x_rest, y_rest) };
            _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1])) + rest
        }
    };
}

q8_0_q8_0_kernel!(vec_dot_q8_0_q8_0, "avx512f,avx512bw,avx512vl,avx2,fma,f16c", dot_u8_i8_madd);
q8_0_q8_0_kernel!(
    vec_dot_q8_0_q8_0_vnni,
    "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
    dot_u8_i8_vnni
);
