//! Attention of one decoded token past the budget: GQA-shared, split over the attended entries.
//!
//! A decoded token has one query per head (9 for SmolLM2, over 3 KV heads). Items of one KV head
//! leave a thread idle (3 items on 2 threads); items of one query head read their KV head's B
//! entries once per head. Here an item is one KV head and one segment of its entries, with all
//! the queries of its group: the group kernels (`group_scores`, `group_values_add`) load each
//! key and value row once for all of them, f16 rows widened in registers, and `segments` per KV
//! head make items of equal size for the threads.
//!
//! A token that must re-select first runs fovea's tree descents, each ranking of each KV head
//! as an item of its own (`choose_in_parallel`), so the selections are spread over the threads
//! too.
//!
//! Each segment's softmax is normalised on its own; the last item of a KV head to finish merges
//! the segments' outputs by their max and exp sum (log-sum-exp), which gives the softmax over all
//! the entries up to rounding. This path only runs past the budget, where no bit has to match
//! the dense cache; while the sequence fits, `attend` keeps the full cache's order and bits.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use fovea_kernels::ops::{KvRows, OpKernels, RopeTable, SoftmaxStats};

use super::attend::{page_ranges, with_select_kernels, ChunkView, FoveaTree, Memory, Reader, Selector};
use super::gather::{gather, Gathered};
use super::mode::{KvMode, KvType, Scoring};
use super::select::{descend, merge_picks, Queries, Ranking};
use super::sparse::SparseKv;
use crate::attention::AttnShape;
use crate::attention_tiled::intersect;
use crate::matmul::Compute;
use crate::threadpool::SharedMut;

