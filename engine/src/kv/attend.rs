//! Attention of the non-full modes: per query chunk and KV head, choose the entries
//! (`memory`), gather them (`gather`), then run the ordinary score/softmax/value kernels over
//! the gathered rows.
//!
//! A chunk of queries at positions p0..p1 shares one gathered set: the memory entries (sinks
//! plus what the mode chose, all before mem_end = p0 + 1 - W) followed by the window region
//! mem_end..p1. Query p sees all memory entries and the W positions p-W+1..=p of the window
//! region, so every query attends to the same number of entries, B = S + W + mode's share. While
//! p1 <= B nothing needs choosing: every query sees 0..=p, exactly as the full cache (and with
//! the same kernels in the same order, the same bits).

use std::ops::{Deref, Range};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLockReadGuard;

use fovea_kernels::ops::{OpKernels, RopeTable, ValueAcc, ValueOrder};

use super::gather::{gather, gather_f16, rerotate, Gathered};
use super::mode::{KvMode, KvPlan, KvType, PositionMode, Scoring};
use super::select::{dilated_positions, merge, select_pages, top_pages_exact, Kernels, Queries, Want};
use super::sparse::{Memo, SparseKv};
use super::summaries::HeadIndex;
use crate::attention::AttnShape;
use crate::matmul::Compute;
use crate::threadpool::SharedMut;

/// Attention of the batch's queries q (n, n_head * hd) at positions pos0..pos0 + n over the
/// entries the mode chooses -> out (n, n_head * hdv). Keys and values of the batch are stored.
///
/// A single-token chunk (generation) within `select_chunk` positions of the last selection of
/// its layer and KV head reuses that selection's gathered memory (`Memo`) instead of choosing
/// and gathering again: decoding then shares one selection per `select_chunk` positions, as
/// prompt processing does, and pays for selection and gathering once per chunk.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    compute: &Compute,
    kv: &SparseKv,
    rope: &RopeTable,
    layer: usize,
    shape: AttnShape,
    pos0: usize,
    q: &[f32],
    out: &mut [f32],
) {
    let AttnShape { n_head, group, head_dim: hd, head_dim_v: hdv, kq_scale } = shape;
    let n = q.len() / (n_head * hd).max(1);
    if n == 1 {
        let view = ChunkView::new(kv, layer, pos0, pos0 + 1);
        if !view.fits {
            return super::decode::attention(compute, kv, rope, layer, shape, pos0, &view, q, out);
        }
    }
    let n_kv = n_head / group.max(1);
    let chunk = kv.plan.select_chunk;
    // One decoded token that fits has only n_kv chunk items, too few to keep two threads busy:
    // it is split by query head.
    let heads = if n == 1 { 1 } else { group };
    let per_kv = group / heads.max(1);
    let n_items = n.div_ceil(chunk) * n_kv * per_kv;
    let ops = compute.ops;
    let order = ValueOrder::for_batch(n);
    let next = AtomicUsize::new(0);
    let out = SharedMut::new(out);
    compute.pool.run(&|_| {
        let mut fresh = Gathered::default(); // memory entries chosen by this chunk
        let mut win = Gathered::default(); // the window region
        let mut qs: Vec<f32> = Vec::new(); // (chunk * group, hd) the chunk's queries of this KV head
        let mut eff: Vec<usize> = Vec::new(); // (m,) positions the keys are rotated to
        let mut s: Vec<f32> = Vec::new(); // (m,) one query's scores, then weights
        let mut acc = ValueAcc::new(order, hdv);
        loop {
            let item = next.fetch_add(1, Ordering::Relaxed);
            if item >= n_items {
                break;
            }
            let (sub, rest) = (item % per_kv, item / per_kv);
            let (h, t0) = (rest % n_kv, rest / n_kv * chunk);
            let my_heads = sub * heads..(sub + 1) * heads;
            let t1 = (t0 + chunk).min(n);
            let (p0, p1) = (pos0 + t0, pos0 + t1);
            let view = ChunkView::new(kv, layer, p0, p1);
            let (fits, wstart, window) = (view.fits, view.wstart, view.window);
            qs.clear();
            for t in t0..t1 {
                qs.extend_from_slice(&q[(t * n_head + h * group) * hd..(t * n_head + (h + 1) * group) * hd]);
            }
            // Only the chunk ending the batch touches the memo, so chunks never wait on each other.
            let keeps = t1 == n;
            let memory = Selector { kv, compute, rope, layer, h, kq_scale, chosen: None };
            let reader = Reader::Prompt { single: t1 - t0 == 1 };
            let mem = memory.entries(&view, &qs, keeps, reader, &mut fresh, &mut eff);
            let n_mem = mem.pos.len();
            let segs = window_rows(kv, &ops, layer, h, wstart..p1, &mut win);

            for t in t0..t1 {
                let p = pos0 + t;
                let len = n_mem + (p + 1 - wstart);
                // Window region entries this query sees: positions max(p+1-W, wstart)..=p.
                let lo = if fits { 0 } else { (p + 1).saturating_sub(window).max(wstart) - wstart };
                let hi = p + 1 - wstart;
                s.resize(len, 0.0);
                for j in my_heads.clone() {
                    let head = h * group + j;
                    let qh = &q[(t * n_head + head) * hd..(t * n_head + head + 1) * hd];
                    s.fill(f32::NEG_INFINITY);
                    let (sm, sw) = s.split_at_mut(n_mem);
                    if n_mem > 0 {
                        ops.attn_scores(qh, &mem.keys[..n_mem * hd], kq_scale, sm);
                    }
                    for (r, k, _) in &segs {
                        let (a, b) = (r.start.max(lo), r.end.min(hi));
                        if a < b {
                            let k = &k[(a - r.start) * hd..(b - r.start) * hd];
                            ops.attn_scores(qh, k, kq_scale, &mut sw[a..b]);
                        }
                    }
                    ops.softmax(&mut s);
                    // Past the budget no bit has to match the dense cache: take the faster
                    // batched order (16 accumulators in registers, not 64 spilled ones).
                    acc.reset(if fits { order } else { ValueOrder::Gemm }, hdv);
                    if n_mem > 0 {
                        ops.attn_values_add(&mut acc, &s[..n_mem], &mem.values[..n_mem * hdv]);
                    }
                    for (r, _, v) in &segs {
                        let (a, b) = (r.start.max(lo), r.end.min(hi));
                        if a < b {
                            let v = &v[(a - r.start) * hdv..(b - r.start) * hdv];
                            ops.attn_values_add(&mut acc, &s[n_mem + a..n_mem + b], v);
                        }
                    }
                    // SAFETY: item (KV head h, tokens t0..t1) alone writes its group's heads of
                    // those tokens.
                    let o = unsafe { out.range((t * n_head + head) * hdv, hdv) };
                    ops.attn_values_finish(&acc, o);
                }
            }
        }
    });
}

