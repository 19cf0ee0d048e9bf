//! AVX-512 building blocks shared by the dot kernels.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use alloc::vec::Vec;

use crate::x86::avx2::hsum_f32x8;

/// Unsigned x signed bytes -> 16 i32 lanes, each the sum of 4 adjacent products, via
/// `vpmaddubsw` + `vpmaddwd` (no i16 saturation for x <= 63, |y| <= 127, or x <= 128 with
/// |y| <= 127).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) fn dot_u8_i8_madd(x: __m512i, y: __m512i) -> __m512i {
    _mm512_madd_epi16(_mm512_maddubs_epi16(x, y), _mm512_set1_epi16(1))
}

/// As [`dot_u8_i8_madd`] with one VNNI instruction (never saturates).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
pub(super) fn dot_u8_i8_vnni(x: __m512i, y: __m512i) -> __m512i {
    _mm512_dpbusd_epi32(_mm512_setzero_si512(), x, y)
}

/// Signed x signed bytes as |x| * (y with x's sign), the form the u8 x i8 dots take.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) fn abs_and_signed(x: __m512i, y: __m512i) -> (__m512i, __m512i) {
    let negative = _mm512_movepi8_mask(x);
    (_mm512_abs_epi8(x), _mm512_mask_sub_epi8(y, negative, _mm512_setzero_si512(), y))
}

/// Two 32-byte arrays -> one register, first in the low half.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) fn load_2x32(a: &[i8; 32], b: &[i8; 32]) -> __m512i {
    // SAFETY: each reference covers 32 readable bytes; loadu has no alignment requirement.
    let (a, b) = unsafe { (_mm256_loadu_si256(a.as_ptr().cast()), _mm256_loadu_si256(b.as_ptr().cast())) };
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(a), b)
}

/// Broadcasts lane `i` of `v` to the low 8 lanes and lane `j` to the high 8 lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) fn spread_2(v: __m256, i: i32, j: i32) -> __m512 {
    let idx = _mm512_setr_epi32(i, i, i, i, i, i, i, i, j, j, j, j, j, j, j, j);
    _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(v))
}

/// The first `len` elements of `stack` (or of `heap`, grown, when `stack` is too short), each set
/// to `f(i)`.
#[inline]
pub(super) fn init_with<'a, T: Copy, const N: usize>(
    stack: &'a mut [MaybeUninit<T>; N],
    heap: &'a mut Vec<MaybeUninit<T>>,
    len: usize,
    f: impl Fn(usize) -> T,
) -> &'a [T] {
    let slots: &mut [MaybeUninit<T>] = if len <= N {
        &mut stack[..len]
    } else {
        heap.resize(len, MaybeUninit::uninit());
        &mut heap[..len]
    };
    for (i, slot) in slots.iter_mut().enumerate() {
        slot.write(f(i));
    }
    // SAFETY: the loop above wrote every slot; `MaybeUninit<T>` has the layout of `T`.
    unsafe { &*(slots as *const [MaybeUninit<T>] as *const [T]) }
}

/// 32 signed bytes, unaligned.
#[inline]
#[target_feature(enable = "avx2")]
pub(super) fn load_i8x32(bytes: &[i8; 32]) -> __m256i {
    // SAFETY: the reference covers 32 readable bytes; loadu has no alignment requirement.
    unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
}

/// [lo | hi] as one 512-bit register.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn join_i256(lo: __m256i, hi: __m256i) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
}

/// [lo | hi] as one 512-bit register.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn join_ps256(lo: __m256, hi: __m256) -> __m512 {
    _mm512_castpd_ps(_mm512_insertf64x4::<1>(
        _mm512_castpd256_pd512(_mm256_castps_pd(lo)),
        _mm256_castps_pd(hi),
    ))
}

/// The two 8-lane halves of `acc` each summed as `hsum_f32x8` sums an AVX2 accumulator: the
/// results of the two tokens of a pair.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) fn hsum_halves(acc: __m512) -> [f32; 2] {
    let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(acc)));
    [hsum_f32x8(_mm512_castps512_ps256(acc)), hsum_f32x8(hi)]
}
