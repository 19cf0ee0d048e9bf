//! The four-token tile kernels must equal four single-row dots exactly (tolerance: 0 ulp), so
//! prompt processing and token-by-token decoding give identical logits.

use fovea_formats::GgmlType;
use fovea_kernels::quant::vec_dot_type;
use fovea_kernels::table::QuantKernels;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

#[test]
fn tiles_equal_single_dots_bit_for_bit() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut tested = 0;
    for (label, kernels) in QuantKernels::variants() {
        let Ok(kernels) = kernels else {
            eprintln!("NOTICE: skipping {label}: not supported by this CPU");
            continue;
        };
        for w in [GgmlType::Q4_1, GgmlType::Q8_0] {
            let Some(dot4) = kernels.vec_dot4_fn(w) else { continue };
            let dot = kernels.vec_dot_fn(w).unwrap();
            let partner = vec_dot_type(w);
            let quantize = kernels.quantize_fn(partner).unwrap();
            for blocks in [1usize, 2, 7, 18, 48, 131] {
                let n = blocks * 32;
                // Weight bytes: random bits, with valid (finite, modest) f16 scales at each block start.
                let row_bytes = w.bytes_for(n as u64).unwrap() as usize;
                let mut w_row: Vec<u8> = (0..row_bytes).map(|_| rng.next() as u8).collect();
                for b in 0..blocks {
                    let at = b * w.block_bytes();
                    let scale = half::f16::from_f32(rng.f32() * 0.05);
                    w_row[at..at + 2].copy_from_slice(&scale.to_le_bytes());
                    if w == GgmlType::Q4_1 {
                        w_row[at + 2..at + 4]
                            .copy_from_slice(&half::f16::from_f32(rng.f32() * 0.1).to_le_bytes());
                    }
                }
                let stride = partner.bytes_for(n as u64).unwrap() as usize;
                let mut acts = vec![0u8; 4 * stride];
                for t in 0..4 {
                    let x: Vec<f32> =
                        (0..n).map(|i| if t == 3 && i % 5 == 0 { 0.0 } else { rng.f32() * 8.0 }).collect();
                    quantize(&x, &mut acts[t * stride..(t + 1) * stride]);
                }
                // Three rows: the same row bytes rotated, so each row differs.
                let mut rows = w_row.clone();
                rows.extend(w_row.iter().rev().map(|b| b ^ 0x5a));
                for b in 0..blocks {
                    let at = row_bytes + b * w.block_bytes();
                    rows[at..at + 2].copy_from_slice(&half::f16::from_f32(0.01 * b as f32).to_le_bytes());
                    if w == GgmlType::Q4_1 {
                        rows[at + 2..at + 4].copy_from_slice(&half::f16::from_f32(-0.02).to_le_bytes());
                    }
                }
                let nr = 2;
                let mut tile = vec![0.0f32; 4 * nr];
                dot4(n, &rows, &acts, stride, &mut tile);
                for r in 0..nr {
                    for t in 0..4 {
                        let single = dot(
                            n,
                            &rows[r * row_bytes..(r + 1) * row_bytes],
                            &acts[t * stride..(t + 1) * stride],
                        );
                        assert_eq!(
                            tile[t * nr + r].to_bits(),
                            single.to_bits(),
                            "{label} {w} n={n} row {r} token {t}"
                        );
                    }
                }
                tested += 1;
            }
        }
    }
    assert!(tested > 0 || !fovea_kernels::isa::Isa::Avx2.is_supported(), "no tile kernel was tested");
}
