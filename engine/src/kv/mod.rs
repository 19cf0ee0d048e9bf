//! Fovea's KV cache modes beyond the dense one: a paged exact store of every token (spilled to
//! a memory-mapped file past `--kv-ram`), per-page summaries under a tree, and attention over
//! the entries each query chunk chooses: a recent window (`window`), a dilated grid
//! (`dilated`), or the best pages found by descending the tree (`fovea`).
//!
//! Flow per layer: `forward` stores each token's K/V (`KvCache::store` -> `SparseKv::store`:
//! page, summaries, spill), then calls [`attention`], which runs the dense tiled attention for
//! the full cache and `attend::attention` (select, gather, ordinary kernels) otherwise.

pub mod attend;
pub mod codec;
mod decode;
pub mod gather;
pub mod mode;
pub mod paged_store;
pub mod select;
pub mod sparse;
pub mod spill;
pub mod summaries;

use fovea_kernels::ops::RopeTable;

pub use mode::{KvMode, KvOptions, KvPlan, KvType, PositionMode, Scoring};
pub use sparse::{SelectStats, SparseKv};

use crate::attention::AttnShape;
use crate::kv_cache::KvCache;
use crate::matmul::Compute;

/// Attention of the batch's queries over the cache, whatever its mode: the dense cache goes
/// through [`crate::attention_tiled::attention`] unchanged (bit-exact with llama.cpp).
/// q (n, n_head * hd) -> out (n, n_head * hdv); `rope` is the layer's RoPE table.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    compute: &Compute,
    cache: &KvCache,
    rope: &RopeTable,
    layer: usize,
    shape: AttnShape,
    pos0: usize,
    q: &[f32],
    out: &mut [f32],
) {
    match cache.sparse() {
        Some(kv) => attend::attention(compute, kv, rope, layer, shape, pos0, q, out),
        None => crate::attention_tiled::attention(compute, cache, layer, shape, pos0, q, out),
    }
}
