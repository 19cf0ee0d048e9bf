//! Manual speed check (not a test): single-thread GB/s of weight bytes streamed by
//! `vec_dot_rows` for every kernel table this CPU runs.
//!
//! `cargo run -p fovea-kernels --release --example quant_dot_speed [TYPE...]` (default Q4_1 Q8_0).
//! Two sizes: a matrix that stays in L2 (kernel speed) and one far larger than the caches
//! (memory-bound, what a big model sees).

use std::time::{Duration, Instant};

use fovea_formats::GgmlType;
use fovea_kernels::quant;
use fovea_kernels::table::QuantKernels;

fn main() {
    let types: Vec<GgmlType> = std::env::args()
        .skip(1)
        .filter_map(|name| GgmlType::ALL.into_iter().find(|t| t.name().eq_ignore_ascii_case(&name)))
        .collect();
    let types = if types.is_empty() { vec![GgmlType::Q4_1, GgmlType::Q8_0] } else { types };
    let n = 1536; // SmolLM2-135M FFN width; a multiple of 256 for the K-quants
    for w in types {
        let a = quant::vec_dot_type(w);
        let row_bytes = w.bytes_for(n as u64).unwrap() as usize;
        let mut seed = 0x1234_5678_9abc_def1u64;
        let x: Vec<f32> = (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect();
        let mut act = vec![0u8; a.bytes_for(n as u64).unwrap() as usize];
        quant::quantize_activation(a, &x, &mut act);
        for (label, rows) in [
            ("in L2 (~0.5 MB)", 0.5e6 as usize / row_bytes),
            ("from DRAM (~64 MB)", 64e6 as usize / row_bytes),
        ] {
            // Random bytes are fine for timing, except f16 scales must not be NaN/inf.
            let mut weights: Vec<u8> =
                (0..rows * row_bytes).map(|i| (i.wrapping_mul(2654435761) >> 7) as u8).collect();
            let f16_fields: &[usize] = match w {
                GgmlType::Q6K => &[208],
                GgmlType::Q3K => &[108],
                GgmlType::Q2K => &[80, 82],
                GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => &[],
                _ => &[0, 2],
            };
            for block in weights.chunks_exact_mut(w.block_bytes()) {
                for &at in f16_fields {
                    block[at + 1] &= 0x3b; // exponent below 0x1f: finite, at most ~0.5
                }
            }
            let mut out = vec![0f32; rows];
            println!("{w} x {a}, {rows} rows x {n}, {label}:");
            for (isa, kernels) in QuantKernels::variants() {
                let Ok(kernels) = kernels else {
                    println!("  {isa:12} not supported here");
                    continue;
                };
                // The fastest of many passes: the machine is shared, the minimum is the kernel.
                let (start, mut best) = (Instant::now(), f64::INFINITY);
                while start.elapsed() < Duration::from_millis(1500) {
                    let pass = Instant::now();
                    kernels.vec_dot_rows(w, n, &weights, row_bytes, &act, &mut out).unwrap();
                    best = best.min(pass.elapsed().as_secs_f64());
                }
                let gbps = weights.len() as f64 / best / 1e9;
                println!("  {isa:12} {gbps:7.2} GB/s  ({:.1} us per pass, checksum {})", best * 1e6, out[0]);
            }
        }
    }
}
