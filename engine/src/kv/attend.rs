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

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use fovea_kernels::ops::{RopeTable, ValueOrder};

use super::gather::{gather, rerotate, Gathered};
use super::mode::{KvMode, PositionMode, Scoring};
use super::select::{
    dilated_positions, merge, top_pages_by_bound, top_pages_by_mean, top_pages_exact, Queries,
};
use super::sparse::SparseKv;
use crate::attention::AttnShape;
use crate::matmul::Compute;
use crate::threadpool::SharedMut;

/// Attention of the batch's queries q (n, n_head * hd) at positions pos0..pos0 + n over the
/// entries the mode chooses -> out (n, n_head * hdv). Keys and values of the batch are stored.
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
    let n_kv = n_head / group.max(1);
    let chunk = kv.plan.select_chunk;
    let n_items = n.div_ceil(chunk) * n_kv;
    let ops = compute.ops;
    let order = ValueOrder::for_batch(n);
    let next = AtomicUsize::new(0);
    let out = SharedMut::new(out);
    compute.pool.run(&|_| {
        let mut g = Gathered::default();
        let mut qs: Vec<f32> = Vec::new(); // (chunk * group, hd) the chunk's queries of this KV head
        let mut eff: Vec<usize> = Vec::new(); // (m,) positions the keys are rotated to
        let mut s: Vec<f32> = Vec::new(); // (m,) one query's scores, then weights
        loop {
            let item = next.fetch_add(1, Ordering::Relaxed);
            if item >= n_items {
                break;
            }
            let (h, t0) = (item % n_kv, item / n_kv * chunk);
            let t1 = (t0 + chunk).min(n);
            let (p0, p1) = (pos0 + t0, pos0 + t1);
            qs.clear();
            for t in t0..t1 {
                qs.extend_from_slice(&q[(t * n_head + h * group) * hd..(t * n_head + (h + 1) * group) * hd]);
            }
            let (sinks, window, budget) = match kv.local[layer] {
                Some(w) => (0, w, w),
                None => (kv.plan.sinks, kv.plan.window, kv.plan.budget),
            };
            // Everything fits: every query sees 0..=p.
            let fits = p1 <= budget;
            let wstart = if fits { 0 } else { (p0 + 1).saturating_sub(window) };
            let mut ranges = if fits || kv.local[layer].is_some() {
                Vec::new()
            } else {
                let queries = Queries { q: &qs, hd, scale: kq_scale };
                memory(kv, compute, layer, h, queries, sinks, wstart)
            };
            let n_mem: usize = ranges.iter().map(|r| r.len()).sum();
            ranges.push(wstart..p1);
            gather(&kv.store, layer, h, &ranges, &mut g);
            if n_mem > 0 && renumber(kv, p1) {
                eff.clear();
                eff.extend(g.pos[..n_mem].iter().enumerate().map(|(i, &p)| match kv.plan.positions {
                    PositionMode::Fixed => (wstart - 1).max(p),
                    _ => (wstart - n_mem + i).max(p),
                }));
                rerotate(rope, &mut g.keys[..n_mem * hd], hd, &g.pos[..n_mem], &eff);
            }

            for t in t0..t1 {
                let p = pos0 + t;
                let len = n_mem + (p + 1 - wstart);
                // Window region entries this query sees: positions max(p+1-W, wstart)..=p.
                let lo = if fits { 0 } else { n_mem + (p + 1).saturating_sub(window).max(wstart) - wstart };
                s.resize(len, 0.0);
                for j in 0..group {
                    let head = h * group + j;
                    let qh = &q[(t * n_head + head) * hd..(t * n_head + head + 1) * hd];
                    s.fill(f32::NEG_INFINITY);
                    if n_mem > 0 {
                        ops.attn_scores(qh, &g.keys[..n_mem * hd], kq_scale, &mut s[..n_mem]);
                    }
                    ops.attn_scores(qh, &g.keys[lo * hd..len * hd], kq_scale, &mut s[lo..len]);
                    ops.softmax(&mut s);
                    // SAFETY: item (KV head h, tokens t0..t1) alone writes its group's heads of
                    // those tokens.
                    let o = unsafe { out.range((t * n_head + head) * hdv, hdv) };
                    ops.attn_values(&s, &g.values[..len * hdv], order, o);
                }
            }
        }
    });
}

/// Whether the chunk ending before p1 attends at re-numbered positions.
fn renumber(kv: &SparseKv, p1: usize) -> bool {
    match kv.plan.positions {
        PositionMode::Auto => p1 > kv.n_ctx_train,
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
            let (page, k) = (plan.page, plan.k_pages);
            if mem_end <= sinks.end + k * page {
                // Everything before the window fits in the pages' share: take it all.
                return std::iter::once(sinks.start..mem_end).collect();
            }
            let n_eligible = mem_end / page;
            let index = &kv.index[layer][h];
            let pages = match plan.scoring {
                Scoring::Bound => {
                    let (p, nodes) = top_pages_by_bound(index, qs, n_eligible, k, &[]);
                    kv.stats.add(nodes, n_eligible);
                    p
                }
                Scoring::Mean => {
                    kv.stats.add(n_eligible, n_eligible);
                    top_pages_by_mean(index, qs, n_eligible, k, &[])
                }
                Scoring::Union => {
                    let (mut p, nodes) = top_pages_by_bound(index, qs, n_eligible, k.div_ceil(2), &[]);
                    kv.stats.add(nodes + n_eligible, n_eligible);
                    let more = top_pages_by_mean(index, qs, n_eligible, k - p.len(), &p);
                    p.extend(more);
                    p
                }
                Scoring::Exact => {
                    let mut keys = Gathered::default();
                    let eligible = sinks.start..n_eligible * page;
                    gather(&kv.store, layer, h, std::slice::from_ref(&eligible), &mut keys);
                    kv.stats.add(n_eligible, n_eligible);
                    let scores =
                        |q: &[f32], k: &[f32], sc: f32, o: &mut [f32]| compute.ops.attn_scores(q, k, sc, o);
                    top_pages_exact(qs, &keys.keys, page, k, &[], &scores)
                }
            };
            let mut r = vec![sinks];
            r.extend(pages.into_iter().map(|p| p * page..(p + 1) * page));
            merge(r)
        }
    }
}
