// y = xq · Wᵀ for Q4_1 weights and Q8_1 activations. Block (20 bytes): d f16, m f16, qs[16];
// nibbles as Q4_0, weight q (0..15). Per block, as vec_dot_q4_1_q8_1:
// (d_x * d_y) * sumi + m_x * s_y, with s_y the activation block's fp16(sum(q) * d).
const uint ABLOCK = 32u;
const uint AWORDS = 9u;
#include "matvec_q8.glsl"

uint row_bytes() {
    return p.cols / 32u * 20u;
}

void load_unit(uint row_byte, uint u, out int wv[32], out vec4 par) {
    uint b = row_byte + u * 20u; // 20-byte blocks: always word-aligned
    par = vec4(unpackHalf2x16(w[b >> 2]), 0.0, 0.0);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        uint q4 = w[(b >> 2) + 1u + k];
        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
            uint q = (q4 >> (8u * i)) & 0xFFu;
            wv[4u * k + i] = int(q & 0xFu);
            wv[4u * k + i + 16u] = int(q >> 4);
        }
    }
}

float unit_value(vec4 par, int s_lo, int s_hi, uint ab, uint u) {
    vec2 ds = unpackHalf2x16(xq[ab]);
    precise float v = (par.x * ds.x) * float(s_lo + s_hi) + par.y * ds.y;
    return v;
}
