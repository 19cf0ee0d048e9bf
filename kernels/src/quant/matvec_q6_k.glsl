// y = xq · Wᵀ for Q6_K weights and Q8_K activations. Super-block (210 bytes, 256 elements):
// ql[128], qh[64], scales[16] i8, d f16. Element 128h + 32k + l takes 4 low bits from
// ql[64h + 32 (k % 2) + l] (high nibble when k >= 2) and 2 high bits from bits 2k of
// qh[32h + l]; weight q - 32. Unit u is j = u % 8 = (h, k) = (j / 4, j % 4), with one scale
// per 16 elements. As vec_dot_q6_k_q8_k: (d_x * d_y) * sum of scale * sumi, here per unit.
const uint ABLOCK = 256u;
const uint AWORDS = 73u;
#include "matvec_q8.glsl"

uint row_bytes() {
    return p.cols / 256u * 210u;
}

void load_unit(uint row_byte, uint u, out int wv[32], out vec4 par) {
    uint b = row_byte + (u / 8u) * 210u;
    uint j = u % 8u;
    uint h = j / 4u;
    uint k = j % 4u;
    uint sc = u16_at(b + 192u + 8u * h + 2u * k); // the unit's two scales
    par = vec4(f16_at(b + 208u), float(bitfieldExtract(int(sc), 0, 8)), float(bitfieldExtract(int(sc), 8, 8)), 0.0);
    uint ql = b + 64u * h + 32u * (k % 2u);
    uint qh = b + 128u + 32u * h;
    uint lshift = (k / 2u) * 4u;
    [[unroll]] for (uint m = 0u; m < 8u; ++m) {
        uint l4 = u32_at(ql + 4u * m);
        uint h4 = u32_at(qh + 4u * m);
        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
            uint lo = (l4 >> (8u * i + lshift)) & 0xFu;
            uint hi = (h4 >> (8u * i + 2u * k)) & 3u;
            wv[4u * m + i] = int(lo | (hi << 4)) - 32;
        }
    }
}

float unit_value(vec4 par, int s_lo, int s_hi, uint ab, uint u) {
    float dy = uintBitsToFloat(xq[ab]);
    precise float v = (par.x * dy) * float(int(par.y) * s_lo + int(par.z) * s_hi);
    return v;
}
