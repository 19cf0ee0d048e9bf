//! Always-resident page summaries and the tree over them, per layer and KV head.
//!
//! Level 0 holds one entry per completed page: the elementwise min and max of its keys (Quest's
//! bound: for any query q, q.k <= sum_d max(q_d min_d, q_d max_d) for every key k of the page)
//! and its mean key. Level l > 0 holds one node per `BRANCHING` nodes of level l-1 with the
//! elementwise min/max of its children, so a node's bound is never below any page's under it;
//! that is what lets `select` descend best-first from the top instead of scoring every page.
//! Summaries are taken from the keys as stored (after f16/q8_0 rounding), so the bound holds for
//! the keys attention will actually read.

/// Children per tree node.
pub const BRANCHING: usize = 8;

/// One level of the tree: min and max (n_nodes, hd).
#[derive(Clone, Debug, Default)]
pub struct Level {
    pub min: Vec<f32>,
    pub max: Vec<f32>,
}

impl Level {
    pub fn len(&self, hd: usize) -> usize {
        self.min.len() / hd.max(1)
    }

    fn push(&mut self, min: &[f32], max: &[f32]) {
        self.min.extend_from_slice(min);
        self.max.extend_from_slice(max);
    }

    fn merge(&mut self, node: usize, min: &[f32], max: &[f32]) {
        let hd = min.len();
        for (a, b) in self.min[node * hd..(node + 1) * hd].iter_mut().zip(min) {
            *a = a.min(*b);
        }
        for (a, b) in self.max[node * hd..(node + 1) * hd].iter_mut().zip(max) {
            *a = a.max(*b);
        }
    }
}

/// The index of one KV head of one layer.
#[derive(Clone, Debug, Default)]
pub struct HeadIndex {
    /// levels[0]: pages; levels.last(): a single root once there is more than one page.
    pub levels: Vec<Level>,
    /// mean (n_pages, hd): each page's mean key.
    pub mean: Vec<f32>,
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
            mean: Vec::new(),
            part_min: vec![f32::INFINITY; hd],
            part_max: vec![f32::NEG_INFINITY; hd],
            part_sum: vec![0.0; hd],
            part_n: 0,
        }
    }

    pub fn n_pages(&self, hd: usize) -> usize {
        self.levels[0].len(hd)
    }

    pub fn clear(&mut self) {
        let hd = self.part_sum.len();
        *self = HeadIndex::new(hd);
    }

    /// Bytes held (all f32).
    pub fn bytes(&self) -> usize {
        let levels: usize = self.levels.iter().map(|l| l.min.len() + l.max.len()).sum();
        4 * (levels + self.mean.len() + 3 * self.part_sum.len())
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

    /// Closes the page being filled: its summary joins level 0 and every ancestor is updated.
    pub fn finish_page(&mut self) {
        let hd = self.part_sum.len();
        let inv = 1.0 / self.part_n.max(1) as f32;
        self.mean.extend(self.part_sum.iter().map(|s| s * inv));
        let (min, max) = (std::mem::take(&mut self.part_min), std::mem::take(&mut self.part_max));
        let page = self.levels[0].len(hd);
        self.levels[0].push(&min, &max);
        let mut span = 1;
        for l in 1..self.levels.len() {
            span *= BRANCHING;
            let node = page / span;
            if node == self.levels[l].len(hd) {
                self.levels[l].push(&min, &max);
            } else {
                self.levels[l].merge(node, &min, &max);
            }
        }
        // A top level with several nodes gets a parent covering them all.
        let top = self.levels.len() - 1;
        if self.levels[top].len(hd) > 1 {
            let mut root = Level::default();
            let (tmin, tmax) = (&self.levels[top].min, &self.levels[top].max);
            root.push(&tmin[..hd], &tmax[..hd]);
            for n in 1..self.levels[top].len(hd) {
                root.merge(0, &tmin[n * hd..(n + 1) * hd], &tmax[n * hd..(n + 1) * hd]);
            }
            self.levels.push(root);
        }
        self.part_min = vec![f32::INFINITY; hd];
        self.part_max = vec![f32::NEG_INFINITY; hd];
        self.part_sum.iter_mut().for_each(|s| *s = 0.0);
        self.part_n = 0;
    }
}

/// Quest's upper bound of q.k over the keys summarized by min/max (hd,).
pub fn bound(q: &[f32], min: &[f32], max: &[f32]) -> f32 {
    q.iter().zip(min.iter().zip(max)).map(|(&q, (&lo, &hi))| (q * lo).max(q * hi)).sum()
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
            let (min, max) = (&idx.levels[0].min, &idx.levels[0].max);
            for _ in 0..20 {
                let q: Vec<f32> = (0..hd).map(|_| rng(&mut seed) * 3.0).collect();
                let ub = bound(&q, min, max);
                for k in keys.chunks_exact(hd) {
                    let dot: f32 = q.iter().zip(k).map(|(a, b)| a * b).sum();
                    assert!(ub >= dot - 1e-4 * (1.0 + dot.abs()), "trial {trial}: bound {ub} < q.k {dot}");
                }
            }
        }
    }

    #[test]
    fn every_node_bounds_its_pages_and_the_top_is_one_root() {
        let hd = 4;
        let mut seed = 7u64;
        let mut idx = HeadIndex::new(hd);
        for _ in 0..(BRANCHING * BRANCHING + 5) {
            for _ in 0..3 {
                let k: Vec<f32> = (0..hd).map(|_| rng(&mut seed)).collect();
                idx.add_key(&k);
            }
            idx.finish_page();
        }
        assert_eq!(idx.levels.last().unwrap().len(hd), 1);
        let pages = idx.n_pages(hd);
        let mut span = 1;
        for level in &idx.levels {
            for p in 0..pages {
                let n = p / span;
                for d in 0..hd {
                    assert!(level.min[n * hd + d] <= idx.levels[0].min[p * hd + d]);
                    assert!(level.max[n * hd + d] >= idx.levels[0].max[p * hd + d]);
                }
            }
            span *= BRANCHING;
        }
    }
}
