//! ggml quantization blocks, byte for byte as `ggml-common.h` lays them out.
//!
//! Every struct is `#[repr(C)]` with no padding (checked by `bytemuck::Pod` and by the size
//! asserts below), so a tensor's bytes can be viewed as a slice of blocks with
//! [`cast_blocks`]. Field comments give the value formula; the dequantizers in
//! [`crate::dequant`] are the executable definition.
//!
//! Two families:
//! - 32-element blocks (`Q4_0` .. `Q8_1`): one f16 scale `d` (and a min `m` or sum `s`).
//! - 256-element super-blocks (`Q2_K` .. `Q8_K`): a super-scale `d` (and `dmin`) times small
//!   per-sub-block integer scales.

use alloc::borrow::Cow;
use alloc::format;
use bytemuck::{Pod, Zeroable};
use half::f16;

use crate::error::FormatError;
use crate::ggml_type::GgmlType;

/// Elements in a 32-element block (`QK4_0` = `QK4_1` = `QK5_0` = `QK5_1` = `QK8_0` = `QK8_1`).
pub const QK: usize = 32;
/// Elements in a K-quant super-block (`QK_K`).
pub const QK_K: usize = 256;
/// Bytes of packed 6-bit scales and mins in `Q4_K`/`Q5_K` (`K_SCALE_SIZE`).
pub const K_SCALE_SIZE: usize = 12;

/// A block type: its ggml type and element count, so generic code can go from bytes to blocks.
pub trait GgmlBlock: Pod {
    const TYPE: GgmlType;
    /// Elements per block.
    const ELEMS: usize;
}

/// `Q4_0`: x = d * (q - 8), q in 0..16.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ4_0 {
    /// Scale.
    pub d: f16,
    /// 4-bit quants: byte j holds element j (low nibble) and element j + 16 (high nibble).
    pub qs: [u8; QK / 2],
}

/// `Q4_1`: x = d * q + m, q in 0..16.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: f16,
    /// Minimum (offset added to every element).
    pub m: f16,
    /// 4-bit quants, nibble order as in [`BlockQ4_0`].
    pub qs: [u8; QK / 2],
}

/// `Q5_0`: x = d * (q - 16), q in 0..32.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ5_0 {
    /// Scale.
    pub d: f16,
    /// Fifth bits, little-endian u32: bit j is the high bit of element j.
    pub qh: [u8; 4],
    /// Low 4 bits, nibble order as in [`BlockQ4_0`].
    pub qs: [u8; QK / 2],
}

/// `Q5_1`: x = d * q + m, q in 0..32.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ5_1 {
    /// Scale.
    pub d: f16,
    /// Minimum.
    pub m: f16,
    /// Fifth bits, little-endian u32: bit j is the high bit of element j.
    pub qh: [u8; 4],
    /// Low 4 bits, nibble order as in [`BlockQ4_0`].
    pub qs: [u8; QK / 2],
}

/// `Q8_0`: x = d * q, q in -128..128 (quantizers produce -127..=127).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: f16,
    /// Quants, element order.
    pub qs: [i8; QK],
}

/// `Q8_1`: x = d * q; the activation partner of `Q4_1`/`Q5_1`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ8_1 {
    /// Scale.
    pub d: f16,
    /// d * sum(qs), precomputed so a dot with a min-offset block costs one multiply for the min.
    pub s: f16,
    /// Quants, element order.
    pub qs: [i8; QK],
}

/// `Q2_K`: 16 sub-blocks of 16; x = d * (sc & 15) * q - dmin * (sc >> 4), q in 0..4.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ2K {
    /// Per sub-block: scale in the low nibble, min in the high nibble.
    pub scales: [u8; QK_K / 16],
    /// 2-bit quants. Each 128-element half uses 32 bytes; bits 2k..2k+2 of byte l hold
    /// element 32k + l of that half.
    pub qs: [u8; QK_K / 4],
    /// Super-scale for the scales.
    pub d: f16,
    /// Super-scale for the mins.
    pub dmin: f16,
}

/// `Q3_K`: 16 sub-blocks of 16; x = d * (sc - 32) * (q - 4 * !hbit), q in 0..4.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ3K {
    /// High bit of each quant: bit k of byte l is element 32k + l. A set bit means "no -4".
    pub hmask: [u8; QK_K / 8],
    /// Low 2 bits, packed as in [`BlockQ2K::qs`].
    pub qs: [u8; QK_K / 4],
    /// Sixteen 6-bit scales (stored +32): low nibbles in bytes 0..8, high 2-bit pairs in 8..12.
    /// See [`BlockQ3K::scales_i8`].
    pub scales: [u8; 12],
    /// Super-scale.
    pub d: f16,
}

/// `Q4_K`: 8 sub-blocks of 32; x = d * sc * q - dmin * m, q in 0..16.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ4K {
    /// Super-scale for the scales.
    pub d: f16,
    /// Super-scale for the mins.
    pub dmin: f16,
    /// Eight 6-bit scales and eight 6-bit mins, packed; see [`BlockQ4K::scale_min`].
    pub scales: [u8; K_SCALE_SIZE],
    /// 4-bit quants: each 64-element chunk uses 32 bytes, element l in the low nibble of byte l
    /// and element 32 + l in the high nibble.
    pub qs: [u8; QK_K / 2],
}

