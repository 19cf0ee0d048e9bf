//! Criterion benches of every kernel on every ISA this CPU runs, in GB/s of weights streamed.
//!
//! Groups (ids are `group/kernel/isa`, the layout `benches/speedup-table.py` reads back):
//! - `vec_dot/<type>-<n>/<isa>`: one weight row of n elements (2048, 8192: a small model's
//!   hidden size and FFN width) against its quantized activation row; the row stays in L1.
//! - `matvec_l2/<type>/<isa>`: W (rows, 2048) @ x, about 1 MiB of weights, which stays in L2
//!   between iterations (a decode matmul of a small model).
//! - `matvec_dram/<type>/<isa>`: the same per-row loop over a matrix bigger than the last-level
//!   cache (a 7B-sized layer): every weight byte comes from memory, the per-row streaming case
//!   (SIMD tables only; the scalar kernels are compute-bound, see `matvec_l2`).
//! - `prompt_tile/<type>/<isa>`: a prompt-processing matmul tile, 16 weight rows of 2048 against
//!   64 tokens, through the kernel the engine picks for a batch (whole-batch tile, else 4-token
//!   tile, else one dot per row and token); bytes = weight bytes x tokens, what a per-token loop
//!   would stream.
//! - `quantize/<type>-8192/<isa>`: the activation quantizers (bytes = f32 input read).
//! - `ops/<op>/<isa>`: RMSNorm, RoPE, softmax, SwiGLU and the attention inner loop (scores,
//!   softmax, value sum of one query head over 512 cached positions), bytes = f32 data touched.
//! - `decode_attention_{l2,token}/<variant>/<isa>`: a decoded token's attention past the
//!   foveated cache's budget, a GQA group of 3 query heads over 512 entries, per-query kernels
//!   against the group kernels on f32 and f16 rows; one KV head (in L2) or a whole SmolLM2
//!   token's 90 (from memory). Bytes = keys and values read.
//!
//! Throughput is `Throughput::Bytes`, so criterion prints GB/s ("GiB/s"). Every kernel runs on
//! one thread: these measure the kernels, `fovea bench` measures the engine.
//!
//! Run: `cargo bench --bench kernels` (a few minutes); one group: `cargo bench --bench kernels
//! -- matvec_l2`. `FOVEA_BENCH_DRAM_MIB` overrides the size of the beyond-cache matrix.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fovea_formats::blocks::GgmlBlock;
use fovea_formats::GgmlType;
use fovea_kernels::isa::Isa;
use fovea_kernels::ops::{OpKernels, RopeLayout, RopeTable, ValueOrder};
use fovea_kernels::quant::{quantize_weights as qw, vec_dot_type};
use fovea_kernels::table::QuantKernels;

/// The weight types benched, in the order of the speedup table.
const WEIGHT_TYPES: [GgmlType; 10] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
    GgmlType::F16,
    GgmlType::F32,
];

/// Row lengths of the single-row dot: SmolLM2's FFN width is 1536, Gemma 3 270M's hidden
/// size 640; 2048 and 8192 are a 1B model's hidden size and FFN width.
const DOT_LENS: [usize; 2] = [2048, 8192];

/// Columns of the matvec benches.
const MATVEC_COLS: usize = 2048;

/// Weight bytes of the in-L2 matrix: a quarter of this CPU's 2 MiB-per-core L2 and more than L1.
const L2_BYTES: usize = 1 << 20;

/// Short runs: the whole bench must finish in a few minutes on a 2-core machine. Criterion's
/// default (100 samples, 5 s each) would take over an hour for ~250 benches.
fn quick() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(600))
        .without_plots()
}

/// Every kernel table this CPU runs, labelled as in `QuantKernels::variants` (scalar, avx2,
/// avx512, avx512-vnni, ...); the skipped ones are printed once.
fn tables() -> Vec<(&'static str, QuantKernels)> {
    QuantKernels::variants()
        .into_iter()
        .filter_map(|(label, table)| match table {
            Ok(t) => Some((label, t)),
            Err(e) => {
                eprintln!("kernels bench: skipping {label}: {e}");
                None
            }
        })
        .collect()
}

/// The float-op tables this CPU runs (no NEON float ops exist; the scalar one runs there).
fn op_tables() -> Vec<(&'static str, OpKernels)> {
    [Isa::Scalar, Isa::Avx2, Isa::Avx512]
        .into_iter()
        .filter_map(|isa| OpKernels::for_isa(isa).ok().map(|t| (isa.name(), t)))
        .collect()
}

