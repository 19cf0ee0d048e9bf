//! The `fovea` binary as a demanding user meets it: every subcommand on a tiny synthetic model,
//! every bad input answered by a non-zero exit and one `error: ...` line that names the problem
//! (never a panic, never a hang), and one run of the real default model.

#[path = "../../engine/tests/support/mod.rs"]
mod support;

mod process;

use std::time::Duration;

use process::{run_fovea, Outcome};
use support::{TempFile, TinyConfig, TinyVocab};

/// Generous: a debug build on a loaded 2-core machine. A hang fails the test instead of CI.
const TIMEOUT: Duration = Duration::from_secs(120);
/// The real-model test may first fetch the model (~100 MB) into the cache.
const REAL_MODEL_TIMEOUT: Duration = Duration::from_secs(900);

/// Runs `fovea args...` with stdin closed, killing it after `timeout`. `env` is added to the
/// inherited environment.
fn fovea_with(args: &[&str], env: &[(&str, &str)], timeout: Duration) -> Outcome {
    run_fovea(args, env, None, timeout)
}

/// `fovea` offline (nothing may touch the network), with a timeout.
fn fovea(args: &[&str]) -> Outcome {
    fovea_with(args, &[("FOVEA_OFFLINE", "1"), ("FOVEA_ISA", "")], TIMEOUT)
}

/// The quantized tiny model (Q4_1 + Q8_0, like SmolLM2's file).
fn tiny_model(tag: &str) -> TempFile {
    TinyConfig::quantized().build().write(tag)
}

/// Asserts a clean success and returns stdout.
fn ok(args: &[&str]) -> Outcome {
    let o = fovea(args);
    assert_eq!(o.code, Some(0), "fovea {args:?} failed:\nstdout: {}\nstderr: {}", o.stdout, o.stderr);
    assert!(!o.stderr.contains("panicked"), "fovea {args:?} panicked: {}", o.stderr);
    o
}

/// Asserts a failure with exit code `code`, no panic, and an error naming every string in
/// `says`; returns stderr.
fn fails(args: &[&str], code: i32, says: &[&str]) -> String {
    let o = fovea(args);
    let all = format!("{}{}", o.stdout, o.stderr);
    assert!(!all.contains("panicked") && !all.contains("RUST_BACKTRACE"), "fovea {args:?} panicked: {all}");
    assert_eq!(o.code, Some(code), "fovea {args:?}: exit code\nstderr: {}", o.stderr);
    for s in says {
        assert!(o.stderr.contains(s), "fovea {args:?}: stderr does not say '{s}':\n{}", o.stderr);
    }
    o.stderr
}

/// Our own errors (exit 1): exactly one line, `error: ...`, naming every string in `says`.
fn fails_cleanly(args: &[&str], says: &[&str]) {
    let stderr = fails(args, 1, says);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "fovea {args:?}: want one error line:\n{stderr}");
    assert!(
        stderr.trim_end().ends_with(errors[0]),
        "fovea {args:?}: the error is not the last line:\n{stderr}"
    );
    // A cause printed twice ("x: e: x: e: e") is noise the user has to read through.
    let parts: Vec<&str> = errors[0].split(": ").collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(!parts[..i].contains(part), "fovea {args:?}: '{part}' repeated in: {}", errors[0]);
    }
}

// ---------------------------------------------------------------------------------------------
// Working commands on the tiny model
// ---------------------------------------------------------------------------------------------

#[test]
fn run_generates_and_reports_speed() {
    let m = tiny_model("run");
    let o = ok(&["run", "-m", m.arg(), "-p", "hello", "-n", "5", "--temp", "0"]);
    assert!(!o.stdout.trim().is_empty(), "no text generated");
    assert!(o.stderr.contains("tok/s"), "no timings on stderr: {}", o.stderr);
    assert!(o.stderr.contains("generation: 5 tokens"), "{}", o.stderr);
    // Greedy is deterministic: the same command prints the same text.
    let again = ok(&["run", "-m", m.arg(), "-p", "hello", "-n", "5", "--temp", "0"]);
    assert_eq!(o.stdout, again.stdout);
    // Every ISA the CPU has runs, and a tiny context stops generation with a note, not an error.
    ok(&["run", "-m", m.arg(), "-p", "hello", "-n", "3", "--isa", "scalar", "--threads", "1"]);
    let o = ok(&["run", "-m", m.arg(), "-p", "hello world", "-n", "50", "--ctx", "8", "--seed", "7"]);
    assert!(o.stderr.contains("context"), "{}", o.stderr);
}

