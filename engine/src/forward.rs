//! The transformer forward pass over a batch of tokens, read top to bottom like the paper.
//!
//! One pass serves every architecture: what differs (embedding scale, Q/K norms, post-norms, the
//! gate activation, attention scaling, local layers, logit soft-capping) is data on
//! [`ModelConfig`](crate::config::ModelConfig). The whole batch goes through each layer together,
//! so each weight matrix is streamed once per batch rather than once per token.

use fovea_kernels::ops::{axpy, rms_norm_in_place, scale_in_place, RopeTable};

use crate::attention::AttnShape;
use crate::config::FfnActivation;
use crate::kv_cache::KvCache;
use crate::matmul::Compute;
use crate::model::Model;

impl Model {
    /// Runs `tokens` at positions `pos0..pos0 + n` through the model, storing their keys and values
    /// in `cache`, and returns the logits (n - logits_from, n_vocab) of rows `logits_from..n`.
    ///
    /// The caller has checked that the positions fit in the cache, the ids in the vocabulary,
    /// and that the batch is no longer than the cache's micro-batch size.
    pub fn forward(
        &self,
        compute: &Compute,
        cache: &mut KvCache,
        tokens: &[u32],
        pos0: usize,
        logits_from: usize,
    ) -> Vec<f32> {
        let x = self.embed(tokens);
        self.forward_layers(compute, cache, 0, x, pos0, logits_from)
    }

    /// x (n, d): the (scaled) token embeddings that start the residual stream.
    pub fn embed(&self, tokens: &[u32]) -> Vec<f32> {
        let d = self.config.n_embd;
        let mut x = vec![0.0f32; tokens.len() * d];
        for (row, &tok) in x.chunks_exact_mut(d).zip(tokens) {
            self.tok_embd.row_f32(self.file_bytes(), tok as usize, row);
        }
        if let Some(s) = self.config.embd_scale {
            scale_in_place(&mut x, s);
        }
        x
    }

