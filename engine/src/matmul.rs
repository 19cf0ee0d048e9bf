//! Multi-threaded matrix products: Y (n_tok, rows) = X (n_tok, cols) · Wᵀ.
//!
//! Quantized weights multiply the way llama.cpp does it: each activation row is quantized once to
//! the weight type's partner (Q8_0, Q8_1, Q8_K), then every (weight row, token) pair is an integer
//! dot per block. Rows are handed out a few tiles at a time through an atomic counter so a slow core
//! takes fewer; within a tile every token is multiplied while the tile's weight bytes are in cache.

use std::sync::Arc;

use fovea_formats::GgmlType;
use fovea_kernels::ops::{dot_f32, OpKernels};
use fovea_kernels::quant::vec_dot_type;
use fovea_kernels::table::{QuantKernels, VecDot4Fn, VecDotFn, VecDotTileFn};

use crate::threadpool::{SharedMut, ThreadPool, WorkCounter};
use crate::weights::{Matrix, WeightData};

/// Weight rows per tile: 16 rows of a 576-wide Q4_1 matrix are 7 KiB, well inside L1. Within a
/// tile every token of the batch is multiplied while the tile's weight bytes are in cache.
const ROW_TILE: usize = 16;

/// Activation rows quantized per grab when a batch spreads the quantization over the pool.
const QUANTIZE_ROWS_PER_GRAB: usize = 8;

/// Grabs from the shared row counter per thread and job. Each grab moves the counter's cache
/// line between cores (~100-200 ns on this VM), which at one grab per 16-row tile cost ~15% of
/// generation time; a few grabs per thread still let a thread that started late (or was
/// descheduled) take fewer rows, so both cores finish together.
const GRABS_PER_THREAD: usize = 4;

/// The compute resources of one session: the kernel table chosen at start-up and the worker pool.
pub struct Compute {
    pub kernels: QuantKernels,
    /// Float kernels (attention, softmax, SwiGLU); every ISA gives the same bits, so the best runs.
    pub ops: OpKernels,
    pub pool: ThreadPool,
    /// Threads for single-token batches (generation).
    n_threads: usize,
    /// Threads for batches of more than one token (prompt processing).
    n_threads_batch: usize,
}

impl Compute {
    /// Compute with `n_threads` threads for every batch.
    pub fn new(kernels: QuantKernels, n_threads: usize) -> Compute {
        Compute::with_threads(kernels, n_threads, n_threads)
    }

    /// Compute with `n_threads` threads for generation (one token per batch) and
    /// `n_threads_batch` for prompt processing (llama.cpp's `--threads` / `--threads-batch`):
    /// the pool has the larger count, and [`Compute::begin_batch`] picks how many take part.
    pub fn with_threads(kernels: QuantKernels, n_threads: usize, n_threads_batch: usize) -> Compute {
        let (n_threads, n_threads_batch) = (n_threads.max(1), n_threads_batch.max(1));
        let pool = ThreadPool::new(n_threads.max(n_threads_batch));
        pool.set_active_threads(n_threads);
        Compute { kernels, ops: OpKernels::detect(), pool, n_threads, n_threads_batch }
    }

    pub fn n_threads(&self) -> usize {
        self.n_threads
    }

    pub fn n_threads_batch(&self) -> usize {
        self.n_threads_batch
    }

    /// Chooses the threads of the next forward pass from its batch size: every pool job until
    /// the next call runs on `n_threads_batch` threads when `n_tok > 1`, else on `n_threads`.
    pub fn begin_batch(&self, n_tok: usize) {
        self.pool.set_active_threads(if n_tok > 1 { self.n_threads_batch } else { self.n_threads });
    }

    /// out (n_tok, w.rows) = x (n_tok, w.cols) · Wᵀ; `file` is the mapped model.
    pub fn matmul(&self, file: &[u8], w: &Matrix, x: &[f32], n_tok: usize, out: &mut [f32]) {
        self.matmul_many(file, x, n_tok, &mut [(w, out)]);
    }

    /// outs[i] (n_tok, Wᵢ.rows) = x (n_tok, cols) · Wᵢᵀ for matrices that share their input
    /// (Q/K/V, gate/up): one pool job for all of them, so the threads meet once instead of once
    /// per matrix. Every output float is the one [`Compute::matmul`] gives.
    pub fn matmul_many(&self, file: &[u8], x: &[f32], n_tok: usize, parts: &mut [(&Matrix, &mut [f32])]) {
        for (w, out) in parts.iter() {
            debug_assert_eq!(x.len(), n_tok * w.cols);
            debug_assert_eq!(out.len(), n_tok * w.rows);
        }
        if parts.iter().any(|(w, _)| matches!(w.data, WeightData::F32(_))) {
            for (w, out) in parts.iter_mut() {
                match &w.data {
                    WeightData::F32(values) => self.matmul_f32(values, w.rows, w.cols, x, n_tok, out),
                    WeightData::Mapped { .. } => {
                        self.run_quant(&[self.prepare(file, w, x, n_tok, out, &mut Vec::new())], n_tok)
                    }
                }
            }
            return;
        }
        // Matrices of the same weight type share one quantized copy of x.
        let mut acts = Vec::new();
        let jobs: Vec<QuantJob<'_>> =
            parts.iter_mut().map(|(w, out)| self.prepare(file, w, x, n_tok, out, &mut acts)).collect();
        self.run_quant(&jobs, n_tok);
    }

