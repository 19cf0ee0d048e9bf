//! `fovea logits`: the K highest next-token logits after a prompt, as JSON.

use anyhow::{bail, Result};
use fovea_engine::sampler::top_k;
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
