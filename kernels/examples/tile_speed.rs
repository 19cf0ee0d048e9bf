//! Manual speed check (not a test): prompt-processing kernels at Gemma 3 270M shapes, single
//! thread, as the engine calls them (16-row tiles x 4 tokens): the four-token tile against the
//! single-row dot it replaces (and against the AVX2-only tile when `detect` picked VNNI tiles),
//! in giga block-dots (one weight block times one token) per second.
//!
//! `cargo run -p fovea-kernels --release --example tile_speed`

use std::time::Instant;

use fovea_formats::GgmlType;
use fovea_kernels::quant::vec_dot_type;
use fovea_kernels::table::QuantKernels;

const ROWS: usize = 16; // the engine's row tile
const TOKENS: usize = 64;
const TRIALS: usize = 400;

fn main() {
    let kernels = QuantKernels::detect();
    println!("{kernels:?}");
    // (weight type, input width): Gemma's Q5_0 projections read 640 inputs, ffn_down 2048.
    for (w, n) in
        [(GgmlType::Q5_0, 640usize), (GgmlType::Q4K, 2048), (GgmlType::Q6K, 2048), (GgmlType::Q4K, 1024)]
    {
        let partner = vec_dot_type(w);
        let row_bytes = w.bytes_for(n as u64).unwrap() as usize;
        let stride = partner.bytes_for(n as u64).unwrap() as usize;
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut weights: Vec<u8> = (0..ROWS * row_bytes).map(|_| next() as u8).collect();
        // Finite f16 scales: clear the exponent's top bit of every byte pair (crude but enough).
        for pair in weights.chunks_exact_mut(2) {
            pair[1] &= 0x3b;
        }
        let quantize = kernels.quantize_fn(partner).unwrap();
        let mut acts = vec![0u8; TOKENS * stride];
        for t in 0..TOKENS {
            let x: Vec<f32> = (0..n).map(|_| (next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0).collect();
            quantize(&x, &mut acts[t * stride..(t + 1) * stride]);
        }
        let (single, tile) = match w {
            GgmlType::Q5_0 => (kernels.vec_dot_fn(w).unwrap(), kernels.vec_dot4_fn(w)),
            _ => (kernels.batch_dot_fn(w).unwrap(), kernels.batch_dot4_fn(w)),
        };
        let whole = kernels.vec_dot_tile_fn(w);
        let mut whole_out = vec![0.0f32; TOKENS * ROWS];
        let mut whole_rate = None::<f64>;
        let avx2 = QuantKernels::for_isa(fovea_kernels::isa::Isa::Avx2).ok();
        let avx2_tile =
            avx2.and_then(|k| if w == GgmlType::Q5_0 { k.vec_dot4_fn(w) } else { k.batch_dot4_fn(w) });
        let block_dots = (ROWS * TOKENS * n / w.block_elems()) as f64;
        let mut sink = 0.0f32;
        let mut out = [0.0f32; 4 * ROWS];
        // The machine is shared: many short interleaved trials, the best rate of each kernel.
        let (mut single_rate, mut best, mut plain) = (0.0f64, None::<f64>, None::<f64>);
        for _ in 0..TRIALS {
            let start = Instant::now();
            for t in 0..TOKENS {
                for r in 0..ROWS {
                    sink += single(n, &weights[r * row_bytes..(r + 1) * row_bytes], &acts[t * stride..]);
                }
            }
            single_rate = single_rate.max(block_dots / start.elapsed().as_secs_f64() / 1e9);
            if let Some(whole) = whole {
                let start = Instant::now();
                whole(n, &weights, &acts, TOKENS, &mut whole_out);
                sink += whole_out[0];
                let r = block_dots / start.elapsed().as_secs_f64() / 1e9;
                whole_rate = Some(whole_rate.map_or(r, |old| old.max(r)));
            }
            for (kernel, rate) in [(tile, &mut best), (avx2_tile, &mut plain)] {
                let Some(kernel) = kernel else { continue };
                let start = Instant::now();
                for t in (0..TOKENS).step_by(4) {
                    kernel(n, &weights, &acts[t * stride..], stride, &mut out);
                    sink += out[0];
                }
                let r = block_dots / start.elapsed().as_secs_f64() / 1e9;
                *rate = Some(rate.map_or(r, |old| old.max(r)));
            }
        }
        let rate = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:6.3}"));
        println!(
            "{w:>5} n={n:<5} G block-dots/s: single {single_rate:6.3}  4-token tile {}  (AVX2-only {})  \
             whole-batch tile {}  (sink {sink:e})",
            rate(best),
            rate(plain),
            rate(whole_rate)
        );
    }
}
