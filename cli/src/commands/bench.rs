//! `fovea bench`: llama-bench style throughput — prompt processing (ppN) and generation (tgN).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use fovea_engine::{Logits, Session};

use crate::common::{load_model, new_session, ComputeArgs, ModelArg};

/// Bytes per MiB.
const MIB: f64 = 1024.0 * 1024.0;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// Prompt tokens per prompt-processing test (0 skips it).
    #[arg(short = 'p', long = "n-prompt", default_value_t = 512)]
    n_prompt: usize,
    /// Generated tokens per generation test (0 skips it).
    #[arg(short = 'n', long = "n-gen", default_value_t = 128)]
    n_gen: usize,
    /// Repetitions per test.
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    reps: usize,
    /// Context already in the cache before each test, comma-separated (llama-bench's -d).
    #[arg(short = 'd', long = "depth", value_delimiter = ',', default_value = "0")]
    depth: Vec<usize>,
    /// One JSON array instead of a markdown table.
    #[arg(long = "json")]
    json: bool,
    #[command(flatten)]
    compute: ComputeArgs,
}

#[derive(serde::Serialize)]
struct Row {
    test: String,
    n_prompt: usize,
    n_gen: usize,
    depth: usize,
    /// Threads for generation (tgN).
    threads: usize,
    /// Threads for prompt processing (ppN), llama.cpp's `--threads-batch`.
    threads_batch: usize,
    isa: String,
    tokens_per_second: f64,
    stddev: f64,
    samples_ts: Vec<f64>,
    kv_bytes: usize,
    kv_spilled_bytes: usize,
    kv: String,
    peak_rss_bytes: u64,
}

pub fn main(mut a: Args) -> Result<()> {
    if a.reps == 0 {
        bail!("--repetitions must be at least 1");
    }
    if a.n_prompt == 0 && a.n_gen == 0 {
        bail!("nothing to measure: both -p and -n are 0");
    }
    let max_depth = a.depth.iter().copied().max().unwrap_or(0);
    // The context must hold the deepest test; round up so nothing is allocated per test. The
    // paged modes cannot rewind, so their repetitions run one after another past the depth.
    let paged = a.compute.kv.kv != "full";
    let runs = if paged { (a.reps + 1) * (a.n_prompt + a.n_gen) } else { a.n_prompt.max(a.n_gen) };
    let need = max_depth + runs + 1;
    let ctx = *a.compute.ctx.get_or_insert(need);
    if ctx < need {
        bail!("--ctx {ctx} is too small for depth {max_depth} plus the test ({need} tokens needed)");
    }
    let (model, _) = load_model(&a.model, &a.compute)?;
    let mut session = new_session(&model, &a.compute)?;
    let n_vocab = model.config.n_vocab as u64;
    // Deterministic pseudo-random tokens, as llama-bench feeds random ids.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random_tokens = |n: usize| -> Vec<u32> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed % n_vocab) as u32
            })
            .collect()
    };
    let mut rows = Vec::new();
    for &depth in &a.depth {
        let context = random_tokens(depth);
        let mut filled = false;
        let mut tests = Vec::new();
        if a.n_prompt > 0 {
            tests.push((format!("pp{}", a.n_prompt), a.n_prompt, 0));
        }
        if a.n_gen > 0 {
            tests.push((format!("tg{}", a.n_gen), 0, a.n_gen));
        }
        for (name, n_prompt, n_gen) in tests {
            let tokens = random_tokens(n_prompt.max(n_gen));
            // One untimed warm-up run (page faults, caches), then the timed repetitions.
            let mut samples = Vec::with_capacity(a.reps);
            for rep in 0..=a.reps {
                let t = run_once(&mut session, &context, &mut filled, &tokens, n_prompt, n_gen)?;
                if rep > 0 {
                    samples.push(t);
                }
            }
            let n = (n_prompt + n_gen) as f64;
            let ts: Vec<f64> = samples.iter().map(|s| n / s).collect();
            let mean = ts.iter().sum::<f64>() / ts.len() as f64;
            let var = if ts.len() > 1 {
                ts.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (ts.len() - 1) as f64
            } else {
                0.0
            };
            rows.push(Row {
                test: name,
                n_prompt,
                n_gen,
                depth,
                threads: session.n_threads(),
                threads_batch: session.n_threads_batch(),
                isa: session.isa().name().to_string(),
                tokens_per_second: mean,
                stddev: var.sqrt(),
                samples_ts: ts,
                kv_bytes: session.kv_bytes(),
                kv_spilled_bytes: session.kv_spilled_bytes(),
                kv: a.compute.kv.kv.clone(),
                peak_rss_bytes: peak_rss_bytes(),
            });
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let name = model.config.name.as_deref().unwrap_or("?");
        println!("| model | threads | isa | test | depth | t/s | kv MiB | peak RSS MiB |");
        println!("| --- | ---: | --- | --- | ---: | ---: | ---: | ---: |");
        for r in &rows {
            println!(
                "| {name} | {} | {} | {} | {} | {:.2} ± {:.2} | {:.1} | {:.1} |",
                r.threads,
                r.isa,
                r.test,
                r.depth,
                r.tokens_per_second,
                r.stddev,
                r.kv_bytes as f64 / MIB,
                r.peak_rss_bytes as f64 / MIB
            );
        }
    }
    Ok(())
}

