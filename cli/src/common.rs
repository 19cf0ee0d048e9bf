//! What every subcommand shares: finding the model, loading it, and the compute options.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fovea_engine::hub::{self, FetchOptions};
use fovea_engine::sampler::SamplerConfig;
use fovea_engine::{LoadOptions, Model, Session, SessionOptions};
use fovea_kernels::isa::Isa;

/// `-m MODEL`: a path or a known short name.
#[derive(clap::Args, Clone, Debug)]
pub struct ModelArg {
    /// Model file (GGUF) or known name (smollm2-135m, gemma3-270m); fetched and cached on first use.
    #[arg(short = 'm', long = "model", default_value = hub::default_model_name())]
    pub model: String,
}

/// Options that choose how the model runs.
#[derive(clap::Args, Clone, Debug)]
pub struct ComputeArgs {
    /// Threads for generation (default: physical cores).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Threads for prompt processing, batches of more than one token (default: same as --threads).
    #[arg(long = "threads-batch", visible_alias = "tb")]
    pub threads_batch: Option<usize>,
    /// Context size in tokens (default: the model's trained context, at most 4096).
    #[arg(short = 'c', long = "ctx")]
    pub ctx: Option<usize>,
    /// Force a kernel instruction set: scalar, avx2, avx512, neon (default: the best available; also FOVEA_ISA).
    #[arg(long = "isa")]
    pub isa: Option<String>,
    /// Dequantize all weights to f32 and multiply in f32 (slow; checks the math exactly).
    #[arg(long = "reference")]
    pub reference: bool,
    #[command(flatten)]
    pub kv: crate::kv_args::KvArgs,
    /// Compute backend: cpu or vulkan.
    #[arg(long = "backend", default_value = "cpu")]
    pub backend: String,
    /// With --backend vulkan: run the first N layers on the device, the rest on the CPU (default: all).
    #[arg(long = "gpu-layers")]
    pub gpu_layers: Option<usize>,
}

impl ComputeArgs {
    pub fn session_options(&self) -> Result<SessionOptions> {
        let mut opts = SessionOptions::default();
        if let Some(t) = self.threads {
            if t == 0 {
                bail!("--threads must be at least 1");
            }
            opts.n_threads = t;
        }
        if let Some(t) = self.threads_batch {
            if t == 0 {
                bail!("--threads-batch must be at least 1");
            }
            opts.n_threads_batch = t;
        }
        if let Some(c) = self.ctx {
            if c == 0 {
                bail!("--ctx must be at least 1");
            }
            opts.n_ctx = c;
        }
        opts.kv = self.kv.options()?;
        opts.backend = fovea_engine::Backend::from_name(&self.backend, self.gpu_layers)
            .ok_or_else(|| anyhow::anyhow!("unknown backend '{}' (expected cpu or vulkan)", self.backend))?;
        if self.gpu_layers.is_some() && opts.backend == fovea_engine::Backend::Cpu {
            bail!("--gpu-layers needs --backend vulkan");
        }
        let isa_name = self.isa.clone().or_else(|| std::env::var("FOVEA_ISA").ok().filter(|s| !s.is_empty()));
        if let Some(name) = isa_name {
            let isa = Isa::from_name(&name).map_err(|_| {
                anyhow::anyhow!(
                    "unknown instruction set '{name}' (expected one of: scalar, avx2, avx512, neon)"
                )
            })?;
            opts.isa = Some(isa.require().map_err(|e| anyhow::anyhow!("{e}"))?);
        }
        Ok(opts)
    }
}

/// Resolves `-m` (fetching a known model on first use) to a file path.
pub fn model_path(arg: &ModelArg) -> Result<PathBuf> {
    Ok(hub::resolve_model(&arg.model, &FetchOptions::from_env())?)
}

/// Loads the model named by `-m`, returning it with the time the load took.
pub fn load_model(arg: &ModelArg, compute: &ComputeArgs) -> Result<(Model, Duration)> {
    let path = model_path(arg)?;
    let t0 = Instant::now();
    let model = Model::load(&path, &LoadOptions { reference_f32: compute.reference })
        .with_context(|| format!("cannot load model '{}'", arg.model))?;
    Ok((model, t0.elapsed()))
}

pub fn new_session<'m>(model: &'m Model, compute: &ComputeArgs) -> Result<Session<'m>> {
    Ok(Session::new(model, &compute.session_options()?)?)
}

/// Sampling options shared by `run` and `chat` (llama.cpp's defaults).
#[derive(clap::Args, Clone, Debug)]
pub struct SamplingArgs {
    /// Sampling temperature; 0 = greedy.
    #[arg(long = "temp", default_value_t = 0.8, allow_negative_numbers = true)]
    temp: f32,
    /// Keep the K most likely tokens (0 = all).
    #[arg(long = "top-k", default_value_t = 40)]
    top_k: usize,
    /// Keep the smallest set of tokens with probability mass P (1 = off).
    #[arg(long = "top-p", default_value_t = 0.95, allow_negative_numbers = true)]
    top_p: f32,
    /// Drop tokens less likely than P times the most likely one (0 = off).
    #[arg(long = "min-p", default_value_t = 0.05, allow_negative_numbers = true)]
    min_p: f32,
    /// Penalize repeats of the last 64 tokens (1 = off).
    #[arg(long = "repeat-penalty", default_value_t = 1.0, allow_negative_numbers = true)]
    repeat_penalty: f32,
    /// Random seed (same seed, same output; default: from the clock).
    #[arg(long = "seed")]
    seed: Option<u64>,
}

impl SamplingArgs {
    /// The validated sampler configuration.
    pub fn config(&self) -> Result<SamplerConfig> {
        let seed = self.seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
        let sampler = SamplerConfig {
            temperature: self.temp,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            seed,
            ..SamplerConfig::default()
        };
        if let Err(e) = sampler.validate() {
            bail!("{e}");
        }
        Ok(sampler)
    }
}
