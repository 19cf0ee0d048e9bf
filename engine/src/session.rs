//! A session: one model, one KV cache, one position — the state of a conversation or a stream.

use fovea_kernels::isa::Isa;
use fovea_kernels::table::QuantKernels;

use crate::error::{EngineError, Result};
use crate::kv_cache::KvCache;
use crate::matmul::Compute;
use crate::model::Model;
use crate::threadpool::physical_cores;

/// Context sizes above this are not allocated by default: the trained context of modern models
/// (128K) would take gigabytes of KV cache that a short chat never uses.
pub const DEFAULT_MAX_CTX: usize = 4096;

/// ggml's `GGML_MAX_N_THREADS`: more workers never help, and thousands may not even be spawnable.
pub const MAX_THREADS: usize = 512;

#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// Context length in tokens; 0 = min(trained context, DEFAULT_MAX_CTX).
    pub n_ctx: usize,
    /// Worker threads; 0 = physical cores.
    pub n_threads: usize,
    /// Force a kernel ISA (`None` = the best the CPU has).
    pub isa: Option<Isa>,
    /// Tokens per forward pass when a long prompt is split (bounds scratch memory).
    pub n_ubatch: usize,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions { n_ctx: 0, n_threads: 0, isa: None, n_ubatch: 512 }
    }
}

/// Which rows of a batch to return logits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    /// Only the last token's (generation).
    Last,
    /// Tokens `i..` of the batch (perplexity scores the second half of a chunk).
    From(usize),
}

pub struct Session<'m> {
    model: &'m Model,
    compute: Compute,
    cache: KvCache,
    n_past: usize,
    n_ubatch: usize,
}

impl<'m> Session<'m> {
    pub fn new(model: &'m Model, opts: &SessionOptions) -> Result<Session<'m>> {
        let c = &model.config;
        let n_ctx = if opts.n_ctx == 0 { c.n_ctx_train.min(DEFAULT_MAX_CTX) } else { opts.n_ctx };
        if n_ctx == 0 {
            return Err(EngineError::InvalidSetting("context size must be at least 1".into()));
        }
        if opts.n_ubatch == 0 {
            return Err(EngineError::InvalidSetting("micro-batch size must be at least 1".into()));
        }
        // The whole KV cache is allocated up front: ask first, so an impossible context size is an
        // error rather than an allocation-failure abort (an unused reservation touches no pages).
        let kv_floats = KvCache::floats_needed(c, n_ctx, opts.n_ubatch);
        if kv_floats.is_none_or(|n| Vec::<f32>::new().try_reserve_exact(n).is_err()) {
            return Err(EngineError::InvalidSetting(format!(
                "a context of {n_ctx} tokens needs more KV-cache memory than this machine can allocate"
            )));
        }
        let kernels = match opts.isa {
            None => QuantKernels::detect(),
            Some(isa) => {
                QuantKernels::for_isa(isa).map_err(|e| EngineError::InvalidSetting(e.to_string()))?
            }
        };
        let n_threads = if opts.n_threads == 0 { physical_cores() } else { opts.n_threads };
        if n_threads > MAX_THREADS {
            return Err(EngineError::InvalidSetting(format!(
                "{n_threads} threads requested; at most {MAX_THREADS} are supported"
            )));
        }
        Ok(Session {
            model,
            compute: Compute::new(kernels, n_threads),
            cache: KvCache::new(c, n_ctx, opts.n_ubatch),
            n_past: 0,
            n_ubatch: opts.n_ubatch,
        })
    }

    pub fn model(&self) -> &'m Model {
        self.model
    }

    pub fn n_ctx(&self) -> usize {
        self.cache.n_ctx()
    }

    /// Tokens already in the cache.
    pub fn n_past(&self) -> usize {
        self.n_past
    }

    pub fn n_threads(&self) -> usize {
        self.compute.pool.n_threads()
    }

    pub fn isa(&self) -> Isa {
        self.compute.kernels.isa
    }

    pub fn kv_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// Bytes the KV cache would take with every layer keeping every position (equal to
    /// [`Session::kv_bytes`] unless the model has sliding-window layers).
    pub fn kv_bytes_full(&self) -> usize {
        self.cache.full_bytes()
    }

    /// Forgets every cached token (the buffers are kept).
    pub fn reset(&mut self) {
        self.n_past = 0;
        self.cache.reset();
    }

    /// Drops cached tokens past `n` (to re-run from an earlier point) and returns the tokens kept:
    /// `min(n, n_past)`, or 0 when a sliding-window layer's ring has already overwritten part of
    /// the window that position needs (a step back of more than `n_ubatch` tokens past the
    /// furthest position ever evaluated); then everything must be evaluated again.
    pub fn truncate(&mut self, n: usize) -> usize {
        let n = self.n_past.min(n);
        self.n_past = if self.cache.can_resume_at(n) { n } else { 0 };
        if self.n_past == 0 {
            self.cache.reset();
        }
        self.n_past
    }

    /// Appends `tokens` to the context and returns the requested logits, (rows, n_vocab) row-major.
    /// Long inputs run in micro-batches; an input that does not fit is rejected before any work.
    pub fn eval(&mut self, tokens: &[u32], logits: Logits) -> Result<Vec<f32>> {
        let n_ctx = self.n_ctx();
        if self.n_past + tokens.len() > n_ctx {
            return Err(if self.n_past == 0 {
                EngineError::PromptTooLong { n_tokens: tokens.len(), n_ctx }
            } else {
                EngineError::ContextFull { n_ctx }
            });
        }
        let n_vocab = self.model.config.n_vocab;
        if let Some(&id) = tokens.iter().find(|&&id| id as usize >= n_vocab) {
            return Err(EngineError::BadToken { id, n_vocab });
        }
        let first = match logits {
            Logits::Last => tokens.len().saturating_sub(1),
            Logits::From(i) => i.min(tokens.len()),
        };
        let mut out = Vec::with_capacity((tokens.len() - first) * n_vocab);
        let mut start = 0;
        while start < tokens.len() {
            let end = (start + self.n_ubatch).min(tokens.len());
            let from = first.clamp(start, end) - start;
            let rows =
                self.model.forward(&self.compute, &mut self.cache, &tokens[start..end], self.n_past, from);
            out.extend_from_slice(&rows);
            self.n_past += end - start;
            start = end;
        }
        Ok(out)
    }
}
