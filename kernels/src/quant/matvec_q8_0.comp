#version 450
#extension GL_GOOGLE_include_directive : require
// y = x · Wᵀ for Q8_0 weights. Block (34 bytes): d f16, qs[32] i8; value = q * d.
// The 32 quants are read as 8 (possibly half-word-aligned) words.
#include "matvec.glsl"

uint row_bytes() {
    return p.cols / 32u * 34u;
}

void dequant_unit(uint row_byte, uint u, out float v[32]) {
    uint b = row_byte + u * 34u;
    float d = f16_at(b);
    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        int q4 = int(u32_at(b + 2u + 4u * k));
        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
            v[4u * k + i] = float(bitfieldExtract(q4, int(8u * i), 8)) * d;
        }
    }
}
