//! Equivalence tests for the scalar quantized kernels, on fixed-seed random data.
//!
//! 1. Exactness: `vec_dot(w, a)` equals the f64 dot of the dequantized weights and the
//!    dequantized activation up to f32 rounding (a layout or bit bug is an O(1) error).
//! 2. Accuracy: `vec_dot(w, quantize_activation(x))` against the f32 dot of the dequantized
//!    weights with the unquantized x, within the per-activation-type table [`DOT_TOL`].
//! 3. Quantizer round trips within their step bounds ([`ROUND_TRIP`]).

use alloc::vec;
use alloc::vec::Vec;
use bytemuck::Zeroable;

use fovea_formats::blocks::{BlockQ8K, BlockQ8_0, BlockQ8_1, GgmlBlock};
use fovea_formats::dequant::dequantize_row;
use fovea_formats::GgmlType;

use super::quantize_weights as qw;
use super::row::{quantize_activation, supports_vec_dot, vec_dot, vec_dot_type};

/// xorshift64*: tiny, deterministic, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    /// Roughly normal (sum of four uniforms), with occasional 8x outliers like real activations.
    fn normalish(&mut self) -> f32 {
        let v = (0..4).map(|_| self.uniform()).sum::<f32>() * 0.87;
        if self.next_u64().is_multiple_of(64) {
            v * 8.0
        } else {
            v
        }
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.normalish()).collect()
    }
}

const WEIGHT_TYPES: [GgmlType; 13] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2K,
    GgmlType::Q3K,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
];

fn bytes_len(ty: GgmlType, n: usize) -> usize {
    ty.bytes_for(n as u64).unwrap() as usize
}

fn to_blocks<B: GgmlBlock>(x: &[f32], quantize: fn(&[f32], &mut [B])) -> Vec<u8> {
    let mut out = vec![B::zeroed(); x.len() / B::ELEMS];
    quantize(x, &mut out);
    bytemuck::cast_slice(&out).to_vec()
}

/// Quantizes a weight row with our reference weight quantizers.
fn quantize_weights(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    match ty {
        GgmlType::Q4_0 => to_blocks(x, qw::quantize_row_q4_0),
        GgmlType::Q4_1 => to_blocks(x, qw::quantize_row_q4_1),
        GgmlType::Q5_0 => to_blocks(x, qw::quantize_row_q5_0),
        GgmlType::Q5_1 => to_blocks(x, qw::quantize_row_q5_1),
        GgmlType::Q2K => to_blocks(x, qw::quantize_row_q2_k),
        GgmlType::Q3K => to_blocks(x, qw::quantize_row_q3_k),
        GgmlType::Q4K => to_blocks(x, qw::quantize_row_q4_k),
        GgmlType::Q5K => to_blocks(x, qw::quantize_row_q5_k),
        GgmlType::Q6K => to_blocks(x, qw::quantize_row_q6_k),
        // Float and Q8 types quantize like activations.
        other => {
            let mut out = vec![0u8; bytes_len(other, x.len())];
            quantize_activation(other, x, &mut out);
            out
        }
    }
}

fn dequant(ty: GgmlType, bytes: &[u8], n: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; n];
    dequantize_row(ty, bytes, &mut out).unwrap();
    out
}

fn dot64(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

fn abs_dot64(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (x as f64 * y as f64).abs()).sum()
}

/// Sum over Q8_1 blocks of |m_w * s_a|: the term where ggml uses the rounded-to-f16 s = d*sum(q)
/// instead of the exact sum, so the "exact" comparison must allow f16 rounding of it.
fn q8_1_min_term(w: GgmlType, w_bytes: &[u8], a_bytes: &[u8]) -> f64 {
    if vec_dot_type(w) != GgmlType::Q8_1 {
        return 0.0;
    }
    // Q4_1 and Q5_1 start with d then m; Q8_1 with d then s (f16 each).
    let f16_at =
        |bytes: &[u8], off: usize| half::f16::from_le_bytes([bytes[off], bytes[off + 1]]).to_f32() as f64;
    let (ws, as_) = (w.block_bytes(), GgmlType::Q8_1.block_bytes());
    (0..a_bytes.len() / as_).map(|b| (f16_at(w_bytes, b * ws + 2) * f16_at(a_bytes, b * as_ + 2)).abs()).sum()
}

#[test]
fn vec_dot_type_table_matches_ggml() {
    use GgmlType::*;
    let table = [
        (F32, F32),
        (F16, F16),
        (BF16, BF16),
        (Q4_0, Q8_0),
        (Q4_1, Q8_1),
        (Q5_0, Q8_0),
        (Q5_1, Q8_1),
        (Q8_0, Q8_0),
        (Q2K, Q8K),
        (Q3K, Q8K),
        (Q4K, Q8K),
        (Q5K, Q8K),
        (Q6K, Q8K),
    ];
    for (w, a) in table {
        assert_eq!(vec_dot_type(w), a, "{w}");
        assert!(supports_vec_dot(w));
    }
    assert!(!supports_vec_dot(Q8_1) && !supports_vec_dot(Q8K));
}

