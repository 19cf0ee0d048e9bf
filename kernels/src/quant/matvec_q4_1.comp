#version 450
#extension GL_GOOGLE_include_directive : require
// y = x · Wᵀ for Q4_1 weights. Block (20 bytes): d f16, m f16, qs[16]; nibbles as Q4_0;
// value = q * d + m.
#include "matvec.glsl"

uint row_bytes() {
    return p.cols / 32u * 20u;
}

void dequant_unit(uint row_byte, uint u, out float v[32]) {
    uint b = row_byte + u * 20u; // 20-byte blocks: always word-aligned
    vec2 dm = unpackHalf2x16(w[b >> 2]);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        uint q4 = w[(b >> 2) + 1u + k]; // qs[4k .. 4k + 4]
        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
            uint q = (q4 >> (8u * i)) & 0xFFu;
            v[4u * k + i] = float(q & 0xFu) * dm.x + dm.y;
            v[4u * k + i + 16u] = float(q >> 4) * dm.x + dm.y;
        }
    }
}