/// Where a chunk of queries at positions p0..p1 of one layer stands against its budget.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChunkView {
    /// Everything fits: every query sees 0..=p, as in the full cache.
    pub fits: bool,
    pub sinks: usize,
    /// Recent entries each query sees exactly.
    pub window: usize,
    /// Start of the window region (0 when everything fits): memory entries lie before it.
    pub wstart: usize,
    /// Whether memory entries attend at re-numbered positions.
    pub renumbered: bool,
    /// Whether the layer chooses memory entries (global layers past the budget).
    pub choose: bool,
    /// Position of the chunk's last query.
    pub last: usize,
}

impl ChunkView {
    pub fn new(kv: &SparseKv, layer: usize, p0: usize, p1: usize) -> ChunkView {
        match kv.local[layer] {
            // A sliding-window layer attends its own window exactly and chooses nothing.
            Some(w) => ChunkView::with(&kv.plan, kv.n_ctx_train, (0, w, w), false, p0, p1),
            None => ChunkView::global(&kv.plan, kv.n_ctx_train, p0, p1),
        }
    }

    /// The view of a global layer (not sliding-window) under `plan`: what the Vulkan backend's
    /// window mode follows, so the device attends to what the CPU would.
    pub(crate) fn global(plan: &KvPlan, n_ctx_train: usize, p0: usize, p1: usize) -> ChunkView {
        ChunkView::with(plan, n_ctx_train, (plan.sinks, plan.window, plan.budget), true, p0, p1)
    }

    /// The view for (sinks, window, budget), choosing memory entries past the budget if
    /// `chooses`.
    fn with(
        plan: &KvPlan,
        n_ctx_train: usize,
        (sinks, window, budget): (usize, usize, usize),
        chooses: bool,
        p0: usize,
        p1: usize,
    ) -> ChunkView {
        let fits = p1 <= budget;
        ChunkView {
            fits,
            sinks,
            window,
            wstart: if fits { 0 } else { (p0 + 1).saturating_sub(window) },
            renumbered: !fits && renumber(plan, n_ctx_train, p1),
            choose: !fits && chooses,
            last: p1 - 1,
        }
    }
}