#[test]
fn vec_dot_equals_dot_of_dequantized_operands() {
    let mut rng = Rng(0x5eed_0001);
    for w in WEIGHT_TYPES {
        let a = vec_dot_type(w);
        for n in [256usize, 512, 4096] {
            let w_bytes = quantize_weights(w, &rng.vec(n));
            let mut a_bytes = vec![0u8; bytes_len(a, n)];
            quantize_activation(a, &rng.vec(n), &mut a_bytes);
            let (wd, ad) = (dequant(w, &w_bytes, n), dequant(a, &a_bytes, n));
            let got = vec_dot(w, n, &w_bytes, &a_bytes) as f64;
            let want = dot64(&wd, &ad);
            let tol = 1e-4 * abs_dot64(&wd, &ad) + 2e-3 * q8_1_min_term(w, &w_bytes, &a_bytes) + 1e-6;
            assert!((got - want).abs() <= tol, "{w} x {a}, n = {n}: got {got}, want {want}, tol {tol}");
        }
    }
}

/// Accuracy of the quantized dot against the f32 dot, as |error| / (||w|| * ||x||), per
/// activation type. Each activation element moves by at most half a step (amax / 254 of its
/// 32- or 256-element block; f16 keeps 11 bits, bf16 8) and random-sign errors add like sqrt(n).
/// Limits are ~3x the worst seen over these seeds (seen: F32 3.7e-9, F16 1.0e-5, BF16 2.8e-4,
/// Q8_0 1.3e-3, Q8_1 9.0e-4, Q8_K 2.6e-3; Q8_K blocks are longer, so their amax is larger).
const DOT_TOL: [(GgmlType, f64); 6] = [
    (GgmlType::F32, 1e-8),
    (GgmlType::F16, 3e-5),
    (GgmlType::BF16, 1e-3),
    (GgmlType::Q8_0, 4e-3),
    (GgmlType::Q8_1, 4e-3),
    (GgmlType::Q8K, 8e-3),
];

#[test]
fn quantized_dot_tracks_f32_dot_within_table() {
    let mut rng = Rng(0x5eed_0002);
    for w in WEIGHT_TYPES {
        let a = vec_dot_type(w);
        let tol = DOT_TOL.iter().find(|(t, _)| *t == a).map(|(_, v)| *v).unwrap();
        let mut worst = 0.0f64;
        for n in [256usize, 1024, 4096] {
            for _ in 0..8 {
                let x = rng.vec(n);
                let w_bytes = quantize_weights(w, &rng.vec(n));
                let wd = dequant(w, &w_bytes, n);
                let mut a_bytes = vec![0u8; bytes_len(a, n)];
                quantize_activation(a, &x, &mut a_bytes);
                let got = vec_dot(w, n, &w_bytes, &a_bytes) as f64;
                let want = dot64(&wd, &x);
                let scale = dot64(&wd, &wd).sqrt() * dot64(&x, &x).sqrt();
                worst = worst.max((got - want).abs() / scale);
            }
        }
        assert!(worst <= tol, "{w} x {a}: relative error {worst:e} exceeds {tol:e}");
    }
}

#[test]
fn small_and_edge_sizes() {
    let mut rng = Rng(0x5eed_0003);
    for w in WEIGHT_TYPES {
        let a = vec_dot_type(w);
        let block = w.block_elems().max(a.block_elems());
        for n in [0usize, block, 2 * block] {
            let w_bytes = quantize_weights(w, &rng.vec(n));
            let mut a_bytes = vec![0u8; bytes_len(a, n)];
            quantize_activation(a, &rng.vec(n), &mut a_bytes);
            let (wd, ad) = (dequant(w, &w_bytes, n), dequant(a, &a_bytes, n));
            let want = dot64(&wd, &ad);
            let got = vec_dot(w, n, &w_bytes, &a_bytes) as f64;
            let tol = 1e-4 * abs_dot64(&wd, &ad) + 2e-3 * q8_1_min_term(w, &w_bytes, &a_bytes);
            assert!((got - want).abs() <= tol, "{w} n = {n}: {got} vs {want}");
        }
    }
}

