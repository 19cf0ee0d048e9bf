//! BPE pre-tokenizers: split text into words before merging, exactly as llama.cpp's
//! `unicode_regex_split` does for each `tokenizer.ggml.pre`, written as hand-rolled scanners
//! (no regex engine).
//!
//! A pre-tokenizer is a list of stages. Each stage re-splits every piece of the previous stage;
//! piece boundaries behave like the end of the text for look-ahead (`\s+(?!\S)`). A "split by
//! regex" stage keeps both the matches and the text between them, as llama.cpp does.

use super::unicode::{is_letter, is_number, is_punctuation, is_whitespace};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// `\p{N}`: every number code point is its own piece.
    EachNumber,
    /// `\p{N}+`: runs of number code points.
    NumberRuns,
    /// `[0-9][0-9][0-9]`: leftmost triples of ASCII digits.
    AsciiDigitTriples,
    /// `[\p{P}\$\+<=>\^~\|]+`: runs of punctuation and those ASCII symbols.
    PunctuationRuns,
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    Gpt2,
    /// Llama 3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}|
    /// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`; Qwen 2 is the same with `\p{N}`.
    Llama3 { max_digits: usize },
}

/// The pre-tokenizer for one `tokenizer.ggml.pre` value.
#[derive(Clone, Debug)]
pub(crate) struct PreTokenizer {
    stages: &'static [Stage],
    /// llama3-style vocabularies emit a word that is itself a token without merging.
    pub ignore_merges: bool,
}

const DEFAULT: &[Stage] = &[Stage::PunctuationRuns, Stage::Gpt2, Stage::NumberRuns, Stage::AsciiDigitTriples];
const GPT2: &[Stage] = &[Stage::Gpt2];
const DIGITS_THEN_GPT2: &[Stage] = &[Stage::EachNumber, Stage::Gpt2];
const LLAMA3: &[Stage] = &[Stage::Llama3 { max_digits: 3 }];
const QWEN2: &[Stage] = &[Stage::Llama3 { max_digits: 1 }];

impl PreTokenizer {
    /// The pre-tokenizer llama.cpp uses for `pre`; `None` if we do not implement it (the caller
    /// then falls back to "default", which is what llama.cpp does for a missing `pre`).
    pub fn for_name(pre: &str) -> Option<PreTokenizer> {
        let (stages, ignore_merges) = match pre {
            "default" => (DEFAULT, false),
            "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
            | "a.x-4.0" | "mellum" | "modern-bert" | "mpt" | "olmo" | "jais" | "trillion"
            | "granite-docling" | "exaone4" | "jina-v1-en" | "jina-v2-code" | "roberta-bpe" => (GPT2, false),
            "starcoder" | "refact" | "command-r" | "smollm" | "codeshell" | "exaone" | "minerva-7b"
            | "mellum2" => (DIGITS_THEN_GPT2, false),
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
            | "lfm2" | "jina-v5-nano" => (LLAMA3, true),
            "dbrx" | "smaug-bpe" => (LLAMA3, false),
            "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "stablelm2" | "megrez" | "hunyuan"
            | "solar-open" => (QWEN2, false),
            _ => return None,
        };
        Some(PreTokenizer { stages, ignore_merges })
    }

    pub fn default_pre() -> PreTokenizer {
        PreTokenizer { stages: DEFAULT, ignore_merges: false }
    }

    /// Splits `text` into words (slices of `text`, in order, covering all of it).
    pub fn split<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let cpts: Vec<char> = text.chars().collect();
        // piece lengths, in code points
        let mut pieces = vec![cpts.len()];
        if cpts.is_empty() {
            pieces.clear();
        }
        for &stage in self.stages {
            let mut next = Vec::with_capacity(pieces.len());
            let mut start = 0;
            for &len in &pieces {
                split_piece(stage, &cpts[start..start + len], &mut next);
                start += len;
            }
            pieces = next;
        }
        let mut words = Vec::with_capacity(pieces.len());
        let mut byte_pos = 0;
        let mut cpt_pos = 0;
        for len in pieces {
            let n_bytes: usize = cpts[cpt_pos..cpt_pos + len].iter().map(|c| c.len_utf8()).sum();
            words.push(&text[byte_pos..byte_pos + n_bytes]);
            byte_pos += n_bytes;
            cpt_pos += len;
        }
        words
    }
}

