//! A GPT-2 style byte-level BPE vocabulary small enough to read: the 256 byte characters (so any
//! text tokenizes), a few merges spelling "hello", and two control tokens.

use fovea_formats::Value;

use super::ModelFile;

/// GPT-2's `bytes_to_unicode`: printable Latin-1 bytes stand for themselves, every other byte for
/// U+0100 + its rank among the non-printable ones (so a space is 'Ġ', U+0120).
pub fn byte_char(b: u8) -> char {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable(b) {
        return char::from(b);
    }
    let rank = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(0x100 + rank).expect("U+0100..U+0144 are chars")
}

/// Ids of the tokens a test may want by name.
pub struct TinyVocab;

impl TinyVocab {
    /// Merges in rank order; each adds the token "left" + "right" after the 256 byte tokens.
    pub const MERGES: [&'static str; 5] = ["h e", "l l", "he ll", "hell o", "Ġ w"];
    /// "hello" is one token: the last of the merge chain.
    pub const HELLO: u32 = 256 + 3;
    /// "<|endoftext|>": BOS and EOS, a control token (ends generation).
    pub const ENDOFTEXT: u32 = 256 + 5;
    /// "<|im_start|>": a control token with no special role.
    pub const IM_START: u32 = 256 + 6;
    pub const N_TOKENS: usize = 256 + 7;

    pub fn tokens() -> Vec<String> {
        let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_char(b).to_string()).collect();
        tokens.extend(Self::MERGES.iter().map(|m| m.replace(' ', "")));
        tokens.push("<|endoftext|>".into());
        tokens.push("<|im_start|>".into());
        debug_assert_eq!(tokens.len(), Self::N_TOKENS);
        tokens
    }

    /// Adds the `tokenizer.ggml.*` keys (smollm's pre-tokenizer, no BOS added, as SmolLM2).
    pub fn add_to(file: &mut ModelFile) {
        let tokens = Self::tokens();
        let types: Vec<i32> =
            (0..tokens.len() as u32).map(|id| if id >= Self::ENDOFTEXT { 3 } else { 1 }).collect();
        file.set("tokenizer.ggml.model", Value::str("gpt2"))
            .set("tokenizer.ggml.pre", Value::str("smollm"))
            .set("tokenizer.ggml.tokens", Value::strings(&tokens))
            .set("tokenizer.ggml.token_type", Value::i32s(&types))
            .set("tokenizer.ggml.merges", Value::strings(&Self::MERGES))
            .set("tokenizer.ggml.bos_token_id", Value::U32(Self::ENDOFTEXT))
            .set("tokenizer.ggml.eos_token_id", Value::U32(Self::ENDOFTEXT));
    }
}
