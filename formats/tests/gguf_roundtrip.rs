//! Write -> parse -> the same values: every metadata type, nested arrays, tensors, typed getters,
//! display, memory-mapped files, and the speed of a Gemma-sized vocab.

mod common;

use std::time::{Duration, Instant};

use common::{f32_bytes, q8_0_bytes, sample_writer};
use fovea_formats::blocks::{BlockQ4_1, BlockQ8_0};
use fovea_formats::{
    FormatError, GgmlType, Gguf, GgufFileError, GgufWriter, MappedGguf, MetaType, MetaValue, Value,
};

/// The owned value a parsed one came from, decoding arrays element by element.
fn to_owned_value(v: &MetaValue<'_>) -> Value {
    match *v {
        MetaValue::U8(x) => Value::U8(x),
        MetaValue::I8(x) => Value::I8(x),
        MetaValue::U16(x) => Value::U16(x),
        MetaValue::I16(x) => Value::I16(x),
        MetaValue::U32(x) => Value::U32(x),
        MetaValue::I32(x) => Value::I32(x),
        MetaValue::F32(x) => Value::F32(x),
        MetaValue::Bool(x) => Value::Bool(x),
        MetaValue::Str(s) => Value::str(s),
        MetaValue::Array(a) => {
            Value::Array { elem: a.elem_type(), items: a.iter().map(|e| to_owned_value(&e)).collect() }
        }
        MetaValue::U64(x) => Value::U64(x),
        MetaValue::I64(x) => Value::I64(x),
        MetaValue::F64(x) => Value::F64(x),
    }
}

fn every_kind_of_value() -> Vec<(&'static str, Value)> {
    let arr = |elem, items| Value::Array { elem, items };
    vec![
        ("t.u8", Value::U8(200)),
        ("t.i8", Value::I8(-100)),
        ("t.u16", Value::U16(60000)),
        ("t.i16", Value::I16(-30000)),
        ("t.u32", Value::U32(4_000_000_000)),
        ("t.i32", Value::I32(-2_000_000_000)),
        ("t.f32", Value::F32(1.5e-5)),
        ("t.true", Value::Bool(true)),
        ("t.false", Value::Bool(false)),
        ("t.str", Value::str("héllo ✓ \"quoted\"\n")),
        ("t.empty_str", Value::str("")),
        ("t.u64", Value::U64(u64::MAX)),
        ("t.i64", Value::I64(i64::MIN)),
        ("t.f64", Value::F64(-0.25)),
        ("t.arr_u8", arr(MetaType::U8, vec![Value::U8(1), Value::U8(255)])),
        ("t.arr_i16", arr(MetaType::I16, vec![Value::I16(-1), Value::I16(7)])),
        ("t.arr_u64", arr(MetaType::U64, vec![Value::U64(1 << 40)])),
        ("t.arr_bool", arr(MetaType::Bool, vec![Value::Bool(true), Value::Bool(false)])),
        ("t.arr_f64", arr(MetaType::F64, vec![Value::F64(0.5), Value::F64(-2.0)])),
        ("t.arr_empty", arr(MetaType::String, vec![])),
        ("t.arr_strings", Value::strings(&["Ġthe", "", "<|im_start|>", "日本"])),
        (
            "t.nested",
            arr(
                MetaType::Array,
                vec![
                    Value::strings(&["a", "b"]),
                    Value::f32s(&[2.0]),
                    arr(MetaType::Array, vec![Value::i32s(&[-1, 2, -3])]),
                    arr(MetaType::U16, vec![]),
                ],
            ),
        ),
    ]
}

#[test]
fn every_value_type_round_trips_in_order() {
    for version in [2u32, 3] {
        let values = every_kind_of_value();
        let mut w = GgufWriter::new();
        w.set_version(version);
        for (k, v) in &values {
            w.add(k, v.clone());
        }
        let bytes = w.finish();
        let g = Gguf::parse(&bytes).unwrap();
        assert_eq!(g.version(), version);
        assert_eq!(g.metadata().len(), values.len());
        for ((key, parsed), (want_key, want)) in g.metadata().iter().zip(&values) {
            assert_eq!(key, want_key);
            assert_eq!(&to_owned_value(parsed), want, "{key}");
            assert_eq!(parsed.meta_type(), want.meta_type());
            assert_eq!(g.get(key), Some(parsed));
        }
        assert_eq!(g.get("t.missing"), None);
        assert!(g.tensors().is_empty());
    }
}