/// Attention of the single query token q (n_head * hd) at position `pos`, which `view` places
/// past the budget, over the entries the mode chooses -> out (n_head * hdv).
#[allow(clippy::too_many_arguments)]
pub(super) fn attention(
    compute: &Compute,
    kv: &SparseKv,
    rope: &RopeTable,
    layer: usize,
    shape: AttnShape,
    pos: usize,
    view: &ChunkView,
    q: &[f32],
    out: &mut [f32],
) {
    let AttnShape { n_head, group, head_dim: hd, head_dim_v: hdv, kq_scale } = shape;
    let n_kv = n_head / group.max(1);
    let ops = compute.ops;
    // One segment per thread and KV head: n_kv * threads items of equal size.
    let n_seg = compute.pool.active_threads().max(1);
    let n_items = n_kv * n_seg;
    let next = AtomicUsize::new(0);
    // Segments finished per KV head; the item that finishes last merges them.
    let finished: Vec<AtomicUsize> = (0..n_kv).map(|_| AtomicUsize::new(0)).collect();
    // (n_kv, n_seg, group) each segment's softmax stats and normalised output (hdv,).
    let mut stats = vec![SoftmaxStats::MASKED; n_kv * n_seg * group];
    let mut partial = vec![0.0f32; n_kv * n_seg * group * hdv];
    let (stats, partial) = (SharedMut::new(&mut stats), SharedMut::new(&mut partial));
    let chosen = choose_in_parallel(compute, kv, rope, layer, shape, view, q);
    let out = SharedMut::new(out);
    compute.pool.run(&|_| {
        let mut fresh = Gathered::default();
        let mut win = Gathered::default();
        let mut eff: Vec<usize> = Vec::new();
        let mut s: Vec<f32> = Vec::new(); // (group, seg len) scores, then weights
        loop {
            let item = next.fetch_add(1, Ordering::Relaxed);
            if item >= n_items {
                break;
            }
            // Items of the same segment index first, so the first items of every KV head gather
            // its selection (chosen by `choose_in_parallel`) on different threads while the
            // later ones reuse it.
            let (h, seg) = (item % n_kv, item / n_kv);
            let qs = &q[h * group * hd..(h + 1) * group * hd]; // (group, hd)
            let memory = Selector { kv, compute, rope, layer, h, kq_scale, chosen: chosen[h].as_deref() };
            let mem = memory.entries(view, qs, true, Reader::Decode, &mut fresh, &mut eff);
            let n_mem = mem.pos.len();
            // Entry index space: memory entries 0..n_mem, then the window region. With pages of
            // f16, both are read as f16 (the kept copy, the pages in place).
            let mut pieces: Vec<Piece<'_>> = Vec::with_capacity(8);
            let kept16 = match &mem {
                Memory::Kept(m) if kv.store.shape().ty == KvType::F16 => m.half(),
                _ => None,
            };
            pieces.push(match kept16 {
                Some((k, v)) => (0..n_mem, KvRows::F16(k), KvRows::F16(v)),
                None => (0..n_mem, KvRows::F32(&mem.keys), KvRows::F32(&mem.values)),
            });
            window_pieces(kv, &ops, layer, h, view.wstart..pos + 1, n_mem, &mut win, &mut pieces);
            let m = n_mem + (pos + 1 - view.wstart);
            let range = segment(m, n_seg, seg);
            let len = range.len();
            // Each piece's part of the segment: (offset in the segment, keys, values).
            let parts = pieces.iter().filter_map(|(r, k, v)| {
                let at = intersect(r.clone(), &range);
                let rows = at.start - r.start..at.end - r.start;
                (!at.is_empty())
                    .then(|| (at.start - range.start, rows_of(*k, &rows, hd), rows_of(*v, &rows, hdv)))
            });

            s.clear();
            s.resize(group * len, f32::NEG_INFINITY);
            for (off, keys, _) in parts.clone() {
                ops.group_scores(qs, keys, hd, kq_scale, &mut s[off..], len);
            }
            let slot = (h * n_seg + seg) * group;
            // SAFETY: item (h, seg) alone writes its group's slots.
            let my_stats = unsafe { stats.range(slot, group) };
            for (st, sg) in my_stats.iter_mut().zip(s.chunks_exact_mut(len.max(1))) {
                *st = if len == 0 { SoftmaxStats::MASKED } else { ops.softmax(sg) };
            }
            // SAFETY: as for the stats.
            let my_out = unsafe { partial.range(slot * hdv, group * hdv) };
            my_out.fill(0.0);
            for (off, _, values) in parts {
                ops.group_values_add(&s[off..], len, values, hdv, my_out);
            }
            // Release our slots to the merging item; acquire the others' when we merge.
            if finished[h].fetch_add(1, Ordering::AcqRel) + 1 == n_seg {
                let first = h * n_seg * group;
                // SAFETY: every segment of KV head h has finished (the counter), so nothing
                // else touches its slots; the output heads of h are written by this item alone.
                let (st, part, o) = unsafe {
                    (
                        stats.range(first, n_seg * group),
                        partial.range(first * hdv, n_seg * group * hdv),
                        out.range(h * group * hdv, group * hdv),
                    )
                };
                merge(st, part, group, hdv, o);
            }
        }
    });
}

