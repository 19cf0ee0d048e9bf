//! The window KV mode on the device: which positions each query of a batch attends to on the
//! global layers, decided exactly as the CPU's window mode decides it (`kv::attend`), and
//! written as the attention shader's per-token records (binding 5).
//!
//! The CPU's window mode attends, per query chunk of `select_chunk` tokens (a decoded token is
//! its own chunk), to every position while the chunk ends within the budget, and otherwise to
//! the sinks 0..min(S, wstart) and the positions max(p + 1 - W, wstart)..=p, wstart = p0 + 1 - W
//! for the chunk starting at p0. Past the trained context the sinks are re-numbered to just
//! before the window (their keys turned by the angle of the move). A decoded token reuses the
//! sinks of the last selection (its re-numbering included) for up to `select_chunk - 1`
//! positions, as the CPU keeps its selection in a memo; `Kept` mirrors that memo.

use fovea_kernels::ops::RopeTable;

use crate::kv::attend::{renumbered_position, ChunkView};
use crate::kv::sparse::reusable;
use crate::kv::{KvPlan, KvType};

/// The selection a decoded token may reuse: the CPU memo's state, for the sinks.
#[derive(Clone, Copy, Debug)]
struct Kept {
    /// Position of the last query of the chunk that chose it.
    made_at: usize,
    renumbered: bool,
    wstart: usize,
}

/// The window mode's plan on the device and the state it carries from batch to batch.
pub(crate) struct WindowPlan {
    plan: KvPlan,
    n_ctx_train: usize,
    kept: Option<Kept>,
}

/// Words of the per-token records (lo, n_sink, cs offset, round), before the sinks' cos/sin.
pub(crate) const RECORD_WORDS: usize = 4;

/// No re-rotation of the token's sinks.
const NOT_ROTATED: u32 = u32::MAX;

impl WindowPlan {
    pub(crate) fn new(plan: KvPlan, n_ctx_train: usize) -> WindowPlan {
        WindowPlan { plan, n_ctx_train, kept: None }
    }

    /// How the window mode's pages store K/V (the device stores them the same way).
    pub(crate) fn kv_type(&self) -> KvType {
        self.plan.kv_type
    }

    #[cfg(test)]
    pub(crate) fn plan(&self) -> &KvPlan {
        &self.plan
    }

    /// Rows a global layer's cache needs: the sinks' own rows, then a ring that holds any query
    /// chunk's window region and the batch being stored (W + n_ubatch positions).
    pub(crate) fn rows(&self, n_ubatch: usize) -> (usize, usize) {
        (self.plan.sinks, self.plan.window + n_ubatch)
    }

    /// Words of binding 5 for a batch of up to n tokens.
    pub(crate) fn words(&self, n: usize, n_rot: usize) -> usize {
        RECORD_WORDS * n + n.div_ceil(self.plan.select_chunk.max(1)).max(1) * self.plan.sinks * n_rot
    }

