#version 450
#extension GL_GOOGLE_include_directive : require
// y = x · Wᵀ for Q4_0 weights. Block (18 bytes): d f16, qs[16]; element j < 16 is the low
// nibble of qs[j], element j + 16 its high nibble; value = (q - 8) * d. qs is read as 4 words.
#include "matvec.glsl"

uint row_bytes() {
    return p.cols / 32u * 18u;
}

void dequant_unit(uint row_byte, uint u, out float v[32]) {
    uint b = row_byte + u * 18u;
    float d = f16_at(b);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        uint q4 = u32_at(b + 2u + 4u * k);
        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
            uint q = (q4 >> (8u * i)) & 0xFFu;
            v[4u * k + i] = float(int(q & 0xFu) - 8) * d;
            v[4u * k + i + 16u] = float(int(q >> 4) - 8) * d;
        }
    }
}
