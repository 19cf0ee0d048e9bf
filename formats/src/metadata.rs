//! GGUF metadata values: the 13 value types, borrowed strings, and arrays decoded lazily.
//!
//! Parsing walks every value once to validate it (lengths, UTF-8, nesting) and keeps arrays as a
//! byte span; elements are decoded again only when asked for. A 262144-entry vocab therefore costs
//! one linear pass at parse time and no allocation until the tokenizer collects it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::cursor::{Context, Cursor};
use crate::error::FormatError;
use crate::layout::count_fits;

/// Deepest nesting of arrays accepted (`[[[..]]]`). ggml itself reads none; the limit bounds the
/// recursion of the parser.
pub const MAX_ARRAY_DEPTH: usize = 8;

/// A metadata value type; the discriminants are the GGUF type ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetaType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl MetaType {
    pub const ALL: [MetaType; 13] = [
        MetaType::U8,
        MetaType::I8,
        MetaType::U16,
        MetaType::I16,
        MetaType::U32,
        MetaType::I32,
        MetaType::F32,
        MetaType::Bool,
        MetaType::String,
        MetaType::Array,
        MetaType::U64,
        MetaType::I64,
        MetaType::F64,
    ];

    pub fn from_id(id: u32) -> Option<MetaType> {
        MetaType::ALL.get(usize::try_from(id).ok()?).copied()
    }

    pub fn id(self) -> u32 {
        self as u32
    }

    pub fn name(self) -> &'static str {
        match self {
            MetaType::U8 => "u8",
            MetaType::I8 => "i8",
            MetaType::U16 => "u16",
            MetaType::I16 => "i16",
            MetaType::U32 => "u32",
            MetaType::I32 => "i32",
            MetaType::F32 => "f32",
            MetaType::Bool => "bool",
            MetaType::String => "string",
            MetaType::Array => "array",
            MetaType::U64 => "u64",
            MetaType::I64 => "i64",
            MetaType::F64 => "f64",
        }
    }

    /// Bytes of one value, or `None` for the variable-size string and array.
    pub fn fixed_size(self) -> Option<usize> {
        match self {
            MetaType::U8 | MetaType::I8 | MetaType::Bool => Some(1),
            MetaType::U16 | MetaType::I16 => Some(2),
            MetaType::U32 | MetaType::I32 | MetaType::F32 => Some(4),
            MetaType::U64 | MetaType::I64 | MetaType::F64 => Some(8),
            MetaType::String | MetaType::Array => None,
        }
    }

    /// The fewest bytes one value can take: a string is at least its u64 length, an array its u32
    /// element type and u64 count. Used to bound counts before allocating.
    pub fn min_size(self) -> u64 {
        match self {
            MetaType::String => 8,
            MetaType::Array => 12,
            fixed => fixed.fixed_size().unwrap_or(1) as u64,
        }
    }
}