/// Fixed-seed values in [-1, 1) (xorshift), so runs are comparable.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// Blocks of `B` quantized from x by a weight quantizer, as bytes.
fn quantized<B: GgmlBlock>(x: &[f32], quantize: fn(&[f32], &mut [B])) -> Vec<u8> {
    let mut blocks = vec![B::zeroed(); x.len() / B::ELEMS];
    quantize(x, &mut blocks);
    bytemuck::cast_slice(&blocks).to_vec()
}

/// x (n,) as weights of type `ty`: `ty.bytes_for(n)` bytes.
fn weight_bytes(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    match ty {
        GgmlType::Q4_0 => quantized(x, qw::quantize_row_q4_0),
        GgmlType::Q4_1 => quantized(x, qw::quantize_row_q4_1),
        GgmlType::Q5_0 => quantized(x, qw::quantize_row_q5_0),
        GgmlType::Q5_1 => quantized(x, qw::quantize_row_q5_1),
        GgmlType::Q8_0 => quantized(x, qw::quantize_row_q8_0),
        GgmlType::Q4K => quantized(x, qw::quantize_row_q4_k),
        GgmlType::Q5K => quantized(x, qw::quantize_row_q5_k),
        GgmlType::Q6K => quantized(x, qw::quantize_row_q6_k),
        // The activation quantizers write the same bytes a GGUF F16/F32 tensor holds.
        other => activation_bytes(&QuantKernels::scalar(), other, x),
    }
}

/// x (n,) quantized to the activation type `partner` by `table`.
fn activation_bytes(table: &QuantKernels, partner: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; bytes_for(partner, x.len())];
    table.quantize_activation(partner, x, &mut out).expect("benched types have quantizers");
    out
}

fn bytes_for(ty: GgmlType, n: usize) -> usize {
    ty.bytes_for(n as u64).expect("bench sizes are block multiples") as usize
}

/// A label such as `q4_k-2048`.
fn type_label(ty: GgmlType, n: usize) -> String {
    format!("{}-{n}", ty.name().to_ascii_lowercase())
}

fn vec_dot(c: &mut Criterion) {
    let tables = tables();
    let mut g = c.benchmark_group("vec_dot");
    for ty in WEIGHT_TYPES {
        for n in DOT_LENS {
            let w = weight_bytes(ty, &values(n, 1));
            let act = activation_bytes(&QuantKernels::scalar(), vec_dot_type(ty), &values(n, 2));
            g.throughput(Throughput::Bytes(w.len() as u64));
            for (label, t) in &tables {
                let dot = t.vec_dot_fn(ty).expect("benched types have dots");
                g.bench_with_input(BenchmarkId::new(type_label(ty, n), label), &(), |b, _| {
                    b.iter(|| dot(n, black_box(&w), black_box(&act)))
                });
            }
        }
    }
    g.finish();
}

/// W (rows, MATVEC_COLS) of type `ty` with about `bytes` bytes: one quantized tile repeated
/// (quantizing hundreds of MiB with the reference quantizers would take minutes; the bytes
/// are streamed the same either way).
fn matrix(ty: GgmlType, bytes: usize) -> (Vec<u8>, usize) {
    let row_bytes = bytes_for(ty, MATVEC_COLS);
    let rows = (bytes / row_bytes).max(1);
    let tile_rows = rows.min(64);
    let tile = weight_bytes(ty, &values(tile_rows * MATVEC_COLS, 3));
    let mut w = Vec::with_capacity(rows * row_bytes);
    while w.len() < rows * row_bytes {
        let take = tile.len().min(rows * row_bytes - w.len());
        w.extend_from_slice(&tile[..take]);
    }
    (w, rows)
}

/// Bytes of a matrix that cannot stay in any cache: 1.25 x the last-level cache (sysfs), at
/// least 64 MiB; or `FOVEA_BENCH_DRAM_MIB`.
fn dram_bytes() -> usize {
    if let Some(mib) = std::env::var("FOVEA_BENCH_DRAM_MIB").ok().and_then(|v| v.parse::<usize>().ok()) {
        return mib << 20;
    }
    let llc = (0..8)
        .filter_map(|i| {
            std::fs::read_to_string(format!("/sys/devices/system/cpu/cpu0/cache/index{i}/size")).ok()
        })
        .filter_map(|s| parse_cache_size(s.trim()))
        .max()
        .unwrap_or(0);
    (llc + llc / 4).max(64 << 20)
}