/// `Q5_K`: as [`BlockQ4K`] with a fifth bit; q in 0..32.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ5K {
    /// Super-scale for the scales.
    pub d: f16,
    /// Super-scale for the mins.
    pub dmin: f16,
    /// Packed 6-bit scales and mins, as in [`BlockQ4K`].
    pub scales: [u8; K_SCALE_SIZE],
    /// Fifth bits: bit k of byte l is the high bit of element 32k + l.
    pub qh: [u8; QK_K / 8],
    /// Low 4 bits, packed as in [`BlockQ4K::qs`].
    pub qs: [u8; QK_K / 2],
}

/// `Q6_K`: 16 sub-blocks of 16; x = d * sc * (q - 32), q in 0..64.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ6K {
    /// Low 4 bits. Per 128-element half (64 bytes): byte l holds elements l (low) and 64 + l
    /// (high); byte 32 + l holds elements 32 + l (low) and 96 + l (high).
    pub ql: [u8; QK_K / 2],
    /// High 2 bits. Per half (32 bytes): bits 2k..2k+2 of byte l belong to element 32k + l.
    pub qh: [u8; QK_K / 4],
    /// Signed 8-bit scale per 16 elements.
    pub scales: [i8; QK_K / 16],
    /// Super-scale.
    pub d: f16,
}

/// `Q8_K`: x = d * q; the activation partner of every K-quant. Only ever made at run time.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ8K {
    /// Scale (f32, unlike the other blocks).
    pub d: f32,
    /// Quants, element order.
    pub qs: [i8; QK_K],
    /// Sum of each 16 consecutive quants, for the K-quant min terms.
    pub bsums: [i16; QK_K / 16],
}

const _: () = assert!(size_of::<BlockQ4_0>() == 18);
const _: () = assert!(size_of::<BlockQ4_1>() == 20);
const _: () = assert!(size_of::<BlockQ5_0>() == 22);
const _: () = assert!(size_of::<BlockQ5_1>() == 24);
const _: () = assert!(size_of::<BlockQ8_0>() == 34);
const _: () = assert!(size_of::<BlockQ8_1>() == 36);
const _: () = assert!(size_of::<BlockQ2K>() == 84);
const _: () = assert!(size_of::<BlockQ3K>() == 110);
const _: () = assert!(size_of::<BlockQ4K>() == 144);
const _: () = assert!(size_of::<BlockQ5K>() == 176);
const _: () = assert!(size_of::<BlockQ6K>() == 210);
const _: () = assert!(size_of::<BlockQ8K>() == 292);

macro_rules! impl_block {
    ($($block:ty => $ty:expr, $elems:expr;)*) => {
        $(impl GgmlBlock for $block {
            const TYPE: GgmlType = $ty;
            const ELEMS: usize = $elems;
        })*
    };
}

impl_block! {
    BlockQ4_0 => GgmlType::Q4_0, QK;
    BlockQ4_1 => GgmlType::Q4_1, QK;
    BlockQ5_0 => GgmlType::Q5_0, QK;
    BlockQ5_1 => GgmlType::Q5_1, QK;
    BlockQ8_0 => GgmlType::Q8_0, QK;
    BlockQ8_1 => GgmlType::Q8_1, QK;
    BlockQ2K => GgmlType::Q2K, QK_K;
    BlockQ3K => GgmlType::Q3K, QK_K;
    BlockQ4K => GgmlType::Q4K, QK_K;
    BlockQ5K => GgmlType::Q5K, QK_K;
    BlockQ6K => GgmlType::Q6K, QK_K;
    BlockQ8K => GgmlType::Q8K, QK_K;
    f32 => GgmlType::F32, 1;
    f16 => GgmlType::F16, 1;
    half::bf16 => GgmlType::BF16, 1;
}

impl BlockQ4K {
    /// The 6-bit (scale, min) of sub-block `j` (0..8).
    #[inline]
    pub fn scale_min(&self, j: usize) -> (u8, u8) {
        k_scale_min(&self.scales, j)
    }
}

impl BlockQ5K {
    /// The 6-bit (scale, min) of sub-block `j` (0..8).
    #[inline]
    pub fn scale_min(&self, j: usize) -> (u8, u8) {
        k_scale_min(&self.scales, j)
    }
}

/// Unpacks `Q4_K`/`Q5_K` scales: sub-blocks 0..4 keep their 6 bits in bytes 0..4 (scales) and
/// 4..8 (mins); sub-blocks 4..8 keep their low 4 bits in bytes 8..12 and their top 2 bits in the
/// spare top bits of bytes 0..8.
#[inline]
fn k_scale_min(q: &[u8; K_SCALE_SIZE], j: usize) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

