//! Many queries against keys laid out in panels: the product the foveated cache's page
//! selection runs on (24 query rows of a prompt chunk against hundreds of tree nodes).
//!
//! Row-major keys need a horizontal sum per (query, key) pair, which costs as much as the
//! multiplies at a 64-wide head. A panel holds 16 keys dimension-major, (k, 16): element d of
//! its key j at `d * 16 + j`. Then one vector of 16 lanes is 16 keys, each dimension is one
//! fused multiply-add per query, and nothing is reduced across lanes. Each dot is the chain
//! acc = fma(q[d], key[d], acc) for d = 0, 1, ... from acc = 0, which every ISA performs in
//! the same order, so all tables give the same bits.

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