/// "32768K", "4M", "260M" -> bytes.
fn parse_cache_size(s: &str) -> Option<usize> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: usize = num.parse().ok()?;
    Some(match unit {
        "K" => n << 10,
        "M" => n << 20,
        "G" => n << 30,
        _ => n,
    })
}

/// out (rows,) = W (rows, cols) @ act, one row at a time on one thread: the decode matmul.
/// `with_scalar: false` leaves the scalar table out.
fn matvec_group(c: &mut Criterion, name: &str, bytes: usize, with_scalar: bool) {
    let tables: Vec<_> =
        tables().into_iter().filter(|(label, _)| with_scalar || *label != "scalar").collect();
    let mut g = c.benchmark_group(name);
    for ty in WEIGHT_TYPES {
        let (w, rows) = matrix(ty, bytes);
        let row_bytes = bytes_for(ty, MATVEC_COLS);
        let act = activation_bytes(&QuantKernels::scalar(), vec_dot_type(ty), &values(MATVEC_COLS, 4));
        let mut out = vec![0.0f32; rows];
        g.throughput(Throughput::Bytes(w.len() as u64));
        for (label, t) in &tables {
            g.bench_with_input(BenchmarkId::new(ty.name().to_ascii_lowercase(), label), &(), |b, _| {
                b.iter(|| {
                    t.vec_dot_rows(ty, MATVEC_COLS, black_box(&w), row_bytes, black_box(&act), &mut out)
                        .expect("benched types have dots");
                    black_box(&out);
                })
            });
        }
    }
    g.finish();
}

fn matvec_l2(c: &mut Criterion) {
    matvec_group(c, "matvec_l2", L2_BYTES, true);
}

fn matvec_dram(c: &mut Criterion) {
    // No scalar run here: the scalar kernels compute at 0.1-1.2 GB/s, far below memory
    // bandwidth, so matvec_l2 already gives their speed, and over a few hundred MiB they would
    // take most of the bench's time.
    matvec_group(c, "matvec_dram", dram_bytes(), false);
}

/// Types with prompt tiles (SmolLM2: Q4_1; Gemma 3: Q5_0, Q8_0, Q4_K, Q6_K).
const PROMPT_TYPES: [GgmlType; 5] =
    [GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4K, GgmlType::Q6K];

/// Rows and tokens of the prompt tile: the engine's row tile, a batch of 64.
const TILE_ROWS: usize = 16;
const TILE_TOKENS: usize = 64;

/// out (TILE_TOKENS, rows) = W (rows, n) @ acts (TILE_TOKENS, n) with the kernel `matmul` picks
/// for a batch of this size on table `t`.
fn prompt_tile_matmul(t: &QuantKernels, ty: GgmlType, n: usize, w: &[u8], acts: &[u8], out: &mut [f32]) {
    let (row_bytes, act_bytes) = (bytes_for(ty, n), bytes_for(vec_dot_type(ty), n));
    let rows = w.len() / row_bytes;
    // K-quants in batches of 8+ tokens use the tiled-order dots, as llama.cpp does.
    let batch = t.batch_dot_fn(ty).is_some();
    let tile = if batch { t.batch_dot_tile_fn(ty) } else { t.vec_dot_tile_fn(ty) };
    let dot4 = if batch { t.batch_dot4_fn(ty) } else { t.vec_dot4_fn(ty) };
    if let Some(tile) = tile {
        tile(n, w, acts, TILE_TOKENS, out);
    } else if let Some(dot4) = dot4 {
        let mut quad = vec![0.0f32; 4 * rows];
        for t0 in (0..TILE_TOKENS).step_by(4) {
            dot4(n, w, &acts[t0 * act_bytes..], act_bytes, &mut quad);
            for (k, q) in quad.chunks_exact(rows).enumerate() {
                out[(t0 + k) * rows..(t0 + k + 1) * rows].copy_from_slice(q);
            }
        }
    } else {
        let dot = t.batch_dot_fn(ty).unwrap_or_else(|| t.vec_dot_fn(ty).expect("benched types have dots"));
        for (tok, o) in out.chunks_exact_mut(rows).enumerate() {
            for (r, o) in o.iter_mut().enumerate() {
                *o = dot(
                    n,
                    &w[r * row_bytes..(r + 1) * row_bytes],
                    &acts[tok * act_bytes..(tok + 1) * act_bytes],
                );
            }
        }
    }
}

