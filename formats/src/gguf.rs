//! The GGUF container: header, metadata, tensor infos and data section, parsed from borrowed bytes.
//!
//! Layout (v2 and v3, little-endian):
//! ```text
//! "GGUF" | version u32 | tensor_count u64 | kv_count u64
//! kv_count x  (key string, value type u32, value)
//! tensor_count x (name string, n_dims u32, dims u64 x n_dims, type u32, offset u64)
//! padding to general.alignment (default 32)
//! data section: tensor bytes at their offsets (each a multiple of the alignment)
//! ```
//! A string is a u64 byte length and UTF-8 bytes; an array a u32 element type, a u64 count and the
//! elements. Everything is validated in [`Gguf::parse`], so the accessors cannot fail on bounds.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec::Vec;

use crate::blocks::GgmlBlock;
use crate::cursor::{Context, Cursor};
use crate::error::FormatError;
use crate::ggml_type::GgmlType;
use crate::layout::{align_up, cast_slice, count_fits, tensor_extent};
use crate::metadata::{read_str, read_value, MetaArray, MetaType, MetaValue};
use crate::tensor_info::{read_tensor_info, TensorInfo, MIN_TENSOR_INFO_BYTES};

pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// Versions this reader accepts. v1 used 32-bit counts and lengths; v3 added big-endian files,
/// which announce themselves with a byte-swapped version and are refused.
pub const SUPPORTED_VERSIONS: [u32; 2] = [2, 3];
pub const ALIGNMENT_KEY: &str = "general.alignment";
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Fewest bytes a metadata entry takes: key length (8), value type (4), a one-byte value.
const MIN_KV_BYTES: u64 = 13;

/// A parsed GGUF file borrowing everything from the caller's bytes (usually an mmap).
#[derive(Debug, Clone)]
pub struct Gguf<'a> {
    version: u32,
    alignment: u64,
    /// In file order.
    metadata: Vec<(&'a str, MetaValue<'a>)>,
    /// Key -> index into `metadata`.
    key_index: BTreeMap<&'a str, usize>,
    /// In file order.
    tensors: Vec<TensorInfo<'a>>,
    /// Name -> index into `tensors`.
    tensor_index: BTreeMap<&'a str, usize>,
    /// Absolute file offset of the data section.
    data_offset: u64,
    data: &'a [u8],
}

/// The fixed-size start of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    version: u32,
    tensor_count: u64,
    kv_count: u64,
}

impl<'a> Gguf<'a> {
    /// Parse and validate a whole GGUF file. Never panics; every failure is a [`FormatError`] that
    /// names the key or tensor concerned.
    pub fn parse(bytes: &'a [u8]) -> Result<Gguf<'a>, FormatError> {
        if bytes.is_empty() {
            return Err(FormatError::Empty);
        }
        let mut cur = Cursor::new(bytes);
        let header = read_header(&mut cur)?;
        let (metadata, key_index) = read_metadata(&mut cur, header.kv_count)?;
        let alignment = alignment_of(&metadata, &key_index)?;
        let (tensors, tensor_index) = read_tensor_infos(&mut cur, header.tensor_count)?;

        // The data section starts at the first aligned offset after the tensor infos. A file without
        // tensors may end before that padding; one with tensors may not.
        let infos_end = cur.pos() as u64;
        let padding_short = |data_offset: u64| FormatError::Truncated {
            what: format!("padding to the {alignment}-byte aligned tensor data section"),
            offset: infos_end,
            needed: data_offset.saturating_sub(infos_end),
            available: cur.remaining() as u64,
        };
        let data_offset = align_up(infos_end, alignment).ok_or_else(|| padding_short(u64::MAX))?;
        let data = match usize::try_from(data_offset).ok().and_then(|start| bytes.get(start..)) {
            Some(data) => data,
            None if tensors.is_empty() => &[],
            None => return Err(padding_short(data_offset)),
        };
        for t in &tensors {
            tensor_extent(t.name, t.offset, t.n_bytes, alignment, data.len())?;
        }

        Ok(Gguf {
            version: header.version,
            alignment,
            metadata,
            key_index,
            tensors,
            tensor_index,
            data_offset,
            data,
        })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// `general.alignment`, or 32 when absent.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Every metadata entry, in file order.
    pub fn metadata(&self) -> &[(&'a str, MetaValue<'a>)] {
        &self.metadata
    }

    pub fn get(&self, key: &str) -> Option<&MetaValue<'a>> {
        let &i = self.key_index.get(key)?;
        self.metadata.get(i).map(|(_, v)| v)
    }

    fn require(&self, key: &str) -> Result<&MetaValue<'a>, FormatError> {
        self.get(key).ok_or_else(|| FormatError::MissingKey { key: key.into() })
    }

