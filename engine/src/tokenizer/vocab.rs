//! The vocabulary as read from GGUF (`VocabData`), and the resolved form the tokenizers use
//! (`Vocab`: token bytes, attributes, lookup map, special ids, end-of-generation set).
//!
//! Defaults and special-token quirks follow llama.cpp's `llama_vocab::impl::load`.
//!
//! Token texts are read from the file straight into one [`StringTable`] and move from
//! `VocabData` into `Vocab` without a copy; see `string_table` for why.

use std::collections::HashSet;

use fovea_formats::gguf::Gguf;

use super::string_set::StringSet;
use super::string_table::{StringTable, TableFull};
use super::TokenizerError;

/// Tokenizer metadata of a GGUF file (`tokenizer.ggml.*`), with llama.cpp's defaults applied for
/// missing keys (see [`VocabData::from_metadata`]).
#[derive(Clone, Debug, Default)]
pub struct VocabData {
    /// `tokenizer.ggml.model`: "gpt2" (byte-level BPE) or "llama" (SentencePiece).
    pub model: String,
    /// `tokenizer.ggml.pre`: pre-tokenizer name ("smollm", "llama3", "qwen2", "default", ...).
    pub pre: String,
    /// Token texts by id (`tokenizer.ggml.tokens`).
    pub tokens: StringTable,
    /// Per-token scores (SPM merge priority); may be empty for gpt2.
    pub scores: Vec<f32>,
    /// Per-token type: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    pub token_types: Vec<i32>,
    /// BPE merges, "left right", rank = index.
    pub merges: StringTable,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    /// End of message (Llama 3.1 tool calls); ends generation like EOT.
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    pub fim: FimIds,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
}

/// Fill-in-the-middle token ids (`tokenizer.ggml.fim_*_token_id`); absent ones are found by text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FimIds {
    pub prefix: Option<u32>,
    pub suffix: Option<u32>,
    pub middle: Option<u32>,
    pub pad: Option<u32>,
    pub repo: Option<u32>,
    pub file_sep: Option<u32>,
}

