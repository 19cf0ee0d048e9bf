#version 450
#extension GL_GOOGLE_include_directive : require
// y = x · Wᵀ for Q6_K weights. Super-block (210 bytes, 256 elements): ql[128], qh[64],
// scales[16] i8, d f16. Element 128h + 32k + l takes 4 low bits from ql[64h + 32 (k % 2) + l]
// (high nibble when k >= 2) and 2 high bits from bits 2k of qh[32h + l];
// value = d * scales[e / 16] * (q - 32). Unit u is j = u % 8 = (h, k) = (j / 4, j % 4); its
// 32 low and 32 high parts are read as 8 + 8 words.
#include "matvec.glsl"

uint row_bytes() {
    return p.cols / 256u * 210u;
}

void dequant_unit(uint row_byte, uint u, out float v[32]) {
    uint b = row_byte + (u / 8u) * 210u;
    uint j = u % 8u;
    uint h = j / 4u;
    uint k = j % 4u;
    float d = f16_at(b + 208u);
    uint sc = u16_at(b + 192u + 8u * h + 2u * k); // the unit's two scales
    float d0 = d * float(bitfieldExtract(int(sc), 0, 8));
    float d1 = d * float(bitfieldExtract(int(sc), 8, 8));
    uint ql = b + 64u * h + 32u * (k % 2u);
    uint qh = b + 128u + 32u * h;
    uint lshift = (k / 2u) * 4u;
    [[unroll]] for (uint m = 0u; m < 8u; ++m) {
        uint l4 = u32_at(ql + 4u * m);
        uint h4 = u32_at(qh + 4u * m);
        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
            uint lo = (l4 >> (8u * i + lshift)) & 0xFu;
            uint hi = (h4 >> (8u * i + 2u * k)) & 3u;
            float q = float(int(lo | (hi << 4)) - 32);
            v[4u * m + i] = (m < 4u ? d0 : d1) * q;
        }
    }
}