#[test]
fn typed_getters_convert_or_name_the_key() {
    let mut w = GgufWriter::new();
    for (k, v) in every_kind_of_value() {
        w.add(k, v);
    }
    let bytes = w.finish();
    let g = Gguf::parse(&bytes).unwrap();

    assert_eq!(g.get_u32("t.u8"), Ok(200));
    assert_eq!(g.get_u32("t.u32"), Ok(4_000_000_000));
    assert_eq!(g.get_u64("t.u64"), Ok(u64::MAX));
    assert_eq!(
        g.get_u32("t.i8"),
        Err(FormatError::ValueOutOfRange { key: "t.i8".into(), value: -100, target: "u32" })
    );
    assert_eq!(
        g.get_u32("t.u64"),
        Err(FormatError::ValueOutOfRange { key: "t.u64".into(), value: u64::MAX.into(), target: "u32" })
    );
    assert_eq!(
        g.get_u32("t.str"),
        Err(FormatError::WrongMetaType {
            key: "t.str".into(),
            expected: "an integer",
            found: MetaType::String
        })
    );
    assert_eq!(
        g.get_u32("llama.block_count"),
        Err(FormatError::MissingKey { key: "llama.block_count".into() })
    );
    assert_eq!(g.get_f32("t.f32"), Ok(1.5e-5));
    assert_eq!(g.get_f32("t.f64"), Ok(-0.25));
    assert!(matches!(g.get_f32("t.u32"), Err(FormatError::WrongMetaType { found: MetaType::U32, .. })));
    assert_eq!(g.get_str("t.str"), Ok("héllo ✓ \"quoted\"\n"));
    assert_eq!(g.get_bool("t.true"), Ok(true));
    assert!(matches!(g.get_bool("t.u8"), Err(FormatError::WrongMetaType { expected: "bool", .. })));
    assert!(matches!(g.get_array("t.str"), Err(FormatError::WrongMetaType { expected: "array", .. })));

    let strings = g.get_array("t.arr_strings").unwrap();
    assert_eq!((strings.len(), strings.elem_type(), strings.is_empty()), (4, MetaType::String, false));
    assert_eq!(strings.strings().unwrap().collect::<Vec<_>>(), ["Ġthe", "", "<|im_start|>", "日本"]);
    assert_eq!(strings.to_str_vec().unwrap()[2], "<|im_start|>");
    assert_eq!(strings.get(3), Some(MetaValue::Str("日本")));
    assert_eq!(strings.get(4), None);
    assert!(matches!(strings.to_f32_vec(), Err(FormatError::WrongArrayType { found: MetaType::String, .. })));

    assert_eq!(g.get_array("t.arr_u8").unwrap().to_u32_vec(), Ok(vec![1, 255]));
    assert_eq!(g.get_array("t.arr_i16").unwrap().to_i32_vec(), Ok(vec![-1, 7]));
    assert!(matches!(
        g.get_array("t.arr_i16").unwrap().to_u32_vec(),
        Err(FormatError::ValueOutOfRange { value: -1, target: "u32", .. })
    ));
    assert!(matches!(
        g.get_array("t.arr_u64").unwrap().to_i32_vec(),
        Err(FormatError::ValueOutOfRange { target: "i32", .. })
    ));
    assert_eq!(g.get_array("t.arr_f64").unwrap().get(1), Some(MetaValue::F64(-2.0)));
    assert!(g.get_array("t.arr_empty").unwrap().is_empty());

    let nested = g.get_array("t.nested").unwrap();
    let inner = nested.get(2).unwrap();
    let inner = inner.as_array().unwrap().get(0).unwrap();
    assert_eq!(inner.as_array().unwrap().to_i32_vec(), Ok(vec![-1, 2, -3]));
}

#[test]
fn display_is_compact_for_inspect() {
    let mut w = GgufWriter::new();
    let vocab: Vec<String> = (0..49152).map(|i| format!("t{i}")).collect();
    w.add("tokens", Value::strings(&vocab))
        .add("small", Value::i32s(&[1, -2]))
        .add("name", Value::str("Smol\"LM\""))
        .add("nested", Value::Array { elem: MetaType::Array, items: vec![Value::strings(&["a"])] });
    let bytes = w.finish();
    let g = Gguf::parse(&bytes).unwrap();
    let shown: Vec<String> = g.metadata().iter().map(|(_, v)| v.to_string()).collect();
    assert_eq!(shown, ["[string; 49152]", "[1, -2]", "\"Smol\\\"LM\\\"\"", "[[\"a\"]]"]);
    assert_eq!(format!("{:.4}", g.get("name").unwrap()), "\"Smol\"…");
}

