//! Causal self-attention over the KV cache, parallel over (token, head) pairs.

use std::sync::atomic::{AtomicUsize, Ordering};

use fovea_kernels::ops::{axpy, dot_f32, softmax_in_place};

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
    let scale = 1.0 / (hd as f32).sqrt();
    let next = AtomicUsize::new(0);
    let out = SharedMut::new(out);
    let n_items = n * n_head;
    compute.pool.run(&|_| {
        let mut scores = vec![0.0f32; pos0 + n];
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
            for (j, sj) in s.iter_mut().enumerate() {
                *sj = dot_f32(qh, &keys[j * hd..(j + 1) * hd]) * scale;
            }
            softmax_in_place(s);
            // SAFETY: item (t, h) owns its head's output slice alone.
            let o = unsafe { out.range((t * n_head + h) * hdv, hdv) };
            o.fill(0.0);
            for (j, &w) in s.iter().enumerate() {
                axpy(w, &values[j * hdv..(j + 1) * hdv], o);
            }
        }
    });
}
