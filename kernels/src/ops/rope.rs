//! Rotary position embedding (RoPE), in ggml's two pair layouts.

use alloc::vec::Vec;

/// Which dimensions form a rotated pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeLayout {
    /// Adjacent pairs (2i, 2i+1): the llama family as converted to GGUF.
    Normal,
    /// Split halves (i, i + n_rot/2): GPT-NeoX, Gemma, Qwen.
    NeoX,
}

/// Frequencies of one RoPE configuration. Angles are computed the way ggml does: start at the
/// position and multiply by `base^(-2/n_rot)` once per pair, in f32, so our angles round the same;
/// their cos/sin are glibc's (`ops::sincosf`), as in llama.cpp on Linux.
#[derive(Clone, Debug)]
pub struct RopeTable {
    n_rot: usize,
    theta_scale: f32,
    freq_scale: f32,
    layout: RopeLayout,
    /// Per-pair divisors of the angle (llama 3's `rope_freqs.weight`), when the model has them.
    freq_factors: Option<Vec<f32>>,
}

impl RopeTable {
    /// `n_rot` rotated dims per head (even), `base` the frequency base (rope_theta),
    /// `freq_scale` = 1 / linear scaling factor.
    pub fn new(n_rot: usize, base: f32, freq_scale: f32, layout: RopeLayout) -> Self {
        // glibc's powf (what ggml calls) is correctly rounded here; libm's f32 powf is off by an
        // ulp for some common bases (10000 with n_rot 128), which would shift every angle.
        // The f64 power rounded once to f32 matches glibc.
        let theta_scale = libm::pow(base as f64, (-2.0 / n_rot as f32) as f64) as f32;
        RopeTable { n_rot, theta_scale, freq_scale, layout, freq_factors: None }
    }

    /// Divide pair i's angle by `factors[i]` (n_rot / 2 values).
    pub fn with_freq_factors(mut self, factors: Vec<f32>) -> Self {
        self.freq_factors = Some(factors);
        self
    }

    pub fn n_rot(&self) -> usize {
        self.n_rot
    }

    /// cos/sin of every pair's angle at position `pos`: cos, sin (n_rot/2,) each.
    pub fn angles(&self, pos: usize, cos: &mut [f32], sin: &mut [f32]) {
        let half = self.n_rot / 2;
        debug_assert!(cos.len() >= half && sin.len() >= half);
        let mut theta = pos as f32;
        for i in 0..half {
            let ff = self.freq_factors.as_ref().map_or(1.0, |f| f[i]);
            let t = self.freq_scale * (theta / ff);
            cos[i] = super::sincosf::cosf(t);
            sin[i] = super::sincosf::sinf(t);
            theta *= self.theta_scale;
        }
    }

    /// cos/sin of every pair's angle for a turn of `delta` positions: re-rotating cached keys to a
    /// re-numbered position, where no bit has to match ggml. Each angle is formed in f64 and
    /// reduced to a quarter turn before an f64 polynomial, so large turns (past a long context)
    /// cost the same as small ones; [`RopeTable::angles`]'s glibc-exact sinf/cosf spent most of
    /// their time in range reduction and software fma there (SmolLM2 decoding at 128K: 4.1 of
    /// 260 samples per 100 of the weight dot). Within 1.2e-7 of the f64 sine and cosine of
    /// delta x frequency (tested); [`RopeTable::angles`]'s f32 progression drifts from those by
    /// about 6e-8 per pair index, relative.
    pub fn turn_angles(&self, delta: usize, cos: &mut [f32], sin: &mut [f32]) {
        let half = self.n_rot / 2;
        debug_assert!(cos.len() >= half && sin.len() >= half);
        let (mut freq, step) = (f64::from(self.freq_scale), f64::from(self.theta_scale));
        for i in 0..half {
            let ff = self.freq_factors.as_ref().map_or(1.0, |f| f64::from(f[i]));
            let (c, s) = cos_sin(delta as f64 * (freq / ff));
            (cos[i], sin[i]) = (c as f32, s as f32);
            freq *= step;
        }
    }