/// Where memory entry i of n_mem (true position p) is attended when the chunk whose last query
/// is at `last` re-numbers positions, its window region starting at `wstart`.
pub(crate) fn renumbered_position(
    plan: &KvPlan,
    n_ctx_train: usize,
    last: usize,
    wstart: usize,
    n_mem: usize,
    i: usize,
    p: usize,
) -> usize {
    match plan.positions {
        PositionMode::Fixed => (wstart - 1).max(p),
        // Clamp: no query sees a key farther than the trained distance, including the decoding
        // steps that reuse this selection (up to select_chunk positions later).
        PositionMode::Clamp => (last + plan.select_chunk).saturating_sub(n_ctx_train).max(p),
        _ => (wstart - n_mem + i).max(p),
    }
}

/// Whether a reader of the chunk `view` may reuse the kept selection `m` (`chunk`: positions
/// one selection serves).
fn usable(m: &Memo, view: &ChunkView, chunk: usize, reader: Reader) -> bool {
    let (made_for, valid) =
        (m.made_for(view.last, view.renumbered), m.valid_for(view.last, chunk, view.renumbered));
    match reader {
        Reader::Decode => made_for || valid,
        // A decoded token's selection holds no f32 rows: a prompt chunk chooses its own.
        Reader::Prompt { single } => m.has_f32() && (made_for || (single && valid)),
    }
}

/// Chooses (or reuses) the memory entries of one layer and KV head.
pub(super) struct Selector<'a> {
    pub kv: &'a SparseKv,
    pub compute: &'a Compute,
    pub rope: &'a RopeTable,
    pub layer: usize,
    pub h: usize,
    pub kq_scale: f32,
    /// The memory entries, if already chosen (decoding runs fovea's descents before attention).
    pub chosen: Option<&'a [Range<usize>]>,
}

/// A chunk's memory entries: chosen by the chunk itself, or kept from a selection before it.
pub(super) enum Memory<'a> {
    Fresh(&'a Gathered),
    Kept(RwLockReadGuard<'a, Memo>),
}

impl Deref for Memory<'_> {
    type Target = Gathered;

    fn deref(&self) -> &Gathered {
        match self {
            Memory::Fresh(g) => g,
            Memory::Kept(m) => &m.g,
        }
    }
}

/// Who reads a chunk's memory entries, which decides what a kept selection must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reader {
    /// A prompt chunk (`single`: of one query), read as gathered f32 rows.
    Prompt { single: bool },
    /// A decoded token: reads gathered f32 rows, or the f16 rows alone when the pages hold f16.
    Decode,
}

