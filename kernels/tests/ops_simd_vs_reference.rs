//! Every SIMD float op against its scalar reference. The references reproduce llama.cpp's
//! arithmetic operation for operation, and the SIMD versions perform the same operations in
//! the same order, so the tolerance is zero: results must be equal (`==`, so -0 == +0; NaN
//! positions must match). Sizes cover empty, single, odd tails and the 16/64-lane edges.

use fovea_kernels::isa::Isa;
use fovea_kernels::ops::{self, OpKernels, ValueAcc, ValueOrder};

/// Lengths around the 16-lane group and the 64-element dot step, and one long row.
const LENGTHS: [usize; 10] = [0, 1, 7, 16, 17, 63, 64, 65, 200, 4097];

/// xorshift64*: small, fixed-seed, good enough to cover bit patterns.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [-scale, scale).
    fn uniform(&mut self, scale: f32) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }

    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(scale)).collect()
    }
}

/// The SIMD tables this CPU runs (the scalar table is the reference, not compared to itself).
fn simd_tables() -> Vec<OpKernels> {
    let tables: Vec<OpKernels> =
        [Isa::Avx2, Isa::Avx512].into_iter().filter_map(|isa| OpKernels::for_isa(isa).ok()).collect();
    if tables.is_empty() {
        eprintln!("no SIMD level available on this CPU: nothing to compare");
    }
    tables
}

fn assert_same(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let same = g == w || (g.is_nan() && w.is_nan());
        assert!(same, "{what}: element {i}: {g:e} vs reference {w:e}");
    }
}

#[test]
fn softmax_equals_reference() {
    let mut rng = Rng(0x5eed_0001);
    for ops_simd in simd_tables() {
        for n in LENGTHS {
            for scale in [1.0f32, 30.0, 1.0e4] {
                let mut x = rng.vec(n, scale);
                // Masked entries, as causal attention produces them.
                for (i, v) in x.iter_mut().enumerate() {
                    if i % 5 == 3 {
                        *v = f32::NEG_INFINITY;
                    }
                }
                let mut want = x.clone();
                let want_stats = ops::softmax_in_place(&mut want);
                let stats = ops_simd.softmax(&mut x);
                let what = format!("{:?} softmax n={n} scale={scale}", ops_simd.isa());
                assert_same(&x, &want, &what);
                // The stats merge split rows, so they must match the reference bit for bit.
                assert_eq!(stats.max.to_bits(), want_stats.max.to_bits(), "{what}: max");
                assert_eq!(stats.sum.to_bits(), want_stats.sum.to_bits(), "{what}: sum");
            }
            let mut masked = vec![f32::NEG_INFINITY; n];
            let stats = ops_simd.softmax(&mut masked);
            assert!(masked.iter().all(|v| *v == 0.0), "all-masked row gives zeros");
            assert_eq!(stats, ops::SoftmaxStats::MASKED, "all-masked row's stats");
            let (mut zeros, mut zeros_want) = (vec![0.0f32; n], vec![0.0f32; n]);
            ops_simd.softmax(&mut zeros);
            ops::softmax_in_place(&mut zeros_want);
            assert_same(&zeros, &zeros_want, "uniform row");
            assert!(zeros.iter().all(|v| (v * n as f32 - 1.0).abs() < 1e-6), "uniform row is 1/n");
        }
    }
}

#[test]
fn f16_conversion_equals_reference_on_every_class_of_value() {
    // Every f16 bit pattern: zeros, subnormals, normals, infinities and NaNs of both signs.
    let all: Vec<half::f16> = (0..=u16::MAX).map(half::f16::from_bits).collect();
    let mut want = vec![0.0f32; all.len()];
    ops::f16_to_f32(&all, &mut want);
    for ops_simd in simd_tables() {
        for n in LENGTHS.into_iter().chain([all.len()]) {
            // Offsets that leave the SIMD blocks unaligned and a destination longer than the
            // source (n = the shorter length; the rest untouched).
            for off in [0usize, 3] {
                let src = &all[off..(off + n).min(all.len())];
                let mut got = vec![f32::from_bits(0x7fc0_dead); src.len() + 2];
                ops_simd.f16_to_f32(src, &mut got);
                let what = format!("{:?} f16_to_f32 n={n} off={off}", ops_simd.isa());
                let want = &want[off..off + src.len()];
                let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got[..src.len()]), bits(want), "{what}");
                assert!(got[src.len()..].iter().all(|v| v.to_bits() == 0x7fc0_dead), "{what}: wrote past n");
            }
        }
    }
}

