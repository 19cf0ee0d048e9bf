//! Hostile GGUF files: every malformation the parser must refuse with its specific error, and
//! sweeps (every truncation, every byte flipped) that must never panic.

mod common;

use common::{f32_bytes, one_tensor, q8_0_bytes, sample_writer};
use fovea_formats::metadata::MAX_ARRAY_DEPTH;
use fovea_formats::{FormatError, GgmlType, Gguf, GgufWriter, MetaType, Value};

fn parse_err(bytes: &[u8]) -> FormatError {
    match Gguf::parse(bytes) {
        Ok(_) => panic!("hostile file parsed without error"),
        Err(e) => e,
    }
}

fn put_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).position(|w| w == needle).expect("needle in file")
}

// ---- truncation ----

#[test]
fn every_truncation_is_an_error() {
    let (bytes, layout) = sample_writer().finish_with_layout();
    assert!(Gguf::parse(&bytes).is_ok());
    for n in 0..bytes.len() {
        let err = parse_err(&bytes[..n]);
        assert!(
            matches!(
                err,
                FormatError::Empty
                    | FormatError::Truncated { .. }
                    | FormatError::CountTooLarge { .. }
                    | FormatError::TensorOutOfBounds { .. }
            ),
            "prefix of {n} bytes (layout {layout:?}): unexpected {err:?}"
        );
    }
}

#[test]
fn truncation_at_section_boundaries_names_the_section() {
    let (bytes, layout) = sample_writer().finish_with_layout();
    assert_eq!(parse_err(&[]), FormatError::Empty);
    assert!(
        matches!(parse_err(&bytes[..3]), FormatError::Truncated { ref what, needed: 4, available: 3, .. } if what == "GGUF magic")
    );
    assert!(
        matches!(parse_err(&bytes[..6]), FormatError::Truncated { ref what, .. } if what == "GGUF version")
    );
    assert!(
        matches!(parse_err(&bytes[..12]), FormatError::Truncated { ref what, .. } if what == "tensor count")
    );
    assert!(
        matches!(parse_err(&bytes[..20]), FormatError::Truncated { ref what, .. } if what == "metadata entry count")
    );
    // Right after the header: five entries cannot fit in zero bytes.
    assert!(matches!(
        parse_err(&bytes[..24]),
        FormatError::CountTooLarge { ref what, count: 5, min_each: 13, available: 0 } if what == "metadata entry count"
    ));

    // In the middle of the third vocab string "<s>".
    let at = find(&bytes, b"<s>");
    assert_eq!(
        parse_err(&bytes[..at + 1]),
        FormatError::Truncated {
            what: "metadata key 'tokenizer.ggml.tokens' element 2".into(),
            offset: at as u64,
            needed: 3,
            available: 1
        }
    );
    // Inside the second tensor info.
    let second = layout.tensor_info_starts[1];
    assert!(matches!(
        parse_err(&bytes[..second + 4]),
        FormatError::Truncated { ref what, offset, .. } if what == "tensor info #1 name length" && offset == second as u64
    ));
    assert!(matches!(
        parse_err(&bytes[..second + 8 + 18 + 2]),
        FormatError::Truncated { ref what, .. } if what == "tensor 'output_norm.weight' dimension count"
    ));
    // In the padding before the data section.
    assert!(layout.data_start > layout.tensor_infos_end, "sample must have padding");
    assert!(matches!(
        parse_err(&bytes[..layout.tensor_infos_end + 1]),
        FormatError::Truncated { ref what, .. } if what.contains("padding")
    ));
    // One byte short of the last tensor.
    assert!(matches!(
        parse_err(&bytes[..bytes.len() - 1]),
        FormatError::TensorOutOfBounds { ref tensor, n_bytes: 16, .. } if tensor == "output_norm.weight"
    ));
}

// ---- header ----

