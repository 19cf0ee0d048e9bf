//! Gemma 3 with every weight dequantized to f32 and f32 products: llama.cpp's
//! `f32_dequantized_reference` to 1e-2. This proves the architecture's math, independent of
//! quantized kernels.

use fovea_suite::{checks, golden, model};

#[test]
fn f32_reference_top10_within_1e_2() {
    checks::next_token_f32(model("gemma3-270m", true), &golden("gemma3.json"));
}
