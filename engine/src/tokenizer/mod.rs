//! Tokenizers built from a GGUF vocabulary that reproduce llama.cpp token for token.
//!
//! - `vocab`: GGUF metadata (`VocabData`) and the resolved vocabulary (attributes, special ids).
//! - `string_table` + `string_set`: every string table (texts, pieces, merges) in one byte
//!   arena with u32 offsets, looked up through a hash table of ids; no heap block per token.
//! - `special`: cutting the text at special-token strings (`parse_special`).
//! - `pretokenize` + `bpe`: GPT-2 byte-level BPE ("gpt2" models, e.g. SmolLM2, Llama 3, Qwen 2).
//! - `spm`: SentencePiece-style merges by score ("llama" models, e.g. Llama 2, Gemma).
//! - `decode`: token -> bytes, and a streaming UTF-8 decoder.
//! - `unicode`: code point classes as llama.cpp sees them, GPT-2's byte alphabet.

mod bpe;
mod decode;
mod pretokenize;
mod special;
mod spm;
mod string_set;
mod string_table;
mod unicode;
mod unicode_table;
mod vocab;

pub use decode::StreamDecoder;
pub use string_table::{StringTable, TableFull};
pub use vocab::{FimIds, VocabData, VocabMetadata};

use bpe::BpeModel;
use pretokenize::PreTokenizer;
use special::{Fragment, SpecialTokens};
use spm::{SpmModel, SPACE_MARK};
use vocab::Vocab;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("unsupported tokenizer model '{0}' (supported: gpt2, llama)")]
    UnsupportedModel(String),
    #[error("missing GGUF key {0}")]
    MissingKey(&'static str),
    #[error("bad tokenizer metadata: {0}")]
    BadMetadata(String),
    #[error("empty vocabulary")]
    EmptyVocab,
    #[error("{key} has {len} entries for {n_vocab} tokens")]
    LengthMismatch { key: &'static str, len: usize, n_vocab: usize },
    #[error("duplicate token {text:?} (ids {first} and {second})")]
    DuplicateToken { text: String, first: u32, second: u32 },
}

impl From<TableFull> for TokenizerError {
    fn from(e: TableFull) -> TokenizerError {
        TokenizerError::BadMetadata(e.to_string())
    }
}

enum Model {
    Bpe(BpeModel),
    Spm(SpmModel),
}

pub struct Tokenizer {
    vocab: Vocab,
    model: Model,
    specials: SpecialTokens,
    /// `token_to_piece(id, special = true)` for every id
    pieces: StringTable,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    /// the `pre` name we did not know and replaced by "default", as llama.cpp does for a missing one
    pre_fallback: Option<String>,
}

impl Tokenizer {
    pub fn new(mut data: VocabData) -> Result<Tokenizer, TokenizerError> {
        // the vocabulary takes the token table over; what the models need is taken out first
        let (model_name, pre_name) = (std::mem::take(&mut data.model), std::mem::take(&mut data.pre));
        let merges = std::mem::take(&mut data.merges);
        let (add_bos, add_eos, add_space_prefix) = (data.add_bos, data.add_eos, data.add_space_prefix);
        let vocab = Vocab::new(data)?;
        let mut pre_fallback = None;
        let model = match model_name.as_str() {
            "gpt2" => {
                let pre = PreTokenizer::for_name(&pre_name).unwrap_or_else(|| {
                    pre_fallback = Some(pre_name.clone());
                    PreTokenizer::default_pre()
                });
                Model::Bpe(BpeModel::new(&vocab, &merges, pre)?)
            }
            "llama" => Model::Spm(SpmModel::new(&vocab)),
            other => return Err(TokenizerError::UnsupportedModel(other.to_string())),
        };
        // the merge lines are interned in the model now: free them before the pieces are built
        drop(merges);
        let byte_level = matches!(model, Model::Bpe(_));
        Ok(Tokenizer {
            specials: SpecialTokens::new(&vocab),
            pieces: decode::pieces(&vocab, byte_level)?,
            vocab,
            model,
            add_bos,
            add_eos,
            // llama.cpp forces this off for BPE vocabularies
            add_space_prefix: add_space_prefix && !byte_level,
            pre_fallback,
        })
    }

    /// `llama_tokenize(text, add_special, parse_special)`.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::new();
        if add_special && self.add_bos {
            out.extend(self.vocab.bos);
        }
        let fragments = self.specials.partition(text, parse_special);
        // SPM prefixes a space to the first text fragment and to any text after a special token.
        let mut after_special = true;
        for fragment in fragments {
            match (fragment, &self.model) {
                (Fragment::Token(id), _) => {
                    out.push(id);
                    after_special = true;
                }
                (Fragment::Text(t), Model::Bpe(bpe)) => bpe.encode(&self.vocab, t, &mut out),
                (Fragment::Text(t), Model::Spm(spm)) => {
                    let prefix = if self.add_space_prefix && after_special { " " } else { "" };
                    let escaped = format!("{prefix}{t}").replace(' ', SPACE_MARK);
                    spm.encode(&self.vocab, &escaped, &mut out);
                    after_special = false;
                }
            }
        }
        if add_special && self.add_eos {
            out.extend(self.vocab.eos);
        }
        out
    }

    /// `llama_token_to_piece(id, special)`: the raw bytes of a token (possibly partial UTF-8).
    /// Control and unknown tokens render as nothing unless `special`; an unknown id as nothing.
    pub fn token_to_piece(&self, id: u32, special: bool) -> &[u8] {
        let hidden = vocab::attr::CONTROL | vocab::attr::UNKNOWN;
        if !special && self.vocab.attr(id) & hidden != 0 {
            return &[];
        }
        self.pieces.get(id).unwrap_or_default()
    }

    /// Concatenated pieces, lossily decoded (for whole sequences; stream with [`StreamDecoder`]).
    pub fn decode(&self, ids: &[u32], special: bool) -> String {
        let bytes: Vec<u8> = ids.iter().flat_map(|&id| self.token_to_piece(id, special)).copied().collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    pub fn stream_decoder(&self, special: bool) -> StreamDecoder<'_> {
        StreamDecoder::new(self, special)
    }

    pub fn n_vocab(&self) -> usize {
        self.vocab.n_tokens()
    }

    pub fn bos(&self) -> Option<u32> {
        self.vocab.bos
    }

    pub fn eos(&self) -> Option<u32> {
        self.vocab.eos
    }

    pub fn eot(&self) -> Option<u32> {
        self.vocab.eot
    }

    pub fn unk(&self) -> Option<u32> {
        self.vocab.unk
    }

    pub fn pad(&self) -> Option<u32> {
        self.vocab.pad
    }

    /// End of generation: EOS, EOT and the usual end-of-turn tokens (llama.cpp's `special_eog_ids`).
    pub fn is_eog(&self, id: u32) -> bool {
        self.vocab.eog.contains(&id)
    }

    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    pub fn add_eos(&self) -> bool {
        self.add_eos
    }

    /// The id of the token whose text is exactly `text` (vocabulary spelling, e.g. "<|im_end|>").
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.id_of(text.as_bytes())
    }

    /// The pre-tokenizer name this vocabulary asked for if we replaced it by "default".
    pub fn pre_fallback(&self) -> Option<&str> {
        self.pre_fallback.as_deref()
    }
}

#[cfg(test)]
mod tests;
