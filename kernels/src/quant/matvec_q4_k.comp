#version 450
#extension GL_GOOGLE_include_directive : require
// y = x · Wᵀ for Q4_K weights. Super-block (144 bytes, 256 elements): d f16, dmin f16,
// scales[12] (eight 6-bit scale/min pairs), qs[128]. Unit u is sub-block j = u % 8 of block
// u / 8: its 32 quants are the low (j even) or high (j odd) nibbles of qs[32 (j / 2) ..][32];
// value = d * sc_j * q - dmin * m_j. Invocations take sub-blocks, so a 2048-wide row still
// spreads over 64 invocations.
#include "matvec.glsl"

uint row_bytes() {
    return p.cols / 256u * 144u;
}

void dequant_unit(uint row_byte, uint u, out float v[32]) {
    uint b = row_byte + (u / 8u) * 144u; // 144-byte blocks: word-aligned
    uint j = u % 8u;
    vec2 dm = unpackHalf2x16(w[b >> 2]);
    uint s = b + 4u; // scales
    uint sc, m;
    if (j < 4u) {
        sc = byte_at(s + j) & 63u;
        m = byte_at(s + j + 4u) & 63u;
    } else {
        sc = (byte_at(s + j + 4u) & 0xFu) | ((byte_at(s + j - 4u) >> 6) << 4);
        m = (byte_at(s + j + 4u) >> 4) | ((byte_at(s + j) >> 6) << 4);
    }
    float d = dm.x * float(sc);
    float mn = dm.y * float(m);
    uint q0 = ((b + 16u) >> 2) + (j / 2u) * 8u; // word of qs[32 (j / 2)]
    uint shift = (j % 2u) * 4u;
    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        uint q4 = w[q0 + k];
        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
            v[4u * k + i] = d * float((q4 >> (8u * i + shift)) & 0xFu) - mn;
        }
    }
}
