//! The one error type of this crate. Hand-written (no_std): every variant says what was expected.

use alloc::string::String;

use crate::ggml_type::GgmlType;
use crate::metadata::MetaType;

/// What went wrong reading or interpreting GGUF bytes or block data.
///
/// Variants name the key or tensor they concern; the `std` layer adds the file path
/// (see `mmap::MappedGguf`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FormatError {
    /// A tensor type id this crate cannot read.
    UnknownType { id: u32 },
    /// A byte buffer whose length does not match the element count for a type.
    SizeMismatch { what: String, expected: usize, found: usize },

    // ---- container structure ----
    /// The buffer is empty (a zero-length file).
    Empty,
    /// The buffer ends before `what` does: `needed` bytes at `offset`, only `available` left.
    Truncated { what: String, offset: u64, needed: u64, available: u64 },
    /// The first four bytes are not `GGUF`.
    BadMagic { found: [u8; 4] },
    /// A GGUF version other than 2 or 3 (1 used 32-bit counts; big-endian files look like huge versions).
    UnsupportedVersion { version: u32 },
    /// A count (`what`) that cannot fit in the bytes left, checked before anything is allocated.
    CountTooLarge { what: String, count: u64, min_each: u64, available: u64 },

    // ---- metadata ----
    /// A string that is not UTF-8.
    InvalidUtf8 { what: String },
    /// A metadata value type id outside 0..=12.
    UnknownValueType { key: String, id: u32 },
    /// Arrays nested deeper than [`crate::metadata::MAX_ARRAY_DEPTH`].
    NestingTooDeep { key: String, limit: usize },
    /// The same metadata key twice.
    DuplicateKey { key: String },
    /// A required metadata key is absent.
    MissingKey { key: String },
    /// A metadata value of another type than the reader needs.
    WrongMetaType { key: String, expected: &'static str, found: MetaType },
    /// A metadata array whose elements are of another type than the reader needs.
    WrongArrayType { key: String, expected: &'static str, found: MetaType },
    /// An integer metadata value that does not fit the type the reader needs.
    ValueOutOfRange { key: String, value: i128, target: &'static str },
    /// `general.alignment` zero or not a power of two.
    BadAlignment { alignment: u64 },

    // ---- tensor infos and data ----
    /// A tensor type id this crate cannot read, with the tensor that uses it.
    UnknownTensorType { tensor: String, id: u32 },
    /// More dimensions than ggml supports.
    TooManyDims { tensor: String, n_dims: u32, max: u32 },
    /// A dimension of size zero.
    ZeroDimension { tensor: String, axis: usize },
    /// The element count or byte size does not fit in 64 bits.
    DimensionOverflow { tensor: String },
    /// Rows (`ne0`) that are not a whole number of quantization blocks.
    PartialBlock { tensor: String, ty: GgmlType, ne0: u64, block_elems: u64 },
    /// The same tensor name twice.
    DuplicateTensor { tensor: String },
    /// A tensor offset not a multiple of the file alignment.
    MisalignedTensor { tensor: String, offset: u64, alignment: u64 },
    /// A tensor whose bytes run past the end of the data section.
    TensorOutOfBounds { tensor: String, offset: u64, n_bytes: u64, data_len: u64 },
    /// A tensor read as another ggml type than it has.
    WrongTensorType { tensor: String, expected: GgmlType, found: GgmlType },
    /// Bytes that cannot be viewed as a slice of `what` (length or address alignment).
    BadCast { what: &'static str, reason: &'static str, len: usize, elem_size: usize },
}

impl core::fmt::Display for FormatError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use FormatError as E;
        match self {
            E::UnknownType { id } => {
                write!(f, "unknown or unsupported ggml tensor type id {id}")
            }
            E::SizeMismatch { what, expected, found } => {
                write!(f, "{what}: expected {expected} bytes, found {found}")
            }
            E::Empty => write!(f, "the file is empty (0 bytes), not a GGUF model"),
            E::Truncated { what, offset, needed, available } => write!(
                f,
                "truncated file: {what} needs {needed} bytes at offset {offset} but only {available} remain \
                 (incomplete download?)"
            ),
            E::BadMagic { found } => write!(
                f,
                "not a GGUF file: starts with {found:02x?} ({:?}), expected \"GGUF\"",
                String::from_utf8_lossy(found)
            ),
            E::UnsupportedVersion { version } => {
                if *version == 1 {
                    write!(
                        f,
                        "GGUF version 1 is not supported (need 2 or 3); re-convert the model with a current llama.cpp"
                    )
                } else if (1..=3).contains(&version.swap_bytes()) {
                    write!(f, "big-endian GGUF files are not supported (version field reads {version:#x})")
                } else {
                    write!(f, "unsupported GGUF version {version} (this reader understands versions 2 and 3)")
                }
            }
            E::CountTooLarge { what, count, min_each, available } => write!(
                f,
                "corrupt file: {what} is {count}, but each needs at least {min_each} bytes and only \
                 {available} remain"
            ),
            E::InvalidUtf8 { what } => write!(f, "{what} is not valid UTF-8"),
            E::UnknownValueType { key, id } => {
                write!(f, "metadata key '{key}': unknown value type id {id} (expected 0..=12)")
            }
            E::NestingTooDeep { key, limit } => {
                write!(f, "metadata key '{key}': arrays nested deeper than {limit} levels")
            }
            E::DuplicateKey { key } => write!(f, "metadata key '{key}' appears more than once"),
            E::MissingKey { key } => write!(f, "required metadata key '{key}' is missing"),
            E::WrongMetaType { key, expected, found } => {
                write!(f, "metadata key '{key}': expected {expected}, found {found}")
            }
            E::WrongArrayType { key, expected, found } => {
                write!(f, "metadata key '{key}': expected an array of {expected}, found an array of {found}")
            }
            E::ValueOutOfRange { key, value, target } => {
                write!(f, "metadata key '{key}': value {value} does not fit in {target}")
            }
            E::BadAlignment { alignment } => {
                write!(f, "general.alignment is {alignment}; it must be a non-zero power of two")
            }
            E::UnknownTensorType { tensor, id } => {
                write!(f, "tensor '{tensor}': unknown or unsupported ggml type id {id}")
            }
            E::TooManyDims { tensor, n_dims, max } => {
                write!(f, "tensor '{tensor}': {n_dims} dimensions, at most {max} supported")
            }
            E::ZeroDimension { tensor, axis } => write!(f, "tensor '{tensor}': dimension {axis} is zero"),
            E::DimensionOverflow { tensor } => {
                write!(f, "tensor '{tensor}': element count or byte size overflows 64 bits")
            }
            E::PartialBlock { tensor, ty, ne0, block_elems } => write!(
                f,
                "tensor '{tensor}': row length {ne0} is not a multiple of the {ty} block size {block_elems}"
            ),
            E::DuplicateTensor { tensor } => write!(f, "tensor '{tensor}' appears more than once"),
            E::MisalignedTensor { tensor, offset, alignment } => write!(
                f,
                "tensor '{tensor}': data offset {offset} is not a multiple of the alignment {alignment}"
            ),
            E::TensorOutOfBounds { tensor, offset, n_bytes, data_len } => write!(
                f,
                "tensor '{tensor}': {n_bytes} bytes at data offset {offset} end beyond the {data_len}-byte \
                 data section (truncated or corrupt file)"
            ),
            E::WrongTensorType { tensor, expected, found } => {
                write!(f, "tensor '{tensor}': expected type {expected}, found {found}")
            }
            E::BadCast { what, reason, len, elem_size } => {
                write!(f, "cannot view {len} bytes as {what} ({elem_size}-byte elements): {reason}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FormatError {}