#[test]
fn bad_magic_is_refused() {
    let mut bytes = sample_writer().finish();
    bytes[..4].copy_from_slice(b"GGML");
    assert_eq!(parse_err(&bytes), FormatError::BadMagic { found: *b"GGML" });
    assert_eq!(parse_err(b"\0\0\0\0\0\0\0\0"), FormatError::BadMagic { found: [0; 4] });
    assert!(parse_err(b"<html>").to_string().contains("not a GGUF file"));
}

#[test]
fn unsupported_versions_are_refused() {
    for version in [0u32, 1, 4, u32::MAX] {
        let bytes = sample_writer().set_version(version).finish();
        assert_eq!(parse_err(&bytes), FormatError::UnsupportedVersion { version });
    }
    assert!(FormatError::UnsupportedVersion { version: 1 }
        .to_string()
        .contains("version 1 is not supported"));
    // A big-endian v3 file reads as 0x03000000 here.
    let err = parse_err(&sample_writer().set_version(3u32.swap_bytes()).finish());
    assert!(err.to_string().contains("big-endian"), "{err}");
    // Both supported versions parse.
    for version in [2u32, 3] {
        assert_eq!(Gguf::parse(&sample_writer().set_version(version).finish()).unwrap().version(), version);
    }
}

#[test]
fn huge_header_counts_are_refused_before_allocating() {
    for count in [u64::MAX, 1 << 62, 1 << 40] {
        let bytes = sample_writer().override_counts(Some(count), None).finish();
        assert!(
            matches!(parse_err(&bytes), FormatError::CountTooLarge { ref what, count: c, .. } if what == "tensor count" && c == count),
            "tensor_count {count}"
        );
        let bytes = sample_writer().override_counts(None, Some(count)).finish();
        assert!(
            matches!(parse_err(&bytes), FormatError::CountTooLarge { ref what, count: c, .. } if what == "metadata entry count" && c == count),
            "kv_count {count}"
        );
    }
}

#[test]
fn counts_larger_than_the_entries_present_are_truncations() {
    // Claims one more tensor than written: the count fits the bytes (the data section is there),
    // the third info is read from padding and tensor data and its name length runs off the end.
    let bytes = sample_writer().override_counts(Some(3), None).finish();
    assert!(
        matches!(parse_err(&bytes), FormatError::Truncated { ref what, .. } if what == "tensor info #2 name")
    );
    // Claims one more entry: the first tensor info is read as metadata, everything after shifts.
    let bytes = sample_writer().override_counts(None, Some(6)).finish();
    assert!(matches!(parse_err(&bytes), FormatError::Truncated { .. }));
}

// ---- metadata ----

#[test]
fn huge_string_lengths_are_truncations() {
    for len in [u64::MAX, 1 << 62, 1 << 32] {
        let mut payload = len.to_le_bytes().to_vec();
        payload.extend_from_slice(b"abc");
        let bytes = GgufWriter::new().add_raw_kv("general.name", MetaType::String.id(), &payload).finish();
        assert!(matches!(
            parse_err(&bytes),
            FormatError::Truncated { ref what, needed, .. } if what == "metadata key 'general.name' value" && needed == len
        ));
    }
    // A huge key length.
    let (mut bytes, layout) = sample_writer().finish_with_layout();
    put_u64(&mut bytes, layout.kv_starts[1], u64::MAX);
    assert!(matches!(
        parse_err(&bytes),
        FormatError::Truncated { ref what, needed: u64::MAX, .. } if what == "metadata entry #1 key"
    ));
    // A huge tensor name length.
    let (mut bytes, layout) = sample_writer().finish_with_layout();
    put_u64(&mut bytes, layout.tensor_info_starts[0], 1 << 62);
    assert!(matches!(
        parse_err(&bytes),
        FormatError::Truncated { ref what, needed, .. } if what == "tensor info #0 name" && needed == 1 << 62
    ));
}

