//! x86-64 SIMD versions of the float ops, under the reference names. Each computes the
//! reference's operations in the reference's order, so results are equal to the bit (see
//! `tests/ops_simd_vs_reference.rs`). AVX2 carries each 16-lane ggml vector as two halves.
//!
//! Every function is a `#[target_feature]` `unsafe fn`; only `ops::OpKernels` calls them,
//! after `Isa::require` has checked the CPU.

/// The body of an ISA's `panel_dots`: every panel, its queries in blocks of up to `$max` rows,
/// each block handled by `$block::<G>` for its row count G (a const, so the accumulators stay in
/// registers). Shared so the two ISAs differ only in their block kernels.
macro_rules! panel_dots_by_blocks {
    ($q:expr, $k:expr, $panels:expr, $out:expr, $block:ident, [$($g:literal),+]) => {{
        let (q, k, panels, out) = ($q, $k, $panels, $out);
        let Some((m, n_panels)) = crate::ops::panel::panel_shape(q, k, panels, out) else {
            return;
        };
        let width = n_panels * PANEL;
        let max = [$($g),+][0];
        for (p, panel) in panels.chunks_exact(k * PANEL).take(n_panels).enumerate() {
            let mut i = 0;
            while i < m {
                let rows = (m - i).min(max);
                let (q, out) = (&q[i * k..(i + rows) * k], &mut out[i * width..]);
                match rows {
                    $($g => $block::<$g>(q, k, panel, out, p * PANEL, width),)+
                    _ => unreachable!("blocks of 1..={max} rows"),
                }
                i += rows;
            }
        }
    }};
}

pub(crate) mod avx2;
pub(crate) mod avx512;
pub(crate) mod group_avx2;
pub(crate) mod group_avx512;
