//! GPT-2 byte-level BPE (llama.cpp's `llm_tokenizer_bpe_session`).
//!
//! Each pre-tokenized word is byte-encoded (every UTF-8 byte -> one visible char), split into
//! chars, and adjacent symbols are merged by lowest merge rank first (ties: leftmost) through a
//! priority queue, so a word of n chars costs O(n log n). Strings are interned: every string that
//! appears in a merge gets a piece id, and `(left piece, right piece) -> (rank, merged piece)` is a
//! hash lookup with no allocation.
//!
//! A piece id is the token id when the string is a vocabulary token (in real vocabularies every
//! merge string is one), else `n_vocab` + its index among the few others. The vocabulary's own
//! index thus serves both, and a final symbol's token id is its piece id, with no lookup.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

// foldhash, as in `StringSet`: every candidate pair is a lookup
use hashbrown::HashMap;

use super::pretokenize::PreTokenizer;
use super::string_set::StringSet;
use super::string_table::StringTable;
use super::unicode::byte_to_char;
use super::vocab::Vocab;
use super::TokenizerError;

pub(crate) struct BpeModel {
    pre: PreTokenizer,
    /// piece ids below this are token ids
    n_vocab: u32,
    /// merge strings that are not tokens; piece id `n_vocab + i` is string `i`
    others: StringSet,
    /// (left piece, right piece) -> (rank, merged piece)
    merges: HashMap<(u32, u32), (u32, u32)>,
}

/// A symbol of the word being merged: a byte range of the encoded word.
#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    /// piece id if this text appears in any merge
    piece: Option<u32>,
    prev: Option<usize>,
    next: Option<usize>,
}

impl BpeModel {
    /// `merges`: "left right" lines, rank = index.
    pub fn new(vocab: &Vocab, merges: &StringTable, pre: PreTokenizer) -> Result<BpeModel, TokenizerError> {
        let mut model = BpeModel {
            pre,
            n_vocab: vocab.n_tokens() as u32,
            others: StringSet::new(),
            merges: HashMap::with_capacity(merges.len()),
        };
        let mut merged = Vec::new();
        for (rank, merge) in merges.iter().enumerate() {
            // llama.cpp splits at the first space after the first byte; a line without one
            // merges "" with "".
            // (searching bytes: the first char may be multi-byte, and ' ' is always a boundary)
            let space = merge.iter().skip(1).position(|&b| b == b' ').map(|i| i + 1);
            let (left, right) = match space {
                Some(i) => (&merge[..i], &merge[i + 1..]),
                None => (&[][..], &[][..]),
            };
            merged.clear();
            merged.extend_from_slice(left);
            merged.extend_from_slice(right);
            let l = model.intern(vocab, left)?;
            let r = model.intern(vocab, right)?;
            let m = model.intern(vocab, &merged)?;
            // the first (lowest-rank) occurrence of a pair wins, as with std::map::emplace
            model.merges.entry((l, r)).or_insert((rank as u32, m));
        }
        Ok(model)
    }

    fn intern(&mut self, vocab: &Vocab, s: &[u8]) -> Result<u32, TokenizerError> {
        if let Some(id) = vocab.id_of(s) {
            return Ok(id);
        }
        let other = self.others.intern(s)?;
        self.n_vocab
            .checked_add(other)
            .ok_or_else(|| TokenizerError::BadMetadata("more merge strings than u32 ids".into()))
    }

    /// The piece id of `s`, if it is a token or a merge string (`intern` checked that the sum fits).
    fn piece(&self, vocab: &Vocab, s: &[u8]) -> Option<u32> {
        vocab.id_of(s).or_else(|| Some(self.n_vocab + self.others.id_of(s)?))
    }

    /// Tokenizes one text fragment (no special tokens in it), appending ids to `out`.
    pub fn encode(&self, vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
        let mut encoded = String::new();
        let mut symbols = Vec::new();
        let mut queue = BinaryHeap::new();
        for word in self.pre.split(text) {
            encoded.clear();
            encoded.extend(word.bytes().map(byte_to_char));
            if self.pre.ignore_merges {
                if let Some(id) = vocab.id_of(encoded.as_bytes()) {
                    out.push(id);
                    continue;
                }
            }
            self.merge_word(vocab, &encoded, &mut symbols, &mut queue);
            self.emit_symbols(vocab, &encoded, &symbols, out);
        }
    }

    fn merge_word(
        &self,
        vocab: &Vocab,
        word: &str,
        symbols: &mut Vec<Symbol>,
        queue: &mut BinaryHeap<Reverse<(u32, usize, usize)>>,
    ) {
        symbols.clear();
        queue.clear();
        for (start, c) in word.char_indices() {
            let len = c.len_utf8();
            let i = symbols.len();
            symbols.push(Symbol {
                start,
                len,
                piece: self.piece(vocab, &word.as_bytes()[start..start + len]),
                prev: i.checked_sub(1),
                next: Some(i + 1).filter(|_| start + len < word.len()),
            });
        }
        for i in 1..symbols.len() {
            self.push_pair(symbols, i - 1, i, queue);
        }
        // queue entries: (rank, left, right), lowest rank then leftmost first
        while let Some(Reverse((rank, left, right))) = queue.pop() {
            let (l, r) = (symbols[left], symbols[right]);
            if l.len == 0 || r.len == 0 || l.next != Some(right) {
                continue;
            }
            // Stale if either side has grown since the pair was queued: its texts, and so its
            // rank, differ now (each rank is one merge line, so equal rank = equal texts).
            let Some(&(now_rank, merged)) = l.piece.zip(r.piece).and_then(|pair| self.merges.get(&pair))
            else {
                continue;
            };
            if now_rank != rank {
                continue;
            }
            symbols[left].len += r.len;
            symbols[left].piece = Some(merged);
            symbols[left].next = r.next;
            symbols[right].len = 0;
            if let Some(next) = r.next {
                symbols[next].prev = Some(left);
            }
            if let Some(prev) = l.prev {
                self.push_pair(symbols, prev, left, queue);
            }
            if let Some(next) = r.next {
                self.push_pair(symbols, left, next, queue);
            }
        }
    }

    fn push_pair(
        &self,
        symbols: &[Symbol],
        left: usize,
        right: usize,
        queue: &mut BinaryHeap<Reverse<(u32, usize, usize)>>,
    ) {
        let pair = symbols[left].piece.zip(symbols[right].piece);
        if let Some(&(rank, _)) = pair.and_then(|pair| self.merges.get(&pair)) {
            queue.push(Reverse((rank, left, right)));
        }
    }

    /// Final symbols -> token ids; a symbol that is not a token falls back to its single bytes,
    /// and bytes that are not tokens either are dropped (llama.cpp does the same).
    fn emit_symbols(&self, vocab: &Vocab, word: &str, symbols: &[Symbol], out: &mut Vec<u32>) {
        let bytes = word.as_bytes();
        let mut i = if symbols.is_empty() { None } else { Some(0) };
        while let Some(s) = i {
            let sym = symbols[s];
            // a symbol whose text is a token has that token's id as its piece (module comment)
            match sym.piece.filter(|&p| p < self.n_vocab) {
                Some(id) => out.push(id),
                None => {
                    let text = &bytes[sym.start..sym.start + sym.len];
                    out.extend(text.iter().filter_map(|b| vocab.id_of(std::slice::from_ref(b))))
                }
            }
            i = sym.next;
        }
    }
}
