//! Choosing the older tokens a chunk of queries attends to, beyond sinks and the recent window.
//!
//! Fovea ranks pages two ways for a chunk of queries Q (n_q, hd) (the chunk's tokens times the
//! KV head's GQA group), and takes some pages by each:
//! - **bound**: f(node) = sum_q exp(s (ub_q(node) - c_q)), ub_q = Quest's bound q.mid + |q|.half,
//!   c_q = ub_q(root): a smooth max over the queries of the best q.k the node could hold. It
//!   keeps needles: one key that matches one query lifts its page.
//! - **mean**: sum_q softmax_q(s q.mean) over the candidate nodes: the attention mass the nodes'
//!   mean keys would draw. It ranks pages best for perplexity.
//!
//! Both are computed with the attention-score kernel (SIMD), over blocks of sibling nodes.
//! Each ranking has its own descent, a beam search from the root: at each level the candidates
//! are the children of the kept nodes; when there are more than the beam holds, they are scored
//! and the best `beam` kept. Scoring cost per selection is then about levels x beam x BRANCHING
//! nodes per ranking, growing with the log of the context; with an unlimited beam the descents
//! score every page and equal the flat scan (`--kv-score union-flat`), which is how what the
//! beam loses is measured. The two descents are independent, so a decoded token runs them on
//! both threads (one descent that kept the union of both rankings' beams scored every candidate
//! both ways and, with 3 KV heads on 2 threads, left a thread waiting on the third selection).

use std::ops::Range;

use fovea_kernels::ops::{SoftmaxStats, PANEL};
use half::f16;

use super::summaries::{bound, HeadIndex, Level, Part, BRANCHING};

/// The attention score kernel: (q (hd,), keys (n, hd), scale, scores (n,)).
pub type ScoreFn<'a> = &'a dyn Fn(&[f32], &[f32], f32, &mut [f32]);
/// The many-query kernel over a panel of two f16 sibling groups read in place: (q (m, k),
/// lo row blocks, hi row blocks, out, at, width), as `ops::sibling_dots`.
pub type SiblingFn<'a> = &'a dyn Fn(&[f32], &[&[f16]], &[&[f16]], &mut [f32], usize, usize);
/// The softmax kernel, in place, returning the row's max and exp sum.
pub type SoftmaxFn<'a> = &'a dyn Fn(&mut [f32]) -> SoftmaxStats;

/// The kernels selection runs on: scores of the f16 summaries (many queries against panels of
/// sibling groups read in place; row dots for the exact oracle), and their exponentials through the SIMD
/// softmax (scalar `exp` per candidate and query was 11% of a fill at 180K tokens).
#[derive(Clone, Copy)]
pub struct Kernels<'a> {
    pub dots: ScoreFn<'a>,
    pub siblings: SiblingFn<'a>,
    pub softmax: SoftmaxFn<'a>,
}

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

/// How many pages to take by each ranking, and how wide the beam is (nodes kept per level and
/// ranking, as a multiple of the pages wanted by it; `usize::MAX`: score every page).
#[derive(Clone, Copy, Debug)]
pub struct Want {
    pub by_bound: usize,
    pub by_mean: usize,
    pub beam_factor: usize,
}

/// Nodes kept per level by a ranking that wants `k` pages.
fn beam_width(k: usize, factor: usize) -> usize {
    if k == 0 {
        0
    } else {
        k.saturating_mul(factor).max(BRANCHING)
    }
}

/// One of the two rankings, each found by its own descent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ranking {
    Bound,
    Mean,
}

impl Want {
    /// The descents a selection runs: (ranking, pages it returns, nodes its beam keeps per
    /// level). The mean descent returns enough pages to fill in for those the bound took too.
    pub fn descents(self) -> impl Iterator<Item = (Ranking, usize, usize)> {
        let k = self.by_bound + self.by_mean;
        [
            (Ranking::Bound, self.by_bound, beam_width(self.by_bound, self.beam_factor)),
            (Ranking::Mean, k, beam_width(self.by_mean, self.beam_factor)),
        ]
        .into_iter()
        .filter(move |&(r, _, _)| if r == Ranking::Bound { self.by_bound > 0 } else { self.by_mean > 0 })
    }
}

