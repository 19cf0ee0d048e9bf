//! Streaming perplexity: the first N tokens of a text fed once, in order, through one cache in
//! chunks, and the loss of every token counted (token i+1 predicted from the logits of token i,
//! across chunk boundaries). Unlike llama-perplexity's method nothing is re-run, so positions
//! deep in the stream (and beyond the trained context) are scored with what the cache kept.

use crate::error::{EngineError, Result};
use crate::perplexity::log_softmax_at;
use crate::session::{Logits, Session};

/// Loss over one range of predicted positions.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Bucket {
    /// Positions of the predicted tokens: start..end.
    pub start: usize,
    pub end: usize,
    pub n: usize,
    pub ppl: f64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct StreamReport {
    pub ppl: f64,
    pub n_scored: usize,
    /// Mean negative log-likelihood per token (nats).
    pub nll: f64,
    pub buckets: Vec<Bucket>,
}

/// Streams `tokens` (the first already BOS when the model adds one) through `session` in chunks
/// of `chunk` tokens, scoring every token after the first; `bucket` tokens per table row.
/// `on_chunk(tokens done, running ppl)` after each chunk.
pub fn streaming_perplexity(
    session: &mut Session<'_>,
    tokens: &[u32],
    chunk: usize,
    bucket: usize,
    mut on_chunk: impl FnMut(usize, f64),
) -> Result<StreamReport> {
    if chunk == 0 || bucket == 0 {
        return Err(EngineError::InvalidSetting("chunk and bucket sizes must be at least 1".into()));
    }
    if tokens.len() < 2 {
        return Err(EngineError::InvalidSetting("streaming perplexity needs at least 2 tokens".into()));
    }
    let n_vocab = session.model().config.n_vocab;
    session.reset();
    // nll[i] = -log p(tokens[i + 1] | tokens[..=i])
    let mut nll = Vec::with_capacity(tokens.len() - 1);
    let mut start = 0;
    while start < tokens.len() {
        let end = (start + chunk).min(tokens.len());
        let logits = session.eval(&tokens[start..end], Logits::From(0))?;
        for (i, row) in logits.chunks_exact(n_vocab).enumerate() {
            if let Some(&next) = tokens.get(start + i + 1) {
                nll.push(-log_softmax_at(row, next as usize));
            }
        }
        start = end;
        on_chunk(end, (nll.iter().sum::<f64>() / nll.len().max(1) as f64).exp());
    }
    let buckets = nll
        .chunks(bucket)
        .enumerate()
        .map(|(b, v)| Bucket {
            start: b * bucket + 1,
            end: b * bucket + 1 + v.len(),
            n: v.len(),
            ppl: (v.iter().sum::<f64>() / v.len() as f64).exp(),
        })
        .collect();
    let mean = nll.iter().sum::<f64>() / nll.len() as f64;
    Ok(StreamReport { ppl: mean.exp(), n_scored: nll.len(), nll: mean, buckets })
}
