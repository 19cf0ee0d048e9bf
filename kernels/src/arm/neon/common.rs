//! Small NEON building blocks shared by the dot products and quantizers.
//!
//! `vdotq_s32` and the f16 conversion intrinsics are unstable in the Rust versions we build with
//! (shared/PLATFORM.md), so `sdot` and `fcvtl` are written with `asm!`.

use core::arch::aarch64::*;
use core::arch::asm;

use half::f16;

/// Four f16 -> f32x4 with one `fcvtl` (base ARMv8 Advanced SIMD; exact, like `f16::to_f32`).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn f16x4_to_f32(h: [f16; 4]) -> float32x4_t {
    let bits = h.map(f16::to_bits);
    let packed = u64::from(bits[0])
        | (u64::from(bits[1]) << 16)
        | (u64::from(bits[2]) << 32)
        | (u64::from(bits[3]) << 48);
    let halves = vcreate_u16(packed);
    let out: float32x4_t;
    // SAFETY: `fcvtl` is part of base AArch64 Advanced SIMD (always present on this target); it
    // only reads and writes the named registers.
    unsafe {
        asm!(
            "fcvtl {out:v}.4s, {halves:v}.4h",
            halves = in(vreg) halves,
            out = lateout(vreg) out,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    out
}

/// Two f16 -> [a, b] in f32 (the other lanes are zero).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn f16_pair(a: f16, b: f16) -> (f32, f32) {
    let v = f16x4_to_f32([a, b, f16::ZERO, f16::ZERO]);
    (vgetq_lane_f32::<0>(v), vgetq_lane_f32::<1>(v))
}

/// 16 signed bytes.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn load_i8x16(bytes: &[i8; 16]) -> int8x16_t {
    // SAFETY: the reference covers 16 readable bytes; `ld1` has no alignment requirement.
    unsafe { vld1q_s8(bytes.as_ptr()) }
}

/// 16 unsigned bytes.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn load_u8x16(bytes: &[u8; 16]) -> uint8x16_t {
    // SAFETY: as in `load_i8x16`.
    unsafe { vld1q_u8(bytes.as_ptr()) }
}

/// 32 signed bytes as (elements 0..16, elements 16..32).
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn load_i8x32(bytes: &[i8; 32]) -> (int8x16_t, int8x16_t) {
    let (halves, _) = bytes.as_chunks::<16>();
    (load_i8x16(&halves[0]), load_i8x16(&halves[1]))
}

/// 16 packed nibbles -> (low nibbles, high nibbles) as bytes 0..16.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn nibbles(qs: &[u8; 16]) -> (uint8x16_t, uint8x16_t) {
    let packed = load_u8x16(qs);
    (vandq_u8(packed, vdupq_n_u8(0x0F)), vshrq_n_u8::<4>(packed))
}

/// An exact signed-byte dot step: `acc + the products of a and b, summed into 4 i32 lanes`.
/// Which products land in which lane differs between implementations; callers only rely on
/// the total (`vaddvq_s32`) unless they say otherwise.
pub(super) trait I8Dot {
    /// # Safety
    /// The CPU must support the instructions of the implementation.
    unsafe fn dot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t;
}

/// ARMv8.0: widening multiplies (`smull`, `smull2`) then pairwise accumulate (`sadalp`).
/// Each i16 product is at most 128 * 128, so nothing saturates.
pub(super) struct Widen;

impl I8Dot for Widen {
    #[inline(always)]
    unsafe fn dot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        // SAFETY: the caller guarantees NEON.
        unsafe {
            let acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
            vpadalq_s16(acc, vmull_high_s8(a, b))
        }
    }
}

/// ARMv8.2 dotprod: one `sdot`, lane i += sum of the products of bytes 4i..4i+4.
///
/// The method carries no `#[target_feature]` (the assembler is told `.arch_extension dotprod`
/// instead): a `dotprod` function would not inline into the NEON-only generic kernel bodies,
/// and one call per 16 bytes would cost more than the instruction saves.
pub(super) struct Sdot;

impl I8Dot for Sdot {
    #[inline(always)]
    unsafe fn dot(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
        // SAFETY: the caller guarantees the dotprod extension (checked once by `Isa`); `sdot`
        // only reads and writes the named registers.
        unsafe {
            asm!(
                ".arch_extension dotprod",
                "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
                acc = inout(vreg) acc,
                a = in(vreg) a,
                b = in(vreg) b,
                options(pure, nomem, nostack, preserves_flags),
            );
        }
        acc
    }
}

/// Integer dot of 32 weights (two 16-byte halves) with 32 activations.
///
/// # Safety
/// As for `D::dot`.
#[inline]
#[target_feature(enable = "neon")]
pub(super) unsafe fn block_dot<D: I8Dot>(w: (int8x16_t, int8x16_t), y: (int8x16_t, int8x16_t)) -> i32 {
    // SAFETY: forwarded to the caller.
    let acc = unsafe { D::dot(D::dot(vdupq_n_s32(0), w.0, y.0), w.1, y.1) };
    vaddvq_s32(acc)
}

/// The reference's eight K-quant lanes for one 16-element group with one scale:
/// lanes[l] += scale * sum of w[e] * y[e] over the two elements e of the group with e % 8 == l.
/// `vmull_s8` of the low and high 8 bytes puts elements l and l + 8 in the same i16 lane; the
/// pair sum fits: |w| <= 32 and |y| <= 128 give at most 8192.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn lanes_mod8(lanes: &mut [int32x4_t; 2], w: int8x16_t, y: int8x16_t, scale: i16) {
    let pairs = vaddq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(y)), vmull_high_s8(w, y));
    lanes[0] = vmlal_n_s16(lanes[0], vget_low_s16(pairs), scale);
    lanes[1] = vmlal_high_n_s16(lanes[1], pairs, scale);
}

/// The reference's per-block lane update `sums[l] += d * lanes[l] as f32`, as a multiply then
/// an add (not fused) so every lane rounds as the scalar code does.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn add_scaled_lanes(sums: &mut [float32x4_t; 2], d: f32, lanes: &[int32x4_t; 2]) {
    for (s, &l) in sums.iter_mut().zip(lanes) {
        *s = vaddq_f32(*s, vmulq_f32(vdupq_n_f32(d), vcvtq_f32_s32(l)));
    }
}

/// The reference's final `for l: sumf += sums[l]`, lane by lane in order.
#[inline]
#[target_feature(enable = "neon")]
pub(super) fn finish_lanes(mut sumf: f32, sums: &[float32x4_t; 2]) -> f32 {
    for &s in sums {
        sumf += vgetq_lane_f32::<0>(s);
        sumf += vgetq_lane_f32::<1>(s);
        sumf += vgetq_lane_f32::<2>(s);
        sumf += vgetq_lane_f32::<3>(s);
    }
    sumf
}