fn prompt_tile(c: &mut Criterion) {
    let tables = tables();
    let mut g = c.benchmark_group("prompt_tile");
    let n = MATVEC_COLS;
    for ty in PROMPT_TYPES {
        let w = weight_bytes(ty, &values(TILE_ROWS * n, 5));
        let acts = activation_bytes(&QuantKernels::scalar(), vec_dot_type(ty), &values(TILE_TOKENS * n, 6));
        let mut out = vec![0.0f32; TILE_TOKENS * TILE_ROWS];
        g.throughput(Throughput::Bytes((w.len() * TILE_TOKENS) as u64));
        for (label, t) in &tables {
            g.bench_with_input(BenchmarkId::new(ty.name().to_ascii_lowercase(), label), &(), |b, _| {
                b.iter(|| {
                    prompt_tile_matmul(t, ty, n, black_box(&w), black_box(&acts), &mut out);
                    black_box(&out);
                })
            });
        }
    }
    g.finish();
}

fn quantize(c: &mut Criterion) {
    const N: usize = 8192;
    let tables = tables();
    let x = values(N, 5);
    let mut g = c.benchmark_group("quantize");
    g.throughput(Throughput::Bytes((N * 4) as u64));
    for partner in [GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8K, GgmlType::F16] {
        let mut out = vec![0u8; bytes_for(partner, N)];
        for (label, t) in &tables {
            let quantize = t.quantize_fn(partner).expect("activation types have quantizers");
            g.bench_with_input(BenchmarkId::new(type_label(partner, N), label), &(), |b, _| {
                b.iter(|| quantize(black_box(&x), &mut out))
            });
        }
    }
    g.finish();
}

fn ops(c: &mut Criterion) {
    let tables = op_tables();
    let mut g = c.benchmark_group("ops");
    // One row of a 2048-wide model; bytes = floats read.
    const D: usize = 2048;
    let (x, w, up) = (values(D, 6), values(D, 7), values(D, 8));
    let mut out = vec![0.0f32; D];
    g.throughput(Throughput::Bytes((2 * D * 4) as u64));
    for (label, t) in &tables {
        g.bench_with_input(BenchmarkId::new("rms_norm-2048", label), &(), |b, _| {
            b.iter(|| t.rms_norm(black_box(&x), &w, 1e-5, &mut out))
        });
        g.bench_with_input(BenchmarkId::new("swiglu-2048", label), &(), |b, _| {
            b.iter(|| {
                out.copy_from_slice(&x);
                t.swiglu(black_box(&mut out), &up)
            })
        });
        // GeGLU (Gemma): gate values spread over the f16 table's range.
        let gate: Vec<f32> = x.iter().map(|v| 6.0 * v).collect();
        g.bench_with_input(BenchmarkId::new("geglu-2048", label), &(), |b, _| {
            b.iter(|| {
                out.copy_from_slice(&gate);
                t.geglu(black_box(&mut out), &up)
            })
        });
    }
    // One attention row over 512 positions.
    const CTX: usize = 512;
    g.throughput(Throughput::Bytes((CTX * 4) as u64));
    let scores0: Vec<f32> = values(CTX, 9).iter().map(|v| 8.0 * v).collect();
    let mut scores = scores0.clone();
    for (label, t) in &tables {
        g.bench_with_input(BenchmarkId::new("softmax-512", label), &(), |b, _| {
            b.iter(|| {
                scores.copy_from_slice(&scores0);
                t.softmax(black_box(&mut scores))
            })
        });
    }
    // The attention inner loop of one query head, head_dim 64: scores against CTX keys, softmax,
    // weighted sum of CTX values. Bytes = keys + values read.
    const HD: usize = 64;
    let (q, keys, vals) = (values(HD, 10), values(CTX * HD, 11), values(CTX * HD, 12));
    let mut head = vec![0.0f32; HD];
    g.throughput(Throughput::Bytes((2 * CTX * HD * 4) as u64));
    // Both value orders: VecDot (llama.cpp's one-query order) and Gemm (its batched order).
    for (order, name) in
        [(ValueOrder::VecDot, "attention-64x512"), (ValueOrder::Gemm, "attention-64x512-gemm")]
    {
        for (label, t) in &tables {
            g.bench_with_input(BenchmarkId::new(name, label), &(), |b, _| {
                b.iter(|| {
                    t.attn_scores(black_box(&q), &keys, 0.125, &mut scores);
                    t.softmax(&mut scores);
                    t.attn_values(&scores, &vals, order, &mut head);
                    black_box(&head);
                })
            });
        }
    }
    // RoPE has one implementation (no table entry): every query and key head of a 2048-wide
    // layer (32 heads of 64) at one position.
    let rope = RopeTable::new(HD, 10000.0, 1.0, RopeLayout::Normal);
    let (mut cos, mut sin) = (vec![0.0f32; HD / 2], vec![0.0f32; HD / 2]);
    rope.angles(100, &mut cos, &mut sin);
    let mut heads = values(D, 13);
    g.throughput(Throughput::Bytes((D * 4) as u64));
    g.bench_function(BenchmarkId::new("rope-2048", "scalar"), |b| {
        b.iter(|| {
            for head in black_box(&mut heads).chunks_exact_mut(HD) {
                rope.rotate(head, &cos, &sin);
            }
        })
    });
    g.finish();
}