impl<'a> Selector<'a> {
    /// The memory entries the chunk described by `view` attends to, for its queries qs
    /// (chunk * group, hd). With `keeps`, the selection is the memo's: reused when it was made
    /// for this chunk (by another query head or segment) or, for a single query, within
    /// `select_chunk` positions of it; otherwise chosen now and kept. Without, it is chosen
    /// into `fresh`.
    pub fn entries<'b>(
        &self,
        view: &ChunkView,
        qs: &[f32],
        keeps: bool,
        reader: Reader,
        fresh: &'b mut Gathered,
        eff: &mut Vec<usize>,
    ) -> Memory<'b>
    where
        'a: 'b,
    {
        let (kv, layer, h) = (self.kv, self.layer, self.h);
        if !view.choose {
            fresh.clear();
            return Memory::Fresh(fresh);
        }
        let usable = |m: &Memo| usable(m, view, kv.plan.select_chunk, reader);
        let mut writer = if keeps && !usable(&kv.memo_read(layer, h)) {
            // Another head or segment of this KV head may have chosen while we waited.
            Some(kv.memo_write(layer, h)).filter(|m| !usable(m))
        } else {
            None
        };
        if let Some(m) = writer.as_mut() {
            // The chunk ending the batch leaves its selection to the decoding steps after it,
            // chosen straight into the memo's buffers.
            let m = m.refill(view.last, view.renumbered);
            if kv.store.shape().ty != KvType::F16 {
                self.choose(view, qs, &mut m.g, eff);
            } else if reader == Reader::Decode {
                // Only decoding reads a decoded token's selection: the f16 rows alone.
                self.choose_half(view, qs, m, eff);
            } else {
                self.choose(view, qs, &mut m.g, eff);
                m.narrow(&self.compute.ops);
            }
        } else if !keeps {
            self.choose(view, qs, fresh, eff);
        }
        drop(writer);
        if keeps {
            Memory::Kept(kv.memo_read(layer, h))
        } else {
            Memory::Fresh(fresh)
        }
    }

    /// Whether a decoded token described by `view` must choose its memory entries: it
    /// chooses, and its layer and KV head keep no selection it may reuse.
    pub fn must_choose(&self, view: &ChunkView) -> bool {
        view.choose
            && !usable(
                &self.kv.memo_read(self.layer, self.h),
                view,
                self.kv.plan.select_chunk,
                Reader::Decode,
            )
    }

    /// The memory entries' position ranges for the chunk's queries qs.
    fn ranges(&self, view: &ChunkView, qs: &[f32]) -> Vec<Range<usize>> {
        if let Some(r) = self.chosen {
            return r.to_vec();
        }
        let hd = self.kv.store.shape().head_dim;
        let queries = Queries { q: qs, hd, scale: self.kq_scale };
        memory(self.kv, self.compute, self.layer, self.h, queries, view.sinks, view.wstart)
    }

    /// Chooses and gathers the memory entries into `fresh`, re-rotated when renumbered.
    fn choose(&self, view: &ChunkView, qs: &[f32], fresh: &mut Gathered, eff: &mut Vec<usize>) {
        let ranges = self.ranges(view, qs);
        gather(&self.kv.store, &self.compute.ops, self.layer, self.h, &ranges, fresh);
        self.renumber(view, &fresh.pos, &mut fresh.keys, eff);
    }

    /// As [`Selector::choose`] for pages of f16, into the memo's f16 rows only (widened for the
    /// re-rotation alone, which then rounds once, as narrowing rotated f32 keys does).
    fn choose_half(&self, view: &ChunkView, qs: &[f32], m: &mut Memo, eff: &mut Vec<usize>) {
        let ranges = self.ranges(view, qs);
        gather_f16(&self.kv.store, self.layer, self.h, &ranges, &mut m.g.pos, &mut m.k16, &mut m.v16);
        if view.renumbered && !m.g.pos.is_empty() {
            // Widened in the memo's (otherwise empty) f32 key buffer, emptied again after, so
            // the f16-only memo stays one and the buffer is reused from selection to selection.
            let ops = &self.compute.ops;
            let mut keys = std::mem::take(&mut m.g.keys);
            keys.resize(m.k16.len(), 0.0);
            ops.f16_to_f32(&m.k16, &mut keys);
            self.renumber(view, &m.g.pos, &mut keys, eff);
            ops.f32_to_f16(&keys, &mut m.k16);
            keys.clear();
            m.g.keys = keys;
        }
    }

    /// Re-rotates keys (m, hd) stored at positions pos (m,) to where the chunk attends to them,
    /// when it attends at re-numbered positions.
    fn renumber(&self, view: &ChunkView, pos: &[usize], keys: &mut [f32], eff: &mut Vec<usize>) {
        let (kv, wstart, n_mem) = (self.kv, view.wstart, pos.len());
        if n_mem == 0 || !view.renumbered {
            return;
        }
        eff.clear();
        eff.extend(
            pos.iter()
                .enumerate()
                .map(|(i, &p)| renumbered_position(&kv.plan, kv.n_ctx_train, view.last, wstart, n_mem, i, p)),
        );
        rerotate(self.rope, keys, kv.store.shape().head_dim, pos, eff);
    }
}

/// The window region's rows: read in place from f32 pages, one slice per page, or gathered
/// into `win` when the pages hold f16/q8_0. Ranges are offsets from the region's start.
pub(super) fn window_rows<'a>(
    kv: &'a SparseKv,
    ops: &OpKernels,
    layer: usize,
    h: usize,
    region: Range<usize>,
    win: &'a mut Gathered,
) -> Vec<Segment<'a>> {
    window_segments(kv, layer, h, region.clone()).unwrap_or_else(|| {
        let len = region.len();
        gather(&kv.store, ops, layer, h, std::slice::from_ref(&region), win);
        vec![(0..len, &win.keys[..], &win.values[..])]
    })
}

/// A window region's rows per page, read in place: (offsets from the region's start, keys
/// (n, hd), values (n, hdv)); None if any page cannot be read as f32 in place.
pub(super) type Segment<'a> = (Range<usize>, &'a [f32], &'a [f32]);

fn window_segments(kv: &SparseKv, layer: usize, h: usize, region: Range<usize>) -> Option<Vec<Segment<'_>>> {
    let origin = region.start;
    kv.store
        .page_runs(region)
        .map(|run| {
            let (k, v) = kv.store.f32_rows(layer, h, run.clone())?;
            Some((run.start - origin..run.end - origin, k, v))
        })
        .collect()
}

/// Whether the chunk ending before p1 attends at re-numbered positions.
fn renumber(plan: &KvPlan, n_ctx_train: usize, p1: usize) -> bool {
    match plan.positions {
        PositionMode::Auto | PositionMode::Clamp => p1 > n_ctx_train,
        PositionMode::True => false,
        PositionMode::Renumber | PositionMode::Fixed => true,
    }
}