#[test]
fn huge_array_lengths_are_refused_before_allocating() {
    for elem in [MetaType::U8, MetaType::F64, MetaType::String, MetaType::Array] {
        for count in [u64::MAX, 1 << 62, 1000] {
            let mut payload = elem.id().to_le_bytes().to_vec();
            payload.extend_from_slice(&count.to_le_bytes());
            payload.extend_from_slice(&[0; 16]);
            let bytes = GgufWriter::new()
                .add_raw_kv("tokenizer.ggml.tokens", MetaType::Array.id(), &payload)
                .finish();
            assert!(
                matches!(
                    parse_err(&bytes),
                    FormatError::CountTooLarge { ref what, count: c, min_each, .. }
                        if what.contains("'tokenizer.ggml.tokens' array length") && c == count && min_each == elem.min_size()
                ),
                "{elem} x {count}"
            );
        }
    }
}

#[test]
fn unknown_value_types_name_the_key() {
    for id in [13u32, 99, u32::MAX] {
        let bytes = GgufWriter::new().add_raw_kv("general.weird", id, &[0; 8]).finish();
        assert_eq!(parse_err(&bytes), FormatError::UnknownValueType { key: "general.weird".into(), id });
    }
    // An array whose element type is unknown.
    let mut payload = 42u32.to_le_bytes().to_vec();
    payload.extend_from_slice(&1u64.to_le_bytes());
    let bytes = GgufWriter::new().add_raw_kv("a.b", MetaType::Array.id(), &payload).finish();
    assert_eq!(parse_err(&bytes), FormatError::UnknownValueType { key: "a.b".into(), id: 42 });
}

fn nested(depth: usize) -> Value {
    let mut v = Value::U8(7);
    for _ in 0..depth {
        let elem = v.meta_type();
        v = Value::Array { elem, items: vec![v] };
    }
    v
}

#[test]
fn nesting_is_limited() {
    let ok = GgufWriter::new().add("deep", nested(MAX_ARRAY_DEPTH)).finish();
    let g = Gguf::parse(&ok).unwrap();
    let mut v = *g.get("deep").unwrap();
    for _ in 0..MAX_ARRAY_DEPTH {
        v = v.as_array().unwrap().get(0).unwrap();
    }
    assert_eq!(v, fovea_formats::MetaValue::U8(7));

    let bytes = GgufWriter::new().add("deep", nested(MAX_ARRAY_DEPTH + 1)).finish();
    assert_eq!(parse_err(&bytes), FormatError::NestingTooDeep { key: "deep".into(), limit: MAX_ARRAY_DEPTH });

    // 100000 levels of [array; 1] headers in 1.2 MB: refused at the limit, no stack overflow.
    let mut payload = Vec::new();
    for _ in 0..100_000 {
        payload.extend_from_slice(&MetaType::Array.id().to_le_bytes());
        payload.extend_from_slice(&1u64.to_le_bytes());
    }
    let bytes = GgufWriter::new().add_raw_kv("deep", MetaType::Array.id(), &payload).finish();
    assert_eq!(parse_err(&bytes), FormatError::NestingTooDeep { key: "deep".into(), limit: MAX_ARRAY_DEPTH });
}

