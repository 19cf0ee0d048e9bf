//! Choosing the next token from logits: greedy, or llama.cpp's default chain
//! (repetition penalty -> top-k -> top-p -> min-p -> temperature -> random draw).

use std::collections::VecDeque;

#[derive(Clone, Debug)]
pub struct SamplerConfig {
    /// <= 0 means greedy (argmax).
    pub temperature: f32,
    /// 0 = off.
    pub top_k: usize,
    /// 1.0 = off.
    pub top_p: f32,
    /// 0.0 = off.
    pub min_p: f32,
    /// 1.0 = off. Logits of recently seen tokens are divided (positive) or multiplied (negative) by it.
    pub repeat_penalty: f32,
    /// How many recent tokens the penalty looks at.
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplerConfig {
    /// llama.cpp's defaults.
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0x5eed,
        }
    }
}

impl SamplerConfig {
    pub fn greedy() -> Self {
        SamplerConfig { temperature: 0.0, ..SamplerConfig::default() }
    }

    /// Rejects values that have no meaning (a demanding user gets told, not surprised).
    pub fn validate(&self) -> Result<(), String> {
        if !self.temperature.is_finite() {
            return Err(format!("temperature must be a finite number, got {}", self.temperature));
        }
        if !(0.0..=1.0).contains(&self.top_p) || self.top_p.is_nan() {
            return Err(format!("top-p must be in [0, 1], got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) || self.min_p.is_nan() {
            return Err(format!("min-p must be in [0, 1], got {}", self.min_p));
        }
        if !(self.repeat_penalty > 0.0 && self.repeat_penalty.is_finite()) {
            return Err(format!("repeat penalty must be a positive number, got {}", self.repeat_penalty));
        }
        Ok(())
    }
}

pub struct Sampler {
    cfg: SamplerConfig,
    rng: Rng,
    recent: VecDeque<u32>,
    /// (id, logit) candidates, reused between calls.
    cand: Vec<(u32, f32)>,
}

impl Sampler {
    pub fn new(cfg: SamplerConfig) -> Sampler {
        let rng = Rng::new(cfg.seed);
        Sampler { cfg, rng, recent: VecDeque::new(), cand: Vec::new() }
    }

    /// Records a token that is now part of the context (prompt or generated) for the penalty.
    pub fn accept(&mut self, id: u32) {
        if self.cfg.repeat_last_n == 0 {
            return;
        }
        if self.recent.len() == self.cfg.repeat_last_n {
            self.recent.pop_front();
        }
        self.recent.push_back(id);
    }

    /// Picks the next token from one row of logits (n_vocab,).
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.cfg.temperature <= 0.0 && self.cfg.repeat_penalty == 1.0 {
            return argmax(logits);
        }
        self.cand.clear();
        self.cand.extend(logits.iter().enumerate().map(|(i, &l)| (i as u32, l)));
        if self.cfg.repeat_penalty != 1.0 {
            let mut seen = self.recent.iter().copied().collect::<Vec<_>>();
            seen.sort_unstable();
            seen.dedup();
            for id in seen {
                if let Some(c) = self.cand.get_mut(id as usize) {
                    c.1 =
                        if c.1 > 0.0 { c.1 / self.cfg.repeat_penalty } else { c.1 * self.cfg.repeat_penalty };
                }
            }
        }
        if self.cfg.temperature <= 0.0 {
            return self.cand.iter().fold((0u32, f32::NEG_INFINITY), |b, &c| if c.1 > b.1 { c } else { b }).0;
        }
        // Sort by logit, descending (ties by id for determinism); top-k cuts first so the sort is small.
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        let k = if self.cfg.top_k == 0 { self.cand.len() } else { self.cfg.top_k.min(self.cand.len()) };
        if k < self.cand.len() {
            self.cand.select_nth_unstable_by(k - 1, by_logit);
            self.cand.truncate(k);
        }
        self.cand.sort_unstable_by(by_logit);
        // top-p: the smallest prefix whose probability mass reaches p.
        if self.cfg.top_p < 1.0 {
            let probs = softmax(&self.cand);
            let mut cum = 0.0;
            let mut keep = probs.len();
            for (i, p) in probs.iter().enumerate() {
                cum += p;
                if cum >= self.cfg.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
            self.cand.truncate(keep.max(1));
        }
        // min-p: drop tokens less likely than min_p times the most likely one.
        if self.cfg.min_p > 0.0 {
            let cutoff = self.cand[0].1 + self.cfg.min_p.ln();
            let keep = self.cand.iter().take_while(|c| c.1 >= cutoff).count();
            self.cand.truncate(keep.max(1));
        }
        for c in &mut self.cand {
            c.1 /= self.cfg.temperature;
        }
        let probs = softmax(&self.cand);
        let r = self.rng.next_f64();
        let mut cum = 0.0;
        for (c, p) in self.cand.iter().zip(&probs) {
            cum += p;
            if r < cum {
                return c.0;
            }
        }
        self.cand.last().map_or(0, |c| c.0)
    }
}

/// Index of the largest logit (the lowest id among ties, as llama.cpp's greedy sampler).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// The k largest (id, logit), highest first, ties broken by the lower id (llama.cpp's order).
pub fn top_k(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut all: Vec<(u32, f32)> = logits.iter().enumerate().map(|(i, &l)| (i as u32, l)).collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

fn softmax(cand: &[(u32, f32)]) -> Vec<f64> {
    let max = cand.iter().map(|c| c.1).fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = cand.iter().map(|c| ((c.1 - max) as f64).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// xoshiro256** seeded through splitmix64: small, fast, and the same sequence on every platform.
struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng { s: [next(), next(), next(), next()] }
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> Vec<f32> {
        (0..100).map(|i| ((i * 37) % 100) as f32 / 10.0).collect()
    }

    #[test]
    fn greedy_is_argmax_with_lowest_id_on_ties() {
        let mut s = Sampler::new(SamplerConfig::greedy());
        assert_eq!(s.sample(&logits()), 27); // 27*37 % 100 = 99
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
    }

    #[test]
    fn same_seed_same_tokens_different_seed_differs() {
        let cfg = SamplerConfig { temperature: 1.5, top_k: 0, top_p: 1.0, min_p: 0.0, ..Default::default() };
        let run = |seed| {
            let mut s = Sampler::new(SamplerConfig { seed, ..cfg.clone() });
            (0..50).map(|_| s.sample(&logits())).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    #[test]
    fn top_k_one_is_greedy_and_filters_hold() {
        let mut s = Sampler::new(SamplerConfig { temperature: 1.0, top_k: 1, ..Default::default() });
        for _ in 0..20 {
            assert_eq!(s.sample(&logits()), 27);
        }
        // min-p 0.5: only tokens within ln(0.5) = -0.69 of the max logit survive (ids 0 and 1).
        let l = [0.0f32, -0.5, -0.8, -5.0];
        let mut s = Sampler::new(SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.5,
            ..Default::default()
        });
        for _ in 0..200 {
            let t = s.sample(&l);
            assert!(t <= 1, "token {t} is below min-p");
        }
        // top-p 0.5 with one dominant token keeps only it.
        let l = [5.0f32, 0.0, 0.0, 0.0];
        let mut s = Sampler::new(SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.5,
            min_p: 0.0,
            ..Default::default()
        });
        for _ in 0..100 {
            assert_eq!(s.sample(&l), 0);
        }
    }

    #[test]
    fn repeat_penalty_discourages_recent_tokens() {
        let l = [2.0f32, 1.9, -1.0];
        let mut s =
            Sampler::new(SamplerConfig { temperature: 0.0, repeat_penalty: 1.5, ..Default::default() });
        s.accept(0);
        assert_eq!(s.sample(&l), 1);
    }

    #[test]
    fn validation_rejects_nonsense() {
        assert!(SamplerConfig { top_p: 1.5, ..Default::default() }.validate().is_err());
        assert!(SamplerConfig { min_p: -0.1, ..Default::default() }.validate().is_err());
        assert!(SamplerConfig { temperature: f32::NAN, ..Default::default() }.validate().is_err());
        assert!(SamplerConfig { repeat_penalty: 0.0, ..Default::default() }.validate().is_err());
        assert!(SamplerConfig::default().validate().is_ok());
    }
}
