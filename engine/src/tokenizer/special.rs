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

use std::collections::{BTreeMap, VecDeque};

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

/// A trie node; its children are `edges[first_edge..first_edge + n_edges]`, few except near the
/// root.
#[derive(Clone, Copy, Default)]
struct Node {
    first_edge: u32,
    n_edges: u32,
    /// the special token (its rank) whose text ends here
    token: Option<u32>,
}

pub(crate) struct SpecialTokens {
    /// by rank: longest text first, ties by id (llama.cpp's `std::sort` leaves ties unspecified)
    tokens: Vec<SpecialToken>,
    /// byte trie of every special text; node 0 is the root
    trie: Vec<Node>,
    /// (byte, child node) of every node, each node's together and in byte order
    edges: Vec<(u8, u32)>,
    /// child of the root for each first byte (0: none), the hot lookup at every text position
    root: Box<[u32; 256]>,
}

impl SpecialTokens {
    /// The special tokens of `vocab` (llama.cpp's `cache_special_tokens`).
    pub fn new(vocab: &Vocab) -> SpecialTokens {
        let mut tokens: Vec<(u32, &str)> = (0..vocab.n_tokens() as u32)
            .filter(|&id| vocab.attr(id) & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0)
            // a token that is not UTF-8 can never occur in a &str
            .filter_map(|id| Some((id, std::str::from_utf8(vocab.text(id)).ok()?)))
            .collect();
        tokens.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));

        let texts: Vec<&[u8]> = tokens.iter().map(|&(_, text)| text.as_bytes()).collect();
        let (trie, edges) = build_trie(&texts);
        let mut root = Box::new([0u32; 256]);
        for &(byte, child) in &edges[..trie[0].n_edges as usize] {
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
        SpecialTokens { tokens, trie, edges, root }
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
                node = self.child(node, byte);
                i += 1;
            }
        }
        found
    }

    /// The child of `node` along `byte`, or 0 (the root: no child).
    fn child(&self, node: usize, byte: u8) -> usize {
        let Node { first_edge, n_edges, .. } = self.trie[node];
        let edges = &self.edges[first_edge as usize..][..n_edges as usize];
        edges.iter().find(|&&(b, _)| b == byte).map_or(0, |&(_, c)| c as usize)
    }
}

/// The byte trie of `texts` (unique, non-empty), the node where text `i` ends holding `i`.
///
/// Built breadth first over the texts in byte order, so that each node's edges are pushed
/// together and every node's children fit in one shared array (no heap block per node): a node
/// stands for the run of sorted texts that share its prefix, and its children split that run by
/// the byte that follows.
fn build_trie(texts: &[&[u8]]) -> (Vec<Node>, Vec<(u8, u32)>) {
    let mut sorted: Vec<u32> = (0..texts.len() as u32).collect();
    sorted.sort_unstable_by_key(|&i| texts[i as usize]);
    let text = |k: usize| texts[sorted[k] as usize];
    let mut nodes = vec![Node::default()];
    let mut edges = Vec::new();
    // (node, its run of `sorted`, the length of the prefix the run shares)
    let mut queue = VecDeque::from([(0usize, 0..sorted.len(), 0usize)]);
    while let Some((node, run, depth)) = queue.pop_front() {
        let mut k = run.start;
        // a text that ends here sorts first in its run, and only one can (texts are unique)
        if k < run.end && text(k).len() == depth {
            nodes[node].token = Some(sorted[k]);
            k += 1;
        }
        // every other text in the run is longer than `depth`, and they are sorted by this byte
        nodes[node].first_edge = edges.len() as u32;
        while k < run.end {
            let byte = text(k)[depth];
            let end = k + sorted[k..run.end].partition_point(|&i| texts[i as usize][depth] == byte);
            let child = nodes.len();
            nodes.push(Node::default());
            edges.push((byte, child as u32));
            queue.push_back((child, k..end, depth + 1));
            k = end;
        }
        nodes[node].n_edges = edges.len() as u32 - nodes[node].first_edge;
    }
    (nodes, edges)
}
