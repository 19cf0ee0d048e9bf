//! Every kernel table this CPU can run (AVX2, AVX-512 with and without VNNI) against the scalar
//! reference, through the byte-level entry points the engine uses.
//!
//! Dots: the integer block sums are exact in any order, only the f32 summation order differs,
//! so the allowed error is relative to the sum of |terms|, sum_i |w_i * a_i| of the dequantized
//! rows (table below). Quantizers: bit-exact, bytes compared.
//!
//! Tables the CPU lacks are skipped with a notice on stderr (run with `--nocapture` to see it).

use fovea_formats::dequant::dequantize_row;
use fovea_formats::GgmlType;
use fovea_kernels::quant;
use fovea_kernels::table::QuantKernels;
use half::{bf16, f16};

/// Allowed |simd - reference| / sum_i |w_i * a_i|, per weight type. The reference sums blocks
/// in one f32 (floats in f64); SIMD sums in 8-16 f32 lanes, so the difference grows like
/// sqrt(blocks) * f32 epsilon (6e-8): 4097 blocks give ~4e-6 at worst in practice.
const DOT_TOLERANCE: &[(GgmlType, f64)] = &[
    (GgmlType::Q4_0, 1e-5),
    (GgmlType::Q4_1, 1e-5),
    (GgmlType::Q5_0, 1e-5),
    (GgmlType::Q5_1, 1e-5),
    (GgmlType::Q8_0, 1e-5),
    (GgmlType::Q2K, 1e-5),
    (GgmlType::Q3K, 1e-5),
    (GgmlType::Q4K, 1e-5),
    (GgmlType::Q5K, 1e-5),
    (GgmlType::Q6K, 1e-5),
    (GgmlType::F16, 1e-5),
    (GgmlType::BF16, 1e-5),
    (GgmlType::F32, 1e-5),
];

/// Row lengths in blocks (elements for the float types): single blocks, odd tails around the
/// 2- and 4-block unrolls, and a long row.
const LENGTHS: [usize; 7] = [0, 1, 2, 7, 31, 256, 4097];

/// xorshift64*: small, fixed-seed, good enough to cover bit patterns.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [-1, 1).
    fn signed_unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// How block scales (the f16 `d`/`m`/`dmin`/`s` fields) are chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scales {
    /// Typical: |scale| in [1e-3, 1e-1], random sign.
    Typical,
    /// Every scale +-65504 (f16 max).
    F16Max,
    /// Every scale a random f16 subnormal.
    Subnormal,
    /// The whole row zero.
    AllZero,
}

impl Scales {
    fn pick(self, rng: &mut Rng) -> f16 {
        let sign = if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
        match self {
            Scales::Typical => f16::from_f32(sign * 10f32.powf(-1.0 - 2.0 * rng.signed_unit().abs())),
            Scales::F16Max => f16::from_f32(sign * 65504.0),
            Scales::Subnormal => {
                f16::from_bits((1 + rng.next_u64() % 0x3ff) as u16 | (rng.next_u64() as u16 & 0x8000))
            }
            Scales::AllZero => f16::ZERO,
        }
    }
}

/// Byte offsets of the f16 scale fields inside one block of `ty` (see `formats::blocks`).
fn f16_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q8_1 | GgmlType::Q4K | GgmlType::Q5K => &[0, 2],
        GgmlType::Q2K => &[80, 82],
        GgmlType::Q3K => &[108],
        GgmlType::Q6K => &[208],
        GgmlType::Q8K | GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => &[],
    }
}

