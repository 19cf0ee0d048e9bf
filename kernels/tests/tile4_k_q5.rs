//! The four-token tiles for the Gemma 3 weight types must equal the single-row dots they stand
//! for exactly (tolerance: 0 ulp; both NaN counts as equal):
//! - Q5_0 tiles (`vec_dot4_fn`) against the table's own `vec_dot_fn`;
//! - the whole-batch tiles (`vec_dot_tile_fn`, Q5_0 and SmolLM2's Q4_1) against `vec_dot_fn`;
//! - the whole-batch K-quant tiles (`batch_dot_tile_fn`, Q4_K and Q6_K) against `batch_dot_fn` and the
//!   scalar reference;
//! - K-quant batch tiles (`batch_dot4_fn`) against `batch_dot_fn` and against the scalar
//!   reference `quant::tiled_k` (llama.cpp's tiled f32 order, which the golden logits pin).
//!
//! Inputs: row lengths of 1, 2, 7, 31 and 256 blocks; random codes with modest scales, all-zero
//! blocks and activations, and extreme f16 scales (65504, subnormal, negative).

use fovea_formats::blocks::{BlockQ4K, BlockQ6K, BlockQ8K};
use fovea_formats::GgmlType;
use fovea_kernels::quant::{tiled_k, vec_dot_type};
use fovea_kernels::table::{QuantKernels, VecDot4Fn, VecDotFn, VecDotTileFn};
use half::f16;

const BLOCKS: [usize; 5] = [1, 2, 7, 31, 256];

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [-1, 1).
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

/// How a case fills weights and activations.
#[derive(Clone, Copy, Debug)]
enum Fill {
    Random,
    Zeros,
    ExtremeScales,
}

/// Byte offsets of the f16 scale fields inside one block of `w`.
fn scale_offsets(w: GgmlType) -> &'static [usize] {
    match w {
        GgmlType::Q5_0 => &[0],
        GgmlType::Q4_1 => &[0, 2],
        GgmlType::Q4K => &[0, 2],
        GgmlType::Q6K => &[208],
        _ => unreachable!("not a type under test"),
    }
}

/// `rows` weight rows of `blocks` blocks of `w`, row-major.
fn weights(rng: &mut XorShift, w: GgmlType, blocks: usize, rows: usize, fill: Fill) -> Vec<u8> {
    let bytes = rows * blocks * w.block_bytes();
    let mut out: Vec<u8> = match fill {
        Fill::Zeros => vec![0; bytes],
        _ => (0..bytes).map(|_| rng.next() as u8).collect(),
    };
    let extremes = [65504.0f32, -65504.0, 6.0e-8, -1.0e-7, 0.0, 1.0];
    for (b, block) in out.chunks_exact_mut(w.block_bytes()).enumerate() {
        for (i, &at) in scale_offsets(w).iter().enumerate() {
            let value = match fill {
                Fill::Zeros => 0.0,
                Fill::Random => rng.f32() * 0.05,
                Fill::ExtremeScales => extremes[(b + 3 * i) % extremes.len()],
            };
            block[at..at + 2].copy_from_slice(&f16::from_f32(value).to_le_bytes());
        }
    }
    out
}

/// Four activation rows (4, partner bytes of n), quantized by `kernels`.
fn activations(
    rng: &mut XorShift,
    kernels: &QuantKernels,
    w: GgmlType,
    n: usize,
    fill: Fill,
) -> (Vec<u8>, usize) {
    let partner = vec_dot_type(w);
    let quantize = kernels.quantize_fn(partner).unwrap();
    let stride = partner.bytes_for(n as u64).unwrap() as usize;
    let mut acts = vec![0u8; 4 * stride];
    for t in 0..4 {
        let x: Vec<f32> = (0..n)
            .map(|i| match fill {
                Fill::Zeros => 0.0,
                Fill::Random => rng.f32() * 8.0,
                // One token with huge values, one with tiny ones, one with a lone spike.
                Fill::ExtremeScales => match t {
                    0 => rng.f32() * 3.0e38,
                    1 => rng.f32() * 1.0e-30,
                    2 if i == n / 2 => 1.0e4,
                    _ => rng.f32(),
                },
            })
            .collect();
        quantize(&x, &mut acts[t * stride..(t + 1) * stride]);
    }
    (acts, stride)
}

fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Runs the whole-batch tile `tile` over awkward row and token counts (tails of the 4-row and
/// 2-token groups) and compares every (row, token) with `single`.
fn check_batch_tile(
    label: &str,
    w: GgmlType,
    tile: VecDotTileFn,
    single: &SingleDot,
    rng: &mut XorShift,
    kernels: &QuantKernels,
) {
    let elems = w.block_elems();
    let partner = vec_dot_type(w);
    for blocks in BLOCKS {
        for (fill, nr, n_tok) in [
            (Fill::Random, 16, 9),
            (Fill::Random, 5, 1),
            (Fill::Random, 7, 6),
            (Fill::Zeros, 4, 3),
            (Fill::ExtremeScales, 3, 7),
        ] {
            let n = blocks * elems;
            let row_bytes = blocks * w.block_bytes();
            let rows = weights(rng, w, blocks, nr, fill);
            let stride = partner.bytes_for(n as u64).unwrap() as usize;
            let mut acts = vec![0u8; n_tok * stride];
            for t in 0..n_tok {
                // Reuse the four-token filler, one token at a time.
                let (four, _) = activations(rng, kernels, w, n, fill);
                acts[t * stride..(t + 1) * stride]
                    .copy_from_slice(&four[(t % 4) * stride..(t % 4 + 1) * stride]);
            }
            let mut out = vec![f32::NAN; n_tok * nr];
            tile(n, &rows, &acts, n_tok, &mut out);
            for r in 0..nr {
                for t in 0..n_tok {
                    let want = single(
                        n,
                        &rows[r * row_bytes..(r + 1) * row_bytes],
                        &acts[t * stride..(t + 1) * stride],
                    );
                    let got = out[t * nr + r];
                    assert!(
                        same(got, want),
                        "{label} {w} tile {fill:?} blocks={blocks} nr={nr} n_tok={n_tok} row {r} token {t}: {got} != {want}"
                    );
                }
            }
        }
    }
}

/// A single-row dot through bytes: (n, weight row, activation row) -> f32.
type SingleDot = dyn Fn(usize, &[u8], &[u8]) -> f32;

/// Runs `dot4` over `rows` rows and compares every (row, token) with `single`.
fn check_tile(
    label: &str,
    w: GgmlType,
    dot4: VecDot4Fn,
    single: &SingleDot,
    rng: &mut XorShift,
    kernels: &QuantKernels,
) {
    let elems = w.block_elems();
    for blocks in BLOCKS {
        for fill in [Fill::Random, Fill::Zeros, Fill::ExtremeScales] {
            let n = blocks * elems;
            let nr = 3;
            let row_bytes = blocks * w.block_bytes();
            let rows = weights(rng, w, blocks, nr, fill);
            let (acts, stride) = activations(rng, kernels, w, n, fill);
            let mut tile = vec![0.0f32; 4 * nr];
            dot4(n, &rows, &acts, stride, &mut tile);
            for r in 0..nr {
                for t in 0..4 {
                    let want = single(
                        n,
                        &rows[r * row_bytes..(r + 1) * row_bytes],
                        &acts[t * stride..(t + 1) * stride],
                    );
                    let got = tile[t * nr + r];
                    assert!(
                        same(got, want),
                        "{label} {w} {fill:?} blocks={blocks} row {r} token {t}: {got} != {want}"
                    );
                }
            }
        }
    }
}

/// `bytes` copied into blocks (test buffers are byte vectors, not aligned for `B`).
fn blocks_of<B: bytemuck::Pod>(bytes: &[u8]) -> Vec<B> {
    let mut out = vec![B::zeroed(); bytes.len() / size_of::<B>()];
    bytemuck::cast_slice_mut::<B, u8>(&mut out).copy_from_slice(bytes);
    out
}

/// The scalar tiled-order reference through bytes.
fn tiled_reference(w: GgmlType) -> impl Fn(usize, &[u8], &[u8]) -> f32 {
    move |n, w_row, act_row| {
        let y: Vec<BlockQ8K> = blocks_of(act_row);
        match w {
            GgmlType::Q4K => tiled_k::vec_dot_q4_k_q8_k_tiled(n, &blocks_of::<BlockQ4K>(w_row), &y),
            GgmlType::Q6K => tiled_k::vec_dot_q6_k_q8_k_tiled(n, &blocks_of::<BlockQ6K>(w_row), &y),
            _ => unreachable!("not a K-quant under test"),
        }
    }
}

#[test]
fn gemma_tiles_equal_single_dots_bit_for_bit() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let mut tested = 0;
    for (label, kernels) in QuantKernels::variants() {
        let Ok(kernels) = kernels else {
            eprintln!("NOTICE: skipping {label}: not supported by this CPU");
            continue;
        };
        if let Some(tile) = kernels.vec_dot_tile_fn(GgmlType::Q5_0) {
            let dot: VecDotFn = kernels.vec_dot_fn(GgmlType::Q5_0).unwrap();
            check_batch_tile(label, GgmlType::Q5_0, tile, &dot, &mut rng, &kernels);
            tested += 1;
        }
        if let Some(dot4) = kernels.vec_dot4_fn(GgmlType::Q5_0) {
            let dot: VecDotFn = kernels.vec_dot_fn(GgmlType::Q5_0).unwrap();
            check_tile(label, GgmlType::Q5_0, dot4, &dot, &mut rng, &kernels);
            tested += 1;
        }
        for w in [GgmlType::Q4K, GgmlType::Q6K] {
            let Some(tile) = kernels.batch_dot_tile_fn(w) else { continue };
            let batch = kernels.batch_dot_fn(w).expect("a batch tile implies a batch dot");
            check_batch_tile(label, w, tile, &batch, &mut rng, &kernels);
            check_batch_tile(label, w, tile, &tiled_reference(w), &mut rng, &kernels);
            tested += 1;
        }
        for w in [GgmlType::Q4K, GgmlType::Q6K] {
            let Some(dot4) = kernels.batch_dot4_fn(w) else { continue };
            let batch = kernels.batch_dot_fn(w).expect("a batch tile implies a batch dot");
            check_tile(label, w, dot4, &batch, &mut rng, &kernels);
            check_tile(label, w, dot4, &tiled_reference(w), &mut rng, &kernels);
            tested += 1;
        }
    }
    let avx2 = fovea_kernels::isa::Isa::Avx2.is_supported();
    assert!(tested > 0 || !avx2, "no Gemma tile kernel was tested on an AVX2 CPU");
}

#[test]
fn q4_1_batch_tiles_equal_single_dots_bit_for_bit() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut tested = 0;
    for (label, kernels) in QuantKernels::variants() {
        let Ok(kernels) = kernels else {
            eprintln!("NOTICE: skipping {label}: not supported by this CPU");
            continue;
        };
        if let Some(tile) = kernels.vec_dot_tile_fn(GgmlType::Q4_1) {
            let dot: VecDotFn = kernels.vec_dot_fn(GgmlType::Q4_1).unwrap();
            check_batch_tile(label, GgmlType::Q4_1, tile, &dot, &mut rng, &kernels);
            tested += 1;
        }
    }
    if tested == 0 {
        eprintln!("NOTICE: no Q4_1 batch tile on this CPU (it needs AVX-512 VNNI); nothing compared");
    }
    let vnni = QuantKernels::variants().iter().any(|(l, k)| *l == "avx2-vnni" && k.is_ok());
    assert!(tested > 0 || !vnni, "a VNNI CPU has the Q4_1 batch tile, and it was not tested");
}