/// One decoded token's attention past the foveated cache's budget, per KV head: the GQA group's
/// 3 query heads (SmolLM2) over B = 512 entries of head_dim 64 -- scores, softmax, value sums.
/// `per-query-f32` is the loop decoding ran before the group kernels (each query on its own,
/// ggml's orders); `group-f32` / `group-f16` read each row once for the group. `_l2`: one KV
/// head, whose 256 KiB (f32) stay in L2; `_token`: the 90 KV heads of a SmolLM2 token (30
/// layers x 3) in turn, 23.6 MB (f32) or 11.8 MB (f16) from beyond the caches' reach.
/// Bytes = keys and values read, in the stored type.
fn decode_attention(c: &mut Criterion) {
    use fovea_kernels::ops::KvRows;
    use half::f16;
    const B: usize = 512;
    const HD: usize = 64;
    const G: usize = 3;
    for (group_name, heads) in [("decode_attention_l2", 1usize), ("decode_attention_token", 90)] {
        let mut g = c.benchmark_group(group_name);
        let k32: Vec<Vec<f32>> = (0..heads).map(|h| values(B * HD, 20 + h as u64)).collect();
        let v32: Vec<Vec<f32>> = (0..heads).map(|h| values(B * HD, 200 + h as u64)).collect();
        let narrow = |x: &Vec<f32>| -> Vec<f16> { x.iter().map(|&v| f16::from_f32(v)).collect() };
        let (k16, v16): (Vec<Vec<f16>>, Vec<Vec<f16>>) =
            (k32.iter().map(narrow).collect(), v32.iter().map(narrow).collect());
        let q = values(G * HD, 14);
        let mut s = vec![0.0f32; G * B];
        let mut out = vec![0.0f32; G * HD];
        for (label, t) in op_tables() {
            g.throughput(Throughput::Bytes((heads * 2 * B * HD * 4) as u64));
            g.bench_with_input(BenchmarkId::new("per-query-f32", label), &(), |b, _| {
                b.iter(|| {
                    for (k, v) in k32.iter().zip(&v32) {
                        for (qg, (sg, og)) in
                            q.chunks_exact(HD).zip(s.chunks_exact_mut(B).zip(out.chunks_exact_mut(HD)))
                        {
                            t.attn_scores(qg, k, 0.125, sg);
                            t.softmax(sg);
                            t.attn_values(sg, v, ValueOrder::Gemm, og);
                        }
                    }
                    black_box(&out);
                })
            });
            for (name, bytes, rows) in [
                (
                    "group-f32",
                    4,
                    (0..heads).map(|h| (KvRows::F32(&k32[h]), KvRows::F32(&v32[h]))).collect::<Vec<_>>(),
                ),
                (
                    "group-f16",
                    2,
                    (0..heads).map(|h| (KvRows::F16(&k16[h]), KvRows::F16(&v16[h]))).collect::<Vec<_>>(),
                ),
            ] {
                g.throughput(Throughput::Bytes((heads * 2 * B * HD * bytes) as u64));
                g.bench_with_input(BenchmarkId::new(name, label), &(), |b, _| {
                    b.iter(|| {
                        for &(k, v) in &rows {
                            t.group_scores(&q, k, HD, 0.125, &mut s, B);
                            s.chunks_exact_mut(B).for_each(|sg| {
                                t.softmax(sg);
                            });
                            out.fill(0.0);
                            t.group_values_add(&s, B, v, HD, &mut out);
                        }
                        black_box(&out);
                    })
                });
            }
        }
        g.finish();
    }
}

criterion_group! {
    name = kernels;
    config = quick();
    targets = vec_dot, matvec_l2, matvec_dram, prompt_tile, quantize, ops, decode_attention
}
criterion_main!(kernels);
