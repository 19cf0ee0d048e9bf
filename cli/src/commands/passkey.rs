//! `fovea passkey`: needle-in-a-haystack retrieval. A 5-digit pass key is hidden at a given depth
//! of a repetitive filler text; the prompt ends by asking for it and the model continues greedily.
//! Accuracy per (length, depth) cell shows whether the KV-cache mode can still reach the needle.

use anyhow::{bail, Result};
use fovea_engine::sampler::argmax;
use fovea_engine::{Logits, Model};

use crate::common::{load_model, new_session, ComputeArgs, ModelArg};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// Prompt lengths in tokens (approximate), comma-separated.
    #[arg(long = "lengths", value_delimiter = ',', default_value = "4000")]
    lengths: Vec<usize>,
    /// Depths of the key as percentages of the filler, comma-separated.
    #[arg(long = "depths", value_delimiter = ',', default_value = "10,30,50,70,90")]
    depths: Vec<usize>,
    /// Different keys per cell.
    #[arg(long = "trials", default_value_t = 3)]
    trials: usize,
    /// Prompt tokens per forward pass.
    #[arg(long = "stream-chunk", default_value_t = 64)]
    stream_chunk: usize,
    /// One JSON object on stdout instead of a table.
    #[arg(long = "json")]
    json: bool,
    #[command(flatten)]
    compute: ComputeArgs,
}

const FILLER: &str =
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";

#[derive(serde::Serialize)]
struct Cell {
    length: usize,
    depth: usize,
    correct: usize,
    trials: usize,
    answers: Vec<String>,
}

pub fn main(mut a: Args) -> Result<()> {
    if a.trials == 0 || a.stream_chunk == 0 || a.lengths.is_empty() || a.depths.is_empty() {
        bail!("--trials, --stream-chunk, --lengths and --depths must be non-empty and positive");
    }
    if let Some(d) = a.depths.iter().find(|&&d| d > 100) {
        bail!("--depths are percentages; {d} is above 100");
    }
    let (model, _) = load_model(&a.model, &a.compute)?;
    let max_len = a.lengths.iter().copied().max().unwrap_or(0);
    a.compute.ctx = Some(a.compute.ctx.unwrap_or(max_len + 256));
    let mut session = new_session(&model, &a.compute)?;
    let mut cells = Vec::new();
    let mut seed = 0x9e37_79b9u64;
    for &length in &a.lengths {
        for &depth in &a.depths {
            let mut cell = Cell { length, depth, correct: 0, trials: a.trials, answers: Vec::new() };
            for _ in 0..a.trials {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let key = 10_000 + (seed >> 33) % 90_000;
                let prompt = build_prompt(&model, length, depth, key);
                let answer = continue_greedy(&mut session, &model, &prompt, a.stream_chunk, 8)?;
                if answer.contains(&key.to_string()) {
                    cell.correct += 1;
                }
                cell.answers.push(answer);
            }
            eprintln!("length {length} depth {depth}%: {}/{}", cell.correct, cell.trials);
            cells.push(cell);
        }
    }
    let total: usize = cells.iter().map(|c| c.correct).sum();
    let n = cells.len() * a.trials;
    if a.json {
        let v = serde_json::json!({ "kv": a.compute.kv.kv, "cells": cells, "correct": total, "trials": n });
        println!("{}", serde_json::to_string(&v)?);
    } else {
        println!("| length | depth % | correct |");
        println!("| ---: | ---: | ---: |");
        for c in &cells {
            println!("| {} | {} | {}/{} |", c.length, c.depth, c.correct, c.trials);
        }
        println!("accuracy = {total}/{n}");
    }
    Ok(())
}

/// Filler of about `length` tokens with the key sentence at `depth` percent, then the question.
fn build_prompt(model: &Model, length: usize, depth: usize, key: u64) -> Vec<u32> {
    let tok = &model.tokenizer;
    let intro = "There is an important piece of information hidden inside a lot of irrelevant text. \
                 Find it and memorize it. I will quiz you about it.\n";
    let needle = format!("The pass key is {key}. Remember it. {key} is the pass key. ");
    let question = "\nWhat is the pass key? The pass key is";
    let per_filler = tok.encode(FILLER, false, false).len().max(1);
    let fixed = tok.encode(intro, true, false).len() + tok.encode(&needle, false, false).len() + 12;
    let n_fill = length.saturating_sub(fixed) / per_filler;
    let before = n_fill * depth / 100;
    let mut text = String::from(intro);
    text.push_str(&FILLER.repeat(before));
    text.push_str(&needle);
    text.push_str(&FILLER.repeat(n_fill - before));
    text.push_str(question);
    tok.encode(&text, true, false)
}

/// Feeds `prompt` from an empty cache in chunks of `chunk` tokens, then continues greedily for
/// at most `max` tokens (one token per step, so decode-time selection runs per token).
fn continue_greedy(
    session: &mut fovea_engine::Session<'_>,
    model: &Model,
    prompt: &[u32],
    chunk: usize,
    max: usize,
) -> Result<String> {
    session.reset();
    let mut logits = Vec::new();
    for c in prompt.chunks(chunk) {
        logits = session.eval(c, Logits::Last)?;
    }
    let mut out = Vec::new();
    for _ in 0..max {
        let next = argmax(&logits);
        if model.tokenizer.is_eog(next) {
            break;
        }
        out.push(next);
        logits = session.eval(&[next], Logits::Last)?;
    }
    Ok(model.tokenizer.decode(&out, false))
}
