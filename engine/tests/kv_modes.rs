//! The non-full KV-cache modes end to end on a tiny model: equal to the full cache while the
//! sequence fits in the budget, spilling changes no bit, the resident cap holds on long streams
//! (past the trained context), and bad settings are clear errors.

mod support;

use fovea_engine::kv::{KvMode, KvOptions, KvType, PositionMode, Scoring};
use fovea_engine::{EngineError, LoadOptions, Logits, Model, Session, SessionOptions};
use support::TinyConfig;

fn model() -> (support::TempFile, Model) {
    let file = TinyConfig::default().build().write("kv-modes");
    let model = Model::load(file.path(), &LoadOptions::default()).unwrap();
    (file, model)
}

/// Deterministic token ids in the vocabulary.
fn tokens(model: &Model, n: usize) -> Vec<u32> {
    support::token_ids(model.config.n_vocab, n, 0x2545_f491_4f6c_dd1d)
}

fn kv(mode: KvMode, budget: usize) -> KvOptions {
    KvOptions { mode, budget: Some(budget), page: Some(8), ..KvOptions::default() }
}

/// Logits of every token (n, n_vocab), fed in chunks of `chunk`.
fn stream(model: &Model, kv: KvOptions, toks: &[u32], chunk: usize) -> Vec<f32> {
    let opts = SessionOptions { n_ctx: toks.len(), n_threads: 2, kv, ..SessionOptions::default() };
    let mut s = Session::new(model, &opts).unwrap();
    toks.chunks(chunk).flat_map(|c| s.eval(c, Logits::From(0)).unwrap()).collect()
}

#[test]
fn every_mode_equals_the_full_cache_while_the_sequence_fits_in_the_budget() {
    let (_f, model) = model();
    let toks = tokens(&model, 100);
    for chunk in [1, 7, 64] {
        let full = stream(&model, KvOptions::default(), &toks, chunk);
        for mode in [KvMode::Window, KvMode::Dilated, KvMode::Fovea] {
            let got = stream(&model, kv(mode, 100), &toks, chunk);
            assert!(got == full, "{mode:?}, chunks of {chunk}: logits differ from the full cache");
        }
    }
}

#[test]
fn past_the_budget_the_modes_differ_from_full() {
    let (_f, model) = model();
    let toks = tokens(&model, 120);
    let full = stream(&model, KvOptions::default(), &toks, 16);
    for mode in [KvMode::Window, KvMode::Dilated, KvMode::Fovea] {
        let got = stream(&model, kv(mode, 40), &toks, 16);
        assert!(got != full, "{mode:?}: a 40-entry budget must change the logits of 120 tokens");
        assert!(got.iter().all(|x| x.is_finite()));
    }
}

/// Decoding past the budget runs its own path (one item per KV head and segment of entries,
/// segments merged by their softmax stats; with f16 pages, the window read in place and the
/// kept entries as an f16 copy, widened tile by tile; fovea's two descents per KV head run as
/// items of their own before attention). In window mode every query attends to the same entries
/// whether it is decoded alone or in a prompt chunk (which widens the same f16 values once,
/// exactly), and so does fovea when every query selects on its own (selection chunk 1) by the
/// mean keys of every eligible page: the two paths choose the same pages and may differ only by
/// rounding. (The bound's scores are relative to the root's, and a beam reads inner nodes: both
/// summarize every stored page, and a prompt batch stores all its keys before attending, so
/// there a prompt chunk's choice may differ from the decoded token's.)
#[test]
fn decoding_past_the_budget_attends_like_a_prompt_chunk() {
    let (_f, model) = model();
    // Past the 40-entry budget, inside the 128-token trained context (true positions).
    let toks = tokens(&model, 120);
    // Fovea: 4 sinks, a window of 12 and 3 pages of 8.
    let modes = [
        (KvMode::Window, 8, None, Scoring::Union, 2),
        (KvMode::Fovea, 1, Some(12), Scoring::Mean, usize::MAX),
    ];
    for (mode, select_chunk, window, scoring, beam) in modes {
        for ty in [KvType::F32, KvType::F16] {
            let opts = KvOptions { kv_type: ty, select_chunk, window, scoring, beam, ..kv(mode, 40) };
            let batched = stream(&model, opts.clone(), &toks, 16);
            let decoded = stream(&model, opts, &toks, 1);
            let scale = batched.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            let worst = batched.iter().zip(&decoded).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            // Measured: 1e-6 on logits of scale 4.5; a 1e-4 relative error in the merge gives 2e-4.
            assert!(
                worst <= 1e-5 * scale,
                "{mode:?} {ty:?}: decoded logits differ by {worst} (scale {scale})"
            );
            let full = stream(&model, KvOptions::default(), &toks, 1);
            let off = full.iter().zip(&decoded).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(off > 1e-3 * scale, "{mode:?} {ty:?}: the budget must change the logits: {off}");
        }
    }
}

