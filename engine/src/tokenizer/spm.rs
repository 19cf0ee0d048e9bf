//! SentencePiece-style tokenizer (llama.cpp's `llm_tokenizer_spm`, used by Llama 2, TinyLlama,
//! Gemma): the text is split into UTF-8 chars, and the adjacent pair whose concatenation is the
//! highest-scoring vocabulary token is merged first (ties: leftmost), through a priority queue.
//! Chars left that are not tokens fall back to byte tokens `<0xXX>`.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::vocab::Vocab;

/// U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's visible space.
pub(crate) const SPACE_MARK: &str = "\u{2581}";

pub(crate) struct SpmModel {
    /// token for each byte value: `<0xXX>`, else the single byte itself, else UNK
    byte_tokens: Box<[Option<u32>; 256]>,
}

#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// A candidate merge; the max-heap pops the highest score, then the leftmost pair.
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    /// byte length of the merged text when queued (a changed length means stale)
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.total_cmp(&other.score).then(other.left.cmp(&self.left))
    }
}

impl SpmModel {
    pub fn new(vocab: &Vocab) -> SpmModel {
        let mut byte_tokens = Box::new([None; 256]);
        for (b, slot) in byte_tokens.iter_mut().enumerate() {
            let hex = format!("<0x{b:02X}>");
            // llama.cpp would throw for a byte with no token at all; we use UNK instead.
            *slot = vocab.id_of(hex.as_bytes()).or_else(|| vocab.id_of(&[b as u8])).or(vocab.unk);
        }
        SpmModel { byte_tokens }
    }

    /// Tokenizes one fragment, already space-escaped (' ' -> U+2581, with any prefix space).
    pub fn encode(&self, vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
        let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
        for (start, c) in text.char_indices() {
            let len = c.len_utf8();
            let i = symbols.len();
            symbols.push(Symbol {
                start,
                len,
                prev: i.checked_sub(1),
                next: Some(i + 1).filter(|_| start + len < text.len()),
            });
        }
        let bytes = text.as_bytes();
        let mut queue = BinaryHeap::new();
        for i in 1..symbols.len() {
            push_pair(vocab, bytes, &symbols, i - 1, i, &mut queue);
        }
        while let Some(bigram) = queue.pop() {
            let (l, r) = (symbols[bigram.left], symbols[bigram.right]);
            if l.len == 0 || r.len == 0 || l.len + r.len != bigram.size {
                continue;
            }
            symbols[bigram.left].len += r.len;
            symbols[bigram.left].next = r.next;
            symbols[bigram.right].len = 0;
            if let Some(next) = r.next {
                symbols[next].prev = Some(bigram.left);
            }
            if let Some(prev) = l.prev {
                push_pair(vocab, bytes, &symbols, prev, bigram.left, &mut queue);
            }
            if let Some(next) = r.next {
                push_pair(vocab, bytes, &symbols, bigram.left, next, &mut queue);
            }
        }
        let mut i = if symbols.is_empty() { None } else { Some(0) };
        while let Some(s) = i {
            let sym = symbols[s];
            let piece = &bytes[sym.start..sym.start + sym.len];
            // Only single chars can fail the lookup: every merge made a vocabulary token.
            match vocab.id_of(piece) {
                Some(id) => out.push(id),
                None => out.extend(piece.iter().filter_map(|&b| self.byte_tokens[b as usize])),
            }
            i = sym.next;
        }
    }
}

fn push_pair(
    vocab: &Vocab,
    text: &[u8],
    symbols: &[Symbol],
    left: usize,
    right: usize,
    queue: &mut BinaryHeap<Bigram>,
) {
    // adjacent symbols are contiguous in the text
    let (l, r) = (symbols[left], symbols[right]);
    let merged = &text[l.start..r.start + r.len];
    if let Some(id) = vocab.id_of(merged) {
        let score = vocab.score(id);
        queue.push(Bigram { score, left, right, size: merged.len() });
    }
}
