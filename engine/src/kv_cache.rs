//! The KV cache: every layer's keys and values in f32, in cells indexed by position.
//!
//! A global layer keeps one cell per context position. A local (sliding-window) layer only ever
//! looks at its last `n_swa` positions, so it keeps a ring of `n_swa + n_ubatch` cells: position p
//! lives in cell p mod n_cells, and a micro-batch of up to `n_ubatch` tokens can be stored before
//! its queries run without overwriting a key any of them still sees (llama.cpp sizes its SWA cache
//! the same way, `n_swa + n_ubatch`, see `llama_kv_cache_iswa`). Until the ring wraps, cell = position
//! on every layer, which keeps the attention sums in llama.cpp's order.

use std::ops::Range;

use crate::config::ModelConfig;
use crate::error::Result;
use crate::kv::{KvPlan, SparseKv};

/// Alignment of a local row's first cell: the attention kernels accumulate in lanes indexed by
/// cell mod 16 (softmax, tinyBLAS) or mod 64 (`ggml_vec_dot_f32`), so a row that starts on a
/// multiple of 64 sums in the same order as llama.cpp's row over all cells.
const ROW_ALIGN: usize = 64;

/// One layer's cells.
struct LayerKv {
    n_cells: usize,
    /// Attention window of the layer (`None`: global).
    window: Option<usize>,
    /// k: (n_head_kv, n_cells, head_dim)
    k: Vec<f32>,
    /// v: (n_head_kv, n_cells, head_dim_v)
    v: Vec<f32>,
}

/// The cells one query reads, in cell order: `cells` is the row passed to the attention kernels
/// (keys and values of those cells), `visible` the sub-ranges of it (relative to `cells.start`)
/// whose positions the query attends to; every other cell of the row is masked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellRow {
    pub cells: Range<usize>,
    pub visible: [Range<usize>; 2],
}

/// Keys and values per layer, laid out (kv_head, cell, dim) so that one head's keys over the
/// context are contiguous for the attention loop.
pub struct KvCache {
    n_head_kv: usize,
    head_dim: usize,
    head_dim_v: usize,
    n_ctx: usize,
    layers: Vec<LayerKv>,
    /// One past the highest position stored since the last reset (decides how far back the
    /// sequence can be truncated without losing a local layer's window).
    written_end: usize,
    /// The paged cache of the non-full modes (`--kv window|dilated|fovea`); the cells above are
    /// then empty.
    sparse: Option<Box<SparseKv>>,
}

impl KvCache {
    /// Cells of each layer for a context of `n_ctx` positions evaluated in micro-batches of at
    /// most `n_ubatch` tokens.
    pub fn layer_cells(c: &ModelConfig, n_ctx: usize, n_ubatch: usize) -> Vec<usize> {
        (0..c.n_layer)
            .map(|l| match c.window(l) {
                Some(w) => w.saturating_add(n_ubatch).min(n_ctx),
                None => n_ctx,
            })
            .collect()
    }

    /// Floats the cache needs (None on overflow), to check the allocation before making it.
    pub fn floats_needed(c: &ModelConfig, n_ctx: usize, n_ubatch: usize) -> Option<usize> {
        let per_cell = c.n_head_kv.checked_mul(c.head_dim.checked_add(c.head_dim_v)?)?;
        Self::layer_cells(c, n_ctx, n_ubatch)
            .into_iter()
            .try_fold(0usize, |acc, cells| acc.checked_add(cells.checked_mul(per_cell)?))
    }

    pub fn new(c: &ModelConfig, n_ctx: usize, n_ubatch: usize) -> KvCache {
        let layers = Self::layer_cells(c, n_ctx, n_ubatch)
            .into_iter()
            .enumerate()
            .map(|(l, n_cells)| LayerKv {
                n_cells,
                window: c.window(l),
                k: vec![0.0; c.n_head_kv * n_cells * c.head_dim],
                v: vec![0.0; c.n_head_kv * n_cells * c.head_dim_v],
            })
            .collect();
        KvCache {
            n_head_kv: c.n_head_kv,
            head_dim: c.head_dim,
            head_dim_v: c.head_dim_v,
            n_ctx,
            layers,
            written_end: 0,
            sparse: None,
        }
    }

    /// A cache of a non-full mode: no dense cells; every position goes to the paged store, so
    /// `n_ctx` bounds positions only, not memory.
    pub fn new_sparse(c: &ModelConfig, n_ctx: usize, n_ubatch: usize, plan: KvPlan) -> Result<KvCache> {
        let sparse = SparseKv::new(c, plan, n_ubatch)?;
        Ok(KvCache {
            n_head_kv: c.n_head_kv,
            head_dim: c.head_dim,
            head_dim_v: c.head_dim_v,
            n_ctx,
            layers: Vec::new(),
            written_end: 0,
            sparse: Some(Box::new(sparse)),
        })
    }