/// The memory entries (sorted, disjoint position ranges, all before `mem_end`) a chunk attends
/// to on a global layer: sinks plus the mode's choice.
fn memory(
    kv: &SparseKv,
    compute: &Compute,
    layer: usize,
    h: usize,
    qs: Queries<'_>,
    sinks: usize,
    mem_end: usize,
) -> Vec<Range<usize>> {
    let plan = &kv.plan;
    let sinks = 0..sinks.min(mem_end);
    match plan.mode {
        KvMode::Full | KvMode::Window => vec![sinks],
        KvMode::Dilated => {
            let grid = dilated_positions(sinks.end, mem_end, plan.window, plan.dilated);
            let mut r = vec![sinks];
            r.extend(grid.into_iter().map(|p| p..p + 1));
            r
        }
        KvMode::Fovea => {
            let Some(tree) = FoveaTree::new(kv, layer, h, sinks.end, mem_end) else {
                // Everything before the window fits in the pages' share: take it all.
                return std::iter::once(sinks.start..mem_end).collect();
            };
            let pages = if plan.scoring == Scoring::Exact {
                let mut keys = Gathered::default();
                let eligible = sinks.start..tree.n_eligible * plan.page;
                gather(&kv.store, &compute.ops, layer, h, std::slice::from_ref(&eligible), &mut keys);
                kv.stats.add(tree.n_eligible, tree.n_eligible);
                let dots =
                    |q: &[f32], k: &[f32], sc: f32, o: &mut [f32]| compute.ops.attn_scores(q, k, sc, o);
                top_pages_exact(qs, &keys.keys, plan.page, plan.k_pages, &dots)
            } else {
                let (p, nodes) = with_select_kernels(compute, |kernels| {
                    select_pages(tree.index, qs, tree.n_eligible, tree.want, kernels)
                });
                kv.stats.add(nodes, tree.n_eligible);
                p
            };
            page_ranges(sinks, &pages, plan.page)
        }
    }
}

/// The sinks and the chosen pages as sorted, merged position ranges.
pub(super) fn page_ranges(sinks: Range<usize>, pages: &[usize], page: usize) -> Vec<Range<usize>> {
    let mut r = vec![sinks];
    r.extend(pages.iter().map(|&p| p * page..(p + 1) * page));
    merge(r)
}

/// What fovea's selection for one layer and KV head descends: its tree, the eligible pages
/// (those wholly before the window region) and how many pages each ranking picks.
pub(super) struct FoveaTree<'a> {
    pub index: &'a HeadIndex,
    pub n_eligible: usize,
    pub want: Want,
}

impl<'a> FoveaTree<'a> {
    /// None when everything between the sinks and `mem_end` fits in the pages' share (nothing
    /// to choose).
    pub fn new(kv: &'a SparseKv, layer: usize, h: usize, sinks_end: usize, mem_end: usize) -> Option<Self> {
        let plan = &kv.plan;
        let (page, k) = (plan.page, plan.k_pages);
        if mem_end <= sinks_end + k * page {
            return None;
        }
        let half = k.div_ceil(2);
        let (by_bound, by_mean, beam_factor) = match plan.scoring {
            Scoring::Bound => (k, 0, plan.beam),
            Scoring::Mean => (0, k, plan.beam),
            Scoring::Union => (half, k - half, plan.beam),
            Scoring::UnionFlat => (half, k - half, usize::MAX),
            Scoring::Exact => (0, 0, 0),
        };
        Some(FoveaTree {
            index: &kv.index[layer][h],
            n_eligible: mem_end / page,
            want: Want { by_bound, by_mean, beam_factor },
        })
    }
}

/// Runs `f` with the selection kernels of `compute` (the SIMD score, sibling-panel and softmax
/// kernels).
pub(super) fn with_select_kernels<R>(compute: &Compute, f: impl FnOnce(Kernels<'_>) -> R) -> R {
    let dots = |q: &[f32], k: &[f32], sc: f32, o: &mut [f32]| compute.ops.attn_scores(q, k, sc, o);
    let softmax = |x: &mut [f32]| compute.ops.softmax(x);
    let siblings = |q: &[f32], lo: &[&[half::f16]], hi: &[&[half::f16]], o: &mut [f32], at, width| {
        compute.ops.sibling_dots(q, lo, hi, o, at, width)
    };
    f(Kernels { dots: &dots, siblings: &siblings, softmax: &softmax })
}
