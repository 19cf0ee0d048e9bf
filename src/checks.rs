//! The golden comparisons, written once and run per model (see tests/golden_*.rs).
//!
//! Tolerances follow ../shared/golden/README.md: on the quantized path, same top-1 unless llama.cpp's
//! own top-1/top-2 margin is below 0.1, top-10 sets sharing at least 8 ids, shared logits within 0.5
//! (llama.cpp's noise floor between valid settings is 0.1-0.5); on the f32 reference path, top-10
//! logits within 1e-2; greedy ids equal up to the first step whose recorded margin is below 0.1;
//! perplexity within 1%.

use fovea_engine::perplexity::perplexity;
use fovea_engine::sampler::argmax;
use fovea_engine::{Logits, Model, Session, SessionOptions};
use serde_json::Value;

use crate::top_k;

/// Below this golden top-1/top-2 margin a different but correct kernel may flip the argmax.
pub const LOW_MARGIN: f64 = 0.1;
pub const QUANT_LOGIT_TOL: f64 = 0.5;
pub const QUANT_MIN_OVERLAP: usize = 8;
pub const F32_LOGIT_TOL: f64 = 1e-2;
pub const PPL_REL_TOL: f64 = 0.01;

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().expect("array of ids").iter().map(|x| x.as_u64().expect("id") as u32).collect()
}

fn session(model: &Model, n_ctx: usize) -> Session<'_> {
    Session::new(model, &SessionOptions { n_ctx, ..SessionOptions::default() }).expect("session")
}

fn session_ubatch(model: &Model, n_ctx: usize, n_ubatch: usize) -> Session<'_> {
    Session::new(model, &SessionOptions { n_ctx, n_ubatch, ..SessionOptions::default() }).expect("session")
}

/// Our tokenizer must give the recorded prompt tokens (the forward checks use them).
fn prompt_tokens(model: &Model, case: &Value) -> Vec<u32> {
    let want = ids(&case["prompt_tokens"]);
    let parse_special = case["parse_special"].as_bool().unwrap_or(false);
    let got = model.tokenizer.encode(case["prompt"].as_str().expect("prompt"), true, parse_special);
    assert_eq!(got, want, "prompt tokens of case '{}'", case["name"]);
    want
}

/// Compares our top-10 with a golden top-10 list; returns the largest shared-logit difference.
fn compare_top10(
    case: &str,
    ours: &[(u32, f32)],
    golden: &Value,
    tol: f64,
    min_overlap: usize,
    top1: bool,
) -> f64 {
    let gold: Vec<(u32, f64)> = golden
        .as_array()
        .expect("top10")
        .iter()
        .map(|e| (e["id"].as_u64().expect("id") as u32, e["logit"].as_f64().expect("logit")))
        .collect();
    if top1 {
        assert_eq!(ours[0].0, gold[0].0, "{case}: top-1 differs (ours {:?}, golden {:?})", ours[0], gold[0]);
    }
    let mut shared = 0;
    let mut max_diff = 0.0f64;
    for &(id, logit) in ours {
        if let Some(&(_, g)) = gold.iter().find(|(gid, _)| *gid == id) {
            shared += 1;
            let diff = (logit as f64 - g).abs();
            max_diff = max_diff.max(diff);
            assert!(
                diff <= tol,
                "{case}: logit of token {id} is {logit}, golden {g} (|diff| {diff:.4} > {tol})"
            );
        }
    }
    assert!(shared >= min_overlap, "{case}: only {shared} of the top-10 ids agree with llama.cpp");
    max_diff
}

/// Quantized path: next-token top-10 against `top10` for every golden prompt.
pub fn next_token_quantized(model: &Model, golden: &Value) {
    for case in golden["next_token"].as_array().expect("next_token") {
        next_token_quantized_one(model, case, SessionOptions::default().n_ubatch);
    }
}

/// Quantized path for the golden prompt `name`, evaluated in micro-batches of `n_ubatch` tokens
/// (the golden run used 512; other sizes are equally valid llama.cpp settings).
pub fn next_token_quantized_case(model: &Model, golden: &Value, name: &str, n_ubatch: usize) {
    let case = golden["next_token"]
        .as_array()
        .expect("next_token")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no golden next_token case '{name}'"));
    next_token_quantized_one(model, case, n_ubatch);
}

fn next_token_quantized_one(model: &Model, case: &Value, n_ubatch: usize) {
    let name = case["name"].as_str().unwrap_or("?");
    let tokens = prompt_tokens(model, case);
    let mut s = session_ubatch(model, tokens.len() + 1, n_ubatch);
    let logits = s.eval(&tokens, Logits::Last).expect("eval");
    let margin = case["greedy"]["top1_margin"][0].as_f64().expect("margin");
    let ours = top_k(&logits, 10);
    let d =
        compare_top10(name, &ours, &case["top10"], QUANT_LOGIT_TOL, QUANT_MIN_OVERLAP, margin >= LOW_MARGIN);
    eprintln!(
        "quantized {name:>22} (ubatch {n_ubatch}): top-1 {} | max |logit diff| over shared top-10 {d:.4}",
        ours[0].0
    );
}