impl core::fmt::Display for MetaType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// One metadata value, borrowing strings and array bytes from the file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MetaValue<'a> {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    /// Any non-zero byte reads as `true`, as in ggml.
    Bool(bool),
    Str(&'a str),
    Array(MetaArray<'a>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl<'a> MetaValue<'a> {
    pub fn meta_type(&self) -> MetaType {
        match self {
            MetaValue::U8(_) => MetaType::U8,
            MetaValue::I8(_) => MetaType::I8,
            MetaValue::U16(_) => MetaType::U16,
            MetaValue::I16(_) => MetaType::I16,
            MetaValue::U32(_) => MetaType::U32,
            MetaValue::I32(_) => MetaType::I32,
            MetaValue::F32(_) => MetaType::F32,
            MetaValue::Bool(_) => MetaType::Bool,
            MetaValue::Str(_) => MetaType::String,
            MetaValue::Array(_) => MetaType::Array,
            MetaValue::U64(_) => MetaType::U64,
            MetaValue::I64(_) => MetaType::I64,
            MetaValue::F64(_) => MetaType::F64,
        }
    }

    /// Any of the eight integer types, widened losslessly.
    pub fn as_integer(&self) -> Option<i128> {
        Some(match *self {
            MetaValue::U8(v) => v.into(),
            MetaValue::I8(v) => v.into(),
            MetaValue::U16(v) => v.into(),
            MetaValue::I16(v) => v.into(),
            MetaValue::U32(v) => v.into(),
            MetaValue::I32(v) => v.into(),
            MetaValue::U64(v) => v.into(),
            MetaValue::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// `f32` or `f64`, widened.
    pub fn as_float(&self) -> Option<f64> {
        match *self {
            MetaValue::F32(v) => Some(v.into()),
            MetaValue::F64(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            MetaValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetaValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&MetaArray<'a>> {
        match self {
            MetaValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// An array value: element type, length and the validated bytes of its elements, decoded on demand.
///
/// Only this crate builds one, always from bytes the parser already walked, so decoding cannot fail;
/// the iterators still stop rather than panic if it ever did.
#[derive(Clone, Copy)]
pub struct MetaArray<'a> {
    /// The metadata key this array (or its outermost parent) belongs to, for error messages.
    key: &'a str,
    elem: MetaType,
    len: usize,
    /// The encoded elements, without the array's own type and count.
    bytes: &'a [u8],
}

/// Summarized: a vocab's bytes would be megabytes of numbers.
impl core::fmt::Debug for MetaArray<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MetaArray")
            .field("key", &self.key)
            .field("elem", &self.elem)
            .field("len", &self.len)
            .field("n_bytes", &self.bytes.len())
            .finish()
    }
}

/// Arrays compare by content; the key they came from does not matter.
impl PartialEq for MetaArray<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.elem == other.elem && self.len == other.len && self.bytes == other.bytes
    }
}

impl<'a> MetaArray<'a> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn elem_type(&self) -> MetaType {
        self.elem
    }

    /// The encoded elements as stored in the file (little-endian; strings length-prefixed).
    pub fn raw_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Every element in order.
    pub fn iter(&self) -> MetaIter<'a> {
        MetaIter { cur: Cursor::new(self.bytes), elem: self.elem, key: self.key, left: self.len }
    }

    /// Element `i`. Constant time for numbers and bools; strings and nested arrays are variable-size,
    /// so this walks `i` elements: use [`MetaArray::iter`] or [`MetaArray::strings`] to read them all.
    pub fn get(&self, i: usize) -> Option<MetaValue<'a>> {
        if i >= self.len {
            return None;
        }
        match self.elem.fixed_size() {
            Some(size) => {
                let start = i.checked_mul(size)?;
                let slot = self.bytes.get(start..start.checked_add(size)?)?;
                read_value(&mut Cursor::new(slot), self.elem, self.key, 0).ok()
            }
            None => self.iter().nth(i),
        }
    }

    /// The elements of a string array, borrowed from the file.
    pub fn strings(&self) -> Result<MetaStrings<'a>, FormatError> {
        self.expect_elem(MetaType::String)?;
        Ok(MetaStrings { inner: self.iter() })
    }

    /// The elements of a string array, collected.
    pub fn to_str_vec(&self) -> Result<Vec<&'a str>, FormatError> {
        let mut out = Vec::with_capacity(self.len);
        out.extend(self.strings()?);
        Ok(out)
    }

    /// The elements of an `f32` array.
    pub fn to_f32_vec(&self) -> Result<Vec<f32>, FormatError> {
        self.expect_elem(MetaType::F32)?;
        Ok(self.bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    /// The elements of an array of any integer type, each checked to fit in `i32`.
    pub fn to_i32_vec(&self) -> Result<Vec<i32>, FormatError> {
        self.collect_ints("i32", |v| i32::try_from(v).ok())
    }

    /// The elements of an array of any integer type, each checked to fit in `u32`.
    pub fn to_u32_vec(&self) -> Result<Vec<u32>, FormatError> {
        self.collect_ints("u32", |v| u32::try_from(v).ok())
    }

    fn collect_ints<T>(
        &self,
        target: &'static str,
        narrow: impl Fn(i128) -> Option<T>,
    ) -> Result<Vec<T>, FormatError> {
        if !is_integer(self.elem) {
            return Err(self.wrong_elem(target));
        }
        let mut out = Vec::with_capacity(self.len);
        for value in self.iter() {
            let wide = value.as_integer().ok_or_else(|| self.wrong_elem(target))?;
            let v = narrow(wide).ok_or_else(|| FormatError::ValueOutOfRange {
                key: self.key.into(),
                value: wide,
                target,
            })?;
            out.push(v);
        }
        Ok(out)
    }

    fn expect_elem(&self, want: MetaType) -> Result<(), FormatError> {
        if self.elem == want {
            Ok(())
        } else {
            Err(self.wrong_elem(want.name()))
        }
    }

    fn wrong_elem(&self, want: &'static str) -> FormatError {
        FormatError::WrongArrayType { key: self.key.into(), expected: want, found: self.elem }
    }
}

fn is_integer(ty: MetaType) -> bool {
    matches!(
        ty,
        MetaType::U8
            | MetaType::I8
            | MetaType::U16
            | MetaType::I16
            | MetaType::U32
            | MetaType::I32
            | MetaType::U64
            | MetaType::I64
    )
}

/// Iterator over the elements of a [`MetaArray`].
#[derive(Clone)]
pub struct MetaIter<'a> {
    cur: Cursor<'a>,
    elem: MetaType,
    key: &'a str,
    left: usize,
}