/// The chosen pages (bound picks first, then mean picks; distinct, all < n_eligible) and the
/// number of nodes scored: each ranking's descent ([`descend`]), then [`merge_picks`]. Decoding
/// runs the two descents as separate items, on both threads.
pub fn select_pages(
    index: &HeadIndex,
    qs: Queries<'_>,
    n_eligible: usize,
    want: Want,
    kernels: Kernels<'_>,
) -> (Vec<usize>, usize) {
    let (mut bound, mut mean, mut scored) = (Vec::new(), Vec::new(), 0);
    for (ranking, k, beam) in want.descents() {
        let (pages, nodes) = descend(index, qs, n_eligible, ranking, k, beam, kernels);
        scored += nodes;
        match ranking {
            Ranking::Bound => bound = pages,
            Ranking::Mean => mean = pages,
        }
    }
    (merge_picks(bound, &mean, want.by_bound + want.by_mean), scored)
}

/// The bound's picks, then the mean's (best first) that the bound did not take, k in all.
pub fn merge_picks(mut bound: Vec<usize>, mean: &[usize], k: usize) -> Vec<usize> {
    bound.truncate(k);
    let taken = bound.len();
    for &p in mean {
        if bound.len() >= k {
            break;
        }
        if !bound[..taken].contains(&p) {
            bound.push(p);
        }
    }
    bound
}

/// One ranking's beam descent from the root: at each level the candidates are the children of
/// the kept nodes; when there are more than `beam`, they are scored and the best `beam` kept.
/// Returns the `k` best eligible pages by the ranking (best first) and the nodes scored.
pub fn descend(
    index: &HeadIndex,
    qs: Queries<'_>,
    n_eligible: usize,
    ranking: Ranking,
    k: usize,
    beam: usize,
    kernels: Kernels<'_>,
) -> (Vec<usize>, usize) {
    let n_eligible = n_eligible.min(index.n_pages());
    if k == 0 || n_eligible == 0 {
        return (Vec::new(), 0);
    }
    let by_bound = ranking == Ranking::Bound;
    let mut sc = Scorer::new(index, qs, by_bound, !by_bound, kernels);
    let top = index.levels.len() - 1;
    // Eligible nodes of level l: those whose first page is eligible.
    let eligible = |l: usize| n_eligible.div_ceil(BRANCHING.pow(l as u32));
    // Candidates as sibling groups (node ranges inside one group of BRANCHING); the top level
    // is the single root.
    debug_assert_eq!(index.levels[top].len(), 1, "the tree's top level is one root");
    let mut cands: Vec<Range<usize>> = std::iter::once(0..eligible(top)).collect();
    let mut scored = 0;
    for l in (0..=top).rev() {
        let n_cands: usize = cands.iter().map(|r| r.len()).sum();
        if l == 0 {
            scored += n_cands;
            sc.score(&index.levels[0], &cands);
            return (sc.top(k.min(n_cands), &[], by_bound), scored);
        }
        let kept: Vec<usize> = if n_cands <= beam {
            cands.iter().flat_map(|r| r.clone()).collect()
        } else {
            scored += n_cands;
            sc.score(&index.levels[l], &cands);
            let mut kept = sc.top(beam, &[], by_bound);
            kept.sort_unstable();
            kept
        };
        // A kept node's children are one sibling group, non-empty: its first page is eligible.
        let below = eligible(l - 1);
        cands = kept.iter().map(|&n| n * BRANCHING..((n + 1) * BRANCHING).min(below)).collect();
    }
    (Vec::new(), scored)
}

/// The growable buffers of a [`Scorer`], kept per thread from one descent to the next: a
/// descent's few dozen vectors, allocated and freed at every level, cost 3.5 + 1.3 per 100
/// weight-dot samples in malloc's free and allocate paths when decoding at 128K (their chunks
/// sit among gigabytes of pages, so freeing one touches cold neighbours).
#[derive(Default)]
struct ScorerBuffers {
    /// qb (n_q, 2 hd): each query row followed by its absolute values, so one dot against a
    /// node's mid followed by its half is Quest's bound q.mid + |q|.half.
    qb: Vec<f32>,
    /// c (n_q,): each row's bound at the root, so exp() of the bound score stays <= 1.
    c: Vec<f32>,
    /// The valid candidates of the last `score` (ascending nodes), their panel slots, and
    /// their scores (n_cand,).
    cands: Vec<usize>,
    slots: Vec<usize>,
    bound: Vec<f32>,
    mean: Vec<f32>,
    /// Every query row's dots with every slot (n_q, 16 n_panels), then its weights.
    out_b: Vec<f32>,
    out_m: Vec<f32>,
    /// Per-slot sums over the query rows (16 n_panels,).
    sum_b: Vec<f32>,
    sum_m: Vec<f32>,
    /// Whether each slot holds no candidate, and those slots.
    free_slot: Vec<bool>,
    masked: Vec<usize>,
}

