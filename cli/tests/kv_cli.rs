//! `--kv*` on the command line: streaming perplexity and pass-key runs in every mode on a tiny
//! model, and clear one-line errors for bad KV flags.

#[path = "../../engine/tests/support/mod.rs"]
mod support;

mod process;

use std::time::Duration;

use process::{run_fovea, Outcome};
use support::TinyConfig;

const TIMEOUT: Duration = Duration::from_secs(120);

fn fovea(args: &[&str]) -> Outcome {
    run_fovea(args, &[("FOVEA_OFFLINE", "1"), ("FOVEA_ISA", "")], None, TIMEOUT)
}

fn text_file() -> support::TempFile {
    let text = "hello world, tiny models say hello. ".repeat(40);
    support::TempFile::with_contents("kv-text", "txt", text.as_bytes())
}

/// The last number on stdout ("PPL = x").
fn last_number(stdout: &str) -> f64 {
    let last = stdout.lines().last().unwrap_or("");
    last.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no number in '{last}'"))
}

#[test]
fn streaming_perplexity_runs_in_every_mode_and_equals_full_within_the_budget() {
    let model = TinyConfig::quantized().build().write("kv-cli");
    let text = text_file();
    let ppl = |kv: &[&str]| {
        let mut args = vec!["perplexity", "-m", model.arg(), "-f", text.arg(), "--streaming", "-c", "100"];
        args.extend_from_slice(kv);
        let o = fovea(&args);
        assert_eq!(o.code, Some(0), "{args:?}: {}", o.stderr);
        assert!(o.stderr.contains("| 1..100 |"), "{args:?}: no bucket table:\n{}", o.stderr);
        last_number(&o.stdout)
    };
    let full = ppl(&["--kv", "full"]);
    assert!(full.is_finite() && full > 1.0);
    for mode in ["window", "dilated", "fovea"] {
        // Budget 128 >= 100 tokens: everything is attended, the same bits as the full cache.
        assert_eq!(ppl(&["--kv", mode, "--kv-budget", "128"]), full, "{mode}");
        let small = ppl(&["--kv", mode, "--kv-budget", "32", "--kv-page", "8", "--kv-ram", "64K"]);
        assert!(small.is_finite() && small != full, "{mode}: {small}");
    }
}

#[test]
fn bad_kv_flags_are_one_line_errors() {
    let model = TinyConfig::quantized().build().write("kv-cli-bad");
    let text = text_file();
    for (flags, says) in [
        (&["--kv", "sparse"][..], "unknown --kv 'sparse'"),
        (&["--kv-budget", "64"][..], "--kv-budget needs a non-full --kv mode"),
        (&["--kv", "window", "--kv-budget", "8", "--kv-sinks", "8"][..], "--kv-sinks 8"),
        (&["--kv", "fovea", "--kv-ram", "12Q"][..], "unknown unit 'Q'"),
        (&["--kv", "fovea", "--kv-ram", "100"][..], "--kv-ram 100"),
        (&["--kv", "fovea", "--kv-score", "best"][..], "--kv-score 'best'"),
    ] {
        let mut args = vec!["perplexity", "-m", model.arg(), "-f", text.arg(), "--streaming", "-c", "50"];
        args.extend_from_slice(flags);
        let o = fovea(&args);
        assert_eq!(o.code, Some(1), "{flags:?}: {}", o.stderr);
        assert!(!o.stderr.contains("panicked"), "{flags:?}: {}", o.stderr);
        assert!(o.stderr.contains(says), "{flags:?}: stderr does not say '{says}':\n{}", o.stderr);
    }
}

#[test]
fn passkey_runs_and_reports_accuracy() {
    let model = TinyConfig::quantized().build().write("kv-cli-passkey");
    let o = fovea(&[
        "passkey",
        "-m",
        model.arg(),
        "--lengths",
        "120",
        "--depths",
        "50",
        "--trials",
        "1",
        "--kv",
        "fovea",
        "--kv-budget",
        "64",
        "--kv-page",
        "8",
    ]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(o.stdout.contains("accuracy = "), "{}", o.stdout);
}
