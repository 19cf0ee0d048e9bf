//! Causal self-attention over the KV cache, parallel over (token, head) pairs.
//!
//! The arithmetic follows llama.cpp's CPU graph (F32 KV cache, no flash attention), through
//! `compute.ops`: scores q·k in `ggml_vec_dot_f32`'s order times kq_scale, ggml's softmax, and
//! the value sum in the order llama.cpp uses for this batch size ([`ValueOrder::for_batch`]:
//! tinyBLAS for 2+ tokens, `ggml_vec_dot_f32` for one).

use std::sync::atomic::{AtomicUsize, Ordering};

use fovea_kernels::ops::ValueOrder;

use crate::kv_cache::KvCache;
use crate::matmul::Compute;
use crate::threadpool::SharedMut;

/// Causal self-attention of the batch's queries over the cache (positions 0..=pos of each token).
/// q (n, n_head * hd) -> out (n, n_head * hdv). Heads of one GQA group share a KV head.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    compute: &Compute,
    cache: &KvCache,
    layer: usize,
    n_head: usize,
    group: usize,
    hd: usize,
    hdv: usize,
    pos0: usize,
    q: &[f32],
    n: usize,
    out: &mut [f32],
) {
    let ops = compute.ops;
    let scale = 1.0 / (hd as f32).sqrt();
    let order = ValueOrder::for_batch(n);
    let next = AtomicUsize::new(0);
    let out = SharedMut::new(out);
    let n_items = n * n_head;
    compute.pool.run(&|_| {
        let mut scores = vec![0.0f32; pos0 + n]; // (n_kv,) of the current item
        loop {
            let item = next.fetch_add(1, Ordering::Relaxed);
            if item >= n_items {
                break;
            }
            let (t, h) = (item / n_head, item % n_head);
            let n_kv = pos0 + t + 1; // causal: this token sees itself and everything before
            let (keys, values) = cache.head(layer, h / group, n_kv);
            let qh = &q[(t * n_head + h) * hd..(t * n_head + h + 1) * hd];
            let s = &mut scores[..n_kv];
            ops.attn_scores(qh, keys, scale, s);
            ops.softmax(s);
            // SAFETY: item (t, h) owns its head's output slice alone.
            let o = unsafe { out.range((t * n_head + h) * hdv, hdv) };
            ops.attn_values(s, values, order, o);
        }
    });
}
