//! SmolLM2-135M-Instruct Q4_1 against llama.cpp's golden outputs (../shared/golden/smollm2.json).

use fovea_suite::{checks, golden, model};

const MODEL: &str = "smollm2-135m";

#[test]
fn next_token_top10_matches_llama_cpp_on_the_quantized_path() {
    checks::next_token_quantized(model(MODEL, false), &golden("smollm2.json"));
}

#[test]
fn greedy_continuations_match_llama_cpp() {
    checks::greedy(model(MODEL, false), &golden("smollm2.json"));
}

#[test]
fn perplexity_c512_within_one_percent() {
    checks::perplexity_run(model(MODEL, false), &golden("smollm2.json"), 512, None);
}

#[test]
fn perplexity_c2048_within_one_percent() {
    checks::perplexity_run(model(MODEL, false), &golden("smollm2.json"), 2048, None);
}

#[test]
fn perplexity_c8192_within_one_percent() {
    checks::perplexity_run(model(MODEL, false), &golden("smollm2.json"), 8192, None);
}
