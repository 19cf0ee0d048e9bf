//! The transformer forward pass over a batch of tokens, read top to bottom like the paper.
//!
//! The whole batch goes through each layer together, so each weight matrix is streamed once per
//! batch rather than once per token.

use fovea_kernels::ops::{axpy, rms_norm};

use crate::attention::attention;
use crate::kv_cache::KvCache;
use crate::matmul::Compute;
use crate::model::Model;

impl Model {
    /// Runs `tokens` at positions `pos0..pos0 + n` through the model, storing their keys and values
    /// in `cache`, and returns the logits (n - logits_from, n_vocab) of rows `logits_from..n`.
    ///
    /// The caller has checked that the positions fit in the cache and the ids in the vocabulary.
    pub fn forward(
        &self,
        compute: &Compute,
        cache: &mut KvCache,
        tokens: &[u32],
        pos0: usize,
        logits_from: usize,
    ) -> Vec<f32> {
        let c = &self.config;
        let file = self.file_bytes();
        let n = tokens.len();
        let (d, hd, hdv) = (c.n_embd, c.head_dim, c.head_dim_v);
        let (q_dim, kv_dim, v_dim) = (c.n_head * hd, c.n_head_kv * hd, c.n_head_kv * hdv);
        let att_dim = c.n_head * hdv;

        // x (n, d): the residual stream, starting from the token embeddings.
        let mut x = vec![0.0f32; n * d];
        for (row, &tok) in x.chunks_exact_mut(d).zip(tokens) {
            self.tok_embd.row_f32(file, tok as usize, row);
        }
        let mut xn = vec![0.0f32; n * d]; // (n, d) normalized input of a sub-block
        let mut q = vec![0.0f32; n * q_dim]; // (n, n_head * hd)
        let mut k = vec![0.0f32; n * kv_dim]; // (n, n_head_kv * hd)
        let mut v = vec![0.0f32; n * v_dim]; // (n, n_head_kv * hdv)
        let mut att = vec![0.0f32; n * att_dim]; // (n, n_head * hdv)
        let mut proj = vec![0.0f32; n * d]; // (n, d) output of a sub-block
        let mut gate = vec![0.0f32; n * c.n_ff]; // (n, n_ff)
        let mut up = vec![0.0f32; n * c.n_ff]; // (n, n_ff)

        // cos/sin (n, n_rot/2) of every position in the batch, shared by all layers and heads.
        let half = c.n_rot / 2;
        let mut cos = vec![0.0f32; n * half];
        let mut sin = vec![0.0f32; n * half];
        for t in 0..n {
            self.rope.angles(
                pos0 + t,
                &mut cos[t * half..(t + 1) * half],
                &mut sin[t * half..(t + 1) * half],
            );
        }

        for (l, layer) in self.layers.iter().enumerate() {
            // --- attention ---
            for (xr, xnr) in x.chunks_exact(d).zip(xn.chunks_exact_mut(d)) {
                rms_norm(xr, &layer.attn_norm, c.rms_eps, xnr);
            }
            compute.matmul(file, &layer.wq, &xn, n, &mut q);
            compute.matmul(file, &layer.wk, &xn, n, &mut k);
            compute.matmul(file, &layer.wv, &xn, n, &mut v);
            for t in 0..n {
                let (ct, st) = (&cos[t * half..(t + 1) * half], &sin[t * half..(t + 1) * half]);
                for head in q[t * q_dim..(t + 1) * q_dim].chunks_exact_mut(hd) {
                    self.rope.rotate(head, ct, st);
                }
                for head in k[t * kv_dim..(t + 1) * kv_dim].chunks_exact_mut(hd) {
                    self.rope.rotate(head, ct, st);
                }
                cache.store(l, pos0 + t, &k[t * kv_dim..(t + 1) * kv_dim], &v[t * v_dim..(t + 1) * v_dim]);
            }
            attention(compute, cache, l, c.n_head, c.gqa_group(), hd, hdv, pos0, &q, n, &mut att);
            compute.matmul(file, &layer.wo, &att, n, &mut proj);
            axpy(1.0, &proj, &mut x);

            // --- feed-forward (SwiGLU) ---
            for (xr, xnr) in x.chunks_exact(d).zip(xn.chunks_exact_mut(d)) {
                rms_norm(xr, &layer.ffn_norm, c.rms_eps, xnr);
            }
            compute.matmul(file, &layer.w_gate, &xn, n, &mut gate);
            compute.matmul(file, &layer.w_up, &xn, n, &mut up);
            for (g, u) in gate.chunks_exact_mut(c.n_ff).zip(up.chunks_exact(c.n_ff)) {
                compute.ops.swiglu(g, u); // per row: ggml's last partial group of 16 is per row
            }
            compute.matmul(file, &layer.w_down, &gate, n, &mut proj);
            axpy(1.0, &proj, &mut x);
        }

        // --- output: only the rows whose logits were asked for ---
        let n_out = n.saturating_sub(logits_from);
        let mut last = vec![0.0f32; n_out * d];
        for (i, row) in last.chunks_exact_mut(d).enumerate() {
            let t = logits_from + i;
            rms_norm(&x[t * d..(t + 1) * d], &self.output_norm, c.rms_eps, row);
        }
        let out = self.output_matrix();
        let mut logits = vec![0.0f32; n_out * out.rows];
        if n_out > 0 {
            compute.matmul(file, out, &last, n_out, &mut logits);
        }
        logits
    }
}