/// A weight row of n elements: random quant bits (every pattern, including Q8_0's -128) with
/// scales per `scales`; float rows get values in [-1, 1).
fn weight_row(ty: GgmlType, n: usize, scales: Scales, rng: &mut Rng) -> Vec<u8> {
    if scales == Scales::AllZero {
        return vec![0; ty.bytes_for(n as u64).unwrap() as usize];
    }
    match ty {
        GgmlType::F32 => {
            bytemuck::cast_slice(&(0..n).map(|_| rng.signed_unit()).collect::<Vec<f32>>()).to_vec()
        }
        GgmlType::F16 => {
            bytemuck::cast_slice(&(0..n).map(|_| f16::from_f32(rng.signed_unit())).collect::<Vec<f16>>())
                .to_vec()
        }
        GgmlType::BF16 => {
            bytemuck::cast_slice(&(0..n).map(|_| bf16::from_f32(rng.signed_unit())).collect::<Vec<bf16>>())
                .to_vec()
        }
        _ => {
            let mut bytes = rng.bytes(ty.bytes_for(n as u64).unwrap() as usize);
            for block in bytes.chunks_exact_mut(ty.block_bytes()) {
                for &at in f16_fields(ty) {
                    block[at..at + 2].copy_from_slice(&scales.pick(rng).to_le_bytes());
                }
            }
            bytes
        }
    }
}

/// An activation row of n elements of `partner`, made as the engine makes it: random f32
/// (with a few outliers) through the reference quantizer. Then, for the extreme cases, every
/// block scale is overwritten (and Q8_1's s kept equal to d * sum(q)).
fn activation_row(partner: GgmlType, n: usize, scales: Scales, rng: &mut Rng) -> Vec<u8> {
    let x: Vec<f32> = (0..n)
        .map(|i| {
            if scales == Scales::AllZero {
                0.0
            } else {
                rng.signed_unit() * if i % 97 == 5 { 20.0 } else { 1.0 }
            }
        })
        .collect();
    let mut out = vec![0u8; partner.bytes_for(n as u64).unwrap() as usize];
    quant::quantize_activation(partner, &x, &mut out);
    if matches!(scales, Scales::F16Max | Scales::Subnormal) {
        for block in out.chunks_exact_mut(partner.block_bytes()) {
            match partner {
                GgmlType::Q8_0 => block[0..2].copy_from_slice(&scales.pick(rng).to_le_bytes()),
                GgmlType::Q8_1 => {
                    // s = d * sum(q) must stay finite: at most 32 * 127 * d < 65504.
                    let d = match scales {
                        Scales::F16Max => f16::from_f32(scales.pick(rng).to_f32() / 4096.0),
                        _ => scales.pick(rng),
                    };
                    let sum: i32 = block[4..].iter().map(|&q| q as i8 as i32).sum();
                    block[0..2].copy_from_slice(&d.to_le_bytes());
                    block[2..4].copy_from_slice(&f16::from_f32(sum as f32 * d.to_f32()).to_le_bytes());
                }
                GgmlType::Q8K => block[0..4].copy_from_slice(&scales.pick(rng).to_f32().to_le_bytes()),
                _ => {}
            }
        }
    }
    out
}

/// sum_i |w_i * a_i| over the dequantized rows, the scale of the rounding error.
fn magnitude(w: GgmlType, w_row: &[u8], a: GgmlType, a_row: &[u8], n: usize) -> f64 {
    let (mut wf, mut af) = (vec![0f32; n], vec![0f32; n]);
    dequantize_row(w, w_row, &mut wf).unwrap();
    dequantize_row(a, a_row, &mut af).unwrap();
    wf.iter().zip(&af).map(|(&x, &y)| (x as f64 * y as f64).abs()).sum()
}

/// The SIMD tables this CPU runs; prints a notice for each one it cannot.
fn simd_tables() -> Vec<(&'static str, QuantKernels)> {
    QuantKernels::variants()
        .into_iter()
        .filter(|(label, _)| *label != "scalar")
        .filter_map(|(label, kernels)| match kernels {
            Ok(k) => Some((label, k)),
            Err(e) => {
                eprintln!("NOTICE: skipping the {label} kernel table: {e}");
                None
            }
        })
        .collect()
}