/// Reference path (weights dequantized to f32, f32 products): top-10 within 1e-2.
pub fn next_token_f32(model: &Model, golden: &Value) {
    assert!(model.reference_f32, "load the model with reference_f32");
    for case in golden["next_token"].as_array().expect("next_token") {
        let name = case["name"].as_str().unwrap_or("?");
        let tokens = prompt_tokens(model, case);
        let mut s = session(model, tokens.len() + 1);
        let logits = s.eval(&tokens, Logits::Last).expect("eval");
        let ours = top_k(&logits, 10);
        let gold = &case["f32_dequantized_reference"];
        let d = compare_top10(name, &ours, &gold["top10"], F32_LOGIT_TOL, 10, true);
        let lse = logsumexp(&logits);
        let want_lse = gold["logsumexp"].as_f64().expect("logsumexp");
        assert!((lse - want_lse).abs() < F32_LOGIT_TOL, "{name}: logsumexp {lse} vs golden {want_lse}");
        eprintln!(
            "f32 reference {name:>18}: max |logit diff| over top-10 {d:.5}, logsumexp diff {:.5}",
            (lse - want_lse).abs()
        );
    }
}

fn logsumexp(l: &[f32]) -> f64 {
    let m = l.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    m + l.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln()
}

/// Greedy continuation, one token at a time: ids equal up to the first low-margin step.
pub fn greedy(model: &Model, golden: &Value) {
    for case in golden["next_token"].as_array().expect("next_token") {
        let name = case["name"].as_str().unwrap_or("?");
        let tokens = prompt_tokens(model, case);
        let want = ids(&case["greedy"]["ids"]);
        let margins: Vec<f64> = case["greedy"]["top1_margin"]
            .as_array()
            .expect("margins")
            .iter()
            .map(|m| m.as_f64().unwrap_or(0.0))
            .collect();
        let check_len = margins.iter().position(|&m| m < LOW_MARGIN).unwrap_or(want.len());
        let mut s = session(model, tokens.len() + want.len() + 1);
        let mut logits = s.eval(&tokens, Logits::Last).expect("eval");
        let mut got = Vec::new();
        for _ in 0..check_len {
            let next = argmax(&logits);
            got.push(next);
            logits = s.eval(&[next], Logits::Last).expect("eval");
        }
        assert_eq!(
            got,
            want[..check_len],
            "{name}: greedy ids differ within the first {check_len} confident steps"
        );
        eprintln!("greedy {name:>25}: {check_len} of {} steps compared, all equal", want.len());
    }
}

/// Perplexity on the golden text for one recorded context size, over the first `max_chunks`
/// chunks (None = all), compared with llama.cpp's running PPL after the same chunk.
pub fn perplexity_run(model: &Model, golden: &Value, n_ctx: usize, max_chunks: Option<usize>) -> (f64, f64) {
    let ppl = &golden["perplexity"];
    let run = ppl["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .find(|r| r["n_ctx"].as_u64() == Some(n_ctx as u64))
        .unwrap_or_else(|| panic!("no golden perplexity run with n_ctx {n_ctx}"));
    let text = crate::golden_text();
    let tokens = model.tokenizer.encode(&text, true, false);
    assert_eq!(
        tokens.len() as u64,
        ppl["n_tokens_in_text"].as_u64().expect("n_tokens"),
        "tokens in the text"
    );
    let bos = if model.tokenizer.add_bos() { model.tokenizer.bos() } else { None };
    let mut s = session(model, n_ctx);
    let report = perplexity(&mut s, &tokens, n_ctx, bos, max_chunks, |_| {}).expect("perplexity");
    let running = run["running_ppl_after_each_chunk"].as_array().expect("running ppl");
    let want = running[report.n_chunks - 1].as_f64().expect("ppl");
    if max_chunks.is_none() {
        let fin = run["final_ppl"].as_f64().expect("final");
        assert!((want - fin).abs() / fin < 1e-3, "running PPL after the last chunk should be the final PPL");
    }
    let rel = (report.ppl - want).abs() / want;
    eprintln!(
        "perplexity c{n_ctx}: {} chunks, ours {:.4} vs llama.cpp {want:.4} ({:+.3}%)",
        report.n_chunks,
        report.ppl,
        100.0 * (report.ppl - want) / want
    );
    assert!(
        rel <= PPL_REL_TOL,
        "perplexity c{n_ctx}: {:.4} vs golden {want:.4} ({:.2}% off)",
        report.ppl,
        rel * 100.0
    );
    (report.ppl, want)
}
