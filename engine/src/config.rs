//! Model hyper-parameters, read from GGUF metadata in one place.
//!
//! Keys are the ones llama.cpp's converter writes (`{arch}.embedding_length` and so on); where a key
//! is optional we apply llama.cpp's default and say so here.

use std::path::Path;

use fovea_formats::{Gguf, MetaValue};
use fovea_kernels::ops::RopeLayout;

use crate::error::{EngineError, Result};

/// The architectures this engine runs. Differences between them are data on [`ModelConfig`],
/// not separate forward passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// llama, and the models llama.cpp runs through the same graph (Mistral, SmolLM, TinyLlama).
    Llama,
}

impl Arch {
    pub const SUPPORTED: &'static str = "llama";

    fn from_name(name: &str) -> Option<Arch> {
        match name {
            "llama" | "mistral" => Some(Arch::Llama),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub arch: Arch,
    /// `general.architecture`, the prefix of every hyper-parameter key.
    pub arch_name: String,
    pub name: Option<String>,
    /// Trained context length.
    pub n_ctx_train: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_ff: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    /// Per-head query/key width and value width.
    pub head_dim: usize,
    pub head_dim_v: usize,
    pub rms_eps: f32,
    pub rope_base: f32,
    /// 1 / linear RoPE scaling factor (1.0 when unscaled).
    pub rope_freq_scale: f32,
    pub n_rot: usize,
    pub rope_layout: RopeLayout,
    pub n_vocab: usize,
}

impl ModelConfig {
    pub fn from_gguf(gguf: &Gguf<'_>, path: &Path) -> Result<ModelConfig> {
        let fmt = |source| EngineError::Format { path: path.to_path_buf(), source };
        let arch_name = gguf.get_str("general.architecture").map_err(fmt)?.to_string();
        let arch = Arch::from_name(&arch_name).ok_or_else(|| EngineError::UnsupportedArchitecture {
            path: path.to_path_buf(),
            arch: arch_name.clone(),
            supported: Arch::SUPPORTED,
        })?;
        let key = |k: &str| format!("{arch_name}.{k}");
        let req = |k: &str| gguf.get_u32(&key(k)).map(|v| v as usize).map_err(fmt);
        let opt = |k: &str| -> Result<Option<usize>> {
            match gguf.get(&key(k)) {
                None => Ok(None),
                Some(_) => Ok(Some(gguf.get_u32(&key(k)).map_err(fmt)? as usize)),
            }
        };
        let optf = |k: &str| -> Result<Option<f32>> {
            match gguf.get(&key(k)) {
                None => Ok(None),
                Some(_) => Ok(Some(gguf.get_f32(&key(k)).map_err(fmt)?)),
            }
        };

        let n_embd = req("embedding_length")?;
        let n_head = req("attention.head_count")?;
        // llama.cpp: head_count_kv defaults to head_count (no GQA).
        let n_head_kv = opt("attention.head_count_kv")?.unwrap_or(n_head);
        let bad = |k: &str, reason: String| EngineError::BadMetadata {
            path: path.to_path_buf(),
            key: key(k),
            reason,
        };
        if n_head == 0 || n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(bad(
                "attention.head_count_kv",
                format!("{n_head} query heads cannot be grouped over {n_head_kv} KV heads"),
            ));
        }
        if n_embd % n_head != 0 {
            return Err(bad("embedding_length", format!("{n_embd} is not divisible by {n_head} heads")));
        }
        let head_dim = opt("attention.key_length")?.unwrap_or(n_embd / n_head);
        let head_dim_v = opt("attention.value_length")?.unwrap_or(n_embd / n_head);
        let n_rot = opt("rope.dimension_count")?.unwrap_or(head_dim);
        if n_rot % 2 != 0 || n_rot > head_dim {
            return Err(bad("rope.dimension_count", format!("{n_rot} must be even and at most {head_dim}")));
        }
        // Linear scaling: llama.cpp uses freq_scale = 1/factor for rope.scaling.type "linear".
        let scaling_type = match gguf.get(&key("rope.scaling.type")) {
            Some(MetaValue::Str(s)) => Some(*s),
            _ => None,
        };
        let factor = optf("rope.scaling.factor")?.unwrap_or(0.0);
        let rope_freq_scale = match scaling_type {
            Some("linear") if factor > 0.0 => 1.0 / factor,
            Some("none") | None | Some("linear") => 1.0,
            Some(other) => {
                return Err(bad("rope.scaling.type", format!("'{other}' scaling is not supported yet")))
            }
        };
        let n_vocab = match opt("vocab_size")? {
            Some(v) => v,
            None => gguf.get_array("tokenizer.ggml.tokens").map_err(fmt)?.len(),
        };
        let cfg = ModelConfig {
            arch,
            name: gguf.get_str("general.name").ok().map(str::to_string),
            n_ctx_train: req("context_length")?,
            n_embd,
            n_layer: req("block_count")?,
            n_ff: req("feed_forward_length")?,
            n_head,
            n_head_kv,
            head_dim,
            head_dim_v,
            rms_eps: optf("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-5),
            // llama.cpp's default base when the key is absent.
            rope_base: optf("rope.freq_base")?.unwrap_or(10000.0),
            rope_freq_scale,
            n_rot,
            rope_layout: match arch {
                Arch::Llama => RopeLayout::Normal,
            },
            arch_name: arch_name.clone(),
            n_vocab,
        };
        if cfg.n_layer == 0 || cfg.n_ff == 0 || cfg.n_vocab == 0 {
            return Err(bad(
                "block_count",
                "layer, feed-forward and vocabulary sizes must be non-zero".into(),
            ));
        }
        Ok(cfg)
    }

    /// Query heads per KV head.
    pub fn gqa_group(&self) -> usize {
        self.n_head / self.n_head_kv
    }
}
