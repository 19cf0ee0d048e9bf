//! Causal self-attention over the KV cache, tiled so that queries share what they read.
//!
//! Same interface and the same bits as [`crate::attention::attention`], organised for the
//! cache: a work item is one KV head and a block of consecutive tokens, i.e. every query head of
//! the GQA group for each of those tokens (3 heads x 8 tokens = 24 queries for SmolLM2). The item
//! walks the cells its queries read in tiles; each key tile is read by all of them while it is in
//! L1/L2 (their scores), then each value tile likewise (their value sums, carried from tile to
//! tile by a [`ValueAcc`]). One KV head's keys and values are then streamed from L3 once per
//! item instead of once per query.
//!
//! Why the bits do not change: a score depends on its own key only, so computing a row tile by
//! tile gives the same floats; the softmax still runs over each query's whole row; and a
//! [`ValueAcc`] fed the row in consecutive chunks sums exactly as one `attn_values` call does.
//! Each query keeps its own row (`KvCache::row`: cells, masked cells, ring order), so local and
//! global layers, masked cells and wrapped rings are handled exactly as in the untiled loop.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use fovea_kernels::ops::{ValueAcc, ValueOrder};

use crate::attention::AttnShape;
use crate::kv_cache::{CellRow, KvCache};
use crate::matmul::Compute;
use crate::threadpool::SharedMut;

/// Consecutive tokens per work item. With a group of 3 query heads, 24 queries share each tile;
/// 512 tokens over 3 KV heads still make 192 items to balance across threads.
const TOKENS: usize = 8;

/// Bytes of one KV head's keys and values that a decoded token may read once per query head:
/// half of a 2 MiB L2, so they stay there between the heads of the group.
const L2_SHARE: usize = 1 << 20;

/// Bytes of keys (or values) per tile: 32 KiB stay in a 48 KiB L1 while every query of the
/// item reads them. 128 cells of SmolLM2's 64-wide heads, 32 of Gemma 3's 256-wide ones (128
/// cells there came from L2: Gemma pp512 measured 567 t/s with them, 589 with 32).
const TILE_BYTES: usize = 32 << 10;

/// Cells per key/value tile for rows of `width` floats: [`TILE_BYTES`] of them, a multiple of 16
/// (the score kernels' block).
fn tile_cells(width: usize) -> usize {
    (TILE_BYTES / (width.max(1) * size_of::<f32>())).clamp(16, 128) / 16 * 16
}