impl<'a> Iterator for MetaIter<'a> {
    type Item = MetaValue<'a>;

    fn next(&mut self) -> Option<MetaValue<'a>> {
        if self.left == 0 {
            return None;
        }
        match read_value(&mut self.cur, self.elem, self.key, 0) {
            Ok(v) => {
                self.left -= 1;
                Some(v)
            }
            Err(_) => {
                self.left = 0;
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// Iterator over the strings of a string [`MetaArray`], borrowed from the file.
#[derive(Clone)]
pub struct MetaStrings<'a> {
    inner: MetaIter<'a>,
}

impl<'a> Iterator for MetaStrings<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.inner.next()?.as_str()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

// ---- parsing ----

/// A length-prefixed UTF-8 string. `what` describes it for errors and is only called on failure.
pub(crate) fn read_str<'a>(cur: &mut Cursor<'a>, what: impl Fn() -> String) -> Result<&'a str, FormatError> {
    let len = cur.u64().ctx(|| format!("{} length", what()))?;
    let bytes = cur.take(len).ctx(&what)?;
    core::str::from_utf8(bytes).map_err(|_| FormatError::InvalidUtf8 { what: what() })
}

/// One value of type `ty` belonging to `key`; `depth` counts the arrays around it.
pub(crate) fn read_value<'a>(
    cur: &mut Cursor<'a>,
    ty: MetaType,
    key: &'a str,
    depth: usize,
) -> Result<MetaValue<'a>, FormatError> {
    let what = || format!("metadata key '{key}' value");
    Ok(match ty {
        MetaType::U8 => MetaValue::U8(cur.u8().ctx(what)?),
        MetaType::I8 => MetaValue::I8(cur.u8().ctx(what)? as i8),
        MetaType::U16 => MetaValue::U16(cur.u16().ctx(what)?),
        MetaType::I16 => MetaValue::I16(cur.u16().ctx(what)? as i16),
        MetaType::U32 => MetaValue::U32(cur.u32().ctx(what)?),
        MetaType::I32 => MetaValue::I32(cur.u32().ctx(what)? as i32),
        MetaType::F32 => MetaValue::F32(f32::from_bits(cur.u32().ctx(what)?)),
        MetaType::Bool => MetaValue::Bool(cur.u8().ctx(what)? != 0),
        MetaType::String => MetaValue::Str(read_str(cur, what)?),
        MetaType::Array => MetaValue::Array(read_array(cur, key, depth + 1)?),
        MetaType::U64 => MetaValue::U64(cur.u64().ctx(what)?),
        MetaType::I64 => MetaValue::I64(cur.u64().ctx(what)? as i64),
        MetaType::F64 => MetaValue::F64(f64::from_bits(cur.u64().ctx(what)?)),
    })
}

/// An array header (element type, count) and its elements, validated and kept as a byte span.
fn read_array<'a>(cur: &mut Cursor<'a>, key: &'a str, depth: usize) -> Result<MetaArray<'a>, FormatError> {
    if depth > MAX_ARRAY_DEPTH {
        return Err(FormatError::NestingTooDeep { key: key.into(), limit: MAX_ARRAY_DEPTH });
    }
    let elem_id = cur.u32().ctx(|| format!("metadata key '{key}' array element type"))?;
    let elem = MetaType::from_id(elem_id)
        .ok_or_else(|| FormatError::UnknownValueType { key: key.into(), id: elem_id })?;
    let count = cur.u64().ctx(|| format!("metadata key '{key}' array length"))?;
    let too_many = || FormatError::CountTooLarge {
        what: format!("metadata key '{key}' array length ({elem} elements)"),
        count,
        min_each: elem.min_size(),
        available: cur.remaining() as u64,
    };
    if !count_fits(count, elem.min_size(), cur.remaining()) {
        return Err(too_many());
    }
    let len = usize::try_from(count).map_err(|_| too_many())?;
    let start = cur.pos();
    match elem.fixed_size() {
        // count_fits above already proved these bytes are present.
        Some(size) => {
            cur.take(count * size as u64).ctx(|| format!("metadata key '{key}' array elements"))?;
        }
        None => {
            for i in 0..len {
                match elem {
                    MetaType::String => {
                        read_str(cur, || format!("metadata key '{key}' element {i}"))?;
                    }
                    _ => {
                        read_array(cur, key, depth + 1)?;
                    }
                }
            }
        }
    }
    Ok(MetaArray { key, elem, len, bytes: cur.since(start) })
}

