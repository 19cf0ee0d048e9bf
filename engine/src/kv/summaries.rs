//! Always-resident page summaries and the tree over them, per layer and KV head.
//!
//! Level 0 holds one node per completed page, level l > 0 one node per `BRANCHING` nodes of
//! level l-1, up to a single root. Every node keeps, for the keys under it:
//! - `mid` and `half`: the centre and half-width of their elementwise range, so every key k has
//!   |k - mid| <= half. Quest's bound on q.k for any query is then
//!   max_k q.k <= sum_d max(q_d lo_d, q_d hi_d) = q.mid + |q|.half,
//!   two dot products, so the SIMD attention-score kernel computes it. A parent's range covers
//!   its children's, so a node's bound is never below any page's under it.
//! - `mean`: their mean key (the mean of its pages' means; every page holds P keys).
//!
//! `select` descends this tree coarse to fine. Summaries are taken from the keys as stored
//! (after f16/q8_0 rounding), so the bound holds for the keys attention will actually read.
//!
//! Nodes are stored in f16: at 16-token pages the summaries are about a tenth of the f32 K/V,
//! and they stay resident at any length. `mid` is rounded to nearest and `half` then rounded up
//! from the rounded centre, so the stored range still covers every key (up to f16's largest
//! value, 65504, far above any key seen). Scoring widens the rows it reads to f32.

use half::f16;

/// Children per tree node.
pub const BRANCHING: usize = 8;

/// Which summary of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Mid,
    Half,
    Mean,
}

/// One level of the tree: mid, half and mean of its nodes, in f16. Nodes are stored in groups
/// of `BRANCHING` siblings, each group dimension-major ((hd, BRANCHING): element d of its j-th
/// node at `d * BRANCHING + j`). The descent scores whole sibling groups, and this is the
/// panel layout the many-query score kernel reads, so scoring widens a group without
/// transposing it.
#[derive(Clone, Debug, Default)]
pub struct Level {
    n: usize,
    mid: Vec<f16>,
    half: Vec<f16>,
    mean: Vec<f16>,
}

impl Level {
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    fn part(&self, part: Part) -> &[f16] {
        match part {
            Part::Mid => &self.mid,
            Part::Half => &self.half,
            Part::Mean => &self.mean,
        }
    }

    /// The `part` rows of sibling group `g` (nodes g * BRANCHING..): (hd, BRANCHING),
    /// dimension-major; slots past the level's last node hold zeros.
    pub fn group(&self, part: Part, g: usize, hd: usize) -> &[f16] {
        let size = hd * BRANCHING;
        &self.part(part)[g * size..(g + 1) * size]
    }

    /// Element d of node `node`'s `part`.
    pub fn get(&self, part: Part, node: usize, d: usize, hd: usize) -> f16 {
        self.part(part)[slot(node, d, hd)]
    }

    /// One node's `part` row widened to f32 (hd,).
    pub fn row_f32(&self, part: Part, node: usize, hd: usize) -> Vec<f32> {
        (0..hd).map(|d| self.get(part, node, d, hd).to_f32()).collect()
    }

    fn bytes(&self) -> usize {
        2 * (self.mid.len() + self.half.len() + self.mean.len())
    }

    /// Writes node `node` (appending it if it is new) from a key range lo..=hi and a mean.
    fn set(&mut self, node: usize, lo: &[f32], hi: &[f32], mean: &[f32]) {
        let hd = lo.len();
        if node == self.n {
            self.n += 1;
            let len = self.n.div_ceil(BRANCHING) * BRANCHING * hd;
            for v in [&mut self.mid, &mut self.half, &mut self.mean] {
                v.resize(len, f16::ZERO);
            }
        }
        for d in 0..hd {
            let at = slot(node, d, hd);
            let (l, u) = (lo[d], hi[d]);
            let m = f16::from_f32((0.5 * (l + u)).clamp(-f16::MAX.to_f32(), f16::MAX.to_f32()));
            let c = m.to_f32();
            self.mid[at] = m;
            // Both sides from the rounded centre, rounded up, so neither end is left uncovered.
            self.half[at] = round_up((u - c).max(c - l));
            self.mean[at] = f16::from_f32(mean[d]);
        }
    }
}

