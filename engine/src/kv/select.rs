//! Choosing the older tokens a chunk of queries attends to, beyond sinks and the recent window.
//!
//! Fovea scores pages for a chunk of queries Q (n_q, hd) (the chunk's tokens times the KV head's
//! GQA group) by one number per page. For the bound the number is
//!   f(page) = sum_q exp(s (ub_q(page) - c_q)),   ub_q = Quest's bound, c_q = ub_q(root),
//! a smooth max over the queries. It only grows with each ub_q, and a tree node's ub_q is never
//! below its pages', so f(node) >= f(page) for every page under the node: best-first descent from
//! the root pops pages in exactly the order of f, visiting about k * depth * BRANCHING nodes
//! instead of every page. Mean-key scoring sums each query's softmax over the pages' q.mean;
//! it has no bound, so it scores every page (1/P of a full attention's score cost).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::Range;

use super::summaries::{bound, HeadIndex, BRANCHING};

/// The attention score kernel: (q (hd,), keys (n, hd), scale, scores (n,)).
pub type ScoreFn<'a> = &'a dyn Fn(&[f32], &[f32], f32, &mut [f32]);

/// A chunk's queries for one KV head: q (n_q, hd), scores scaled by `scale` (kq_scale).
#[derive(Clone, Copy)]
pub struct Queries<'a> {
    pub q: &'a [f32],
    pub hd: usize,
    pub scale: f32,
}

impl Queries<'_> {
    fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.q.chunks_exact(self.hd.max(1))
    }
}

/// A node in the best-first queue, ordered by score (ties: lower level, then lower index first).
struct Cand {
    score: f32,
    level: usize,
    node: usize,
}