#[test]
fn invalid_utf8_names_what_it_was() {
    let mut bad = 3u64.to_le_bytes().to_vec();
    bad.extend_from_slice(&[0x61, 0xff, 0x62]);
    let bytes = GgufWriter::new().add_raw_kv("general.name", MetaType::String.id(), &bad).finish();
    assert_eq!(
        parse_err(&bytes),
        FormatError::InvalidUtf8 { what: "metadata key 'general.name' value".into() }
    );

    // The second vocab entry.
    let mut payload = MetaType::String.id().to_le_bytes().to_vec();
    payload.extend_from_slice(&2u64.to_le_bytes());
    payload.extend_from_slice(&1u64.to_le_bytes());
    payload.push(b'a');
    payload.extend_from_slice(&bad);
    let bytes =
        GgufWriter::new().add_raw_kv("tokenizer.ggml.tokens", MetaType::Array.id(), &payload).finish();
    assert_eq!(
        parse_err(&bytes),
        FormatError::InvalidUtf8 { what: "metadata key 'tokenizer.ggml.tokens' element 1".into() }
    );

    // A key and a tensor name.
    let (mut bytes, layout) = sample_writer().finish_with_layout();
    bytes[layout.kv_starts[0] + 8] = 0xc3; // "general..." -> lone lead byte
    assert_eq!(parse_err(&bytes), FormatError::InvalidUtf8 { what: "metadata entry #0 key".into() });
    let (mut bytes, layout) = sample_writer().finish_with_layout();
    bytes[layout.tensor_info_starts[1] + 8] = 0x80;
    assert_eq!(parse_err(&bytes), FormatError::InvalidUtf8 { what: "tensor info #1 name".into() });
}

#[test]
fn duplicate_keys_are_refused() {
    let bytes =
        GgufWriter::new().add("a", Value::U8(1)).add("b", Value::U8(2)).add("a", Value::U8(3)).finish();
    assert_eq!(parse_err(&bytes), FormatError::DuplicateKey { key: "a".into() });
}

#[test]
fn bad_alignments_are_refused() {
    for alignment in [0u32, 3, 48, u32::MAX] {
        let mut w = GgufWriter::new();
        w.add("general.alignment", Value::U32(alignment));
        assert_eq!(parse_err(&w.finish()), FormatError::BadAlignment { alignment: alignment.into() });
    }
    let bytes = GgufWriter::new().add("general.alignment", Value::str("32")).finish();
    assert!(matches!(parse_err(&bytes), FormatError::WrongMetaType { found: MetaType::String, .. }));
    let bytes = GgufWriter::new().add("general.alignment", Value::I32(-32)).finish();
    assert!(matches!(parse_err(&bytes), FormatError::ValueOutOfRange { value: -32, .. }));
}

#[test]
fn other_alignments_are_honoured() {
    for alignment in [1u32, 8, 64, 4096] {
        let mut w = sample_writer();
        w.set_alignment(alignment);
        let (bytes, layout) = w.finish_with_layout();
        let g = Gguf::parse(&bytes).unwrap();
        assert_eq!(g.alignment(), u64::from(alignment));
        assert_eq!(g.data_offset(), layout.data_start as u64);
        assert_eq!(g.data_offset() % u64::from(alignment), 0);
        let norm = g.tensor("output_norm.weight").unwrap();
        assert_eq!(g.tensor_data(norm), f32_bytes(&[1.0, 2.0, -3.0, 0.5]));
    }
    // 32-aligned offsets in a 64-aligned file.
    let mut w = GgufWriter::new();
    w.set_alignment(64);
    w.add_tensor_raw("t", &[8], GgmlType::F32.id(), Some(32), &[0; 64]);
    assert_eq!(
        parse_err(&w.finish()),
        FormatError::MisalignedTensor { tensor: "t".into(), offset: 32, alignment: 64 }
    );
}

// ---- tensor infos ----

#[test]
fn unknown_tensor_types_name_the_tensor() {
    for id in [4u32, 5, 16, 39, u32::MAX] {
        let bytes = one_tensor("blk.0.ffn_up.weight", &[32], id, None, &[0; 64]);
        assert_eq!(
            parse_err(&bytes),
            FormatError::UnknownTensorType { tensor: "blk.0.ffn_up.weight".into(), id }
        );
    }
}

