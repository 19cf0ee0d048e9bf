//! The cache of the non-full modes: the paged exact store, the page index (fovea), the plan,
//! and the selection counters. Memory is bounded by `--kv-ram` (pages) plus the summaries,
//! never by a context size, so a stream may run past the trained context.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use fovea_kernels::ops::OpKernels;
use half::f16;

use super::gather::Gathered;
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

/// The last selection of one layer and KV head, kept for the decoding steps after it.
#[derive(Default)]
pub(crate) struct Memo {
    /// Position of the last query of the chunk that chose it (None: nothing kept).
    made_at: Option<usize>,
    /// Whether its keys were re-rotated (renumbered positions).
    renumbered: bool,
    /// The chosen memory entries, gathered, keys rotated as they were attended.
    pub(crate) g: Gathered,
    /// The same keys (m, hd) and values (m, hdv) in f16, kept when the pages hold f16: decoding
    /// reads these, half the bytes of `g` and (but for re-rotated keys) the very values stored.
    pub(crate) k16: Vec<f16>,
    pub(crate) v16: Vec<f16>,
}

impl Memo {
    /// Whether a single query at `p` may attend to this selection: it was made at most
    /// `chunk - 1` positions before, under the same position numbering.
    pub(crate) fn valid_for(&self, p: usize, chunk: usize, renumbered: bool) -> bool {
        self.made_at.is_some_and(|m| reusable((m, self.renumbered), p, chunk, renumbered))
    }

    /// Whether it was chosen by the chunk whose last query is at `last` (by another query head).
    pub(crate) fn made_for(&self, last: usize, renumbered: bool) -> bool {
        self.made_at == Some(last) && self.renumbered == renumbered
    }

    /// Empties the memo for a selection made by the chunk whose last query is at `made_at`
    /// (buffers kept, so re-selecting allocates nothing); the caller fills `g` and, for pages
    /// of f16, `k16`/`v16`, under the write lock.
    pub(crate) fn refill(&mut self, made_at: usize, renumbered: bool) -> &mut Memo {
        (self.made_at, self.renumbered) = (Some(made_at), renumbered);
        self.g.clear();
        self.k16.clear();
        self.v16.clear();
        self
    }

    /// Adds the f16 copy of the f32 entries in `g`.
    pub(crate) fn narrow(&mut self, ops: &OpKernels) {
        self.k16.resize(self.g.keys.len(), f16::ZERO);
        self.v16.resize(self.g.values.len(), f16::ZERO);
        ops.f32_to_f16(&self.g.keys, &mut self.k16);
        ops.f32_to_f16(&self.g.values, &mut self.v16);
    }

    /// Whether the entries are kept in f32 too: a selection a decoded token made on pages of
    /// f16 keeps only the f16 rows (only decoding reads it; a prompt chunk chooses its own).
    pub(crate) fn has_f32(&self) -> bool {
        self.g.pos.is_empty() || !self.g.keys.is_empty()
    }

    /// The kept entries in f16, if the pages hold f16: keys (m, hd), values (m, hdv).
    pub(crate) fn half(&self) -> Option<(&[f16], &[f16])> {
        (!self.k16.is_empty() || self.g.keys.is_empty()).then_some((&self.k16[..], &self.v16[..]))
    }

    fn bytes(&self) -> usize {
        4 * (self.g.keys.capacity() + self.g.values.capacity())
            + 2 * (self.k16.capacity() + self.v16.capacity())
            + 8 * self.g.pos.capacity()
    }
}

