//! Horizontal sums in the exact order ggml's x86 build adds vector lanes.
//!
//! ggml ends every 16-lane f32 accumulation with `_mm512_reduce_add_ps`, which gcc expands to a
//! fixed tree: upper 8 lanes + lower 8, upper 4 + lower 4, then lanes (0+2) + (1+3). Float
//! addition is not associative, so reproducing llama.cpp's results to the bit needs this tree.

/// Lanes of one ggml AVX-512 f32 vector: every op here works in groups of this many.
pub const LANES: usize = 16;

/// Sum of 16 lanes in gcc's `_mm512_reduce_add_ps` order.
#[inline]
pub fn hsum16(v: &[f32; LANES]) -> f32 {
    let mut h = [0.0f32; 8];
    for (i, hi) in h.iter_mut().enumerate() {
        *hi = v[i + 8] + v[i];
    }
    let q = [h[4] + h[0], h[5] + h[1], h[6] + h[2], h[7] + h[3]];
    (q[0] + q[2]) + (q[1] + q[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_order_is_visible_in_rounding() {
        // 1 + 2^-24 rounds away when added to 1.0 alone but survives when added to itself first.
        let tiny = f32::EPSILON / 2.0;
        let mut v = [0.0f32; LANES];
        v[0] = 1.0;
        v[8] = tiny;
        v[4] = tiny;
        // (1 + tiny) = 1 (tie to even), then + tiny = 1: a left-to-right sum would give the same,
        // but lanes 4 and 12 meet first in the tree, so put the pair there.
        assert_eq!(hsum16(&v), 1.0);
        let mut w = [0.0f32; LANES];
        w[0] = 1.0;
        w[4] = tiny;
        w[12] = tiny;
        // Lanes 4 and 12 are added together before lane 0: 1 + 2*tiny = 1 + eps, exact.
        assert_eq!(hsum16(&w), 1.0 + f32::EPSILON);
        let seq: f32 = w.iter().sum();
        assert_eq!(seq, 1.0, "a sequential sum loses both halves");
    }
}
