//! The real SmolLM2-135M-Instruct Q4_1 file, when it is present (the engine's tests fetch it; here it
//! is optional so the formats crate tests stand alone).

use std::path::Path;

use fovea_formats::blocks::{BlockQ4_1, BlockQ8_0};
use fovea_formats::{GgmlType, MappedGguf, MetaType};

const MODEL: &str = "/tmp/models/SmolLM2-135M-Instruct.Q4_1.gguf";

#[test]
fn smollm2_q4_1_parses() {
    if !Path::new(MODEL).exists() {
        println!("SKIPPED: {MODEL} not present");
        return;
    }
    let mapped = MappedGguf::open(MODEL).unwrap();
    let g = mapped.gguf().unwrap();

    assert_eq!(g.version(), 3);
    assert_eq!(g.alignment(), 32);
    assert_eq!(g.get_str("general.architecture"), Ok("llama"));
    assert_eq!(g.get_u32("llama.block_count"), Ok(30));
    assert_eq!(g.get_u32("llama.embedding_length"), Ok(576));
    assert_eq!(g.get_str("tokenizer.ggml.model"), Ok("gpt2"));
    assert_eq!(g.get_str("tokenizer.ggml.pre"), Ok("smollm"));

    let tokens = g.get_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!((tokens.elem_type(), tokens.len()), (MetaType::String, 49152));
    let vocab = tokens.to_str_vec().unwrap();
    assert_eq!(vocab.len(), 49152);
    assert_eq!(vocab[0], "<|endoftext|>");
    let merges = g.get_array("tokenizer.ggml.merges").unwrap();
    assert_eq!(merges.strings().unwrap().count(), merges.len());

    let count = |ty| g.tensors().iter().filter(|t| t.ty == ty).count();
    assert_eq!(g.tensors().len(), 272);
    assert_eq!((count(GgmlType::F32), count(GgmlType::Q4_1), count(GgmlType::Q8_0)), (61, 210, 1));

    // Every tensor can be viewed in place as its blocks.
    for t in g.tensors() {
        let n_blocks = t.n_elements() as usize / t.ty.block_elems();
        let viewed = match t.ty {
            GgmlType::F32 => g.tensor_f32(t).map(<[f32]>::len),
            GgmlType::Q4_1 => g.tensor_blocks::<BlockQ4_1>(t).map(<[_]>::len),
            GgmlType::Q8_0 => g.tensor_blocks::<BlockQ8_0>(t).map(<[_]>::len),
            other => panic!("unexpected type {other} in {}", t.name),
        };
        assert_eq!(viewed, Ok(n_blocks), "{}", t.name);
    }
    let embd = g.tensor("token_embd.weight").unwrap();
    assert_eq!(embd.shape(), [576, 49152]);
}
