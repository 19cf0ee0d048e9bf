// y = xq · Wᵀ for Q5_0 weights and Q8_0 activations. Block (22 bytes): d f16, qh u32, qs[16];
// element j < 16 is the low nibble of qs[j] plus bit j of qh as bit 4, element j + 16 the high
// nibble plus bit j + 16; weight q - 16. Per block, as vec_dot_q5_0_q8_0: (d_x * d_y) * sumi.
const uint ABLOCK = 32u;
const uint AWORDS = 9u;
#include "matvec_q8.glsl"

uint row_bytes() {
    return p.cols / 32u * 22u;
}

void load_unit(uint row_byte, uint u, out int wv[32], out vec4 par) {
    uint b = row_byte + u * 22u;
    par = vec4(f16_at(b), 0.0, 0.0, 0.0);
    uint qh = u32_at(b + 2u);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        uint q4 = u32_at(b + 6u + 4u * k);
        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
            uint j = 4u * k + i;
            uint q = (q4 >> (8u * i)) & 0xFFu;
            wv[j] = int((q & 0xFu) | (((qh >> j) & 1u) << 4)) - 16;
            wv[j + 16u] = int((q >> 4) | (((qh >> (j + 16u)) & 1u) << 4)) - 16;
        }
    }
}

float unit_value(vec4 par, int s_lo, int s_hi, uint ab, uint u) {
    float dy = unpackHalf2x16(xq[ab]).x;
    precise float v = (par.x * dy) * float(s_lo + s_hi);
    return v;
}