thread_local! {
    static SCORER_BUFFERS: std::cell::Cell<ScorerBuffers> = std::cell::Cell::default();
}

/// Scores candidate nodes of one level for a chunk's queries, with the many-query panel
/// kernel: two sibling groups (8 nodes each, stored dimension-major in f16) make one 16-key
/// panel, read in place (no widened copy), and each panel scores all query rows in one call.
struct Scorer<'a> {
    qs: Queries<'a>,
    kernels: Kernels<'a>,
    want_bound: bool,
    want_mean: bool,
    b: ScorerBuffers,
}

impl Drop for Scorer<'_> {
    fn drop(&mut self) {
        SCORER_BUFFERS.set(std::mem::take(&mut self.b));
    }
}

impl<'a> Scorer<'a> {
    fn new(
        index: &HeadIndex,
        qs: Queries<'a>,
        want_bound: bool,
        want_mean: bool,
        kernels: Kernels<'a>,
    ) -> Self {
        let hd = qs.hd;
        let root = &index.levels[index.levels.len() - 1];
        let (mid, half) = (root.row_f32(Part::Mid, 0, hd), root.row_f32(Part::Half, 0, hd));
        // The buffers the last descent on this thread left (their contents are rewritten).
        let mut b = SCORER_BUFFERS.take();
        b.c.clear();
        b.c.extend(qs.rows().map(|q| bound(q, &mid, &half)));
        b.qb.clear();
        b.qb.extend(qs.rows().flat_map(|q| q.iter().copied().chain(q.iter().map(|x| x.abs()))));
        Scorer { qs, kernels, want_bound, want_mean, b }
    }

    /// Scores the nodes of `groups` (ascending sibling groups of `level`).
    fn score(&mut self, level: &Level, groups: &[Range<usize>]) {
        let (hd, n_q) = (self.qs.hd, self.qs.q.len() / self.qs.hd.max(1));
        let n_panels = groups.len().div_ceil(2);
        let width = n_panels * PANEL;
        self.b.cands.clear();
        self.b.slots.clear();
        for (i, r) in groups.iter().enumerate() {
            debug_assert!(r.start / BRANCHING == (r.end - 1) / BRANCHING, "{r:?} spans two groups");
            // Slot of node n: group i's lanes start at 8 i, the node's place in its group after.
            self.b.cands.extend(r.clone());
            self.b.slots.extend(r.clone().map(|n| i * BRANCHING + n % BRANCHING));
        }
        // Slots that hold no candidate weigh nothing in either ranking's softmax.
        self.b.free_slot.clear();
        self.b.free_slot.resize(width, true);
        self.b.slots.iter().for_each(|&s| self.b.free_slot[s] = false);
        let mut masked = std::mem::take(&mut self.b.masked);
        masked.clear();
        masked.extend((0..width).filter(|&s| self.b.free_slot[s]));
        let (siblings, softmax, scale) = (self.kernels.siblings, self.kernels.softmax, self.qs.scale);
        // Panel p is groups 2p | 2p + 1 read in place (lanes 0..8 | 8..16); the bound's rows are
        // a group's mid rows, then its half rows.
        self.b.out_b.resize(if self.want_bound { n_q * width } else { 0 }, 0.0);
        self.b.out_m.resize(if self.want_mean { n_q * width } else { 0 }, 0.0);
        // Every candidate group's rows requested at once: scattered 1 KiB groups, one after
        // the other, would each wait out a cache miss.
        for r in groups {
            for (part, wanted) in
                [(Part::Mid, self.want_bound), (Part::Half, self.want_bound), (Part::Mean, self.want_mean)]
            {
                if wanted {
                    fovea_kernels::ops::prefetch(level.group(part, r.start / BRANCHING, hd));
                }
            }
        }
        for (p, pair) in groups.chunks(2).enumerate() {
            let of = |r: &Range<usize>, part: Part| level.group(part, r.start / BRANCHING, hd);
            // The second group of the last panel may be missing: its lanes then read zeros.
            let (lo, hi) = (&pair[0], pair.get(1));
            if self.want_bound {
                let hi = hi.map(|r| [of(r, Part::Mid), of(r, Part::Half)]);
                let lo = [of(lo, Part::Mid), of(lo, Part::Half)];
                siblings(
                    &self.b.qb,
                    &lo,
                    hi.as_ref().map_or(&[], |h| &h[..]),
                    &mut self.b.out_b,
                    p * PANEL,
                    width,
                );
            }
            if self.want_mean {
                let hi = hi.map(|r| [of(r, Part::Mean)]);
                let lo = [of(lo, Part::Mean)];
                siblings(
                    self.qs.q,
                    &lo,
                    hi.as_ref().map_or(&[], |h| &h[..]),
                    &mut self.b.out_m,
                    p * PANEL,
                    width,
                );
            }
        }
        if self.want_bound {
            self.b.sum_b.clear();
            self.b.sum_b.resize(width, 0.0);
            for (row, &c) in self.b.out_b.chunks_exact_mut(width).zip(&self.b.c) {
                row.iter_mut().for_each(|x| *x = scale * (*x - c));
                masked.iter().for_each(|&s| row[s] = f32::NEG_INFINITY);
                // exp(t) = softmax(t) * sum * exp(max): one vector pass and one exp per row.
                let stats = softmax(row);
                let k = (stats.sum * f64::from(stats.max).exp()) as f32;
                for (f, &w) in self.b.sum_b.iter_mut().zip(row.iter()) {
                    *f += w * k;
                }
            }
        }
        if self.want_mean {
            self.b.sum_m.clear();
            self.b.sum_m.resize(width, 0.0);
            for row in self.b.out_m.chunks_exact_mut(width) {
                row.iter_mut().for_each(|x| *x *= scale);
                masked.iter().for_each(|&s| row[s] = f32::NEG_INFINITY);
                softmax(row);
                for (m, &w) in self.b.sum_m.iter_mut().zip(row.iter()) {
                    *m += w;
                }
            }
        }
        self.b.masked = masked;
        let (sum_b, sum_m) = (&self.b.sum_b, &self.b.sum_m);
        self.b.bound.clear();
        self.b.mean.clear();
        if self.want_bound {
            self.b.bound.extend(self.b.slots.iter().map(|&s| sum_b[s]));
        } else {
            self.b.bound.resize(self.b.slots.len(), 0.0);
        }
        if self.want_mean {
            self.b.mean.extend(self.b.slots.iter().map(|&s| sum_m[s]));
        } else {
            self.b.mean.resize(self.b.slots.len(), 0.0);
        }
    }

