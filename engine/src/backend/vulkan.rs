//! The forward pass on a Vulkan device: weights uploaded once from the mapped file, a device
//! KV cache for the device layers, each layer recorded as a chain of dispatches, and the
//! residual stream handed to the CPU for the layers past `gpu_layers`.
//!
//! One forward = one command buffer (plus one per further group of logit rows), recorded once
//! per batch shape (tokens, logit rows) and re-submitted: generation records its one-token
//! pass once and then only writes inputs and submits. Everything that changes from step to
//! step comes in through a staging buffer the host writes before each submission: the token
//! embeddings (looked up on the CPU, a copy of n rows), the RoPE cos/sin of the batch's
//! positions (from the same `RopeTable` as the CPU, so both rotate by identical angles) and the
//! step word pos0, which the recorded commands copy to the device; the KV store and attention
//! shaders read pos0 from there (push constants would be baked into the recording). The device
//! runs the layers and copies back either the logits (every layer on the device) or the
//! residual stream x (n, d) for `Model::forward_layers` on the CPU.
//!
//! The KV cache of a device layer is K (rows, n_kv · hd) and V (rows, n_kv · hdv) in f32: with
//! the full cache every position has its row (row = position), so storing a batch's keys is one
//! row copy and truncating the sequence needs no bookkeeping. Sliding-window layers keep a ring
//! of window + n_ubatch rows (as the CPU's cache), and so do the global layers of the window KV
//! mode after their sink rows (`vulkan_window`): their memory is bounded at any length.

use std::sync::{Arc, Mutex, Weak};

use fovea_formats::GgmlType;
use fovea_kernels::vulkan::{
    attention_groups, attention_heads_per_workgroup, ActQuant, Buffer, DeviceOptions, Gpu, MemKind,
    MemoryStats, Recorder, Recording, Shader, VulkanError, WORKGROUP,
};

use super::vulkan_window::WindowPlan;
use crate::config::{FfnActivation, ModelConfig};
use crate::error::{EngineError, Result};
use crate::kv::{KvMode, KvPlan, KvType};
use crate::kv_cache::KvCache;
use crate::model::{LayerWeights, Model};
use crate::weights::{Matrix, WeightData};

/// The process's device while any session (or caller) holds it: sessions share one instance,
/// device and pipeline cache; the last one dropped closes the device.
static SHARED_GPU: Mutex<Weak<Gpu>> = Mutex::new(Weak::new());

/// The shared device, opened with `opts` if none is open (an open one is returned as it is).
pub fn shared_gpu(opts: &DeviceOptions) -> Result<Arc<Gpu>> {
    let mut slot = SHARED_GPU.lock().map_err(|_| EngineError::Vulkan("device lock poisoned".into()))?;
    if let Some(gpu) = slot.upgrade() {
        return Ok(gpu);
    }
    let gpu = Arc::new(Gpu::new(opts)?);
    *slot = Arc::downgrade(&gpu);
    Ok(gpu)
}

/// Rows of logits computed per output dispatch: bounds the logits buffer (Gemma 3's 262144-word
/// vocabulary is 1 MiB per row).
const LOGIT_BUFFER_BYTES: usize = 32 << 20;

/// Staging buffer for the weight upload.
const UPLOAD_STAGING: u64 = 16 << 20;

/// Batch shapes whose recorded forward is kept (generation, the full prompt batch, a prompt's
/// tail, all-rows logits): a few hundred descriptor sets each; the least recently used goes.
const KEPT_SHAPES: usize = 4;

/// Bytes of the step block at the start of the input staging buffer and in `Scratch::step`:
/// word 0 is pos0 (the batch's first position); padded to 16 bytes.
const STEP_BYTES: u64 = 16;

/// What a recorded forward is specific to: the tokens in the batch and the logit rows wanted
/// (0 when the device returns the residual stream). Positions are not part of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    n: usize,
    n_out: usize,
}

/// A shape's recorded forward: part 0 copies the inputs in and runs the layers (and the first
/// group of logit rows); each further part computes the next group of logit rows.
struct RecordedForward {
    shape: Shape,
    parts: Vec<Recording>,
}

/// A weight matrix on the device, its rows split into chunks of at most one binding each.
struct DeviceMatrix {
    shader: Shader,
    rows: usize,
    cols: usize,
    /// (first row, rows, bytes) per chunk.
    chunks: Vec<(usize, usize, Buffer)>,
}