    fn wrong_type(key: &str, expected: &'static str, found: &MetaValue<'_>) -> FormatError {
        FormatError::WrongMetaType { key: key.into(), expected, found: found.meta_type() }
    }

    /// An integer of any width or signedness whose value fits in u32.
    pub fn get_u32(&self, key: &str) -> Result<u32, FormatError> {
        let v = self.require(key)?;
        let wide = v.as_integer().ok_or_else(|| Self::wrong_type(key, "an integer", v))?;
        u32::try_from(wide).map_err(|_| FormatError::ValueOutOfRange {
            key: key.into(),
            value: wide,
            target: "u32",
        })
    }

    /// An integer of any width or signedness whose value fits in u64.
    pub fn get_u64(&self, key: &str) -> Result<u64, FormatError> {
        let v = self.require(key)?;
        let wide = v.as_integer().ok_or_else(|| Self::wrong_type(key, "an integer", v))?;
        u64::try_from(wide).map_err(|_| FormatError::ValueOutOfRange {
            key: key.into(),
            value: wide,
            target: "u64",
        })
    }

    /// An `f32`, or an `f64` rounded to `f32`.
    pub fn get_f32(&self, key: &str) -> Result<f32, FormatError> {
        let v = self.require(key)?;
        match *v {
            MetaValue::F32(x) => Ok(x),
            MetaValue::F64(x) => Ok(x as f32),
            _ => Err(Self::wrong_type(key, "f32 or f64", v)),
        }
    }

    pub fn get_str(&self, key: &str) -> Result<&'a str, FormatError> {
        let v = self.require(key)?;
        v.as_str().ok_or_else(|| Self::wrong_type(key, "string", v))
    }

    pub fn get_bool(&self, key: &str) -> Result<bool, FormatError> {
        let v = self.require(key)?;
        v.as_bool().ok_or_else(|| Self::wrong_type(key, "bool", v))
    }

    pub fn get_array(&self, key: &str) -> Result<&MetaArray<'a>, FormatError> {
        let v = self.require(key)?;
        v.as_array().ok_or_else(|| Self::wrong_type(key, "array", v))
    }

    /// Every tensor, in file order.
    pub fn tensors(&self) -> &[TensorInfo<'a>] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo<'a>> {
        let &i = self.tensor_index.get(name)?;
        self.tensors.get(i)
    }

    /// Absolute file offset of the data section (aligned).
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// The whole data section.
    pub fn data_section(&self) -> &'a [u8] {
        self.data
    }

    /// The bytes of a tensor of this file (bounds checked in `parse`). A `TensorInfo` made up by the
    /// caller whose bytes fall outside the data section gets an empty slice.
    pub fn tensor_data(&self, t: &TensorInfo<'a>) -> &'a [u8] {
        let range = usize::try_from(t.offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(usize::try_from(t.n_bytes).ok()?)?));
        range.and_then(|r| self.data.get(r)).unwrap_or(&[])
    }

    /// A quantized tensor's bytes viewed as its blocks, without copying. `B` must be the block type
    /// of `t.ty`. Fails on misaligned bytes, which a mapped file never has (page-aligned base,
    /// aligned offsets); use [`crate::blocks::cast_blocks`] for bytes of unknown alignment.
    pub fn tensor_blocks<B: GgmlBlock>(&self, t: &TensorInfo<'a>) -> Result<&'a [B], FormatError> {
        if B::TYPE != t.ty {
            return Err(FormatError::WrongTensorType {
                tensor: t.name.into(),
                expected: B::TYPE,
                found: t.ty,
            });
        }
        cast_slice(B::TYPE.name(), self.tensor_data(t))
    }

    /// An `F32` tensor's values, without copying (little-endian hosts, like every GGUF reader).
    pub fn tensor_f32(&self, t: &TensorInfo<'a>) -> Result<&'a [f32], FormatError> {
        if t.ty != GgmlType::F32 {
            return Err(FormatError::WrongTensorType {
                tensor: t.name.into(),
                expected: GgmlType::F32,
                found: t.ty,
            });
        }
        cast_slice("F32", self.tensor_data(t))
    }
}

fn read_header(cur: &mut Cursor<'_>) -> Result<Header, FormatError> {
    let magic = cur.magic().ctx(|| "GGUF magic".into())?;
    if magic != GGUF_MAGIC {
        return Err(FormatError::BadMagic { found: magic });
    }
    let version = cur.u32().ctx(|| "GGUF version".into())?;
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(FormatError::UnsupportedVersion { version });
    }
    let tensor_count = cur.u64().ctx(|| "tensor count".into())?;
    let kv_count = cur.u64().ctx(|| "metadata entry count".into())?;
    // Early, coarse bounds; each section is checked again against what is left when it starts.
    check_count("metadata entry count", kv_count, MIN_KV_BYTES, cur)?;
    check_count("tensor count", tensor_count, MIN_TENSOR_INFO_BYTES, cur)?;
    Ok(Header { version, tensor_count, kv_count })
}

