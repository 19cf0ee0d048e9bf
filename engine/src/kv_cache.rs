//! The full (exact) KV cache: every position's keys and values in f32.

/// Keys and values per layer, laid out (kv_head, position, dim) so that one head's keys over the
/// context are contiguous for the attention loop.
pub struct KvCache {
    n_head_kv: usize,
    head_dim: usize,
    head_dim_v: usize,
    n_ctx: usize,
    /// k[layer]: (n_head_kv, n_ctx, head_dim)
    k: Vec<Vec<f32>>,
    /// v[layer]: (n_head_kv, n_ctx, head_dim_v)
    v: Vec<Vec<f32>>,
}

impl KvCache {
    pub fn new(
        n_layer: usize,
        n_head_kv: usize,
        head_dim: usize,
        head_dim_v: usize,
        n_ctx: usize,
    ) -> KvCache {
        KvCache {
            n_head_kv,
            head_dim,
            head_dim_v,
            n_ctx,
            k: (0..n_layer).map(|_| vec![0.0; n_head_kv * n_ctx * head_dim]).collect(),
            v: (0..n_layer).map(|_| vec![0.0; n_head_kv * n_ctx * head_dim_v]).collect(),
        }
    }

    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Bytes held by keys and values.
    pub fn bytes(&self) -> usize {
        let per_layer = self.n_head_kv * self.n_ctx * (self.head_dim + self.head_dim_v);
        self.k.len() * per_layer * std::mem::size_of::<f32>()
    }

    /// Stores the keys k (n_head_kv * head_dim,) and values v (n_head_kv * head_dim_v,) of `pos`.
    pub fn store(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let (hd, hdv, n_ctx) = (self.head_dim, self.head_dim_v, self.n_ctx);
        for h in 0..self.n_head_kv {
            let kd = (h * n_ctx + pos) * hd;
            self.k[layer][kd..kd + hd].copy_from_slice(&k[h * hd..(h + 1) * hd]);
            let vd = (h * n_ctx + pos) * hdv;
            self.v[layer][vd..vd + hdv].copy_from_slice(&v[h * hdv..(h + 1) * hdv]);
        }
    }

    /// Keys (n, head_dim) and values (n, head_dim_v) of positions 0..n for one KV head.
    pub fn head(&self, layer: usize, kv_head: usize, n: usize) -> (&[f32], &[f32]) {
        let k0 = kv_head * self.n_ctx * self.head_dim;
        let v0 = kv_head * self.n_ctx * self.head_dim_v;
        (&self.k[layer][k0..k0 + n * self.head_dim], &self.v[layer][v0..v0 + n * self.head_dim_v])
    }
}