    /// Rows per grab for a job of `rows` rows over `n_tok` tokens. Generation: about
    /// GRABS_PER_THREAD per active thread, in whole tiles. A batch does n_tok times more work per
    /// row, so the counter's cost vanishes and one tile per grab balances the cores best (coarse
    /// grabs cost 12% of SmolLM2's pp512 when one core ran late).
    fn grab_rows(&self, rows: usize, n_tok: usize) -> usize {
        if n_tok > 1 {
            return ROW_TILE;
        }
        let grabs = self.pool.active_threads() * GRABS_PER_THREAD;
        rows.div_ceil(grabs).next_multiple_of(ROW_TILE).max(ROW_TILE)
    }

    /// Chooses the kernels for `w` and quantizes the activations to its partner type, unless
    /// `acts` (partner type, quantized x) already holds them.
    fn prepare<'a>(
        &self,
        file: &'a [u8],
        w: &Matrix,
        x: &[f32],
        n_tok: usize,
        out: &'a mut [f32],
        acts: &mut Vec<(GgmlType, Arc<[u8]>)>,
    ) -> QuantJob<'a> {
        let partner = vec_dot_type(w.ty);
        let act_bytes = partner.block_bytes() * (w.cols / partner.block_elems());
        // act (n_tok, act_bytes): every activation row quantized once, shared by all weight rows.
        // Both lookups succeed: `Model::load` accepts only types with kernels (`supports_vec_dot`).
        let quantize = self.kernels.quantize_fn(partner).expect("weight types are checked at load");
        let mut dot = self.kernels.vec_dot_fn(w.ty).expect("weight types are checked at load");
        let mut dot4 = self.kernels.vec_dot4_fn(w.ty);
        // Whole-batch tiles of the single-row dot, where the table has one (bit-identical to it).
        let mut dot_tile = if n_tok > 1 { self.kernels.vec_dot_tile_fn(w.ty) } else { None };
        if n_tok >= 8 {
            if let Some(batch) = self.kernels.batch_dot_fn(w.ty) {
                dot = batch;
                dot4 = self.kernels.batch_dot4_fn(w.ty);
                dot_tile = self.kernels.batch_dot_tile_fn(w.ty);
            }
        }
        let act = match acts.iter().find(|(ty, _)| *ty == partner) {
            Some((_, act)) => Arc::clone(act),
            None => {
                let mut act = vec![0u8; n_tok * act_bytes];
                // Rows are quantized independently: a batch spreads them over the pool.
                self.pool.for_each_row(&mut act, act_bytes, QUANTIZE_ROWS_PER_GRAB, &|t, ar| {
                    quantize(&x[t * w.cols..(t + 1) * w.cols], ar)
                });
                let act: Arc<[u8]> = act.into();
                acts.push((partner, Arc::clone(&act)));
                act
            }
        };
        QuantJob {
            weights: w.mapped_bytes(file),
            row_bytes: w.row_bytes(),
            rows: w.rows,
            cols: w.cols,
            dot,
            dot4,
            dot_tile,
            act,
            act_bytes,
            out: SharedMut::new(out),
        }
    }

    /// Runs the prepared products as one pool job. Work items are `grab` rows of one matrix,
    /// numbered across the matrices in order.
    fn run_quant(&self, jobs: &[QuantJob<'_>], n_tok: usize) {
        let grab = self.grab_rows(jobs.iter().map(|j| j.rows).sum(), n_tok);
        let n_items: usize = jobs.iter().map(|j| j.rows.div_ceil(grab)).sum();
        let next = WorkCounter::new();
        self.pool.run(&|_| {
            let mut tile = [0.0f32; ROW_TILE];
            let mut tile4 = [0.0f32; 4 * ROW_TILE]; // (4, nr)
            let mut tile_all = Vec::new(); // (n_tok, nr), for the whole-batch tiles
            loop {
                let mut item = next.grab(1);
                if item >= n_items {
                    break;
                }
                for job in jobs {
                    let items = job.rows.div_ceil(grab);
                    if item >= items {
                        item -= items;
                        continue;
                    }
                    let rows = item * grab..((item + 1) * grab).min(job.rows);
                    for r0 in rows.clone().step_by(ROW_TILE) {
                        let nr = ROW_TILE.min(rows.end - r0);
                        if job.dot_tile.is_some() {
                            job.tile_all(r0, nr, n_tok, &mut tile_all);
                        } else {
                            job.tile(r0, nr, n_tok, &mut tile, &mut tile4);
                        }
                    }
                    break;
                }
            }
        });
    }

    fn matmul_f32(&self, w: &[f32], rows: usize, cols: usize, x: &[f32], n_tok: usize, out: &mut [f32]) {
        let grab = self.grab_rows(rows, n_tok);
        let next = WorkCounter::new();
        let out = SharedMut::new(out);
        self.pool.run(&|_| loop {
            let start = next.grab(grab);
            if start >= rows {
                break;
            }
            for r0 in (start..(start + grab).min(rows)).step_by(ROW_TILE) {
                let nr = ROW_TILE.min(rows - r0);
                for t in 0..n_tok {
                    let xr = &x[t * cols..(t + 1) * cols];
                    // SAFETY: rows r0..r0+nr belong to this work item alone.
                    let o = unsafe { out.range(t * rows + r0, nr) };
                    for (i, o) in o.iter_mut().enumerate() {
                        let r = r0 + i;
                        *o = dot_f32(&w[r * cols..(r + 1) * cols], xr);
                    }
                }
            }
        });
    }
}