    /// Rotate one head vector x (head_dim,) in place with precomputed angles; dims past n_rot
    /// are left as they are (partial rotary). Same operations as ggml's CPU RoPE.
    pub fn rotate(&self, x: &mut [f32], cos: &[f32], sin: &[f32]) {
        // gcc (-ffp-contract=fast) fuses the first product of each line in ggml's
        // `rotate_pairs`; the second is rounded on its own.
        self.for_each_pair(x, cos, sin, |x0, x1, c, s| {
            (libm::fmaf(x0, c, -(x1 * s)), libm::fmaf(x0, s, x1 * c))
        });
    }

    /// [`RopeTable::rotate`] with plain products, none fused: for re-rotating cached keys, where
    /// no bit has to match ggml. Without `fmaf` calls the compiler vectorizes the loop (the
    /// fused form costs a libm call per product on builds without `-C target-cpu`).
    pub fn rotate_unfused(&self, x: &mut [f32], cos: &[f32], sin: &[f32]) {
        self.for_each_pair(x, cos, sin, |x0, x1, c, s| (x0 * c - x1 * s, x0 * s + x1 * c));
    }

    /// (x[a], x[b]) <- rot(x[a], x[b], cos[i], sin[i]) for every rotated pair i of the layout,
    /// the layout chosen once outside the loop.
    #[inline(always)]
    fn for_each_pair(
        &self,
        x: &mut [f32],
        cos: &[f32],
        sin: &[f32],
        rot: impl Fn(f32, f32, f32, f32) -> (f32, f32),
    ) {
        let half = self.n_rot / 2;
        let angles = cos[..half].iter().zip(&sin[..half]);
        match self.layout {
            RopeLayout::Normal => {
                for (pair, (&c, &s)) in x[..2 * half].chunks_exact_mut(2).zip(angles) {
                    (pair[0], pair[1]) = rot(pair[0], pair[1], c, s);
                }
            }
            RopeLayout::NeoX => {
                let (lo, hi) = x[..2 * half].split_at_mut(half);
                for ((a, b), (&c, &s)) in lo.iter_mut().zip(hi.iter_mut()).zip(angles) {
                    (*a, *b) = rot(*a, *b, c, s);
                }
            }
        }
    }
}

