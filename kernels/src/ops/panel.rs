//! Many queries against keys laid out in panels: the product the foveated cache's page
//! selection runs on (24 query rows of a prompt chunk against hundreds of tree nodes).
//!
//! Row-major keys need a horizontal sum per (query, key) pair, which costs as much as the
//! multiplies at a 64-wide head. A panel holds 16 keys dimension-major, (k, 16): element d of
//! its key j at `d * 16 + j`. Then one vector of 16 lanes is 16 keys, each dimension is one
//! fused multiply-add per query, and nothing is reduced across lanes. Each dot is the chain
//! acc = fma(q[d], key[d], acc) for d = 0, 1, ... from acc = 0, which every ISA performs in
//! the same order, so all tables give the same bits.

use half::f16;

/// Keys per panel.
pub const PANEL: usize = 16;

/// out (m, n_panels * 16) = q (m, k) against panels (n_panels, k, 16): out[i * 16 n_panels +
/// 16 p + j] = the dot of query i with key j of panel p, as an in-order chain of fused
/// multiply-adds. m = q.len() / k; the shortest of q, panels and out bounds the work.
pub fn panel_dots(q: &[f32], k: usize, panels: &[f32], out: &mut [f32]) {
    let Some((m, n_panels)) = panel_shape(q, k, panels, out) else {
        return;
    };
    let width = n_panels * PANEL;
    for (p, panel) in panels.chunks_exact(k * PANEL).take(n_panels).enumerate() {
        for (i, qi) in q.chunks_exact(k).take(m).enumerate() {
            for j in 0..PANEL {
                let mut acc = 0.0f32;
                for (d, &x) in qi.iter().enumerate() {
                    acc = libm::fmaf(x, panel[d * PANEL + j], acc);
                }
                out[i * width + p * PANEL + j] = acc;
            }
        }
    }
}

/// (queries, panels) that fit in all three slices, None when there is nothing to compute.
pub(crate) fn panel_shape(q: &[f32], k: usize, panels: &[f32], out: &[f32]) -> Option<(usize, usize)> {
    if k == 0 {
        return None;
    }
    let n_panels = panels.len() / (k * PANEL);
    let m = (q.len() / k).min(out.len() / (n_panels * PANEL).max(1));
    (m > 0 && n_panels > 0).then_some((m, n_panels))
}

/// Nodes per sibling group: a panel is two groups side by side.
pub const SIBLINGS: usize = PANEL / 2;

/// out[i * width + at + j] (j < 16) = q_i · key_j for the m = q.len() / k queries q (m, k), over
/// a panel made in place of two sibling groups of tree nodes stored in f16 dimension-major,
/// (rows, 8) with element d of node j at `d * 8 + j`: keys 0..8 are `lo`'s nodes, 8..16 `hi`'s
/// (`hi` empty: zeros). A group's k rows may come in blocks (a level's mid rows, then its half
/// rows), `lo[b]` and `hi[b]` holding the same rows. Each dot is the in-order chain of
/// [`panel_dots`] over the widened (exact) rows, so it gives the bits of widening the groups
/// into a panel first, without the widening and the copy.
pub fn sibling_dots(q: &[f32], lo: &[&[f16]], hi: &[&[f16]], out: &mut [f32], at: usize, width: usize) {
    let Some((k, m)) = sibling_shape(q, lo, hi, out, at, width) else {
        return;
    };
    for i in 0..m {
        let qi = &q[i * k..(i + 1) * k];
        for j in 0..PANEL {
            let (blocks, col) = if j < SIBLINGS { (lo, j) } else { (hi, j - SIBLINGS) };
            let mut acc = 0.0f32;
            let mut d = 0;
            for (b, block) in lo.iter().enumerate() {
                for r in 0..block.len() / SIBLINGS {
                    let key = blocks.get(b).map_or(0.0, |x| x[r * SIBLINGS + col].to_f32());
                    acc = libm::fmaf(qi[d], key, acc);
                    d += 1;
                }
            }
            out[i * width + at + j] = acc;
        }
    }
}

/// (rows k, queries m) of a `sibling_dots` call, None when there is nothing to compute. Panics
/// (as a slice index would) on blocks of unequal sizes or an output too short for the panel.
pub(crate) fn sibling_shape(
    q: &[f32],
    lo: &[&[f16]],
    hi: &[&[f16]],
    out: &[f32],
    at: usize,
    width: usize,
) -> Option<(usize, usize)> {
    let k: usize = lo.iter().map(|b| b.len() / SIBLINGS).sum();
    assert!(
        hi.is_empty() || (hi.len() == lo.len() && hi.iter().zip(lo).all(|(h, l)| h.len() == l.len())),
        "sibling_dots: the two groups' row blocks differ"
    );
    assert!(lo.iter().all(|b| b.len().is_multiple_of(SIBLINGS)), "sibling_dots: a block is not whole rows");
    if k == 0 || q.len() < k {
        return None;
    }
    let m = q.len() / k;
    assert!(
        at + PANEL <= width && out.len() >= (m - 1) * width + at + PANEL,
        "sibling_dots: output too short"
    );
    Some((k, m))
}
