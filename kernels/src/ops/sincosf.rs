//! sinf and cosf as glibc computes them on x86-64 (the FMA build of ARM's optimized-routines
//! algorithm: reduce by pi/2 in f64, then a short f64 polynomial). llama.cpp builds RoPE's
//! cos/sin tables with these; `libm`'s FreeBSD-derived versions differ by an ulp on about 1%
//! of RoPE angles, enough to move llama.cpp-matching results.
//!
//! gcc contracts every `a + b * c` of glibc's source into one fused multiply-add in that
//! build; `fma` below marks each.

/// Signs of sin in quadrants 0..3.
const SIGN: [f64; 4] = [1.0, -1.0, -1.0, 1.0];
/// 2/pi * 2^24: the quadrant lands in bits 24.. of a truncating conversion.
const HPI_INV: f64 = f64::from_bits(0x4164_5f30_6dc9_c883);
/// pi/2.
const HPI: f64 = f64::from_bits(0x3ff9_21fb_5444_2d18);
/// Cosine polynomial c0..c4 (the second table entry negates it).
const COS: [f64; 5] = [
    1.0,
    f64::from_bits(0xbfdf_ffff_fd0c_621c),
    f64::from_bits(0x3fa5_5553_e106_8f19),
    f64::from_bits(0xbf56_c087_e89a_359d),
    f64::from_bits(0x3ef9_9343_027b_f8c3),
];
/// Sine polynomial s1..s3.
const SIN: [f64; 3] = [
    f64::from_bits(0xbfc5_5554_5995_a603),
    f64::from_bits(0x3f81_1076_0523_0bc4),
    f64::from_bits(0xbf29_94eb_3774_cf24),
];
/// 2pi * 2^-64: scale of the fixed-point residue of `reduce_large`.
const PI63: f64 = f64::from_bits(0x3c19_21fb_5444_2d18);
/// 4/pi to 192 bits; entry i holds bits 8i.. so any window of 3 words is 8-bit aligned.
const INV_PIO4: [u32; 24] = [
    0xa2, 0xa2f9, 0xa2f983, 0xa2f9836e, 0xf9836e4e, 0x836e4e44, 0x6e4e4415, 0x4e441529, 0x441529fc,
    0x1529fc27, 0x29fc2757, 0xfc2757d1, 0x2757d1f5, 0x57d1f534, 0xd1f534dd, 0xf534ddc0, 0x34ddc0db,
    0xddc0db62, 0xc0db6295, 0xdb629599, 0x6295993c, 0x95993c43, 0x993c4390, 0x3c439041,
];

#[inline]
fn fma(a: f64, b: f64, c: f64) -> f64 {
    libm::fma(a, b, c)
}

/// Top 12 bits of |x|'s representation: compares magnitudes coarsely.
#[inline]
fn abstop12(x: f32) -> u32 {
    (x.to_bits() >> 20) & 0x7ff
}

/// sin(x) for even `n`, cos(x) for odd, with the cosine negated when `neg_cos`.
#[inline]
fn poly(x: f64, x2: f64, n: i32, neg_cos: bool) -> f32 {
    if n & 1 == 0 {
        let x3 = x * x2;
        let s1 = fma(x2, SIN[2], SIN[1]);
        let x7 = x3 * x2;
        let s = fma(x3, SIN[0], x);
        fma(x7, s1, s) as f32
    } else {
        let c = if neg_cos { COS.map(|v| -v) } else { COS };
        let x4 = x2 * x2;
        let c2 = fma(x2, c[4], c[3]);
        let c1 = fma(x2, c[1], c[0]);
        let x6 = x4 * x2;
        let cc = fma(x4, c[2], c1);
        fma(x6, c2, cc) as f32
    }
}

/// x mod pi/2 in [-pi/4, pi/4] and the quadrant, for |x| < 120.
#[inline]
fn reduce_fast(x: f64) -> (f64, i32) {
    let r = x * HPI_INV;
    let n = ((r as i32).wrapping_add(0x80_0000)) >> 24;
    (fma(-(n as f64), HPI, x), n)
}

/// |x| mod pi/2 and the quadrant for |x| >= 120, exactly, with 4/pi to 192 bits.
#[inline]
fn reduce_large(xi: u32) -> (f64, i32) {
    let arr = &INV_PIO4[((xi >> 26) & 15) as usize..];
    let shift = (xi >> 23) & 7;
    let m = ((xi & 0xff_ffff) | 0x80_0000) << shift;
    let res0 = m.wrapping_mul(arr[0]) as u64;
    let res1 = m as u64 * arr[4] as u64;
    let res2 = m as u64 * arr[8] as u64;
    let mut res = (res2 >> 32) | (res0 << 32);
    res = res.wrapping_add(res1);
    let n = res.wrapping_add(1 << 61) >> 62;
    res = res.wrapping_sub(n << 62);
    ((res as i64) as f64 * PI63, n as i32)
}

/// Shared body: `cos` selects the quadrant offset of cosine.
#[inline]
fn sin_or_cos(y: f32, cos: bool) -> f32 {
    let x = y as f64;
    let odd = i32::from(cos);
    if abstop12(y) < abstop12(core::f32::consts::FRAC_PI_4) {
        if abstop12(y) < abstop12(f32::from_bits(0x3980_0000)) {
            // |y| < 2^-12: sin y = y, cos y = 1 in f32.
            return if cos { 1.0 } else { y };
        }
        return poly(x, x * x, odd, false);
    }
    let (r, n, quadrant) = if abstop12(y) < abstop12(120.0) {
        let (r, n) = reduce_fast(x);
        (r, n, n)
    } else if abstop12(y) < abstop12(f32::INFINITY) {
        let xi = y.to_bits();
        let (r, n) = reduce_large(xi);
        (r, n, n + (xi >> 31) as i32)
    } else {
        return f32::NAN;
    };
    let s = SIGN[(quadrant & 3) as usize];
    poly(r * s, r * r, n ^ odd, quadrant & 2 != 0)
}

/// sin(x), glibc's x86-64 result.
pub fn sinf(x: f32) -> f32 {
    sin_or_cos(x, false)
}

/// cos(x), glibc's x86-64 result.
pub fn cosf(x: f32) -> f32 {
    sin_or_cos(x, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_an_ulp_of_f64_sin_and_cos() {
        let mut x = -3000.0f32;
        while x < 3000.0 {
            for (got, want) in [(sinf(x), libm::sin(x as f64)), (cosf(x), libm::cos(x as f64))] {
                assert!((got as f64 - want).abs() <= 2.0f64.powi(-24) * 1.2, "x={x}: {got} vs {want}");
            }
            x += 0.173;
        }
        assert_eq!(sinf(0.0), 0.0);
        assert_eq!(cosf(0.0), 1.0);
        assert!(sinf(f32::INFINITY).is_nan() && cosf(f32::NAN).is_nan());
    }
}
