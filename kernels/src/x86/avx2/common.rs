//! Small AVX2 building blocks shared by the dot products and quantizers.
//!
//! These are safe `#[target_feature]` functions: callable without `unsafe` from the kernels,
//! which enable the same features.

use core::arch::x86_64::*;

use half::f16;

/// One f16 to f32 through F16C (`half` without `std` converts in software).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn f16_to_f32(h: f16) -> f32 {
    _mm_cvtss_f32(f16_pair(h, f16::ZERO))
}

/// Two f16 -> [lo, hi, 0, 0] in f32, through one zero-extending move. (Converting one f16
/// at a time lets LLVM insert into a stale register, which chains loop iterations together.)
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn f16_pair(lo: f16, hi: f16) -> __m128 {
    let bits = u32::from(lo.to_bits()) | (u32::from(hi.to_bits()) << 16);
    _mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32))
}

/// How far ahead of the weight block being read the dots prefetch: matrix-vector products stream
/// every weight once, and on the VMs we measure the hardware prefetcher alone leaves the loads
/// waiting (Gemma 3 tg128 on a Xeon with 2 vCPUs: 46 t/s without, 52.6 / 58.9 / 65.7 / 65.3 t/s
/// at 512 / 1024 / 2048 / 4096 bytes ahead in the Q8_0 dot).
pub(crate) const PREFETCH_BYTES: usize = 2048;

/// Prefetches the cache lines [`PREFETCH_BYTES`] past `block`, one per 64 bytes of its size: over
/// consecutive blocks of any size that touches every line of the stream ahead.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn prefetch_ahead<T>(block: &T) {
    let ahead = (block as *const T).cast::<i8>().wrapping_add(PREFETCH_BYTES);
    for line in 0..size_of::<T>().div_ceil(64) {
        // A prefetch is a hint that never faults, whatever the address: past the end of the
        // weights it fetches nothing useful, and nothing else happens.
        _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * line));
    }
}

/// dx * dy broadcast to 8 lanes: the block scale of a dot whose integer part is exact.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn scale_product(dx: f16, dy: f16) -> __m256 {
    let d = f16_pair(dx, dy);
    _mm256_broadcastss_ps(_mm_mul_ss(d, _mm_movehdup_ps(d)))
}

/// One f32 to f16, rounding to nearest even like `f16::from_f32`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn f32_to_f16(x: f32) -> f16 {
    let bits = _mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set_ss(x));
    f16::from_bits(_mm_extract_epi16::<0>(bits) as u16)
}

/// Sum of the 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn hsum_f32x8(v: __m256) -> f32 {
    let x4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let x2 = _mm_add_ps(x4, _mm_movehl_ps(x4, x4));
    let x1 = _mm_add_ss(x2, _mm_movehdup_ps(x2));
    _mm_cvtss_f32(x1)
}

/// Maximum of the 8 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn hmax_f32x8(v: __m256) -> f32 {
    let x4 = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let x2 = _mm_max_ps(x4, _mm_movehl_ps(x4, x4));
    let x1 = _mm_max_ss(x2, _mm_movehdup_ps(x2));
    _mm_cvtss_f32(x1)
}

/// 16 bytes, unaligned.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load_u8x16(bytes: &[u8; 16]) -> __m128i {
    // SAFETY: the reference covers 16 readable bytes; loadu has no alignment requirement.
    unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
}

/// 32 bytes, unaligned.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load_u8x32(bytes: &[u8; 32]) -> __m256i {
    // SAFETY: the reference covers 32 readable bytes; loadu has no alignment requirement.
    unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
}

/// 32 signed bytes, unaligned.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn load_i8x32(bytes: &[i8; 32]) -> __m256i {
    // SAFETY: the reference covers 32 readable bytes; loadu has no alignment requirement.
    unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
}

/// 16 packed nibbles -> 32 bytes in element order: low nibbles (elements 0..16) in the low
/// 128 bits, high nibbles (elements 16..32) in the high 128 bits.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn nibbles_u8x32(qs: &[u8; 16]) -> __m256i {
    let packed = load_u8x16(qs);
    let both = _mm256_set_m128i(_mm_srli_epi16::<4>(packed), packed);
    _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
}

/// Bit j of `bits` -> byte j = 0xFF when set, 0 when clear.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn bits_to_bytes_u8x32(bits: u32) -> __m256i {
    // Byte j takes byte j / 8 of `bits`, then tests bit j % 8 of it.
    let spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(bits as i32),
        _mm256_set_epi64x(0x0303_0303_0303_0303, 0x0202_0202_0202_0202, 0x0101_0101_0101_0101, 0),
    );
    let bit_of_byte = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit_of_byte), bit_of_byte)
}

/// Unsigned x signed bytes -> 8 i32 lanes, each the sum of 4 adjacent products.
/// No i16 saturation as long as 2 * x * |y| < 32768 (x <= 63 and |y| <= 127 is fine).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_u8_i8(x: __m256i, y: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), _mm256_set1_epi16(1))
}

/// Signed x signed bytes -> 8 i32 lanes of 4 products each, via |x| * (y with x's sign).
/// Exact for any x and for y in -127..=127.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_i8_i8(x: __m256i, y: __m256i) -> __m256i {
    dot_u8_i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
}

/// As [`dot_u8_i8`] with one 256-bit `vpdpbusd` (AVX-512 VNNI + VL) in place of `vpmaddubsw` +
/// `vpmaddwd`: the same 8 lanes of 4 adjacent products, exact (there is no i16 stage to
/// saturate), so it equals [`dot_u8_i8`] on every input that one does not saturate.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
pub(super) fn dot_u8_i8_vnni(x: __m256i, y: __m256i) -> __m256i {
    _mm256_dpbusd_epi32(_mm256_setzero_si256(), x, y)
}

/// As [`dot_i8_i8`] through [`dot_u8_i8_vnni`]: the same lanes, exact for the same inputs.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
pub(super) fn dot_i8_i8_vnni(x: __m256i, y: __m256i) -> __m256i {
    dot_u8_i8_vnni(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
}
