//! `fovea chat` for scripts: a JSON conversation on stdin, one reply on stdout; `--render` prints
//! the rendered prompt exactly. Uses the real default model (smollm2-135m) resolved as a user's
//! would be: the environment is inherited (FOVEA_MODELS or the default cache, fetched on first use).

mod process;

use std::path::PathBuf;
use std::time::Duration;

use process::{run_fovea, Outcome};

/// Generous: a debug build on a loaded 2-core machine, and perhaps a first fetch of the model.
const TIMEOUT: Duration = Duration::from_secs(900);

/// Runs `fovea args...` with `stdin` written to its standard input (a pipe, not a terminal).
fn fovea_stdin(args: &[&str], stdin: &str) -> Outcome {
    run_fovea(args, &[], Some(stdin), TIMEOUT)
}

fn golden(name: &str) -> serde_json::Value {
    let dir = std::env::var_os("FOVEA_GOLDEN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden"));
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One greedy reply to a JSON conversation. llama.cpp's greedy reply to this exact prompt is
/// "The answer to this classic math problem is 4.<|im_end|>" (golden smollm2.json, case
/// chat_template); every step but the end-of-turn one wins by >= 0.75 logits, so the text is
/// stable, and the end-of-turn token must not be printed.
#[test]
fn json_conversation_on_stdin_gets_one_reply() {
    let o =
        fovea_stdin(&["chat", "--temp", "0", "-n", "24"], r#"[{"role":"user","content":"What is 2+2?"}]"#);
    assert_eq!(o.code, Some(0), "stderr: {}", o.stderr);
    assert!(o.stdout.starts_with("The answer to this classic math problem is 4."), "stdout: {:?}", o.stdout);
    assert!(!o.stdout.contains("<|im_end|>") && !o.stdout.contains("<|im_start|>"), "stdout: {:?}", o.stdout);
    assert!(o.stdout.len() < 80, "the reply should end at the end-of-turn token: {:?}", o.stdout);
}

#[test]
fn render_prints_the_golden_prompt_exactly() {
    let doc = golden("smollm2.chat.json");
    let case = &doc["cases"]["multi_turn"];
    let o = fovea_stdin(&["chat", "--render"], &case["messages"].to_string());
    assert_eq!(o.code, Some(0), "stderr: {}", o.stderr);
    assert_eq!(o.stdout, case["rendered"].as_str().expect("rendered"));
}

#[test]
fn render_adds_the_system_option_unless_the_conversation_has_one() {
    let user = r#"[{"role":"user","content":"Hi"}]"#;
    let o = fovea_stdin(&["chat", "--render", "--system", "Be brief."], user);
    assert_eq!(o.code, Some(0), "stderr: {}", o.stderr);
    assert!(
        o.stdout.starts_with("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi"),
        "{:?}",
        o.stdout
    );
    let with_own = r#"[{"role":"system","content":"Own."},{"role":"user","content":"Hi"}]"#;
    let o = fovea_stdin(&["chat", "--render", "--system", "Be brief."], with_own);
    assert!(o.stdout.starts_with("<|im_start|>system\nOwn.<|im_end|>"), "{:?}", o.stdout);
}

#[test]
fn bad_conversations_are_one_line_errors() {
    for bad in ["", "{}", r#"[{"role":"user"}]"#, "[1, 2]"] {
        let o = fovea_stdin(&["chat", "--render"], bad);
        assert_eq!(o.code, Some(1), "input {bad:?}: stdout {:?}", o.stdout);
        // On a fresh machine the model fetch reports its progress first; the error is the last line.
        assert!(
            o.stderr.lines().last().is_some_and(|l| l.starts_with("error: messages: expected a JSON array")),
            "input {bad:?}: {}",
            o.stderr
        );
        assert!(o.stdout.is_empty());
    }
    let o = fovea_stdin(&["chat", "--temp", "0"], "[]");
    assert_eq!(o.code, Some(1));
    assert!(o.stderr.contains("no messages"), "{}", o.stderr);
    let o = fovea_stdin(&["chat", "--render", "--chat-format", "vicuna"], "[]");
    assert_eq!(o.code, Some(1));
    assert!(o.stderr.contains("unknown chat format 'vicuna'"), "{}", o.stderr);
}
