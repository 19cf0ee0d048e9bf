//! The vocabulary as read from GGUF (`VocabData`), and the resolved form the tokenizers use
//! (`Vocab`: token bytes, attributes, lookup map, special ids, end-of-generation set).
//!
//! Defaults and special-token quirks follow llama.cpp's `llama_vocab::impl::load`.

use std::collections::{HashMap, HashSet};

use fovea_formats::gguf::Gguf;

use super::TokenizerError;

/// Tokenizer metadata of a GGUF file (`tokenizer.ggml.*`), with llama.cpp's defaults applied for
/// missing keys (see [`VocabData::from_metadata`]).
#[derive(Clone, Debug, Default)]
pub struct VocabData {
    /// `tokenizer.ggml.model`: "gpt2" (byte-level BPE) or "llama" (SentencePiece).
    pub model: String,
    /// `tokenizer.ggml.pre`: pre-tokenizer name ("smollm", "llama3", "qwen2", "default", ...).
    pub pre: String,
    pub tokens: Vec<String>,
    /// Per-token scores (SPM merge priority); may be empty for gpt2.
    pub scores: Vec<f32>,
    /// Per-token type: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    pub token_types: Vec<i32>,
    /// BPE merges, "left right", rank = index.
    pub merges: Vec<String>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
}

/// Typed access to GGUF metadata, so `VocabData` can be read from any GGUF reader.
/// Each getter returns `None` when the key is absent or has another type.
pub trait VocabMetadata {
    fn get_str(&self, key: &str) -> Option<String>;
    fn get_u32(&self, key: &str) -> Option<u32>;
    fn get_bool(&self, key: &str) -> Option<bool>;
    fn get_strings(&self, key: &str) -> Option<Vec<String>>;
    fn get_f32s(&self, key: &str) -> Option<Vec<f32>>;
    fn get_i32s(&self, key: &str) -> Option<Vec<i32>>;
}

/// GGUF metadata; a key of the wrong type reads as absent.
impl VocabMetadata for Gguf<'_> {
    fn get_str(&self, key: &str) -> Option<String> {
        Gguf::get_str(self, key).ok().map(str::to_string)
    }
    fn get_u32(&self, key: &str) -> Option<u32> {
        Gguf::get_u32(self, key).ok()
    }
    fn get_bool(&self, key: &str) -> Option<bool> {
        Gguf::get_bool(self, key).ok()
    }
    fn get_strings(&self, key: &str) -> Option<Vec<String>> {
        let strings = self.get_array(key).ok()?.to_str_vec().ok()?;
        Some(strings.into_iter().map(str::to_string).collect())
    }
    fn get_f32s(&self, key: &str) -> Option<Vec<f32>> {
        // llama.cpp also accepts integer scores
        let array = self.get_array(key).ok()?;
        let ints = || array.to_i32_vec().ok().map(|v| v.into_iter().map(|x| x as f32).collect());
        array.to_f32_vec().ok().or_else(ints)
    }
    fn get_i32s(&self, key: &str) -> Option<Vec<i32>> {
        self.get_array(key).ok()?.to_i32_vec().ok()
    }
}

impl VocabData {
    /// [`VocabData::from_metadata`] on a parsed GGUF file.
    pub fn from_gguf(gguf: &Gguf<'_>) -> Result<VocabData, TokenizerError> {
        VocabData::from_metadata(gguf)
    }