    /// The `k` best scored candidates not in `exclude` by bound (or mean), best first (ties:
    /// lower node first).
    fn top(&self, k: usize, exclude: &[usize], by_bound: bool) -> Vec<usize> {
        let scores = if by_bound { &self.b.bound } else { &self.b.mean };
        top_k(&self.b.cands, scores, k, exclude)
    }
}

/// The `k` pages with the most true attention mass: every key of every eligible page is scored.
/// keys (n_pages * page, hd) are the eligible pages' keys in order; `scores` is the attention
/// score kernel (q, keys, scale, out). An oracle for measurements, not an index.
pub fn top_pages_exact(
    qs: Queries<'_>,
    keys: &[f32],
    page: usize,
    k: usize,
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
    let pages: Vec<usize> = (0..n_pages).collect();
    top_k(&pages, &mass, k, &[])
}

/// acc (n,) += softmax(s (n,)).
fn softmax_add(s: &[f32], acc: &mut [f32]) {
    let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = s.iter().map(|&x| (x - max).exp()).sum();
    for (a, &x) in acc.iter_mut().zip(s) {
        *a += (x - max).exp() / sum;
    }
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

/// The ids of the k largest scores (ids[i] has scores[i]) not in `exclude`, largest first (ties:
/// lower id first).
fn top_k(ids: &[usize], scores: &[f32], k: usize, exclude: &[usize]) -> Vec<usize> {
    let mut exclude = exclude.to_vec();
    exclude.sort_unstable();
    let mut idx: Vec<usize> = (0..ids.len()).filter(|&i| exclude.binary_search(&ids[i]).is_err()).collect();
    let by_score = |a: &usize, b: &usize| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b));
    if k < idx.len() {
        idx.select_nth_unstable_by(k, by_score);
        idx.truncate(k);
    }
    idx.sort_by(by_score);
    idx.into_iter().map(|i| ids[i]).collect()
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

    /// The scalar attention-score kernel.
    fn dots(q: &[f32], keys: &[f32], scale: f32, out: &mut [f32]) {
        for (o, k) in out.iter_mut().zip(keys.chunks_exact(q.len())) {
            *o = scale * q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>();
        }
    }

    fn softmax(x: &mut [f32]) -> SoftmaxStats {
        fovea_kernels::ops::softmax_in_place(x)
    }

    fn siblings(q: &[f32], lo: &[&[f16]], hi: &[&[f16]], out: &mut [f32], at: usize, width: usize) {
        fovea_kernels::ops::sibling_dots(q, lo, hi, out, at, width)
    }

    const SCALAR: Kernels<'static> = Kernels { dots: &dots, siblings: &siblings, softmax: &softmax };

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

    /// Every eligible page scored with scalar code: bound picks, then mean picks.
    fn naive(
        index: &HeadIndex,
        qs: Queries<'_>,
        n_eligible: usize,
        by_bound: usize,
        by_mean: usize,
    ) -> Vec<usize> {
        let hd = qs.hd;
        let (pages, root) = (&index.levels[0], index.levels.last().unwrap());
        let n = n_eligible.min(index.n_pages());
        let (mut fb, mut fm) = (vec![0.0f32; n], vec![0.0f32; n]);
        let row = |level: &Level, part: Part, p: usize| level.row_f32(part, p, hd);
        for q in qs.rows() {
            let c = bound(q, &row(root, Part::Mid, 0), &row(root, Part::Half, 0));
            let s: Vec<f32> = (0..n)
                .map(|p| qs.scale * q.iter().zip(&row(pages, Part::Mean, p)).map(|(a, b)| a * b).sum::<f32>())
                .collect();
            let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let z: f32 = s.iter().map(|x| (x - max).exp()).sum();
            for p in 0..n {
                let ub = bound(q, &row(pages, Part::Mid, p), &row(pages, Part::Half, p));
                fb[p] += (qs.scale * (ub - c)).exp();
                fm[p] += (s[p] - max).exp() / z;
            }
        }
        let ids: Vec<usize> = (0..n).collect();
        let mut picked = top_k(&ids, &fb, by_bound, &[]);
        let more = top_k(&ids, &fm, by_mean, &picked);
        picked.extend(more);
        picked
    }

    #[test]
    fn an_unlimited_beam_equals_scoring_every_page() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        for (pages, n_q, by_bound, by_mean, eligible) in [
            (1, 1, 1, 0, 1),
            (7, 3, 2, 2, 7),
            (64, 3, 4, 4, 64),
            (300, 24, 8, 8, 290),
            (513, 6, 16, 15, 400),
            (1000, 1, 0, 50, 1000),
        ] {
            let hd = 16;
            let idx = random_index(&mut seed, hd, pages, 4);
            let q: Vec<f32> = (0..n_q * hd).map(|_| rng(&mut seed) * 2.0).collect();
            let qs = Queries { q: &q, hd, scale: 0.25 };
            let want = Want { by_bound, by_mean, beam_factor: usize::MAX };
            let (got, scored) = select_pages(&idx, qs, eligible, want, SCALAR);
            let expect = naive(&idx, qs, eligible, by_bound, by_mean);
            assert_eq!(got, expect, "pages {pages}, queries {n_q}");
            assert!(scored >= eligible.min(pages));
            let mut distinct = got.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), got.len());
            assert!(got.iter().all(|&p| p < eligible));
        }
    }

    /// 2^15 pages of keys near -q with a few near +q: the beam finds them by bound, and scores
    /// a number of nodes that grows with the log of the pages, not with the pages.
    #[test]
    fn a_narrow_beam_finds_needles_and_its_cost_grows_with_the_log_of_the_pages() {
        let hd = 16;
        let q: Vec<f32> = (0..hd).map(|d| if d % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let qs = Queries { q: &q, hd, scale: 1.0 };
        let want = Want { by_bound: 3, by_mean: 3, beam_factor: 2 };
        let mut cost = Vec::new();
        for pages in [512usize, 4096, 32768] {
            let mut seed = 99u64;
            let needles = [17, pages / 3, pages - 5];
            let mut idx = HeadIndex::new(hd);
            for p in 0..pages {
                let sign = if needles.contains(&p) { 1.0 } else { -1.0 };
                for _ in 0..4 {
                    let k: Vec<f32> = q.iter().map(|x| sign * x + 0.1 * rng(&mut seed)).collect();
                    idx.add_key(&k);
                }
                idx.finish_page();
            }
            let (got, scored) = select_pages(&idx, qs, pages, want, SCALAR);
            let mut by_bound = got[..3].to_vec();
            by_bound.sort_unstable();
            assert_eq!(by_bound, needles, "{pages} pages");
            cost.push(scored);
        }
        // 64x the pages, two more levels: the cost may grow by the levels, not by the pages.
        assert!(cost[2] < 2 * cost[0] + 200, "nodes scored for 512 / 4096 / 32768 pages: {cost:?}");
        assert!(cost[2] < 32768 / 20, "{cost:?}");
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
