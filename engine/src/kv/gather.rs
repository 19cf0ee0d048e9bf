//! Gathering the chosen entries of one KV head into contiguous f32 rows for the attention
//! kernels, and re-rotating keys whose position is re-numbered.

use std::ops::Range;

use fovea_kernels::ops::{OpKernels, RopeTable};
use half::f16;

use super::paged_store::PagedStore;

/// One chunk's attended entries for one KV head, memory entries first, then the window region.
#[derive(Default)]
pub struct Gathered {
    /// pos (m,): true position of each entry.
    pub pos: Vec<usize>,
    /// keys (m, hd)
    pub keys: Vec<f32>,
    /// values (m, hdv)
    pub values: Vec<f32>,
}

impl Gathered {
    pub fn clear(&mut self) {
        self.pos.clear();
        self.keys.clear();
        self.values.clear();
    }
}

/// out <- the entries at the positions of `ranges` (ascending, disjoint) of KV head `h`.
/// Runs within one f32 page are copied as whole slices, f16 ones widened by `ops` a run at a
/// time; other pages are decoded row by row.
pub fn gather(
    store: &PagedStore,
    ops: &OpKernels,
    layer: usize,
    h: usize,
    ranges: &[Range<usize>],
    out: &mut Gathered,
) {
    let sh = store.shape();
    let (hd, hdv) = (sh.head_dim, sh.head_dim_v);
    out.clear();
    out.pos.extend(ranges.iter().flat_map(|r| r.clone()));
    // As in `gather_f16`: every run requested first.
    for run in ranges.iter().flat_map(|r| store.page_runs(r.clone())) {
        store.prefetch_rows(layer, h, run);
    }
    for run in ranges.iter().flat_map(|r| store.page_runs(r.clone())) {
        if let Some((k, v)) = store.f32_rows(layer, h, run.clone()) {
            out.keys.extend_from_slice(k);
            out.values.extend_from_slice(v);
        } else if let Some((k, v)) = store.f16_rows(layer, h, run.clone()) {
            for (src, dst) in [(k, &mut out.keys), (v, &mut out.values)] {
                let at = dst.len();
                dst.resize(at + src.len(), 0.0);
                ops.f16_to_f32(src, &mut dst[at..]);
            }
        } else {
            let (k0, v0) = (out.keys.len(), out.values.len());
            out.keys.resize(k0 + run.len() * hd, 0.0);
            out.values.resize(v0 + run.len() * hdv, 0.0);
            for (i, pos) in run.enumerate() {
                store.read_key(layer, h, pos, &mut out.keys[k0 + i * hd..k0 + (i + 1) * hd]);
                store.read_value(layer, h, pos, &mut out.values[v0 + i * hdv..v0 + (i + 1) * hdv]);
            }
        }
    }
}

/// Appends the entries at the positions of `ranges` (ascending, disjoint) of KV head `h` as
/// the f16 rows stored, to pos (m,), keys (m, hd) and values (m, hdv); pages must hold f16.
/// A page that is gone reads as zeros, as in [`gather`].
pub fn gather_f16(
    store: &PagedStore,
    layer: usize,
    h: usize,
    ranges: &[Range<usize>],
    pos: &mut Vec<usize>,
    keys: &mut Vec<f16>,
    values: &mut Vec<f16>,
) {
    let sh = store.shape();
    pos.extend(ranges.iter().flat_map(|r| r.clone()));
    // Every run requested before the first is copied: the chosen pages lie scattered over the
    // whole context, and copied one after the other each would wait out its own DRAM miss.
    for run in ranges.iter().flat_map(|r| store.page_runs(r.clone())) {
        store.prefetch_rows(layer, h, run);
    }
    for run in ranges.iter().flat_map(|r| store.page_runs(r.clone())) {
        match store.f16_rows(layer, h, run.clone()) {
            Some((k, v)) => {
                keys.extend_from_slice(k);
                values.extend_from_slice(v);
            }
            None => {
                keys.resize(keys.len() + run.len() * sh.head_dim, f16::ZERO);
                values.resize(values.len() + run.len() * sh.head_dim_v, f16::ZERO);
            }
        }
    }
}

/// Moves key i (stored rotated to pos[i]) to position eff[i] >= pos[i]: RoPE rotations compose,
/// so rotating by the angle of eff[i] - pos[i] gives the key RoPE'd at eff[i].
/// keys (m, hd), pos (m,), eff (m,).
pub fn rerotate(rope: &RopeTable, keys: &mut [f32], hd: usize, pos: &[usize], eff: &[usize]) {
    let half = rope.n_rot() / 2;
    let (mut cos, mut sin) = (vec![0.0f32; half], vec![0.0f32; half]);
    let mut last = None;
    for ((k, &p), &e) in keys.chunks_exact_mut(hd.max(1)).zip(pos).zip(eff) {
        let delta = e.saturating_sub(p);
        if delta == 0 {
            continue;
        }
        if last != Some(delta) {
            rope.turn_angles(delta, &mut cos, &mut sin);
            last = Some(delta);
        }
        // No bit of a re-numbered key has to match ggml: the vectorizable form.
        rope.rotate_unfused(k, &cos, &sin);
    }
}

#[cfg(test)]
mod tests {
    use fovea_kernels::ops::RopeLayout;

    use super::*;

    #[test]
    fn rerotation_equals_rotating_at_the_new_position() {
        for layout in [RopeLayout::Normal, RopeLayout::NeoX] {
            let rope = RopeTable::new(8, 10000.0, 1.0, layout);
            let raw: Vec<f32> = (0..8).map(|i| (i as f32 * 0.7).sin()).collect();
            let at = |p: usize| {
                let (mut c, mut s) = ([0.0; 4], [0.0; 4]);
                rope.angles(p, &mut c, &mut s);
                let mut k = raw.clone();
                rope.rotate(&mut k, &c, &s);
                k
            };
            let mut moved = at(100);
            rerotate(&rope, &mut moved, 8, &[100], &[4000]);
            for (a, b) in moved.iter().zip(at(4000)) {
                assert!((a - b).abs() < 1e-4, "{layout:?}: {a} vs {b}");
            }
        }
    }
}
