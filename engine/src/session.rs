//! A session: one model, one KV cache, one position — the state of a conversation or a stream.

use fovea_kernels::isa::Isa;
use fovea_kernels::table::QuantKernels;

#[cfg(feature = "vulkan")]
use crate::backend::vulkan::{self, DeviceResult, VulkanForward};
use crate::backend::Backend;
use crate::error::{EngineError, Result};
use crate::kv::{KvMode, KvOptions, SelectStats};
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
    /// Threads for generation (batches of one token); 0 = physical cores.
    pub n_threads: usize,
    /// Threads for prompt processing (batches of more than one token, llama.cpp's
    /// `--threads-batch`); 0 = the same as `n_threads` (as in llama.cpp).
    pub n_threads_batch: usize,
    /// Force a kernel ISA (`None` = the best the CPU has).
    pub isa: Option<Isa>,
    /// Tokens per forward pass when a long prompt is split (bounds scratch memory).
    pub n_ubatch: usize,
    /// KV-cache mode (`full` by default). In the other modes memory is bounded by the budget and
    /// `ram_bytes`, and `n_ctx` (0: unlimited) may exceed the trained context.
    pub kv: KvOptions,
    /// Where the forward pass runs (CPU by default).
    pub backend: Backend,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            n_ctx: 0,
            n_threads: 0,
            n_threads_batch: 0,
            isa: None,
            n_ubatch: 512,
            kv: KvOptions::default(),
            backend: Backend::Cpu,
        }
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
    /// The device layers, with `Backend::Vulkan`.
    #[cfg(feature = "vulkan")]
    device: Option<VulkanForward>,
}

impl<'m> Session<'m> {
    pub fn new(model: &'m Model, opts: &SessionOptions) -> Result<Session<'m>> {
        let c = &model.config;
        let paged = opts.kv.mode != KvMode::Full;
        // The paged modes' budget split, checked before anything is allocated or opened.
        let plan = if paged { Some(opts.kv.plan()?) } else { None };
        let n_ctx = match opts.n_ctx {
            0 if paged => usize::MAX,
            0 => c.n_ctx_train.min(DEFAULT_MAX_CTX),
            n => n,
        };
        if n_ctx == 0 {
            return Err(EngineError::InvalidSetting("context size must be at least 1".into()));
        }
        if opts.n_ubatch == 0 {
            return Err(EngineError::InvalidSetting("micro-batch size must be at least 1".into()));
        }
        // The whole KV cache is allocated up front: ask first, so an impossible context size is an
        // error rather than an allocation-failure abort (an unused reservation touches no pages).
        let kv_floats = KvCache::floats_needed(c, n_ctx, opts.n_ubatch);
        if !paged && kv_floats.is_none_or(|n| Vec::<f32>::new().try_reserve_exact(n).is_err()) {
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
        let n_threads_batch = if opts.n_threads_batch == 0 { n_threads } else { opts.n_threads_batch };
        if n_threads.max(n_threads_batch) > MAX_THREADS {
            return Err(EngineError::InvalidSetting(format!(
                "{} threads requested; at most {MAX_THREADS} are supported",
                n_threads.max(n_threads_batch)
            )));
        }
        #[cfg(feature = "vulkan")]
        let device = match opts.backend {
            Backend::Cpu => None,
            Backend::Vulkan { .. } if paged && opts.kv.mode != KvMode::Window => {
                return Err(EngineError::InvalidSetting(vulkan::kv_mode_unsupported(opts.kv.mode)))
            }
            Backend::Vulkan { gpu_layers } => {
                let layers = gpu_layers.unwrap_or(c.n_layer);
                Some(VulkanForward::new(model, layers, n_ctx, opts.n_ubatch, plan.as_ref())?)
            }
        };
        #[cfg(not(feature = "vulkan"))]
        if opts.backend != Backend::Cpu {
            return Err(EngineError::InvalidSetting(
                "this build has no Vulkan backend (feature `vulkan`)".into(),
            ));
        }
        Ok(Session {
            model,
            compute: Compute::with_threads(kernels, n_threads, n_threads_batch),
            cache: match plan {
                Some(plan) => KvCache::new_sparse(c, n_ctx, opts.n_ubatch, plan)?,
                None => KvCache::new(c, n_ctx, opts.n_ubatch),
            },
            n_past: 0,
            n_ubatch: opts.n_ubatch,
            #[cfg(feature = "vulkan")]
            device,
        })
    }

    /// One micro-batch at position n_past through the backend: the device layers first (if
    /// any), then the CPU layers from where the device stopped.
    fn forward_batch(&mut self, tokens: &[u32], logits_from: usize) -> Result<Vec<f32>> {
        #[cfg(feature = "vulkan")]
        if let Some(dev) = &mut self.device {
            return Ok(match dev.forward(self.model, tokens, self.n_past, logits_from)? {
                DeviceResult::Logits(logits) => logits,
                DeviceResult::Residual(x) => {
                    let first = dev.gpu_layers();
                    self.model.forward_layers(
                        &self.compute,
                        &mut self.cache,
                        first,
                        x,
                        self.n_past,
                        logits_from,
                    )
                }
            });
        }
        Ok(self.model.forward(&self.compute, &mut self.cache, tokens, self.n_past, logits_from))
    }

    /// The backend this session runs on (`Vulkan` with the number of device layers).
    pub fn backend(&self) -> Backend {
        #[cfg(feature = "vulkan")]
        if let Some(dev) = &self.device {
            return Backend::Vulkan { gpu_layers: Some(dev.gpu_layers()) };
        }
        Backend::Cpu
    }

    /// The Vulkan device's name, when the session runs on one.
    pub fn device_name(&self) -> Option<String> {
        #[cfg(feature = "vulkan")]
        if let Some(dev) = &self.device {
            return Some(dev.gpu().info.name.clone());
        }
        None
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

    /// Threads used for generation (single-token batches).
    pub fn n_threads(&self) -> usize {
        self.compute.n_threads()
    }

    /// Threads used for prompt processing (batches of more than one token).
    pub fn n_threads_batch(&self) -> usize {
        self.compute.n_threads_batch()
    }

    pub fn isa(&self) -> Isa {
        self.compute.kernels.isa
    }

    pub fn kv_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// Bytes of KV pages moved to the spill file (non-full modes past `--kv-ram`).
    pub fn kv_spilled_bytes(&self) -> usize {
        self.cache.sparse().map_or(0, |s| s.spilled_bytes())
    }

    /// Bytes of the always-resident page summaries and tree (part of [`Session::kv_bytes`]).
    pub fn kv_summary_bytes(&self) -> usize {
        self.cache.sparse().map_or(0, |s| s.summary_bytes())
    }

    /// Page-selection counters of the fovea mode (None for the other modes).
    pub fn kv_select_stats(&self) -> Option<SelectStats> {
        self.cache.sparse().map(|s| s.stats())
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

    /// Whether [`Session::truncate`] to `n` would keep `n` tokens (the paged KV modes resume only
    /// where they stopped: their page summaries cannot be un-merged).
    pub fn can_rewind_to(&self, n: usize) -> bool {
        n <= self.n_past && self.cache.can_resume_at(n)
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
            self.compute.begin_batch(end - start);
            let rows = self.forward_batch(&tokens[start..end], from)?;
            if let Some(e) = self.cache.sparse_mut().and_then(|s| s.end_batch()) {
                return Err(e);
            }
            out.extend_from_slice(&rows);
            self.n_past += end - start;
            start = end;
        }
        Ok(out)
    }
}