#[test]
fn swiglu_equals_reference() {
    let mut rng = Rng(0x5eed_0002);
    for ops_simd in simd_tables() {
        for n in LENGTHS {
            for scale in [1.0f32, 12.0, 150.0] {
                let (gate, up) = (rng.vec(n, scale), rng.vec(n, 3.0));
                let mut want = gate.clone();
                ops::swiglu_row(&mut want, &up);
                let mut got = gate.clone();
                ops_simd.swiglu(&mut got, &up);
                assert_same(&got, &want, &format!("{:?} swiglu n={n} scale={scale}", ops_simd.isa()));
            }
        }
        // Edges: zeros, huge magnitudes (exp over/underflow), infinities.
        let gate = [
            0.0f32,
            -0.0,
            88.0,
            -88.0,
            104.0,
            -104.0,
            1e30,
            -1e30,
            f32::INFINITY,
            0.5,
            3.0,
            -3.0,
            20.0,
            -20.0,
            1e-30,
            -1e-30,
        ];
        let up = [1.0f32; 16];
        let mut want = gate;
        ops::swiglu_row(&mut want, &up);
        let mut got = gate;
        ops_simd.swiglu(&mut got, &up);
        assert_same(&got, &want, "swiglu edges");
    }
}

#[test]
fn exp_lanes_equal_reference_over_the_whole_range() {
    // Each value x goes through a two-lane softmax [x, 0]: for x <= 0 the lanes hold exp(x)
    // and exp(0). Covers subnormal results, the 2^n split of the AVX2 path and the
    // flush-to-zero limit near -104.
    for ops_simd in simd_tables() {
        for i in 0..20_000 {
            let x = -110.0 + i as f32 * 0.0055;
            let mut row = [x, 0.0];
            ops_simd.softmax(&mut row);
            let mut reference = [x, 0.0];
            ops::softmax_in_place(&mut reference);
            assert_same(&row, &reference, &format!("{:?} exp lane x={x}", ops_simd.isa()));
        }
    }
}

/// Narrowing: every f16 value, the midpoints between neighbours (ties go to even), values just
/// off them, out-of-range magnitudes and NaNs; bits must match, except NaN payloads (a NaN
/// must stay a NaN).
#[test]
fn f32_to_f16_equals_reference_rounding_to_nearest_even() {
    let mut src: Vec<f32> = Vec::new();
    for bits in (0..=u16::MAX).step_by(7) {
        let (a, b) = (half::f16::from_bits(bits), half::f16::from_bits(bits.wrapping_add(1)));
        let (a, b) = (a.to_f32(), b.to_f32());
        let mid = 0.5 * (a as f64 + b as f64);
        src.extend([
            a,
            mid as f32,
            f32::from_bits((mid as f32).to_bits() + 1),
            f32::from_bits((mid as f32).to_bits().wrapping_sub(1)),
        ]);
    }
    src.extend([
        65504.0,
        65520.0,
        65519.99,
        1.0e9,
        -1.0e9,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        1.0e-9,
        -0.0,
    ]);
    let mut want = vec![half::f16::ZERO; src.len()];
    ops::f32_to_f16(&src, &mut want);
    for ops_simd in simd_tables() {
        for n in LENGTHS.into_iter().chain([src.len()]) {
            let n = n.min(src.len());
            let mut got = vec![half::f16::from_bits(0x1234); n + 2];
            ops_simd.f32_to_f16(&src[..n], &mut got);
            let what = format!("{:?} f32_to_f16 n={n}", ops_simd.isa());
            for (i, (g, w)) in got.iter().zip(&want[..n]).enumerate() {
                assert!(
                    g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                    "{what}: {} -> {g} vs {w}",
                    src[i]
                );
            }
            assert!(got[n..].iter().all(|v| v.to_bits() == 0x1234), "{what}: wrote past n");
        }
    }
}

