// y = xq · Wᵀ for Q8_0 weights and Q8_0 activations. Block (34 bytes): d f16, qs[32] i8, read
// as 8 (possibly half-word-aligned) words. Per block, as vec_dot_q8_0_q8_0: sumi * (d_x * d_y).
const uint ABLOCK = 32u;
const uint AWORDS = 9u;
#include "matvec_q8.glsl"

uint row_bytes() {
    return p.cols / 32u * 34u;
}

void load_unit(uint row_byte, uint u, out int wv[32], out vec4 par) {
    uint b = row_byte + u * 34u;
    par = vec4(f16_at(b), 0.0, 0.0, 0.0);
    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        int q4 = int(u32_at(b + 2u + 4u * k));
        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
            wv[4u * k + i] = bitfieldExtract(q4, int(8u * i), 8);
        }
    }
}

float unit_value(vec4 par, int s_lo, int s_hi, uint ab, uint u) {
    float dy = unpackHalf2x16(xq[ab]).x;
    precise float v = float(s_lo + s_hi) * (par.x * dy);
    return v;
}