/// Fovea's page choice for the KV heads whose kept selection this token may not reuse, each
/// head's two descents (bound and mean) as separate items: 3 KV heads make 6 items on 2 threads
/// instead of 3 selections, one of which a thread waited out alone. Returns each KV head's
/// memory entries (None: reused, or chosen the ordinary way in `Selector::entries`).
#[allow(clippy::too_many_arguments)]
fn choose_in_parallel(
    compute: &Compute,
    kv: &SparseKv,
    rope: &RopeTable,
    layer: usize,
    shape: AttnShape,
    view: &ChunkView,
    q: &[f32],
) -> Vec<Option<Vec<Range<usize>>>> {
    let AttnShape { n_head, group, head_dim: hd, kq_scale, .. } = shape;
    let n_kv = n_head / group.max(1);
    let mut chosen: Vec<Option<Vec<Range<usize>>>> = vec![None; n_kv];
    if kv.plan.mode != KvMode::Fovea || kv.plan.scoring == Scoring::Exact || !view.choose {
        return chosen;
    }
    let sinks = 0..view.sinks.min(view.wstart);
    // (KV head, ranking, pages, beam) of every descent to run.
    let mut jobs: Vec<(usize, Ranking, usize, usize)> = Vec::new();
    let mut trees: Vec<Option<FoveaTree<'_>>> = (0..n_kv).map(|_| None).collect();
    for (h, tree) in trees.iter_mut().enumerate() {
        let memory = Selector { kv, compute, rope, layer, h, kq_scale, chosen: None };
        if !memory.must_choose(view) {
            continue;
        }
        *tree = FoveaTree::new(kv, layer, h, sinks.end, view.wstart);
        if let Some(t) = tree {
            jobs.extend(t.want.descents().map(|(r, k, beam)| (h, r, k, beam)));
        }
    }
    if jobs.is_empty() {
        return chosen;
    }
    let mut found: Vec<(Vec<usize>, usize)> = vec![(Vec::new(), 0); jobs.len()];
    let slots = SharedMut::new(&mut found);
    let next = AtomicUsize::new(0);
    compute.pool.run(&|_| loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(&(h, ranking, k, beam)) = jobs.get(i) else { break };
        let Some(t) = &trees[h] else { continue };
        let qs = Queries { q: &q[h * group * hd..(h + 1) * group * hd], hd, scale: kq_scale };
        let result = with_select_kernels(compute, |kernels| {
            descend(t.index, qs, t.n_eligible, ranking, k, beam, kernels)
        });
        // SAFETY: item i alone writes slot i.
        let slot = unsafe { slots.range(i, 1) };
        slot[0] = result;
    });
    for (h, tree) in trees.iter().enumerate() {
        let Some(t) = tree else { continue };
        let (mut bound, mut mean, mut nodes) = (Vec::new(), Vec::new(), 0);
        for (&(jh, ranking, _, _), (pages, scored)) in jobs.iter().zip(&mut found) {
            if jh == h {
                nodes += *scored;
                match ranking {
                    Ranking::Bound => bound = std::mem::take(pages),
                    Ranking::Mean => mean = std::mem::take(pages),
                }
            }
        }
        kv.stats.add(nodes, t.n_eligible);
        let pages = merge_picks(bound, &mean, t.want.by_bound + t.want.by_mean);
        chosen[h] = Some(page_ranges(sinks.clone(), &pages, kv.plan.page));
    }
    chosen
}

/// Rows r (of width w) of stored entries.
fn rows_of<'a>(x: KvRows<'a>, r: &Range<usize>, w: usize) -> KvRows<'a> {
    match x {
        KvRows::F32(x) => KvRows::F32(&x[r.start * w..r.end * w]),
        KvRows::F16(x) => KvRows::F16(&x[r.start * w..r.end * w]),
    }
}

/// Entries (index range, keys, values) of one KV head.
type Piece<'a> = (Range<usize>, KvRows<'a>, KvRows<'a>);

/// Appends the window region's pages as pieces from entry index `base` on: f32 or f16 pages
/// read in place, anything else gathered into `win`.
#[allow(clippy::too_many_arguments)]
fn window_pieces<'a>(
    kv: &'a SparseKv,
    ops: &OpKernels,
    layer: usize,
    h: usize,
    region: Range<usize>,
    base: usize,
    win: &'a mut Gathered,
    out: &mut Vec<Piece<'a>>,
) {
    let (origin, first) = (region.start, out.len());
    for run in kv.store.page_runs(region.clone()) {
        let at = run.start - origin + base..run.end - origin + base;
        if let Some((k, v)) = kv.store.f32_rows(layer, h, run.clone()) {
            out.push((at, KvRows::F32(k), KvRows::F32(v)));
        } else if let Some((k, v)) = kv.store.f16_rows(layer, h, run.clone()) {
            out.push((at, KvRows::F16(k), KvRows::F16(v)));
        } else {
            // Spilled-and-gone or quantized pages: the whole region is gathered once instead.
            out.truncate(first);
            gather(&kv.store, ops, layer, h, std::slice::from_ref(&region), win);
            out.push((base..base + region.len(), KvRows::F32(&win.keys), KvRows::F32(&win.values)));
            return;
        }
    }
}