/// One layer's weights on the device (shared by every session of a model; see `DeviceWeights`).
struct DeviceLayer {
    attn_norm: Buffer,
    q_norm: Option<Buffer>,
    k_norm: Option<Buffer>,
    post_attn_norm: Option<Buffer>,
    post_ffn_norm: Option<Buffer>,
    wq: DeviceMatrix,
    wk: DeviceMatrix,
    wv: DeviceMatrix,
    wo: DeviceMatrix,
    ffn_norm: Buffer,
    w_gate: DeviceMatrix,
    w_up: DeviceMatrix,
    w_down: DeviceMatrix,
}

/// One layer's KV cache on the device (a session's own).
struct LayerCache {
    /// K (rows, n_kv · hd), V (rows, n_kv · hdv).
    k_cache: Buffer,
    v_cache: Buffer,
    /// Rows of the cache: positions below `sinks_rows` have their own, the rest share a ring of
    /// `ring` rows (the full cache: 0 and n_ctx).
    sinks_rows: usize,
    ring: usize,
    /// Whether the layer reads the window mode's per-token records (a global layer under it).
    windowed: bool,
    /// K and V stored as f16 pairs (the window mode with `--kv-type f16`, as the CPU's pages).
    kv_f16: bool,
}

/// A model's first `gpu_layers` layers (and the output when that is all of them) uploaded once
/// and shared by every session that places the same layers on the same device with the same
/// shaders: two sessions of one model hold one copy of the weights.
struct DeviceWeights {
    layers: Vec<DeviceLayer>,
    /// output_norm and the output matrix, when every layer is on the device.
    output: Option<(Buffer, DeviceMatrix)>,
}

/// What device weights are shared by: the model load, the device, the layers, the shader set.
type WeightsKey = (u64, usize, usize, bool);

/// The device weights alive in this process (held by their sessions; dead entries are pruned).
static SHARED_WEIGHTS: Mutex<Vec<(WeightsKey, Weak<DeviceWeights>)>> = Mutex::new(Vec::new());

/// Activations of one micro-batch of up to n_ubatch tokens.
struct Scratch {
    x: Buffer,    // (n, d) residual stream
    xn: Buffer,   // (n, d) normalized input of a sub-block
    q: Buffer,    // (n, n_head · hd)
    k: Buffer,    // (n, n_kv · hd)
    v: Buffer,    // (n, n_kv · hdv)
    att: Buffer,  // (n, n_head · hdv)
    proj: Buffer, // (n, d)
    gate: Buffer, // (n, n_ff)
    up: Buffer,   // (n, n_ff)
    /// (n, ActQuant::max_row_words(widest matvec input)) words: a matvec's input quantized to
    /// its weight type's activation partner (Q8_0 / Q8_1 / Q8_K), as the CPU does.
    xq: Buffer,
    /// The step block (STEP_BYTES): pos0 in word 0, read by the KV store and attention.
    step: Buffer,
    /// cos/sin (2, n, n_rot / 2) of the global and the local RoPE tables.
    cs_global: Buffer,
    cs_local: Buffer,
    /// The window mode's per-token records and sink rotations (`vulkan_window`); one word
    /// unused otherwise.
    vis: Buffer,
    /// (logit_rows, n_vocab)
    logits: Buffer,
    /// Host-visible: inputs (step block, x, cos/sin) in, logits or x out.
    stage_in: Buffer,
    stage_out: Buffer,
}

/// What the device returns for a batch.
pub enum DeviceResult {
    /// Every layer ran on the device: logits (n - logits_from, n_vocab).
    Logits(Vec<f32>),
    /// Layers 0..gpu_layers ran on the device: the residual stream x (n, d) entering the next.
    Residual(Vec<f32>),
}

/// The device half of a session.
pub struct VulkanForward {
    /// Recorded forwards, least recently used first. Declared first so they drop before the
    /// buffers they name (not required for safety: they pin their memory blocks).
    recorded: Vec<RecordedForward>,
    /// Forwards recorded so far (a shape seen again is not recorded again).
    recordings_made: usize,
    gpu: Arc<Gpu>,
    weights: Arc<DeviceWeights>,
    caches: Vec<LayerCache>,
    s: Scratch,
    n_ctx: usize,
    n_ubatch: usize,
    logit_rows: usize,
    /// The window KV mode's plan and state (None: the full cache).
    window: Option<WindowPlan>,
}

impl From<VulkanError> for EngineError {
    fn from(e: VulkanError) -> Self {
        EngineError::Vulkan(e.to_string())
    }
}

fn f32_bytes(x: &[f32]) -> &[u8] {
    bytemuck::cast_slice(x)
}