/// `count` items of at least `min_each` bytes must fit in what is left of `cur`.
fn check_count(what: &str, count: u64, min_each: u64, cur: &Cursor<'_>) -> Result<usize, FormatError> {
    let available = cur.remaining();
    let too_many =
        || FormatError::CountTooLarge { what: what.into(), count, min_each, available: available as u64 };
    if !count_fits(count, min_each, available) {
        return Err(too_many());
    }
    usize::try_from(count).map_err(|_| too_many())
}

type Metadata<'a> = (Vec<(&'a str, MetaValue<'a>)>, BTreeMap<&'a str, usize>);

fn read_metadata<'a>(cur: &mut Cursor<'a>, kv_count: u64) -> Result<Metadata<'a>, FormatError> {
    let n = check_count("metadata entry count", kv_count, MIN_KV_BYTES, cur)?;
    let mut entries = Vec::with_capacity(n);
    let mut index = BTreeMap::new();
    for i in 0..n {
        let key = read_str(cur, || format!("metadata entry #{i} key"))?;
        let type_id = cur.u32().ctx(|| format!("metadata key '{key}' value type"))?;
        let ty = MetaType::from_id(type_id)
            .ok_or_else(|| FormatError::UnknownValueType { key: key.into(), id: type_id })?;
        let value = read_value(cur, ty, key, 0)?;
        if index.insert(key, entries.len()).is_some() {
            return Err(FormatError::DuplicateKey { key: key.into() });
        }
        entries.push((key, value));
    }
    Ok((entries, index))
}

/// `general.alignment` if present (any integer type), else 32; a non-zero power of two.
fn alignment_of(
    metadata: &[(&str, MetaValue<'_>)],
    index: &BTreeMap<&str, usize>,
) -> Result<u64, FormatError> {
    let Some((_, value)) = index.get(ALIGNMENT_KEY).and_then(|&i| metadata.get(i)) else {
        return Ok(DEFAULT_ALIGNMENT);
    };
    let wide = value.as_integer().ok_or_else(|| FormatError::WrongMetaType {
        key: ALIGNMENT_KEY.into(),
        expected: "an integer",
        found: value.meta_type(),
    })?;
    let alignment = u64::try_from(wide).map_err(|_| FormatError::ValueOutOfRange {
        key: ALIGNMENT_KEY.into(),
        value: wide,
        target: "u64",
    })?;
    if !alignment.is_power_of_two() {
        return Err(FormatError::BadAlignment { alignment });
    }
    Ok(alignment)
}

type TensorInfos<'a> = (Vec<TensorInfo<'a>>, BTreeMap<&'a str, usize>);

fn read_tensor_infos<'a>(cur: &mut Cursor<'a>, tensor_count: u64) -> Result<TensorInfos<'a>, FormatError> {
    let n = check_count("tensor count", tensor_count, MIN_TENSOR_INFO_BYTES, cur)?;
    let mut tensors = Vec::with_capacity(n);
    let mut index = BTreeMap::new();
    for i in 0..n {
        let info = read_tensor_info(cur, i as u64)?;
        if index.insert(info.name, tensors.len()).is_some() {
            return Err(FormatError::DuplicateTensor { tensor: info.name.into() });
        }
        tensors.push(info);
    }
    Ok((tensors, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_only_file_without_tensors_parses() {
        let mut b = Vec::new();
        b.extend_from_slice(b"GGUF");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&0u64.to_le_bytes());
        let g = Gguf::parse(&b).unwrap();
        assert_eq!((g.version(), g.alignment(), g.tensors().len()), (3, 32, 0));
        assert_eq!(g.data_section(), &[] as &[u8]);
        assert!(matches!(g.get_u32("x"), Err(FormatError::MissingKey { .. })));
    }
}
