//! Building GGUF files in memory: valid ones for round-trip tests and fixtures, and, through the
//! `raw` hooks, deliberately broken ones for the hostile-file tests.
//!
//! The writer does not validate: it writes what it is given. Anything the parser rejects can be
//! produced here (bogus counts, type ids, offsets, alignments, dims), which is the point.

use alloc::string::String;
use alloc::vec::Vec;

use crate::ggml_type::GgmlType;
use crate::gguf::{ALIGNMENT_KEY, DEFAULT_ALIGNMENT, GGUF_MAGIC};
use crate::metadata::MetaType;

/// An owned metadata value to write. `Array` items are written as they are: an item whose type
/// differs from `elem` makes a malformed file.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    Array { elem: MetaType, items: Vec<Value> },
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(s.into())
    }

    pub fn strings<S: AsRef<str>>(items: &[S]) -> Value {
        Value::Array { elem: MetaType::String, items: items.iter().map(|s| Value::str(s.as_ref())).collect() }
    }

    pub fn f32s(items: &[f32]) -> Value {
        Value::Array { elem: MetaType::F32, items: items.iter().map(|&v| Value::F32(v)).collect() }
    }

    pub fn i32s(items: &[i32]) -> Value {
        Value::Array { elem: MetaType::I32, items: items.iter().map(|&v| Value::I32(v)).collect() }
    }

    pub fn u32s(items: &[u32]) -> Value {
        Value::Array { elem: MetaType::U32, items: items.iter().map(|&v| Value::U32(v)).collect() }
    }

    pub fn meta_type(&self) -> MetaType {
        match self {
            Value::U8(_) => MetaType::U8,
            Value::I8(_) => MetaType::I8,
            Value::U16(_) => MetaType::U16,
            Value::I16(_) => MetaType::I16,
            Value::U32(_) => MetaType::U32,
            Value::I32(_) => MetaType::I32,
            Value::F32(_) => MetaType::F32,
            Value::Bool(_) => MetaType::Bool,
            Value::Str(_) => MetaType::String,
            Value::Array { .. } => MetaType::Array,
            Value::U64(_) => MetaType::U64,
            Value::I64(_) => MetaType::I64,
            Value::F64(_) => MetaType::F64,
        }
    }

    /// The value's bytes without its type id (what follows the type id in a key/value entry, and
    /// what an array holds per element).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::U8(v) => out.push(*v),
            Value::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::Bool(v) => out.push(u8::from(*v)),
            Value::Str(s) => put_str(out, s),
            Value::Array { elem, items } => {
                out.extend_from_slice(&elem.id().to_le_bytes());
                out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for item in items {
                    item.encode(out);
                }
            }
            Value::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        }
    }
}

/// A GGUF string: u64 byte length, then the bytes.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

#[derive(Clone, Debug)]
struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    type_id: u32,
    /// Written instead of the real offset (hostile tests).
    offset_override: Option<u64>,
    data: Vec<u8>,
}

/// Where the sections of a written file start, for tests that cut or corrupt it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenLayout {
    /// Start of each metadata entry (its key length), in order.
    pub kv_starts: Vec<usize>,
    /// Start of each tensor info (its name length), in order.
    pub tensor_info_starts: Vec<usize>,
    /// End of the last tensor info (start of the padding).
    pub tensor_infos_end: usize,
    /// Absolute offset of the data section.
    pub data_start: usize,
    /// Offset of each tensor's bytes relative to the data section, as laid out.
    pub tensor_offsets: Vec<u64>,
    pub len: usize,
}

/// Builds a GGUF file (v3 by default) in memory.
#[derive(Clone, Debug)]
pub struct GgufWriter {
    version: u32,
    /// Used to lay out the data section; 0 is treated as 1 so broken values can still be written.
    alignment: u64,
    kv_bytes: Vec<u8>,
    /// Start of each entry within `kv_bytes`.
    kv_offsets: Vec<usize>,
    tensors: Vec<PendingTensor>,
    tensor_count_override: Option<u64>,
    kv_count_override: Option<u64>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    pub fn new() -> Self {
        GgufWriter {
            version: 3,
            alignment: DEFAULT_ALIGNMENT,
            kv_bytes: Vec::new(),
            kv_offsets: Vec::new(),
            tensors: Vec::new(),
            tensor_count_override: None,
            kv_count_override: None,
        }
    }

