#version 450
#extension GL_GOOGLE_include_directive : require
// y = x · Wᵀ for Q5_0 weights. Block (22 bytes): d f16, qh u32, qs[16]; element j < 16 is the
// low nibble of qs[j] plus bit j of qh as bit 4, element j + 16 the high nibble plus bit
// j + 16; value = (q - 16) * d. qh and qs are read as 5 words.
#include "matvec.glsl"

uint row_bytes() {
    return p.cols / 32u * 22u;
}

void dequant_unit(uint row_byte, uint u, out float v[32]) {
    uint b = row_byte + u * 22u;
    float d = f16_at(b);
    uint qh = u32_at(b + 2u);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        uint q4 = u32_at(b + 6u + 4u * k);
        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
            uint j = 4u * k + i;
            uint q = (q4 >> (8u * i)) & 0xFFu;
            uint lo = (q & 0xFu) | (((qh >> j) & 1u) << 4);
            uint hi = (q >> 4) | (((qh >> (j + 16u)) & 1u) << 4);
            v[j] = float(int(lo) - 16) * d;
            v[j + 16u] = float(int(hi) - 16) * d;
        }
    }
}
