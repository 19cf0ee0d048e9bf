//! GGUF tensor infos: name, shape, type and where the bytes are.

use alloc::format;

use crate::cursor::{Context, Cursor};
use crate::error::FormatError;
use crate::ggml_type::GgmlType;
use crate::layout::tensor_n_bytes;
use crate::metadata::read_str;

/// Most dimensions a ggml tensor can have (`GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;

/// Fewest bytes a tensor info takes: name length (8), n_dims (4), type (4), offset (8).
pub(crate) const MIN_TENSOR_INFO_BYTES: u64 = 24;

/// One tensor as described in the header, validated: known type, at most 4 non-zero dimensions,
/// rows of whole blocks, sizes without overflow, and (checked by [`crate::Gguf::parse`]) bytes
/// aligned and inside the data section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorInfo<'a> {
    pub name: &'a str,
    /// ggml order: `ne0` (contiguous, the row length) first; unused trailing dimensions are 1.
    pub dims: [u64; MAX_DIMS],
    pub n_dims: u32,
    pub ty: GgmlType,
    /// Start of the bytes, relative to the data section.
    pub offset: u64,
    pub n_bytes: u64,
}

impl TensorInfo<'_> {
    /// The dimensions the file declares, `ne0` first.
    pub fn shape(&self) -> &[u64] {
        let n = (self.n_dims as usize).min(MAX_DIMS);
        &self.dims[..n]
    }

    pub fn n_elements(&self) -> u64 {
        self.shape().iter().fold(1u64, |acc, &d| acc.saturating_mul(d))
    }

    /// Rows of `ne0` elements (the product of every dimension after the first).
    pub fn n_rows(&self) -> u64 {
        self.shape().iter().skip(1).fold(1u64, |acc, &d| acc.saturating_mul(d))
    }
}

/// Tensor info number `index` (for messages until the name is known).
pub(crate) fn read_tensor_info<'a>(cur: &mut Cursor<'a>, index: u64) -> Result<TensorInfo<'a>, FormatError> {
    let name = read_str(cur, || format!("tensor info #{index} name"))?;
    let n_dims = cur.u32().ctx(|| format!("tensor '{name}' dimension count"))?;
    if n_dims as usize > MAX_DIMS {
        return Err(FormatError::TooManyDims { tensor: name.into(), n_dims, max: MAX_DIMS as u32 });
    }
    let mut dims = [1u64; MAX_DIMS];
    for (axis, d) in dims.iter_mut().take(n_dims as usize).enumerate() {
        *d = cur.u64().ctx(|| format!("tensor '{name}' dimension {axis}"))?;
    }
    let type_id = cur.u32().ctx(|| format!("tensor '{name}' type"))?;
    let ty = GgmlType::from_id(type_id)
        .map_err(|_| FormatError::UnknownTensorType { tensor: name.into(), id: type_id })?;
    let offset = cur.u64().ctx(|| format!("tensor '{name}' data offset"))?;
    let n_bytes = tensor_n_bytes(name, ty, &dims[..n_dims as usize])?;
    Ok(TensorInfo { name, dims, n_dims, ty, offset, n_bytes })
}