/// Causal self-attention of the batch's n queries (tokens at positions pos0..pos0 + n) over the
/// cache, each query over the cells [`KvCache::row`] gives for its position.
/// q (n, n_head * hd) -> out (n, n_head * hdv). Heads of one GQA group share a KV head.
/// Every output float equals [`crate::attention::attention`]'s.
pub fn attention(
    compute: &Compute,
    cache: &KvCache,
    layer: usize,
    shape: AttnShape,
    pos0: usize,
    q: &[f32],
    out: &mut [f32],
) {
    let AttnShape { n_head, group, head_dim: hd, head_dim_v: hdv, kq_scale } = shape;
    let n = q.len() / (n_head * hd);
    let n_kv = n_head / group;
    let ops = compute.ops;
    let order = ValueOrder::for_batch(n);
    // One decoded token would make only n_kv items, too few for the threads (3 KV heads on 2
    // threads leave one idle a third of the time): it is split by query head instead, while its
    // KV head's rows fit in L2 so the heads of a group re-read them from there. Past that,
    // every head would stream them from memory again, and sharing them wins (SmolLM2, 2
    // threads: split 81 vs shared 78.5 t/s at 1K tokens, equal at 2K, 17.4 vs 22.6 at 8K).
    let row_bytes = cache.row(layer, pos0).cells.len() * (hd + hdv) * size_of::<f32>();
    let heads = if n == 1 && row_bytes <= L2_SHARE { 1 } else { group };
    let per_kv = group / heads.max(1);
    let n_items = n.div_ceil(TOKENS) * n_kv * per_kv;
    let next = AtomicUsize::new(0);
    let out = SharedMut::new(out);
    compute.pool.run(&|_| {
        let mut rows: Vec<CellRow> = Vec::with_capacity(TOKENS); // (tokens,) of the current item
        let mut scores: Vec<f32> = Vec::new(); // (tokens * heads, stride) score rows, then weights
        let mut accs: Vec<ValueAcc> = Vec::new(); // (tokens * heads,) value sums
        loop {
            let item = next.fetch_add(1, Ordering::Relaxed);
            if item >= n_items {
                break;
            }
            // Neighbouring items take different KV heads, so threads start on different data.
            let (kv_head, rest) = (item % n_kv, item / n_kv);
            let (sub, t0) = (rest % per_kv, rest / per_kv * TOKENS);
            let head0 = kv_head * group + sub * heads; // the item's first query head
            let tokens = t0..(t0 + TOKENS).min(n);
            rows.clear();
            rows.extend(tokens.clone().map(|t| cache.row(layer, pos0 + t)));
            // Cells read by any query of the item; every row is a sub-range of it.
            let span = rows.iter().map(|r| r.cells.start).min().unwrap_or(0)
                ..rows.iter().map(|r| r.cells.end).max().unwrap_or(0);
            let stride = rows.iter().map(|r| r.cells.len()).max().unwrap_or(0);
            let (keys, values) = cache.head(layer, kv_head, span.clone());
            let n_queries = rows.len() * heads;
            // Query i = token (t0 + i / heads), head (head0 + i % heads); its score row is
            // scores[i * stride..][..its row's cells], laid out like the untiled scratch.
            scores.resize(n_queries * stride, 0.0);
            let query = |i: usize| {
                let (t, h) = (t0 + i / heads, head0 + i % heads);
                &q[(t * n_head + h) * hd..(t * n_head + h + 1) * hd]
            };

            for (i, s) in scores.chunks_exact_mut(stride).enumerate() {
                s[..rows[i / heads].cells.len()].fill(f32::NEG_INFINITY);
            }
            for tile in tiles(span.clone(), tile_cells(hd)) {
                for (i, s) in scores.chunks_exact_mut(stride).enumerate() {
                    let row = &rows[i / heads];
                    for vis in &row.visible {
                        let cells = intersect(shift(vis, row.cells.start), &tile);
                        if cells.is_empty() {
                            continue;
                        }
                        let k = &keys[(cells.start - span.start) * hd..(cells.end - span.start) * hd];
                        ops.attn_scores(query(i), k, kq_scale, &mut s[shift_back(&cells, row.cells.start)]);
                    }
                }
            }
            for (i, s) in scores.chunks_exact_mut(stride).enumerate() {
                ops.softmax(&mut s[..rows[i / heads].cells.len()]);
            }

            accs.resize_with(n_queries, || ValueAcc::new(order, hdv));
            accs.iter_mut().for_each(|a| a.reset(order, hdv));
            for tile in tiles(span.clone(), tile_cells(hdv)) {
                for (i, (w, acc)) in scores.chunks_exact(stride).zip(accs.iter_mut()).enumerate() {
                    let row = &rows[i / heads];
                    let cells = intersect(row.cells.clone(), &tile);
                    if cells.is_empty() {
                        continue;
                    }
                    let v = &values[(cells.start - span.start) * hdv..(cells.end - span.start) * hdv];
                    ops.attn_values_add(acc, &w[shift_back(&cells, row.cells.start)], v);
                }
            }
            for (t, accs) in tokens.zip(accs.chunks_exact(heads)) {
                // SAFETY: item (KV head, query heads, tokens) owns the outputs of its heads for its
                // tokens alone: one contiguous run of `heads` heads per token.
                let o = unsafe { out.range((t * n_head + head0) * hdv, heads * hdv) };
                for (acc, o) in accs.iter().zip(o.chunks_exact_mut(hdv.max(1))) {
                    ops.attn_values_finish(acc, o);
                }
            }
        }
    });
}

/// Consecutive tiles of `cells`, cut at multiples of `tile`.
fn tiles(cells: Range<usize>, tile: usize) -> impl Iterator<Item = Range<usize>> {
    let first = cells.start / tile * tile;
    (first..cells.end).step_by(tile).map(move |c| c.max(cells.start)..(c + tile).min(cells.end))
}

/// The cells in both `a` and `b` (empty, never reversed, when they do not meet).
pub(crate) fn intersect(a: Range<usize>, b: &Range<usize>) -> Range<usize> {
    a.start.max(b.start)..a.end.min(b.end).max(a.start.max(b.start))
}

/// `r` (relative to `origin`) as absolute cells.
fn shift(r: &Range<usize>, origin: usize) -> Range<usize> {
    r.start + origin..r.end + origin
}

/// Absolute cells `r` relative to `origin`.
fn shift_back(r: &Range<usize>, origin: usize) -> Range<usize> {
    r.start - origin..r.end - origin
}
