//! Scalar dequantization to f32, bit-exact with ggml's `dequantize_row_*`.
//!
//! Each function evaluates the same f32 expression, in the same order, as the C code: for
//! example `Q4_1` is `q as f32 * d + m` (a multiply then an add, never fused). A C compiler
//! allowed to contract into FMA (`-ffp-contract=fast` with FMA enabled) can differ from these in
//! the last bit; the C source semantics are what we match.
//!
//! Per-type functions take `src` blocks and `dst` of `(src.len() * ELEMS,)`; a shorter `dst`
//! is a programming error (debug-asserted) and only the blocks that fit are written.

use alloc::format;
use half::{bf16, f16};

use crate::blocks::{
    cast_blocks, BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1,
    BlockQ6K, BlockQ8K, BlockQ8_0, BlockQ8_1, GgmlBlock, QK, QK_K,
};
use crate::error::FormatError;
use crate::ggml_type::GgmlType;

/// Dequantizes one row: `src` holds `dst.len()` elements of type `ty`.
///
/// Errors with [`FormatError::SizeMismatch`] unless `src.len() == ty.bytes_for(dst.len())`.
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) -> Result<(), FormatError> {
    let n = dst.len();
    let expected = ty.bytes_for(n as u64).ok_or_else(|| FormatError::SizeMismatch {
        what: format!("{ty} row of {n} elements (not a whole number of {}-element blocks)", ty.block_elems()),
        expected: 0,
        found: src.len(),
    })?;
    if expected != src.len() as u64 {
        return Err(FormatError::SizeMismatch {
            what: format!("{ty} row of {n} elements"),
            expected: expected as usize,
            found: src.len(),
        });
    }
    match ty {
        GgmlType::F32 => dst.copy_from_slice(&cast_blocks::<f32>(src)?),
        GgmlType::F16 => dequantize_row_f16(&cast_blocks::<f16>(src)?, dst),
        GgmlType::BF16 => dequantize_row_bf16(&cast_blocks::<bf16>(src)?, dst),
        GgmlType::Q4_0 => dequantize_row_q4_0(&cast_blocks(src)?, dst),
        GgmlType::Q4_1 => dequantize_row_q4_1(&cast_blocks(src)?, dst),
        GgmlType::Q5_0 => dequantize_row_q5_0(&cast_blocks(src)?, dst),
        GgmlType::Q5_1 => dequantize_row_q5_1(&cast_blocks(src)?, dst),
        GgmlType::Q8_0 => dequantize_row_q8_0(&cast_blocks(src)?, dst),
        GgmlType::Q8_1 => dequantize_row_q8_1(&cast_blocks(src)?, dst),
        GgmlType::Q2K => dequantize_row_q2_k(&cast_blocks(src)?, dst),
        GgmlType::Q3K => dequantize_row_q3_k(&cast_blocks(src)?, dst),
        GgmlType::Q4K => dequantize_row_q4_k(&cast_blocks(src)?, dst),
        GgmlType::Q5K => dequantize_row_q5_k(&cast_blocks(src)?, dst),
        GgmlType::Q6K => dequantize_row_q6_k(&cast_blocks(src)?, dst),
        GgmlType::Q8K => dequantize_row_q8_k(&cast_blocks(src)?, dst),
    }
    Ok(())
}

/// Pairs each block with its `ELEMS` outputs.
fn blocks_out<'a, B: GgmlBlock>(
    src: &'a [B],
    dst: &'a mut [f32],
) -> impl Iterator<Item = (&'a B, &'a mut [f32])> {
    debug_assert_eq!(dst.len(), src.len() * B::ELEMS, "dequantize: dst must hold every element");
    src.iter().zip(dst.chunks_exact_mut(B::ELEMS))
}

/// F16 -> f32 (exact).
pub fn dequantize_row_f16(src: &[f16], dst: &mut [f32]) {
    for (x, y) in blocks_out(src, dst) {
        y[0] = x.to_f32();
    }
}

/// BF16 -> f32 (exact).
pub fn dequantize_row_bf16(src: &[bf16], dst: &mut [f32]) {
    for (x, y) in blocks_out(src, dst) {
        y[0] = x.to_f32();
    }
}