#[test]
fn attention_scores_equal_reference() {
    let mut rng = Rng(0x5eed_0003);
    for ops_simd in simd_tables() {
        for hd in [1usize, 7, 16, 63, 64, 65, 128, 200] {
            for n in [0usize, 1, 5, 16, 33, 100] {
                let q = rng.vec(hd, 2.0);
                let keys = rng.vec(n * hd, 2.0);
                let mut want = vec![0.0f32; n];
                ops::attn_scores(&q, &keys, 0.125, &mut want);
                let mut got = vec![0.0f32; n];
                ops_simd.attn_scores(&q, &keys, 0.125, &mut got);
                assert_same(&got, &want, &format!("{:?} scores hd={hd} n={n}", ops_simd.isa()));
            }
        }
        let big = vec![1.0e18f32; 64];
        let (mut want, mut got) = ([0.0f32; 1], [0.0f32; 1]);
        ops::attn_scores(&big, &big, 1.0, &mut want);
        ops_simd.attn_scores(&big, &big, 1.0, &mut got);
        assert_same(&got, &want, "scores overflowing to inf");
    }
}

#[test]
fn attention_values_equal_reference_in_both_orders() {
    let mut rng = Rng(0x5eed_0004);
    for ops_simd in simd_tables() {
        for hdv in [1usize, 7, 16, 17, 64, 65] {
            for n in LENGTHS {
                let mut w = rng.vec(n, 1.0);
                w.iter_mut().for_each(|v| *v = v.abs());
                ops::softmax_in_place(&mut w);
                let values = rng.vec(n * hdv, 4.0);
                for order in [ValueOrder::Gemm, ValueOrder::VecDot] {
                    let mut want = vec![0.0f32; hdv];
                    ops::attn_values(&w, &values, order, &mut want);
                    let mut got = vec![f32::NAN; hdv];
                    ops_simd.attn_values(&w, &values, order, &mut got);
                    let what = format!("{:?} values {order:?} hdv={hdv} n={n}", ops_simd.isa());
                    assert_same(&got, &want, &what);
                }
            }
        }
    }
}

/// Chunkings of n positions: lengths of consecutive chunks, cycled. Covers single positions,
/// chunks that leave the accumulator mid-round (5, 63, 100), whole rounds and whole tiles (64,
/// 256), and one chunk over everything.
fn chunkings(n: usize) -> Vec<Vec<usize>> {
    vec![vec![n.max(1)], vec![1], vec![5, 63], vec![64], vec![256], vec![100, 1, 256], vec![300, 7]]
}

/// Splits (w, values) into consecutive chunks of the `sizes` lengths (cycled) and adds each.
fn add_in_chunks(ops: &OpKernels, acc: &mut ValueAcc, w: &[f32], values: &[f32], sizes: &[usize]) {
    let hdv = acc.hdv();
    let (mut j, mut k) = (0, 0);
    while j < w.len() {
        let end = (j + sizes[k % sizes.len()]).min(w.len());
        ops.attn_values_add(acc, &w[j..end], &values[j * hdv..end * hdv]);
        (j, k) = (end, k + 1);
    }
}

/// Softmax weights of n positions, every third position masked (zero weight) and, when
/// `masked_tail`, the last 40 too, as rows with masked cells give them.
fn value_weights(rng: &mut Rng, n: usize, masked_tail: bool) -> Vec<f32> {
    let mut w = rng.vec(n, 3.0);
    for (j, v) in w.iter_mut().enumerate() {
        if j % 3 == 1 || (masked_tail && j + 40 >= n) {
            *v = f32::NEG_INFINITY;
        }
    }
    ops::softmax_in_place(&mut w);
    w
}

