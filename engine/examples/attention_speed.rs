//! Manual speed check (not a test): one layer's attention for a 512-token micro-batch at the end
//! of an 8192-token context (pos0 = 7680), SmolLM2's shape (9 query heads, 3 KV heads, head dim
//! 64), untiled (`attention::attention`) vs tiled (`attention_tiled::attention`), 1 and 2 threads.
//!
//! `cargo run -p fovea-engine --release --example attention_speed [N [POS0 [REPS]]]`
//! (defaults 512 7680 3). Prints the best of REPS runs and checks both give the same bits.

use std::time::{Duration, Instant};

use fovea_engine::attention::{self, AttnShape};
use fovea_engine::attention_tiled;
use fovea_engine::config::{Arch, FfnActivation, ModelConfig};
use fovea_engine::kv_cache::KvCache;
use fovea_engine::matmul::Compute;
use fovea_kernels::ops::RopeLayout;
use fovea_kernels::table::QuantKernels;

const N_HEAD: usize = 9;
const N_HEAD_KV: usize = 3;
const HEAD_DIM: usize = 64;

fn config(n_ctx: usize) -> ModelConfig {
    ModelConfig {
        arch: Arch::Llama,
        arch_name: "llama".into(),
        name: None,
        n_ctx_train: n_ctx,
        n_embd: N_HEAD * HEAD_DIM,
        n_layer: 1,
        n_ff: 1536,
        n_head: N_HEAD,
        n_head_kv: N_HEAD_KV,
        head_dim: HEAD_DIM,
        head_dim_v: HEAD_DIM,
        rms_eps: 1e-5,
        rope_base: 1e4,
        rope_freq_scale: 1.0,
        n_rot: HEAD_DIM,
        rope_layout: RopeLayout::Normal,
        n_vocab: 10,
        embd_scale: None,
        qk_norm: false,
        post_norms: false,
        ffn_act: FfnActivation::Silu,
        q_scale: 1.0,
        kq_scale: 1.0 / (HEAD_DIM as f32).sqrt(),
        swa: None,
        final_logit_softcap: None,
    }
}

/// Pseudo-random values in [-1, 1).
fn noise(seed: &mut u64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Best wall time of `reps` runs of `f`.
fn best(reps: usize, mut f: impl FnMut()) -> Duration {
    (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let arg =
        |i: usize, default: usize| std::env::args().nth(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (n, pos0, reps) = (arg(1, 512), arg(2, 7680), arg(3, 3));
    let c = config(pos0 + n);
    let mut cache = KvCache::new(&c, pos0 + n, n.max(1));
    let mut seed = 0x1234_5678_9abc_def1u64;
    for pos in 0..pos0 + n {
        let (k, v) = (noise(&mut seed, N_HEAD_KV * HEAD_DIM), noise(&mut seed, N_HEAD_KV * HEAD_DIM));
        cache.store(0, pos, &k, &v);
    }
    let q = noise(&mut seed, n * N_HEAD * HEAD_DIM);
    let shape = AttnShape {
        n_head: N_HEAD,
        group: N_HEAD / N_HEAD_KV,
        head_dim: HEAD_DIM,
        head_dim_v: HEAD_DIM,
        kq_scale: c.kq_scale,
    };
    println!("n={n} pos0={pos0} heads {N_HEAD}/{N_HEAD_KV} hd={HEAD_DIM}, best of {reps}");
    for threads in [1, 2] {
        let compute = Compute::new(QuantKernels::detect(), threads);
        let mut untiled = vec![0.0f32; n * N_HEAD * HEAD_DIM];
        let mut tiled = vec![0.0f32; untiled.len()];
        let t_old = best(reps, || attention::attention(&compute, &cache, 0, shape, pos0, &q, &mut untiled));
        let t_new =
            best(reps, || attention_tiled::attention(&compute, &cache, 0, shape, pos0, &q, &mut tiled));
        let same = untiled.iter().zip(&tiled).all(|(a, b)| a.to_bits() == b.to_bits());
        println!(
            "{:?} threads={threads}: untiled {:8.1} ms  tiled {:8.1} ms  speed-up {:.2}x  same bits: {same}",
            compute.ops.isa(),
            t_old.as_secs_f64() * 1e3,
            t_new.as_secs_f64() * 1e3,
            t_old.as_secs_f64() / t_new.as_secs_f64()
        );
    }
}