    /// The paged cache, for the non-full modes.
    pub fn sparse(&self) -> Option<&SparseKv> {
        self.sparse.as_deref()
    }

    pub fn sparse_mut(&mut self) -> Option<&mut SparseKv> {
        self.sparse.as_deref_mut()
    }

    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// Bytes held by keys and values in RAM (the paged cache: resident pages and summaries).
    pub fn bytes(&self) -> usize {
        if let Some(s) = &self.sparse {
            return s.resident_bytes();
        }
        let floats: usize = self.layers.iter().map(|l| l.k.len() + l.v.len()).sum();
        floats * std::mem::size_of::<f32>()
    }

    /// Bytes a cache with one cell per position on every layer would hold (for comparison).
    pub fn full_bytes(&self) -> usize {
        if let Some(s) = &self.sparse {
            return s.local.len() * self.written_end * self.n_head_kv * (self.head_dim + self.head_dim_v) * 4;
        }
        self.layers.len()
            * self.n_head_kv
            * self.n_ctx
            * (self.head_dim + self.head_dim_v)
            * std::mem::size_of::<f32>()
    }

    /// Forgets every position (the buffers are kept).
    pub fn reset(&mut self) {
        self.written_end = 0;
        if let Some(s) = &mut self.sparse {
            s.reset();
        }
    }

    /// Whether generation can resume at position `n` with the cells as they are: every local
    /// layer must still hold positions n - window + 1 .. n - 1 (a ring may have overwritten them
    /// with later positions).
    pub fn can_resume_at(&self, n: usize) -> bool {
        if self.sparse.is_some() {
            // Page summaries cannot be un-merged: the paged cache only resumes where it stopped.
            return n == 0 || n == self.written_end;
        }
        n == 0
            || self.layers.iter().all(|l| match l.window {
                None => true,
                Some(w) => (n + 1).saturating_sub(w) + l.n_cells >= self.written_end,
            })
    }

    /// Stores the keys k (n_head_kv * head_dim,) and values v (n_head_kv * head_dim_v,) of `pos`.
    pub fn store(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        if let Some(s) = &mut self.sparse {
            s.store(layer, pos, k, v);
            self.written_end = self.written_end.max(pos + 1);
            return;
        }
        let (hd, hdv) = (self.head_dim, self.head_dim_v);
        let l = &mut self.layers[layer];
        let (n_cells, cell) = (l.n_cells, pos % l.n_cells);
        for h in 0..self.n_head_kv {
            let kd = (h * n_cells + cell) * hd;
            l.k[kd..kd + hd].copy_from_slice(&k[h * hd..(h + 1) * hd]);
            let vd = (h * n_cells + cell) * hdv;
            l.v[vd..vd + hdv].copy_from_slice(&v[h * hdv..(h + 1) * hdv]);
        }
        self.written_end = self.written_end.max(pos + 1);
    }

    /// The cells a query at position `pos` reads on `layer`: positions max(0, pos - window + 1)
    /// ..= pos (everything up to `pos` on a global layer). Those positions must have been stored.
    pub fn row(&self, layer: usize, pos: usize) -> CellRow {
        let l = &self.layers[layer];
        let first = l.window.map_or(0, |w| (pos + 1).saturating_sub(w));
        let n = l.n_cells;
        let (lo, hi) = (first % n, pos % n);
        if first / n == pos / n {
            // Contiguous: start the row on an aligned cell, masking the cells before `lo`.
            let start = lo / ROW_ALIGN * ROW_ALIGN;
            CellRow { cells: start..hi + 1, visible: [lo - start..hi + 1 - start, 0..0] }
        } else {
            // The window wraps around the ring: read every cell in cell order.
            CellRow { cells: 0..n, visible: [0..hi + 1, lo..n] }
        }
    }

    /// Keys (cells, head_dim) and values (cells, head_dim_v) of a range of cells of one KV head.
    pub fn head(&self, layer: usize, kv_head: usize, cells: Range<usize>) -> (&[f32], &[f32]) {
        let l = &self.layers[layer];
        let k0 = kv_head * l.n_cells * self.head_dim;
        let v0 = kv_head * l.n_cells * self.head_dim_v;
        (
            &l.k[k0 + cells.start * self.head_dim..k0 + cells.end * self.head_dim],
            &l.v[v0 + cells.start * self.head_dim_v..v0 + cells.end * self.head_dim_v],
        )
    }

