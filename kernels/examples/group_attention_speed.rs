//! Manual speed check (not a test): microseconds per KV head of the three steps of a decoded
//! token's attention past the foveated cache's budget, each on its own: the GQA group's scores
//! (`group_scores`), their softmax and the value sums (`group_values_add`), for SmolLM2's shape
//! (3 query heads per KV head, B = 512 f16 entries of width 64), with this CPU's op table.
//!
//! `cargo run -p fovea-kernels --release --example group_attention_speed [HEADS]`: HEADS KV heads
//! read in turn (default 1: the rows stay in L2; 90, a SmolLM2 token's, make 11.8 MB). The
//! criterion bench `decode_attention` times the three together. `FOVEA_ISA=avx2` (or another
//! table this CPU runs) picks the table.

use std::time::Instant;

use fovea_kernels::isa::Isa;
use fovea_kernels::ops::{KvRows, OpKernels};
use half::f16;

const B: usize = 512;
const HD: usize = 64;
const G: usize = 3;

fn main() {
    let heads: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1).max(1);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    };
    let mut rows = || -> Vec<f16> { (0..B * HD).map(|_| f16::from_f32(rnd())).collect() };
    let keys: Vec<Vec<f16>> = (0..heads).map(|_| rows()).collect();
    let values: Vec<Vec<f16>> = (0..heads).map(|_| rows()).collect();
    let q: Vec<f32> = (0..G * HD).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
    let ops = match std::env::var("FOVEA_ISA") {
        Ok(name) => OpKernels::for_isa(Isa::from_name(&name).expect("FOVEA_ISA: an ISA name"))
            .expect("FOVEA_ISA: a table this CPU runs"),
        Err(_) => OpKernels::detect(),
    };
    let (mut s, mut out) = (vec![0.0f32; G * B], vec![0.0f32; G * HD]);
    let reps = 20_000 / heads + 1;
    for step in ["scores", "softmax", "values"] {
        // Best of 5 rounds: the machine is shared.
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t0 = Instant::now();
            for _ in 0..reps {
                for (k, v) in keys.iter().zip(&values) {
                    match step {
                        "scores" => ops.group_scores(&q, KvRows::F16(k), HD, 0.125, &mut s, B),
                        "softmax" => s.chunks_exact_mut(B).for_each(|row| {
                            ops.softmax(row);
                        }),
                        _ => {
                            out.fill(0.0);
                            ops.group_values_add(&s, B, KvRows::F16(v), HD, &mut out);
                        }
                    }
                }
            }
            std::hint::black_box((&s, &out));
            best = best.min(t0.elapsed().as_secs_f64() / (reps * heads) as f64);
        }
        println!("{step:8} {:6.2} us per KV head ({heads} heads, {:?})", best * 1e6, ops.isa());
    }
}