/// Appends the lengths of the pieces `stage` cuts `cpts` into.
fn split_piece(stage: Stage, cpts: &[char], out: &mut Vec<usize>) {
    let mut cuts = Cuts { out, prev: 0 };
    match stage {
        Stage::EachNumber => split_matches(cpts, &mut cuts, |c, i| usize::from(is_number(c[i]))),
        Stage::NumberRuns => split_matches(cpts, &mut cuts, |c, i| run(c, i, is_number)),
        Stage::PunctuationRuns => split_matches(cpts, &mut cuts, |c, i| {
            run(c, i, |x| is_punctuation(x) || matches!(x, '$' | '+' | '<' | '=' | '>' | '^' | '~' | '|'))
        }),
        Stage::AsciiDigitTriples => split_matches(cpts, &mut cuts, |c, i| {
            if c.len() - i >= 3 && c[i..i + 3].iter().all(char::is_ascii_digit) {
                3
            } else {
                0
            }
        }),
        Stage::Gpt2 => split_gpt2(cpts, &mut cuts),
        Stage::Llama3 { max_digits } => split_llama3(cpts, max_digits, &mut cuts),
    }
    cuts.cut(cpts.len());
}

/// Records piece ends; empty pieces are skipped.
struct Cuts<'a> {
    out: &'a mut Vec<usize>,
    prev: usize,
}

impl Cuts<'_> {
    fn cut(&mut self, end: usize) {
        if end > self.prev {
            self.out.push(end - self.prev);
            self.prev = end;
        }
    }
}

/// Length of the run of `pred` code points starting at `i`.
fn run(cpts: &[char], i: usize, pred: impl Fn(char) -> bool) -> usize {
    cpts[i..].iter().take_while(|&&c| pred(c)).count()
}

/// A regex split: `match_len(cpts, i)` is the length of a match starting at `i` (0 = none);
/// matches and the text between them become pieces.
fn split_matches(cpts: &[char], cuts: &mut Cuts, match_len: impl Fn(&[char], usize) -> usize) {
    let mut i = 0;
    while i < cpts.len() {
        let len = match_len(cpts, i);
        if len == 0 {
            i += 1;
            continue;
        }
        cuts.cut(i);
        i += len;
        cuts.cut(i);
    }
}

/// Code point class at `i`; `None` past the piece (llama.cpp's "out of range" flags).
#[derive(Clone, Copy)]
struct Class {
    letter: bool,
    number: bool,
    space: bool,
}

fn class_at(cpts: &[char], i: usize) -> Option<Class> {
    let c = *cpts.get(i)?;
    Some(Class { letter: is_letter(c), number: is_number(c), space: is_whitespace(c) })
}

fn is_letter_at(cpts: &[char], i: usize) -> bool {
    class_at(cpts, i).is_some_and(|k| k.letter)
}

fn is_number_at(cpts: &[char], i: usize) -> bool {
    class_at(cpts, i).is_some_and(|k| k.number)
}

/// `[^\s\p{L}\p{N}]`: any code point in the piece that is not whitespace, letter or number.
fn is_other_at(cpts: &[char], i: usize) -> bool {
    class_at(cpts, i).is_some_and(|k| !(k.space || k.letter || k.number))
}

/// Length of an English contraction (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`) at `i`, 0 if none.
fn contraction_len(cpts: &[char], i: usize, ignore_case: bool) -> usize {
    if cpts.get(i) != Some(&'\'') {
        return 0;
    }
    let at = |k: usize| {
        let c = cpts.get(i + k).copied().unwrap_or('\0');
        if ignore_case {
            c.to_ascii_lowercase()
        } else {
            c
        }
    };
    match (at(1), at(2)) {
        ('s' | 't' | 'm' | 'd', _) => 2,
        ('r', 'e') | ('v', 'e') | ('l', 'l') => 3,
        _ => 0,
    }
}

/// llama.cpp's `unicode_regex_split_custom_gpt2`.
fn split_gpt2(cpts: &[char], cuts: &mut Cuts) {
    let end = cpts.len();
    let mut pos = 0;
    while pos < end {
        let c = cpts[pos];
        let n = contraction_len(cpts, pos, false);
        if n > 0 {
            pos += n;
            cuts.cut(pos);
            continue;
        }
        // ` ?X+`: an optional leading space, then a run of one class.
        let body = if c == ' ' { pos + 1 } else { pos };
        let class_runs: [fn(&[char], usize) -> bool; 3] = [is_letter_at, is_number_at, is_other_at];
        if let Some(in_class) = class_runs.into_iter().find(|f| f(cpts, body)) {
            pos = body;
            while in_class(cpts, pos) {
                pos += 1;
            }
            cuts.cut(pos);
            continue;
        }
        pos = whitespace_end(cpts, pos);
        cuts.cut(pos);
    }
}