/// Typed access to GGUF metadata, so `VocabData` can be read from any GGUF reader.
/// Each getter returns `None` when the key is absent or has another type.
pub trait VocabMetadata {
    fn get_str(&self, key: &str) -> Option<String>;
    fn get_u32(&self, key: &str) -> Option<u32>;
    fn get_bool(&self, key: &str) -> Option<bool>;
    /// `Err` only when the strings are too many bytes for a [`StringTable`] (4 GiB).
    fn get_strings(&self, key: &str) -> Result<Option<StringTable>, TableFull>;
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
    fn get_strings(&self, key: &str) -> Result<Option<StringTable>, TableFull> {
        let Ok(array) = self.get_array(key) else { return Ok(None) };
        let Ok(strings) = array.strings() else { return Ok(None) };
        // each element is stored as a u64 length and its bytes, so this is the exact text size
        let text_len = array.raw_bytes().len().saturating_sub(8 * array.len());
        let mut table = StringTable::with_capacity(array.len(), text_len);
        for s in strings {
            table.push(s)?;
        }
        Ok(Some(table))
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
            .get_strings("tokenizer.ggml.tokens")?
            .ok_or(TokenizerError::MissingKey("tokenizer.ggml.tokens"))?;
        let scores = meta.get_f32s("tokenizer.ggml.scores").unwrap_or_default();
        let token_types = meta.get_i32s("tokenizer.ggml.token_type").unwrap_or_default();
        let merges = meta.get_strings("tokenizer.ggml.merges")?.unwrap_or_default();

        let (bos, eos, unk, add_bos, add_space_prefix) = match model.as_str() {
            "llama" => (Some(1), Some(2), Some(0), true, true),
            "gpt2" => (Some(11), Some(11), None, bpe_pre_adds_bos(&pre), false),
            other => return Err(TokenizerError::UnsupportedModel(other.to_string())),
        };
        if model == "gpt2" && merges.is_empty() {
            return Err(TokenizerError::MissingKey("tokenizer.ggml.merges"));
        }
        let id = |key: &str, default: Option<u32>| meta.get_u32(key).or(default);
        // the deprecated prefix/suffix/middle keys win when both are present, as in llama.cpp
        let fim = FimIds {
            prefix: id("tokenizer.ggml.prefix_token_id", id("tokenizer.ggml.fim_pre_token_id", None)),
            suffix: id("tokenizer.ggml.suffix_token_id", id("tokenizer.ggml.fim_suf_token_id", None)),
            middle: id("tokenizer.ggml.middle_token_id", id("tokenizer.ggml.fim_mid_token_id", None)),
            pad: id("tokenizer.ggml.fim_pad_token_id", None),
            repo: id("tokenizer.ggml.fim_rep_token_id", None),
            file_sep: id("tokenizer.ggml.fim_sep_token_id", None),
        };
        Ok(VocabData {
            bos: id("tokenizer.ggml.bos_token_id", bos),
            eos: id("tokenizer.ggml.eos_token_id", eos),
            eot: id("tokenizer.ggml.eot_token_id", None),
            eom: id("tokenizer.ggml.eom_token_id", None),
            unk: id("tokenizer.ggml.unknown_token_id", unk),
            pad: id("tokenizer.ggml.padding_token_id", None),
            fim,
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
    // paddleocr; Gemma 3 has it too (user-defined), so there it ends generation and, being
    // control now, is not matched in text without `parse_special`
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<\u{ff5c}end\u{2581}of\u{2581}sentence\u{ff5c}>",
    "[e~[",
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
    "<\u{ff5c}end\u{2581}of\u{2581}sentence\u{ff5c}>",
    "<end_of_utterance>",
];

const EOM_TEXTS: &[&str] = &["<|eom_id|>"];

/// Fill-in-the-middle token texts by kind, taken when the GGUF has no id for the kind.
const FIM_PREFIX_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<\u{ff5c}fim\u{2581}begin\u{ff5c}>",
    "<PRE>",
    "\u{2581}<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUFFIX_TEXTS: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<\u{ff5c}fim\u{2581}hole\u{ff5c}>",
    "<SUF>",
    "\u{2581}<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MIDDLE_TEXTS: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<\u{ff5c}fim\u{2581}end\u{ff5c}>",
    "<MID>",
    "\u{2581}<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REPO_TEXTS: &[&str] = &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"];
const FIM_FILE_SEP_TEXTS: &[&str] = &["<|file_sep|>"];

/// The resolved vocabulary shared by both tokenizer models.
pub(crate) struct Vocab {
    /// Token bytes by id, and id by bytes (an empty GGUF token becomes "[EMPTY_<id>]", as in
    /// llama.cpp).
    texts: StringSet,
    /// SPM merge priority by id; empty when the file has none (BPE models), then all 0.
    scores: Vec<f32>,
    pub attrs: Vec<u8>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    pub fim: FimIds,
    pub eog: HashSet<u32>,
}

impl Vocab {
    /// Takes the token table and scores of `data` over rather than copying them.
    pub fn new(data: VocabData) -> Result<Vocab, TokenizerError> {
        let n = data.tokens.len();
        if n == 0 {
            return Err(TokenizerError::EmptyVocab);
        }
        if n > u32::MAX as usize {
            return Err(TokenizerError::BadMetadata("vocabulary larger than u32 ids".into()));
        }
        check_len("tokenizer.ggml.scores", data.scores.len(), n)?;
        check_len("tokenizer.ggml.token_type", data.token_types.len(), n)?;

        let texts = StringSet::from_table(name_empty_tokens(data.tokens)?).map_err(|d| {
            TokenizerError::DuplicateToken {
                text: String::from_utf8_lossy(&d.text).into_owned(),
                first: d.first,
                second: d.second,
            }
        })?;
        let mut scores = data.scores;
        scores.truncate(n);
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
            bos: in_range(data.bos),
            eos: in_range(data.eos),
            eot: in_range(data.eot),
            eom: in_range(data.eom),
            unk: in_range(data.unk),
            pad: in_range(data.pad),
            fim: FimIds {
                prefix: in_range(data.fim.prefix),
                suffix: in_range(data.fim.suffix),
                middle: in_range(data.fim.middle),
                pad: in_range(data.fim.pad),
                repo: in_range(data.fim.repo),
                file_sep: in_range(data.fim.file_sep),
            },
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

    /// The bytes of token `id`; panics past the vocabulary, like slice indexing.
    pub fn text(&self, id: u32) -> &[u8] {
        self.texts.text(id)
    }

    /// Every token's bytes, by id.
    pub fn texts(&self) -> &StringTable {
        self.texts.table()
    }

    pub fn id_of(&self, text: &[u8]) -> Option<u32> {
        self.texts.id_of(text)
    }

    pub fn score(&self, id: u32) -> f32 {
        self.scores.get(id as usize).copied().unwrap_or(0.0)
    }

    pub fn attr(&self, id: u32) -> u8 {
        self.attrs.get(id as usize).copied().unwrap_or(attr::UNDEFINED)
    }

    /// llama.cpp's text-based fix-ups, in its order:
    /// 1. special ids the GGUF lacks (EOT, EOM, FIM) are found by text and forced to control;
    /// 2. control tokens whose text says "unused" are unused;
    /// 3. end-of-generation tokens: FIM pad/repo/separator, the EOG texts (forced to control),
    ///    EOS, EOT and EOM; gpt-oss's channel markers are user-defined (always rendered);
    /// 4. two vocabulary-specific exceptions (gpt-oss's `<|end|>`, gemma4/plamo's `</s>`).
    fn mark_special_texts(&mut self) {
        fill_by_text(&mut self.eot, &self.texts, &mut self.attrs, EOT_TEXTS);
        fill_by_text(&mut self.eom, &self.texts, &mut self.attrs, EOM_TEXTS);
        let fim = &mut self.fim;
        for (slot, texts) in [
            (&mut fim.prefix, FIM_PREFIX_TEXTS),
            (&mut fim.suffix, FIM_SUFFIX_TEXTS),
            (&mut fim.middle, FIM_MIDDLE_TEXTS),
            (&mut fim.pad, FIM_PAD_TEXTS),
            (&mut fim.repo, FIM_REPO_TEXTS),
            (&mut fim.file_sep, FIM_FILE_SEP_TEXTS),
        ] {
            fill_by_text(slot, &self.texts, &mut self.attrs, texts);
        }

        for (text, a) in self.texts.table().iter().zip(self.attrs.iter_mut()) {
            if *a & attr::CONTROL != 0 && text.windows(6).any(|w| w == b"unused") {
                *a |= attr::UNUSED;
            }
        }

        self.eog.extend([self.fim.pad, self.fim.repo, self.fim.file_sep].into_iter().flatten());
        for text in EOG_TEXTS {
            if let Some(id) = self.id_of(text.as_bytes()) {
                self.attrs[id as usize] |= attr::CONTROL;
                self.eog.insert(id);
            }
        }
        for text in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(id) = self.id_of(text.as_bytes()) {
                self.attrs[id as usize] = attr::USER_DEFINED;
            }
        }
        self.eog.extend([self.eos, self.eot, self.eom].into_iter().flatten());

        let eog_id = |vocab: &Vocab, t: &str| vocab.id_of(t.as_bytes()).filter(|id| vocab.eog.contains(id));
        let has = |vocab: &Vocab, t: &str| eog_id(vocab, t).is_some();
        // gpt-oss (o200k_harmony) and solar-open: "<|end|>" ends a message, not generation.
        let has_call = has(self, "<|call|>") || has(self, "<|calls|>");
        if (has(self, "<|return|>") || has(self, "<|flush|>")) && has_call && has(self, "<|end|>") {
            if let Some(end) = self.id_of(b"<|end|>") {
                self.eog.remove(&end);
                self.attrs[end as usize] = attr::USER_DEFINED;
            }
        }
        // gemma4 and plamo: "</s>" is ordinary text there.
        if has(self, "<|tool_response>") || has(self, "<|plamo:eos|>") {
            if let Some(s) = eog_id(self, "</s>") {
                self.eog.remove(&s);
                self.attrs[s as usize] = attr::NORMAL;
            }
        }
    }
}

/// Sets an absent special id to the token with one of `texts` and makes that token control.
/// llama.cpp takes whichever match its hash map yields first; we take the lowest id.
fn fill_by_text(slot: &mut Option<u32>, vocab_texts: &StringSet, attrs: &mut [u8], texts: &[&str]) {
    if slot.is_some() {
        return;
    }
    *slot = texts.iter().filter_map(|t| vocab_texts.id_of(t.as_bytes())).min();
    if let Some(id) = *slot {
        attrs[id as usize] |= attr::CONTROL;
    }
}

/// llama.cpp names an empty token "[EMPTY_<id>]" (it would otherwise never be produced and
/// every empty token would collide). Real vocabularies have none, so the table moves through as
/// it is; only one with an empty token is rebuilt.
fn name_empty_tokens(tokens: StringTable) -> Result<StringTable, TableFull> {
    if tokens.iter().all(|t| !t.is_empty()) {
        return Ok(tokens);
    }
    let mut named = StringTable::with_capacity(tokens.len(), tokens.text_len());
    for (id, text) in tokens.iter().enumerate() {
        if text.is_empty() {
            named.push(format!("[EMPTY_{id}]"))?;
        } else {
            named.push(text)?;
        }
    }
    Ok(named)
}

fn check_len(key: &'static str, len: usize, n_vocab: usize) -> Result<(), TokenizerError> {
    if len != 0 && len < n_vocab {
        return Err(TokenizerError::LengthMismatch { key, len, n_vocab });
    }
    Ok(())
}