#[test]
fn dimension_problems_name_the_tensor() {
    let f32_id = GgmlType::F32.id();
    let bytes = one_tensor("t", &[1, 2, 3, 4, 5], f32_id, None, &[0; 480]);
    assert_eq!(parse_err(&bytes), FormatError::TooManyDims { tensor: "t".into(), n_dims: 5, max: 4 });

    for dims in [&[1u64 << 32, 1 << 32, 1 << 32][..], &[u64::MAX, 2], &[1 << 62], &[1 << 63, 1 << 63]] {
        let bytes = one_tensor("t", dims, f32_id, None, &[0; 4]);
        assert_eq!(parse_err(&bytes), FormatError::DimensionOverflow { tensor: "t".into() }, "{dims:?}");
    }
    let bytes = one_tensor("t", &[4, 0], f32_id, None, &[0; 4]);
    assert_eq!(parse_err(&bytes), FormatError::ZeroDimension { tensor: "t".into(), axis: 1 });

    let bytes = one_tensor("t", &[16, 2], GgmlType::Q8_0.id(), None, &q8_0_bytes(1));
    assert_eq!(
        parse_err(&bytes),
        FormatError::PartialBlock { tensor: "t".into(), ty: GgmlType::Q8_0, ne0: 16, block_elems: 32 }
    );

    // n_dims = u32::MAX: refused before reading any dimension.
    let (mut bytes, layout) = sample_writer().finish_with_layout();
    let n_dims_at = layout.tensor_info_starts[0] + 8 + "token_embd.weight".len();
    bytes[n_dims_at..n_dims_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(parse_err(&bytes), FormatError::TooManyDims { n_dims: u32::MAX, .. }));
}

#[test]
fn tensor_extents_are_checked() {
    let f32_id = GgmlType::F32.id();
    for offset in [1u64 << 40, u64::MAX - 31, 64] {
        let bytes = one_tensor("t", &[8], f32_id, Some(offset), &[0; 32]);
        assert!(
            matches!(parse_err(&bytes), FormatError::TensorOutOfBounds { ref tensor, offset: o, n_bytes: 32, data_len: 32 } if tensor == "t" && o == offset),
            "offset {offset}"
        );
    }
    // Declared larger than the bytes present.
    let bytes = one_tensor("t", &[16], f32_id, None, &[0; 32]);
    assert!(matches!(parse_err(&bytes), FormatError::TensorOutOfBounds { n_bytes: 64, data_len: 32, .. }));

    for offset in [4u64, 31, 33] {
        let bytes = one_tensor("t", &[1], f32_id, Some(offset), &[0; 64]);
        assert_eq!(
            parse_err(&bytes),
            FormatError::MisalignedTensor { tensor: "t".into(), offset, alignment: 32 }
        );
    }
}

#[test]
fn duplicate_tensor_names_are_refused() {
    let mut w = GgufWriter::new();
    w.add_tensor("a", &[4], GgmlType::F32, &[0; 16])
        .add_tensor("b", &[4], GgmlType::F32, &[0; 16])
        .add_tensor("a", &[4], GgmlType::F32, &[0; 16]);
    assert_eq!(parse_err(&w.finish()), FormatError::DuplicateTensor { tensor: "a".into() });
}

// ---- sweeps ----

#[test]
fn flipping_any_byte_never_panics() {
    let bytes = sample_writer().finish();
    let mut outcomes = [0usize; 2];
    for i in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut b = bytes.clone();
            b[i] ^= mask;
            outcomes[usize::from(Gguf::parse(&b).is_ok())] += 1;
        }
    }
    // Flips in tensor data and string contents are harmless; flips in the structure are not.
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

#[test]
fn random_corruption_never_panics() {
    let bytes = sample_writer().finish();
    let mut state = 0x9e37_79b9_7f4a_7c15u64; // fixed seed (splitmix64)
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for _ in 0..20_000 {
        let mut b = bytes.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % b.len() as u64) as usize;
            // Favour the extreme values a corrupt count or length would have.
            b[at] = match next() % 3 {
                0 => 0xff,
                1 => 0,
                _ => next() as u8,
            };
        }
        let cut = b.len() - (next() % 8) as usize;
        let _ = Gguf::parse(&b[..cut]);
    }
}
