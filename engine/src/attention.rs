//! Causal self-attention over the KV cache, parallel over (token, head) pairs: the plain
//! version, kept as the reference that `attention_tiled` (what the forward pass runs) must equal
//! bit for bit (engine/tests/attention_tiled.rs).
//!
//! The arithmetic follows llama.cpp's CPU graph (F32 KV cache, no flash attention), through
//! `compute.ops`: scores q·k in `ggml_vec_dot_f32`'s order times kq_scale, ggml's softmax, and
//! the value sum in the order llama.cpp uses for this batch size ([`ValueOrder::for_batch`]:
//! tinyBLAS for 2+ tokens, `ggml_vec_dot_f32` for one). Masked cells (outside a local layer's
//! window) take part as -inf scores and zero weights, exactly as in llama.cpp's masked row.

use std::sync::atomic::{AtomicUsize, Ordering};

use fovea_kernels::ops::ValueOrder;

use crate::kv_cache::KvCache;
use crate::matmul::Compute;
use crate::threadpool::SharedMut;

/// The shape of one layer's attention.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub n_head: usize,
    /// Query heads per KV head.
    pub group: usize,
    pub head_dim: usize,
    pub head_dim_v: usize,
    /// Scores are multiplied by this before the softmax.
    pub kq_scale: f32,
}

/// Causal self-attention of the batch's n queries (tokens at positions pos0..pos0 + n) over the
/// cache, each query over the cells [`KvCache::row`] gives for its position.
/// q (n, n_head * hd) -> out (n, n_head * hdv). Heads of one GQA group share a KV head.
pub fn attention(
    compute: &Compute,
    cache: &KvCache,
    layer: usize,
    shape: AttnShape,
    pos0: usize,
    q: &[f32],
    out: &mut [f32],
) {
    let AttnShape { n_head, group, head_dim: hd, head_dim_v: hdv, kq_scale } = shape;
    let n = q.len() / (n_head * hd);
    let ops = compute.ops;
    let order = ValueOrder::for_batch(n);
    let next = AtomicUsize::new(0);
    let out = SharedMut::new(out);
    let n_items = n * n_head;
    let max_row = cache.max_row();
    compute.pool.run(&|_| {
        let mut scores = vec![0.0f32; max_row]; // (row cells,) of the current item
        loop {
            let item = next.fetch_add(1, Ordering::Relaxed);
            if item >= n_items {
                break;
            }
            let (t, h) = (item / n_head, item % n_head);
            let row = cache.row(layer, pos0 + t);
            let (keys, values) = cache.head(layer, h / group, row.cells.clone());
            let qh = &q[(t * n_head + h) * hd..(t * n_head + h + 1) * hd];
            let s = &mut scores[..row.cells.len()];
            s.fill(f32::NEG_INFINITY);
            for vis in row.visible.iter().filter(|r| !r.is_empty()) {
                ops.attn_scores(qh, &keys[vis.start * hd..vis.end * hd], kq_scale, &mut s[vis.clone()]);
            }
            ops.softmax(s);
            // SAFETY: item (t, h) owns its head's output slice alone.
            let o = unsafe { out.range((t * n_head + h) * hdv, hdv) };
            ops.attn_values(s, values, order, o);
        }
    });
}
