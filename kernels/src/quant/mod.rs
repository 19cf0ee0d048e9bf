//! Quantized matmul building blocks, scalar reference: activation quantizers, weight quantizers
//! (for tests and tools), and one dot product per weight type against its activation partner.
//!
//! Like ggml, a weight row of type `w` is multiplied with an activation row first quantized to
//! [`vec_dot_type`]`(w)`. The per-type functions live in [`reference`] (block slices); [`row`]
//! offers the same through bytes and a `GgmlType`, for callers that do not know block types.

pub mod dot_float;
pub mod dot_k;
pub mod dot_legacy;
pub mod quantize;
pub mod quantize_weights;
pub mod reference;
pub mod row;
pub mod tiled_k;

pub use row::{quantize_activation, supports_vec_dot, vec_dot, vec_dot_type};

#[cfg(test)]
mod tests;
