//! The tiled attention loop against the per-(token, head) one: every output float must be
//! bit-identical (tolerance zero), over batch sizes around the 8-token block, positions that
//! cross the 128-cell tile and the ring of a local layer, several GQA shapes, every kernel
//! table and 1-2 threads. A synthetic cache with random keys and values stands in for a model.

use fovea_engine::attention::{self, AttnShape};
use fovea_engine::attention_tiled;
use fovea_engine::config::{Arch, FfnActivation, ModelConfig, SlidingWindow};
use fovea_engine::kv_cache::KvCache;
use fovea_engine::matmul::Compute;
use fovea_kernels::isa::Isa;
use fovea_kernels::ops::{OpKernels, RopeLayout};
use fovea_kernels::table::QuantKernels;

/// Micro-batch size of the cache (largest n below).
const N_UBATCH: usize = 40;
/// Window of the local layer (layer 0); layer 1 is global.
const N_SWA: usize = 100;

/// xorshift64*, fixed seed.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self, scale: f32) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
        (bits as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }

    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(scale)).collect()
    }
}

/// The attention shape of a model: (n_head, n_head_kv, head_dim, head_dim_v).
type Heads = (usize, usize, usize, usize);

/// Two layers (local, global) with the given heads; only the attention fields matter here.
fn config((n_head, n_head_kv, head_dim, head_dim_v): Heads) -> ModelConfig {
    ModelConfig {
        arch: Arch::Gemma3,
        arch_name: "gemma3".into(),
        name: None,
        n_ctx_train: 4096,
        n_embd: n_head * head_dim,
        n_layer: 2,
        n_ff: 16,
        n_head,
        n_head_kv,
        head_dim,
        head_dim_v,
        rms_eps: 1e-6,
        rope_base: 1e6,
        rope_freq_scale: 1.0,
        n_rot: head_dim,
        rope_layout: RopeLayout::NeoX,
        n_vocab: 10,
        embd_scale: None,
        qk_norm: false,
        post_norms: false,
        ffn_act: FfnActivation::GeluTanh,
        q_scale: 1.0,
        kq_scale: 1.0 / (head_dim as f32).sqrt(),
        swa: Some(SlidingWindow {
            n_swa: N_SWA,
            is_local: vec![true, false],
            rope_base: 1e4,
            rope_freq_scale: 1.0,
        }),
        final_logit_softcap: None,
    }
}

fn shape(c: &ModelConfig) -> AttnShape {
    AttnShape {
        n_head: c.n_head,
        group: c.n_head / c.n_head_kv,
        head_dim: c.head_dim,
        head_dim_v: c.head_dim_v,
        kq_scale: c.kq_scale,
    }
}

/// A cache holding random keys and values for positions 0..end, stored in micro-batches as a
/// session does (so a local layer's ring wraps as it would).
fn filled_cache(c: &ModelConfig, rng: &mut Rng, end: usize) -> KvCache {
    let mut cache = KvCache::new(c, 1024, N_UBATCH);
    for pos in 0..end {
        for layer in 0..c.n_layer {
            let k = rng.vec(c.n_head_kv * c.head_dim, 1.5);
            let v = rng.vec(c.n_head_kv * c.head_dim_v, 3.0);
            cache.store(layer, pos, &k, &v);
        }
    }
    cache
}

fn assert_bits_equal(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.to_bits(), w.to_bits(), "{what}: element {i}: {g:e} vs untiled {w:e}");
    }
}

#[test]
fn tiled_attention_equals_untiled_attention_to_the_bit() {
    let mut rng = Rng(0x5eed_a77e);
    // Gemma 3's 256-wide heads take 32-cell tiles, SmolLM2's 128, the odd widths in between.
    let heads: [Heads; 5] =
        [(9, 3, 64, 64), (4, 1, 256, 256), (4, 4, 16, 16), (6, 2, 65, 17), (8, 1, 32, 80)];
    let mut computes: Vec<Compute> = vec![Compute::new(QuantKernels::detect(), 2)];
    for isa in [Isa::Scalar, Isa::Avx2] {
        if let Ok(ops) = OpKernels::for_isa(isa) {
            let mut compute = Compute::new(QuantKernels::detect(), 1);
            compute.ops = ops;
            computes.push(compute);
        }
    }
    let mut cases = 0;
    for h in heads {
        let c = config(h);
        let s = shape(&c);
        // (pos0, n): empty cache, inside the first tile, across tile edges, past the window
        // (the local layer masks and starts rows late), and with the ring wrapped.
        for (pos0, n) in [(0, 1), (0, 9), (5, 40), (120, 8), (126, 17), (250, 1), (300, 33), (517, 40)] {
            let cache = filled_cache(&c, &mut rng, pos0 + n);
            let q = rng.vec(n * c.n_head * c.head_dim, 2.0);
            for layer in 0..c.n_layer {
                for compute in &computes {
                    let mut want = vec![f32::NAN; n * c.n_head * c.head_dim_v];
                    attention::attention(compute, &cache, layer, s, pos0, &q, &mut want);
                    let mut got = vec![f32::NAN; want.len()];
                    attention_tiled::attention(compute, &cache, layer, s, pos0, &q, &mut got);
                    let what = format!(
                        "heads {h:?} pos0={pos0} n={n} layer={layer} {:?} threads={}",
                        compute.ops.isa(),
                        compute.pool.n_threads()
                    );
                    assert!(want.iter().all(|v| v.is_finite()), "{what}: untiled output incomplete");
                    assert_bits_equal(&got, &want, &what);
                    cases += 1;
                }
            }
        }
    }
    assert!(cases >= 4 * 8 * 2 * 2, "every case ran: {cases}");
}
