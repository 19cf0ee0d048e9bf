//! `fovea perplexity`: llama-perplexity's method on a text file.

use anyhow::{bail, Context, Result};
use fovea_engine::perplexity::perplexity;

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
    #[command(flatten)]
    compute: ComputeArgs,
}

pub fn main(mut a: Args) -> Result<()> {
    let text =
        std::fs::read_to_string(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
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