/// Where element d of node `node` lives in a level's part.
fn slot(node: usize, d: usize, hd: usize) -> usize {
    (node / BRANCHING * hd + d) * BRANCHING + node % BRANCHING
}

/// The smallest f16 >= x (x >= 0), at most f16::MAX.
fn round_up(x: f32) -> f16 {
    let h = f16::from_f32(x.min(f16::MAX.to_f32()));
    if h.to_f32() < x && h < f16::MAX {
        f16::from_bits(h.to_bits() + 1)
    } else {
        h
    }
}

/// The index of one KV head of one layer.
#[derive(Clone, Debug, Default)]
pub struct HeadIndex {
    /// levels[0]: pages; levels.last(): a single root once there is more than one page.
    pub levels: Vec<Level>,
    /// The page being filled: running min, max, sum (hd,) and its key count.
    part_min: Vec<f32>,
    part_max: Vec<f32>,
    part_sum: Vec<f32>,
    part_n: usize,
}

impl HeadIndex {
    pub fn new(hd: usize) -> HeadIndex {
        HeadIndex {
            levels: vec![Level::default()],
            part_min: vec![f32::INFINITY; hd],
            part_max: vec![f32::NEG_INFINITY; hd],
            part_sum: vec![0.0; hd],
            part_n: 0,
        }
    }

    pub fn hd(&self) -> usize {
        self.part_sum.len()
    }

    pub fn n_pages(&self) -> usize {
        self.levels[0].len()
    }

    pub fn clear(&mut self) {
        *self = HeadIndex::new(self.hd());
    }

    /// Bytes held: the f16 levels and the f32 running sums of the page being filled.
    pub fn bytes(&self) -> usize {
        self.levels.iter().map(Level::bytes).sum::<usize>() + 4 * 3 * self.part_sum.len()
    }

    /// Adds one stored key (hd,) to the page being filled.
    pub fn add_key(&mut self, k: &[f32]) {
        for (((lo, hi), s), &x) in
            self.part_min.iter_mut().zip(&mut self.part_max).zip(&mut self.part_sum).zip(k)
        {
            *lo = lo.min(x);
            *hi = hi.max(x);
            *s += x;
        }
        self.part_n += 1;
    }

    /// Closes the page being filled: its summary joins level 0 and every ancestor is rebuilt
    /// from its children (rebuilt, not merged, so rounding cannot accumulate over many pages).
    pub fn finish_page(&mut self) {
        let hd = self.hd();
        let inv = 1.0 / self.part_n.max(1) as f32;
        let mean: Vec<f32> = self.part_sum.iter().map(|s| s * inv).collect();
        let page = self.n_pages();
        self.levels[0].set(page, &self.part_min, &self.part_max, &mean);
        let (mut lo, mut hi, mut sum) = (vec![0.0f32; hd], vec![0.0f32; hd], vec![0.0f32; hd]);
        let mut l = 1;
        loop {
            let below = l - 1;
            let n_below = self.levels[below].len();
            if n_below <= 1 {
                // A single node is the root: drop any stale level above it.
                self.levels.truncate(l);
                break;
            }
            if l == self.levels.len() {
                self.levels.push(Level::default());
            }
            let node = page / BRANCHING.pow(l as u32); // the ancestor of `page` at level l
            let children = node * BRANCHING..((node + 1) * BRANCHING).min(n_below);
            lo.fill(f32::INFINITY);
            hi.fill(f32::NEG_INFINITY);
            sum.fill(0.0);
            let mut weight = 0.0f32;
            let span = BRANCHING.pow(below as u32); // pages under a full child
            for c in children {
                let child = &self.levels[below];
                // Pages under child c (the last child of the last node may be partial).
                let w = span.min(page + 1 - c * span) as f32;
                for d in 0..hd {
                    let (m, h) =
                        (child.get(Part::Mid, c, d, hd).to_f32(), child.get(Part::Half, c, d, hd).to_f32());
                    lo[d] = lo[d].min(m - h);
                    hi[d] = hi[d].max(m + h);
                    sum[d] += w * child.get(Part::Mean, c, d, hd).to_f32();
                }
                weight += w;
            }
            let inv = 1.0 / weight;
            sum.iter_mut().for_each(|s| *s *= inv);
            self.levels[l].set(node, &lo, &hi, &sum);
            l += 1;
        }
        self.part_min.fill(f32::INFINITY);
        self.part_max.fill(f32::NEG_INFINITY);
        self.part_sum.fill(0.0);
        self.part_n = 0;
    }
}