/// x = d * (q - 8)
pub fn dequantize_row_q4_0(src: &[BlockQ4_0], dst: &mut [f32]) {
    for (b, y) in blocks_out(src, dst) {
        let d = b.d.to_f32();
        for (j, &q) in b.qs.iter().enumerate() {
            y[j] = ((q & 0xF) as i32 - 8) as f32 * d;
            y[j + QK / 2] = ((q >> 4) as i32 - 8) as f32 * d;
        }
    }
}

/// x = d * q + m
pub fn dequantize_row_q4_1(src: &[BlockQ4_1], dst: &mut [f32]) {
    for (b, y) in blocks_out(src, dst) {
        let (d, m) = (b.d.to_f32(), b.m.to_f32());
        for (j, &q) in b.qs.iter().enumerate() {
            y[j] = (q & 0xF) as f32 * d + m;
            y[j + QK / 2] = (q >> 4) as f32 * d + m;
        }
    }
}

/// The 5-bit quants (0..32) of a Q5 block, element order.
#[inline]
fn q5_quants(qh: [u8; 4], qs: &[u8; QK / 2]) -> [u8; QK] {
    let qh = u32::from_le_bytes(qh);
    let mut q = [0u8; QK];
    for (j, &b) in qs.iter().enumerate() {
        let h0 = ((qh >> j) << 4) as u8 & 0x10;
        let h1 = (qh >> (j + 12)) as u8 & 0x10;
        q[j] = (b & 0xF) | h0;
        q[j + QK / 2] = (b >> 4) | h1;
    }
    q
}

/// x = d * (q - 16)
pub fn dequantize_row_q5_0(src: &[BlockQ5_0], dst: &mut [f32]) {
    for (b, y) in blocks_out(src, dst) {
        let d = b.d.to_f32();
        for (yj, q) in y.iter_mut().zip(q5_quants(b.qh, &b.qs)) {
            *yj = (q as i32 - 16) as f32 * d;
        }
    }
}

/// x = d * q + m
pub fn dequantize_row_q5_1(src: &[BlockQ5_1], dst: &mut [f32]) {
    for (b, y) in blocks_out(src, dst) {
        let (d, m) = (b.d.to_f32(), b.m.to_f32());
        for (yj, q) in y.iter_mut().zip(q5_quants(b.qh, &b.qs)) {
            *yj = q as f32 * d + m;
        }
    }
}

/// x = d * q
pub fn dequantize_row_q8_0(src: &[BlockQ8_0], dst: &mut [f32]) {
    for (b, y) in blocks_out(src, dst) {
        let d = b.d.to_f32();
        for (yj, &q) in y.iter_mut().zip(&b.qs) {
            *yj = q as f32 * d;
        }
    }
}

/// x = d * q (`s` is redundant for dequantization).
pub fn dequantize_row_q8_1(src: &[BlockQ8_1], dst: &mut [f32]) {
    for (b, y) in blocks_out(src, dst) {
        let d = b.d.to_f32();
        for (yj, &q) in y.iter_mut().zip(&b.qs) {
            *yj = q as f32 * d;
        }
    }
}

/// x = (d * (sc & 15)) * q - dmin * (sc >> 4), per 16 elements.
pub fn dequantize_row_q2_k(src: &[BlockQ2K], dst: &mut [f32]) {
    for (b, y) in blocks_out(src, dst) {
        let (d, min) = (b.d.to_f32(), b.dmin.to_f32());
        // Element 128h + 32k + l sits at bits 2k of qs[32h + l]; sub-block = that index / 16.
        for (e, yj) in y.iter_mut().enumerate() {
            let (h, k, l) = (e / 128, (e % 128) / 32, e % 32);
            let q = (b.qs[32 * h + l] >> (2 * k)) & 3;
            let sc = b.scales[e / 16];
            let dl = d * (sc & 0xF) as f32;
            let ml = min * (sc >> 4) as f32;
            *yj = dl * q as f32 - ml;
        }
    }
}

/// x = (d * (sc - 32)) * (q - 4 * !hbit), per 16 elements.
pub fn dequantize_row_q3_k(src: &[BlockQ3K], dst: &mut [f32]) {
    for (b, y) in blocks_out(src, dst) {
        let d_all = b.d.to_f32();
        let scales = b.scales_i8();
        for (e, yj) in y.iter_mut().enumerate() {
            let (h, k, l) = (e / 128, (e % 128) / 32, e % 32);
            let low = ((b.qs[32 * h + l] >> (2 * k)) & 3) as i32;
            // hmask bit (4h + k) of byte l: set means the value is not shifted down by 4.
            let high = if b.hmask[l] & (1 << (4 * h + k)) != 0 { 0 } else { 4 };
            let dl = d_all * scales[e / 16] as f32;
            *yj = dl * (low - high) as f32;
        }
    }
}

