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

/// The body of an ISA's `sibling_dots`: the queries in blocks of up to `$max` rows, each block
/// handled by `$block::<G>` for its row count G.
macro_rules! sibling_dots_by_blocks {
    ($q:expr, $lo:expr, $hi:expr, $out:expr, $at:expr, $width:expr, $block:ident, [$($g:literal),+]) => {{
        let (q, lo, hi, out, at, width) = ($q, $lo, $hi, $out, $at, $width);
        let Some((k, m)) = crate::ops::panel::sibling_shape(q, lo, hi, out, at, width) else {
            return;
        };
        let max = [$($g),+][0];
        let mut i = 0;
        while i < m {
            let rows = (m - i).min(max);
            let (q, out) = (&q[i * k..(i + rows) * k], &mut out[i * width..]);
            match rows {
                $($g => $block::<$g>(q, k, lo, hi, out, at, width),)+
                _ => unreachable!("blocks of 1..={max} rows"),
            }
            i += rows;
        }
    }};
}

/// The body of an ISA's `group_scores`: the reference for head widths that are not a multiple
/// of 16, else the queries in blocks of up to 4, each handled by `$block::<HALF, G>` (HALF: the
/// keys are f16) for its query count G.
macro_rules! group_scores_by_blocks {
    ($q:expr, $keys:expr, $hd:expr, $scale:expr, $scores:expr, $stride:expr, $block:ident) => {{
        let (q, keys, hd, scale, scores, stride) = ($q, $keys, $hd, $scale, $scores, $stride);
        if !hd.is_multiple_of(crate::ops::reduce::LANES) {
            return crate::ops::group_scores(q, keys, hd, scale, scores, stride);
        }
        let Some((g_count, n)) = crate::ops::group_attention::scores_shape(q, keys, hd, scores, stride)
        else {
            return;
        };
        let (rows, half) = crate::ops::group_attention::raw_rows(keys);
        let mut g0 = 0;
        while g0 < g_count {
            let gs = (g_count - g0).min(4);
            let (q, out) = (&q[g0 * hd..(g0 + gs) * hd], &mut scores[g0 * stride..]);
            // SAFETY: keys holds n rows of hd elements of the type `half` names; out holds gs
            // rows of n scores, stride apart (scores_shape).
            unsafe {
                match (gs, half) {
                    (1, false) => $block::<false, 1>(q, rows, hd, n, scale, out, stride),
                    (2, false) => $block::<false, 2>(q, rows, hd, n, scale, out, stride),
                    (3, false) => $block::<false, 3>(q, rows, hd, n, scale, out, stride),
                    (4, false) => $block::<false, 4>(q, rows, hd, n, scale, out, stride),
                    (1, true) => $block::<true, 1>(q, rows, hd, n, scale, out, stride),
                    (2, true) => $block::<true, 2>(q, rows, hd, n, scale, out, stride),
                    (3, true) => $block::<true, 3>(q, rows, hd, n, scale, out, stride),
                    (4, true) => $block::<true, 4>(q, rows, hd, n, scale, out, stride),
                    _ => unreachable!("blocks of 1..=4 queries"),
                }
            }
            g0 += gs;
        }
    }};
}

pub(crate) mod avx2;
pub(crate) mod avx512;
pub(crate) mod group_avx2;
pub(crate) mod group_avx512;
