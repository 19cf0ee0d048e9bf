//! `Q4_1 x Q8_1` with AVX-512: four blocks per iteration, two per register.

use core::arch::x86_64::*;

use crate::x86::chunks;

use fovea_formats::blocks::{BlockQ4_1, BlockQ8_1, QK};

use super::common::{dot_u8_i8_madd, dot_u8_i8_vnni, load_2x32, spread_2};
use crate::x86::avx2;

/// Two blocks' 16 packed bytes -> 64 nibbles in element order: [A lo, A hi, B lo, B hi].
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
fn nibbles_2x32(a: &[u8; 16], b: &[u8; 16]) -> __m512i {
    // SAFETY: each reference covers 16 readable bytes; loadu has no alignment requirement.
    let packed =
        unsafe { _mm256_set_m128i(_mm_loadu_si128(b.as_ptr().cast()), _mm_loadu_si128(a.as_ptr().cast())) };
    let low_nibble = _mm256_set1_epi8(0x0F);
    let lo = _mm256_and_si256(packed, low_nibble); // [A lo, B lo]
    let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(packed), low_nibble); // [A hi, B hi]
    let lanes = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi); // [A lo, B lo, A hi, B hi]
    _mm512_shuffle_i64x2::<0b11_01_10_00>(lanes, lanes)
}

/// The f16 pair at the start of a block (`d, m` or `d, s`) as one u32.
#[inline]
fn head(d: half::f16, second: half::f16) -> i32 {
    (u32::from(d.to_bits()) | (u32::from(second.to_bits()) << 16)) as i32
}

macro_rules! q4_1_q8_1_kernel {
    ($name:ident, $features:literal, $dot:ident) => {
        /// x (n,) as Q4_1 . y (n,) as Q8_1; n a multiple of 32.
        ///
        /// # Safety
        #[doc = concat!("The CPU must support ", $features, ".")]
        #[target_feature(enable = $features)]
        pub unsafe fn $name(n: usize, x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
            let nb = n / QK;
            let (x4, x_rest) = chunks::<_, 4>(&x[..nb]);
            let (y4, y_rest) = chunks::<_, 4>(&y[..nb]);
            let mut acc = [_mm512_setzero_ps(); 2];
            // Lanes 1, 3, 5, 7 collect m * s; the even lanes (d products) are dropped at the end.
            let mut acc_mins = _mm256_setzero_ps();
            for (bx, by) in x4.iter().zip(y4) {
                avx2::prefetch_ahead(bx);
                // [dA mA dB mB dC mC dD mD] * [dyA sA dyB sB ..] in one conversion each.
                let xh = _mm_setr_epi32(
                    head(bx[0].d, bx[0].m),
                    head(bx[1].d, bx[1].m),
                    head(bx[2].d, bx[2].m),
                    head(bx[3].d, bx[3].m),
                );
                let yh = _mm_setr_epi32(
                    head(by[0].d, by[0].s),
                    head(by[1].d, by[1].s),
                    head(by[2].d, by[2].s),
                    head(by[3].d, by[3].s),
                );
                let prod = _mm256_mul_ps(_mm256_cvtph_ps(xh), _mm256_cvtph_ps(yh));
                acc_mins = _mm256_add_ps(acc_mins, prod);
                for (k, a) in acc.iter_mut().enumerate() {
                    let (b0, b1) = (2 * k, 2 * k + 1);
                    let sumi = $dot(nibbles_2x32(&bx[b0].qs, &bx[b1].qs), load_2x32(&by[b0].qs, &by[b1].qs));
                    let scale = spread_2(prod, 2 * b0 as i32, 2 * b1 as i32);
                    *a = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(sumi), *a);
                }
            }
            let odd = _mm256_castsi256_ps(_mm256_setr_epi32(0, -1, 0, -1, 0, -1, 0, -1));
            let mins = avx2::hsum_f32x8(_mm256_and_ps(acc_mins, odd));
            // SAFETY: this function's features include AVX2, FMA and F16C.
            let rest = unsafe { avx2::vec_dot_q4_1_q8_1(x_rest.len() * QK, x_rest, y_rest) };
            _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1])) + mins + rest
        }
    };
}

q4_1_q8_1_kernel!(vec_dot_q4_1_q8_1, "avx512f,avx512bw,avx512vl,avx2,fma,f16c", dot_u8_i8_madd);
q4_1_q8_1_kernel!(
    vec_dot_q4_1_q8_1_vnni,
    "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c",
    dot_u8_i8_vnni
);