    /// The records for tokens pos0..pos0 + n (`rope` is the global layers' table), updating
    /// the kept selection as the CPU's attention updates its memo.
    pub(crate) fn records(&mut self, rope: &RopeTable, pos0: usize, n: usize) -> Vec<u32> {
        // Storing a position at or before the kept selection's makes it stale (as the CPU does).
        if self.kept.is_some_and(|k| pos0 <= k.made_at) {
            self.kept = None;
        }
        let plan = &self.plan;
        let half = rope.n_rot() / 2;
        let (mut cos, mut sin) = (vec![0.0f32; half], vec![0.0f32; half]);
        let mut words = vec![0u32; RECORD_WORDS * n];
        let chunk = plan.select_chunk.max(1);
        for t0 in (0..n).step_by(chunk) {
            let t1 = (t0 + chunk).min(n);
            let view = ChunkView::global(plan, self.n_ctx_train, pos0 + t0, pos0 + t1);
            if view.fits {
                // Every position 0..=p, as the full cache: lo = 0, no sinks.
                continue;
            }
            let reuse = n == 1
                && self
                    .kept
                    .is_some_and(|k| reusable((k.made_at, k.renumbered), view.last, chunk, view.renumbered));
            let sel = match self.kept {
                Some(k) if reuse => k,
                _ => {
                    let k = Kept { made_at: view.last, renumbered: view.renumbered, wstart: view.wstart };
                    // Only the chunk ending the batch leaves its selection to the steps after it.
                    if t1 == n {
                        self.kept = Some(k);
                    }
                    k
                }
            };
            let n_sink = plan.sinks.min(sel.wstart);
            let cs = if sel.renumbered && n_sink > 0 {
                let at = words.len() as u32;
                for i in 0..n_sink {
                    let eff =
                        renumbered_position(plan, self.n_ctx_train, sel.made_at, sel.wstart, n_sink, i, i);
                    rope.turn_angles(eff - i, &mut cos, &mut sin);
                    words.extend(cos.iter().zip(&sin).flat_map(|(c, s)| [c.to_bits(), s.to_bits()]));
                }
                at
            } else {
                NOT_ROTATED
            };
            // A decoded token on f16 pages reads the CPU memo's f16 copy of the turned sink keys
            // (rounded once after turning); a prompt chunk attends to the f32 turned keys.
            let round = (n == 1 && plan.kv_type == KvType::F16) as u32;
            for t in t0..t1 {
                let p = pos0 + t;
                let lo = (p + 1).saturating_sub(view.window).max(view.wstart);
                words[RECORD_WORDS * t..RECORD_WORDS * (t + 1)].copy_from_slice(&[
                    lo as u32,
                    n_sink as u32,
                    cs,
                    round,
                ]);
            }
        }
        words
    }
}

#[cfg(test)]
mod tests {
    use fovea_kernels::ops::RopeLayout;

    use super::*;
    use crate::kv::{KvMode, KvOptions};

    fn plan(budget: usize, positions: crate::kv::PositionMode) -> WindowPlan {
        let opts =
            KvOptions { mode: KvMode::Window, budget: Some(budget), positions, ..KvOptions::default() };
        WindowPlan::new(opts.plan().unwrap(), 128)
    }

    /// Within the budget every query sees everything; past it the sinks and W recent positions;
    /// decoded tokens past the trained context reuse the re-numbered sinks for select_chunk
    /// positions and then re-number afresh.
    #[test]
    fn records_follow_the_cpu_window_mode() {
        let rope = RopeTable::new(8, 10000.0, 1.0, RopeLayout::Normal);
        let mut w = plan(40, crate::kv::PositionMode::Auto);
        let (s, win) = (w.plan().sinks, w.plan().window);
        assert_eq!(s + win, 40);
        let r = w.records(&rope, 0, 40);
        assert!(r[..4 * 40].chunks(4).all(|c| c[0] == 0 && c[1] == 0));
        // One decoded token past the budget, inside the trained context: true positions.
        let r = w.records(&rope, 60, 1);
        assert_eq!(&r[..4], &[61 - win as u32, s as u32, NOT_ROTATED, 0]);
        // Past the trained context the sinks are turned; the next 7 tokens reuse that turn.
        let first = w.records(&rope, 200, 1);
        assert_ne!(first[2], NOT_ROTATED);
        assert_eq!(first.len(), 4 + s * 8);
        for p in 201..208 {
            let r = w.records(&rope, p, 1);
            assert_eq!(r[0], (p + 1 - win) as u32);
            assert_eq!(&r[4..], &first[4..], "position {p} reuses the selection made at 200");
        }
        let next = w.records(&rope, 208, 1);
        assert_ne!(&next[4..], &first[4..], "position 208 selects again");
        // A prompt chunk straddling the budget sees sinks 0..wstart and the window region.
        let mut w = plan(40, crate::kv::PositionMode::Auto);
        let r = w.records(&rope, 0, 48);
        let (lo, n_sink) = (r[4 * 40], r[4 * 40 + 1]);
        let wstart = 41 - win; // chunk 40..48 starts at p0 = 40
        assert_eq!((lo as usize, n_sink as usize), ((41 - win).max(wstart), s.min(wstart)));
    }
}
