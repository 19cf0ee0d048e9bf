//! Checked byte-offset maths for GGUF: alignment, tensor sizes and extents, counts against the bytes
//! left, and zero-copy typed views. Everything that turns a number from the file into a size or an
//! offset goes through here, and nothing here can overflow or panic.

use core::ops::Range;

use crate::error::FormatError;
use crate::ggml_type::GgmlType;

/// `offset` rounded up to a multiple of `alignment` (a power of two), or `None` on overflow.
pub fn align_up(offset: u64, alignment: u64) -> Option<u64> {
    if !alignment.is_power_of_two() {
        return None;
    }
    let mask = alignment - 1;
    offset.checked_add(mask).map(|v| v & !mask)
}

/// Whether `count` items of at least `min_each` bytes can fit in `available` bytes. Checked before
/// any allocation sized by `count`.
pub fn count_fits(count: u64, min_each: u64, available: usize) -> bool {
    match count.checked_mul(min_each) {
        Some(total) => total <= available as u64,
        None => false,
    }
}

/// Product of the dimensions, or `None` on overflow. The empty product is 1 (a scalar).
pub fn n_elements(dims: &[u64]) -> Option<u64> {
    dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}

/// Validated size of a tensor: element count and bytes, with rows of whole blocks.
pub fn tensor_n_bytes(tensor: &str, ty: GgmlType, dims: &[u64]) -> Result<u64, FormatError> {
    let tensor_err = || alloc::string::String::from(tensor);
    if let Some(axis) = dims.iter().position(|&d| d == 0) {
        return Err(FormatError::ZeroDimension { tensor: tensor_err(), axis });
    }
    let n = n_elements(dims).ok_or_else(|| FormatError::DimensionOverflow { tensor: tensor_err() })?;
    // ggml quantizes along ne0, so every row (not only the whole tensor) must be whole blocks.
    let ne0 = dims.first().copied().unwrap_or(1);
    let block_elems = ty.block_elems() as u64;
    if ne0 % block_elems != 0 {
        return Err(FormatError::PartialBlock { tensor: tensor_err(), ty, ne0, block_elems });
    }
    ty.bytes_for(n).ok_or_else(|| FormatError::DimensionOverflow { tensor: tensor_err() })
}

/// The byte range `offset .. offset + n_bytes` inside a data section of `data_len` bytes, checked for
/// alignment and bounds.
pub fn tensor_extent(
    tensor: &str,
    offset: u64,
    n_bytes: u64,
    alignment: u64,
    data_len: usize,
) -> Result<Range<usize>, FormatError> {
    if !alignment.is_power_of_two() || offset & (alignment - 1) != 0 {
        return Err(FormatError::MisalignedTensor { tensor: tensor.into(), offset, alignment });
    }
    let out_of_bounds = || FormatError::TensorOutOfBounds {
        tensor: tensor.into(),
        offset,
        n_bytes,
        data_len: data_len as u64,
    };
    let end = offset.checked_add(n_bytes).ok_or_else(out_of_bounds)?;
    if end > data_len as u64 {
        return Err(out_of_bounds());
    }
    // Both fit in usize: they are at most data_len, which is a usize.
    Ok(offset as usize..end as usize)
}