/// `\s+(?!\S)|\s+` at `pos`, or a single code point when nothing matches.
fn whitespace_end(cpts: &[char], pos: usize) -> usize {
    let n = run(cpts, pos, is_whitespace);
    if n > 1 && pos + n < cpts.len() {
        // leave the last space to prefix the following word
        pos + n - 1
    } else {
        pos + n.max(1)
    }
}

/// llama.cpp's `unicode_regex_split_custom_llama3`, with the digit group size as a parameter.
fn split_llama3(cpts: &[char], max_digits: usize, cuts: &mut Cuts) {
    let end = cpts.len();
    let mut pos = 0;
    while pos < end {
        let c = cpts[pos];
        let n = contraction_len(cpts, pos, true);
        if n > 0 {
            pos += n;
            cuts.cut(pos);
            continue;
        }
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if !(c == '\r' || c == '\n' || is_number(c)) && (is_letter(c) || is_letter_at(cpts, pos + 1)) {
            pos += 1;
            while is_letter_at(cpts, pos) {
                pos += 1;
            }
            cuts.cut(pos);
            continue;
        }
        // `\p{N}{1,max_digits}`
        if is_number(c) {
            let mut group_start = pos;
            while is_number_at(cpts, pos) {
                pos += 1;
                if pos - group_start >= max_digits {
                    cuts.cut(pos);
                    group_start = pos;
                }
            }
            cuts.cut(pos);
            continue;
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`; llama.cpp tests the class of the code point after the
        // space, so a lone trailing space also lands here.
        let body = if c == ' ' { pos + 1 } else { pos };
        let body_is_other = match class_at(cpts, body) {
            None => true,
            Some(k) => !(k.space || k.letter || k.number),
        };
        if body_is_other {
            pos = body;
            while is_other_at(cpts, pos) {
                pos += 1;
            }
            while matches!(cpts.get(pos), Some('\r' | '\n')) {
                pos += 1;
            }
            cuts.cut(pos);
            continue;
        }
        // `\s*[\r\n]+`: whitespace up to and including the last line break of the run.
        let n = run(cpts, pos, is_whitespace);
        if let Some(last_break) = cpts[pos..pos + n].iter().rposition(|&x| x == '\r' || x == '\n') {
            pos += last_break + 1;
            cuts.cut(pos);
            continue;
        }
        pos = whitespace_end(cpts, pos);
        cuts.cut(pos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(pre: &str, text: &str) -> Vec<String> {
        let p = PreTokenizer::for_name(pre).unwrap_or_else(PreTokenizer::default_pre);
        p.split(text).into_iter().map(String::from).collect()
    }

    #[test]
    fn gpt2_words_spaces_and_contractions() {
        assert_eq!(split("gpt-2", "Hello world"), ["Hello", " world"]);
        assert_eq!(split("gpt-2", "a   b"), ["a", "  ", " b"]);
        assert_eq!(split("gpt-2", "trail   "), ["trail", "   "]);
        assert_eq!(split("gpt-2", "don't I'm"), ["don", "'t", " I", "'m"]);
        // case-sensitive contractions in GPT-2
        assert_eq!(split("gpt-2", "DON'T"), ["DON", "'", "T"]);
        assert_eq!(split("gpt-2", "x: (0..10)"), ["x", ":", " (", "0", "..", "10", ")"]);
        assert_eq!(split("gpt-2", "a\n\nb"), ["a", "\n", "\n", "b"]);
        assert_eq!(split("gpt-2", ""), Vec::<String>::new());
    }

    #[test]
    fn smollm_splits_every_digit_first() {
        assert_eq!(split("smollm", "12345 678"), ["1", "2", "3", "4", "5", " ", "6", "7", "8"]);
        assert_eq!(split("smollm", "a 1b"), ["a", " ", "1", "b"]);
    }

    #[test]
    fn llama3_groups_digits_and_newlines() {
        assert_eq!(split("llama3", "12345"), ["123", "45"]);
        assert_eq!(split("qwen2", "123"), ["1", "2", "3"]);
        assert_eq!(split("llama3", "DON'T stop"), ["DON", "'T", " stop"]);
        assert_eq!(split("llama3", "a \n\n b"), ["a", " \n\n", " b"]);
        assert_eq!(split("llama3", "(hi) ..\n"), ["(hi", ")", " ..\n"]);
    }

    #[test]
    fn default_splits_punctuation_runs_first() {
        assert_eq!(split("default", "a+b=1234"), ["a", "+", "b", "=", "123", "4"]);
    }

    #[test]
    fn pieces_cover_the_text() {
        let text = "héllo wörld — 日本語 🙂\n\t x";
        for pre in ["gpt-2", "smollm", "llama3", "qwen2", "default"] {
            assert_eq!(split(pre, text).concat(), text, "{pre}");
        }
    }
}
