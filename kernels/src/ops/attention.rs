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
//!
//! Both products can be split over positions without changing a bit: a score depends on its
//! own key only, and [`ValueAcc`] carries the value sum's accumulators from one chunk of
//! positions to the next, so attention can walk the cache in tiles shared by several queries.

use alloc::vec::Vec;

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

/// out (hdv,) = Σ_j w[j] * values[j] over values (n, hdv), w (n,), in `order`: the one-shot
/// form of [`ValueAcc`], [`attn_values_add`] then [`attn_values_finish`].
pub fn attn_values(w: &[f32], values: &[f32], order: ValueOrder, out: &mut [f32]) {
    let mut acc = ValueAcc::new(order, out.len());
    attn_values_add(&mut acc, w, values);
    attn_values_finish(&acc, out);
}

/// The running value sum of one query, resumable: positions can be added in consecutive chunks
/// of any lengths ([`attn_values_add`]) and the result read at the end ([`attn_values_finish`]),
/// with exactly the bits of one [`attn_values`] call over all of them. Every position goes to
/// accumulator `seen % K` of each 16-column block (K = 16 for [`ValueOrder::Gemm`], 64 for
/// [`ValueOrder::VecDot`]), and each accumulator adds its positions in order, whatever the
/// chunking. Every ISA keeps the same state, so chunks may even be added by different tables.
#[derive(Clone, Debug)]
pub struct ValueAcc {
    order: ValueOrder,
    hdv: usize,
    /// Positions added so far: the next one goes to accumulator `seen % K`.
    seen: usize,
    /// (blocks, K, 16): accumulator k of column block b holds one lane per column of the block.
    /// Lanes of columns past hdv (in the last block) are scratch, never read by the result.
    lanes: Vec<f32>,
}

impl ValueAcc {
    /// An empty sum over rows of `hdv` values, in `order`.
    pub fn new(order: ValueOrder, hdv: usize) -> ValueAcc {
        let mut acc = ValueAcc { order, hdv, seen: 0, lanes: Vec::new() };
        acc.reset(order, hdv);
        acc
    }

    /// Empties the sum for a new query, keeping the buffer.
    pub fn reset(&mut self, order: ValueOrder, hdv: usize) {
        let len = hdv.div_ceil(LANES) * order.accumulators() * LANES;
        self.lanes.clear();
        self.lanes.resize(len, 0.0);
        (self.order, self.hdv, self.seen) = (order, hdv, 0);
    }

    pub fn order(&self) -> ValueOrder {
        self.order
    }

    /// Columns of each value row.
    pub fn hdv(&self) -> usize {
        self.hdv
    }

    /// Positions added so far.
    pub fn seen(&self) -> usize {
        self.seen
    }

    /// The accumulator lanes (blocks, K, 16) for the ISA kernels.
    pub(crate) fn lanes(&self) -> &[f32] {
        &self.lanes
    }

    /// The lanes to update, and the count of positions already in them; `seen` moves on by `n`.
    pub(crate) fn advance(&mut self, n: usize) -> (&mut [f32], usize) {
        let seen = self.seen;
        self.seen += n;
        (&mut self.lanes, seen)
    }
}

impl ValueOrder {
    /// Accumulators per 16-column block: K.
    pub fn accumulators(self) -> usize {
        match self {
            ValueOrder::Gemm => LANES,
            ValueOrder::VecDot => DOT_STEP,
        }
    }
}

/// acc += Σ_j w[j] * values[j] over the next positions, values (n, hdv), w (n,).
pub fn attn_values_add(acc: &mut ValueAcc, w: &[f32], values: &[f32]) {
    let (hdv, k) = (acc.hdv, acc.order.accumulators());
    debug_assert_eq!(values.len(), w.len() * hdv);
    let n = w.len().min(values.len() / hdv.max(1));
    let (lanes, seen) = acc.advance(n);
    for (j, (wj, row)) in w[..n].iter().zip(values.chunks_exact(hdv.max(1))).enumerate() {
        let a = (seen + j) % k;
        for (d, v) in row.iter().enumerate() {
            let lane = &mut lanes[((d / LANES) * k + a) * LANES + d % LANES];
            *lane = libm::fmaf(*v, *wj, *lane);
        }
    }
}

/// out (hdv,) = the sum so far: per column, the K accumulators folded ((0 + 2) + (1 + 3) by
/// 16-lane quarter for vec_dot) and reduced in `hsum16`'s order. Positions never added count as
/// zero-padding, as llama.cpp pads the KV length with zero weights.
pub fn attn_values_finish(acc: &ValueAcc, out: &mut [f32]) {
    debug_assert_eq!(out.len(), acc.hdv);
    let k = acc.order.accumulators();
    for (d, o) in out.iter_mut().enumerate() {
        let (b, c) = (d / LANES, d % LANES);
        // Accumulator a of this column.
        let lane = |a: usize| acc.lanes[(b * k + a) * LANES + c];
        *o = match acc.order {
            ValueOrder::Gemm => hsum16(&core::array::from_fn(lane)),
            ValueOrder::VecDot => {
                let quarters = core::array::from_fn(|q| core::array::from_fn(|l| lane(q * LANES + l)));
                hsum16(&reduce_4x16(&quarters))
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

    /// The value sum written column by column (the form this file had before [`ValueAcc`]):
    /// position j goes to accumulator j % K of its column.
    fn values_by_column(w: &[f32], values: &[f32], order: ValueOrder, out: &mut [f32]) {
        let hdv = out.len();
        for (d, o) in out.iter_mut().enumerate() {
            let mut acc = [[0.0f32; LANES]; 4];
            for (j, wj) in w.iter().enumerate() {
                let a = j % order.accumulators();
                let lane = &mut acc[a / LANES][a % LANES];
                *lane = libm::fmaf(values[j * hdv + d], *wj, *lane);
            }
            *o = match order {
                ValueOrder::Gemm => hsum16(&acc[0]),
                ValueOrder::VecDot => hsum16(&reduce_4x16(&acc)),
            };
        }
    }

    #[test]
    fn chunked_sums_equal_the_column_by_column_definition() {
        let (n, hdv) = (700, 19);
        // Irrational-ish values: every product and partial sum rounds, so any reordering shows.
        let w: Vec<f32> = (0..n).map(|j| libm::sinf(j as f32 * 0.37).abs() / 50.0).collect();
        let v: Vec<f32> = (0..n * hdv).map(|i| libm::cosf(i as f32 * 1.3) * 3.0).collect();
        for order in [ValueOrder::Gemm, ValueOrder::VecDot] {
            let mut want = [0.0f32; 19];
            values_by_column(&w, &v, order, &mut want);
            for chunk in [1usize, 5, 16, 63, 64, 256, 699, 700] {
                let mut acc = ValueAcc::new(order, hdv);
                for (wc, vc) in w.chunks(chunk).zip(v.chunks(chunk * hdv)) {
                    attn_values_add(&mut acc, wc, vc);
                }
                assert_eq!(acc.seen(), n);
                let mut got = [f32::NAN; 19];
                attn_values_finish(&acc, &mut got);
                assert_eq!(got.map(f32::to_bits), want.map(f32::to_bits), "{order:?} chunk={chunk}");
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