#[test]
fn chunked_value_sums_equal_one_shot_sums_to_the_bit() {
    let mut rng = Rng(0x5eed_0006);
    let tables: Vec<OpKernels> = [OpKernels::scalar()].into_iter().chain(simd_tables()).collect();
    for hdv in [1usize, 7, 16, 17, 64, 65, 80] {
        for n in [0usize, 1, 63, 64, 65, 255, 256, 257, 700, 1031] {
            for masked_tail in [false, true] {
                let w = value_weights(&mut rng, n, masked_tail);
                let values = rng.vec(n * hdv, 4.0);
                for order in [ValueOrder::Gemm, ValueOrder::VecDot] {
                    let mut want = vec![0.0f32; hdv];
                    ops::attn_values(&w, &values, order, &mut want);
                    for ops_any in &tables {
                        for sizes in chunkings(n) {
                            let mut acc = ValueAcc::new(order, hdv);
                            add_in_chunks(ops_any, &mut acc, &w, &values, &sizes);
                            assert_eq!(acc.seen(), n);
                            let mut got = vec![f32::NAN; hdv];
                            ops_any.attn_values_finish(&acc, &mut got);
                            let what =
                                format!("{:?} chunks {sizes:?} {order:?} hdv={hdv} n={n}", ops_any.isa());
                            assert_same(&got, &want, &what);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn value_sums_can_switch_tables_between_chunks_and_reuse_the_state() {
    // Every table keeps the same accumulator state, so chunks added by different tables (and
    // an accumulator reset for the next query) still give the reference bits.
    let mut rng = Rng(0x5eed_0007);
    let tables: Vec<OpKernels> = [OpKernels::scalar()].into_iter().chain(simd_tables()).collect();
    let mut acc = ValueAcc::new(ValueOrder::VecDot, 3);
    for (hdv, n) in [(64usize, 777usize), (17, 300), (80, 129)] {
        let w = value_weights(&mut rng, n, true);
        let values = rng.vec(n * hdv, 2.0);
        for order in [ValueOrder::Gemm, ValueOrder::VecDot] {
            let mut want = vec![0.0f32; hdv];
            ops::attn_values(&w, &values, order, &mut want);
            acc.reset(order, hdv);
            for (i, j) in (0..n).step_by(37).enumerate() {
                let end = (j + 37).min(n);
                tables[i % tables.len()].attn_values_add(&mut acc, &w[j..end], &values[j * hdv..end * hdv]);
            }
            let mut got = vec![f32::NAN; hdv];
            tables[tables.len() - 1].attn_values_finish(&acc, &mut got);
            assert_same(&got, &want, &format!("mixed tables {order:?} hdv={hdv} n={n}"));
        }
    }
}

#[test]
fn scores_over_key_ranges_equal_scores_over_the_row() {
    // A score depends on its own key only: the scores of a sub-range of keys are the same
    // floats as those positions of the whole row.
    let mut rng = Rng(0x5eed_0008);
    let tables: Vec<OpKernels> = [OpKernels::scalar()].into_iter().chain(simd_tables()).collect();
    for hd in [7usize, 64, 65, 128] {
        let n = 600;
        let q = rng.vec(hd, 2.0);
        let keys = rng.vec(n * hd, 2.0);
        let mut want = vec![0.0f32; n];
        ops::attn_scores(&q, &keys, 0.125, &mut want);
        for ops_any in &tables {
            let mut got = vec![f32::NAN; n];
            for (a, b) in [(0usize, 1usize), (1, 64), (64, 65), (65, 320), (320, 599), (599, 600)] {
                ops_any.attn_scores(&q, &keys[a * hd..b * hd], 0.125, &mut got[a..b]);
            }
            assert_same(&got, &want, &format!("{:?} scores by range hd={hd}", ops_any.isa()));
        }
    }
}

/// GeGLU looks GELU up by x rounded to f16: every f16 value (and its neighbours, which round
/// to it or the next one), the clamps at -10 and 10 from both sides, infinities and NaN, and
/// random rows of every length, times an `up` of several signs and sizes.
#[test]
fn geglu_equals_reference_on_every_f16_input() {
    let mut rng = Rng(0x5eed_0006);
    let mut gate: Vec<f32> = Vec::new();
    for bits in 0..=u16::MAX {
        let x = half::f16::from_bits(bits).to_f32();
        gate.extend([
            x,
            f32::from_bits(x.to_bits().wrapping_add(1)),
            f32::from_bits(x.to_bits().wrapping_sub(1)),
        ]);
    }
    gate.extend([-10.0, 10.0, -10.000001, 10.000001, -9.999999, 9.999999, f32::INFINITY, f32::NEG_INFINITY]);
    gate.extend([f32::NAN, 0.0, -0.0, 1e-30, -1e-30, 65504.0, 65520.0, -65520.0, 1e30]);
    let up: Vec<f32> = (0..gate.len()).map(|i| [1.0f32, -3.0, 0.5, 1e6, -0.0][i % 5]).collect();
    for ops_simd in simd_tables() {
        let mut want = gate.clone();
        ops::geglu_in_place(&mut want, &up);
        let mut got = gate.clone();
        ops_simd.geglu(&mut got, &up);
        assert_same(&got, &want, &format!("{:?} geglu, every f16", ops_simd.isa()));
        for n in LENGTHS {
            for scale in [1.0f32, 12.0, 1e4] {
                let (g, u) = (rng.vec(n, scale), rng.vec(n, 2.0));
                let mut want = g.clone();
                ops::geglu_in_place(&mut want, &u);
                let mut got = g.clone();
                ops_simd.geglu(&mut got, &u);
                assert_same(&got, &want, &format!("{:?} geglu n={n} scale={scale}", ops_simd.isa()));
            }
        }
    }
}

#[test]
fn every_table_agrees_on_rms_norm_and_geglu() {
    let mut rng = Rng(0x5eed_0005);
    let x = rng.vec(577, 3.0);
    let w = rng.vec(577, 1.0);
    let mut want = vec![0.0f32; 577];
    ops::rms_norm(&x, &w, 1e-5, &mut want);
    let gate = rng.vec(577, 12.0);
    let up = rng.vec(577, 2.0);
    let mut geglu_want = gate.clone();
    ops::geglu_in_place(&mut geglu_want, &up);
    for table in simd_tables().into_iter().chain([OpKernels::scalar()]) {
        let mut got = vec![0.0f32; 577];
        table.rms_norm(&x, &w, 1e-5, &mut got);
        assert_same(&got, &want, "rms_norm");
        let mut g = gate.clone();
        table.geglu(&mut g, &up);
        assert_same(&g, &geglu_want, "geglu");
    }
}

/// Queries against panels of keys: every query count around the 6- and 8-row blocks, head
/// widths around the vector lanes, several panels, and magnitudes that overflow to inf; the
/// in-order FMA chain gives the reference's bits exactly.
#[test]
fn panel_dots_equal_reference() {
    let mut rng = Rng(0x5eed_0009);
    for ops_simd in simd_tables() {
        for k in [1usize, 7, 16, 64, 65, 128] {
            for m in [1usize, 2, 5, 6, 7, 8, 9, 13, 24] {
                for n_panels in [1usize, 2, 5] {
                    for scale in [1.0f32, 1.0e37] {
                        let q = rng.vec(m * k, scale);
                        let panels = rng.vec(n_panels * k * ops::PANEL, 3.0);
                        let mut want = vec![f32::NAN; m * n_panels * ops::PANEL];
                        ops::panel_dots(&q, k, &panels, &mut want);
                        let mut got = vec![f32::NAN; want.len()];
                        ops_simd.panel_dots(&q, k, &panels, &mut got);
                        let what = format!("{:?} panel_dots k={k} m={m} panels={n_panels}", ops_simd.isa());
                        assert_same(&got, &want, &what);
                        assert!(want.iter().all(|x| !x.is_nan()), "{what}: every output written");
                    }
                }
            }
        }
        // A short output bounds the queries: nothing is written past it.
        let (q, panels) = (rng.vec(3 * 8, 1.0), rng.vec(8 * ops::PANEL, 1.0));
        let mut got = vec![0.0f32; 2 * ops::PANEL];
        ops_simd.panel_dots(&q, 8, &panels, &mut got);
        let mut want = vec![0.0f32; 2 * ops::PANEL];
        ops::panel_dots(&q, 8, &panels, &mut want);
        assert_same(&got, &want, "panel_dots with room for 2 of 3 queries");
    }
}

/// The reference is the dot it says it is: each output against an f64 sum of the same products.
#[test]
fn panel_dots_reference_is_the_dot_of_query_and_key() {
    let mut rng = Rng(0x5eed_000a);
    let (m, k, n_panels) = (3usize, 64usize, 2usize);
    let q = rng.vec(m * k, 1.0);
    let panels = rng.vec(n_panels * k * ops::PANEL, 1.0);
    let mut out = vec![0.0f32; m * n_panels * ops::PANEL];
    ops::panel_dots(&q, k, &panels, &mut out);
    for i in 0..m {
        for p in 0..n_panels {
            for j in 0..ops::PANEL {
                let want: f64 =
                    (0..k).map(|d| q[i * k + d] as f64 * panels[(p * k + d) * ops::PANEL + j] as f64).sum();
                let got = out[(i * n_panels + p) * ops::PANEL + j] as f64;
                // 64 f32 roundings of terms below 1: well under 1e-5.
                assert!((got - want).abs() < 1e-5, "q{i} panel {p} key {j}: {got} vs {want}");
            }
        }
    }
}

/// A GQA group's scores and value sums: group sizes around the 4-query blocks, key counts
/// around the 8- and 16-key reductions, head widths of real models plus one that is not a
/// multiple of 16 (the SIMD tables fall back to the reference there), f32 and f16 rows, score
/// rows wider than the keys (untouched columns must stay as they were) and magnitudes that
/// overflow to inf. Both orders are defined by the reference, so results are equal to the bit.
#[test]
fn group_attention_equals_reference() {
    use half::f16;
    use ops::KvRows;
    let mut rng = Rng(0x5eed_000b);
    for ops_simd in simd_tables() {
        for hd in [16usize, 40, 64, 128, 256] {
            for g in [1usize, 2, 3, 4, 5, 9] {
                for n in [1usize, 7, 8, 9, 16, 17, 33, 70] {
                    for scale in [1.0f32, 1.0e37] {
                        let stride = n + 3;
                        let q = rng.vec(g * hd, scale);
                        let k32 = rng.vec(n * hd, 2.0);
                        let k16: Vec<f16> = k32.iter().map(|&x| f16::from_f32(x)).collect();
                        let what = format!("{:?} hd={hd} g={g} n={n} scale={scale:e}", ops_simd.isa());
                        for (keys, ty) in [(KvRows::F32(&k32), "f32"), (KvRows::F16(&k16), "f16")] {
                            let mut want = vec![f32::NAN; g * stride];
                            ops::group_scores(&q, keys, hd, 0.125, &mut want, stride);
                            let mut got = vec![f32::NAN; g * stride];
                            ops_simd.group_scores(&q, keys, hd, 0.125, &mut got, stride);
                            assert_same(&got, &want, &format!("group_scores {ty} {what}"));
                            for r in 0..g {
                                assert!(want[r * stride..r * stride + n].iter().all(|x| !x.is_nan()));
                                assert!(want[r * stride + n..(r + 1) * stride].iter().all(|x| x.is_nan()));
                            }

                            // The value sum over the same rows, onto accumulators already holding
                            // something, with weights like a softmax's (and one huge row).
                            let w: Vec<f32> = (0..g * stride).map(|_| rng.uniform(0.5) + 0.5).collect();
                            let start = rng.vec(g * hd, 1.0);
                            let (mut want, mut got) = (start.clone(), start);
                            ops::group_values_add(&w, stride, keys, hd, &mut want);
                            ops_simd.group_values_add(&w, stride, keys, hd, &mut got);
                            assert_same(&got, &want, &format!("group_values_add {ty} {what}"));
                        }
                    }
                }
            }
        }
    }
}

/// The group reference is the product it says it is: scores against f64 dots, value sums
/// against f64 weighted sums.
#[test]
fn group_attention_reference_is_dots_and_weighted_sums() {
    use ops::KvRows;
    let mut rng = Rng(0x5eed_000c);
    let (g, n, hd, stride) = (3usize, 37usize, 64usize, 40usize);
    let q = rng.vec(g * hd, 1.0);
    let keys = rng.vec(n * hd, 1.0);
    let mut s = vec![0.0f32; g * stride];
    ops::group_scores(&q, KvRows::F32(&keys), hd, 0.5, &mut s, stride);
    let mut acc = vec![0.0f32; g * hd];
    ops::group_values_add(&s, stride, KvRows::F32(&keys), hd, &mut acc);
    for r in 0..g {
        for j in 0..n {
            let dot: f64 = (0..hd).map(|d| q[r * hd + d] as f64 * keys[j * hd + d] as f64).sum();
            assert!((s[r * stride + j] as f64 - 0.5 * dot).abs() < 1e-5, "score {r} {j}");
        }
        for d in 0..hd {
            let sum: f64 = (0..n).map(|j| s[r * stride + j] as f64 * keys[j * hd + d] as f64).sum();
            assert!((acc[r * hd + d] as f64 - sum).abs() < 1e-4, "value {r} {d}");
        }
    }
}

/// Two f16 sibling groups read in place as one panel: query counts around the 6- and 8-row
/// blocks, rows in one block or two (mid then half), a missing second group, magnitudes that
/// overflow; equal to the reference and to `panel_dots` on the panel widened by hand.
#[test]
fn sibling_dots_equal_reference_and_the_widened_panel() {
    use half::f16;
    let mut rng = Rng(0x5eed_000d);
    let s = ops::SIBLINGS;
    for k1 in [1usize, 16, 64] {
        for two_blocks in [false, true] {
            let k = if two_blocks { 2 * k1 } else { k1 };
            let group = |rng: &mut Rng| -> Vec<f16> {
                rng.vec(k1 * s, 3.0).iter().map(|&x| f16::from_f32(x)).collect()
            };
            let (lo_a, lo_b, hi_a, hi_b) =
                (group(&mut rng), group(&mut rng), group(&mut rng), group(&mut rng));
            let lo: Vec<&[f16]> = if two_blocks { vec![&lo_a, &lo_b] } else { vec![&lo_a] };
            let hi_full: Vec<&[f16]> = if two_blocks { vec![&hi_a, &hi_b] } else { vec![&hi_a] };
            for hi in [hi_full.clone(), Vec::new()] {
                // The same panel widened: row d holds lo's 8 nodes then hi's (or zeros).
                let mut panel = vec![0.0f32; k * ops::PANEL];
                let rows = |blocks: &[&[f16]]| -> Vec<f32> {
                    blocks.iter().flat_map(|b| b.iter().map(|x| x.to_f32())).collect()
                };
                let (l, h) = (rows(&lo), rows(&hi));
                for d in 0..k {
                    panel[d * ops::PANEL..d * ops::PANEL + s].copy_from_slice(&l[d * s..(d + 1) * s]);
                    if !h.is_empty() {
                        panel[d * ops::PANEL + s..(d + 1) * ops::PANEL]
                            .copy_from_slice(&h[d * s..(d + 1) * s]);
                    }
                }
                for m in [1usize, 3, 6, 7, 8, 9, 24] {
                    for scale in [1.0f32, 1.0e37] {
                        let q = rng.vec(m * k, scale);
                        let (width, at) = (3 * ops::PANEL, ops::PANEL);
                        let mut want = vec![f32::NAN; m * width];
                        ops::sibling_dots(&q, &lo, &hi, &mut want, at, width);
                        let mut widened = vec![f32::NAN; m * ops::PANEL];
                        ops::panel_dots(&q, k, &panel, &mut widened);
                        let what = format!("sibling_dots k={k} m={m} hi={} scale={scale:e}", !hi.is_empty());
                        for i in 0..m {
                            let row = &want[i * width..(i + 1) * width];
                            assert_same(
                                &row[at..at + ops::PANEL],
                                &widened[i * ops::PANEL..(i + 1) * ops::PANEL],
                                &what,
                            );
                            assert!(
                                row[..at].iter().chain(&row[at + ops::PANEL..]).all(|x| x.is_nan()),
                                "{what}: outside the panel"
                            );
                        }
                        for ops_simd in simd_tables() {
                            let mut got = vec![f32::NAN; m * width];
                            ops_simd.sibling_dots(&q, &lo, &hi, &mut got, at, width);
                            assert_same(&got, &want, &format!("{:?} {what}", ops_simd.isa()));
                        }
                    }
                }
            }
        }
    }
}
