//! `--threads` / `--threads-batch` as `fovea bench --json` reports them (llama.cpp's `-t`/`-tb`):
//! generation on one count, prompt processing on the other, the batch count defaulting to the
//! generation count.

#[path = "../../engine/tests/support/mod.rs"]
mod support;

mod process;

use std::time::Duration;

use process::run_fovea;
use support::{TempFile, TinyConfig};

/// Generous: a debug build on a loaded 2-core machine.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The JSON rows of `fovea bench` on `m` with `extra` arguments.
fn bench_rows(m: &TempFile, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["bench", "-m", m.arg(), "-p", "8", "-n", "4", "-r", "1", "--json"];
    args.extend_from_slice(extra);
    let o = run_fovea(&args, &[("FOVEA_OFFLINE", "1"), ("FOVEA_ISA", "")], None, TIMEOUT);
    assert_eq!(o.code, Some(0), "fovea {args:?} failed:\nstdout: {}\nstderr: {}", o.stdout, o.stderr);
    let rows: serde_json::Value = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("fovea {args:?}: stdout is not JSON ({e}):\n{}", o.stdout));
    let rows = rows.as_array().cloned().unwrap_or_default();
    let tests: Vec<&str> = rows.iter().filter_map(|r| r["test"].as_str()).collect();
    assert_eq!(tests, ["pp8", "tg4"], "fovea {args:?}: rows {rows:?}");
    rows
}

/// (threads, threads_batch) of every row.
fn threads(rows: &[serde_json::Value]) -> Vec<(u64, u64)> {
    rows.iter()
        .map(|r| {
            let get = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("row without '{k}': {r}"));
            (get("threads"), get("threads_batch"))
        })
        .collect()
}

#[test]
fn bench_json_reports_both_thread_counts() {
    let m = TinyConfig::quantized().build().write("bench-threads");
    assert_eq!(threads(&bench_rows(&m, &["-t", "1", "--threads-batch", "2"])), [(1, 2), (1, 2)]);
    assert_eq!(threads(&bench_rows(&m, &["-t", "2", "--tb", "1"])), [(2, 1), (2, 1)]);
    // Without --threads-batch, prompt processing uses the generation count (as in llama.cpp).
    assert_eq!(threads(&bench_rows(&m, &["-t", "1"])), [(1, 1), (1, 1)]);
}

#[test]
fn zero_batch_threads_is_an_error() {
    let m = TinyConfig::quantized().build().write("bench-threads-zero");
    let args = ["bench", "-m", m.arg(), "-p", "8", "-n", "0", "--threads-batch", "0"];
    let o = run_fovea(&args, &[("FOVEA_OFFLINE", "1")], None, TIMEOUT);
    assert_eq!(o.code, Some(1), "stderr: {}", o.stderr);
    assert!(o.stderr.contains("--threads-batch must be at least 1"), "stderr: {}", o.stderr);
    assert!(!o.stderr.contains("panicked"), "stderr: {}", o.stderr);
}
