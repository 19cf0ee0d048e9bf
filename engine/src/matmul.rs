//! Multi-threaded matrix products: Y (n_tok, rows) = X (n_tok, cols) · Wᵀ.
//!
//! Quantized weights multiply the way llama.cpp does it: each activation row is quantized once to
//! the weight type's partner (Q8_0, Q8_1, Q8_K), then every (weight row, token) pair is an integer
//! dot per block. Rows are handed out in tiles through an atomic counter so a slow core takes fewer;
//! within a tile every token is multiplied while the tile's weight bytes are still in cache.

use std::sync::atomic::{AtomicUsize, Ordering};

use fovea_kernels::ops::{dot_f32, OpKernels};
use fovea_kernels::quant::vec_dot_type;
use fovea_kernels::table::QuantKernels;

use crate::threadpool::{SharedMut, ThreadPool};
use crate::weights::{Matrix, WeightData};

/// Weight rows per work item: 16 rows of a 576-wide Q4_1 matrix are 7 KiB, well inside L1.
const ROW_TILE: usize = 16;

/// The compute resources of one session: the kernel table chosen at start-up and the worker pool.
pub struct Compute {
    pub kernels: QuantKernels,
    /// Float kernels (attention, softmax, SwiGLU); every ISA gives the same bits, so the best runs.
    pub ops: OpKernels,
    pub pool: ThreadPool,
}

impl Compute {
    pub fn new(kernels: QuantKernels, n_threads: usize) -> Compute {
        Compute { kernels, ops: OpKernels::detect(), pool: ThreadPool::new(n_threads) }
    }

    /// out (n_tok, w.rows) = x (n_tok, w.cols) · Wᵀ; `file` is the mapped model.
    pub fn matmul(&self, file: &[u8], w: &Matrix, x: &[f32], n_tok: usize, out: &mut [f32]) {
        debug_assert_eq!(x.len(), n_tok * w.cols);
        debug_assert_eq!(out.len(), n_tok * w.rows);
        match &w.data {
            WeightData::F32(values) => self.matmul_f32(values, w.rows, w.cols, x, n_tok, out),
            WeightData::Mapped { .. } => self.matmul_quant(file, w, x, n_tok, out),
        }
    }

    fn matmul_quant(&self, file: &[u8], w: &Matrix, x: &[f32], n_tok: usize, out: &mut [f32]) {
        let partner = vec_dot_type(w.ty);
        let act_bytes = partner.block_bytes() * (w.cols / partner.block_elems());
        // act (n_tok, act_bytes): every activation row quantized once, shared by all weight rows.
        // Both lookups succeed: `Model::load` accepts only types with kernels (`supports_vec_dot`).
        let quantize = self.kernels.quantize_fn(partner).expect("weight types are checked at load");
        let mut dot = self.kernels.vec_dot_fn(w.ty).expect("weight types are checked at load");
        let mut dot4 = self.kernels.vec_dot4_fn(w.ty);
        if n_tok >= 8 {
            if let Some(batch) = self.kernels.batch_dot_fn(w.ty) {
                dot = batch;
                dot4 = None;
            }
        }
        let mut act = vec![0u8; n_tok * act_bytes];
        for (xr, ar) in x.chunks_exact(w.cols).zip(act.chunks_exact_mut(act_bytes)) {
            quantize(xr, ar);
        }
        let weights = w.mapped_bytes(file);
        let row_bytes = w.row_bytes();
        let (rows, cols) = (w.rows, w.cols);
        let next = AtomicUsize::new(0);
        let out = SharedMut::new(out);
        self.pool.run(&|_| {
            let mut tile = [0.0f32; ROW_TILE];
            let mut tile4 = [0.0f32; 4 * ROW_TILE]; // (4, nr)
            loop {
                let r0 = next.fetch_add(ROW_TILE, Ordering::Relaxed);
                if r0 >= rows {
                    break;
                }
                let nr = ROW_TILE.min(rows - r0);
                let w_rows = &weights[r0 * row_bytes..(r0 + nr) * row_bytes];
                let mut t = 0;
                // Four tokens at a time where a tile kernel exists: each weight block is unpacked
                // once for all four (bit-identical to single dots).
                if let Some(dot4) = dot4 {
                    while t + 4 <= n_tok {
                        let acts = &act[t * act_bytes..(t + 4) * act_bytes];
                        dot4(cols, w_rows, acts, act_bytes, &mut tile4[..4 * nr]);
                        for k in 0..4 {
                            // SAFETY: rows r0..r0+nr belong to this work item alone.
                            unsafe { out.range((t + k) * rows + r0, nr) }
                                .copy_from_slice(&tile4[k * nr..(k + 1) * nr]);
                        }
                        t += 4;
                    }
                }
                for t in t..n_tok {
                    let a = &act[t * act_bytes..(t + 1) * act_bytes];
                    for (i, o) in tile[..nr].iter_mut().enumerate() {
                        *o = dot(cols, &w_rows[i * row_bytes..(i + 1) * row_bytes], a);
                    }
                    // SAFETY: rows r0..r0+nr belong to this work item alone.
                    unsafe { out.range(t * rows + r0, nr) }.copy_from_slice(&tile[..nr]);
                }
            }
        });
    }

    fn matmul_f32(&self, w: &[f32], rows: usize, cols: usize, x: &[f32], n_tok: usize, out: &mut [f32]) {
        let next = AtomicUsize::new(0);
        let out = SharedMut::new(out);
        self.pool.run(&|_| loop {
            let r0 = next.fetch_add(ROW_TILE, Ordering::Relaxed);
            if r0 >= rows {
                break;
            }
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
        });
    }
}