#[test]
fn dots_match_reference_within_tolerance() {
    let scalar = QuantKernels::scalar();
    for (label, simd) in simd_tables() {
        for &(w, rel) in DOT_TOLERANCE {
            let a = quant::vec_dot_type(w);
            let mut worst = 0.0f64;
            for scales in [Scales::Typical, Scales::F16Max, Scales::Subnormal, Scales::AllZero] {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ u64::from(w.id()));
                for blocks in LENGTHS {
                    if scales != Scales::Typical && blocks > 31 {
                        continue;
                    }
                    let n = blocks * w.block_elems();
                    let (w_row, a_row) =
                        (weight_row(w, n, scales, &mut rng), activation_row(a, n, scales, &mut rng));
                    let want = scalar.vec_dot(w, n, &w_row, &a_row).unwrap();
                    let got = simd.vec_dot(w, n, &w_row, &a_row).unwrap();
                    let mag = magnitude(w, &w_row, a, &a_row, n);
                    assert!(want.is_finite(), "test data must keep the reference finite");
                    let err = (got as f64 - want as f64).abs();
                    assert!(
                        err <= rel * mag,
                        "{label} {w}: n={n} scales={scales:?}: got {got}, reference {want}, |err| {err:e} > {rel:e} * {mag:e}"
                    );
                    if mag > 0.0 {
                        worst = worst.max(err / mag);
                    }
                }
            }
            eprintln!("{label} {w}: worst |err| / sum|terms| = {worst:.2e} (allowed {rel:e})");
        }
    }
}

/// Rows that hit the quantizers' corners: zeros, exact rounding ties, equal magnitudes of both
/// signs (Q8_K keeps the first), tiny values whose 1 / d overflows, huge values.
fn quantizer_rows(rng: &mut Rng) -> Vec<Vec<f32>> {
    let mut rows = vec![vec![0.0; 256]];
    // amax 127 makes d = 1, so every k + 0.5 is a tie.
    rows.push((0..512).map(|i| if i % 32 == 0 { 127.0 } else { (i % 64) as f32 - 31.5 }).collect());
    let mut both_signs = vec![0.25f32; 256];
    both_signs[3] = -3.0;
    both_signs[200] = 3.0;
    rows.push(both_signs.iter().map(|v| -v).collect());
    rows.push(both_signs);
    rows.push((0..256).map(|i| if i == 7 { 1e-40 } else { 0.0 }).collect());
    rows.push((0..256).map(|_| rng.signed_unit() * 1e-38).collect());
    rows.push((0..256).map(|_| rng.signed_unit() * 1e30).collect());
    for blocks in [1, 2, 7, 31] {
        rows.push((0..blocks * 256).map(|_| rng.signed_unit() * 3.0).collect());
    }
    rows
}

#[test]
fn quantizers_are_bit_exact() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let rows = quantizer_rows(&mut rng);
    for (label, simd) in simd_tables() {
        for partner in
            [GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q8K, GgmlType::F16, GgmlType::BF16, GgmlType::F32]
        {
            for (r, x) in rows.iter().enumerate() {
                let len = partner.bytes_for(x.len() as u64).unwrap() as usize;
                let (mut want, mut got) = (vec![0u8; len], vec![0xAAu8; len]);
                quant::quantize_activation(partner, x, &mut want);
                simd.quantize_activation(partner, x, &mut got).unwrap();
                assert!(want == got, "{label} {partner}: row {r} differs from the reference");
            }
        }
    }
}