/// Whether a single query at `p` may attend to a selection made by the chunk whose last query
/// was at `made.0`, with re-numbering `made.1`: at most `chunk - 1` positions later, under the
/// same numbering. The CPU's memo and the Vulkan window mode's copy of it both follow this.
pub(crate) fn reusable(made: (usize, bool), p: usize, chunk: usize, renumbered: bool) -> bool {
    p > made.0 && p - made.0 < chunk && made.1 == renumbered
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
    /// memos[layer * n_kv + h]: the last selection of each layer and KV head.
    memos: Vec<RwLock<Memo>>,
    n_kv: usize,
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
            memos: (0..c.n_layer * c.n_head_kv).map(|_| RwLock::default()).collect(),
            n_kv: c.n_head_kv,
            key: vec![0.0; c.head_dim],
        })
    }

    pub fn plan(&self) -> &KvPlan {
        &self.plan
    }

    /// Stores position `pos` of `layer` (positions of a layer arrive in order): k (n_kv * hd,),
    /// v (n_kv * hdv,). An I/O error is kept for [`SparseKv::end_batch`].
    pub fn store(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        if self.error.is_some() {
            return;
        }
        // A position written again (after a truncate) makes a selection holding it stale.
        for m in &mut self.memos[layer * self.n_kv..(layer + 1) * self.n_kv] {
            let m = m.get_mut().unwrap_or_else(|e| e.into_inner());
            if m.made_at.is_some_and(|at| pos <= at) {
                m.made_at = None;
            }
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
        // The summaries grow with the pages and count against --kv-ram like them.
        if completed && self.plan.ram_bytes.is_some() {
            if let Err(e) = self.store.set_reserved(self.summary_bytes()) {
                self.error = Some(e);
                return;
            }
        }
        // A sliding-window layer never reads further back than window + one micro-batch.
        if let Some(w) = self.local[layer] {
            if completed {
                self.store.drop_before(layer, (pos + 1).saturating_sub(w + self.n_ubatch));
            }
        }
    }

    /// Ends a batch: returns the first `store` error since the last batch, and unmaps the spilled
    /// pages this batch read, so RSS stays near `--kv-ram` however much of the spill was read.
    pub fn end_batch(&mut self) -> Option<EngineError> {
        self.store.release_spilled_reads();
        self.error.take()
    }

    pub fn reset(&mut self) {
        self.store.clear();
        self.index.iter_mut().flatten().for_each(HeadIndex::clear);
        for m in &mut self.memos {
            m.get_mut().unwrap_or_else(|e| e.into_inner()).made_at = None;
        }
        self.error = None;
    }

    /// Bytes in RAM: resident pages plus every page summary and tree node and the kept
    /// selections; under `--kv-ram` while the summaries leave room for a page per layer.
    pub fn resident_bytes(&self) -> usize {
        self.store.resident_bytes() + self.summary_bytes()
    }

    /// Bytes of the page summaries and tree, and of the selections kept for decoding (always
    /// resident; the kept selections are bounded by the budget, not by the context).
    pub fn summary_bytes(&self) -> usize {
        let memos: usize = self.memos.iter().map(|m| m.read().map_or(0, |m| m.bytes())).sum();
        self.index.iter().flatten().map(HeadIndex::bytes).sum::<usize>() + memos
    }

    /// The kept selection of a layer and KV head, to read.
    pub(crate) fn memo_read(&self, layer: usize, h: usize) -> RwLockReadGuard<'_, Memo> {
        let memo = &self.memos[layer * self.n_kv + h];
        spin_then_block(|| memo.try_read(), || memo.read())
    }

    /// The kept selection of a layer and KV head, to replace.
    pub(crate) fn memo_write(&self, layer: usize, h: usize) -> RwLockWriteGuard<'_, Memo> {
        let memo = &self.memos[layer * self.n_kv + h];
        spin_then_block(|| memo.try_write(), || memo.write())
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

/// Spins before blocking on a memo's lock. The one who holds it is another pool thread making a
/// selection (tens to a few hundred microseconds), and the waiter has nothing else to do: parking
/// on the futex and being woken cost more than the wait (in a decoding profile at 12K depth, the
/// scheduler's samples were 4% of a token), so the waiter spins, and blocks only after
/// SPINS_BEFORE_BLOCKING tries (a holder that was descheduled, or a pool with more threads than
/// cores).
fn spin_then_block<G>(
    try_lock: impl Fn() -> std::sync::TryLockResult<G>,
    lock: impl FnOnce() -> std::sync::LockResult<G>,
) -> G {
    for _ in 0..SPINS_BEFORE_BLOCKING {
        match try_lock() {
            Ok(g) => return g,
            Err(std::sync::TryLockError::Poisoned(e)) => return e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => std::hint::spin_loop(),
        }
    }
    lock().unwrap_or_else(|e| e.into_inner())
}

/// About a millisecond of `spin_loop` on current x86 and ARM cores.
const SPINS_BEFORE_BLOCKING: usize = 1 << 15;