    /// The version number written in the header (the layout is always v2/v3).
    pub fn set_version(&mut self, version: u32) -> &mut Self {
        self.version = version;
        self
    }

    /// Adds a `general.alignment` entry (u32) and lays the data section out with it.
    pub fn set_alignment(&mut self, alignment: u32) -> &mut Self {
        self.alignment = u64::from(alignment);
        self.add(ALIGNMENT_KEY, Value::U32(alignment))
    }

    pub fn add(&mut self, key: &str, value: Value) -> &mut Self {
        self.kv_offsets.push(self.kv_bytes.len());
        put_str(&mut self.kv_bytes, key);
        self.kv_bytes.extend_from_slice(&value.meta_type().id().to_le_bytes());
        value.encode(&mut self.kv_bytes);
        self
    }

    /// A metadata entry with any type id and any payload bytes after it.
    pub fn add_raw_kv(&mut self, key: &str, type_id: u32, payload: &[u8]) -> &mut Self {
        self.kv_offsets.push(self.kv_bytes.len());
        put_str(&mut self.kv_bytes, key);
        self.kv_bytes.extend_from_slice(&type_id.to_le_bytes());
        self.kv_bytes.extend_from_slice(payload);
        self
    }

    /// A tensor with its raw bytes; `dims` is `ne0` first. The bytes are written as given.
    pub fn add_tensor(&mut self, name: &str, dims: &[u64], ty: GgmlType, data: &[u8]) -> &mut Self {
        self.add_tensor_raw(name, dims, ty.id(), None, data)
    }

    /// A tensor with any type id, any number of dims, and optionally a recorded offset that differs
    /// from where its bytes actually go.
    pub fn add_tensor_raw(
        &mut self,
        name: &str,
        dims: &[u64],
        type_id: u32,
        offset_override: Option<u64>,
        data: &[u8],
    ) -> &mut Self {
        self.tensors.push(PendingTensor {
            name: name.into(),
            dims: dims.into(),
            type_id,
            offset_override,
            data: data.into(),
        });
        self
    }

    /// Write these counts in the header instead of the real ones.
    pub fn override_counts(&mut self, tensor_count: Option<u64>, kv_count: Option<u64>) -> &mut Self {
        self.tensor_count_override = tensor_count;
        self.kv_count_override = kv_count;
        self
    }

    pub fn finish(&self) -> Vec<u8> {
        self.finish_with_layout().0
    }

    pub fn finish_with_layout(&self) -> (Vec<u8>, WrittenLayout) {
        let align = self.alignment.max(1);
        let round_up = |pos: u64| pos.div_ceil(align) * align;

        // Tensor bytes go one after another, each at an aligned offset; no padding after the last,
        // so every strict prefix of a file with tensors is missing bytes the parser needs.
        let mut tensor_offsets = Vec::with_capacity(self.tensors.len());
        let mut data_len = 0u64;
        for t in &self.tensors {
            let at = round_up(data_len);
            tensor_offsets.push(at);
            data_len = at + t.data.len() as u64;
        }

        let mut out = Vec::new();
        out.extend_from_slice(&GGUF_MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        let tensor_count = self.tensor_count_override.unwrap_or(self.tensors.len() as u64);
        let kv_count = self.kv_count_override.unwrap_or(self.kv_offsets.len() as u64);
        out.extend_from_slice(&tensor_count.to_le_bytes());
        out.extend_from_slice(&kv_count.to_le_bytes());

        let kv_base = out.len();
        let kv_starts = self.kv_offsets.iter().map(|o| kv_base + o).collect();
        out.extend_from_slice(&self.kv_bytes);

        let mut tensor_info_starts = Vec::with_capacity(self.tensors.len());
        for (t, &at) in self.tensors.iter().zip(&tensor_offsets) {
            tensor_info_starts.push(out.len());
            put_str(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.type_id.to_le_bytes());
            out.extend_from_slice(&t.offset_override.unwrap_or(at).to_le_bytes());
        }
        let tensor_infos_end = out.len();

        let data_start = round_up(out.len() as u64) as usize;
        out.resize(data_start, 0);
        for (t, &at) in self.tensors.iter().zip(&tensor_offsets) {
            out.resize(data_start + at as usize, 0);
            out.extend_from_slice(&t.data);
        }
        let len = out.len();
        let layout = WrittenLayout {
            kv_starts,
            tensor_info_starts,
            tensor_infos_end,
            data_start,
            tensor_offsets,
            len,
        };
        (out, layout)
    }
}
