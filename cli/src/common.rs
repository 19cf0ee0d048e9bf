//! What every subcommand shares: finding the model, loading it, and the compute options.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fovea_engine::hub::{self, FetchOptions};
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
    /// Worker threads (default: physical cores).
    #[arg(short = 't', long = "threads")]
    pub threads: Option<usize>,
    /// Context size in tokens (default: the model's trained context, at most 4096).
    #[arg(short = 'c', long = "ctx")]
    pub ctx: Option<usize>,
    /// Force a kernel instruction set: scalar, avx2, avx512, neon (default: the best available; also FOVEA_ISA).
    #[arg(long = "isa")]
    pub isa: Option<String>,
    /// Dequantize all weights to f32 and multiply in f32 (slow; checks the math exactly).
    #[arg(long = "reference")]
    pub reference: bool,
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
        if let Some(c) = self.ctx {
            if c == 0 {
                bail!("--ctx must be at least 1");
            }
            opts.n_ctx = c;
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
