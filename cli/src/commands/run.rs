//! `fovea run`: stream a continuation of a prompt.

use std::io::Write;

use anyhow::{bail, Result};
use fovea_engine::generate::{generate, GenerateOptions, StopReason};

use crate::common::{load_model, new_session, ComputeArgs, ModelArg, SamplingArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// The prompt (special-token text such as <|im_start|> maps to its token).
    #[arg(short = 'p', long = "prompt")]
    prompt: String,
    /// Wrap the prompt in the model's chat template as one user turn.
    #[arg(long = "chat")]
    chat: bool,
    /// System message for --chat.
    #[arg(long = "system", requires = "chat")]
    system: Option<String>,
    /// Tokens to generate.
    #[arg(short = 'n', long = "n-predict", default_value_t = 128)]
    n_predict: usize,
    #[command(flatten)]
    sampling: SamplingArgs,
    #[command(flatten)]
    compute: ComputeArgs,
    /// Print model and memory details on stderr.
    #[arg(short = 'v', long = "verbose")]
    verbose: bool,
}

pub fn main(a: Args) -> Result<()> {
    let sampler = a.sampling.config()?;
    let seed = sampler.seed;
    let (model, load_time) = load_model(&a.model, &a.compute)?;
    let mut session = new_session(&model, &a.compute)?;
    let prompt = if a.chat {
        super::chat::single_turn_prompt(&model, a.system.as_deref(), &a.prompt)?
    } else {
        model.tokenizer.encode(&a.prompt, true, true)
    };
    if a.verbose {
        eprintln!(
            "model: {} ({}, {} layers, {} vocab) | isa: {} | threads: {} | ctx: {} | kv: {:.1} MiB | seed: {seed}",
            model.config.name.as_deref().unwrap_or("?"),
            model.config.arch_name,
            model.config.n_layer,
            model.config.n_vocab,
            session.isa().name(),
            session.n_threads(),
            if session.n_ctx() == usize::MAX { "unbounded".to_string() } else { session.n_ctx().to_string() },
            session.kv_bytes() as f64 / (1 << 20) as f64,
        );
    }
    let verbose_kv = a.verbose;
    if prompt.len() > session.n_ctx() {
        bail!(
            "the prompt has {} tokens but the context holds {}; use a shorter prompt or a larger --ctx",
            prompt.len(),
            session.n_ctx()
        );
    }
    let mut stdout = std::io::stdout().lock();
    let stats =
        generate(&mut session, &prompt, &GenerateOptions { max_tokens: a.n_predict, sampler }, |text| {
            // A closed pipe (`| head`) ends generation quietly.
            stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush()).is_ok()
        })?;
    let _ = writeln!(stdout);
    if verbose_kv {
        eprintln!(
            "kv: {} | resident {:.2} MiB | spilled {:.2} MiB",
            a.compute.kv.kv,
            session.kv_bytes() as f64 / (1 << 20) as f64,
            session.kv_spilled_bytes() as f64 / (1 << 20) as f64,
        );
    }
    if stats.stop == StopReason::ContextFull {
        eprintln!("note: stopped because the context ({} tokens) is full", session.n_ctx());
    }
    eprintln!(
        "load: {:.0} ms | prompt: {} tokens, {:.1} tok/s | generation: {} tokens, {:.1} tok/s",
        load_time.as_secs_f64() * 1e3,
        stats.prompt_tokens,
        stats.prompt_tokens_per_second(),
        stats.generated_tokens,
        stats.generation_tokens_per_second(),
    );
    Ok(())
}
