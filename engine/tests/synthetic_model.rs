//! The engine end to end on tiny llama models built in memory (tests/support): batching and the KV
//! cache, quantized vs f32 weights, every kernel ISA, generation, and every load/run error a
//! broken file or a bad request can cause (typed variant, message naming the file and the culprit).

mod support;

use fovea_engine::generate::{generate, GenerateOptions, StopReason};
use fovea_engine::sampler::{argmax, SamplerConfig};
use fovea_engine::{EngineError, LoadOptions, Logits, Model, Session, SessionOptions};
use fovea_formats::{GgmlType, Value};
use fovea_kernels::isa::Isa;
use support::{ModelFile, TempFile, TinyConfig, TinyVocab};

/// Batched and one-at-a-time evaluation differ only in summation order inside attention.
const BATCH_TOLERANCE: f32 = 1e-4;
/// Quantized weights (activations quantized to Q8_0/Q8_1) vs the same weights dequantized to f32.
/// Observed max |Δlogit| 4.9e-2 on logits up to ±3.7 (seed 0x5eed_f00d); written as 3x that.
const QUANT_VS_F32_TOLERANCE: f32 = 0.15;
/// SIMD vs scalar kernels on f32 weights: the same products summed in another order.
/// Observed 8.9e-7; 3x that, rounded up.
const ISA_TOLERANCE_F32: f32 = 3e-6;
/// SIMD vs scalar kernels on quantized weights. The kernels agree to ~1e-7 for the same input, but
/// activations are re-quantized to 8 bits before every product: a 1e-7 difference that moves a
/// value across a rounding boundary changes it by one quantization step (1/127 of its block's
/// maximum), and that step propagates. Observed 2.9e-2 from position 8 of the prompt on (2.4e-7
/// before it); 3x that.
const ISA_TOLERANCE_QUANT: f32 = 0.09;

fn load(file: &TempFile, reference_f32: bool) -> Model {
    Model::load(file.path(), &LoadOptions { reference_f32 })
        .unwrap_or_else(|e| panic!("the tiny model must load: {e}"))
}

fn session<'m>(model: &'m Model, opts: SessionOptions) -> Session<'m> {
    Session::new(model, &opts).unwrap_or_else(|e| panic!("session: {e}"))
}