/// x = (d * sc) * q - dmin * m, per 32 elements.
pub fn dequantize_row_q4_k(src: &[BlockQ4K], dst: &mut [f32]) {
    for (b, y) in blocks_out(src, dst) {
        let (d, min) = (b.d.to_f32(), b.dmin.to_f32());
        // Chunk c of 64 elements: sub-block 2c from the low nibbles, 2c + 1 from the high ones.
        for (c, (yc, qc)) in y.chunks_exact_mut(64).zip(b.qs.chunks_exact(32)).enumerate() {
            let (sc1, m1) = b.scale_min(2 * c);
            let (sc2, m2) = b.scale_min(2 * c + 1);
            let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
            let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
            for (l, &q) in qc.iter().enumerate() {
                yc[l] = d1 * (q & 0xF) as f32 - m1;
                yc[l + 32] = d2 * (q >> 4) as f32 - m2;
            }
        }
    }
}

/// x = (d * sc) * q - dmin * m, per 32 elements, q with its fifth bit.
pub fn dequantize_row_q5_k(src: &[BlockQ5K], dst: &mut [f32]) {
    for (b, y) in blocks_out(src, dst) {
        let (d, min) = (b.d.to_f32(), b.dmin.to_f32());
        for (c, (yc, qc)) in y.chunks_exact_mut(64).zip(b.qs.chunks_exact(32)).enumerate() {
            let (sc1, m1) = b.scale_min(2 * c);
            let (sc2, m2) = b.scale_min(2 * c + 1);
            let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
            let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
            let (u1, u2) = (1u8 << (2 * c), 2u8 << (2 * c));
            for (l, &q) in qc.iter().enumerate() {
                let h1 = if b.qh[l] & u1 != 0 { 16 } else { 0 };
                let h2 = if b.qh[l] & u2 != 0 { 16 } else { 0 };
                yc[l] = d1 * ((q & 0xF) + h1) as f32 - m1;
                yc[l + 32] = d2 * ((q >> 4) + h2) as f32 - m2;
            }
        }
    }
}

/// x = (d * sc) * (q - 32), per 16 elements.
pub fn dequantize_row_q6_k(src: &[BlockQ6K], dst: &mut [f32]) {
    for (b, y) in blocks_out(src, dst) {
        let d = b.d.to_f32();
        for (h, yh) in y.chunks_exact_mut(128).enumerate() {
            let (ql, qh, sc) = (&b.ql[64 * h..], &b.qh[32 * h..], &b.scales[8 * h..]);
            for l in 0..32 {
                let is = l / 16;
                let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
                let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                yh[l] = d * sc[is] as f32 * q1 as f32;
                yh[l + 32] = d * sc[is + 2] as f32 * q2 as f32;
                yh[l + 64] = d * sc[is + 4] as f32 * q3 as f32;
                yh[l + 96] = d * sc[is + 6] as f32 * q4 as f32;
            }
        }
    }
}

/// x = d * q (f32 scale).
pub fn dequantize_row_q8_k(src: &[BlockQ8K], dst: &mut [f32]) {
    for (b, y) in blocks_out(src, dst) {
        for (yj, &q) in y.iter_mut().zip(&b.qs) {
            *yj = b.d * q as f32;
        }
    }
}

