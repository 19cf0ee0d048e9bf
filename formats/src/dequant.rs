//! Scalar dequantization to f32 (owned by the blocks/dequant work).