/// A prompt of ~30 tokens through the real tokenizer (merged tokens, byte tokens, a control token).
fn prompt(model: &Model) -> Vec<u32> {
    let ids =
        model.tokenizer.encode("<|im_start|>hello world, hello! Tiny models say: 1234 héllo", true, true);
    assert!(ids.len() >= 25, "prompt too short for the batching tests: {ids:?}");
    assert_eq!(ids[0], TinyVocab::IM_START);
    assert_eq!(ids[1], TinyVocab::HELLO);
    ids
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Logits of every position, computed one token per `eval` call: (n, n_vocab).
fn token_by_token(model: &Model, opts: SessionOptions, tokens: &[u32]) -> Vec<f32> {
    let mut s = session(model, opts);
    tokens.iter().flat_map(|&t| s.eval(&[t], Logits::Last).unwrap()).collect()
}

// ---------------------------------------------------------------------------------------------
// Numerics
// ---------------------------------------------------------------------------------------------

#[test]
fn batched_prompt_matches_token_by_token() {
    for (what, cfg) in [("f32", TinyConfig::default()), ("quantized", TinyConfig::quantized())] {
        let file = cfg.build().write("batch");
        let model = load(&file, false);
        let tokens = prompt(&model);
        let n_vocab = model.config.n_vocab;
        let stepwise = token_by_token(&model, SessionOptions::default(), &tokens);

        let mut s = session(&model, SessionOptions::default());
        let last = s.eval(&tokens, Logits::Last).unwrap();
        assert_eq!(last.len(), n_vocab);
        assert_eq!(s.n_past(), tokens.len());
        let want_last = &stepwise[(tokens.len() - 1) * n_vocab..];
        let diff = max_abs_diff(&last, want_last);
        assert!(diff < BATCH_TOLERANCE, "{what}: batched last logits differ by {diff}");

        // Every row, across micro-batch boundaries (3 does not divide the prompt length).
        for n_ubatch in [1, 3, 7] {
            let mut s = session(&model, SessionOptions { n_ubatch, ..SessionOptions::default() });
            let all = s.eval(&tokens, Logits::From(0)).unwrap();
            let diff = max_abs_diff(&all, &stepwise);
            assert!(diff < BATCH_TOLERANCE, "{what}: n_ubatch {n_ubatch}: rows differ by {diff}");
        }

        // A prompt fed in two uneven pieces continues from the cache.
        let mut s = session(&model, SessionOptions::default());
        let split = tokens.len() / 3;
        s.eval(&tokens[..split], Logits::Last).unwrap();
        let rest = s.eval(&tokens[split..], Logits::From(0)).unwrap();
        let diff = max_abs_diff(&rest, &stepwise[split * n_vocab..]);
        assert!(diff < BATCH_TOLERANCE, "{what}: continued prompt differs by {diff}");
    }
}

#[test]
fn logits_do_not_depend_on_the_thread_count() {
    let file = TinyConfig::quantized().build().write("threads");
    let model = load(&file, false);
    let tokens = prompt(&model);
    let run = |n_threads| {
        let mut s = session(&model, SessionOptions { n_threads, ..SessionOptions::default() });
        s.eval(&tokens, Logits::From(0)).unwrap()
    };
    let one = run(1);
    for n in [2, 3, 5] {
        // Each output row is computed whole by one thread: bit-identical, not merely close.
        assert!(one == run(n), "{n} threads changed the logits");
    }
}

#[test]
fn quantized_weights_match_their_f32_reference() {
    let file = TinyConfig::quantized().build().write("quant");
    let quant = load(&file, false);
    let reference = load(&file, true);
    let tokens = prompt(&quant);
    let mut q = session(&quant, SessionOptions::default());
    let mut r = session(&reference, SessionOptions::default());
    let lq = q.eval(&tokens, Logits::From(0)).unwrap();
    let lr = r.eval(&tokens, Logits::From(0)).unwrap();
    let diff = max_abs_diff(&lq, &lr);
    let spread = lr.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    println!("quantized vs f32 reference: max |diff| {diff:.3e}, max |logit| {spread:.2}");
    assert!(spread > 1.0, "logits too flat for this comparison to mean anything");
    assert!(diff < QUANT_VS_F32_TOLERANCE, "quantized vs f32: {diff}");
    // The same greedy choice wherever the top two logits are further apart than the error bound.
    let n_vocab = quant.config.n_vocab;
    let mut decided = 0;
    for (pos, (rq, rr)) in lq.chunks_exact(n_vocab).zip(lr.chunks_exact(n_vocab)).enumerate() {
        let mut sorted = rr.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        if sorted[0] - sorted[1] > 2.0 * QUANT_VS_F32_TOLERANCE {
            assert_eq!(argmax(rq), argmax(rr), "position {pos}: greedy choice differs");
            decided += 1;
        }
    }
    // 16 of the 39 positions here; a quarter keeps the check from passing vacuously.
    assert!(decided >= tokens.len() / 4, "only {decided} positions had a clear winner");
}

#[test]
fn every_isa_gives_the_same_logits() {
    let cases = [
        ("f32", TinyConfig::default(), ISA_TOLERANCE_F32),
        ("quantized", TinyConfig::quantized(), ISA_TOLERANCE_QUANT),
    ];
    for (what, cfg, tolerance) in cases {
        let file = cfg.build().write("isa");
        let model = load(&file, false);
        let tokens = prompt(&model);
        let run = |isa| {
            let mut s = session(&model, SessionOptions { isa: Some(isa), ..SessionOptions::default() });
            assert_eq!(s.isa(), isa);
            s.eval(&tokens, Logits::From(0)).unwrap()
        };
        let scalar = run(Isa::Scalar);
        for isa in Isa::ALL.into_iter().filter(|&i| i != Isa::Scalar) {
            if !isa.is_supported() {
                println!("skipped: this CPU cannot run {}", isa.name());
                let err =
                    Session::new(&model, &SessionOptions { isa: Some(isa), ..SessionOptions::default() });
                assert!(
                    matches!(err, Err(EngineError::InvalidSetting(_))),
                    "unsupported ISA must be an error"
                );
                continue;
            }
            let diff = max_abs_diff(&run(isa), &scalar);
            println!("{what}: {} vs scalar: max |diff| {diff:.3e}", isa.name());
            assert!(diff < tolerance, "{what}: {} vs scalar differ by {diff}", isa.name());
        }
    }
}

#[test]
fn tied_output_uses_the_token_embedding() {
    let mut untied = TinyConfig::quantized().build();
    let embd = untied.tensor_mut("token_embd.weight").data.clone();
    untied.tensor_mut("output.weight").data = embd;
    let mut tied = untied.clone();
    tied.remove_tensor("output.weight");
    let (fu, ft) = (untied.write("untied"), tied.write("tied"));
    let (mu, mt) = (load(&fu, false), load(&ft, false));
    assert!(mt.output.is_none() && mu.output.is_some());
    let tokens = prompt(&mu);
    let lu = session(&mu, SessionOptions::default()).eval(&tokens, Logits::Last).unwrap();
    let lt = session(&mt, SessionOptions::default()).eval(&tokens, Logits::Last).unwrap();
    assert!(lu == lt, "an output.weight equal to token_embd must give identical logits");
}

// ---------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------

fn generate_with(
    model: &Model,
    sampler: SamplerConfig,
    max_tokens: usize,
    n_ctx: usize,
) -> (Vec<u32>, StopReason) {
    let mut s = session(model, SessionOptions { n_ctx, ..SessionOptions::default() });
    let prompt = model.tokenizer.encode("hello world", true, true);
    let stats = generate(&mut s, &prompt, &GenerateOptions { max_tokens, sampler }, |_| true).unwrap();
    assert_eq!(stats.generated_tokens, stats.tokens.len());
    (stats.tokens, stats.stop)
}

#[test]
fn greedy_generation_is_the_argmax_chain_and_stops_at_max_tokens() {
    let file = TinyConfig::quantized().build().write("greedy");
    let model = load(&file, false);
    let (tokens, stop) = generate_with(&model, SamplerConfig::greedy(), 12, 0);
    assert_eq!(stop, StopReason::MaxTokens);
    assert_eq!(tokens.len(), 12);
    // The same chain by hand: argmax, feed back, repeat.
    let mut s = session(&model, SessionOptions::default());
    let mut logits = s.eval(&model.tokenizer.encode("hello world", true, true), Logits::Last).unwrap();
    let mut want = Vec::new();
    for _ in 0..12 {
        let next = argmax(&logits);
        want.push(next);
        logits = s.eval(&[next], Logits::Last).unwrap();
    }
    assert_eq!(tokens, want);
}

#[test]
fn seeded_sampling_is_reproducible() {
    let file = TinyConfig::quantized().build().write("seed");
    let model = load(&file, false);
    let sampler = |seed| SamplerConfig { temperature: 0.8, seed, ..SamplerConfig::default() };
    let (a, _) = generate_with(&model, sampler(42), 16, 0);
    let (b, _) = generate_with(&model, sampler(42), 16, 0);
    assert_eq!(a, b, "the same seed must give the same tokens");
    // Four other seeds all reproducing seed 42's 16 tokens would mean the seed is ignored.
    let others: Vec<Vec<u32>> = (1..5).map(|seed| generate_with(&model, sampler(seed), 16, 0).0).collect();
    assert!(others.iter().any(|o| *o != a), "different seeds gave identical samples: {a:?}");
}

#[test]
fn generation_stops_when_the_context_is_full() {
    let file = TinyConfig::quantized().build().write("ctxfull");
    let model = load(&file, false);
    let n_prompt = model.tokenizer.encode("hello world", true, true).len();
    let (tokens, stop) = generate_with(&model, SamplerConfig::greedy(), 1000, 8);
    assert_eq!(stop, StopReason::ContextFull);
    // Tokens sampled from positions n_prompt-1 ..= 7: the last one is returned but not evaluated.
    assert_eq!(tokens.len(), 8 - n_prompt + 1);
}

#[test]
fn generation_rejects_an_empty_prompt_and_bad_sampler_settings() {
    let file = TinyConfig::default().build().write("genbad");
    let model = load(&file, false);
    let mut s = session(&model, SessionOptions::default());
    let opts = GenerateOptions { max_tokens: 4, sampler: SamplerConfig::greedy() };
    let err = generate(&mut s, &[], &opts, |_| true).unwrap_err();
    assert!(matches!(err, EngineError::InvalidSetting(ref m) if m.contains("empty")), "{err}");
    let bad =
        GenerateOptions { max_tokens: 4, sampler: SamplerConfig { top_p: 2.0, ..SamplerConfig::default() } };
    let err = generate(&mut s, &[1, 2], &bad, |_| true).unwrap_err();
    assert!(matches!(err, EngineError::InvalidSetting(ref m) if m.contains("top-p")), "{err}");
    assert_eq!(s.n_past(), 0, "a rejected request must not touch the cache");
}

// ---------------------------------------------------------------------------------------------
// Load errors: each broken file fails with its own variant, naming the file and the culprit.
// ---------------------------------------------------------------------------------------------

/// Writes `file`, loads it expecting failure, and checks that the message names the file and
/// every string in `names`.
fn load_error(file: &ModelFile, tag: &str, names: &[&str]) -> EngineError {
    let tmp = file.write(tag);
    let err = match Model::load(tmp.path(), &LoadOptions::default()) {
        Ok(_) => panic!("{tag}: the broken model loaded"),
        Err(e) => e,
    };
    let msg = err.to_string();
    assert!(msg.contains(tmp.arg()), "{tag}: message does not name the file: {msg}");
    for name in names {
        assert!(msg.contains(name), "{tag}: message does not name '{name}': {msg}");
    }
    assert!(!msg.contains('\n'), "{tag}: message is not one line: {msg}");
    err
}

#[test]
fn missing_tensor_is_named() {
    let mut file = TinyConfig::default().build();
    file.remove_tensor("blk.1.ffn_up.weight");
    let err = load_error(&file, "missing", &["blk.1.ffn_up.weight"]);
    assert!(
        matches!(err, EngineError::MissingTensor { ref name, .. } if name == "blk.1.ffn_up.weight"),
        "{err:?}"
    );
}

#[test]
fn wrong_tensor_shape_is_named_with_both_shapes() {
    let mut file = TinyConfig::default().build();
    // attn_k is (64 cols, 32 rows) with 2 KV heads of 16; give it 4 heads' worth.
    let t = file.tensor_mut("blk.0.attn_k.weight");
    t.dims = vec![64, 64];
    t.data = vec![0; 64 * 64 * 4];
    let err = load_error(&file, "shape", &["blk.0.attn_k.weight", "[64, 64]", "[64, 32]"]);
    assert!(
        matches!(err, EngineError::TensorShape { ref expected, ref found, .. }
            if expected == &[64, 32] && found == &[64, 64]),
        "{err:?}"
    );
}

#[test]
fn unsupported_architecture_is_named() {
    let mut file = TinyConfig::default().build();
    file.set("general.architecture", Value::str("mamba"));
    let err = load_error(&file, "arch", &["'mamba'", "llama"]);
    assert!(
        matches!(err, EngineError::UnsupportedArchitecture { ref arch, .. } if arch == "mamba"),
        "{err:?}"
    );
}

#[test]
fn weight_type_without_a_matmul_kernel_is_named() {
    // Q8_K blocks hold 256 values: ffn_down's rows are n_ff long, so n_ff = 256.
    let mut file = TinyConfig { n_ff: 256, ..TinyConfig::default() }.build();
    let t = file.tensor_mut("blk.1.ffn_down.weight");
    t.ty = GgmlType::Q8K;
    t.data = support::encode_tensor(GgmlType::Q8K, &vec![0.0; 256 * 64]);
    let err = load_error(&file, "q8k", &["blk.1.ffn_down.weight", "Q8_K"]);
    assert!(matches!(err, EngineError::UnsupportedTensorType { ty: GgmlType::Q8K, .. }), "{err:?}");
}

#[test]
fn heads_not_dividing_the_embedding_are_rejected() {
    let mut file = TinyConfig::default().build();
    file.set("llama.attention.head_count", Value::U32(6));
    let err = load_error(&file, "heads", &["llama.embedding_length", "64", "6"]);
    assert!(
        matches!(err, EngineError::BadMetadata { ref key, .. } if key == "llama.embedding_length"),
        "{err:?}"
    );
}

#[test]
fn kv_heads_not_dividing_the_heads_are_rejected() {
    let mut file = TinyConfig::default().build();
    file.set("llama.attention.head_count_kv", Value::U32(3));
    let err = load_error(&file, "kvheads", &["llama.attention.head_count_kv", "3"]);
    assert!(
        matches!(err, EngineError::BadMetadata { ref key, .. } if key == "llama.attention.head_count_kv"),
        "{err:?}"
    );
    file.set("llama.attention.head_count_kv", Value::U32(0));
    let err = load_error(&file, "kvzero", &["llama.attention.head_count_kv"]);
    assert!(matches!(err, EngineError::BadMetadata { .. }), "{err:?}");
}

#[test]
fn missing_hyper_parameter_is_named() {
    let mut file = TinyConfig::default().build();
    file.remove("llama.block_count");
    let err = load_error(&file, "nolayers", &["llama.block_count"]);
    assert!(matches!(err, EngineError::Format { .. }), "{err:?}");
}

#[test]
fn missing_tokenizer_keys_are_named() {
    for key in ["tokenizer.ggml.model", "tokenizer.ggml.merges"] {
        let mut file = TinyConfig::default().build();
        file.remove(key);
        let err = load_error(&file, "tokkey", &[key]);
        assert!(matches!(err, EngineError::Tokenizer { .. }), "{key}: {err:?}");
    }
    // The token list is also where the vocabulary size comes from, so the config reader is the
    // first to miss it.
    let mut file = TinyConfig::default().build();
    file.remove("tokenizer.ggml.tokens");
    let err = load_error(&file, "toktokens", &["tokenizer.ggml.tokens"]);
    assert!(matches!(err, EngineError::Format { .. } | EngineError::Tokenizer { .. }), "{err:?}");
}

#[test]
fn token_types_of_the_wrong_length_are_rejected() {
    let mut file = TinyConfig::default().build();
    file.set("tokenizer.ggml.token_type", Value::i32s(&[1; 10]));
    let err = load_error(&file, "toktypes", &["tokenizer.ggml.token_type"]);
    assert!(matches!(err, EngineError::Tokenizer { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Run errors: rejected before any work, the session left as it was.
// ---------------------------------------------------------------------------------------------

#[test]
fn prompt_longer_than_the_context_is_rejected() {
    let file = TinyConfig::default().build().write("toolong");
    let model = load(&file, false);
    let mut s = session(&model, SessionOptions { n_ctx: 16, ..SessionOptions::default() });
    let err = s.eval(&[1; 17], Logits::Last).unwrap_err();
    assert!(matches!(err, EngineError::PromptTooLong { n_tokens: 17, n_ctx: 16 }), "{err:?}");
    assert!(err.to_string().contains("17") && err.to_string().contains("16"), "{err}");
    assert_eq!(s.n_past(), 0);
    // Exactly full is fine.
    assert_eq!(s.eval(&[1; 16], Logits::Last).unwrap().len(), model.config.n_vocab);
}

#[test]
fn context_full_during_decoding_is_rejected_and_recoverable() {
    let file = TinyConfig::default().build().write("full");
    let model = load(&file, false);
    let mut s = session(&model, SessionOptions { n_ctx: 16, ..SessionOptions::default() });
    s.eval(&[1; 10], Logits::Last).unwrap();
    let err = s.eval(&[2; 7], Logits::Last).unwrap_err();
    assert!(matches!(err, EngineError::ContextFull { n_ctx: 16 }), "{err:?}");
    assert_eq!(s.n_past(), 10, "a rejected batch must not advance the position");
    s.eval(&[2; 6], Logits::Last).unwrap();
    assert!(matches!(s.eval(&[3], Logits::Last), Err(EngineError::ContextFull { .. })));
    s.truncate(12);
    assert_eq!(s.n_past(), 12);
    s.eval(&[3; 4], Logits::Last).unwrap();
}

#[test]
fn token_outside_the_vocabulary_is_rejected() {
    let file = TinyConfig::default().build().write("badtoken");
    let model = load(&file, false);
    let mut s = session(&model, SessionOptions::default());
    let n_vocab = TinyVocab::N_TOKENS;
    let bad = n_vocab as u32;
    let err = s.eval(&[1, bad, 2], Logits::Last).unwrap_err();
    assert!(matches!(err, EngineError::BadToken { id, n_vocab: n } if id == bad && n == n_vocab), "{err:?}");
    assert!(err.to_string().contains(&bad.to_string()), "{err}");
    assert_eq!(s.n_past(), 0);
    assert!(matches!(s.eval(&[u32::MAX], Logits::Last), Err(EngineError::BadToken { .. })));
}

#[test]
fn session_settings_default_or_fail() {
    let file = TinyConfig::default().build().write("settings");
    let model = load(&file, false);
    // n_ctx 0 = the trained context (128 here, under the 4096 cap).
    let s = session(&model, SessionOptions { n_ctx: 0, ..SessionOptions::default() });
    assert_eq!(s.n_ctx(), 128);
    let err = Session::new(&model, &SessionOptions { n_ubatch: 0, ..SessionOptions::default() }).err();
    assert!(matches!(err, Some(EngineError::InvalidSetting(ref m)) if m.contains("micro-batch")), "{err:?}");
    let err = Session::new(&model, &SessionOptions { n_threads: 100_000, ..SessionOptions::default() }).err();
    assert!(matches!(err, Some(EngineError::InvalidSetting(ref m)) if m.contains("threads")), "{err:?}");
    // A context whose KV cache cannot be allocated is refused up front, not an abort.
    let err = Session::new(&model, &SessionOptions { n_ctx: 1 << 50, ..SessionOptions::default() }).err();
    assert!(matches!(err, Some(EngineError::InvalidSetting(ref m)) if m.contains("KV-cache")), "{err:?}");
    // An empty batch is a no-op, not a crash.
    let mut s = session(&model, SessionOptions::default());
    assert!(s.eval(&[], Logits::Last).unwrap().is_empty());
    assert_eq!(s.n_past(), 0);
}
