//! Unit tests on small hand-made vocabularies; the golden tests against llama.cpp on real models
//! are in engine/tests/tokenizer_golden.rs.

use super::*;

fn strings(v: &[&str]) -> StringTable {
    v.iter().collect()
}

/// A byte-level BPE vocabulary: all 256 byte chars, then merged tokens, then specials.
fn toy_bpe() -> Tokenizer {
    let mut tokens: Vec<String> = (0..=255u8).map(|b| unicode::byte_to_char(b).to_string()).collect();
    let mut types = vec![1; 256];
    let merges = strings(&["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor ld", "l d"]);
    for t in ["he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "Ġworld", "ld"] {
        tokens.push(t.into());
        types.push(1);
    }
    for (t, ty) in [("<|ctl|>", 3), ("<user>", 4)] {
        tokens.push(t.into());
        types.push(ty);
    }
    let data = VocabData {
        model: "gpt2".into(),
        pre: "gpt-2".into(),
        tokens: tokens.iter().collect(),
        token_types: types,
        merges,
        bos: Some(256 + 9),
        eos: Some(256 + 9),
        ..Default::default()
    };
    Tokenizer::new(data).unwrap()
}

#[test]
fn bpe_merges_by_rank_and_falls_back_to_bytes() {
    let tok = toy_bpe();
    let hello = tok.token_id("hello").unwrap();
    let world = tok.token_id("Ġworld").unwrap();
    assert_eq!(tok.encode("hello world", false, false), [hello, world]);
    // 'x' has no merges: its byte char token
    let x = tok.token_id("x").unwrap();
    assert_eq!(tok.encode("hellox", false, false), [hello, x]);
    // ranks, not left-to-right: "l d" (rank 8) waits until "Ġwor" exists, then "Ġwor ld" (rank 7)
    assert_eq!(tok.encode(" world", false, false), [world]);
    assert_eq!(tok.decode(&tok.encode("héllo wörld\n", false, false), false), "héllo wörld\n");
}

#[test]
fn special_tokens_need_parse_special_unless_user_defined() {
    let tok = toy_bpe();
    let ctl = tok.token_id("<|ctl|>").unwrap();
    let user = tok.token_id("<user>").unwrap();
    let with = tok.encode("a<|ctl|>b<user>", false, true);
    assert_eq!(with, [tok.token_id("a").unwrap(), ctl, tok.token_id("b").unwrap(), user]);
    let without = tok.encode("a<|ctl|>b<user>", false, false);
    assert!(!without.contains(&ctl));
    assert_eq!(without.last(), Some(&user), "user-defined tokens match without parse_special");
    assert_eq!(tok.token_to_piece(ctl, false), b"");
    assert_eq!(tok.token_to_piece(ctl, true), b"<|ctl|>");
}

#[test]
fn add_special_follows_add_bos() {
    let tok = toy_bpe();
    assert!(!tok.add_bos());
    assert_eq!(tok.encode("", true, false), Vec::<u32>::new());
}

/// A SentencePiece vocabulary with byte fallback.
fn toy_spm(add_space_prefix: bool) -> Tokenizer {
    let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>"].map(String::from).into();
    let mut types = vec![2, 3, 3];
    let mut scores = vec![0.0, 0.0, 0.0];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
        scores.push(0.0);
    }
    for (t, s) in
        [("▁", -1.0), ("h", -2.0), ("i", -2.0), ("▁h", -3.0), ("hi", -1.5), ("▁hi", -0.5), ("x", -5.0)]
    {
        tokens.push(t.into());
        types.push(1);
        scores.push(s);
    }
    let data = VocabData {
        model: "llama".into(),
        pre: "default".into(),
        tokens: tokens.iter().collect(),
        scores,
        token_types: types,
        bos: Some(1),
        eos: Some(2),
        unk: Some(0),
        add_bos: true,
        add_space_prefix,
        ..Default::default()
    };
    Tokenizer::new(data).unwrap()
}