    /// Reads `tokenizer.ggml.*` and applies llama.cpp's defaults for absent keys:
    /// - SPM ("llama"): BOS 1, EOS 2, UNK 0, add BOS, no EOS, add space prefix.
    /// - BPE ("gpt2"): BOS = EOS = 11 (llama.cpp's odd default), no UNK, no BOS, no space prefix;
    ///   the llama3-style pre-tokenizers (and chameleon, tekken) add BOS.
    ///
    /// Special ids outside the vocabulary are dropped later, in [`super::Tokenizer::new`].
    pub fn from_metadata(meta: &impl VocabMetadata) -> Result<VocabData, TokenizerError> {
        let model =
            meta.get_str("tokenizer.ggml.model").ok_or(TokenizerError::MissingKey("tokenizer.ggml.model"))?;
        let pre = meta.get_str("tokenizer.ggml.pre").unwrap_or_default();
        let tokens = meta
            .get_strings("tokenizer.ggml.tokens")
            .ok_or(TokenizerError::MissingKey("tokenizer.ggml.tokens"))?;
        let scores = meta.get_f32s("tokenizer.ggml.scores").unwrap_or_default();
        let token_types = meta.get_i32s("tokenizer.ggml.token_type").unwrap_or_default();
        let merges = meta.get_strings("tokenizer.ggml.merges").unwrap_or_default();

        let (bos, eos, unk, add_bos, add_space_prefix) = match model.as_str() {
            "llama" => (Some(1), Some(2), Some(0), true, true),
            "gpt2" => (Some(11), Some(11), None, bpe_pre_adds_bos(&pre), false),
            other => return Err(TokenizerError::UnsupportedModel(other.to_string())),
        };
        if model == "gpt2" && merges.is_empty() {
            return Err(TokenizerError::MissingKey("tokenizer.ggml.merges"));
        }
        let id = |key: &str, default: Option<u32>| meta.get_u32(key).or(default);
        Ok(VocabData {
            bos: id("tokenizer.ggml.bos_token_id", bos),
            eos: id("tokenizer.ggml.eos_token_id", eos),
            eot: id("tokenizer.ggml.eot_token_id", None),
            unk: id("tokenizer.ggml.unknown_token_id", unk),
            pad: id("tokenizer.ggml.padding_token_id", None),
            add_bos: meta.get_bool("tokenizer.ggml.add_bos_token").unwrap_or(add_bos),
            add_eos: meta.get_bool("tokenizer.ggml.add_eos_token").unwrap_or(false),
            add_space_prefix: meta.get_bool("tokenizer.ggml.add_space_prefix").unwrap_or(add_space_prefix),
            model,
            pre,
            tokens,
            scores,
            token_types,
            merges,
        })
    }
}

/// BPE pre-tokenizers for which llama.cpp turns `add_bos` on before reading the GGUF flag.
fn bpe_pre_adds_bos(pre: &str) -> bool {
    matches!(
        pre,
        "llama3"
            | "llama-v3"
            | "llama-bpe"
            | "falcon3"
            | "falcon-h1"
            | "pixtral"
            | "midm-2.0"
            | "lfm2"
            | "jina-v5-nano"
            | "tekken"
            | "chameleon"
    )
}

/// Token attributes (llama.cpp's `llama_token_attr` bits we use).
pub(crate) mod attr {
    pub const UNDEFINED: u8 = 0;
    pub const UNKNOWN: u8 = 1 << 0;
    pub const UNUSED: u8 = 1 << 1;
    pub const NORMAL: u8 = 1 << 2;
    pub const CONTROL: u8 = 1 << 3;
    pub const USER_DEFINED: u8 = 1 << 4;
    pub const BYTE: u8 = 1 << 5;

    /// GGUF `token_type` -> attribute.
    pub fn from_token_type(token_type: i32) -> u8 {
        match token_type {
            1 => NORMAL,
            2 => UNKNOWN,
            3 => CONTROL,
            4 => USER_DEFINED,
            5 => UNUSED,
            6 => BYTE,
            _ => UNDEFINED,
        }
    }
}

/// Token texts that end generation (llama.cpp marks them EOG and control by text).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
];

/// Texts llama.cpp takes as the EOT token when `eot_token_id` is absent.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<end_of_utterance>",
];

/// Fill-in-the-middle pad / repo / file-separator tokens, also end-of-generation in llama.cpp.
const FIM_EOG_TEXTS: &[&str] = &[
    "<|fim_pad|>",
    "<fim-pad>",
    "<fim_pad>",
    "<PAD>",
    "[PAD]",
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
    "<|file_sep|>",
];

/// The resolved vocabulary shared by both tokenizer models.
pub(crate) struct Vocab {
    /// Token bytes by id (an empty GGUF token becomes "[EMPTY_<id>]", as in llama.cpp).
    pub texts: Vec<Box<[u8]>>,
    pub scores: Vec<f32>,
    pub attrs: Vec<u8>,
    pub token_to_id: HashMap<Box<[u8]>, u32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    pub eog: HashSet<u32>,
}

