//! Perplexity exactly as llama.cpp's `llama-perplexity` computes it.
//!
//! The token stream is cut into non-overlapping chunks of `n_ctx` tokens (the tail is dropped);
//! each chunk runs in a fresh cache; when the model adds BOS, the chunk's first token is replaced
//! by BOS; only the second half of each chunk is scored (positions n_ctx/2 .. n_ctx-2 predicting
//! the next token), so every scored token has at least n_ctx/2 tokens of context.

use crate::error::{EngineError, Result};
use crate::session::{Logits, Session};

#[derive(Clone, Debug)]
pub struct ChunkProgress {
    /// 1-based chunk number.
    pub chunk: usize,
    pub n_chunks: usize,
    /// Perplexity over all chunks so far.
    pub running_ppl: f64,
}

#[derive(Clone, Debug)]
pub struct PerplexityReport {
    pub ppl: f64,
    /// Standard error of the estimate, as llama.cpp prints it.
    pub stderr: f64,
    pub n_chunks: usize,
    pub scored_tokens: usize,
}

/// Perplexity of `tokens` (tokenized with add_special = true) with chunks of `n_ctx` tokens.
/// `bos` is `Some` when the model adds BOS; `max_chunks` limits the run (None = all chunks).
pub fn perplexity(
    session: &mut Session<'_>,
    tokens: &[u32],
    n_ctx: usize,
    bos: Option<u32>,
    max_chunks: Option<usize>,
    mut on_chunk: impl FnMut(&ChunkProgress),
) -> Result<PerplexityReport> {
    if n_ctx < 4 {
        return Err(EngineError::InvalidSetting(format!(
            "perplexity context must be at least 4, got {n_ctx}"
        )));
    }
    if n_ctx > session.n_ctx() {
        return Err(EngineError::InvalidSetting(format!(
            "perplexity context {n_ctx} exceeds the session's context {}",
            session.n_ctx()
        )));
    }
    let available = tokens.len() / n_ctx;
    // llama-perplexity's own requirement: at least two chunks' worth of tokens.
    if tokens.len() < 2 * n_ctx {
        return Err(EngineError::InvalidSetting(format!(
            "the text has {} tokens; perplexity needs at least 2 * n_ctx = {} (use a smaller context)",
            tokens.len(),
            2 * n_ctx
        )));
    }
    let n_chunks = max_chunks.map_or(available, |m| m.min(available));
    let first = n_ctx / 2;
    let n_vocab = session.model().config.n_vocab;
    let (mut nll, mut nll2, mut count) = (0.0f64, 0.0f64, 0usize);
    let mut input = vec![0u32; n_ctx];
    for chunk in 0..n_chunks {
        let start = chunk * n_ctx;
        input.copy_from_slice(&tokens[start..start + n_ctx]);
        if let Some(bos) = bos {
            input[0] = bos;
        }
        session.reset();
        let logits = session.eval(&input, Logits::From(first))?;
        // logits row i is position first + i and predicts token first + i + 1.
        for (i, row) in logits.chunks_exact(n_vocab).take(n_ctx - 1 - first).enumerate() {
            let target = tokens[start + first + i + 1] as usize;
            let v = -log_softmax_at(row, target);
            nll += v;
            nll2 += v * v;
            count += 1;
        }
        on_chunk(&ChunkProgress { chunk: chunk + 1, n_chunks, running_ppl: (nll / count as f64).exp() });
    }
    let mean = nll / count as f64;
    let ppl = mean.exp();
    let var = nll2 / count as f64 - mean * mean;
    let stderr = if var > 0.0 && count > 1 { (var / (count - 1) as f64).sqrt() * ppl } else { 0.0 };
    Ok(PerplexityReport { ppl, stderr, n_chunks, scored_tokens: count })
}

/// log p(target) under softmax(logits), in f64.
pub fn log_softmax_at(logits: &[f32], target: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    (logits[target] - max) as f64 - sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_of_uniform_row() {
        let row = [0.5f32; 8];
        assert!((log_softmax_at(&row, 3) - (1.0f64 / 8.0).ln()).abs() < 1e-12);
    }
}