#[test]
fn spm_merges_by_score_with_space_prefix_and_byte_fallback() {
    let tok = toy_spm(true);
    let id = |t: &str| tok.token_id(t).unwrap();
    // "▁hi": "hi" (-1.5) beats "▁h" (-3.0), then "▁" + "hi" -> "▁hi"
    assert_eq!(tok.encode("hi", true, false), [1, id("▁hi")]);
    // 'é' is not a token: its two UTF-8 bytes
    assert_eq!(tok.encode("hé", false, false), [id("▁h"), id("<0xC3>"), id("<0xA9>")]);
    assert_eq!(tok.decode(&tok.encode("hé", false, false), false), " hé");
    // a space prefix again after a special token
    assert_eq!(tok.encode("hi</s>hi", false, true), [id("▁hi"), 2, id("▁hi")]);
    let no_prefix = toy_spm(false);
    assert_eq!(no_prefix.encode("hi", false, false), [id("hi")]);
}

#[test]
fn stream_decoder_holds_split_characters() {
    let tok = toy_spm(false);
    let id = |t: &str| tok.token_id(t).unwrap();
    // 🙂 = F0 9F 99 82 as four byte tokens
    let ids = [id("hi"), id("<0xF0>"), id("<0x9F>"), id("<0x99>"), id("<0x82>"), id("x")];
    let mut dec = tok.stream_decoder(false);
    let parts: Vec<String> = ids.iter().map(|&i| dec.push(i)).collect();
    assert_eq!(parts, ["hi", "", "", "", "🙂", "x"]);
    assert_eq!(dec.finish(), "");
    // an invalid byte becomes U+FFFD at once; an unfinished char is flushed by finish()
    let mut dec = tok.stream_decoder(false);
    assert_eq!(dec.push(id("<0x82>")), "\u{FFFD}");
    assert_eq!(dec.push(id("<0xF0>")), "");
    assert_eq!(dec.finish(), "\u{FFFD}");
}

#[test]
fn eog_includes_eos_and_end_of_turn_texts() {
    let data = VocabData {
        model: "gpt2".into(),
        pre: "no-such-pre".into(),
        tokens: strings(&["a", "b", "<|im_end|>", "<|endoftext|>"]),
        token_types: vec![1, 1, 1, 3],
        merges: strings(&["a b"]),
        bos: Some(3),
        eos: Some(3),
        ..Default::default()
    };
    let tok = Tokenizer::new(data).unwrap();
    assert!(tok.is_eog(2) && tok.is_eog(3) && !tok.is_eog(0));
    // "<|im_end|>" was typed normal; llama.cpp makes it control, so it hides without `special`
    assert_eq!(tok.token_to_piece(2, false), b"");
    assert_eq!(tok.pre_fallback(), Some("no-such-pre"));
}

#[test]
fn bad_vocabularies_are_errors() {
    let base = VocabData { model: "gpt2".into(), tokens: strings(&["a"]), ..Default::default() };
    let dup = VocabData { tokens: strings(&["b", "a", "a"]), ..base.clone() };
    assert!(matches!(
        Tokenizer::new(dup),
        Err(TokenizerError::DuplicateToken { text, first: 1, second: 2 }) if text == "a"
    ));
    // an empty token is named by its id, as llama.cpp does, and can then clash
    let empty = VocabData { tokens: strings(&["a", ""]), ..base.clone() };
    assert_eq!(Tokenizer::new(empty).unwrap().token_id("[EMPTY_1]"), Some(1));
    let clash = VocabData { tokens: strings(&["[EMPTY_1]", ""]), ..base.clone() };
    assert!(matches!(Tokenizer::new(clash), Err(TokenizerError::DuplicateToken { .. })));
    let short = VocabData { token_types: vec![1], tokens: strings(&["a", "b"]), ..base.clone() };
    assert!(matches!(Tokenizer::new(short), Err(TokenizerError::LengthMismatch { .. })));
    let wpm = VocabData { model: "bert".into(), ..base.clone() };
    assert!(matches!(Tokenizer::new(wpm), Err(TokenizerError::UnsupportedModel(_))));
    let no_bos = VocabData { add_bos: true, ..base };
    assert!(matches!(Tokenizer::new(no_bos), Err(TokenizerError::BadMetadata(_))));
}