/// (cos x, sin x) in f64, to about 1e-9 absolute for 0 <= x <= 1e9 (turns of a billion
/// positions; tested): x reduced by the nearest multiple of pi/2 (Cody-Waite, pi/2 in three
/// parts), then Taylor polynomials on [-pi/4, pi/4] (sine to x^11, cosine to x^12: truncation
/// below 1e-10).
fn cos_sin(x: f64) -> (f64, f64) {
    // pi/2 to 33 bits, the next 33 bits, the rest.
    const PIO2_1: f64 = 1.570_796_326_734_125_6;
    const PIO2_2: f64 = 6.077_100_506_506_192e-11;
    const PIO2_3: f64 = 2.022_266_248_795_951e-21;

    // Turns are never negative, so adding a half and truncating rounds to nearest (`f64::round`
    // is a libm call in this no_std crate's default build).
    debug_assert!(x >= 0.0);
    let n = ((x * core::f64::consts::FRAC_2_PI + 0.5) as i64) as f64;
    let r = ((x - n * PIO2_1) - n * PIO2_2) - n * PIO2_3;
    let r2 = r * r;
    let sin = r
        * (1.0
            + r2 * (-1.0 / 6.0
                + r2 * (1.0 / 120.0
                    + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362_880.0 + r2 * (-1.0 / 39_916_800.0))))));
    let cos = 1.0
        + r2 * (-0.5
            + r2 * (1.0 / 24.0
                + r2 * (-1.0 / 720.0
                    + r2 * (1.0 / 40_320.0 + r2 * (-1.0 / 3_628_800.0 + r2 * (1.0 / 479_001_600.0))))));
    // The quadrant picks from a table rather than a branch: turns of successive pages land in
    // unrelated quadrants, and a mispredicted branch per pair cost more than the polynomials.
    let q = ((n as i64) & 3) as usize;
    ([cos, -sin, -cos, sin][q], [sin, cos, -sin, -cos][q])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Turn angles against libm's f64 cos and sin of delta x frequency, for small and very large
    /// turns, with and without frequency factors; and against `angles` (the f32 progression)
    /// where the turn is small enough for f32 to hold its angle well.
    #[test]
    fn turn_angles_are_the_f64_angles_of_the_turn() {
        let factors: Vec<f32> = (0..32).map(|i| 1.0 + i as f32 / 8.0).collect();
        for table in [
            RopeTable::new(64, 10000.0, 1.0, RopeLayout::Normal),
            RopeTable::new(64, 500_000.0, 0.25, RopeLayout::NeoX).with_freq_factors(factors),
        ] {
            for delta in [0usize, 1, 7, 300, 8191, 123_457, 1 << 20, 1 << 30] {
                let (mut c, mut s) = ([0.0f32; 32], [0.0f32; 32]);
                table.turn_angles(delta, &mut c, &mut s);
                let (mut freq, step) = (f64::from(table.freq_scale), f64::from(table.theta_scale));
                for i in 0..32 {
                    let ff = table.freq_factors.as_ref().map_or(1.0, |f| f64::from(f[i]));
                    let x = delta as f64 * (freq / ff);
                    freq *= step;
                    assert!((f64::from(c[i]) - libm::cos(x)).abs() < 1.2e-7, "delta {delta} pair {i}: cos");
                    assert!((f64::from(s[i]) - libm::sin(x)).abs() < 1.2e-7, "delta {delta} pair {i}: sin");
                }
                if delta <= 8191 {
                    let (mut c32, mut s32) = ([0.0f32; 32], [0.0f32; 32]);
                    table.angles(delta, &mut c32, &mut s32);
                    for i in 0..32 {
                        // f32 angles drift by about delta x 6e-8 x (i + 1) radians.
                        let tol = 1e-6 + delta as f32 * 6e-8 * (i + 1) as f32;
                        assert!(
                            (c[i] - c32[i]).abs() < tol && (s[i] - s32[i]).abs() < tol,
                            "delta {delta} pair {i}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn unfused_rotation_is_within_rounding_of_the_fused_one() {
        for layout in [RopeLayout::Normal, RopeLayout::NeoX] {
            let t = RopeTable::new(8, 10000.0, 1.0, layout);
            let (mut c, mut s) = ([0.0; 4], [0.0; 4]);
            t.angles(1234, &mut c, &mut s);
            let orig = [0.5f32, -1.0, 2.0, 0.25, 1.5, -0.75, 0.1, 3.0, 9.0];
            let (mut fused, mut plain) = (orig, orig);
            t.rotate(&mut fused, &c, &s);
            t.rotate_unfused(&mut plain, &c, &s);
            assert_eq!(plain[8], 9.0, "{layout:?}: dims past n_rot untouched");
            for (a, b) in fused.iter().zip(&plain) {
                // One rounding of a product apart, on values of magnitude <= 3.
                assert!((a - b).abs() < 1e-6, "{layout:?}: {a} vs {b}");
            }
            assert_ne!(plain, orig, "{layout:?}: rotated");
        }
    }

    #[test]
    fn position_zero_is_identity() {
        let t = RopeTable::new(4, 10000.0, 1.0, RopeLayout::Normal);
        let (mut c, mut s) = ([0.0; 2], [0.0; 2]);
        t.angles(0, &mut c, &mut s);
        let mut x = [1.0, 2.0, 3.0, 4.0];
        t.rotate(&mut x, &c, &s);
        assert_eq!(x, [1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn rotation_preserves_pair_norm_and_matches_formula() {
        for layout in [RopeLayout::Normal, RopeLayout::NeoX] {
            let t = RopeTable::new(8, 10000.0, 1.0, layout);
            let (mut c, mut s) = ([0.0; 4], [0.0; 4]);
            t.angles(7, &mut c, &mut s);
            let orig = [0.5f32, -1.0, 2.0, 0.25, 1.5, -0.75, 0.1, 3.0, 9.0];
            let mut x = orig;
            t.rotate(&mut x, &c, &s);
            assert_eq!(x[8], 9.0, "dims past n_rot untouched");
            for i in 0..4 {
                let (a, b) = if layout == RopeLayout::Normal { (2 * i, 2 * i + 1) } else { (i, i + 4) };
                let theta = 7.0f64 * 10000f64.powf(-2.0 * i as f64 / 8.0);
                let want_a = orig[a] as f64 * theta.cos() - orig[b] as f64 * theta.sin();
                let want_b = orig[a] as f64 * theta.sin() + orig[b] as f64 * theta.cos();
                assert!((x[a] as f64 - want_a).abs() < 1e-5 && (x[b] as f64 - want_b).abs() < 1e-5);
            }
        }
    }
}
