//! Model hyper-parameters, read from GGUF metadata in one place.
//!
//! Keys are the ones llama.cpp's converter writes (`{arch}.embedding_length` and so on); where a key
//! is optional we apply llama.cpp's default and say so here. What differs between architectures is
//! data on [`ModelConfig`] (norm placement, activation, attention scaling, sliding windows), set in
//! [`ModelConfig::from_gguf`] from the architecture and the file; the forward pass reads only data.

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
    /// Gemma 3 (text): sandwich norms, Q/K norms, GeGLU, scaled embeddings, and local
    /// sliding-window layers interleaved with global ones.
    Gemma3,
}

impl Arch {
    pub const SUPPORTED: &'static str = "llama, gemma3";

    fn from_name(name: &str) -> Option<Arch> {
        match name {
            "llama" | "mistral" => Some(Arch::Llama),
            "gemma3" => Some(Arch::Gemma3),
            _ => None,
        }
    }
}

/// The gate activation of the feed-forward block: act(W_gate x) * (W_up x).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FfnActivation {
    /// SwiGLU (llama).
    Silu,
    /// GeGLU with the tanh GELU (Gemma).
    GeluTanh,
}

/// Local attention layers: each token attends to itself and the `n_swa - 1` tokens before it
/// (llama.cpp's `LLAMA_SWA_TYPE_STANDARD`: key position p0 is masked for query p1 when
/// `p1 - p0 >= n_swa`).
#[derive(Clone, Debug, PartialEq)]
pub struct SlidingWindow {
    pub n_swa: usize,
    /// is_local[layer]: whether the layer uses the window (the others attend to everything).
    pub is_local: Vec<bool>,
    /// RoPE base and frequency scale of the local layers (global layers use the model's).
    pub rope_base: f32,
    pub rope_freq_scale: f32,
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
    /// Token embeddings are multiplied by this before the first layer (Gemma: sqrt(n_embd)).
    pub embd_scale: Option<f32>,
    /// Per-head RMSNorm of queries and keys before RoPE (`attn_q_norm`, `attn_k_norm`).
    pub qk_norm: bool,
    /// RMSNorm of each sub-block's output before the residual add (`post_attention_norm`,
    /// `post_ffw_norm`): Gemma's "sandwich" norms.
    pub post_norms: bool,
    pub ffn_act: FfnActivation,
    /// Queries are multiplied by this after RoPE (Gemma scales Q itself: one rounding per element).
    pub q_scale: f32,
    /// Attention scores q·k are multiplied by this before the softmax (llama: 1/sqrt(head_dim)).
    pub kq_scale: f32,
    /// Local (sliding-window) layers, when the model has them.
    pub swa: Option<SlidingWindow>,
    /// logits <- c * tanh(logits / c) when set (`final_logit_softcapping`).
    pub final_logit_softcap: Option<f32>,
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
        let n_layer = req("block_count")?;
        let rms_eps = optf("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-5);
        let mut cfg = ModelConfig {
            arch,
            name: gguf.get_str("general.name").ok().map(str::to_string),
            n_ctx_train: req("context_length")?,
            n_embd,
            n_layer,
            n_ff: req("feed_forward_length")?,
            n_head,
            n_head_kv,
            head_dim,
            head_dim_v,
            rms_eps,
            // llama.cpp's default base when the key is absent.
            rope_base: optf("rope.freq_base")?.unwrap_or(10000.0),
            rope_freq_scale,
            n_rot,
            rope_layout: RopeLayout::Normal,
            arch_name: arch_name.clone(),
            n_vocab,
            embd_scale: None,
            qk_norm: false,
            post_norms: false,
            ffn_act: FfnActivation::Silu,
            q_scale: 1.0,
            kq_scale: 1.0 / (head_dim as f32).sqrt(),
            swa: None,
            final_logit_softcap: None,
        };
        match arch {
            Arch::Llama => {}
            Arch::Gemma3 => {
                // llama.cpp `llama_model_gemma3`: NeoX RoPE, GeGLU, embeddings scaled by
                // sqrtf(n_embd) in f32, Q scaled by 1/sqrt(head_dim) before the product (kq_scale
                // 1). The 27B model (62 layers) scales by 1/sqrt(n_embd / n_head) instead.
                // The norm weights need no "+1": the GGUF converter stored them with it.
                cfg.rope_layout = RopeLayout::NeoX;
                cfg.embd_scale = Some((n_embd as f32).sqrt());
                cfg.qk_norm = true;
                cfg.post_norms = true;
                cfg.ffn_act = FfnActivation::GeluTanh;
                let q_width = if n_layer == 62 { n_embd / n_head } else { head_dim };
                cfg.q_scale = 1.0 / (q_width as f32).sqrt();
                cfg.kq_scale = 1.0;
                // llama.cpp requires the epsilon for gemma3 (no default).
                cfg.rms_eps = gguf.get_f32(&key("attention.layer_norm_rms_epsilon")).map_err(fmt)?;
                cfg.swa = sliding_window(gguf, &key, n_layer, path)?;
                cfg.final_logit_softcap = optf("final_logit_softcapping")?.filter(|&c| c != 0.0);
            }
        }
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

    /// The attention window of `layer`: `Some(n_swa)` for a local layer, `None` for a global one.
    pub fn window(&self, layer: usize) -> Option<usize> {
        let swa = self.swa.as_ref()?;
        swa.is_local.get(layer).copied().unwrap_or(false).then_some(swa.n_swa)
    }
}

/// The sliding-window layout of a Gemma 3 file, as `llama_model_gemma3::load_arch_hparams` reads it:
/// no window (or 0) means every layer is global; `attention.sliding_window_pattern` is either a
/// per-layer array (true = local) or a period n where every n-th layer is global
/// (`il % n < n - 1` is local; default 6); the local RoPE base is `rope.freq_base_swa`, default
/// 10000, and local layers are never frequency-scaled (`rope_freq_scale_train_swa` = 1).
fn sliding_window(
    gguf: &Gguf<'_>,
    key: &dyn Fn(&str) -> String,
    n_layer: usize,
    path: &Path,
) -> Result<Option<SlidingWindow>> {
    let fmt = |source| EngineError::Format { path: path.to_path_buf(), source };
    let n_swa = match gguf.get(&key("attention.sliding_window")) {
        None => 0,
        Some(_) => gguf.get_u32(&key("attention.sliding_window")).map_err(fmt)? as usize,
    };
    if n_swa == 0 {
        return Ok(None);
    }
    let pattern_key = key("attention.sliding_window_pattern");
    let is_local = match gguf.get(&pattern_key) {
        Some(MetaValue::Array(flags)) => {
            let bad = |reason: String| EngineError::BadMetadata {
                path: path.to_path_buf(),
                key: pattern_key.clone(),
                reason,
            };
            let flags = flags
                .iter()
                .map(|v| v.as_bool().or_else(|| v.as_integer().map(|i| i != 0)))
                .collect::<Option<Vec<bool>>>()
                .ok_or_else(|| bad("entries must be booleans or integers".into()))?;
            if flags.len() != n_layer {
                return Err(bad(format!("{} entries for {n_layer} layers", flags.len())));
            }
            flags
        }
        Some(_) => period_pattern(gguf.get_u32(&pattern_key).map_err(fmt)? as usize, n_layer),
        None => period_pattern(6, n_layer),
    };
    let rope_base = match gguf.get(&key("rope.freq_base_swa")) {
        None => 10000.0,
        Some(_) => gguf.get_f32(&key("rope.freq_base_swa")).map_err(fmt)?,
    };
    Ok(Some(SlidingWindow { n_swa, is_local, rope_base, rope_freq_scale: 1.0 }))
}

/// llama.cpp's `set_swa_pattern(n)`: every n-th layer (the last of each period) is global;
/// n = 0 makes every layer local.
fn period_pattern(n: usize, n_layer: usize) -> Vec<bool> {
    (0..n_layer).map(|il| n == 0 || il % n < n - 1).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemma3_pattern_makes_every_sixth_layer_global() {
        let p = period_pattern(6, 18);
        let global: Vec<usize> = (0..18).filter(|&i| !p[i]).collect();
        assert_eq!(global, [5, 11, 17]);
        assert!(period_pattern(0, 4).iter().all(|&l| l));
        assert_eq!(period_pattern(1, 3), [false, false, false]);
    }
}
