//! Attention of a GQA group's queries over one KV head's rows, read once for the whole group:
//! the products a decoded token runs past the foveated cache's budget, where B = 512 entries
//! per KV head are attended by 3 (SmolLM2) or 4 (Gemma 3) query heads.
//!
//! The per-query kernels (`attn_scores`, `attn_values_add`) follow ggml's orders so the full
//! cache matches llama.cpp to the bit; past the budget nothing has to match ggml, so these
//! choose orders a vector unit runs at full rate: every key or value row is loaded (and, for
//! f16 rows, widened) once for all the group's queries, and each query's accumulators stay in
//! registers. The orders are defined here, by the scalar references; every ISA computes the
//! same operations in the same order, so all tables agree to the bit.

use half::f16;

use super::reduce::LANES;

/// Key or value rows of one KV head as the cache stores them, (n, width) row-major.
#[derive(Clone, Copy, Debug)]
pub enum KvRows<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
}

impl KvRows<'_> {
    /// Elements stored.
    pub fn len(&self) -> usize {
        match self {
            KvRows::F32(x) => x.len(),
            KvRows::F16(x) => x.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element i as f32 (f16 widens exactly).
    #[inline]
    pub fn at(&self, i: usize) -> f32 {
        match self {
            KvRows::F32(x) => x[i],
            KvRows::F16(x) => x[i].to_f32(),
        }
    }
}

/// The rows' start as bytes, with whether they hold f16: what the SIMD kernels load from.
#[cfg(target_arch = "x86_64")]
pub(crate) fn raw_rows(rows: KvRows<'_>) -> (*const u8, bool) {
    match rows {
        KvRows::F32(x) => (x.as_ptr().cast(), false),
        KvRows::F16(x) => (x.as_ptr().cast(), true),
    }
}

/// scores[g * stride + j] = scale * (q_g · key_j) for the G = q.len() / hd queries q (G, hd)
/// and the n = keys.len() / hd keys (n, hd); columns n.. of each score row are not written.
///
/// Order of each dot: lane l (the dimensions d = l, l + 16, l + 32, ...) is the chain
/// acc_l = fma(q[d], key[d], acc_l) from 0 in ascending d; then the 16 lanes are summed as a
/// tree, l + (l + 8), then + 4, + 2, + 1 (a lane past hd is 0 and takes no fma).
pub fn group_scores(q: &[f32], keys: KvRows<'_>, hd: usize, scale: f32, scores: &mut [f32], stride: usize) {
    let Some((g_count, n)) = scores_shape(q, keys, hd, scores, stride) else {
        return;
    };
    for g in 0..g_count {
        let qg = &q[g * hd..(g + 1) * hd];
        for j in 0..n {
            let mut lanes = [0.0f32; LANES];
            for (d, &x) in qg.iter().enumerate() {
                let l = &mut lanes[d % LANES];
                *l = libm::fmaf(x, keys.at(j * hd + d), *l);
            }
            scores[g * stride + j] = tree_sum(lanes) * scale;
        }
    }
}

/// The 16 lanes summed l + (l + 8), then l + (l + 4), l + (l + 2), l + (l + 1).
#[inline]
pub(crate) fn tree_sum(mut lanes: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for l in 0..width {
            lanes[l] += lanes[l + width];
        }
        width /= 2;
    }
    lanes[0]
}

/// acc[g * hdv + d] += Σ_j w[g * stride + j] * value_j[d] for the G = acc.len() / hdv queries,
/// over the n = values.len() / hdv rows (n, hdv); w holds G rows of at least n weights, stride
/// apart. Each element is the chain acc = fma(w_j, value_j[d], acc) in ascending j.
pub fn group_values_add(w: &[f32], stride: usize, values: KvRows<'_>, hdv: usize, acc: &mut [f32]) {
    let Some((g_count, n)) = values_shape(w, stride, values, hdv, acc) else {
        return;
    };
    for j in 0..n {
        for g in 0..g_count {
            let wj = w[g * stride + j];
            for (d, a) in acc[g * hdv..(g + 1) * hdv].iter_mut().enumerate() {
                *a = libm::fmaf(wj, values.at(j * hdv + d), *a);
            }
        }
    }
}

