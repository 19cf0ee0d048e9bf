//! The one error type of this crate. Hand-written (no_std): every variant says what was expected.

use alloc::string::String;

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
}

impl core::fmt::Display for FormatError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FormatError::UnknownType { id } => {
                write!(f, "unknown or unsupported ggml tensor type id {id}")
            }
            FormatError::SizeMismatch { what, expected, found } => {
                write!(f, "{what}: expected {expected} bytes, found {found}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FormatError {}