#[test]
fn table_entries_agree_with_row_helpers_and_handle_misaligned_bytes() {
    let mut rng = Rng(7);
    for (label, simd) in simd_tables() {
        for w in [GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q6K, GgmlType::F32] {
            let (rows, n) = (5, 2 * 256);
            let a = quant::vec_dot_type(w);
            let row_bytes = w.bytes_for(n as u64).unwrap() as usize;
            let weights = weight_row(w, rows * n, Scales::Typical, &mut rng);
            let act = activation_row(a, n, Scales::Typical, &mut rng);
            let mut out = vec![0f32; rows];
            simd.vec_dot_rows(w, n, &weights, row_bytes, &act, &mut out).unwrap();
            for (r, &o) in out.iter().enumerate() {
                let w_row = &weights[r * row_bytes..][..row_bytes];
                assert_eq!(o, simd.vec_dot(w, n, w_row, &act).unwrap(), "{label} {w}: row {r}");
                // The same bytes one byte off alignment go through the copying path.
                let mut shifted = vec![0u8; row_bytes + 1];
                shifted[1..].copy_from_slice(w_row);
                assert_eq!(
                    o,
                    simd.vec_dot(w, n, &shifted[1..], &act).unwrap(),
                    "{label} {w}: misaligned row {r}"
                );
            }
        }
        let x: Vec<f32> = (0..256).map(|_| rng.signed_unit()).collect();
        let (mut aligned, mut shifted) = (vec![0u8; 292], vec![0u8; 293]);
        simd.quantize_activation(GgmlType::Q8K, &x, &mut aligned).unwrap();
        simd.quantize_activation(GgmlType::Q8K, &x, &mut shifted[1..]).unwrap();
        assert_eq!(aligned, shifted[1..], "{label}: misaligned Q8_K output");
    }
}

#[test]
fn every_table_is_complete_and_rejects_activation_only_types() {
    for (label, kernels) in QuantKernels::variants() {
        let Ok(kernels) = kernels else {
            eprintln!("NOTICE: skipping the {label} kernel table: not supported here");
            continue;
        };
        for w in GgmlType::ALL {
            let has_dot = kernels.vec_dot_fn(w).is_ok();
            assert_eq!(has_dot, quant::supports_vec_dot(w), "{label}: dot for {w}");
            if has_dot {
                assert!(kernels.quantize_fn(quant::vec_dot_type(w)).is_ok(), "{label}: quantizer for {w}");
            }
        }
        assert!(kernels.quantize_fn(GgmlType::Q4_0).is_err());
    }
}

/// The `avx2-vnni` table's legacy-quant dots (one 256-bit `vpdpbusd` per block) give exactly the
/// `avx2` table's bits: the same 8 lanes of 4 exact products, the same f32 steps. Every length,
/// every scale regime, and activation bytes both as the quantizer makes them and as random bytes
/// (-128 included, which the quantizer never writes: the `|x| * sign(y, x)` identity still holds).
#[test]
fn avx2_vnni_dots_equal_avx2_bits() {
    let tables = QuantKernels::variants();
    let table = |name: &str| tables.iter().find(|(l, _)| *l == name).and_then(|(_, k)| k.as_ref().ok());
    let (Some(avx2), Some(vnni)) = (table("avx2"), table("avx2-vnni")) else {
        eprintln!("NOTICE: skipping avx2-vnni vs avx2: this CPU lacks AVX2 or AVX-512 VNNI");
        return;
    };
    for &(w, _) in DOT_TOLERANCE {
        let a = quant::vec_dot_type(w);
        for scales in [Scales::Typical, Scales::F16Max, Scales::Subnormal, Scales::AllZero] {
            for raw_activation in [false, true] {
                let mut rng = Rng(0x5851_f42d_4c95_7f2d ^ u64::from(w.id()));
                for blocks in LENGTHS {
                    let n = blocks * w.block_elems();
                    let w_row = weight_row(w, n, scales, &mut rng);
                    let mut a_row = activation_row(a, n, scales, &mut rng);
                    let qs_at = match a {
                        GgmlType::Q8_0 => 2,
                        GgmlType::Q8_1 => 4,
                        _ => a.block_bytes(),
                    };
                    if raw_activation && scales != Scales::AllZero {
                        for block in a_row.chunks_exact_mut(a.block_bytes()) {
                            let len = block.len() - qs_at;
                            block[qs_at..].copy_from_slice(&rng.bytes(len));
                        }
                    }
                    let want = avx2.vec_dot(w, n, &w_row, &a_row).unwrap();
                    let got = vnni.vec_dot(w, n, &w_row, &a_row).unwrap();
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{w}: n={n} scales={scales:?} raw={raw_activation}: avx2-vnni {got} vs avx2 {want}"
                    );
                }
            }
        }
    }
}