#[test]
fn spilling_changes_no_bit_and_the_resident_cap_holds_past_the_trained_context() {
    let (_f, model) = model();
    assert_eq!(model.config.n_ctx_train, 128);
    let toks = tokens(&model, 3000);
    for ty in [KvType::F32, KvType::F16] {
        for scoring in [Scoring::Bound, Scoring::Union] {
            let opts = KvOptions { kv_type: ty, scoring, ..kv(KvMode::Fovea, 64) };
            let free = stream(&model, opts.clone(), &toks, 64);
            // One page is 8 tokens * 2 KV heads * (16 + 16) dims * 4 bytes = 2 KiB (f32): 1.5 MiB
            // for 3000 tokens, and the summaries grow to about 330 KiB. The cap covers both.
            let cap = 512 * 1024;
            let capped = KvOptions { ram_bytes: Some(cap), ..opts };
            let s_opts = SessionOptions { n_threads: 2, kv: capped.clone(), ..SessionOptions::default() };
            let mut s = Session::new(&model, &s_opts).unwrap();
            let mut got = Vec::new();
            for c in toks.chunks(64) {
                got.extend(s.eval(c, Logits::From(0)).unwrap());
                let resident = s.kv_bytes();
                assert!(resident <= cap, "{ty:?}: resident KV {resident} > cap {cap} at {}", s.n_past());
            }
            assert!(s.kv_spilled_bytes() > 0, "{ty:?}: nothing was spilled");
            assert!(got == free, "{ty:?} {scoring:?}: spilling changed the logits");
            assert!(got.iter().all(|x| x.is_finite()));
            let stats = s.kv_select_stats().unwrap();
            assert!(stats.selections > 0);
        }
    }
}

#[test]
fn positions_are_renumbered_past_the_trained_context() {
    let (_f, model) = model();
    let toks = tokens(&model, 400);
    let auto = stream(&model, kv(KvMode::Window, 64), &toks, 32);
    let truth =
        stream(&model, KvOptions { positions: PositionMode::True, ..kv(KvMode::Window, 64) }, &toks, 32);
    let n_vocab = model.config.n_vocab;
    // Up to the chunk that ends past 128 tokens the two agree; after it they may not.
    assert!(auto[..128 * n_vocab] == truth[..128 * n_vocab]);
    assert!(auto[160 * n_vocab..] != truth[160 * n_vocab..]);
    // Clamp keeps true positions inside the trained distance and moves only older entries.
    let clamp =
        stream(&model, KvOptions { positions: PositionMode::Clamp, ..kv(KvMode::Window, 64) }, &toks, 32);
    assert!(clamp[..128 * n_vocab] == truth[..128 * n_vocab]);
    assert!(clamp[160 * n_vocab..] != truth[160 * n_vocab..]);
    assert!(clamp[160 * n_vocab..] != auto[160 * n_vocab..]);
}