impl VulkanForward {
    /// Opens the device (options from the environment: `FOVEA_VK_DEVICE`, `FOVEA_VK_VALIDATION`),
    /// uploads the first `gpu_layers` layers (and the output when that is all of them) and
    /// allocates the device KV cache for `n_ctx` positions (the full cache) or, with `kv` the
    /// plan of the window mode, for its sinks and window.
    pub fn new(
        model: &Model,
        gpu_layers: usize,
        n_ctx: usize,
        n_ubatch: usize,
        kv: Option<&KvPlan>,
    ) -> Result<VulkanForward> {
        Self::with_gpu(shared_gpu(&DeviceOptions::from_env()?)?, model, gpu_layers, n_ctx, n_ubatch, kv)
    }

    /// As [`VulkanForward::new`] on an already opened device.
    pub fn with_gpu(
        gpu: Arc<Gpu>,
        model: &Model,
        gpu_layers: usize,
        n_ctx: usize,
        n_ubatch: usize,
        kv: Option<&KvPlan>,
    ) -> Result<VulkanForward> {
        let c = &model.config;
        let window = match kv {
            None => None,
            Some(plan) if plan.mode == KvMode::Window => Some(WindowPlan::new(plan.clone(), c.n_ctx_train)),
            Some(plan) => return Err(VulkanError::Unsupported(kv_mode_unsupported(plan.mode)).into()),
        };
        let gpu_layers = gpu_layers.min(c.n_layer);
        let (hd, hdv) = (c.head_dim, c.head_dim_v);
        if hd > 256 || hdv > 4 * WORKGROUP as usize || c.n_rot > hd {
            return Err(VulkanError::Unsupported(format!(
                "head dims {hd}/{hdv} exceed the attention shader's 256"
            ))
            .into());
        }
        let (kv_dim, v_dim) = (c.n_head_kv * hd, c.n_head_kv * hdv);
        // The window mode stores K/V as its pages do: f32, or f16 pairs (rounded as the CPU).
        let kv_f16 = match window.as_ref().map(|w| w.kv_type()) {
            None | Some(KvType::F32) => false,
            Some(KvType::F16) if kv_dim % 2 == 0 && v_dim % 2 == 0 => true,
            Some(ty) => {
                return Err(VulkanError::Unsupported(format!(
                    "--kv-type {} on the Vulkan backend (it stores f32 or, for even head widths, f16)",
                    ty.name()
                ))
                .into())
            }
        };
        // Every setting is checked before the weights are uploaded (seconds for a large model).
        // Packed-dot matvecs where the device has them (`FOVEA_VK_DOT4=0`: the plain ones, to compare).
        let dot4 = gpu.info.integer_dot && std::env::var("FOVEA_VK_DOT4").map_or(true, |v| v.trim() != "0");
        let weights = shared_weights(&gpu, model, gpu_layers, dot4)?;
        // The CPU cache's rows per layer (sliding-window layers: a ring of window + n_ubatch),
        // or the window mode's sinks and ring on global layers.
        let cells = KvCache::layer_cells(c, n_ctx, n_ubatch);
        let caches = (0..gpu_layers)
            .map(|l| {
                let (sinks_rows, ring, windowed) = match (&window, c.window(l)) {
                    (Some(w), None) => {
                        let (s, r) = w.rows(n_ubatch);
                        (s, r, true)
                    }
                    _ => (0, cells[l], false),
                };
                let rows =
                    sinks_rows.checked_add(ring).filter(|&r| r.checked_mul(kv_dim.max(v_dim) * 4).is_some());
                let rows = rows.ok_or_else(|| {
                    EngineError::InvalidSetting(format!(
                        "a device KV cache of {n_ctx} positions does not fit in memory; give a smaller -c"
                    ))
                })?;
                let bytes = if kv_f16 { 2 } else { 4 };
                Ok(LayerCache {
                    k_cache: zeroed(&gpu, rows * kv_dim * bytes)?,
                    v_cache: zeroed(&gpu, rows * v_dim * bytes)?,
                    sinks_rows,
                    ring,
                    windowed,
                    kv_f16,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let output = &weights.output;
        let logit_rows = (LOGIT_BUFFER_BYTES / (4 * c.n_vocab)).clamp(1, n_ubatch);
        let n = n_ubatch;
        let half = c.n_rot / 2;
        let vis_words = window.as_ref().map_or(0, |w| w.words(n, c.n_rot));
        let dev = |floats: usize| gpu.alloc(MemKind::Device, 4 * floats as u64);
        let s = Scratch {
            x: dev(n * c.n_embd)?,
            xn: dev(n * c.n_embd)?,
            q: dev(n * c.n_head * hd)?,
            k: dev(n * kv_dim)?,
            v: dev(n * v_dim)?,
            att: dev(n * c.n_head * hdv)?,
            proj: dev(n * c.n_embd)?,
            gate: dev(n * c.n_ff)?,
            up: dev(n * c.n_ff)?,
            xq: dev(n * ActQuant::max_row_words(c.n_embd.max(c.n_ff).max(c.n_head * hdv)))?,
            step: gpu.alloc(MemKind::Device, STEP_BYTES)?,
            cs_global: dev(2 * n * half)?,
            cs_local: dev(2 * n * half)?,
            vis: dev(vis_words.max(1))?,
            logits: dev(if output.is_some() { logit_rows * c.n_vocab } else { 1 })?,
            stage_in: gpu.alloc(MemKind::Staging, vis_offset(c, n) + 4 * vis_words as u64)?,
            stage_out: gpu.alloc(MemKind::Staging, 4 * (n * c.n_embd).max(logit_rows * c.n_vocab) as u64)?,
        };
        let limit = gpu.info.max_binding_bytes;
        for l in &caches {
            if l.k_cache.size() > limit || l.v_cache.size() > limit {
                return Err(VulkanError::BindingTooLarge {
                    bytes: l.k_cache.size().max(l.v_cache.size()),
                    limit,
                }
                .into());
            }
        }
        Ok(VulkanForward {
            recorded: Vec::new(),
            recordings_made: 0,
            gpu,
            weights,
            caches,
            s,
            n_ctx,
            n_ubatch,
            logit_rows,
            window,
        })
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// Layers on the device.
    pub fn gpu_layers(&self) -> usize {
        self.caches.len()
    }

    pub fn memory_stats(&self) -> MemoryStats {
        self.gpu.memory_stats()
    }

    /// Forwards recorded so far: one per batch shape seen (generation records once), more only
    /// when more than KEPT_SHAPES shapes alternate or after [`VulkanForward::drop_recordings`].
    pub fn recordings_made(&self) -> usize {
        self.recordings_made
    }

    /// Frees every recorded forward (command buffers and descriptor sets); the next forward of
    /// each shape records afresh.
    pub fn drop_recordings(&mut self) {
        self.recorded.clear();
    }

    /// Runs `tokens` at positions pos0.. through the device layers (storing their keys and
    /// values in the device cache). With every layer on the device, returns the logits of rows
    /// logits_from..n; otherwise the residual stream for the CPU to continue.
    pub fn forward(
        &mut self,
        model: &Model,
        tokens: &[u32],
        pos0: usize,
        logits_from: usize,
    ) -> Result<DeviceResult> {
        let c = &model.config;
        let n = tokens.len();
        // The shaders index the cache with pos0 from the step buffer, unchecked, and the scratch
        // holds n_ubatch rows: both are checked here (the session splits and checks before).
        if n > self.n_ubatch {
            return Err(EngineError::InvalidSetting(format!(
                "a device batch of {n} tokens exceeds n_ubatch {}",
                self.n_ubatch
            )));
        }
        if pos0 + n > self.n_ctx {
            return Err(EngineError::ContextFull { n_ctx: self.n_ctx });
        }
        // The shaders hold positions in 32 bits (the window mode has no context limit).
        if pos0 + n > u32::MAX as usize {
            return Err(EngineError::ContextFull { n_ctx: u32::MAX as usize });
        }
        let n_out = if self.weights.output.is_some() { n.saturating_sub(logits_from) } else { 0 };
        self.write_inputs(model, tokens, pos0)?;
        let shape = Shape { n, n_out };
        let i = match self.recorded.iter().position(|r| r.shape == shape) {
            Some(i) => i,
            None => {
                if self.recorded.len() == KEPT_SHAPES {
                    self.recorded.remove(0);
                }
                let parts = self.record(model, shape)?;
                self.recordings_made += 1;
                self.recorded.push(RecordedForward { shape, parts });
                self.recorded.len() - 1
            }
        };
        // Most recently used last.
        let mut rec = self.recorded.remove(i);
        let result = self.run(c, &mut rec.parts, shape);
        self.recorded.push(rec);
        result
    }

    /// Writes the batch's inputs to the staging buffer: the step block (pos0), x (n, d), then
    /// cos/sin (2, n, half) of the global and the local table, then the window mode's records.
    fn write_inputs(&mut self, model: &Model, tokens: &[u32], pos0: usize) -> Result<()> {
        let n = tokens.len();
        let half = model.config.n_rot / 2;
        let s = &self.s;
        s.stage_in.write(0, &(pos0 as u32).to_le_bytes())?;
        let x0 = model.embed(tokens);
        s.stage_in.write(STEP_BYTES, f32_bytes(&x0))?;
        let cs_bytes = (2 * n * half * 4) as u64;
        let tables = [Some(&model.rope), model.rope_local.as_ref()];
        for (i, table) in tables.iter().enumerate() {
            if let Some(t) = table {
                let (mut cos, mut sin) = (vec![0.0f32; n * half], vec![0.0f32; n * half]);
                for tok in 0..n {
                    let r = tok * half..(tok + 1) * half;
                    t.angles(pos0 + tok, &mut cos[r.clone()], &mut sin[r]);
                }
                let at = STEP_BYTES + (n * model.config.n_embd * 4) as u64 + i as u64 * cs_bytes;
                s.stage_in.write(at, f32_bytes(&cos))?;
                s.stage_in.write(at + cs_bytes / 2, f32_bytes(&sin))?;
            }
        }
        if let Some(w) = &mut self.window {
            let words = w.records(&model.rope, pos0, n);
            s.stage_in.write(vis_offset(&model.config, n), bytemuck::cast_slice(&words))?;
        }
        Ok(())
    }

    /// Submits a shape's recorded parts and reads the results back.
    fn run(&self, c: &ModelConfig, parts: &mut [Recording], shape: Shape) -> Result<DeviceResult> {
        let s = &self.s;
        if self.weights.output.is_none() {
            parts[0].submit()?;
            let mut x = vec![0.0f32; shape.n * c.n_embd];
            s.stage_out.read(0, bytemuck::cast_slice_mut(&mut x))?;
            return Ok(DeviceResult::Residual(x));
        }
        let mut logits = vec![0.0f32; shape.n_out * c.n_vocab];
        if shape.n_out == 0 {
            parts[0].submit()?;
            return Ok(DeviceResult::Logits(logits));
        }
        for (part, rows) in parts.iter_mut().zip(logits.chunks_mut(self.logit_rows * c.n_vocab)) {
            part.submit()?;
            s.stage_out.read(0, bytemuck::cast_slice_mut(rows))?;
        }
        if let Some(cap) = c.final_logit_softcap {
            // As the CPU: scale by 1/cap, tanh, scale by cap (on the host: n_out rows only).
            let inv = 1.0 / cap;
            for l in &mut logits {
                *l = (*l * inv).tanh() * cap;
            }
        }
        Ok(DeviceResult::Logits(logits))
    }

    /// Records the forward of a batch shape (inputs as `write_inputs` lays them out).
    fn record(&self, model: &Model, shape: Shape) -> Result<Vec<Recording>> {
        let c = &model.config;
        let (n, d) = (shape.n, c.n_embd);
        let s = &self.s;
        let x_bytes = (n * d * 4) as u64;
        let cs_bytes = (2 * n * (c.n_rot / 2) * 4) as u64;
        let mut r = Recorder::new(&self.gpu)?;
        r.copy(&s.stage_in, 0, &s.step, 0, STEP_BYTES)?;
        r.copy(&s.stage_in, STEP_BYTES, &s.x, 0, x_bytes)?;
        r.copy(&s.stage_in, STEP_BYTES + x_bytes, &s.cs_global, 0, cs_bytes)?;
        if model.rope_local.is_some() {
            r.copy(&s.stage_in, STEP_BYTES + x_bytes + cs_bytes, &s.cs_local, 0, cs_bytes)?;
        }
        if let Some(w) = &self.window {
            let bytes = 4 * w.words(n, c.n_rot) as u64;
            r.copy(&s.stage_in, vis_offset(c, n), &s.vis, 0, bytes)?;
        }
        for (l, (layer, cache)) in self.weights.layers.iter().zip(&self.caches).enumerate() {
            record_layer(&mut r, s, model, l, layer, cache, n)?;
        }
        let Some((norm, out)) = &self.weights.output else {
            r.copy(&s.x, 0, &s.stage_out, 0, x_bytes)?;
            return Ok(vec![r.finish()?]);
        };
        if shape.n_out == 0 {
            return Ok(vec![r.finish()?]);
        }
        // Output: the wanted rows only, normalized, then the logits a group of rows at a time
        // (one part per group: the host reads each group from stage_out).
        let first = (n - shape.n_out) as u32;
        r.dispatch(
            Shader::RmsNorm,
            &[&s.x, norm, &s.xn],
            &[d as u32, shape.n_out as u32, first * d as u32, c.rms_eps.to_bits()],
            shape.n_out as u32,
        )?;
        let mut parts = Vec::new();
        let mut r = Some(r);
        for g in 0..shape.n_out.div_ceil(self.logit_rows) {
            let n_rows = self.logit_rows.min(shape.n_out - g * self.logit_rows);
            let mut rec = match r.take() {
                Some(rec) => rec,
                None => Recorder::new(&self.gpu)?,
            };
            matvec(&mut rec, s, out, &s.xn, g * self.logit_rows * d, n_rows, &s.logits)?;
            rec.copy(&s.logits, 0, &s.stage_out, 0, (n_rows * c.n_vocab * 4) as u64)?;
            parts.push(rec.finish()?);
        }
        Ok(parts)
    }
}

/// The error text for a KV mode the device does not run.
pub(crate) fn kv_mode_unsupported(mode: KvMode) -> String {
    format!(
        "the Vulkan backend runs the full and window KV caches, not --kv {}; use --backend cpu",
        mode.name()
    )
}

/// Where the window mode's records start in the input staging buffer for a batch of n tokens:
/// after the step block, x (n, d) and the two cos/sin tables (2, n, n_rot / 2).
fn vis_offset(c: &ModelConfig, n: usize) -> u64 {
    STEP_BYTES + 4 * (n * c.n_embd + 2 * 2 * n * (c.n_rot / 2)) as u64
}

/// y (n, w.rows) = x (n, w.cols) starting at float x_offset · Wᵀ, one dispatch per chunk.
/// Quantized weights: x is first quantized into s.xq to the weight type's activation partner
/// (as the CPU's matmul does), and the matvec forms the CPU's integer block dots from it.
fn matvec(
    r: &mut Recorder,
    s: &Scratch,
    w: &DeviceMatrix,
    x: &Buffer,
    x_offset: usize,
    n: usize,
    y: &Buffer,
) -> Result<()> {
    matvecs(r, s, &[(w, y)], x, x_offset, n)
}

/// Several matvecs of the same input x (n, cols) (Q, K and V; gate and up), recorded in order:
/// the input is quantized once for each run of matrices that read the same activation format,
/// not once per matrix (every matrix of a layer usually shares one format).
fn matvecs(
    r: &mut Recorder,
    s: &Scratch,
    ws: &[(&DeviceMatrix, &Buffer)],
    x: &Buffer,
    x_offset: usize,
    n: usize,
) -> Result<()> {
    let mut in_xq = None; // (format, cols) s.xq holds
    for &(w, y) in ws {
        let (act, act_offset) = match w.shader.act_quant() {
            Some(q) => {
                if in_xq != Some((q, w.cols)) {
                    r.quantize(q, x, x_offset, w.cols, n, &s.xq)?;
                    in_xq = Some((q, w.cols));
                }
                (&s.xq, 0)
            }
            None => (x, x_offset),
        };
        for (r0, rows, buf) in &w.chunks {
            let push = [w.cols as u32, *rows as u32, n as u32, act_offset as u32, w.rows as u32, *r0 as u32];
            r.matvec(w.shader, n, &[buf, act, y], &push, *rows)?;
        }
    }
    Ok(())
}

/// Workgroups for one invocation per element.
fn groups(n: usize) -> u32 {
    (n as u32).div_ceil(WORKGROUP)
}

/// Records one transformer layer on the batch in `s.x` (n, d), as `Model::forward_layers`.
fn record_layer(
    r: &mut Recorder,
    s: &Scratch,
    model: &Model,
    l: usize,
    w: &DeviceLayer,
    kv: &LayerCache,
    n: usize,
) -> Result<()> {
    let c = &model.config;
    let (d, hd, hdv, n_ff) = (c.n_embd as u32, c.head_dim as u32, c.head_dim_v as u32, c.n_ff as u32);
    let (n_head, n_kv) = (c.n_head as u32, c.n_head_kv as u32);
    let nt = n as u32;
    let eps = c.rms_eps.to_bits();
    let norm = |r: &mut Recorder, x: &Buffer, wt: &Buffer, out: &Buffer, width: u32, rows: u32| {
        r.dispatch(Shader::RmsNorm, &[x, wt, out], &[width, rows, 0, eps], rows)
    };
    let add = |r: &mut Recorder, y: &Buffer, x: &Buffer, len: u32| {
        r.dispatch(Shader::Axpy, &[y, x], &[len, 1.0f32.to_bits(), 1.0f32.to_bits()], groups(len as usize))
    };

    // --- attention ---
    norm(r, &s.x, &w.attn_norm, &s.xn, d, nt)?;
    matvecs(r, s, &[(&w.wq, &s.q), (&w.wk, &s.k), (&w.wv, &s.v)], &s.xn, 0, n)?;
    if let (Some(qn), Some(kn)) = (&w.q_norm, &w.k_norm) {
        norm(r, &s.q, qn, &s.q, hd, nt * n_head)?;
        norm(r, &s.k, kn, &s.k, hd, nt * n_kv)?;
    }
    let window = c.window(l);
    let cs = if window.is_some() && model.rope_local.is_some() { &s.cs_local } else { &s.cs_global };
    let neox = (c.rope_layout == fovea_kernels::ops::RopeLayout::NeoX) as u32;
    let half = c.n_rot / 2;
    r.dispatch(
        Shader::Rope,
        &[&s.q, cs],
        &[nt, n_head, hd, c.n_rot as u32, neox],
        groups(n * c.n_head * half),
    )?;
    r.dispatch(
        Shader::Rope,
        &[&s.k, cs],
        &[nt, n_kv, hd, c.n_rot as u32, neox],
        groups(n * c.n_head_kv * half),
    )?;
    // The KV write: rows at pos0 (from the step block) of the layer's cache (or its ring).
    let (kv_row, v_row) = (n_kv * hd, n_kv * hdv);
    let (sinks_rows, ring, kv_f16) = (kv.sinks_rows as u32, kv.ring as u32, kv.kv_f16 as u32);
    r.dispatch(
        Shader::KvStore,
        &[&s.k, &kv.k_cache, &s.step],
        &[kv_row, nt, sinks_rows, ring, kv_f16],
        groups(n * kv_row as usize),
    )?;
    r.dispatch(
        Shader::KvStore,
        &[&s.v, &kv.v_cache, &s.step],
        &[v_row, nt, sinks_rows, ring, kv_f16],
        groups(n * v_row as usize),
    )?;
    if c.q_scale != 1.0 {
        let len = nt * n_head * hd;
        r.dispatch(Shader::Axpy, &[&s.q, &s.q], &[len, 0, c.q_scale.to_bits()], groups(len as usize))?;
    }
    let hpw = attention_heads_per_workgroup(n, c.gqa_group());
    let push = [
        nt,
        n_head,
        (c.gqa_group()) as u32,
        hd,
        hdv,
        window.unwrap_or(0) as u32,
        c.kq_scale.to_bits(),
        sinks_rows,
        ring,
        kv.windowed as u32,
        c.n_rot as u32,
        neox,
        kv_f16,
        hpw as u32,
    ];
    let bindings = [&s.q, &kv.k_cache, &kv.v_cache, &s.att, &s.step, &s.vis];
    r.dispatch(Shader::Attention, &bindings, &push, attention_groups(n, c.n_head, c.gqa_group(), hpw))?;
    matvec(r, s, &w.wo, &s.att, 0, n, &s.proj)?;
    if let Some(pn) = &w.post_attn_norm {
        norm(r, &s.proj, pn, &s.proj, d, nt)?;
    }
    add(r, &s.x, &s.proj, nt * d)?;

    // --- feed-forward: act(W_gate x) * (W_up x), then W_down ---
    norm(r, &s.x, &w.ffn_norm, &s.xn, d, nt)?;
    matvecs(r, s, &[(&w.w_gate, &s.gate), (&w.w_up, &s.up)], &s.xn, 0, n)?;
    let kind = match c.ffn_act {
        FfnActivation::Silu => 0u32,
        FfnActivation::GeluTanh => 1,
    };
    r.dispatch(Shader::Activation, &[&s.gate, &s.up], &[nt * n_ff, kind], groups(n * c.n_ff))?;
    matvec(r, s, &w.w_down, &s.gate, 0, n, &s.proj)?;
    if let Some(pn) = &w.post_ffn_norm {
        norm(r, &s.proj, pn, &s.proj, d, nt)?;
    }
    add(r, &s.x, &s.proj, nt * d)?;
    Ok(())
}

/// The model's device weights for `gpu_layers` layers: the copy another session already
/// uploaded to this device, or a new upload from the mmap.
fn shared_weights(
    gpu: &Arc<Gpu>,
    model: &Model,
    gpu_layers: usize,
    dot4: bool,
) -> Result<Arc<DeviceWeights>> {
    let key = (model.uid(), Arc::as_ptr(gpu) as usize, gpu_layers, dot4);
    let mut shared =
        SHARED_WEIGHTS.lock().map_err(|_| EngineError::Vulkan("weights lock poisoned".into()))?;
    shared.retain(|(_, w)| w.strong_count() > 0);
    if let Some(w) = shared.iter().find(|(k, _)| *k == key).and_then(|(_, w)| w.upgrade()) {
        return Ok(w);
    }
    let staging = gpu.alloc(MemKind::Staging, UPLOAD_STAGING)?;
    let up = Uploader { gpu, staging: &staging, file: model.file_bytes(), dot4 };
    let layers = model.layers[..gpu_layers].iter().map(|lw| up.layer(lw)).collect::<Result<Vec<_>>>()?;
    let output = if gpu_layers == model.config.n_layer {
        Some((up.vector(&model.output_norm)?, up.matrix(model.output_matrix())?))
    } else {
        None
    };
    let weights = Arc::new(DeviceWeights { layers, output });
    shared.push((key, Arc::downgrade(&weights)));
    Ok(weights)
}

/// A device buffer of `bytes` zeroes (a cache never holds stale data from earlier use of the
/// memory).
fn zeroed(gpu: &Arc<Gpu>, bytes: usize) -> Result<Buffer> {
    let b = gpu.alloc(MemKind::Device, bytes as u64)?;
    let mut r = Recorder::new(gpu)?;
    r.fill_zero(&b)?;
    r.submit()?;
    Ok(b)
}

/// Uploads weights from the mapped file through one staging buffer.
struct Uploader<'a> {
    gpu: &'a Arc<Gpu>,
    staging: &'a Buffer,
    file: &'a [u8],
    /// Use the quantized matvecs' packed-dot variants (same bits, the device's dot4 instruction).
    dot4: bool,
}

impl Uploader<'_> {
    fn bytes(&self, bytes: &[u8]) -> Result<Buffer> {
        let b = self.gpu.alloc(MemKind::Device, bytes.len() as u64)?;
        self.gpu.upload_with(self.staging, &b, 0, bytes)?;
        Ok(b)
    }

    fn vector(&self, v: &[f32]) -> Result<Buffer> {
        self.bytes(f32_bytes(v))
    }

    /// The matrix's rows in chunks of at most one binding (lavapipe: 128 MiB), so a large
    /// embedding/output matrix spans several bindings.
    fn matrix(&self, m: &Matrix) -> Result<DeviceMatrix> {
        let (ty, bytes): (GgmlType, &[u8]) = match &m.data {
            WeightData::Mapped { .. } => (m.ty, m.mapped_bytes(self.file)),
            WeightData::F32(v) => (GgmlType::F32, f32_bytes(v)),
        };
        let shader = Shader::matvec(ty).ok_or_else(|| {
            VulkanError::Unsupported(format!(
                "tensor {} has type {ty}, which has no Vulkan matvec shader",
                m.name
            ))
        })?;
        let shader = if self.dot4 { shader.dot4().unwrap_or(shader) } else { shader };
        let row_bytes = bytes.len() / m.rows.max(1);
        let max_rows = (self.gpu.info.max_binding_bytes as usize / row_bytes.max(1)).max(1);
        let mut chunks = Vec::new();
        let mut r0 = 0;
        while r0 < m.rows {
            let nr = max_rows.min(m.rows - r0);
            chunks.push((r0, nr, self.bytes(&bytes[r0 * row_bytes..(r0 + nr) * row_bytes])?));
            r0 += nr;
        }
        Ok(DeviceMatrix { shader, rows: m.rows, cols: m.cols, chunks })
    }

    fn layer(&self, w: &LayerWeights) -> Result<DeviceLayer> {
        let opt = |v: &Option<Vec<f32>>| v.as_deref().map(|v| self.vector(v)).transpose();
        Ok(DeviceLayer {
            attn_norm: self.vector(&w.attn_norm)?,
            q_norm: opt(&w.attn_q_norm)?,
            k_norm: opt(&w.attn_k_norm)?,
            post_attn_norm: opt(&w.post_attn_norm)?,
            post_ffn_norm: opt(&w.post_ffn_norm)?,
            wq: self.matrix(&w.wq)?,
            wk: self.matrix(&w.wk)?,
            wv: self.matrix(&w.wv)?,
            wo: self.matrix(&w.wo)?,
            ffn_norm: self.vector(&w.ffn_norm)?,
            w_gate: self.matrix(&w.w_gate)?,
            w_up: self.matrix(&w.w_up)?,
            w_down: self.matrix(&w.w_down)?,
        })
    }
}
