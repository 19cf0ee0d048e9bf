//! One lane of ggml's vector exp (`ggml_v_expf`, AVX-512 form), the exp behind llama.cpp's
//! softmax and SiLU on x86.
//!
//! It is ARM's optimized-routines polynomial: split x = n ln2 + b with |b| <= ln2/2, a degree-5
//! polynomial for e^b, then scale by 2^n. Max error 1.45 ulp + 0.5; above 88.38 it gives inf,
//! below -103.97 zero. The SIMD kernels in `ops::x86` compute exactly these operations per
//! lane, so their results equal this function bit for bit.

/// 1.5 * 2^23: adding it rounds to an integer in the low mantissa bits.
pub(crate) const SHIFT: f32 = f32::from_bits(0x4b40_0000);
/// 1 / ln 2.
pub(crate) const INV_LN2: f32 = f32::from_bits(0x3fb8_aa3b);
/// ln 2 split into a high part with trailing zero bits and the low remainder.
pub(crate) const LN2_HI: f32 = f32::from_bits(0x3f31_7200);
pub(crate) const LN2_LO: f32 = f32::from_bits(0x35bf_be8e);
/// Polynomial coefficients, e^b ~ 1 + C1 b + C2 b^2 + ... + C5 b^5.
pub(crate) const C1: f32 = f32::from_bits(0x3f7f_fff6);
pub(crate) const C2: f32 = f32::from_bits(0x3eff_fedb);
pub(crate) const C3: f32 = f32::from_bits(0x3e2a_af33);
pub(crate) const C4: f32 = f32::from_bits(0x3d2b_9f17);
pub(crate) const C5: f32 = f32::from_bits(0x3c07_2010);
/// Beyond |n| > 192 the result is 0 or inf whatever the polynomial says.
pub(crate) const N_LIMIT: f32 = 192.0;

/// e^x as one lane of ggml's AVX-512 `ggml_v_expf`.
#[inline]
pub fn exp_poly(x: f32) -> f32 {
    let fma = libm::fmaf;
    let z = fma(x, INV_LN2, SHIFT);
    let n = z - SHIFT;
    let b = fma(-n, LN2_LO, fma(-n, LN2_HI, x));
    let u = b * b;
    let j = fma(fma(fma(C5, b, C4), u, fma(C3, b, C2)), u, fma(C1, b, 1.0));
    if n.abs() > N_LIMIT {
        return if n <= 0.0 { 0.0 } else { f32::INFINITY };
    }
    scale_by_pow2(j, n)
}

/// j * 2^n rounded once, as `vscalefps` does; n is a whole number with |n| <= 192.
/// The f64 product is exact (j has 24 bits, 2^n fits f64), so the only rounding is the final
/// conversion, which also rounds correctly into the f32 subnormal range.
#[inline]
fn scale_by_pow2(j: f32, n: f32) -> f32 {
    let pow2 = f64::from_bits(((n as i64 + 1023) as u64) << 52);
    (j as f64 * pow2) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_to_true_exp_and_flushes_at_the_ends() {
        let mut x = -103.0f32;
        while x < 88.0 {
            let want = libm::exp(x as f64);
            let got = exp_poly(x) as f64;
            // 1.95 ulp of the f32 result (documented bound), relative; subnormals in absolute.
            let tol = (want * 2.0f64.powi(-23) * 1.95).max(2.0f64.powi(-149) * 2.0);
            assert!((got - want).abs() <= tol, "x={x} got={got} want={want}");
            x += 0.0137;
        }
        assert_eq!(exp_poly(0.0), 1.0);
        assert_eq!(exp_poly(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_poly(-200.0), 0.0);
        assert_eq!(exp_poly(200.0), f32::INFINITY);
        assert_eq!(exp_poly(f32::INFINITY), f32::INFINITY);
        assert!(exp_poly(f32::NAN).is_nan());
    }
}
