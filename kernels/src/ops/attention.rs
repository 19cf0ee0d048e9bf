//! The two attention products, with llama.cpp's summation orders (x86 AVX-512 build, F32 KV
//! cache, no flash attention).
//!
//! - Scores: llama.cpp multiplies K by Q with `ggml_vec_dot_f32` per (query, key) pair
//!   ([`dot_f32_4x16`]), then softmax scales by `kq_scale`.
//! - Values: V is cached transposed, and out[d] = Σ_j w[j] V[j][d] is a dot along positions.
//!   A batch of 2+ queries goes through llamafile's tinyBLAS (one 16-lane FMA accumulator per
//!   output, then a reduce): [`ValueOrder::Gemm`]. A single query goes through
//!   `ggml_vec_dot_f32` (four 16-lane accumulators): [`ValueOrder::VecDot`]. llama.cpp pads
//!   the KV length to a multiple of 256 with zero weights, so neither has a scalar tail; we
//!   count a short last group as zero-padded the same way.

use super::dot::{dot_f32_4x16, reduce_4x16, DOT_STEP};
use super::reduce::{hsum16, LANES};

/// Which of llama.cpp's two summation orders the value product follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueOrder {
    /// Several queries in the batch (prompt processing): tinyBLAS, one 16-lane accumulator.
    Gemm,
    /// One query (token-by-token generation): `ggml_vec_dot_f32`, four 16-lane accumulators.
    VecDot,
}

impl ValueOrder {
    /// The order llama.cpp uses for a batch of `n_queries` tokens.
    pub fn for_batch(n_queries: usize) -> ValueOrder {
        if n_queries >= 2 {
            ValueOrder::Gemm
        } else {
            ValueOrder::VecDot
        }
    }
}

/// scores (n,) = keys (n, hd) · q (hd,) * scale.
pub fn attn_scores(q: &[f32], keys: &[f32], scale: f32, scores: &mut [f32]) {
    let hd = q.len();
    debug_assert_eq!(keys.len(), scores.len() * hd);
    for (s, k) in scores.iter_mut().zip(keys.chunks_exact(hd.max(1))) {
        *s = dot_f32_4x16(q, k) * scale;
    }
}

/// out (hdv,) = Σ_j w[j] * values[j] over values (n, hdv), w (n,), in `order`.
pub fn attn_values(w: &[f32], values: &[f32], order: ValueOrder, out: &mut [f32]) {
    let hdv = out.len();
    debug_assert_eq!(values.len(), w.len() * hdv);
    for (d, o) in out.iter_mut().enumerate() {
        let column = |j: usize| values[j * hdv + d];
        *o = match order {
            ValueOrder::Gemm => {
                let mut acc = [0.0f32; LANES];
                for (j, wj) in w.iter().enumerate() {
                    acc[j % LANES] = libm::fmaf(column(j), *wj, acc[j % LANES]);
                }
                hsum16(&acc)
            }
            ValueOrder::VecDot => {
                let mut acc = [[0.0f32; LANES]; 4];
                for (j, wj) in w.iter().enumerate() {
                    let lane = &mut acc[j % DOT_STEP / LANES][j % LANES];
                    *lane = libm::fmaf(column(j), *wj, *lane);
                }
                hsum16(&reduce_4x16(&acc))
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn values_match_f64_weighted_sum_in_both_orders() {
        let (n, hdv) = (300, 5);
        let w: Vec<f32> = (0..n).map(|j| ((j * 31 % 17) as f32) / 64.0).collect();
        let v: Vec<f32> = (0..n * hdv).map(|i| ((i * 13 % 23) as f32 - 11.0) / 8.0).collect();
        for order in [ValueOrder::Gemm, ValueOrder::VecDot] {
            let mut out = [0.0f32; 5];
            attn_values(&w, &v, order, &mut out);
            for (d, o) in out.iter().enumerate() {
                let want: f64 = (0..n).map(|j| w[j] as f64 * v[j * hdv + d] as f64).sum();
                // Dyadic inputs with few bits: every partial sum is exact.
                assert_eq!(*o as f64, want, "{order:?} d={d}");
            }
        }
    }

    #[test]
    fn scores_are_scaled_dots() {
        let q = [1.0f32, 2.0, 3.0];
        let keys = [1.0f32, 0.0, 0.0, 0.0, 1.0, 1.0];
        let mut s = [0.0f32; 2];
        attn_scores(&q, &keys, 0.5, &mut s);
        assert_eq!(s, [0.5, 2.5]);
    }
}