/// Quest's upper bound of q.k over the keys a node summarizes: q.mid + |q|.half.
pub fn bound(q: &[f32], mid: &[f32], half: &[f32]) -> f32 {
    q.iter().zip(mid.iter().zip(half)).map(|(&q, (&m, &h))| q * m + q.abs() * h).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift in [-1, 1).
    fn rng(seed: &mut u64) -> f32 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        (*seed >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    #[test]
    fn the_bound_never_underestimates_q_dot_k_on_random_pages() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for trial in 0..200 {
            let hd = [1, 3, 16, 64][trial % 4];
            let n = 1 + trial % 32;
            // Keys with per-dimension offsets and scales, as RoPE'd keys have.
            let keys: Vec<f32> =
                (0..n * hd).map(|i| rng(&mut seed) * (1 + i % 5) as f32 + (i % 3) as f32).collect();
            let mut idx = HeadIndex::new(hd);
            keys.chunks_exact(hd).for_each(|k| idx.add_key(k));
            idx.finish_page();
            let (mid, half) =
                (idx.levels[0].row_f32(Part::Mid, 0, hd), idx.levels[0].row_f32(Part::Half, 0, hd));
            for _ in 0..20 {
                let q: Vec<f32> = (0..hd).map(|_| rng(&mut seed) * 3.0).collect();
                let ub = bound(&q, &mid, &half);
                for k in keys.chunks_exact(hd) {
                    let dot: f32 = q.iter().zip(k).map(|(a, b)| a * b).sum();
                    assert!(ub >= dot - 1e-4 * (1.0 + dot.abs()), "trial {trial}: bound {ub} < q.k {dot}");
                }
            }
        }
    }

    #[test]
    fn every_node_covers_its_pages_means_average_them_and_the_top_is_one_root() {
        let hd = 4;
        let mut seed = 7u64;
        let mut idx = HeadIndex::new(hd);
        for n in 1..=(BRANCHING * BRANCHING * 2 + 5) {
            for _ in 0..3 {
                let k: Vec<f32> = (0..hd).map(|_| rng(&mut seed) * 10.0 + 3.0).collect();
                idx.add_key(&k);
            }
            idx.finish_page();
            assert_eq!(idx.n_pages(), n);
            assert_eq!(idx.levels.last().unwrap().len(), 1, "{n} pages: more than one root");
        }
        let pages = idx.n_pages();
        let at = |l: usize, part: Part, node: usize, d: usize| idx.levels[l].row_f32(part, node, hd)[d];
        let page_lo = |p: usize, d: usize| at(0, Part::Mid, p, d) - at(0, Part::Half, p, d);
        let page_hi = |p: usize, d: usize| at(0, Part::Mid, p, d) + at(0, Part::Half, p, d);
        let mut span = 1;
        for (l, level) in idx.levels.iter().enumerate() {
            for node in 0..level.len() {
                let under = node * span..((node + 1) * span).min(pages);
                for d in 0..hd {
                    let (m, h) = (at(l, Part::Mid, node, d), at(l, Part::Half, node, d));
                    for p in under.clone() {
                        // Ranges are rounded outwards (f32 sums of f16 values: exact here).
                        assert!(
                            m - h <= page_lo(p, d) + 1e-5 && m + h >= page_hi(p, d) - 1e-5,
                            "node {node}"
                        );
                    }
                    let avg: f32 =
                        under.clone().map(|p| at(0, Part::Mean, p, d)).sum::<f32>() / under.len() as f32;
                    // Means of values up to 13 rounded to f16 (ulp 2^-7 there) at each level.
                    assert!((at(l, Part::Mean, node, d) - avg).abs() < 0.02, "node mean {node}");
                }
            }
            span *= BRANCHING;
        }
    }
}
