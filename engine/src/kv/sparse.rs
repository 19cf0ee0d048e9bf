//! The cache of the non-full modes: the paged exact store, the page index (fovea), the plan,
//! and the selection counters. Memory is bounded by `--kv-ram` (pages) plus the summaries,
//! never by a context size, so a stream may run past the trained context.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::mode::{KvMode, KvPlan};
use super::paged_store::{PageShape, PagedStore};
use super::summaries::HeadIndex;
use crate::config::ModelConfig;
use crate::error::{EngineError, Result};

/// Counters of the page selection, summed over all selections since the last reset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SelectStats {
    pub selections: usize,
    /// Tree nodes scored by the best-first descent.
    pub nodes_scored: usize,
    /// Pages that were eligible (what a flat scan would have scored).
    pub pages_eligible: usize,
}

#[derive(Default)]
pub(crate) struct AtomicStats {
    selections: AtomicUsize,
    nodes_scored: AtomicUsize,
    pages_eligible: AtomicUsize,
}

impl AtomicStats {
    pub(crate) fn add(&self, nodes: usize, pages: usize) {
        self.selections.fetch_add(1, Ordering::Relaxed);
        self.nodes_scored.fetch_add(nodes, Ordering::Relaxed);
        self.pages_eligible.fetch_add(pages, Ordering::Relaxed);
    }
}

pub struct SparseKv {
    pub(crate) plan: KvPlan,
    pub(crate) n_ctx_train: usize,
    /// Attention window of each layer (`Some`: a sliding-window layer, attended exactly).
    pub(crate) local: Vec<Option<usize>>,
    n_ubatch: usize,
    pub(crate) store: PagedStore,
    /// index[layer][kv_head]: page summaries and tree (fovea, global layers only).
    pub(crate) index: Vec<Vec<HeadIndex>>,
    /// The first error of a `store` (spill I/O), reported by the session after the batch.
    error: Option<EngineError>,
    pub(crate) stats: AtomicStats,
    key: Vec<f32>,
}

impl SparseKv {
    pub fn new(c: &ModelConfig, plan: KvPlan, n_ubatch: usize) -> Result<SparseKv> {
        if plan.mode == KvMode::Full {
            return Err(EngineError::InvalidSetting("the paged cache is for the non-full modes".into()));
        }
        let shape = PageShape {
            tokens: plan.page,
            n_kv: c.n_head_kv,
            head_dim: c.head_dim,
            head_dim_v: c.head_dim_v,
            ty: plan.kv_type,
        };
        let store = PagedStore::new(shape, c.n_layer, plan.ram_bytes)?;
        let local: Vec<Option<usize>> = (0..c.n_layer).map(|l| c.window(l)).collect();
        let index = local
            .iter()
            .map(|w| match (plan.mode, w) {
                (KvMode::Fovea, None) => (0..c.n_head_kv).map(|_| HeadIndex::new(c.head_dim)).collect(),
                _ => Vec::new(),
            })
            .collect();
        Ok(SparseKv {
            plan,
            n_ctx_train: c.n_ctx_train,
            local,
            n_ubatch,
            store,
            index,
            error: None,
            stats: AtomicStats::default(),
            key: vec![0.0; c.head_dim],
        })
    }

    pub fn plan(&self) -> &KvPlan {
        &self.plan
    }

    /// Stores position `pos` of `layer` (positions of a layer arrive in order): k (n_kv * hd,),
    /// v (n_kv * hdv,). An I/O error is kept for [`SparseKv::take_error`].
    pub fn store(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        if self.error.is_some() {
            return;
        }
        let completed = match self.store.store(layer, pos, k, v) {
            Ok(c) => c,
            Err(e) => {
                self.error = Some(e);
                return;
            }
        };
        // Summaries from the key as stored (after rounding), so the bound holds for what is read.
        for (h, idx) in self.index[layer].iter_mut().enumerate() {
            self.store.read_key(layer, h, pos, &mut self.key);
            idx.add_key(&self.key);
            if completed {
                idx.finish_page();
            }
        }
        // A sliding-window layer never reads further back than window + one micro-batch.
        if let Some(w) = self.local[layer] {
            if completed {
                self.store.drop_before(layer, (pos + 1).saturating_sub(w + self.n_ubatch));
            }
        }
    }

    pub fn take_error(&mut self) -> Option<EngineError> {
        self.error.take()
    }

    pub fn reset(&mut self) {
        self.store.clear();
        self.index.iter_mut().flatten().for_each(HeadIndex::clear);
        self.error = None;
    }

    /// Bytes in RAM: resident pages plus every page summary and tree node.
    pub fn resident_bytes(&self) -> usize {
        self.store.resident_bytes() + self.summary_bytes()
    }

    /// Bytes of the page summaries and tree (always resident).
    pub fn summary_bytes(&self) -> usize {
        self.index.iter().flatten().map(HeadIndex::bytes).sum()
    }

    /// Bytes of pages moved to the spill file.
    pub fn spilled_bytes(&self) -> usize {
        self.store.spilled_bytes()
    }

    pub fn stats(&self) -> SelectStats {
        SelectStats {
            selections: self.stats.selections.load(Ordering::Relaxed),
            nodes_scored: self.stats.nodes_scored.load(Ordering::Relaxed),
            pages_eligible: self.stats.pages_eligible.load(Ordering::Relaxed),
        }
    }
}