#[test]
fn bad_settings_are_clear_errors() {
    let (_f, model) = model();
    let err = |kv: KvOptions| match Session::new(&model, &SessionOptions { kv, ..SessionOptions::default() })
    {
        Err(EngineError::InvalidSetting(m)) => m,
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("accepted"),
    };
    assert!(err(KvOptions { sinks: Some(64), ..kv(KvMode::Window, 64) }).contains("--kv-sinks 64"));
    assert!(err(KvOptions { ram_bytes: Some(100), ..kv(KvMode::Fovea, 64) }).contains("--kv-ram 100"));
    assert!(err(KvOptions { kv_type: KvType::Q8_0, ..kv(KvMode::Fovea, 64) }).contains("multiples of 32"));
}

#[test]
fn decoding_reselects_once_per_selection_chunk() {
    let (_f, model) = model();
    let toks = tokens(&model, 200);
    let selections = |select_chunk: usize| {
        let kv = KvOptions { select_chunk, ..kv(KvMode::Fovea, 64) };
        let opts = SessionOptions { n_ctx: toks.len(), n_threads: 2, kv, ..SessionOptions::default() };
        let mut s = Session::new(&model, &opts).unwrap();
        let mut logits = Vec::new();
        for t in &toks {
            logits.extend(s.eval(std::slice::from_ref(t), Logits::Last).unwrap());
        }
        assert!(logits.iter().all(|x| x.is_finite()));
        (s.kv_select_stats().unwrap().selections, logits)
    };
    let (every, a) = selections(1);
    let (shared, b) = selections(8);
    // Fovea chooses once the memory outgrows its pages' share: about 200 - 64 positions, times
    // layers and KV heads; sharing a selection over 8 positions makes 8 times fewer.
    assert!(every > 0 && shared > 0);
    assert!(shared * 7 <= every && every <= shared * 9, "selections: {every} vs {shared}");
    assert!(a != b, "sharing selections changed nothing");
}

/// A prompt batch past the budget whose last chunk is a single query (9 tokens with 8-token
/// selection chunks) keeps its selection in f32 rows like any prompt chunk: with f16 pages it
/// once took the decoded tokens' f16-only form and then read f32 rows that were not there (a
/// panic). Batches of 9 after decoded tokens, in every mode, f32 and f16 pages; in window mode they
/// attend to what 16-token batches do, so the logits agree up to rounding.
#[test]
fn prompt_batches_ending_in_a_single_query_past_the_budget() {
    let (_f, model) = model();
    let toks = tokens(&model, 120);
    // (q8_0 pages need head dimensions of 32; the tiny model's are 16.)
    for ty in [KvType::F32, KvType::F16] {
        for mode in [KvMode::Window, KvMode::Dilated, KvMode::Fovea] {
            let opts = KvOptions { kv_type: ty, select_chunk: 8, ..kv(mode, 40) };
            let sopts = SessionOptions {
                n_ctx: toks.len(),
                n_threads: 2,
                kv: opts.clone(),
                ..SessionOptions::default()
            };
            let mut s = Session::new(&model, &sopts).unwrap();
            let mut got = Vec::new();
            // 48 prompt tokens, 3 decoded, then batches of 9 (each ends in a one-query chunk).
            got.extend(s.eval(&toks[..48], Logits::From(0)).unwrap());
            for t in &toks[48..51] {
                got.extend(s.eval(std::slice::from_ref(t), Logits::From(0)).unwrap());
            }
            for c in toks[51..].chunks(9) {
                got.extend(s.eval(c, Logits::From(0)).unwrap());
            }
            assert!(got.iter().all(|x| x.is_finite()), "{ty:?} {mode:?}: non-finite logits");
            if mode == KvMode::Window {
                let want = stream(&model, opts, &toks, 16);
                let scale = want.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                let worst = want.iter().zip(&got).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(worst <= 1e-5 * scale, "{ty:?}: batches of 9 differ by {worst} (scale {scale})");
            }
        }
    }
}
