//! The generation loop: evaluate the prompt as one batch, then sample and feed back one token at a
//! time, streaming decoded text as whole UTF-8 characters.

use std::time::{Duration, Instant};

use crate::error::{EngineError, Result};
use crate::sampler::{Sampler, SamplerConfig};
use crate::session::{Logits, Session};
use crate::tokenizer::StreamDecoder;

#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub max_tokens: usize,
    pub sampler: SamplerConfig,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    MaxTokens,
    EndOfGeneration,
    ContextFull,
    Cancelled,
}

#[derive(Clone, Debug)]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    pub prompt_time: Duration,
    pub generated_tokens: usize,
    pub generation_time: Duration,
    pub stop: StopReason,
    /// The generated ids, end-of-generation token included when it ended the run.
    pub tokens: Vec<u32>,
}

impl GenerationStats {
    pub fn prompt_tokens_per_second(&self) -> f64 {
        rate(self.prompt_tokens, self.prompt_time)
    }

    /// Rate of the tokens after the first (the first comes from the prompt pass).
    pub fn generation_tokens_per_second(&self) -> f64 {
        rate(self.generated_tokens.saturating_sub(1), self.generation_time)
    }
}

fn rate(n: usize, t: Duration) -> f64 {
    if t.is_zero() {
        0.0
    } else {
        n as f64 / t.as_secs_f64()
    }
}

/// Appends `prompt` to the session and generates up to `max_tokens` tokens. `on_text` receives
/// each complete piece of text and returns false to stop (Ctrl-C).
pub fn generate(
    session: &mut Session<'_>,
    prompt: &[u32],
    opts: &GenerateOptions,
    mut on_text: impl FnMut(&str) -> bool,
) -> Result<GenerationStats> {
    opts.sampler.validate().map_err(EngineError::InvalidSetting)?;
    if prompt.is_empty() {
        return Err(EngineError::InvalidSetting("the prompt is empty (no tokens to condition on)".into()));
    }
    let model = session.model();
    let mut sampler = Sampler::new(opts.sampler.clone());
    prompt.iter().for_each(|&t| sampler.accept(t));

    let t0 = Instant::now();
    let mut logits = session.eval(prompt, Logits::Last)?;
    let prompt_time = t0.elapsed();

    let mut decoder = StreamDecoder::new(&model.tokenizer, false);
    let mut tokens = Vec::new();
    let t1 = Instant::now();
    let mut stop = StopReason::MaxTokens;
    for i in 0..opts.max_tokens {
        let next = sampler.sample(&logits);
        tokens.push(next);
        if model.tokenizer.is_eog(next) {
            stop = StopReason::EndOfGeneration;
            break;
        }
        sampler.accept(next);
        let text = decoder.push(next);
        if !text.is_empty() && !on_text(&text) {
            stop = StopReason::Cancelled;
            break;
        }
        if i + 1 == opts.max_tokens {
            break;
        }
        if session.n_past() >= session.n_ctx() {
            stop = StopReason::ContextFull;
            break;
        }
        logits = session.eval(&[next], Logits::Last)?;
    }
    let rest = decoder.finish();
    if !rest.is_empty() {
        on_text(&rest);
    }
    Ok(GenerationStats {
        prompt_tokens: prompt.len(),
        prompt_time,
        generated_tokens: tokens.len(),
        generation_time: t1.elapsed(),
        stop,
        tokens,
    })
}
