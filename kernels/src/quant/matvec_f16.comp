#version 450
#extension GL_GOOGLE_include_directive : require
// y = x · Wᵀ for F16 weights: a unit is 32 halves, 16 words, each word unpacked to two floats.
#include "matvec.glsl"

uint row_bytes() {
    return p.cols * 2u;
}

void dequant_unit(uint row_byte, uint u, out float v[32]) {
    uint w0 = (row_byte >> 2) + u * 16u; // rows are 64-byte multiples, so word-aligned
    [[unroll]] for (uint j = 0u; j < 16u; ++j) {
        vec2 h = unpackHalf2x16(w[w0 + j]);
        v[2u * j] = h.x;
        v[2u * j + 1u] = h.y;
    }
}