// ---- display (for `fovea inspect`) ----

/// Arrays up to this many elements print in full; longer ones as `[type; len]`.
const INLINE_ARRAY_MAX: usize = 8;

/// Compact, one line: strings quoted and escaped, long arrays summarized as `[string; 49152]`.
/// A precision (`{:.60}`) truncates strings to that many characters.
impl core::fmt::Display for MetaValue<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MetaValue::U8(v) => write!(f, "{v}"),
            MetaValue::I8(v) => write!(f, "{v}"),
            MetaValue::U16(v) => write!(f, "{v}"),
            MetaValue::I16(v) => write!(f, "{v}"),
            MetaValue::U32(v) => write!(f, "{v}"),
            MetaValue::I32(v) => write!(f, "{v}"),
            MetaValue::F32(v) => write!(f, "{v}"),
            MetaValue::Bool(v) => write!(f, "{v}"),
            MetaValue::Str(s) => match f.precision() {
                Some(max) if s.chars().count() > max => {
                    let cut = s.char_indices().nth(max).map_or(s.len(), |(i, _)| i);
                    write!(f, "{:?}…", &s[..cut])
                }
                _ => write!(f, "{s:?}"),
            },
            MetaValue::Array(a) => core::fmt::Display::fmt(a, f),
            MetaValue::U64(v) => write!(f, "{v}"),
            MetaValue::I64(v) => write!(f, "{v}"),
            MetaValue::F64(v) => write!(f, "{v}"),
        }
    }
}

impl core::fmt::Display for MetaArray<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.len > INLINE_ARRAY_MAX {
            return write!(f, "[{}; {}]", self.elem, self.len);
        }
        f.write_str("[")?;
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            core::fmt::Display::fmt(&v, f)?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array_bytes(elem: MetaType, count: u64, payload: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&elem.id().to_le_bytes());
        b.extend_from_slice(&count.to_le_bytes());
        b.extend_from_slice(payload);
        b
    }

    #[test]
    fn type_ids_round_trip() {
        for ty in MetaType::ALL {
            assert_eq!(MetaType::from_id(ty.id()), Some(ty));
        }
        assert_eq!(MetaType::from_id(13), None);
        assert_eq!(MetaType::from_id(u32::MAX), None);
    }

    #[test]
    fn arrays_decode_lazily_and_index() {
        let mut payload = Vec::new();
        for v in [1i32, -2, 3] {
            payload.extend_from_slice(&v.to_le_bytes());
        }
        let bytes = array_bytes(MetaType::I32, 3, &payload);
        let mut cur = Cursor::new(&bytes);
        let v = read_value(&mut cur, MetaType::Array, "k", 0).unwrap();
        let a = v.as_array().unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a.get(1), Some(MetaValue::I32(-2)));
        assert_eq!(a.get(3), None);
        assert_eq!(a.to_i32_vec().unwrap(), [1, -2, 3]);
        assert!(matches!(a.to_u32_vec(), Err(FormatError::ValueOutOfRange { value: -2, .. })));
        assert!(matches!(a.to_f32_vec(), Err(FormatError::WrongArrayType { found: MetaType::I32, .. })));
        assert!(matches!(a.strings(), Err(FormatError::WrongArrayType { .. })));
        assert_eq!(format!("{v}"), "[1, -2, 3]");
    }

    #[test]
    fn display_is_compact() {
        assert_eq!(format!("{}", MetaValue::Str("a\"b")), "\"a\\\"b\"");
        assert_eq!(format!("{:.3}", MetaValue::Str("abcdef")), "\"abc\"…");
        assert_eq!(format!("{:.3}", MetaValue::Str("abc")), "\"abc\"");
        let bytes = array_bytes(MetaType::U8, 9, &[0; 9]);
        let v = read_value(&mut Cursor::new(&bytes), MetaType::Array, "k", 0).unwrap();
        assert_eq!(format!("{v}"), "[u8; 9]");
    }
}
