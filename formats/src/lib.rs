//! GGUF files and ggml block layouts, zero-copy and validated.
//!
//! Everything here parses from a borrowed `&[u8]`; the caller owns the bytes (an mmap with the `std`
//! feature, see [`mmap`]). No value read from a file is trusted before it is checked.
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod blocks;
mod cursor;
pub mod dequant;
pub mod error;
pub mod ggml_type;
pub mod gguf;
pub mod layout;
pub mod metadata;
#[cfg(feature = "std")]
pub mod mmap;
pub mod tensor_info;
pub mod writer;

pub use error::FormatError;
pub use ggml_type::GgmlType;
pub use gguf::Gguf;
pub use metadata::{MetaArray, MetaType, MetaValue};
#[cfg(feature = "std")]
pub use mmap::{GgufFileError, MappedGguf};
pub use tensor_info::TensorInfo;
pub use writer::{GgufWriter, Value};