impl Vocab {
    pub fn new(data: &VocabData) -> Result<Vocab, TokenizerError> {
        let n = data.tokens.len();
        if n == 0 {
            return Err(TokenizerError::EmptyVocab);
        }
        if n > u32::MAX as usize {
            return Err(TokenizerError::BadMetadata("vocabulary larger than u32 ids".into()));
        }
        check_len("tokenizer.ggml.scores", data.scores.len(), n)?;
        check_len("tokenizer.ggml.token_type", data.token_types.len(), n)?;

        let mut texts = Vec::with_capacity(n);
        let mut token_to_id = HashMap::with_capacity(n);
        for (i, token) in data.tokens.iter().enumerate() {
            let text: Box<[u8]> = if token.is_empty() {
                format!("[EMPTY_{i}]").into_bytes().into()
            } else {
                token.as_bytes().into()
            };
            if let Some(first) = token_to_id.insert(text.clone(), i as u32) {
                return Err(TokenizerError::DuplicateToken { text: token.clone(), first, second: i as u32 });
            }
            texts.push(text);
        }
        let scores = if data.scores.is_empty() { vec![0.0; n] } else { data.scores[..n].to_vec() };
        let attrs = if data.token_types.is_empty() {
            vec![attr::NORMAL; n]
        } else {
            data.token_types[..n].iter().map(|&t| attr::from_token_type(t)).collect()
        };
        // An id past the vocabulary is dropped, as llama.cpp does with a warning.
        let in_range = |id: Option<u32>| id.filter(|&id| (id as usize) < n);
        let mut vocab = Vocab {
            texts,
            scores,
            attrs,
            token_to_id,
            bos: in_range(data.bos),
            eos: in_range(data.eos),
            eot: in_range(data.eot),
            unk: in_range(data.unk),
            pad: in_range(data.pad),
            eog: HashSet::new(),
        };
        if data.add_bos && vocab.bos.is_none() {
            return Err(TokenizerError::BadMetadata(
                "add_bos_token is true but there is no BOS token".into(),
            ));
        }
        if data.add_eos && vocab.eos.is_none() {
            return Err(TokenizerError::BadMetadata(
                "add_eos_token is true but there is no EOS token".into(),
            ));
        }
        vocab.mark_special_texts();
        Ok(vocab)
    }

    pub fn n_tokens(&self) -> usize {
        self.texts.len()
    }

    pub fn id_of(&self, text: &[u8]) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    pub fn attr(&self, id: u32) -> u8 {
        self.attrs.get(id as usize).copied().unwrap_or(attr::UNDEFINED)
    }

    /// llama.cpp's text-based fix-ups: find EOT and end-of-generation tokens by their text and
    /// force them to control type, take "unused" control tokens as unused, and treat gpt-oss's
    /// channel markers as user-defined (always rendered).
    fn mark_special_texts(&mut self) {
        let find = |vocab: &Vocab, texts: &[&str]| -> Vec<u32> {
            let mut ids: Vec<u32> = texts.iter().filter_map(|t| vocab.id_of(t.as_bytes())).collect();
            ids.sort_unstable();
            ids
        };
        if self.eot.is_none() {
            // llama.cpp takes whichever match its hash map yields first; we take the lowest id.
            self.eot = find(self, EOT_TEXTS).first().copied();
            if let Some(id) = self.eot {
                self.attrs[id as usize] |= attr::CONTROL;
            }
        }
        for id in find(self, FIM_EOG_TEXTS) {
            self.attrs[id as usize] |= attr::CONTROL;
            self.eog.insert(id);
        }
        for id in find(self, EOG_TEXTS) {
            self.attrs[id as usize] |= attr::CONTROL;
            self.eog.insert(id);
        }
        for (text, a) in self.texts.iter().zip(self.attrs.iter_mut()) {
            if *a & attr::CONTROL != 0 && text.windows(6).any(|w| w == b"unused") {
                *a |= attr::UNUSED;
            }
        }
        for id in find(self, &["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"]) {
            self.attrs[id as usize] = attr::USER_DEFINED;
        }
        self.eog.extend(self.eos.iter().chain(self.eot.iter()));
        // gpt-oss (o200k_harmony) and solar-open: "<|end|>" ends a message, not generation.
        let has = |t: &str| self.id_of(t.as_bytes()).is_some_and(|id| self.eog.contains(&id));
        if ((has("<|return|>") && has("<|call|>")) || (has("<|calls|>") && has("<|flush|>")))
            && has("<|end|>")
        {
            if let Some(end) = self.id_of(b"<|end|>") {
                self.eog.remove(&end);
                self.attrs[end as usize] = attr::USER_DEFINED;
            }
        }
    }
}

fn check_len(key: &'static str, len: usize, n_vocab: usize) -> Result<(), TokenizerError> {
    if len != 0 && len < n_vocab {
        return Err(TokenizerError::LengthMismatch { key, len, n_vocab });
    }
    Ok(())
}