    /// The longest row any query can read (scratch size for the scores).
    pub fn max_row(&self) -> usize {
        self.layers.iter().map(|l| l.n_cells).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use fovea_kernels::ops::RopeLayout;

    use super::*;
    use crate::config::{Arch, FfnActivation, SlidingWindow};

    /// Two layers, the first local with a window of `n_swa`.
    fn config(n_swa: usize) -> ModelConfig {
        ModelConfig {
            arch: Arch::Gemma3,
            arch_name: "gemma3".into(),
            name: None,
            n_ctx_train: 4096,
            n_embd: 8,
            n_layer: 2,
            n_ff: 16,
            n_head: 2,
            n_head_kv: 1,
            head_dim: 4,
            head_dim_v: 4,
            rms_eps: 1e-6,
            rope_base: 1e6,
            rope_freq_scale: 1.0,
            n_rot: 4,
            rope_layout: RopeLayout::NeoX,
            n_vocab: 10,
            embd_scale: None,
            qk_norm: true,
            post_norms: true,
            ffn_act: FfnActivation::GeluTanh,
            q_scale: 0.5,
            kq_scale: 1.0,
            swa: Some(SlidingWindow {
                n_swa,
                is_local: vec![true, false],
                rope_base: 1e4,
                rope_freq_scale: 1.0,
            }),
            final_logit_softcap: None,
        }
    }

    fn fill(cache: &mut KvCache, positions: Range<usize>) {
        for p in positions {
            let kv = [p as f32; 4];
            cache.store(0, p, &kv, &kv);
            cache.store(1, p, &kv, &kv);
        }
    }

    /// Positions a row attends to, read back from the stored keys.
    fn seen(cache: &KvCache, layer: usize, pos: usize) -> Vec<usize> {
        let row = cache.row(layer, pos);
        let (keys, _) = cache.head(layer, 0, row.cells.clone());
        row.visible.iter().flat_map(|r| r.clone()).map(|c| keys[c * 4] as usize).collect()
    }

    #[test]
    fn local_layers_keep_a_ring_of_window_plus_ubatch_cells() {
        let c = config(100);
        let cache = KvCache::new(&c, 1000, 28);
        assert_eq!(KvCache::layer_cells(&c, 1000, 28), [128, 1000]);
        assert_eq!(cache.bytes(), (128 + 1000) * 8 * 4);
        assert_eq!(cache.full_bytes(), 2 * 1000 * 8 * 4);
        assert_eq!(KvCache::floats_needed(&c, 1000, 28), Some((128 + 1000) * 8));
        // A small context is never exceeded by the ring.
        assert_eq!(KvCache::layer_cells(&c, 50, 512), [50, 50]);
    }

    #[test]
    fn rows_hold_exactly_the_window_across_ring_wraps() {
        let c = config(100);
        let mut cache = KvCache::new(&c, 1000, 28);
        let mut pos = 0;
        // Micro-batches of up to 28 tokens: store the batch, then check every query of it.
        for batch in [28, 28, 5, 28, 1, 28, 28, 17, 28, 28, 28, 3, 28, 28, 28, 28] {
            fill(&mut cache, pos..pos + batch);
            for p in pos..pos + batch {
                let want: Vec<usize> = ((p + 1).saturating_sub(100)..=p).collect();
                let mut got = seen(&cache, 0, p);
                got.sort_unstable();
                assert_eq!(got, want, "local layer, position {p}");
                assert_eq!(seen(&cache, 1, p), (0..=p).collect::<Vec<_>>(), "global layer, position {p}");
            }
            pos += batch;
        }
        assert!(pos > 2 * 128, "the ring wrapped at least twice");
    }

    #[test]
    fn unwrapped_rows_start_on_an_aligned_cell_with_the_same_cells_as_positions() {
        let c = config(100);
        let mut cache = KvCache::new(&c, 1000, 512);
        fill(&mut cache, 0..300);
        let row = cache.row(0, 250);
        assert_eq!(row.cells, 128..251);
        assert_eq!(row.visible, [23..123, 0..0]);
        assert_eq!(cache.row(1, 250).cells, 0..251);
    }

    #[test]
    fn truncation_is_allowed_while_the_window_is_intact() {
        let c = config(100);
        let mut cache = KvCache::new(&c, 1000, 28);
        fill(&mut cache, 0..400);
        // Positions n-99..n-1 must not have been overwritten by positions up to 399 (ring of 128).
        assert!(cache.can_resume_at(399));
        assert!(cache.can_resume_at(371));
        assert!(!cache.can_resume_at(370));
        assert!(cache.can_resume_at(0));
        cache.reset();
        fill(&mut cache, 0..50);
        assert!(cache.can_resume_at(10));
    }
}