#[test]
fn tokenize_prints_json_ids() {
    let m = tiny_model("tokenize");
    let o = ok(&["tokenize", "-m", m.arg(), "hello"]);
    assert_eq!(o.stdout.trim(), format!("[{}]", TinyVocab::HELLO));
    // Special-token text maps to its token unless told otherwise.
    let o = ok(&["tokenize", "-m", m.arg(), "<|im_start|>hello"]);
    assert_eq!(o.stdout.trim(), format!("[{},{}]", TinyVocab::IM_START, TinyVocab::HELLO));
    let o = ok(&["tokenize", "-m", m.arg(), "--no-parse-special", "<|im_start|>hello"]);
    let ids: Vec<u32> = serde_json::from_str(o.stdout.trim()).expect("a JSON array of ids");
    assert!(ids.len() > 2 && !ids.contains(&TinyVocab::IM_START), "{ids:?}");
    let o = ok(&["tokenize", "-m", m.arg(), ""]);
    assert_eq!(o.stdout.trim(), "[]");
    // The same text from a file.
    let file = std::env::temp_dir().join(format!("fovea-tokenize-{}.txt", std::process::id()));
    std::fs::write(&file, "hello").expect("write a temp file");
    let o = ok(&["tokenize", "-m", m.arg(), "-f", file.to_str().expect("utf-8 temp path")]);
    assert_eq!(o.stdout.trim(), format!("[{}]", TinyVocab::HELLO));
    let _ = std::fs::remove_file(&file);
    fails_cleanly(&["tokenize", "-m", m.arg(), "-f", "/nonexistent/fovea.txt"], &["cannot read"]);
}

#[test]
fn logits_prints_the_top_k() {
    let m = tiny_model("logits");
    let o = ok(&["logits", "-m", m.arg(), "-p", "hello", "--top", "3"]);
    let entries: Vec<serde_json::Value> = serde_json::from_str(o.stdout.trim()).expect("JSON");
    assert_eq!(entries.len(), 3, "{}", o.stdout);
    let logits: Vec<f64> = entries.iter().map(|e| e["logit"].as_f64().expect("logit")).collect();
    assert!(logits.windows(2).all(|w| w[0] >= w[1]), "not sorted: {logits:?}");
    assert!(entries.iter().all(|e| e["id"].as_u64().is_some_and(|id| id < TinyVocab::N_TOKENS as u64)));
    // More than the vocabulary: all of it.
    let o = ok(&["logits", "-m", m.arg(), "-p", "hello", "--top", "100000"]);
    let entries: Vec<serde_json::Value> = serde_json::from_str(o.stdout.trim()).expect("JSON");
    assert_eq!(entries.len(), TinyVocab::N_TOKENS);
}

#[test]
fn inspect_lists_metadata_and_every_tensor() {
    let file = TinyConfig::quantized().build();
    let m = file.write("inspect");
    let o = ok(&["inspect", m.arg()]);
    for t in &file.tensors {
        assert!(o.stdout.contains(&t.name), "tensor {} not listed:\n{}", t.name, o.stdout);
    }
    for (key, _) in &file.meta {
        assert!(o.stdout.contains(key.as_str()), "key {key} not listed");
    }
    assert!(o.stdout.contains("Q4_1") && o.stdout.contains("Q8_0"), "types not shown");
}

