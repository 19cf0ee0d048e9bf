//! Float dot products as ggml's scalar build computes them: each product in f32, summed in f64
//! (`ggml_float`), rounded to f32 once at the end.
//!
//! For F16/BF16 weights the activation is first rounded to the same type (ggml's `vec_dot_type`
//! of F16 is F16), so both operands here have the same type.

use half::{bf16, f16};

/// sum_i x[i] * y[i] over the first n elements.
pub fn vec_dot_f32(n: usize, x: &[f32], y: &[f32]) -> f32 {
    debug_assert!(x.len() >= n && y.len() >= n, "vec_dot_f32: slices shorter than n");
    let sum = x.iter().zip(y).take(n).fold(0.0f64, |s, (&a, &b)| s + (a * b) as f64);
    sum as f32
}

/// sum_i f32(x[i]) * f32(y[i]) over the first n elements.
pub fn vec_dot_f16_f16(n: usize, x: &[f16], y: &[f16]) -> f32 {
    debug_assert!(x.len() >= n && y.len() >= n, "vec_dot_f16_f16: slices shorter than n");
    let sum = x.iter().zip(y).take(n).fold(0.0f64, |s, (a, b)| s + (a.to_f32() * b.to_f32()) as f64);
    sum as f32
}

/// sum_i f32(x[i]) * f32(y[i]) over the first n elements.
pub fn vec_dot_bf16_bf16(n: usize, x: &[bf16], y: &[bf16]) -> f32 {
    debug_assert!(x.len() >= n && y.len() >= n, "vec_dot_bf16_bf16: slices shorter than n");
    let sum = x.iter().zip(y).take(n).fold(0.0f64, |s, (a, b)| s + (a.to_f32() * b.to_f32()) as f64);
    sum as f32
}
