//! Softmax of one attention row, with llama.cpp's arithmetic.
//!
//! ggml (`ggml_vec_soft_max_f32`, x86 AVX-512 build) exponentiates 16 lanes at a time with its
//! polynomial exp ([`exp_poly`]), reduces each group of 16 with `_mm512_reduce_add_ps`
//! ([`hsum16`]) and adds the group sums into an f64; then it scales by `(f32)(1.0 / sum)`.
//! llama.cpp pads the KV length to a multiple of 256 with masked (-inf) cells, so every real
//! score goes through the vector path; the padding lanes contribute exact zeros. We reproduce
//! that: a short last group counts as padded with -inf.

use super::expf::exp_poly;
use super::reduce::{hsum16, LANES};

/// What a softmax divided by: the row's largest score and the sum of exp(score - max). Two rows
/// softmaxed apart can be merged with them (attention split over segments of its keys).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SoftmaxStats {
    /// The largest score; -inf for an all-masked (or empty) row.
    pub max: f32,
    /// Σ exp(x - max) in the order of the normalization; 0 for an all-masked row.
    pub sum: f64,
}

impl SoftmaxStats {
    /// The stats of an all-masked row, which the softmax turns into zeros.
    pub const MASKED: SoftmaxStats = SoftmaxStats { max: f32::NEG_INFINITY, sum: 0.0 };
}

/// x (n,) <- softmax(x). -inf entries (masked) become 0; an all-masked row becomes all zeros
/// rather than NaN.
pub fn softmax_in_place(x: &mut [f32]) -> SoftmaxStats {
    let Some(max) = row_max(x) else {
        x.fill(0.0);
        return SoftmaxStats::MASKED;
    };
    let mut sum = 0.0f64;
    for group in x.chunks_mut(LANES) {
        let mut e = [0.0f32; LANES]; // padding lanes: exp(-inf) = 0
        for (ei, v) in e.iter_mut().zip(group.iter_mut()) {
            *ei = exp_poly(*v - max);
            *v = *ei;
        }
        sum += hsum16(&e) as f64;
    }
    scale_by_inverse(x, sum);
    SoftmaxStats { max, sum }
}

/// The largest entry, or `None` when every entry is -inf (or the row is empty).
#[inline]
pub(crate) fn row_max(x: &[f32]) -> Option<f32> {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (max != f32::NEG_INFINITY).then_some(max)
}

/// x *= (f32)(1 / sum), the normalization step of ggml's softmax.
#[inline]
pub(crate) fn scale_by_inverse(x: &mut [f32], sum: f64) {
    let inv = (1.0 / sum) as f32;
    for v in x {
        *v *= inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_to_one_and_handles_masks() {
        let mut x = [1.0f32, 2.0, f32::NEG_INFINITY, 3.0];
        softmax_in_place(&mut x);
        assert_eq!(x[2], 0.0);
        assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(x[3] > x[1] && x[1] > x[0]);
        let mut big = [1000.0f32, 1000.0];
        softmax_in_place(&mut big);
        assert_eq!(big, [0.5, 0.5]);
        let mut masked = [f32::NEG_INFINITY; 3];
        softmax_in_place(&mut masked);
        assert_eq!(masked, [0.0; 3]);
        let mut empty: [f32; 0] = [];
        softmax_in_place(&mut empty);
    }

    #[test]
    fn matches_f64_softmax_on_a_long_row() {
        let x: alloc::vec::Vec<f32> = (0..1000).map(|i| ((i * 7919 % 1000) as f32) * 0.013 - 6.0).collect();
        let mut y = x.clone();
        softmax_in_place(&mut y);
        let max = x.iter().copied().fold(f32::MIN, f32::max) as f64;
        let total: f64 = x.iter().map(|&v| (v as f64 - max).exp()).sum();
        for (xi, yi) in x.iter().zip(&y) {
            let want = (*xi as f64 - max).exp() / total;
            // exp_poly is within 2 ulp; the sum and scale add a few more.
            assert!((*yi as f64 - want).abs() <= want * 4e-7 + 1e-12, "{yi} vs {want}");
        }
    }
}
