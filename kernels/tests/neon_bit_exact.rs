//! The NEON tables promise more than the shared tolerance table of `simd_vs_reference.rs`:
//! every plain NEON dot, and the `sdot` dots of the 32-element types, are bit-identical to the
//! scalar reference (same exact integer sums, same f32 operations in the same order; see
//! `arm::neon`). Tolerance: 0 ulp. The `sdot` K-quant dots are only within tolerance, not here.
//!
//! Off aarch64, or without dotprod, the missing tables are skipped with a NOTICE.

use fovea_formats::GgmlType;
use fovea_kernels::quant;
use fovea_kernels::table::QuantKernels;
use half::f16;

/// Weight types whose dot each table keeps bit-exact.
const PLAIN_EXACT: &[GgmlType] = &[
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q4K,
    GgmlType::Q6K,
];
const DOTPROD_EXACT: &[GgmlType] =
    &[GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0];

/// Byte offsets of the f16 scale fields in one block.
fn f16_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4K => &[0, 2],
        GgmlType::Q6K => &[208],
        _ => &[],
    }
}

/// xorshift64: fixed seeds, every bit pattern of the quants.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

fn neon_tables() -> Vec<(&'static str, QuantKernels, &'static [GgmlType])> {
    let mut out = Vec::new();
    for (label, table) in QuantKernels::variants() {
        let exact = match label {
            "neon" => PLAIN_EXACT,
            "neon-dotprod" => DOTPROD_EXACT,
            _ => continue,
        };
        match table {
            Ok(t) => out.push((label, t, exact)),
            Err(e) => eprintln!("NOTICE: skipping the {label} kernel table: {e}"),
        }
    }
    out
}

#[test]
fn neon_dots_are_bit_identical_to_the_reference() {
    let scalar = QuantKernels::scalar();
    for (label, table, exact) in neon_tables() {
        for &w in exact {
            let mut rng = Rng(0x51ed_270b_2710_93a5 ^ u64::from(w.id()));
            let a = quant::vec_dot_type(w);
            for blocks in [1usize, 2, 3, 17, 64] {
                let n = blocks * w.block_elems();
                let mut w_row: Vec<u8> =
                    (0..w.bytes_for(n as u64).unwrap()).map(|_| rng.next() as u8).collect();
                for block in w_row.chunks_exact_mut(w.block_bytes()) {
                    for &at in f16_fields(w) {
                        let scale = f16::from_f32(rng.unit() * 0.05);
                        block[at..at + 2].copy_from_slice(&scale.to_le_bytes());
                    }
                }
                let x: Vec<f32> = (0..n).map(|i| rng.unit() * if i % 61 == 3 { 30.0 } else { 1.0 }).collect();
                let mut a_row = vec![0u8; a.bytes_for(n as u64).unwrap() as usize];
                quant::quantize_activation(a, &x, &mut a_row);
                let want = scalar.vec_dot(w, n, &w_row, &a_row).unwrap();
                let got = table.vec_dot(w, n, &w_row, &a_row).unwrap();
                assert_eq!(got.to_bits(), want.to_bits(), "{label} {w} n={n}: got {got}, reference {want}");
            }
        }
    }
}
