//! `fovea logits`: the K highest next-token logits after a prompt, as JSON.

use anyhow::{bail, Result};
use fovea_engine::Logits;

use crate::common::{load_model, new_session, ComputeArgs, ModelArg};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    #[arg(short = 'p', long = "prompt")]
    prompt: String,
    /// How many of the highest logits to print.
    #[arg(long = "top", default_value_t = 10)]
    top: usize,
    /// Treat special-token text in the prompt as plain text.
    #[arg(long = "no-parse-special")]
    no_parse_special: bool,
    #[command(flatten)]
    compute: ComputeArgs,
}

#[derive(serde::Serialize)]
struct Entry {
    id: u32,
    logit: f32,
    piece: String,
}

pub fn main(a: Args) -> Result<()> {
    if a.top == 0 {
        bail!("--top must be at least 1");
    }
    let (model, _) = load_model(&a.model, &a.compute)?;
    let mut session = new_session(&model, &a.compute)?;
    let prompt = model.tokenizer.encode(&a.prompt, true, !a.no_parse_special);
    if prompt.is_empty() {
        bail!("the prompt is empty (no tokens to condition on)");
    }
    let logits = session.eval(&prompt, Logits::Last)?;
    let entries: Vec<Entry> = top_k(&logits, a.top)
        .into_iter()
        .map(|(id, logit)| Entry {
            id,
            logit,
            piece: String::from_utf8_lossy(model.tokenizer.token_to_piece(id, true)).into_owned(),
        })
        .collect();
    println!("{}", serde_json::to_string(&entries)?);
    Ok(())
}

/// The k largest (id, logit), highest first, ties broken by the lower id (as the golden data).
pub fn top_k(logits: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut all: Vec<(u32, f32)> = logits.iter().enumerate().map(|(i, &l)| (i as u32, l)).collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}