impl BlockQ3K {
    /// The sixteen sub-block scales, already minus 32 (range -32..=31).
    ///
    /// Scale j has its low 4 bits in byte j % 8 (low nibble for j < 8, high nibble otherwise) and
    /// its top 2 bits at bits 2 * (j / 4) of byte 8 + j % 4.
    #[inline]
    pub fn scales_i8(&self) -> [i8; 16] {
        let s = &self.scales;
        core::array::from_fn(|j| {
            let low = if j < 8 { s[j] & 0xF } else { s[j - 8] >> 4 };
            let high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
            ((low | (high << 4)) as i8) - 32
        })
    }
}

/// Views `bytes` as blocks of `B` without copying when aligned; copies when the bytes are not
/// aligned for `B` (GGUF aligns tensor data, so the copy is the rare path).
///
/// Errors with [`FormatError::SizeMismatch`] when the length is not a whole number of blocks.
pub fn cast_blocks<B: GgmlBlock>(bytes: &[u8]) -> Result<Cow<'_, [B]>, FormatError> {
    let size = size_of::<B>();
    if !bytes.len().is_multiple_of(size) {
        return Err(FormatError::SizeMismatch {
            what: format!("{} blocks ({size} bytes each)", B::TYPE),
            expected: bytes.len() / size * size,
            found: bytes.len(),
        });
    }
    Ok(match bytemuck::try_cast_slice(bytes) {
        Ok(blocks) => Cow::Borrowed(blocks),
        Err(_) => {
            let mut owned = alloc::vec![B::zeroed(); bytes.len() / size];
            bytemuck::cast_slice_mut::<B, u8>(&mut owned).copy_from_slice(bytes);
            Cow::Owned(owned)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check<B: GgmlBlock>() {
        assert_eq!(size_of::<B>(), B::TYPE.block_bytes(), "{} block size", B::TYPE);
        assert_eq!(B::ELEMS, B::TYPE.block_elems(), "{} block elements", B::TYPE);
    }

    #[test]
    fn block_sizes_match_ggml_type_table() {
        check::<BlockQ4_0>();
        check::<BlockQ4_1>();
        check::<BlockQ5_0>();
        check::<BlockQ5_1>();
        check::<BlockQ8_0>();
        check::<BlockQ8_1>();
        check::<BlockQ2K>();
        check::<BlockQ3K>();
        check::<BlockQ4K>();
        check::<BlockQ5K>();
        check::<BlockQ6K>();
        check::<BlockQ8K>();
        check::<f32>();
        check::<f16>();
        check::<half::bf16>();
    }

    #[test]
    fn field_offsets_match_ggml() {
        // Offsets of the fields that follow the arrays in ggml-common.h.
        assert_eq!(core::mem::offset_of!(BlockQ2K, d), 80);
        assert_eq!(core::mem::offset_of!(BlockQ3K, scales), 96);
        assert_eq!(core::mem::offset_of!(BlockQ3K, d), 108);
        assert_eq!(core::mem::offset_of!(BlockQ5K, qs), 48);
        assert_eq!(core::mem::offset_of!(BlockQ6K, scales), 192);
        assert_eq!(core::mem::offset_of!(BlockQ8K, bsums), 260);
    }

    #[test]
    fn k4_scale_min_unpacks_both_halves() {
        let mut b = BlockQ4K::zeroed();
        // Sub-block 1: scale 0b10_1010 = 42, min 7 (direct 6-bit fields).
        b.scales[1] = 42;
        b.scales[5] = 7;
        // Sub-block 6: scale 0b11_0101 = 53, min 0b01_1110 = 30.
        b.scales[10] = 0x5 | (0xE << 4); // low nibbles
        b.scales[2] |= 0b11 << 6; // scale high bits live in byte j - 4
        b.scales[6] |= 0b01 << 6; // min high bits live in byte j
        assert_eq!(b.scale_min(1), (42, 7));
        assert_eq!(b.scale_min(6), (53, 30));
        assert_eq!(b.scale_min(0), (0, 0));
    }

    #[test]
    fn q3k_scales_unpack_to_signed() {
        let mut b = BlockQ3K::zeroed();
        // Scale 0 = 0 (stored) -> -32. Scale 9: low nibble in high half of byte 1, top bits at
        // bits 4..6 of byte 9 -> stored 0b10_0111 = 39 -> 7.
        b.scales[1] = 0x7 << 4;
        b.scales[9] = 0b10 << 4;
        let s = b.scales_i8();
        assert_eq!(s[0], -32);
        assert_eq!(s[9], 7);
        assert_eq!(s[1], -32);
    }

    #[test]
    fn cast_blocks_rejects_partial_and_copies_unaligned() {
        let bytes = [0u8; 37];
        assert!(cast_blocks::<BlockQ8_0>(&bytes[..35]).is_err());
        let blocks = cast_blocks::<BlockQ8_0>(&bytes[..34]).unwrap();
        assert_eq!(blocks.len(), 1);
        // Offset 1 is misaligned for f16: still readable through the copying path.
        let mut raw = [0u8; 35];
        raw[1..3].copy_from_slice(&f16::from_f32(2.0).to_le_bytes());
        let blocks = cast_blocks::<BlockQ8_0>(&raw[1..]).unwrap();
        assert_eq!(blocks[0].d.to_f32(), 2.0);
    }
}