// The K-quant loops above index 128-element halves and 64/32/16-element chunks directly.
const _: () = assert!(QK_K == 256);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;
    use bytemuck::Zeroable;

    fn h(x: f32) -> f16 {
        f16::from_f32(x)
    }

    fn deq(ty: GgmlType, bytes: &[u8], n: usize) -> Vec<f32> {
        let mut out = vec![f32::NAN; n];
        dequantize_row(ty, bytes, &mut out).unwrap();
        out
    }

    #[test]
    fn size_is_checked() {
        let mut out = [0.0f32; 32];
        assert!(matches!(
            dequantize_row(GgmlType::Q4_0, &[0u8; 17], &mut out),
            Err(FormatError::SizeMismatch { expected: 18, found: 17, .. })
        ));
        let mut out = [0.0f32; 33];
        assert!(dequantize_row(GgmlType::Q4_0, &[0u8; 18], &mut out).is_err());
        let mut out = [0.0f32; 0];
        assert!(dequantize_row(GgmlType::Q6K, &[], &mut out).is_ok());
    }

    #[test]
    fn float_types() {
        let x = [1.5f32, -2.25, 0.0, 65504.0];
        assert_eq!(deq(GgmlType::F32, bytemuck::cast_slice(&x), 4), x);
        let hs: Vec<f16> = x.iter().map(|&v| h(v)).collect();
        assert_eq!(deq(GgmlType::F16, bytemuck::cast_slice(&hs), 4), x);
        let bs: Vec<bf16> = [1.5f32, -2.25, 0.0, 3.0e38].iter().map(|&v| bf16::from_f32(v)).collect();
        let got = deq(GgmlType::BF16, bytemuck::cast_slice(&bs), 4);
        assert_eq!(&got[..3], &[1.5, -2.25, 0.0]);
        assert_eq!(got[3], bf16::from_f32(3.0e38).to_f32());
    }

    #[test]
    fn q4_0_nibble_order() {
        let mut b = BlockQ4_0 { d: h(0.5), qs: [0x88; 16] };
        b.qs[0] = 0xF0; // element 0 -> q 0 -> -8 * 0.5; element 16 -> q 15 -> 7 * 0.5
        b.qs[3] = 0x1A; // element 3 -> q 10; element 19 -> q 1
        let y = deq(GgmlType::Q4_0, bytemuck::bytes_of(&b), 32);
        assert_eq!(y[0], -4.0);
        assert_eq!(y[16], 3.5);
        assert_eq!(y[3], 1.0);
        assert_eq!(y[19], -3.5);
        assert_eq!(y[5], 0.0);
    }

    #[test]
    fn q4_1_adds_min() {
        let mut b = BlockQ4_1 { d: h(0.25), m: h(-1.0), qs: [0; 16] };
        b.qs[1] = 0x4C;
        let y = deq(GgmlType::Q4_1, bytemuck::bytes_of(&b), 32);
        assert_eq!(y[0], -1.0);
        assert_eq!(y[1], 12.0 * 0.25 - 1.0);
        assert_eq!(y[17], 4.0 * 0.25 - 1.0);
    }

    #[test]
    fn q5_high_bits() {
        // qh bit 2 -> element 2 gets +16; bit 20 -> element 20 gets +16.
        let qh = ((1u32 << 2) | (1u32 << 20)).to_le_bytes();
        let mut b = BlockQ5_0 { d: h(2.0), qh, qs: [0; 16] };
        b.qs[2] = 0x31; // element 2 -> 1 | 16 = 17; element 18 -> 3
        b.qs[4] = 0x50; // element 20 -> 5 | 16 = 21
        let y = deq(GgmlType::Q5_0, bytemuck::bytes_of(&b), 32);
        assert_eq!(y[2], (17 - 16) as f32 * 2.0);
        assert_eq!(y[18], (3 - 16) as f32 * 2.0);
        assert_eq!(y[20], (21 - 16) as f32 * 2.0);
        assert_eq!(y[0], -32.0);
        let b1 = BlockQ5_1 { d: h(2.0), m: h(0.5), qh, qs: b.qs };
        let y = deq(GgmlType::Q5_1, bytemuck::bytes_of(&b1), 32);
        assert_eq!(y[2], 17.0 * 2.0 + 0.5);
        assert_eq!(y[20], 21.0 * 2.0 + 0.5);
        assert_eq!(y[1], 0.5);
    }

    #[test]
    fn q8_blocks() {
        let mut qs = [0i8; 32];
        qs[0] = -128;
        qs[31] = 127;
        let b = BlockQ8_0 { d: h(0.125), qs };
        let y = deq(GgmlType::Q8_0, bytemuck::bytes_of(&b), 32);
        assert_eq!((y[0], y[31]), (-16.0, 15.875));
        let b = BlockQ8_1 { d: h(0.125), s: h(0.0), qs };
        assert_eq!(deq(GgmlType::Q8_1, bytemuck::bytes_of(&b), 32)[31], 15.875);
        let mut b = BlockQ8K::zeroed();
        b.d = 0.1;
        b.qs[255] = -3;
        assert_eq!(deq(GgmlType::Q8K, bytemuck::bytes_of(&b), 256)[255], 0.1f32 * -3.0);
    }

    #[test]
    fn q2_k_layout() {
        let mut b = BlockQ2K::zeroed();
        b.d = h(1.0);
        b.dmin = h(0.5);
        // Element 128 + 64 + 5 = 197: half 1, shift k = 2, byte 32 + 5; sub-block 197/16 = 12.
        b.qs[37] = 3 << 4;
        b.scales[12] = 3 | (2 << 4);
        let y = deq(GgmlType::Q2K, bytemuck::bytes_of(&b), 256);
        assert_eq!(y[197], 3.0 * 3.0 - 0.5 * 2.0);
        assert_eq!(y[196], -1.0); // same sub-block, q = 0
        assert_eq!(y[5], 0.0);
    }

    #[test]
    fn q3_k_layout() {
        let mut b = BlockQ3K::zeroed();
        b.d = h(0.5);
        // All scales stored 0 -> -32 except scale 0 stored 33 -> 1 (low nibble 1, high bits 2).
        b.scales[0] = 1;
        b.scales[8] = 2;
        // Element 7: half 0, k 0, byte 7. q low = 2, hmask bit 0 set -> value 2.
        b.qs[7] = 2;
        b.hmask[7] = 1;
        // Element 8: low 0, hmask unset -> value -4.
        let y = deq(GgmlType::Q3K, bytemuck::bytes_of(&b), 256);
        assert_eq!(y[7], 0.5 * 1.0 * 2.0);
        assert_eq!(y[8], 0.5 * 1.0 * -4.0);
        // Element 16 is in sub-block 1 (scale -32), low 0, no high bit -> -4 * -32 * 0.5.
        assert_eq!(y[16], 0.5 * -32.0 * -4.0);
    }

    #[test]
    fn q4_k_and_q5_k_layout() {
        let mut b = BlockQ4K::zeroed();
        b.d = h(2.0);
        b.dmin = h(1.0);
        b.scales[0] = 3; // sub-block 0 scale
        b.scales[5] = 4; // sub-block 1 min
        b.scales[1] = 1; // sub-block 1 scale
        b.qs[0] = 0x57; // element 0 -> 7 (sub-block 0), element 32 -> 5 (sub-block 1)
        let y = deq(GgmlType::Q4K, bytemuck::bytes_of(&b), 256);
        assert_eq!(y[0], 2.0 * 3.0 * 7.0);
        assert_eq!(y[32], 2.0 * 1.0 * 5.0 - 4.0);
        let mut b5 = BlockQ5K { d: b.d, dmin: b.dmin, scales: b.scales, qh: [0; 32], qs: b.qs };
        b5.qh[0] = 0b10; // element 32 gets +16
        let y = deq(GgmlType::Q5K, bytemuck::bytes_of(&b5), 256);
        assert_eq!(y[0], 42.0);
        assert_eq!(y[32], 2.0 * 21.0 - 4.0);
    }

    #[test]
    fn q6_k_layout() {
        let mut b = BlockQ6K::zeroed();
        b.d = h(0.5);
        b.scales = [1; 16];
        b.scales[12] = -2; // elements 192..208
                           // Element 128 + 96 + 1 = 225: half 1, ql[64 + 32 + 1] high nibble, qh[32 + 1] bits 6..8.
        b.ql[97] = 0xA0;
        b.qh[33] = 0b11 << 6;
        let y = deq(GgmlType::Q6K, bytemuck::bytes_of(&b), 256);
        assert_eq!(y[225], 0.5 * 1.0 * (0x3A - 32) as f32);
        assert_eq!(y[200], 0.5 * -2.0 * -32.0);
        assert_eq!(y[0], -16.0);
    }

    #[test]
    fn multi_block_rows_advance() {
        let blocks = [BlockQ8_0 { d: h(1.0), qs: [1; 32] }, BlockQ8_0 { d: h(2.0), qs: [1; 32] }];
        let y = deq(GgmlType::Q8_0, bytemuck::cast_slice(&blocks), 64);
        assert_eq!((y[31], y[32], y[63]), (1.0, 2.0, 2.0));
    }
}
