//! Splitting text on special-token strings before tokenizing (llama.cpp's
//! `tokenizer_st_partition`).
//!
//! Special tokens are the control, user-defined and unknown ones. They are tried longest text
//! first; each one cuts every remaining text fragment at all its (non-overlapping, left to right)
//! occurrences. With `parse_special == false` control and unknown tokens are skipped, but
//! user-defined tokens still match, as in Hugging Face tokenizers.

use super::vocab::{attr, Vocab};

/// A piece of the input: text still to tokenize, or a special token already recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

pub(crate) struct SpecialToken {
    id: u32,
    text: Box<str>,
    /// control or unknown: matched only with `parse_special`
    needs_parse_special: bool,
}

/// The special tokens of `vocab`, longest text first (ties by id, so the order is stable).
pub(crate) fn special_tokens(vocab: &Vocab) -> Vec<SpecialToken> {
    let mut specials: Vec<SpecialToken> = (0..vocab.n_tokens() as u32)
        .filter(|&id| vocab.attr(id) & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0)
        .filter_map(|id| {
            // a token that is not UTF-8 can never occur in a &str
            let text = std::str::from_utf8(&vocab.texts[id as usize]).ok()?;
            let needs_parse_special = vocab.attr(id) & (attr::CONTROL | attr::UNKNOWN) != 0;
            Some(SpecialToken { id, text: text.into(), needs_parse_special })
        })
        .collect();
    specials.sort_by(|a, b| b.text.len().cmp(&a.text.len()).then(a.id.cmp(&b.id)));
    specials
}

pub(crate) fn partition<'t>(
    text: &'t str,
    specials: &[SpecialToken],
    parse_special: bool,
) -> Vec<Fragment<'t>> {
    let mut fragments = Vec::new();
    if text.is_empty() {
        return fragments;
    }
    fragments.push(Fragment::Text(text));
    let mut next = Vec::new();
    for special in specials {
        if special.needs_parse_special && !parse_special {
            continue;
        }
        let needle: &str = &special.text;
        // cheap skip: most special tokens occur nowhere
        if !fragments.iter().any(|f| matches!(f, Fragment::Text(t) if t.contains(needle))) {
            continue;
        }
        next.clear();
        for &fragment in &fragments {
            let Fragment::Text(mut rest) = fragment else {
                next.push(fragment);
                continue;
            };
            while let Some(at) = rest.find(needle) {
                if at > 0 {
                    next.push(Fragment::Text(&rest[..at]));
                }
                next.push(Fragment::Token(special.id));
                rest = &rest[at + needle.len()..];
            }
            if !rest.is_empty() {
                next.push(Fragment::Text(rest));
            }
        }
        std::mem::swap(&mut fragments, &mut next);
    }
    fragments
}