/// Seconds for one test: fill the cache to `context`, then time either a prompt of `n_prompt`
/// tokens in one batch or `n_gen` single-token steps.
/// One timed test after `context`, filled once per depth: later repetitions rewind to it, or, in
/// the paged KV modes (which cannot rewind), continue where the previous one stopped, so
/// repetition r of a test of n tokens starts at depth + r * n. (Refilling 128K tokens of
/// context per repetition would take longer than the whole measurement.)
fn run_once(
    session: &mut Session<'_>,
    context: &[u32],
    filled: &mut bool,
    tokens: &[u32],
    n_prompt: usize,
    n_gen: usize,
) -> Result<f64> {
    if context.is_empty() || !*filled {
        session.reset();
        fill(session, context)?;
        *filled = true;
    } else if session.can_rewind_to(context.len()) {
        session.truncate(context.len());
    }
    let t0 = Instant::now();
    if n_prompt > 0 {
        session.eval(&tokens[..n_prompt], Logits::Last)?;
    }
    for &tok in &tokens[..n_gen] {
        session.eval(&[tok], Logits::Last)?;
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// Feeds `context` as prompt chunks. A long fill (128K tokens take minutes) reports its progress
/// on stderr every few seconds: tokens, rate, resident and spilled KV, and the process's RSS.
fn fill(session: &mut Session<'_>, context: &[u32]) -> Result<()> {
    const CHUNK: usize = 4096;
    const EVERY: Duration = Duration::from_secs(10);
    let t0 = Instant::now();
    let mut last = t0;
    for (i, chunk) in context.chunks(CHUNK).enumerate() {
        session.eval(chunk, Logits::Last)?;
        let done = (i * CHUNK + chunk.len()).min(context.len());
        if last.elapsed() >= EVERY && done < context.len() {
            last = Instant::now();
            let secs = t0.elapsed().as_secs_f64();
            eprintln!(
                "filling: {done}/{} tokens, {:.0} s, {:.1} t/s, KV resident {:.1} MiB, spilled {:.1} MiB, RSS {:.1} MiB",
                context.len(),
                secs,
                done as f64 / secs,
                session.kv_bytes() as f64 / MIB,
                session.kv_spilled_bytes() as f64 / MIB,
                rss_bytes("VmRSS:") as f64 / MIB,
            );
        }
    }
    Ok(())
}

/// The process's peak resident set (VmHWM), 0 where /proc is not available.
fn peak_rss_bytes() -> u64 {
    rss_bytes("VmHWM:")
}

/// A size field of /proc/self/status (`VmRSS:`, `VmHWM:`) in bytes, 0 where it is unavailable.
fn rss_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| {
                l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).map(|kb| kb * 1024)
            })
        })
        .unwrap_or(0)
}