/// (queries, keys) of a `group_scores` call, None when there is nothing to compute. Panics
/// (as a slice index would) when scores cannot hold the rows.
pub(crate) fn scores_shape(
    q: &[f32],
    keys: KvRows<'_>,
    hd: usize,
    scores: &[f32],
    stride: usize,
) -> Option<(usize, usize)> {
    if hd == 0 {
        return None;
    }
    let (g, n) = (q.len() / hd, keys.len() / hd);
    if g == 0 || n == 0 {
        return None;
    }
    assert!(stride >= n && scores.len() >= (g - 1) * stride + n, "group_scores: score rows too short");
    Some((g, n))
}

/// (queries, rows) of a `group_values_add` call, None when there is nothing to compute.
pub(crate) fn values_shape(
    w: &[f32],
    stride: usize,
    values: KvRows<'_>,
    hdv: usize,
    acc: &[f32],
) -> Option<(usize, usize)> {
    if hdv == 0 {
        return None;
    }
    let (g, n) = (acc.len() / hdv, values.len() / hdv);
    if g == 0 || n == 0 {
        return None;
    }
    assert!(stride >= n && w.len() >= (g - 1) * stride + n, "group_values_add: weight rows too short");
    Some((g, n))
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use super::*;

    #[test]
    fn scores_are_scaled_dots() {
        let hd = 20; // lanes 0..3 take two dimensions, the rest one
        let q: Vec<f32> = (0..2 * hd).map(|i| (i as f32 * 0.3).sin()).collect();
        let keys: Vec<f32> = (0..3 * hd).map(|i| (i as f32 * 0.7).cos()).collect();
        let mut s = vec![f32::NAN; 2 * 5];
        group_scores(&q, KvRows::F32(&keys), hd, 0.5, &mut s, 5);
        for g in 0..2 {
            for j in 0..3 {
                let want: f64 =
                    (0..hd).map(|d| q[g * hd + d] as f64 * keys[j * hd + d] as f64).sum::<f64>() * 0.5;
                assert!((s[g * 5 + j] as f64 - want).abs() < 1e-5, "g {g} j {j}");
            }
            assert!(s[g * 5 + 3].is_nan() && s[g * 5 + 4].is_nan(), "columns past n untouched");
        }
    }

    #[test]
    fn f16_rows_give_the_bits_of_their_widened_f32() {
        let hd = 32;
        let q: Vec<f32> = (0..3 * hd).map(|i| (i as f32 * 0.11).sin()).collect();
        let k16: Vec<f16> = (0..4 * hd).map(|i| f16::from_f32((i as f32 * 0.05).cos())).collect();
        let k32: Vec<f32> = k16.iter().map(|x| x.to_f32()).collect();
        let (mut a, mut b) = (vec![0.0; 12], vec![0.0; 12]);
        group_scores(&q, KvRows::F16(&k16), hd, 1.0, &mut a, 4);
        group_scores(&q, KvRows::F32(&k32), hd, 1.0, &mut b, 4);
        assert_eq!(a, b);
        let (mut va, mut vb) = (vec![0.0; 3 * hd], vec![0.0; 3 * hd]);
        group_values_add(&a, 4, KvRows::F16(&k16), hd, &mut va);
        group_values_add(&a, 4, KvRows::F32(&k32), hd, &mut vb);
        assert_eq!(va, vb);
    }

    #[test]
    fn values_add_up_in_consecutive_calls() {
        let hdv = 16;
        let v: Vec<f32> = (0..6 * hdv).map(|i| (i as f32 * 0.9).sin()).collect();
        let w: Vec<f32> = (0..2 * 6).map(|i| 0.1 * i as f32).collect();
        let mut whole = vec![0.0; 2 * hdv];
        group_values_add(&w, 6, KvRows::F32(&v), hdv, &mut whole);
        // The same rows in two calls: weights 0..4 then 4..6 of each query's row.
        let mut parts = vec![0.0; 2 * hdv];
        group_values_add(&w, 6, KvRows::F32(&v[..4 * hdv]), hdv, &mut parts);
        group_values_add(&w[4..], 6, KvRows::F32(&v[4 * hdv..]), hdv, &mut parts);
        assert_eq!(whole, parts);
    }

    #[test]
    fn tree_sum_order() {
        // 1 + tiny + tiny: lanes 4 and 12 meet before lane 0, so both tinies survive.
        let tiny = f32::EPSILON / 2.0;
        let mut v = [0.0f32; LANES];
        (v[0], v[4], v[12]) = (1.0, tiny, tiny);
        assert_eq!(tree_sum(v), 1.0 + f32::EPSILON);
    }
}
