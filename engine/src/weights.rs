//! Weight tensors as the forward pass sees them: zero-copy views into the mapped file, or f32
//! copies for the dequantized reference path.

use std::path::Path;

use fovea_formats::dequant::dequantize_row;
use fovea_formats::GgmlType;
use fovea_formats::{Gguf, TensorInfo};

use crate::error::{EngineError, Result};

/// Where a matrix's values live.
#[derive(Debug)]
pub enum WeightData {
    /// `len` bytes at `start` in the mapped file, in the tensor's own type.
    Mapped { start: usize, len: usize },
    /// Dequantized to f32 at load (reference mode), row-major (rows, cols).
    F32(Vec<f32>),
}

/// A 2-D weight W (rows, cols): y (rows,) = W x (cols,). GGUF's ne0 is `cols`.
#[derive(Debug)]
pub struct Matrix {
    pub name: String,
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub data: WeightData,
}

impl Matrix {
    /// Bytes of one row in the tensor's type.
    pub fn row_bytes(&self) -> usize {
        self.cols / self.ty.block_elems() * self.ty.block_bytes()
    }

    /// The raw bytes of a mapped matrix (empty for dequantized ones).
    pub fn mapped_bytes<'f>(&self, file: &'f [u8]) -> &'f [u8] {
        match self.data {
            WeightData::Mapped { start, len } => &file[start..start + len],
            WeightData::F32(_) => &[],
        }
    }

    /// Row `r` as f32 (the embedding lookup): out (cols,).
    pub fn row_f32(&self, file: &[u8], r: usize, out: &mut [f32]) {
        match &self.data {
            WeightData::F32(v) => out.copy_from_slice(&v[r * self.cols..(r + 1) * self.cols]),
            WeightData::Mapped { .. } => {
                let rb = self.row_bytes();
                let bytes = &self.mapped_bytes(file)[r * rb..(r + 1) * rb];
                // The shape was validated at load, so the sizes agree; dequantize cannot fail here.
                let _ = dequantize_row(self.ty, bytes, out);
            }
        }
    }
}

/// Looks tensors up by name, checks shapes and types, and builds [`Matrix`] handles.
pub struct TensorLoader<'g, 'a> {
    pub gguf: &'g Gguf<'a>,
    pub file: &'a [u8],
    pub path: &'g Path,
    /// Dequantize every matrix to f32 at load (the reference path).
    pub dequantize: bool,
}

impl<'g, 'a> TensorLoader<'g, 'a> {
    fn info(&self, name: &str) -> Result<&'g TensorInfo<'a>> {
        self.gguf.tensor(name).ok_or_else(|| EngineError::MissingTensor {
            path: self.path.to_path_buf(),
            name: name.to_string(),
        })
    }

    pub fn has(&self, name: &str) -> bool {
        self.gguf.tensor(name).is_some()
    }

    fn shape_error(&self, t: &TensorInfo<'_>, expected: &[usize]) -> EngineError {
        EngineError::TensorShape {
            path: self.path.to_path_buf(),
            name: t.name.to_string(),
            expected: expected.iter().map(|&d| d as u64).collect(),
            found: t.shape().to_vec(),
        }
    }

    /// A matrix with GGUF shape [cols, rows].
    pub fn matrix(&self, name: &str, cols: usize, rows: usize) -> Result<Matrix> {
        let t = self.info(name)?;
        if t.shape() != [cols as u64, rows as u64] {
            return Err(self.shape_error(t, &[cols, rows]));
        }
        if !matmul_supported(t.ty) || !cols.is_multiple_of(t.ty.block_elems()) {
            return Err(EngineError::UnsupportedTensorType {
                path: self.path.to_path_buf(),
                name: name.to_string(),
                ty: t.ty,
            });
        }
        let bytes = self.gguf.tensor_data(t);
        let data = if self.dequantize && t.ty != GgmlType::F32 {
            let mut v = vec![0.0f32; rows * cols];
            dequantize_row(t.ty, bytes, &mut v)
                .map_err(|source| EngineError::Format { path: self.path.to_path_buf(), source })?;
            WeightData::F32(v)
        } else {
            WeightData::Mapped { start: offset_in(self.file, bytes), len: bytes.len() }
        };
        Ok(Matrix { name: name.to_string(), ty: t.ty, rows, cols, data })
    }

    /// A vector (n,) of any float or quantized type, copied to f32 (norm weights are small).
    pub fn vector(&self, name: &str, n: usize) -> Result<Vec<f32>> {
        let t = self.info(name)?;
        if t.shape() != [n as u64] {
            return Err(self.shape_error(t, &[n]));
        }
        let mut v = vec![0.0f32; n];
        dequantize_row(t.ty, self.gguf.tensor_data(t), &mut v)
            .map_err(|source| EngineError::Format { path: self.path.to_path_buf(), source })?;
        Ok(v)
    }
}

/// Byte offset of `part` inside `whole` (`part` is a sub-slice handed out by the parser).
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize)
}

/// Weight types the matrix product has kernels for.
pub fn matmul_supported(ty: GgmlType) -> bool {
    fovea_kernels::quant::supports_vec_dot(ty)
}
