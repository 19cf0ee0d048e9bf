//! The tiny llama model: hyper-parameters, metadata keys and seeded weights.

use fovea_formats::blocks::{BlockQ4_1, BlockQ8_0, QK};
use fovea_formats::{GgmlType, Value};
use fovea_kernels::quant::quantize::quantize_row_q8_0;
use fovea_kernels::quant::quantize_weights::quantize_row_q4_1;

use super::{ModelFile, TensorSpec, TinyVocab};

/// Hyper-parameters and weight types of a tiny llama model. The default is the shape the engine
/// tests use: GQA (4 query heads over 2 KV heads), two layers, every matrix F32.
#[derive(Clone, Debug)]
pub struct TinyConfig {
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub n_ff: usize,
    /// `llama.context_length` (the trained context).
    pub n_ctx: usize,
    /// Type of the attention and feed-forward matrices.
    pub matrix_type: GgmlType,
    /// Type of `token_embd.weight` and `output.weight`.
    pub embd_type: GgmlType,
    pub seed: u64,
}

impl Default for TinyConfig {
    fn default() -> Self {
        TinyConfig {
            n_embd: 64,
            n_layer: 2,
            n_head: 4,
            n_head_kv: 2,
            n_ff: 128,
            n_ctx: 128,
            matrix_type: GgmlType::F32,
            embd_type: GgmlType::F32,
            seed: 0x5eed_f00d,
        }
    }
}

impl TinyConfig {
    /// The quantized mix of the real SmolLM2 file: Q4_1 matrices, Q8_0 embeddings.
    pub fn quantized() -> TinyConfig {
        TinyConfig { matrix_type: GgmlType::Q4_1, embd_type: GgmlType::Q8_0, ..TinyConfig::default() }
    }

    /// The complete model file: llama metadata, tokenizer, then every tensor `Model::load` reads.
    pub fn build(&self) -> ModelFile {
        let mut file = ModelFile::default();
        let u32_of = |v: usize| Value::U32(v as u32);
        file.set("general.architecture", Value::str("llama"))
            .set("general.name", Value::str("tiny-llama-test"))
            .set("llama.context_length", u32_of(self.n_ctx))
            .set("llama.embedding_length", u32_of(self.n_embd))
            .set("llama.block_count", u32_of(self.n_layer))
            .set("llama.feed_forward_length", u32_of(self.n_ff))
            .set("llama.attention.head_count", u32_of(self.n_head))
            .set("llama.attention.head_count_kv", u32_of(self.n_head_kv))
            .set("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5))
            .set("llama.rope.freq_base", Value::F32(10000.0));
        TinyVocab::add_to(&mut file);

        let mut rng = XorShift(self.seed | 1);
        let (d, n_vocab) = (self.n_embd, TinyVocab::N_TOKENS);
        let head_dim = d / self.n_head;
        let (q_dim, kv_dim) = (self.n_head * head_dim, self.n_head_kv * head_dim);
        // Values uniform in [-scale, scale): scale sqrt(3 / cols) keeps a product's variance that of
        // its input, so activations stay O(1) through the layers.
        let mut matrix = |name: String, cols: usize, rows: usize, ty: GgmlType, gain: f32| {
            let scale = gain * (3.0 / cols as f32).sqrt();
            let values: Vec<f32> = (0..rows * cols).map(|_| rng.uniform() * scale).collect();
            TensorSpec { name, dims: vec![cols as u64, rows as u64], ty, data: encode_tensor(ty, &values) }
        };
        let mut tensors =
            vec![matrix("token_embd.weight".into(), d, n_vocab, self.embd_type, (d as f32).sqrt())];
        let mut norms = Vec::new();
        for i in 0..self.n_layer {
            let name = |s: &str| format!("blk.{i}.{s}.weight");
            let ty = self.matrix_type;
            tensors.push(matrix(name("attn_q"), d, q_dim, ty, 1.0));
            tensors.push(matrix(name("attn_k"), d, kv_dim, ty, 1.0));
            tensors.push(matrix(name("attn_v"), d, kv_dim, ty, 1.0));
            tensors.push(matrix(name("attn_output"), q_dim, d, ty, 1.0));
            tensors.push(matrix(name("ffn_gate"), d, self.n_ff, ty, 1.0));
            tensors.push(matrix(name("ffn_up"), d, self.n_ff, ty, 1.0));
            tensors.push(matrix(name("ffn_down"), self.n_ff, d, ty, 1.0));
            norms.push(name("attn_norm"));
            norms.push(name("ffn_norm"));
        }
        tensors.push(matrix("output.weight".into(), d, n_vocab, self.embd_type, 1.0));
        norms.push("output_norm.weight".into());
        for name in norms {
            // Norm weights near 1, as trained models have them; always F32 (llama.cpp's converter).
            let values: Vec<f32> = (0..d).map(|_| 1.0 + 0.1 * rng.uniform()).collect();
            tensors.push(TensorSpec {
                name,
                dims: vec![d as u64],
                ty: GgmlType::F32,
                data: f32_bytes(&values),
            });
        }
        file.tensors = tensors;
        file
    }
}

/// `values` (a whole tensor, row-major) in type `ty`. F32, Q4_1 and Q8_0 are quantized for real;
/// any other type gets zero bytes of the right size (for tests that only need the type to load).
pub fn encode_tensor(ty: GgmlType, values: &[f32]) -> Vec<u8> {
    match ty {
        GgmlType::F32 => f32_bytes(values),
        GgmlType::Q4_1 => {
            let empty = BlockQ4_1 { d: Default::default(), m: Default::default(), qs: [0; QK / 2] };
            let mut blocks = vec![empty; values.len() / QK];
            quantize_row_q4_1(values, &mut blocks);
            let mut out = Vec::with_capacity(blocks.len() * 20);
            for b in &blocks {
                out.extend_from_slice(&b.d.to_le_bytes());
                out.extend_from_slice(&b.m.to_le_bytes());
                out.extend_from_slice(&b.qs);
            }
            out
        }
        GgmlType::Q8_0 => {
            let empty = BlockQ8_0 { d: Default::default(), qs: [0; QK] };
            let mut blocks = vec![empty; values.len() / QK];
            quantize_row_q8_0(values, &mut blocks);
            let mut out = Vec::with_capacity(blocks.len() * 34);
            for b in &blocks {
                out.extend_from_slice(&b.d.to_le_bytes());
                out.extend(b.qs.iter().map(|&q| q as u8));
            }
            out
        }
        other => vec![0; values.len() / other.block_elems() * other.block_bytes()],
    }
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// xorshift64: tiny, seeded, the same on every platform.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}
