//! Byte-level entry points: quantize an activation row and dot it with a weight row, given only
//! `GgmlType`s. The engine calls these without knowing block structs.
//!
//! Preconditions (programming errors, not data errors, so they panic with a message): lengths
//! come from shapes validated at load time, `n` is a multiple of the block size, and the types
//! are a weight type with a dot product and its [`vec_dot_type`].

use alloc::borrow::Cow;
use alloc::vec::Vec;

use fovea_formats::blocks::GgmlBlock;
use fovea_formats::GgmlType;

use super::{dot_float as fl, dot_k as k, dot_legacy as legacy, quantize as qz};

/// The activation type a weight type is multiplied with (ggml's `type_traits_cpu[w].vec_dot_type`).
pub fn vec_dot_type(w: GgmlType) -> GgmlType {
    match w {
        GgmlType::F32 => GgmlType::F32,
        GgmlType::F16 => GgmlType::F16,
        GgmlType::BF16 => GgmlType::BF16,
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => GgmlType::Q8_0,
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q8_1 => GgmlType::Q8_1,
        GgmlType::Q2K | GgmlType::Q3K | GgmlType::Q4K | GgmlType::Q5K | GgmlType::Q6K | GgmlType::Q8K => {
            GgmlType::Q8K
        }
    }
}

/// Whether [`vec_dot`] accepts weights of type `w`. `Q8_1` and `Q8_K` are activation-only types
/// (ggml has no dot product with them as weights).
pub fn supports_vec_dot(w: GgmlType) -> bool {
    !matches!(w, GgmlType::Q8_1 | GgmlType::Q8K)
}

/// Views `bytes` as `n / B::ELEMS` blocks, copying only if they are misaligned for `B`.
///
/// # Panics
/// If `bytes` does not hold exactly `n` elements of `B` (a caller bug: shapes were validated).
fn blocks_of<'a, B: GgmlBlock>(bytes: &'a [u8], n: usize, what: &str) -> Cow<'a, [B]> {
    let ok = n.is_multiple_of(B::ELEMS) && bytes.len() == n / B::ELEMS * size_of::<B>();
    assert!(ok, "{what}: {} bytes do not hold {n} {} elements", bytes.len(), B::TYPE);
    match bytemuck::try_cast_slice(bytes) {
        Ok(blocks) => Cow::Borrowed(blocks),
        Err(_) => {
            let mut owned = alloc::vec![B::zeroed(); n / B::ELEMS];
            bytemuck::cast_slice_mut::<B, u8>(&mut owned).copy_from_slice(bytes);
            Cow::Owned(owned)
        }
    }
}

/// Runs `quantize` into `out` viewed as blocks; through a temporary when `out` is misaligned.
fn quantize_into<B: GgmlBlock>(x: &[f32], out: &mut [u8], quantize: fn(&[f32], &mut [B])) {
    let n = x.len();
    let ok = n.is_multiple_of(B::ELEMS) && out.len() == n / B::ELEMS * size_of::<B>();
    assert!(ok, "quantize_activation: {} output bytes do not hold {n} {} elements", out.len(), B::TYPE);
    match bytemuck::try_cast_slice_mut::<u8, B>(out) {
        Ok(blocks) => quantize(x, blocks),
        Err(_) => {
            let mut tmp: Vec<B> = alloc::vec![B::zeroed(); n / B::ELEMS];
            quantize(x, &mut tmp);
            out.copy_from_slice(bytemuck::cast_slice(&tmp));
        }
    }
}

fn copy_f32(x: &[f32], out: &mut [f32]) {
    out.copy_from_slice(x);
}

/// Quantize one activation row x (n,) into the partner type's bytes (len = partner.bytes_for(n)).
///
/// # Panics
/// If `partner` is not an activation type (`F32`, `F16`, `BF16`, `Q8_0`, `Q8_1`, `Q8_K`) or
/// `out` has the wrong length.
pub fn quantize_activation(partner: GgmlType, x: &[f32], out: &mut [u8]) {
    match partner {
        GgmlType::F32 => quantize_into(x, out, copy_f32),
        GgmlType::F16 => quantize_into(x, out, qz::quantize_row_f16),
        GgmlType::BF16 => quantize_into(x, out, qz::quantize_row_bf16),
        GgmlType::Q8_0 => quantize_into(x, out, qz::quantize_row_q8_0),
        GgmlType::Q8_1 => quantize_into(x, out, qz::quantize_row_q8_1),
        GgmlType::Q8K => quantize_into(x, out, qz::quantize_row_q8_k),
        other => panic!("quantize_activation: {other} is not an activation type"),
    }
}

/// Dot product of one weight row (bytes of type w, n elements) with one quantized activation row
/// (bytes of vec_dot_type(w)).
///
/// # Panics
/// If `!supports_vec_dot(w)` or either row does not hold exactly `n` elements.
pub fn vec_dot(w: GgmlType, n: usize, w_row: &[u8], act_row: &[u8]) -> f32 {
    let (wr, ar) = ("vec_dot weights", "vec_dot activations");
    match w {
        GgmlType::F32 => fl::vec_dot_f32(n, &blocks_of(w_row, n, wr), &blocks_of(act_row, n, ar)),
        GgmlType::F16 => fl::vec_dot_f16_f16(n, &blocks_of(w_row, n, wr), &blocks_of(act_row, n, ar)),
        GgmlType::BF16 => fl::vec_dot_bf16_bf16(n, &blocks_of(w_row, n, wr), &blocks_of(act_row, n, ar)),
        GgmlType::Q4_0 => legacy::vec_dot_q4_0_q8_0(n, &blocks_of(w_row, n, wr), &blocks_of(act_row, n, ar)),
        GgmlType::Q4_1 => legacy::vec_dot_q4_1_q8_1(n, &blocks_of(w_row, n, wr), &blocks_of(act_row, n, ar)),
        GgmlType::Q5_0 => legacy::vec_dot_q5_0_q8_0(n, &blocks_of(w_row, n, wr), &blocks_of(act_row, n, ar)),
        GgmlType::Q5_1 => legacy::vec_dot_q5_1_q8_1(n, &blocks_of(w_row, n, wr), &blocks_of(act_row, n, ar)),
        GgmlType::Q8_0 => legacy::vec_dot_q8_0_q8_0(n, &blocks_of(w_row, n, wr), &blocks_of(act_row, n, ar)),
        GgmlType::Q2K => k::vec_dot_q2_k_q8_k(n, &blocks_of(w_row, n, wr), &blocks_of(act_row, n, ar)),
        GgmlType::Q3K => k::vec_dot_q3_k_q8_k(n, &blocks_of(w_row, n, wr), &blocks_of(act_row, n, ar)),
        GgmlType::Q4K => k::vec_dot_q4_k_q8_k(n, &blocks_of(w_row, n, wr), &blocks_of(act_row, n, ar)),
        GgmlType::Q5K => k::vec_dot_q5_k_q8_k(n, &blocks_of(w_row, n, wr), &blocks_of(act_row, n, ar)),
        GgmlType::Q6K => k::vec_dot_q6_k_q8_k(n, &blocks_of(w_row, n, wr), &blocks_of(act_row, n, ar)),
        GgmlType::Q8_1 | GgmlType::Q8K => panic!("vec_dot: {w} is an activation type, not a weight type"),
    }
}
