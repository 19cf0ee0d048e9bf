// y = xq · Wᵀ for Q4_0 weights and Q8_0 activations. Block (18 bytes): d f16, qs[16]; element
// j < 16 is the low nibble of qs[j], element j + 16 its high nibble; weight q - 8.
// Per block, as vec_dot_q4_0_q8_0: sumi * d_x * d_y.
const uint ABLOCK = 32u;
const uint AWORDS = 9u;
#include "matvec_q8.glsl"

uint row_bytes() {
    return p.cols / 32u * 18u;
}

void load_unit(uint row_byte, uint u, out int wv[32], out vec4 par) {
    uint b = row_byte + u * 18u;
    par = vec4(f16_at(b), 0.0, 0.0, 0.0);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        uint q4 = u32_at(b + 2u + 4u * k);
        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
            uint q = (q4 >> (8u * i)) & 0xFFu;
            wv[4u * k + i] = int(q & 0xFu) - 8;
            wv[4u * k + i + 16u] = int(q >> 4) - 8;
        }
    }
}

float unit_value(vec4 par, int s_lo, int s_hi, uint ab, uint u) {
    float dy = unpackHalf2x16(xq[ab]).x;
    precise float v = float(s_lo + s_hi) * par.x * dy;
    return v;
}