#[test]
fn tensors_round_trip() {
    let (bytes, layout) = sample_writer().finish_with_layout();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.alignment(), 32);
    assert_eq!(g.data_offset(), layout.data_start as u64);
    let names: Vec<&str> = g.tensors().iter().map(|t| t.name).collect();
    assert_eq!(names, ["token_embd.weight", "output_norm.weight"]);

    let embd = g.tensor("token_embd.weight").unwrap();
    assert_eq!((embd.shape(), embd.ty, embd.n_dims), (&[32u64, 2][..], GgmlType::Q8_0, 2));
    assert_eq!(embd.dims, [32, 2, 1, 1]);
    assert_eq!((embd.n_elements(), embd.n_rows(), embd.n_bytes, embd.offset), (64, 2, 68, 0));
    assert_eq!(g.tensor_data(embd), q8_0_bytes(2));

    let norm = g.tensor("output_norm.weight").unwrap();
    assert_eq!((norm.shape(), norm.n_bytes, norm.offset), (&[4u64][..], 16, 96));
    assert_eq!(g.tensor_data(norm), f32_bytes(&[1.0, 2.0, -3.0, 0.5]));
    assert_eq!(g.tensor("missing"), None);
}

/// A file in the temp dir, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> TempFile {
        let path = std::env::temp_dir().join(format!("fovea-h1-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn mapped_files_give_zero_copy_views() {
    let file = TempFile::new("sample.gguf", &sample_writer().finish());
    let mapped = MappedGguf::open(&file.0).unwrap();
    assert_eq!(mapped.path(), file.0);
    let g = mapped.gguf().unwrap();

    let norm = g.tensor("output_norm.weight").unwrap();
    let values = g.tensor_f32(norm).unwrap();
    assert_eq!(values, [1.0, 2.0, -3.0, 0.5]);
    // Borrowed from the mapping, not copied.
    assert!(mapped.bytes().as_ptr_range().contains(&values.as_ptr().cast()));

    let embd = g.tensor("token_embd.weight").unwrap();
    let blocks: &[BlockQ8_0] = g.tensor_blocks(embd).unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!(bytemuck::cast_slice::<BlockQ8_0, u8>(blocks), q8_0_bytes(2));
    assert_eq!(
        g.tensor_blocks::<BlockQ4_1>(embd).unwrap_err(),
        FormatError::WrongTensorType {
            tensor: "token_embd.weight".into(),
            expected: GgmlType::Q4_1,
            found: GgmlType::Q8_0
        }
    );
    assert!(matches!(g.tensor_f32(embd), Err(FormatError::WrongTensorType { .. })));
}

#[test]
fn file_errors_carry_the_path() {
    let missing = std::env::temp_dir().join("fovea-h1-does-not-exist.gguf");
    let err = MappedGguf::open(&missing).unwrap_err();
    assert!(matches!(err, GgufFileError::Io { .. }));
    assert!(err.to_string().starts_with(&format!("{}: ", missing.display())), "{err}");

    let err = MappedGguf::open(std::env::temp_dir()).unwrap_err();
    assert!(err.to_string().contains("is a directory"), "{err}");

    let empty = TempFile::new("empty.gguf", &[]);
    let err = MappedGguf::open(&empty.0).unwrap_err();
    assert_eq!(err.format_error(), Some(&FormatError::Empty));
    assert_eq!(
        err.to_string(),
        format!("{}: the file is empty (0 bytes), not a GGUF model", empty.0.display())
    );

    let html = TempFile::new("page.gguf", b"<!DOCTYPE html><html>");
    let mapped = MappedGguf::open(&html.0).unwrap();
    let err = mapped.gguf().unwrap_err();
    assert!(matches!(err.format_error(), Some(FormatError::BadMagic { .. })));
    assert_eq!(err.path(), html.0);
}

#[test]
fn a_gemma_sized_vocab_parses_in_linear_time() {
    const N: usize = 262_144;
    let tokens: Vec<String> = (0..N).map(|i| format!("▁tok{i}")).collect();
    let scores: Vec<f32> = (0..N).map(|i| -(i as f32)).collect();
    let types: Vec<i32> = (0..N).map(|i| (i % 6) as i32).collect();
    let mut w = GgufWriter::new();
    w.add("tokenizer.ggml.tokens", Value::strings(&tokens))
        .add("tokenizer.ggml.scores", Value::f32s(&scores))
        .add("tokenizer.ggml.token_type", Value::i32s(&types));
    let bytes = w.finish();

    let start = Instant::now();
    let g = Gguf::parse(&bytes).unwrap();
    let vocab = g.get_array("tokenizer.ggml.tokens").unwrap().to_str_vec().unwrap();
    let parsed_scores = g.get_array("tokenizer.ggml.scores").unwrap().to_f32_vec().unwrap();
    let parsed_types = g.get_array("tokenizer.ggml.token_type").unwrap().to_i32_vec().unwrap();
    let elapsed = start.elapsed();
    println!("parsed and collected a {N}-token vocab in {elapsed:?}");

    assert_eq!(vocab.len(), N);
    assert_eq!(vocab[N - 1], tokens[N - 1]);
    assert_eq!(parsed_scores, scores);
    assert_eq!(parsed_types, types);
    // Linear work is a few milliseconds even unoptimized; quadratic work would be ~10^10 steps.
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}
