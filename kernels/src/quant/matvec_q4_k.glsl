// y = xq · Wᵀ for Q4_K weights and Q8_K activations. Super-block (144 bytes, 256 elements):
// d f16, dmin f16, scales[12] (eight 6-bit scale/min pairs), qs[128]. Unit u is sub-block
// j = u % 8 of block u / 8: its 32 quants are the low (j even) or high (j odd) nibbles of
// qs[32 (j / 2) ..][32]. As vec_dot_q4_k_q8_k: (d_x * d_y) * (sc_j * sumi_j) summed, minus
// (dmin_x * d_y) * (m_j * (bsums[2j] + bsums[2j + 1])) summed; here each sub-block's two terms
// are added per unit (the integer sums over a super-block are exact either way, so only the f32
// summation order differs from the CPU).
const uint ABLOCK = 256u;
const uint AWORDS = 73u;
#include "matvec_q8.glsl"

uint row_bytes() {
    return p.cols / 256u * 144u;
}

void load_unit(uint row_byte, uint u, out int wv[32], out vec4 par) {
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
    par = vec4(dm, float(sc), float(m));
    uint q0 = ((b + 16u) >> 2) + (j / 2u) * 8u; // word of qs[32 (j / 2)]
    uint shift = (j % 2u) * 4u;
    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        uint q4 = w[q0 + k];
        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
            wv[4u * k + i] = int((q4 >> (8u * i + shift)) & 0xFu);
        }
    }
}

float unit_value(vec4 par, int s_lo, int s_hi, uint ab, uint u) {
    float dy = uintBitsToFloat(xq[ab]);
    int bs = int(xq[ab + 65u + u % 8u]); // bsums[2j] | bsums[2j + 1] << 16
    int bsum = bitfieldExtract(bs, 0, 16) + bitfieldExtract(bs, 16, 16);
    precise float v = (par.x * dy) * float(int(par.z) * (s_lo + s_hi)) - (par.y * dy) * float(int(par.w) * bsum);
    return v;
}