/// One quantized product, ready to run: W (rows, cols) as bytes, its kernels, the quantized
/// activations act (n_tok, act_bytes), and out (n_tok, rows) written by row tiles.
struct QuantJob<'a> {
    weights: &'a [u8],
    row_bytes: usize,
    rows: usize,
    cols: usize,
    dot: VecDotFn,
    dot4: Option<VecDot4Fn>,
    dot_tile: Option<VecDotTileFn>,
    act: Arc<[u8]>,
    act_bytes: usize,
    out: SharedMut<'a, f32>,
}

/// dst <- src for one token's slice of a row tile. A whole tile (ROW_TILE floats) is copied as
/// a fixed-size array, a few vector moves: through `copy_from_slice`'s `memmove` call these 64-byte
/// copies, one per token and tile, were 7% of Gemma's prompt processing.
#[inline]
fn copy_row_tile(dst: &mut [f32], src: &[f32]) {
    match (<&mut [f32; ROW_TILE]>::try_from(&mut *dst), <&[f32; ROW_TILE]>::try_from(src)) {
        (Ok(d), Ok(s)) => *d = *s,
        _ => dst.copy_from_slice(src),
    }
}

impl QuantJob<'_> {
    /// As [`QuantJob::tile`] through the whole-batch tile kernel (`dot_tile` must be set):
    /// `buf` is scratch, grown to (n_tok, nr).
    fn tile_all(&self, r0: usize, nr: usize, n_tok: usize, buf: &mut Vec<f32>) {
        let Some(dot_tile) = self.dot_tile else { return };
        buf.resize(n_tok * nr, 0.0);
        let w_rows = &self.weights[r0 * self.row_bytes..(r0 + nr) * self.row_bytes];
        dot_tile(self.cols, w_rows, &self.act, n_tok, &mut buf[..n_tok * nr]);
        for (t, row) in buf.chunks_exact(nr).take(n_tok).enumerate() {
            // SAFETY: rows r0..r0+nr belong to this work item alone.
            copy_row_tile(unsafe { self.out.range(t * self.rows + r0, nr) }, row);
        }
    }

    /// out[t][r0..r0 + nr] for every token t: one tile of weight rows, in cache for all tokens.
    fn tile(
        &self,
        r0: usize,
        nr: usize,
        n_tok: usize,
        tile: &mut [f32; ROW_TILE],
        tile4: &mut [f32; 4 * ROW_TILE],
    ) {
        let (rows, row_bytes, act_bytes) = (self.rows, self.row_bytes, self.act_bytes);
        let w_rows = &self.weights[r0 * row_bytes..(r0 + nr) * row_bytes];
        let mut t = 0;
        // Four tokens at a time where a tile kernel exists: each weight block is unpacked
        // once for all four (bit-identical to single dots).
        if let Some(dot4) = self.dot4 {
            while t + 4 <= n_tok {
                let acts = &self.act[t * act_bytes..(t + 4) * act_bytes];
                dot4(self.cols, w_rows, acts, act_bytes, &mut tile4[..4 * nr]);
                for k in 0..4 {
                    // SAFETY: rows r0..r0+nr belong to this work item alone.
                    copy_row_tile(
                        unsafe { self.out.range((t + k) * rows + r0, nr) },
                        &tile4[k * nr..(k + 1) * nr],
                    );
                }
                t += 4;
            }
        }
        for t in t..n_tok {
            let a = &self.act[t * act_bytes..(t + 1) * act_bytes];
            for (i, o) in tile[..nr].iter_mut().enumerate() {
                *o = (self.dot)(self.cols, &w_rows[i * row_bytes..(i + 1) * row_bytes], a);
            }
            // SAFETY: rows r0..r0+nr belong to this work item alone.
            copy_row_tile(unsafe { self.out.range(t * rows + r0, nr) }, &tile[..nr]);
        }
    }
}
