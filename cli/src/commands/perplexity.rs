//! `fovea perplexity`: llama-perplexity's method on a text file, or (`--streaming`) the first N
//! tokens fed once through one cache with every token's loss counted.

use anyhow::{bail, Context, Result};
use fovea_engine::perplexity::perplexity;
use fovea_engine::perplexity_stream::streaming_perplexity;

use crate::common::{load_model, new_session, ComputeArgs, ModelArg};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// UTF-8 text file to score.
    #[arg(short = 'f', long = "file")]
    file: std::path::PathBuf,
    /// Score at most this many chunks (default: all).
    #[arg(long = "chunks")]
    chunks: Option<usize>,
    /// Feed the first -c tokens (default: all) once through one cache, scoring every token.
    #[arg(long = "streaming")]
    streaming: bool,
    /// Tokens per forward pass in --streaming.
    #[arg(long = "stream-chunk", default_value_t = 64, requires = "streaming")]
    stream_chunk: usize,
    /// Tokens per row of the --streaming position table.
    #[arg(long = "bucket", default_value_t = 1024, requires = "streaming")]
    bucket: usize,
    /// --streaming: print the report as JSON on stdout (before the final PPL line).
    #[arg(long = "json", requires = "streaming")]
    json: bool,
    #[command(flatten)]
    compute: ComputeArgs,
}

pub fn main(mut a: Args) -> Result<()> {
    let text =
        std::fs::read_to_string(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    if a.streaming {
        return streaming(a, &text);
    }
    // The chunk size is the context size (llama-perplexity's -c); default 512 as there.
    let n_ctx = *a.compute.ctx.get_or_insert(512);
    if a.chunks == Some(0) {
        bail!("--chunks must be at least 1");
    }
    let (model, _) = load_model(&a.model, &a.compute)?;
    let mut session = new_session(&model, &a.compute)?;
    let tokens = model.tokenizer.encode(&text, true, false);
    let bos = if model.tokenizer.add_bos() { model.tokenizer.bos() } else { None };
    eprintln!("perplexity: {} tokens, chunks of {n_ctx}", tokens.len());
    let report = perplexity(&mut session, &tokens, n_ctx, bos, a.chunks, |p| {
        eprintln!("[{}/{}] running PPL = {:.4}", p.chunk, p.n_chunks, p.running_ppl);
    })?;
    println!(
        "chunks: {}, scored tokens: {}, stderr: {:.5}",
        report.n_chunks, report.scored_tokens, report.stderr
    );
    println!("PPL = {:.4}", report.ppl);
    Ok(())
}

fn streaming(mut a: Args, text: &str) -> Result<()> {
    if a.stream_chunk == 0 || a.bucket == 0 {
        bail!("--stream-chunk and --bucket must be at least 1");
    }
    let (model, _) = load_model(&a.model, &a.compute)?;
    let mut tokens = model.tokenizer.encode(text, true, false);
    let n = a.compute.ctx.unwrap_or(tokens.len());
    if n > tokens.len() {
        bail!("-c {n} asks for more tokens than the file has ({})", tokens.len());
    }
    tokens.truncate(n);
    // The session's context is the stream's length: in the non-full modes it bounds positions
    // only (memory is bounded by --kv-budget and --kv-ram).
    a.compute.ctx = Some(n.max(1));
    let mut session = new_session(&model, &a.compute)?;
    eprintln!("streaming perplexity: {n} tokens in chunks of {}, kv {}", a.stream_chunk, a.compute.kv.kv);
    let t0 = std::time::Instant::now();
    let report = streaming_perplexity(&mut session, &tokens, a.stream_chunk, a.bucket, |done, ppl| {
        if done % 1024 < a.stream_chunk {
            eprintln!("[{done}/{n}] running PPL = {ppl:.4}");
        }
    })?;
    let secs = t0.elapsed().as_secs_f64();
    if a.json {
        let mut v = serde_json::to_value(&report)?;
        v["kv"] = a.compute.kv.kv.clone().into();
        v["kv_bytes"] = session.kv_bytes().into();
        v["kv_spilled_bytes"] = session.kv_spilled_bytes().into();
        v["seconds"] = secs.into();
        if let Some(s) = session.kv_select_stats() {
            v["select"] = serde_json::json!({
                "selections": s.selections, "nodes_scored": s.nodes_scored, "pages_eligible": s.pages_eligible
            });
        }
        println!("{}", serde_json::to_string(&v)?);
    } else {
        eprintln!("| tokens | n | PPL |");
        eprintln!("| --- | ---: | ---: |");
        for b in &report.buckets {
            eprintln!("| {}..{} | {} | {:.4} |", b.start, b.end, b.n, b.ppl);
        }
        eprintln!(
            "kv: {} | resident {:.2} MiB | spilled {:.2} MiB | {:.1} s",
            a.compute.kv.kv,
            session.kv_bytes() as f64 / (1 << 20) as f64,
            session.kv_spilled_bytes() as f64 / (1 << 20) as f64,
            secs
        );
    }
    println!("scored tokens: {}", report.n_scored);
    println!("PPL = {:.4}", report.ppl);
    Ok(())
}