/// out (group, hdv) = the softmax-weighted sum over all segments, from each segment's stats
/// and normalised output: segment s weighs sum_s * exp(max_s - max) of the whole row's mass.
/// stats (n_seg, group), part (n_seg, group, hdv).
fn merge(stats: &[SoftmaxStats], part: &[f32], group: usize, hdv: usize, out: &mut [f32]) {
    let n_seg = stats.len() / group.max(1);
    for (g, o) in out.chunks_exact_mut(hdv.max(1)).enumerate() {
        let st = |seg: usize| stats[seg * group + g];
        let max = (0..n_seg).map(|seg| st(seg).max).fold(f32::NEG_INFINITY, f32::max);
        if max == f32::NEG_INFINITY {
            o.fill(0.0);
            continue;
        }
        let mass: Vec<f64> = (0..n_seg).map(|seg| st(seg).sum * ((st(seg).max - max) as f64).exp()).collect();
        let total: f64 = mass.iter().sum();
        for (d, o) in o.iter_mut().enumerate() {
            let sum: f64 = (0..n_seg)
                .filter(|&seg| mass[seg] > 0.0)
                .map(|seg| mass[seg] * part[(seg * group + g) * hdv + d] as f64)
                .sum();
            *o = (sum / total) as f32;
        }
    }
}

/// Segment `seg` of `n_seg` over m entries, cut at multiples of 16 (whole SIMD blocks).
fn segment(m: usize, n_seg: usize, seg: usize) -> Range<usize> {
    let per = m.div_ceil(n_seg.max(1)).next_multiple_of(16);
    (seg * per).min(m)..((seg + 1) * per).min(m)
}

#[cfg(test)]
mod tests {
    use fovea_kernels::ops::ValueOrder;

    use super::*;

    #[test]
    fn segments_cover_the_entries_in_order() {
        for m in [0usize, 1, 15, 16, 17, 100, 512, 513] {
            for n_seg in 1..5 {
                let segs: Vec<_> = (0..n_seg).map(|s| segment(m, n_seg, s)).collect();
                assert_eq!(segs[0].start, 0);
                assert_eq!(segs[n_seg - 1].end, m, "m={m} n_seg={n_seg}");
                for w in segs.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                }
                assert!(segs.iter().all(|s| s.start % 16 == 0 || s.start == m));
            }
        }
    }

    /// Softmax-weighted sums over a row split in segments and merged equal the sum over the
    /// whole row (f64 reference), including an all-masked segment.
    #[test]
    fn merged_segments_equal_the_whole_row() {
        let ops = fovea_kernels::ops::OpKernels::detect();
        let (group, hdv, m) = (3, 5, 70);
        let scores: Vec<f32> = (0..group * m).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        let values: Vec<f32> = (0..m * hdv).map(|i| ((i * 13 % 29) as f32 - 14.0) / 3.0).collect();
        for cuts in [vec![0, 70], vec![0, 32, 70], vec![0, 16, 16, 48, 70]] {
            let n_seg = cuts.len() - 1;
            let mut stats = vec![SoftmaxStats::MASKED; n_seg * group];
            let mut part = vec![0.0f32; n_seg * group * hdv];
            for seg in 0..n_seg {
                let r = cuts[seg]..cuts[seg + 1];
                for g in 0..group {
                    let mut w: Vec<f32> = scores[g * m..(g + 1) * m][r.clone()].to_vec();
                    let slot = seg * group + g;
                    stats[slot] = if w.is_empty() { SoftmaxStats::MASKED } else { ops.softmax(&mut w) };
                    let o = &mut part[slot * hdv..(slot + 1) * hdv];
                    ops.attn_values(&w, &values[r.start * hdv..r.end * hdv], ValueOrder::Gemm, o);
                }
            }
            let mut out = vec![f32::NAN; group * hdv];
            merge(&stats, &part, group, hdv, &mut out);
            for g in 0..group {
                let row = &scores[g * m..(g + 1) * m];
                let max = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
                let e: Vec<f64> = row.iter().map(|&x| (x as f64 - max).exp()).collect();
                let z: f64 = e.iter().sum();
                for d in 0..hdv {
                    let want: f64 = (0..m).map(|j| e[j] / z * values[j * hdv + d] as f64).sum();
                    let got = out[g * hdv + d] as f64;
                    // f32 softmax and sums over 70 entries: a few ulps of the value scale.
                    assert!(
                        (got - want).abs() < 1e-5 * (1.0 + want.abs()),
                        "cuts {cuts:?} g={g} d={d}: {got} vs {want}"
                    );
                }
            }
        }
    }
}
