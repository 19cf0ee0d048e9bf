//! Small GGUF files shared by the integration tests.
#![allow(dead_code)]

use fovea_formats::{GgmlType, GgufWriter, Value};

/// Two Q8_0 blocks: scale bytes then 32 quants each (34 bytes per block).
pub fn q8_0_bytes(n_blocks: usize) -> Vec<u8> {
    (0..n_blocks * 34).map(|i| (i * 7 + 3) as u8).collect()
}

pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A small llama-like file: five metadata entries and two tensors.
pub fn sample_writer() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.add("general.architecture", Value::str("llama"))
        .add("llama.block_count", Value::U32(2))
        .add("llama.rope.freq_base", Value::F32(10000.0))
        .add("tokenizer.ggml.tokens", Value::strings(&["a", "bc", "<s>"]))
        .add("tokenizer.ggml.scores", Value::f32s(&[0.0, -1.0, 2.5]));
    w.add_tensor("token_embd.weight", &[32, 2], GgmlType::Q8_0, &q8_0_bytes(2)).add_tensor(
        "output_norm.weight",
        &[4],
        GgmlType::F32,
        &f32_bytes(&[1.0, 2.0, -3.0, 0.5]),
    );
    w
}

/// A writer with one tensor, for tests of tensor infos.
pub fn one_tensor(name: &str, dims: &[u64], type_id: u32, offset: Option<u64>, data: &[u8]) -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.add("general.architecture", Value::str("llama"));
    w.add_tensor_raw(name, dims, type_id, offset, data);
    w.finish()
}