impl PartialEq for Cand {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Cand {
    fn cmp(&self, o: &Self) -> Ordering {
        self.score.total_cmp(&o.score).then(o.level.cmp(&self.level)).then(o.node.cmp(&self.node))
    }
}

/// Per-query normalizers c_q = ub_q(root) (n_q,).
fn root_bounds(index: &HeadIndex, qs: Queries<'_>) -> Vec<f32> {
    let hd = qs.hd;
    let top = &index.levels[index.levels.len() - 1];
    qs.rows()
        .map(|q| {
            (0..top.len(hd))
                .map(|n| bound(q, &top.min[n * hd..(n + 1) * hd], &top.max[n * hd..(n + 1) * hd]))
                .fold(f32::NEG_INFINITY, f32::max)
        })
        .collect()
}

/// f(node) of one node of one level.
fn node_score(index: &HeadIndex, level: usize, node: usize, qs: Queries<'_>, c: &[f32]) -> f32 {
    let hd = qs.hd;
    let l = &index.levels[level];
    let (min, max) = (&l.min[node * hd..(node + 1) * hd], &l.max[node * hd..(node + 1) * hd]);
    qs.rows().zip(c).map(|(q, &cq)| (qs.scale * (bound(q, min, max) - cq)).exp()).sum()
}

/// The `k` pages among 0..n_eligible (not in `exclude`) with the highest bound score, best
/// first, found by descending the tree. Returns the pages and the number of nodes scored.
pub fn top_pages_by_bound(
    index: &HeadIndex,
    qs: Queries<'_>,
    n_eligible: usize,
    k: usize,
    exclude: &[usize],
) -> (Vec<usize>, usize) {
    let hd = qs.hd;
    let mut picked = Vec::with_capacity(k);
    if k == 0 || n_eligible == 0 || index.n_pages(hd) == 0 {
        return (picked, 0);
    }
    let c = root_bounds(index, qs);
    let top = index.levels.len() - 1;
    // First page under node n of level l: n * BRANCHING^l.
    let first_page = |level: usize, node: usize| node * BRANCHING.pow(level as u32);
    let mut heap = BinaryHeap::new();
    let mut scored = 0;
    for node in 0..index.levels[top].len(hd) {
        if first_page(top, node) < n_eligible {
            heap.push(Cand { score: node_score(index, top, node, qs, &c), level: top, node });
            scored += 1;
        }
    }
    while let Some(Cand { level, node, .. }) = heap.pop() {
        if level == 0 {
            if !exclude.contains(&node) {
                picked.push(node);
                if picked.len() == k {
                    break;
                }
            }
            continue;
        }
        let children = node * BRANCHING..((node + 1) * BRANCHING).min(index.levels[level - 1].len(hd));
        for child in children {
            if first_page(level - 1, child) < n_eligible {
                heap.push(Cand {
                    score: node_score(index, level - 1, child, qs, &c),
                    level: level - 1,
                    node: child,
                });
                scored += 1;
            }
        }
    }
    (picked, scored)
}

/// The same selection by scoring every eligible page (the reference the descent must equal).
pub fn top_pages_by_bound_flat(
    index: &HeadIndex,
    qs: Queries<'_>,
    n_eligible: usize,
    k: usize,
    exclude: &[usize],
) -> Vec<usize> {
    if index.n_pages(qs.hd) == 0 {
        return Vec::new();
    }
    let c = root_bounds(index, qs);
    let scores: Vec<f32> =
        (0..n_eligible.min(index.n_pages(qs.hd))).map(|p| node_score(index, 0, p, qs, &c)).collect();
    top_k(&scores, k, exclude)
}

/// The `k` pages among 0..n_eligible with the most mean-key softmax mass summed over queries.
pub fn top_pages_by_mean(
    index: &HeadIndex,
    qs: Queries<'_>,
    n_eligible: usize,
    k: usize,
    exclude: &[usize],
) -> Vec<usize> {
    let hd = qs.hd;
    let n = n_eligible.min(index.n_pages(hd));
    let means = &index.mean[..n * hd];
    let mut mass = vec![0.0f32; n]; // (n,) summed softmax over pages
    let mut s = vec![0.0f32; n]; // (n,) one query's page scores
    for q in qs.rows() {
        for (sj, m) in s.iter_mut().zip(means.chunks_exact(hd.max(1))) {
            *sj = qs.scale * q.iter().zip(m).map(|(a, b)| a * b).sum::<f32>();
        }
        softmax_add(&s, &mut mass);
    }
    top_k(&mass, k, exclude)
}

/// The `k` pages with the most true attention mass: every key of every eligible page is scored.
/// keys (n_pages * page, hd) are the eligible pages' keys in order; `scores` is the attention
/// score kernel (q, keys, scale, out). An oracle for measurements, not an index.
pub fn top_pages_exact(
    qs: Queries<'_>,
    keys: &[f32],
    page: usize,
    k: usize,
    exclude: &[usize],
    scores: ScoreFn<'_>,
) -> Vec<usize> {
    let n_keys = keys.len() / qs.hd.max(1);
    let n_pages = n_keys / page.max(1);
    let mut mass = vec![0.0f32; n_pages]; // (pages,)
    let mut s = vec![0.0f32; n_keys]; // (keys,) one query's scores
    let mut per_key = vec![0.0f32; n_keys]; // (keys,) summed softmax
    for q in qs.rows() {
        scores(q, keys, qs.scale, &mut s);
        softmax_add(&s, &mut per_key);
    }
    for (m, w) in mass.iter_mut().zip(per_key.chunks_exact(page.max(1))) {
        *m = w.iter().sum();
    }
    top_k(&mass, k, exclude)
}

/// acc (n,) += softmax(s (n,)).
fn softmax_add(s: &[f32], acc: &mut [f32]) {
    let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = s.iter().map(|&x| (x - max).exp()).sum();
    for (a, &x) in acc.iter_mut().zip(s) {
        *a += (x - max).exp() / sum;
    }
}

/// Indices of the k largest scores not in `exclude`, largest first (ties: lower index first).
fn top_k(scores: &[f32], k: usize, exclude: &[usize]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).filter(|i| !exclude.contains(i)).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

/// LongNet's dilated grid beyond the window: positions before `end` (and from `from` on), taken
/// backwards in spans of `span` tokens: every 2nd position of the first span, every 4th of the
/// next, ... (each on a fixed grid, pos % stride == 0, so an entry stays chosen as the stream
/// moves), until `count` positions are chosen. Returned ascending.
pub fn dilated_positions(from: usize, end: usize, span: usize, count: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(count);
    let span = span.max(1);
    let mut hi = end;
    let mut stride = 2usize;
    while out.len() < count && hi > from {
        let lo = hi.saturating_sub(span).max(from);
        // Largest multiple of stride below hi, stepping down to lo.
        let mut p = (hi - 1) / stride * stride;
        while p >= lo && out.len() < count {
            out.push(p);
            match p.checked_sub(stride) {
                Some(next) => p = next,
                None => break,
            }
        }
        hi = lo;
        stride = (stride * 2).min(span);
    }
    out.reverse();
    out
}

/// Sorted, merged union of ranges.
pub fn merge(mut ranges: Vec<Range<usize>>) -> Vec<Range<usize>> {
    ranges.retain(|r| !r.is_empty());
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(seed: &mut u64) -> f32 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        (*seed >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn random_index(seed: &mut u64, hd: usize, pages: usize, per_page: usize) -> HeadIndex {
        let mut idx = HeadIndex::new(hd);
        for p in 0..pages {
            for _ in 0..per_page {
                let k: Vec<f32> =
                    (0..hd).map(|d| rng(seed) * (1.0 + (d % 4) as f32) + (p % 7) as f32 * 0.1).collect();
                idx.add_key(&k);
            }
            idx.finish_page();
        }
        idx
    }

    #[test]
    fn tree_descent_returns_the_true_top_k_pages_by_bound() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        for (pages, n_q, k, eligible) in [
            (1, 1, 1, 1),
            (7, 3, 2, 7),
            (64, 3, 8, 64),
            (300, 24, 16, 290),
            (513, 6, 31, 400),
            (1000, 1, 50, 1000),
        ] {
            let hd = 16;
            let idx = random_index(&mut seed, hd, pages, 4);
            let q: Vec<f32> = (0..n_q * hd).map(|_| rng(&mut seed) * 2.0).collect();
            let qs = Queries { q: &q, hd, scale: 0.25 };
            let exclude = if pages > 10 { vec![3, 5] } else { vec![] };
            let (tree, scored) = top_pages_by_bound(&idx, qs, eligible, k, &exclude);
            let flat = top_pages_by_bound_flat(&idx, qs, eligible, k, &exclude);
            assert_eq!(tree, flat, "pages {pages}, queries {n_q}, k {k}");
            assert!(tree.iter().all(|&p| p < eligible && !exclude.contains(&p)));
            assert!(scored > 0);
        }
    }

    #[test]
    fn descent_scores_few_nodes_when_a_few_pages_stand_out() {
        // 4096 pages of keys near -q, a few pages near +q: the tree should find them by scoring
        // about k * depth * BRANCHING nodes, not every page.
        let (hd, pages, per_page) = (16, 4096, 4);
        let mut seed = 99u64;
        let q: Vec<f32> = (0..hd).map(|d| if d % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let needles = [17, 1000, 3999];
        let mut idx = HeadIndex::new(hd);
        for p in 0..pages {
            let sign = if needles.contains(&p) { 1.0 } else { -1.0 };
            for _ in 0..per_page {
                let k: Vec<f32> = q.iter().map(|x| sign * x + 0.1 * rng(&mut seed)).collect();
                idx.add_key(&k);
            }
            idx.finish_page();
        }
        let qs = Queries { q: &q, hd, scale: 1.0 };
        let (mut got, scored) = top_pages_by_bound(&idx, qs, pages, 3, &[]);
        got.sort_unstable();
        assert_eq!(got, needles);
        assert!(scored < 3 * 5 * BRANCHING, "scored {scored} nodes for {pages} pages");
    }

    #[test]
    fn dilated_grid_doubles_its_stride_per_span() {
        assert_eq!(dilated_positions(4, 100, 8, 6), vec![84, 88, 92, 94, 96, 98]);
        // Not below `from`, and stops when the history runs out.
        assert_eq!(dilated_positions(4, 10, 8, 100), vec![4, 6, 8]);
        let p = dilated_positions(0, 10_000, 64, 64);
        assert_eq!(p.len(), 64);
        assert!(p.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn merge_unions_ranges() {
        assert_eq!(merge(vec![10..20, 0..4, 2..6, 20..22, 30..30]), vec![0..6, 10..22]);
    }
}
