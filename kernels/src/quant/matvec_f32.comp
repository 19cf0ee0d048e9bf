#version 450
#extension GL_GOOGLE_include_directive : require
// y = x · Wᵀ for F32 weights: a unit is 32 consecutive floats (128 bytes, word-aligned).
#include "matvec.glsl"

uint row_bytes() {
    return p.cols * 4u;
}

void dequant_unit(uint row_byte, uint u, out float v[32]) {
    uint w0 = (row_byte >> 2) + u * 32u;
    [[unroll]] for (uint j = 0u; j < 32u; ++j) {
        v[j] = uintBitsToFloat(w[w0 + j]);
    }
}