#[test]
fn zeros_give_zero() {
    for w in WEIGHT_TYPES {
        let a = vec_dot_type(w);
        let n = 256;
        let w_bytes = quantize_weights(w, &[0.0; 256]);
        assert!(dequant(w, &w_bytes, n).iter().all(|&v| v == 0.0), "{w} zero weights");
        let mut a_bytes = vec![0u8; bytes_len(a, n)];
        quantize_activation(a, &[0.0; 256], &mut a_bytes);
        assert!(dequant(a, &a_bytes, n).iter().all(|&v| v == 0.0), "{a} zero activations");
        let ones = quantize_weights(w, &[1.0; 256]);
        assert_eq!(vec_dot(w, n, &ones, &a_bytes), 0.0, "{w} x zero activations");
        let mut a_ones = vec![0u8; bytes_len(a, n)];
        quantize_activation(a, &[1.0; 256], &mut a_ones);
        assert_eq!(vec_dot(w, n, &w_bytes, &a_ones), 0.0, "zero {w} weights");
    }
}

/// Extreme quants and scales: every quant at its top value, large activations. Checks that the
/// integer sums do not overflow and the exact comparison still holds.
#[test]
fn max_magnitudes() {
    let n = 512;
    for w in WEIGHT_TYPES {
        let a = vec_dot_type(w);
        // Alternating +-1000 gives blocks whose quants hit both ends of their range.
        let x: Vec<f32> = (0..n).map(|i| if i % 3 == 0 { -1000.0 } else { 1000.0 }).collect();
        let w_bytes = quantize_weights(w, &x);
        let mut a_bytes = vec![0u8; bytes_len(a, n)];
        quantize_activation(a, &x, &mut a_bytes);
        let (wd, ad) = (dequant(w, &w_bytes, n), dequant(a, &a_bytes, n));
        let got = vec_dot(w, n, &w_bytes, &a_bytes) as f64;
        let want = dot64(&wd, &ad);
        assert!((got - want).abs() <= 1e-4 * abs_dot64(&wd, &ad), "{w}: {got} vs {want}");
        let exact = dot64(&x, &x);
        assert!((got - exact).abs() <= 0.2 * exact, "{w}: {got} far from {exact}");
    }
}

/// Random bytes exercise every bit of the K-quant layouts (not just what our quantizers make).
#[test]
fn k_quants_with_random_bits() {
    let mut rng = Rng(0x5eed_0004);
    for w in [GgmlType::Q2K, GgmlType::Q3K, GgmlType::Q4K, GgmlType::Q5K, GgmlType::Q6K] {
        let n = 1024;
        let mut w_bytes: Vec<u8> = (0..bytes_len(w, n)).map(|_| rng.next_u64() as u8).collect();
        // Keep the f16 super-scales finite and modest: rewrite them as small values.
        let stride = w.block_bytes();
        let d_offsets: &[usize] = match w {
            GgmlType::Q2K => &[80, 82],
            GgmlType::Q3K => &[108],
            GgmlType::Q4K | GgmlType::Q5K => &[0, 2],
            _ => &[208],
        };
        for b in 0..n / 256 {
            for &off in d_offsets {
                let d = half::f16::from_f32(0.001 + 0.01 * rng.uniform().abs());
                w_bytes[b * stride + off..b * stride + off + 2].copy_from_slice(&d.to_le_bytes());
            }
        }
        let mut a_bytes = vec![0u8; bytes_len(GgmlType::Q8K, n)];
        quantize_activation(GgmlType::Q8K, &rng.vec(n), &mut a_bytes);
        let (wd, ad) = (dequant(w, &w_bytes, n), dequant(GgmlType::Q8K, &a_bytes, n));
        let got = vec_dot(w, n, &w_bytes, &a_bytes) as f64;
        let want = dot64(&wd, &ad);
        assert!((got - want).abs() <= 1e-4 * abs_dot64(&wd, &ad), "{w}: {got} vs {want}");
    }
}

#[test]
fn misaligned_byte_rows_give_the_same_result() {
    let mut rng = Rng(0x5eed_0005);
    for w in WEIGHT_TYPES {
        let a = vec_dot_type(w);
        let n = 512;
        let w_bytes = quantize_weights(w, &rng.vec(n));
        let x = rng.vec(n);
        let mut a_bytes = vec![0u8; bytes_len(a, n)];
        quantize_activation(a, &x, &mut a_bytes);
        // Same bytes at an odd offset in a larger buffer, for both the quantizer and the dot.
        let mut a_buf = vec![0u8; a_bytes.len() + 1];
        quantize_activation(a, &x, &mut a_buf[1..]);
        assert_eq!(&a_buf[1..], &a_bytes[..], "{a} quantized into a misaligned buffer");
        let mut w_buf = vec![0u8; w_bytes.len() + 1];
        w_buf[1..].copy_from_slice(&w_bytes);
        let aligned = vec_dot(w, n, &w_bytes, &a_bytes);
        assert_eq!(vec_dot(w, n, &w_buf[1..], &a_buf[1..]).to_bits(), aligned.to_bits(), "{w}");
    }
}

