//! Splitting text on special-token strings before tokenizing (llama.cpp's
//! `tokenizer_st_partition`).
//!
//! Special tokens are the control, user-defined and unknown ones. llama.cpp tries them longest
//! text first; each one cuts every remaining text fragment at all its (non-overlapping, left to
//! right) occurrences. With `parse_special == false` control and unknown tokens are skipped, but
//! user-defined tokens still match, as in Hugging Face tokenizers.
//!
//! Searching the text once per special token costs (number of specials) x (text length), and
//! Gemma has thousands. Instead one pass through a byte trie of all special texts finds every
//! occurrence; they are then taken in llama.cpp's priority order, each only if it lies in text no
//! earlier one took. That gives the same cuts: an occurrence llama.cpp finds in a fragment is
//! exactly one that overlaps no token taken before it.

use std::collections::BTreeMap;

use super::vocab::{attr, Vocab};

/// A piece of the input: text still to tokenize, or a special token already recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

struct SpecialToken {
    id: u32,
    /// byte length of the text
    len: usize,
    /// control or unknown: matched only with `parse_special`
    needs_parse_special: bool,
}

/// A trie node; `children` are (byte, node index), few per node except near the root.
#[derive(Default)]
struct Node {
    children: Vec<(u8, u32)>,
    /// the special token (its rank) whose text ends here
    token: Option<u32>,
}

pub(crate) struct SpecialTokens {
    /// by rank: longest text first, ties by id (llama.cpp's `std::sort` leaves ties unspecified)
    tokens: Vec<SpecialToken>,
    /// byte trie of every special text; node 0 is the root
    trie: Vec<Node>,
    /// child of the root for each first byte (0: none), the hot lookup at every text position
    root: Box<[u32; 256]>,
}

impl SpecialTokens {
    /// The special tokens of `vocab` (llama.cpp's `cache_special_tokens`).
    pub fn new(vocab: &Vocab) -> SpecialTokens {
        let mut tokens: Vec<(u32, &str)> = (0..vocab.n_tokens() as u32)
            .filter(|&id| vocab.attr(id) & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0)
            // a token that is not UTF-8 can never occur in a &str
            .filter_map(|id| Some((id, std::str::from_utf8(&vocab.texts[id as usize]).ok()?)))
            .collect();
        tokens.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));

        let mut trie = vec![Node::default()];
        for (rank, &(_, text)) in tokens.iter().enumerate() {
            let mut node = 0usize;
            for &byte in text.as_bytes() {
                node = match trie[node].children.iter().find(|&&(b, _)| b == byte) {
                    Some(&(_, child)) => child as usize,
                    None => {
                        trie.push(Node::default());
                        let child = trie.len() - 1;
                        trie[node].children.push((byte, child as u32));
                        child
                    }
                };
            }
            // texts are unique in a vocabulary, so no node ends two tokens
            trie[node].token = Some(rank as u32);
        }
        let mut root = Box::new([0u32; 256]);
        for &(byte, child) in &trie[0].children {
            root[byte as usize] = child;
        }
        let tokens = tokens
            .into_iter()
            .map(|(id, text)| SpecialToken {
                id,
                len: text.len(),
                needs_parse_special: vocab.attr(id) & (attr::CONTROL | attr::UNKNOWN) != 0,
            })
            .collect();
        SpecialTokens { tokens, trie, root }
    }

    /// `text` cut into text fragments and the special tokens found in it.
    pub fn partition<'t>(&self, text: &'t str, parse_special: bool) -> Vec<Fragment<'t>> {
        let mut fragments = Vec::new();
        if text.is_empty() {
            return fragments;
        }
        let mut found = self.occurrences(text.as_bytes(), parse_special);
        // llama.cpp's order: token by token (rank), each left to right
        found.sort_unstable();

        // taken occurrences, disjoint: start -> (end, rank)
        let mut taken: BTreeMap<usize, (usize, u32)> = BTreeMap::new();
        for (rank, start) in found {
            let end = start + self.tokens[rank as usize].len;
            // Of the disjoint taken ranges starting before `end`, only the last can reach `start`.
            let overlaps = taken.range(..end).next_back().is_some_and(|(_, &(e, _))| e > start);
            if !overlaps {
                taken.insert(start, (end, rank));
            }
        }

        let mut at = 0;
        for (start, (end, rank)) in taken {
            if start > at {
                fragments.push(Fragment::Text(&text[at..start]));
            }
            fragments.push(Fragment::Token(self.tokens[rank as usize].id));
            at = end;
        }
        if at < text.len() {
            fragments.push(Fragment::Text(&text[at..]));
        }
        fragments
    }

    /// Every (rank, start) where a special token allowed by `parse_special` occurs in `text`.
    /// A valid UTF-8 token found in valid UTF-8 text starts and ends on char boundaries.
    fn occurrences(&self, text: &[u8], parse_special: bool) -> Vec<(u32, usize)> {
        let mut found = Vec::new();
        for start in 0..text.len() {
            let mut node = self.root[text[start] as usize] as usize;
            let mut i = start + 1;
            while node != 0 {
                if let Some(rank) = self.trie[node].token {
                    if parse_special || !self.tokens[rank as usize].needs_parse_special {
                        found.push((rank, start));
                    }
                }
                let Some(&byte) = text.get(i) else { break };
                node = self.trie[node]
                    .children
                    .iter()
                    .find(|&&(b, _)| b == byte)
                    .map_or(0, |&(_, c)| c as usize);
                i += 1;
            }
        }
        found
    }
}
