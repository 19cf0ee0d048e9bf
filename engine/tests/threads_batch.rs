//! Separate thread counts for generation and prompt processing (`SessionOptions::n_threads` /
//! `n_threads_batch`, llama.cpp's `-t` / `-tb`): reported as asked, defaulted as llama.cpp does,
//! and without any effect on the numbers.

mod support;

use fovea_engine::{LoadOptions, Logits, Model, Session, SessionOptions};
use support::TinyConfig;

fn session(model: &Model, n_threads: usize, n_threads_batch: usize) -> Session<'_> {
    let opts = SessionOptions { n_threads, n_threads_batch, ..SessionOptions::default() };
    Session::new(model, &opts).unwrap_or_else(|e| panic!("session: {e}"))
}

/// Logits of a 20-token prompt (one batch: prompt-processing threads) followed by 6 generated
/// positions fed one token at a time (generation threads), concatenated.
fn prompt_then_tokens(model: &Model, n_threads: usize, n_threads_batch: usize) -> Vec<f32> {
    let mut s = session(model, n_threads, n_threads_batch);
    let prompt: Vec<u32> = (0..20).map(|i| (i * 7 + 3) % model.config.n_vocab as u32).collect();
    let mut logits = s.eval(&prompt, Logits::From(0)).unwrap_or_else(|e| panic!("prompt: {e}"));
    for i in 0..6u32 {
        let tok = (i * 11 + 5) % model.config.n_vocab as u32;
        logits.extend(s.eval(&[tok], Logits::Last).unwrap_or_else(|e| panic!("token {i}: {e}")));
    }
    logits
}

#[test]
fn thread_counts_are_reported_and_the_batch_count_defaults_to_the_generation_count() {
    let file = TinyConfig::quantized().build().write("tb-report");
    let model = Model::load(file.path(), &LoadOptions::default()).unwrap_or_else(|e| panic!("load: {e}"));
    let s = session(&model, 1, 3);
    assert_eq!((s.n_threads(), s.n_threads_batch()), (1, 3));
    let s = session(&model, 2, 0);
    assert_eq!((s.n_threads(), s.n_threads_batch()), (2, 2));
    let s = session(&model, 0, 0);
    assert!(s.n_threads() >= 1);
    assert_eq!(s.n_threads_batch(), s.n_threads());
}

#[test]
fn logits_do_not_depend_on_either_thread_count() {
    let file = TinyConfig::quantized().build().write("tb-logits");
    let model = Model::load(file.path(), &LoadOptions::default()).unwrap_or_else(|e| panic!("load: {e}"));
    let one = prompt_then_tokens(&model, 1, 1);
    for (t, tb) in [(2, 2), (1, 2), (2, 1), (1, 3), (3, 2)] {
        // Every output row is computed whole by one thread, whichever joins: bit-identical.
        assert!(one == prompt_then_tokens(&model, t, tb), "-t {t} -tb {tb} changed the logits");
    }
}