#[test]
fn hand_computed_q4_0_q8_0() {
    use super::reference::vec_dot_q4_0_q8_0;
    use fovea_formats::blocks::BlockQ4_0;
    let h = half::f16::from_f32;
    // Weights: element 0 -> q 15 -> 7, element 16 -> q 0 -> -8, rest q 8 -> 0.
    let mut x = BlockQ4_0 { d: h(0.5), qs: [0x88; 16] };
    x.qs[0] = 0x0F;
    let mut y = BlockQ8_0 { d: h(0.25), qs: [0; 32] };
    y.qs[0] = 10;
    y.qs[16] = -3;
    // sumi = 7 * 10 + (-8) * (-3) = 94; result = 94 * 0.5 * 0.25.
    assert_eq!(vec_dot_q4_0_q8_0(32, &[x], &[y]), 11.75);
}

#[test]
fn q8_1_sum_matches_quants() {
    let mut rng = Rng(0x5eed_0006);
    let x = rng.vec(128);
    let mut b = [BlockQ8_1::zeroed(); 4];
    super::quantize::quantize_row_q8_1(&x, &mut b);
    for blk in &b {
        let sum: i32 = blk.qs.iter().map(|&q| q as i32).sum();
        let want = half::f16::from_f32(sum as f32 * blk.d.to_f32());
        // s is rounded from the unrounded d; allow one f16 ulp of difference.
        assert!((blk.s.to_f32() - want.to_f32()).abs() <= want.to_f32().abs() * 2e-3 + 1e-6);
    }
}

/// Per-element round-trip bound, in steps of the block's scale.
const ROUND_TRIP: [(GgmlType, f32); 8] = [
    // Activation quantizers: round to nearest, so half a step (+ f16 rounding of d).
    (GgmlType::Q8_0, 0.5),
    (GgmlType::Q8_1, 0.5),
    (GgmlType::Q8K, 0.5),
    // Asymmetric (min + scale): half a step.
    (GgmlType::Q4_1, 0.5),
    (GgmlType::Q5_1, 0.5),
    // Symmetric with d = max / -8 (or -16): the far positive end clips one step short.
    (GgmlType::Q4_0, 1.0),
    (GgmlType::Q5_0, 1.0),
    (GgmlType::F16, 0.0),
];

/// The largest |d| of a 32-block type, from the f16 at offset 0.
fn block_step(ty: GgmlType, bytes: &[u8], block: usize) -> f32 {
    if ty == GgmlType::Q8K {
        let b: &[BlockQ8K] = bytemuck::cast_slice(bytes);
        return b[block].d.abs();
    }
    let off = block * ty.block_bytes();
    half::f16::from_le_bytes([bytes[off], bytes[off + 1]]).to_f32().abs()
}

#[test]
fn quantizers_round_trip_within_their_step() {
    let mut rng = Rng(0x5eed_0007);
    let n = 4096;
    for (ty, steps) in ROUND_TRIP {
        let x = rng.vec(n);
        let bytes = quantize_weights(ty, &x);
        let y = dequant(ty, &bytes, n);
        let be = ty.block_elems();
        for (i, (&a, &b)) in x.iter().zip(&y).enumerate() {
            let step = if ty == GgmlType::F16 { 0.0 } else { block_step(ty, &bytes, i / be) };
            // f16 rounding of d and m moves a value by at most 2^-11 of its magnitude, and both
            // are bounded by twice the block's largest |x|.
            let block = &x[i / be * be..][..be];
            let block_max = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let bound = steps * step + 2e-3 * block_max + 1e-6;
            assert!((a - b).abs() <= bound, "{ty} element {i}: {a} -> {b}, bound {bound}");
        }
    }
}

/// K-quant (simple quantizer) RMS error relative to the RMS of the data, on outlier-heavy
/// data; ~1.3x the values seen (Q2_K 0.39, Q3_K 0.20, Q4_K 0.10, Q5_K 0.049, Q6_K 0.028).
const K_RMS_TOL: [(GgmlType, f64); 5] = [
    (GgmlType::Q2K, 0.5),
    (GgmlType::Q3K, 0.26),
    (GgmlType::Q4K, 0.13),
    (GgmlType::Q5K, 0.065),
    (GgmlType::Q6K, 0.036),
];

#[test]
fn k_quantizers_round_trip_rms() {
    let mut rng = Rng(0x5eed_0008);
    let n = 4096;
    for (ty, tol) in K_RMS_TOL {
        let x = rng.vec(n);
        let y = dequant(ty, &quantize_weights(ty, &x), n);
        let err: f64 = x.iter().zip(&y).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum();
        let rel = (err / dot64(&x, &x)).sqrt();
        assert!(rel <= tol, "{ty}: relative RMS error {rel} exceeds {tol}");
    }
}