    /// [`Model::forward`] from layer `first_layer` on: x (n, d) is the residual stream entering
    /// that layer (the Vulkan backend hands it over after the device layers).
    pub fn forward_layers(
        &self,
        compute: &Compute,
        cache: &mut KvCache,
        first_layer: usize,
        mut x: Vec<f32>,
        pos0: usize,
        logits_from: usize,
    ) -> Vec<f32> {
        let c = &self.config;
        let file = self.file_bytes();
        let n = x.len() / c.n_embd;
        let (d, hd, hdv, eps) = (c.n_embd, c.head_dim, c.head_dim_v, c.rms_eps);
        let (q_dim, kv_dim, v_dim) = (c.n_head * hd, c.n_head_kv * hd, c.n_head_kv * hdv);
        let att_dim = c.n_head * hdv;
        let shape = AttnShape {
            n_head: c.n_head,
            group: c.gqa_group(),
            head_dim: hd,
            head_dim_v: hdv,
            kq_scale: c.kq_scale,
        };

        // x (n, d): the residual stream.
        let mut xn = vec![0.0f32; n * d]; // (n, d) normalized input of a sub-block
        let mut q = vec![0.0f32; n * q_dim]; // (n, n_head * hd)
        let mut k = vec![0.0f32; n * kv_dim]; // (n, n_head_kv * hd)
        let mut v = vec![0.0f32; n * v_dim]; // (n, n_head_kv * hdv)
        let mut att = vec![0.0f32; n * att_dim]; // (n, n_head * hdv)
        let mut proj = vec![0.0f32; n * d]; // (n, d) output of a sub-block
        let mut gate = vec![0.0f32; n * c.n_ff]; // (n, n_ff)
        let mut up = vec![0.0f32; n * c.n_ff]; // (n, n_ff)

        // cos/sin (n, n_rot/2) of every position in the batch, per RoPE table, shared by all
        // layers and heads that use the table.
        // Rows of the residual stream still computed: all n until the last layer's FFN.
        let n_out = n.saturating_sub(logits_from);
        let mut rows = n;

        let global = Angles::new(&self.rope, pos0, n);
        let local = self.rope_local.as_ref().map(|r| Angles::new(r, pos0, n));

        for (l, layer) in self.layers.iter().enumerate().skip(first_layer) {
            // --- attention ---
            rms_norm_rows(compute, &x, &layer.attn_norm, eps, &mut xn);
            // Q, K and V read the same input: one pool job for the three.
            compute.matmul_many(
                file,
                &xn,
                n,
                &mut [(&layer.wq, &mut q), (&layer.wk, &mut k), (&layer.wv, &mut v)],
            );
            let rope = self.rope_for(l);
            let angles = match (&local, c.window(l)) {
                (Some(a), Some(_)) => a,
                _ => &global,
            };
            // Per token: the optional Q/K norm, then RoPE at the token's position.
            for (x, dim, norm) in [(&mut q, q_dim, &layer.attn_q_norm), (&mut k, kv_dim, &layer.attn_k_norm)]
            {
                compute.pool.for_each_row(x, dim, ROWS_PER_GRAB, &|t, row| {
                    let (ct, st) = angles.at(t);
                    for head in row.chunks_exact_mut(hd) {
                        if let Some(w) = norm {
                            rms_norm_in_place(head, w, eps);
                        }
                        rope.rotate(head, ct, st);
                    }
                });
            }
            for t in 0..n {
                cache.store(l, pos0 + t, &k[t * kv_dim..(t + 1) * kv_dim], &v[t * v_dim..(t + 1) * v_dim]);
            }
            if c.q_scale != 1.0 {
                scale_in_place(&mut q, c.q_scale);
            }
            crate::kv::attention(compute, cache, rope, l, shape, pos0, &q, &mut att);
            compute.matmul(file, &layer.wo, &att, n, &mut proj);
            if l + 1 == c.n_layer && rows > n_out {
                // After the last attention only the rows whose logits are wanted matter: like
                // llama.cpp (`inp_out_ids`), run the rest of the layer on those rows alone. This
                // also picks the same matmul kernels, which ggml chooses by row count.
                let skip = (rows - n_out) * d;
                x.drain(..skip);
                proj.drain(..skip);
                rows = n_out;
                xn.truncate(rows * d);
                gate.truncate(rows * c.n_ff);
                up.truncate(rows * c.n_ff);
            }
            if let Some(w) = &layer.post_attn_norm {
                rms_norm_rows_in_place(compute, &mut proj, w, eps);
            }
            axpy(1.0, &proj, &mut x);

            // --- feed-forward: act(W_gate x) * (W_up x), then W_down ---
            rms_norm_rows(compute, &x, &layer.ffn_norm, eps, &mut xn);
            compute.matmul_many(file, &xn, rows, &mut [(&layer.w_gate, &mut gate), (&layer.w_up, &mut up)]);
            // Per row: ggml's last partial group of 16 (SwiGLU) is per row; GeGLU is element-wise.
            let up_row = |t: usize| &up[t * c.n_ff..(t + 1) * c.n_ff];
            match c.ffn_act {
                FfnActivation::Silu => {
                    compute.pool.for_each_row(&mut gate, c.n_ff, ROWS_PER_GRAB, &|t, g| {
                        compute.ops.swiglu(g, up_row(t))
                    })
                }
                FfnActivation::GeluTanh => {
                    compute.pool.for_each_row(&mut gate, c.n_ff, ROWS_PER_GRAB, &|t, g| {
                        compute.ops.geglu(g, up_row(t))
                    })
                }
            }
            compute.matmul(file, &layer.w_down, &gate, rows, &mut proj);
            if let Some(w) = &layer.post_ffn_norm {
                rms_norm_rows_in_place(compute, &mut proj, w, eps);
            }
            axpy(1.0, &proj, &mut x);
        }

        // --- output: x now holds only the rows whose logits were asked for ---
        let mut last = x; // (n_out, d)
        rms_norm_rows_in_place(compute, &mut last, &self.output_norm, eps);
        let out = self.output_matrix();
        let mut logits = vec![0.0f32; n_out * out.rows];
        if n_out > 0 {
            compute.matmul(file, out, &last, n_out, &mut logits);
        }
        if let Some(cap) = c.final_logit_softcap {
            // ggml: scale by 1/cap, tanh, scale by cap.
            let inv = 1.0 / cap;
            for l in &mut logits {
                *l = (*l * inv).tanh() * cap;
            }
        }
        logits
    }
}

/// cos/sin (n, n_rot/2) of positions pos0..pos0 + n under one RoPE table.
struct Angles {
    half: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl Angles {
    fn new(rope: &RopeTable, pos0: usize, n: usize) -> Angles {
        let half = rope.n_rot() / 2;
        let (mut cos, mut sin) = (vec![0.0f32; n * half], vec![0.0f32; n * half]);
        for t in 0..n {
            rope.angles(pos0 + t, &mut cos[t * half..(t + 1) * half], &mut sin[t * half..(t + 1) * half]);
        }
        Angles { half, cos, sin }
    }

    /// cos, sin (n_rot/2,) of batch row t.
    fn at(&self, t: usize) -> (&[f32], &[f32]) {
        let r = t * self.half..(t + 1) * self.half;
        (&self.cos[r.clone()], &self.sin[r])
    }
}

/// Rows per grab of the row-wise ops (norms, RoPE, gated activations) over a batch: a prompt
/// batch spreads them over the pool (serial, they were ~18% of Gemma's pp512 on the caller
/// alone); a decoded token, one row, stays on the caller.
const ROWS_PER_GRAB: usize = 4;

/// out (n, d) = rmsnorm of every row of x (n, d), times w (d,).
fn rms_norm_rows(compute: &Compute, x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    out.copy_from_slice(x);
    rms_norm_rows_in_place(compute, out, w, eps);
}

/// x (n, d) <- rmsnorm of every row, times w (d,).
fn rms_norm_rows_in_place(compute: &Compute, x: &mut [f32], w: &[f32], eps: f32) {
    compute.pool.for_each_row(x, w.len(), ROWS_PER_GRAB, &|_, row| rms_norm_in_place(row, w, eps));
}
