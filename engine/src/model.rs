//! A model loaded from GGUF: config, tokenizer and zero-copy weight handles.

use std::path::{Path, PathBuf};

use fovea_formats::mmap::MappedGguf;
use fovea_formats::Gguf;
use fovea_kernels::ops::RopeTable;

use crate::config::ModelConfig;
use crate::error::{EngineError, Result};
use crate::tokenizer::{Tokenizer, VocabData};
use crate::weights::{Matrix, TensorLoader};

/// How to load a model.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Dequantize every weight to f32 and multiply in f32 (the reference path that checks the
    /// math exactly; ~4x the memory).
    pub reference_f32: bool,
}

pub struct LayerWeights {
    pub attn_norm: Vec<f32>,
    /// Per-head query/key norms (head_dim,), when `config.qk_norm`.
    pub attn_q_norm: Option<Vec<f32>>,
    pub attn_k_norm: Option<Vec<f32>>,
    /// Norms of the attention and FFN outputs (n_embd,), when `config.post_norms`.
    pub post_attn_norm: Option<Vec<f32>>,
    pub post_ffn_norm: Option<Vec<f32>>,
    /// W_q (n_head * head_dim, n_embd), W_k/W_v (n_head_kv * head_dim[_v], n_embd)
    pub wq: Matrix,
    pub wk: Matrix,
    pub wv: Matrix,
    /// W_o (n_embd, n_head * head_dim_v)
    pub wo: Matrix,
    pub ffn_norm: Vec<f32>,
    /// W_gate, W_up (n_ff, n_embd); W_down (n_embd, n_ff)
    pub w_gate: Matrix,
    pub w_up: Matrix,
    pub w_down: Matrix,
}

pub struct Model {
    file: MappedGguf,
    path: PathBuf,
    pub config: ModelConfig,
    pub tokenizer: Tokenizer,
    /// The file's `tokenizer.chat_template`, if any.
    pub chat_template: Option<String>,
    /// token_embd (n_vocab, n_embd)
    pub tok_embd: Matrix,
    pub output_norm: Vec<f32>,
    /// output (n_vocab, n_embd); `None` when tied to `tok_embd`.
    pub output: Option<Matrix>,
    pub layers: Vec<LayerWeights>,
    /// RoPE of the global layers (every layer when the model has no sliding window).
    pub rope: RopeTable,
    /// RoPE of the local (sliding-window) layers, whose base differs (Gemma 3: 10000 vs 1e6).
    pub rope_local: Option<RopeTable>,
    pub reference_f32: bool,
    /// Unique per loaded model in this process: what device weights are shared by.
    uid: u64,
}

/// Source of [`Model::uid`].
static NEXT_MODEL_UID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Model {
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Model> {
        let file = MappedGguf::open(path)?;
        let gguf = file.gguf()?;
        let config = ModelConfig::from_gguf(&gguf, path)?;
        let tokenizer = tokenizer_from(&gguf, path)?;
        let chat_template = gguf.get_str("tokenizer.chat_template").ok().map(str::to_string);

        let c = &config;
        let loader = TensorLoader { gguf: &gguf, file: file.bytes(), path, dequantize: opts.reference_f32 };
        let tok_embd = loader.matrix("token_embd.weight", c.n_embd, c.n_vocab)?;
        let output_norm = loader.vector("output_norm.weight", c.n_embd)?;
        let output = if loader.has("output.weight") {
            Some(loader.matrix("output.weight", c.n_embd, c.n_vocab)?)
        } else {
            None
        };
        let (q_dim, kv_dim, v_dim) =
            (c.n_head * c.head_dim, c.n_head_kv * c.head_dim, c.n_head_kv * c.head_dim_v);
        let layers = (0..c.n_layer)
            .map(|i| {
                let name = |s: &str| format!("blk.{i}.{s}.weight");
                let norm_if =
                    |on: bool, s: &str, n: usize| on.then(|| loader.vector(&name(s), n)).transpose();
                Ok(LayerWeights {
                    attn_norm: loader.vector(&name("attn_norm"), c.n_embd)?,
                    attn_q_norm: norm_if(c.qk_norm, "attn_q_norm", c.head_dim)?,
                    attn_k_norm: norm_if(c.qk_norm, "attn_k_norm", c.head_dim)?,
                    post_attn_norm: norm_if(c.post_norms, "post_attention_norm", c.n_embd)?,
                    post_ffn_norm: norm_if(c.post_norms, "post_ffw_norm", c.n_embd)?,
                    wq: loader.matrix(&name("attn_q"), c.n_embd, q_dim)?,
                    wk: loader.matrix(&name("attn_k"), c.n_embd, kv_dim)?,
                    wv: loader.matrix(&name("attn_v"), c.n_embd, v_dim)?,
                    wo: loader.matrix(&name("attn_output"), c.n_head * c.head_dim_v, c.n_embd)?,
                    ffn_norm: loader.vector(&name("ffn_norm"), c.n_embd)?,
                    w_gate: loader.matrix(&name("ffn_gate"), c.n_embd, c.n_ff)?,
                    w_up: loader.matrix(&name("ffn_up"), c.n_embd, c.n_ff)?,
                    w_down: loader.matrix(&name("ffn_down"), c.n_ff, c.n_embd)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut rope = RopeTable::new(c.n_rot, c.rope_base, c.rope_freq_scale, c.rope_layout);
        if loader.has("rope_freqs.weight") {
            rope = rope.with_freq_factors(loader.vector("rope_freqs.weight", c.n_rot / 2)?);
        }
        let rope_local = c
            .swa
            .as_ref()
            .map(|swa| RopeTable::new(c.n_rot, swa.rope_base, swa.rope_freq_scale, c.rope_layout));
        drop(gguf);
        Ok(Model {
            path: path.to_path_buf(),
            config,
            tokenizer,
            chat_template,
            tok_embd,
            output_norm,
            output,
            layers,
            rope,
            rope_local,
            reference_f32: opts.reference_f32,
            uid: NEXT_MODEL_UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            file,
        })
    }

    /// This load's identity: two loads of one file differ (their weights are separate).
    pub fn uid(&self) -> u64 {
        self.uid
    }

    /// Only the tokenizer of a model file (cheap: no weights are touched).
    pub fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
        let file = MappedGguf::open(path)?;
        tokenizer_from(&file.gguf()?, path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The mapped file, which `Matrix::Mapped` handles index into.
    pub fn file_bytes(&self) -> &[u8] {
        self.file.bytes()
    }

    /// The RoPE table of `layer`.
    pub fn rope_for(&self, layer: usize) -> &RopeTable {
        match (&self.rope_local, self.config.window(layer)) {
            (Some(local), Some(_)) => local,
            _ => &self.rope,
        }
    }

    /// The output projection (tied to the token embedding when the file has no `output.weight`).
    pub fn output_matrix(&self) -> &Matrix {
        self.output.as_ref().unwrap_or(&self.tok_embd)
    }
}

fn tokenizer_from(gguf: &Gguf<'_>, path: &Path) -> Result<Tokenizer> {
    let err = |source| EngineError::Tokenizer { path: path.to_path_buf(), source };
    Tokenizer::new(VocabData::from_gguf(gguf).map_err(err)?).map_err(err)
}