#[test]
fn perplexity_runs_on_a_text_file() {
    let m = tiny_model("ppl");
    let text = TempFile::with_contents("ppl", "txt", "hello world, hello again. ".repeat(20).as_bytes());
    let o = ok(&["perplexity", "-m", m.arg(), "-f", text.arg(), "--ctx", "32", "--chunks", "2"]);
    let ppl: f64 = o
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("PPL = "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no PPL line: {}", o.stdout));
    // A random model is roughly uniform over its vocabulary: far above 1, not infinite.
    assert!(ppl > 1.0 && ppl.is_finite(), "PPL = {ppl}");
}

// ---------------------------------------------------------------------------------------------
// Bad input: a clear error, never a panic
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_model_file_lists_the_known_names() {
    // Something path-like that does not exist: the error says the file is missing, and names
    // the known models in case a name was meant.
    fails_cleanly(
        &["run", "-m", "/nonexistent.gguf", "-p", "hi"],
        &["model file not found: /nonexistent.gguf", "smollm2-135m"],
    );
    fails_cleanly(&["tokenize", "-m", "/nonexistent.gguf", "hi"], &["/nonexistent.gguf"]);
    fails_cleanly(&["inspect", "/nonexistent.gguf"], &["/nonexistent.gguf"]);
}

#[test]
fn unknown_model_name_offline_is_an_error() {
    fails_cleanly(&["run", "-m", "gpt-17-ultra", "-p", "hi"], &["gpt-17-ultra", "known models"]);
}

#[test]
fn a_file_that_is_not_gguf_is_named() {
    let junk = TempFile::with_contents(
        "notgguf",
        "gguf",
        "this is a text file, not a model\n".repeat(10).as_bytes(),
    );
    for args in [
        vec!["run", "-m", junk.arg(), "-p", "hi"],
        vec!["tokenize", "-m", junk.arg(), "hi"],
        vec!["inspect", junk.arg()],
    ] {
        fails_cleanly(&args, &[junk.arg()]);
    }
    let empty = TempFile::with_contents("empty", "gguf", b"");
    fails_cleanly(&["inspect", empty.arg()], &[empty.arg()]);
}

#[test]
fn a_truncated_gguf_is_named() {
    let whole = TinyConfig::quantized().build().to_bytes();
    for cut in [100, whole.len() / 2, whole.len() - 1] {
        let part = TempFile::with_contents("truncated", "gguf", &whole[..cut]);
        fails_cleanly(&["run", "-m", part.arg(), "-p", "hi", "-n", "2"], &[part.arg()]);
        fails_cleanly(&["inspect", part.arg()], &[part.arg()]);
    }
}

#[test]
fn a_broken_model_names_the_culprit() {
    let mut file = TinyConfig::default().build();
    file.remove_tensor("blk.1.attn_v.weight");
    let m = file.write("brokencli");
    fails_cleanly(&["run", "-m", m.arg(), "-p", "hi"], &[m.arg(), "blk.1.attn_v.weight"]);
}

#[test]
fn bad_option_values_are_rejected() {
    let m = tiny_model("options");
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "-m", m.arg(), "-p", "hello", "-n", "2"];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let check = |extra: &[&str], says: &[&str]| {
        let args = run(extra);
        fails_cleanly(&args.iter().map(String::as_str).collect::<Vec<_>>(), says);
    };
    // Not a number: clap's usage error, exit 2.
    let args = run(&["--temp", "abc"]);
    fails(&args.iter().map(String::as_str).collect::<Vec<_>>(), 2, &["--temp", "abc"]);
    check(&["--top-p", "2"], &["top-p", "2"]);
    check(&["--min-p", "1.5"], &["min-p"]);
    check(&["--repeat-penalty", "0"], &["repeat penalty"]);
    check(&["--temp", "inf"], &["temperature"]);
    check(&["--threads", "0"], &["--threads"]);
    check(&["--threads", "100000"], &["100000 threads"]);
    check(&["--ctx", "0"], &["--ctx"]);
    // An instruction set of another architecture is known but not runnable here.
    let foreign = if cfg!(target_arch = "x86_64") { "neon" } else { "avx2" };
    check(&["--isa", foreign], &[foreign, "not supported"]);
    check(&["--isa", "bogus"], &["bogus", "scalar, avx2, avx512, neon"]);
    fails_cleanly(&["run", "-m", m.arg(), "-p", ""], &["empty"]);
    fails_cleanly(&["logits", "-m", m.arg(), "-p", "hello", "--top", "0"], &["--top"]);
}

#[test]
fn prompt_longer_than_the_context_is_rejected() {
    let m = tiny_model("longprompt");
    let long = "hello world ".repeat(10);
    fails_cleanly(&["run", "-m", m.arg(), "-p", &long, "--ctx", "8"], &["context holds 8", "--ctx"]);
    fails_cleanly(&["logits", "-m", m.arg(), "-p", &long, "--ctx", "8"], &["8"]);
}

#[test]
fn perplexity_input_errors() {
    let m = tiny_model("pplerr");
    fails_cleanly(&["perplexity", "-m", m.arg(), "-f", "/nonexistent/text.txt"], &["/nonexistent/text.txt"]);
    let short = TempFile::with_contents("short", "txt", b"hello world");
    fails_cleanly(&["perplexity", "-m", m.arg(), "-f", short.arg(), "--ctx", "16"], &["tokens", "context"]);
    fails_cleanly(&["perplexity", "-m", m.arg(), "-f", short.arg(), "--ctx", "2"], &["at least 4"]);
    fails_cleanly(&["perplexity", "-m", m.arg(), "-f", short.arg(), "--chunks", "0"], &["--chunks"]);
}

#[test]
fn absurd_context_sizes_are_errors_not_crashes() {
    let m = tiny_model("hugectx");
    // 2^40 tokens of KV cache cannot be allocated: the user must hear why, not see an abort.
    fails_cleanly(&["run", "-m", m.arg(), "-p", "hello", "--ctx", "1099511627776"], &["context"]);
}

// ---------------------------------------------------------------------------------------------
// The real default model
// ---------------------------------------------------------------------------------------------

/// The default model (smollm2-135m), resolved the way a user's would be: the environment is
/// inherited, so it comes from FOVEA_MODELS or the default cache, fetched on first use.
#[test]
fn real_default_model_answers_paris() {
    let o = fovea_with(
        &["run", "-p", "The capital of France is", "-n", "8", "--temp", "0"],
        &[],
        REAL_MODEL_TIMEOUT,
    );
    assert_eq!(o.code, Some(0), "stderr: {}", o.stderr);
    // llama.cpp's greedy continuation is " Paris. ...".
    assert!(o.stdout.starts_with(" Paris"), "stdout: {:?}", o.stdout);
    // Golden ids: /work/shared/golden/smollm2.json, tokenization "hello".
    let o = fovea_with(&["tokenize", "Hello world"], &[], REAL_MODEL_TIMEOUT);
    assert_eq!(o.code, Some(0), "stderr: {}", o.stderr);
    assert_eq!(o.stdout.trim(), "[19556,905]");
}