/// llama.cpp's `tokenizer_st_partition` as written: each special token in turn (longest first)
/// cuts every text fragment at its left-to-right occurrences. The trie version must agree.
fn partition_reference<'t>(vocab: &vocab::Vocab, text: &'t str, parse_special: bool) -> Vec<Fragment<'t>> {
    let specials = vocab::attr::CONTROL | vocab::attr::USER_DEFINED | vocab::attr::UNKNOWN;
    let mut ids: Vec<u32> =
        (0..vocab.n_tokens() as u32).filter(|&id| vocab.attr(id) & specials != 0).collect();
    ids.sort_by(|&a, &b| vocab.text(b).len().cmp(&vocab.text(a).len()).then(a.cmp(&b)));
    let mut fragments = if text.is_empty() { vec![] } else { vec![Fragment::Text(text)] };
    for id in ids {
        if !parse_special && vocab.attr(id) & (vocab::attr::CONTROL | vocab::attr::UNKNOWN) != 0 {
            continue;
        }
        let needle = std::str::from_utf8(vocab.text(id)).unwrap();
        let mut next = Vec::new();
        for fragment in fragments {
            let Fragment::Text(mut rest) = fragment else {
                next.push(fragment);
                continue;
            };
            while let Some(at) = rest.find(needle) {
                if at > 0 {
                    next.push(Fragment::Text(&rest[..at]));
                }
                next.push(Fragment::Token(id));
                rest = &rest[at + needle.len()..];
            }
            if !rest.is_empty() {
                next.push(Fragment::Text(rest));
            }
        }
        fragments = next;
    }
    fragments
}

/// Overlapping special texts of several lengths, control and user-defined, on random strings.
#[test]
fn special_partition_matches_per_token_reference() {
    let specials = [
        ("ab", 4),
        ("ba", 3),
        ("aba", 4),
        ("bab", 3),
        ("abab", 4),
        ("<a>", 3),
        ("a>", 4),
        ("<", 2),
        ("  ", 4),
        ("   ", 4),
        ("é<", 3),
    ];
    let mut tokens = strings(&["x", "a", "b"]);
    let mut types = vec![1, 1, 1];
    for (t, ty) in specials {
        tokens.push(t).unwrap();
        types.push(ty);
    }
    let data = VocabData { model: "llama".into(), tokens, token_types: types, ..Default::default() };
    let vocab = vocab::Vocab::new(data).unwrap();
    let st = SpecialTokens::new(&vocab);
    let alphabet = ['a', 'b', '<', '>', ' ', 'é'];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..3000 {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let len = (state >> 59) as usize * 2;
        let text: String = (0..len)
            .map(|i| {
                let r = state.rotate_left(7 * i as u32 + 3) ^ (i as u64).wrapping_mul(0x9e37_79b9);
                alphabet[(r % alphabet.len() as u64) as usize]
            })
            .collect();
        for parse_special in [false, true] {
            assert_eq!(
                st.partition(&text, parse_special),
                partition_reference(&vocab, &text, parse_special),
                "{text:?} parse_special={parse_special}"
            );
        }
    }
}

/// llama.cpp's text rules: a user-defined "</s>" ends generation and becomes control (so it is
/// plain text without `parse_special`), unless the vocabulary is gemma4/plamo-like; FIM texts
/// become control when the GGUF gives no id.
#[test]
fn special_texts_change_token_attributes() {
    let base = VocabData {
        model: "llama".into(),
        tokens: strings(&["<unk>", "<s>", "<eos>", "</s>", "<|fim_prefix|>", "x"]),
        token_types: vec![2, 3, 3, 4, 1, 1],
        bos: Some(1),
        eos: Some(2),
        ..Default::default()
    };
    let vocab = vocab::Vocab::new(base.clone()).unwrap();
    assert!(vocab.eog.contains(&3));
    assert_eq!(vocab.attr(3), vocab::attr::USER_DEFINED | vocab::attr::CONTROL);
    assert_eq!(vocab.fim.prefix, Some(4));
    assert_eq!(vocab.attr(4), vocab::attr::NORMAL | vocab::attr::CONTROL);
    let st = SpecialTokens::new(&vocab);
    assert_eq!(st.partition("a</s>", false), [Fragment::Text("a</s>")]);
    assert_eq!(st.partition("a</s>", true), [Fragment::Text("a"), Fragment::Token(3)]);

    let gemma4 = VocabData {
        tokens: strings(&["<unk>", "<s>", "<eos>", "</s>", "<|fim_prefix|>", "<|tool_response>"]),
        ..base
    };
    let vocab = vocab::Vocab::new(gemma4).unwrap();
    assert!(!vocab.eog.contains(&3) && vocab.eog.contains(&5));
    assert_eq!(vocab.attr(3), vocab::attr::NORMAL);
}
