//! Rows of keys or values in the page store's element types: f32 (exact), f16, and ggml's Q8_0
//! block layout (an f16 scale d and 32 signed bytes per block, x = d * q).
//!
//! Pages are plain byte buffers (a heap box or a slot of the spill file), so rows are read and
//! written with explicit little-endian conversions: no alignment is assumed.

use half::f16;

use super::mode::KvType;

/// Values per Q8_0 block.
pub const QK8_0: usize = 32;
/// Bytes per Q8_0 block: the f16 scale then 32 signed bytes.
const Q8_0_BLOCK: usize = 2 + QK8_0;

/// Bytes one row of `n` values takes in type `ty` (`n` must be a multiple of 32 for Q8_0).
pub fn row_bytes(ty: KvType, n: usize) -> usize {
    match ty {
        KvType::F32 => 4 * n,
        KvType::F16 => 2 * n,
        KvType::Q8_0 => n / QK8_0 * Q8_0_BLOCK,
    }
}

/// dst (row_bytes(ty, src.len()),) <- src (n,).
pub fn encode(ty: KvType, src: &[f32], dst: &mut [u8]) {
    match ty {
        KvType::F32 => {
            for (x, d) in src.iter().zip(dst.chunks_exact_mut(4)) {
                d.copy_from_slice(&x.to_le_bytes());
            }
        }
        KvType::F16 => {
            for (x, d) in src.iter().zip(dst.chunks_exact_mut(2)) {
                d.copy_from_slice(&f16::from_f32(*x).to_le_bytes());
            }
        }
        KvType::Q8_0 => {
            for (x, d) in src.chunks_exact(QK8_0).zip(dst.chunks_exact_mut(Q8_0_BLOCK)) {
                // ggml's quantize_row_q8_0_ref: d = amax / 127, q = round(x / d).
                let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let scale = amax / 127.0;
                let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
                d[..2].copy_from_slice(&f16::from_f32(scale).to_le_bytes());
                for (q, v) in d[2..].iter_mut().zip(x) {
                    *q = ((v * inv).round() as i8) as u8;
                }
            }
        }
    }
}

/// dst (n,) <- the row src (row_bytes(ty, n),).
pub fn decode(ty: KvType, src: &[u8], dst: &mut [f32]) {
    match ty {
        KvType::F32 => {
            for (d, s) in dst.iter_mut().zip(src.chunks_exact(4)) {
                *d = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            }
        }
        KvType::F16 => {
            for (d, s) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *d = f16::from_le_bytes([s[0], s[1]]).to_f32();
            }
        }
        KvType::Q8_0 => {
            for (d, s) in dst.chunks_exact_mut(QK8_0).zip(src.chunks_exact(Q8_0_BLOCK)) {
                let scale = f16::from_le_bytes([s[0], s[1]]).to_f32();
                for (x, &q) in d.iter_mut().zip(&s[2..]) {
                    *x = scale * (q as i8) as f32;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worst absolute error per type, relative to the row's largest magnitude.
    const TOLERANCE: [(KvType, f32); 3] =
        [(KvType::F32, 0.0), (KvType::F16, 1e-3), (KvType::Q8_0, 1.0 / 127.0)];

    #[test]
    fn round_trips_within_each_types_tolerance() {
        let src: Vec<f32> = (0..96).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.173).collect();
        let amax = src.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (ty, tol) in TOLERANCE {
            let mut bytes = vec![0u8; row_bytes(ty, src.len())];
            encode(ty, &src, &mut bytes);
            let mut back = vec![0.0f32; src.len()];
            decode(ty, &bytes, &mut back);
            let err = src.iter().zip(&back).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(err <= tol * amax, "{ty:?}: error {err} > {tol} * {amax}");
        }
        assert_eq!(row_bytes(KvType::Q8_0, 64), 68);
    }
}
