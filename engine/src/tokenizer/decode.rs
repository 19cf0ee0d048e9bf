//! Token -> bytes (llama.cpp's `token_to_piece`), and a streaming decoder that turns a sequence
//! of tokens into UTF-8 text while holding back characters split across tokens.

use super::spm::SPACE_MARK;
use super::string_table::{StringTable, TableFull};
use super::unicode::char_to_byte;
use super::vocab::{attr, Vocab};
use super::Tokenizer;

/// The piece of every token as `token_to_piece(id, special = true)` renders it.
pub(crate) fn pieces(vocab: &Vocab, byte_level: bool) -> Result<StringTable, TableFull> {
    // pieces are rarely longer than their texts (spaces and byte chars shrink), so this is the
    // usual size; the rare longer ones grow the arena once
    let mut table = StringTable::with_capacity(vocab.n_tokens(), vocab.texts().text_len());
    let mut piece = Vec::new();
    for id in 0..vocab.n_tokens() as u32 {
        piece.clear();
        write_piece(vocab, id, byte_level, &mut piece);
        table.push(&piece)?;
    }
    table.shrink_to_fit();
    Ok(table)
}

fn write_piece(vocab: &Vocab, id: u32, byte_level: bool, out: &mut Vec<u8>) {
    let text = vocab.text(id);
    let a = vocab.attr(id);
    if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
        out.extend_from_slice(text);
    } else if a & attr::NORMAL != 0 {
        if byte_level {
            decode_byte_level(text, out)
        } else {
            unescape_spaces(text, out)
        }
    } else if a & attr::BYTE != 0 {
        out.extend(byte_token_value(text));
    }
    // undefined or unused tokens render as nothing
}

/// SentencePiece: U+2581 back to ' ' (a text that is not UTF-8 is left as it is).
fn unescape_spaces(text: &[u8], out: &mut Vec<u8>) {
    if std::str::from_utf8(text).is_err() {
        out.extend_from_slice(text);
        return;
    }
    let mark = SPACE_MARK.as_bytes();
    let mut rest = text;
    while let Some(at) = rest.windows(mark.len()).position(|w| w == mark) {
        out.extend_from_slice(&rest[..at]);
        out.push(b' ');
        rest = &rest[at + mark.len()..];
    }
    out.extend_from_slice(rest);
}

/// GPT-2 byte level: each char stands for one byte. A char outside the 256-char alphabet is
/// written as llama.cpp does: `[UNK_BYTE_0x<utf8 hex><token text>]`.
fn decode_byte_level(text: &[u8], out: &mut Vec<u8>) {
    for c in String::from_utf8_lossy(text).chars() {
        match char_to_byte(c) {
            Some(b) => out.push(b),
            None => {
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(b"[UNK_BYTE_0x");
                for b in c.encode_utf8(&mut utf8).bytes() {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text);
                out.push(b']');
            }
        }
    }
}

/// `<0xAB>` -> 0xAB (llama.cpp reads the two hex digits at offset 3).
fn byte_token_value(text: &[u8]) -> Option<u8> {
    let hex = std::str::from_utf8(text.get(3..5)?).ok()?;
    u8::from_str_radix(hex, 16).ok()
}

/// Decodes tokens into text incrementally: `push` returns the newly completed text; bytes of a
/// character split across tokens wait for the rest. Invalid bytes become U+FFFD.
pub struct StreamDecoder<'a> {
    tokenizer: &'a Tokenizer,
    special: bool,
    pending: Vec<u8>,
}

impl<'a> StreamDecoder<'a> {
    /// `special`: render control tokens (as `token_to_piece(id, special)`).
    pub fn new(tokenizer: &'a Tokenizer, special: bool) -> StreamDecoder<'a> {
        StreamDecoder { tokenizer, special, pending: Vec::new() }
    }

    pub fn push(&mut self, id: u32) -> String {
        self.pending.extend_from_slice(self.tokenizer.token_to_piece(id, self.special));
        let mut text = String::new();
        let mut consumed = 0;
        loop {
            match std::str::from_utf8(&self.pending[consumed..]) {
                Ok(s) => {
                    text.push_str(s);
                    consumed = self.pending.len();
                    break;
                }
                Err(e) => {
                    let valid = consumed + e.valid_up_to();
                    // the first `valid_up_to` bytes are UTF-8, so this conversion is exact
                    text.push_str(&String::from_utf8_lossy(&self.pending[consumed..valid]));
                    match e.error_len() {
                        // an incomplete char at the end: keep it for the next token
                        None => {
                            consumed = valid;
                            break;
                        }
                        Some(n) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            consumed = valid + n;
                        }
                    }
                }
            }
        }
        self.pending.drain(..consumed);
        text
    }

    /// Flushes bytes still held back (an unfinished character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}