/// View `bytes` as a slice of `T` (a block struct or a float) without copying. Unlike
/// [`crate::blocks::cast_blocks`], which copies unaligned input, this refuses it.
///
/// Fails when the length is not a whole number of `T`s or the address is not aligned for `T`. GGUF
/// tensor data is aligned to the file alignment (32 by default) and an mmap starts on a page, so
/// views of tensors from a mapped file succeed for every ggml block type.
pub fn cast_slice<'a, T: bytemuck::Pod>(what: &'static str, bytes: &'a [u8]) -> Result<&'a [T], FormatError> {
    bytemuck::try_cast_slice(bytes).map_err(|e| {
        let reason = match e {
            bytemuck::PodCastError::TargetAlignmentGreaterAndInputNotAligned => "address not aligned",
            bytemuck::PodCastError::OutputSliceWouldHaveSlop => "length not a whole number of elements",
            _ => "element size mismatch",
        };
        FormatError::BadCast { what, reason, len: bytes.len(), elem_size: core::mem::size_of::<T>() }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn align_up_rounds_and_refuses_overflow() {
        assert_eq!(align_up(0, 32), Some(0));
        assert_eq!(align_up(1, 32), Some(32));
        assert_eq!(align_up(32, 32), Some(32));
        assert_eq!(align_up(33, 1), Some(33));
        assert_eq!(align_up(u64::MAX - 3, 32), None);
        assert_eq!(align_up(5, 0), None);
        assert_eq!(align_up(5, 3), None);
    }

    #[test]
    fn counts_are_checked_against_bytes_left() {
        assert!(count_fits(10, 13, 130));
        assert!(!count_fits(11, 13, 130));
        assert!(!count_fits(u64::MAX, 2, usize::MAX));
        assert!(!count_fits(1 << 62, 8, 1 << 20));
        assert!(count_fits(0, 24, 0));
    }

    #[test]
    fn tensor_sizes_check_zero_overflow_and_partial_blocks() {
        assert_eq!(tensor_n_bytes("t", GgmlType::Q4_1, &[64, 3]), Ok(6 * 20));
        assert_eq!(tensor_n_bytes("t", GgmlType::F32, &[]), Ok(4));
        assert!(matches!(
            tensor_n_bytes("t", GgmlType::F32, &[4, 0]),
            Err(FormatError::ZeroDimension { axis: 1, .. })
        ));
        assert!(matches!(
            tensor_n_bytes("t", GgmlType::F32, &[1 << 32, 1 << 32]),
            Err(FormatError::DimensionOverflow { .. })
        ));
        // The element count fits but the byte size does not.
        assert!(matches!(
            tensor_n_bytes("t", GgmlType::F32, &[1 << 62]),
            Err(FormatError::DimensionOverflow { .. })
        ));
        // 16 x 2 = 32 elements in total, but each row holds half a block.
        assert!(matches!(
            tensor_n_bytes("t", GgmlType::Q8_0, &[16, 2]),
            Err(FormatError::PartialBlock { ne0: 16, block_elems: 32, .. })
        ));
    }

    #[test]
    fn extents_check_alignment_and_bounds() {
        assert_eq!(tensor_extent("t", 32, 8, 32, 40), Ok(32..40));
        assert!(matches!(tensor_extent("t", 32, 9, 32, 40), Err(FormatError::TensorOutOfBounds { .. })));
        assert!(matches!(
            tensor_extent("t", 0, u64::MAX, 32, 40),
            Err(FormatError::TensorOutOfBounds { .. })
        ));
        assert!(matches!(
            tensor_extent("t", u64::MAX - 31, 64, 32, 40),
            Err(FormatError::TensorOutOfBounds { .. })
        ));
        assert!(matches!(
            tensor_extent("t", 4, 4, 32, 40),
            Err(FormatError::MisalignedTensor { offset: 4, .. })
        ));
    }

    #[test]
    fn cast_slice_checks_length_and_alignment() {
        #[repr(C, align(4))]
        struct Aligned([u8; 12]);
        let buf = Aligned([1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]);
        let words: &[u32] = cast_slice("u32", &buf.0).unwrap();
        assert_eq!(words, &[1u32.to_le(), 2u32.to_le(), 3u32.to_le()]);
        assert!(matches!(cast_slice::<u32>("u32", &buf.0[..10]), Err(FormatError::BadCast { len: 10, .. })));
        assert!(matches!(
            cast_slice::<u32>("u32", &buf.0[1..9]),
            Err(FormatError::BadCast { reason: "address not aligned", .. })
        ));
    }
}
