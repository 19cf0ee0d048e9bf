//! f32 dot products and axpy.
//!
//! `dot_f32` is the quick general-purpose dot; `dot_f32_4x16` reproduces ggml's
//! `ggml_vec_dot_f32` (x86 AVX-512 build) to the bit, for the attention scores llama.cpp
//! computes with it.

use super::reduce::{hsum16, LANES};

/// Elements per step of ggml's f32 dot: four 16-lane accumulators.
pub const DOT_STEP: usize = 4 * LANES;

/// sum_i a[i] * b[i]. Eight independent partial sums so the loop vectorizes and the rounding
/// does not depend on a single long dependency chain.
#[inline]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let chunks = n / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut tail = 0.0f32;
    for i in chunks * 8..n {
        tail += a[i] * b[i];
    }
    (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]) + tail
}

/// x (n,) . y (n,) in ggml's order: element i of each whole 64-element step goes to
/// accumulator lane i % 64 (fused multiply-add), the four 16-lane accumulators are added
/// pairwise ((0+2) + (1+3)) and reduced by [`hsum16`]; the elements past the last whole step
/// are then added one at a time with fused multiply-adds.
pub fn dot_f32_4x16(x: &[f32], y: &[f32]) -> f32 {
    debug_assert_eq!(x.len(), y.len());
    let n = x.len().min(y.len());
    let whole = n / DOT_STEP * DOT_STEP;
    let mut acc = [[0.0f32; LANES]; 4];
    for (xs, ys) in x[..whole].chunks_exact(DOT_STEP).zip(y[..whole].chunks_exact(DOT_STEP)) {
        for (i, (a, b)) in xs.iter().zip(ys).enumerate() {
            let lane = &mut acc[i / LANES][i % LANES];
            *lane = libm::fmaf(*a, *b, *lane);
        }
    }
    let mut sum = hsum16(&reduce_4x16(&acc));
    for (a, b) in x[whole..n].iter().zip(&y[whole..n]) {
        sum = libm::fmaf(*a, *b, sum);
    }
    sum
}

/// ggml's pairwise fold of four accumulators into one: (a0 + a2) + (a1 + a3), lane by lane.
#[inline]
pub(crate) fn reduce_4x16(acc: &[[f32; LANES]; 4]) -> [f32; LANES] {
    core::array::from_fn(|l| (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]))
}

/// y += alpha * x
#[inline]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    debug_assert_eq!(x.len(), y.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// x *= alpha
#[inline]
pub fn scale_in_place(x: &mut [f32], alpha: f32) {
    for v in x {
        *v *= alpha;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_f64_sum_on_awkward_lengths() {
        for n in [0usize, 1, 7, 8, 9, 63, 64, 65, 1000] {
            let a: alloc::vec::Vec<f32> = (0..n).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.25).collect();
            let b: alloc::vec::Vec<f32> = (0..n).map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.5).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((dot_f32(&a, &b) as f64 - want).abs() < 1e-4, "n={n}");
        }
    }

    #[test]
    fn dot_4x16_matches_f64_sum_and_is_exact_on_small_integers() {
        for n in [0usize, 1, 7, 16, 63, 64, 65, 200, 4097] {
            let a: alloc::vec::Vec<f32> = (0..n).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.25).collect();
            let b: alloc::vec::Vec<f32> = (0..n).map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.5).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            // Quarter-integers times half-integers: every partial sum is exact in f32.
            assert_eq!(dot_f32_4x16(&a, &b) as f64, want, "n={n}");
        }
    }

    #[test]
    fn axpy_adds_scaled() {
        let mut y = [1.0f32, 2.0, 3.0];
        axpy(2.0, &[1.0, -1.0, 0.5], &mut y);
        assert_eq!(y, [3.0, 0.0, 4.0]);
    }
}
