#version 450
#extension GL_GOOGLE_include_directive : require
// Activation quantizer: x (n_tok, cols) f32 -> the weight type's vec_dot partner, as the CPU's
// quantize_row_q8_0 / _q8_1 / _q8_k (quantize.rs) compute it, so the matvecs can form the same
// integer block dots. One workgroup per activation row, one invocation per block.
//
// Output layout, as 32-bit words, row after row (row_words = blocks * block words):
//   Q8_0 (kind 0): 9 words per 32 elements: d f16 in the low half of word 0 (high half 0),
//                  qs[32] i8 in words 1..8 (ggml's 34-byte block, padded to a word)
//   Q8_1 (kind 1): 9 words per 32 elements: d f16 | s f16 << 16, qs[32] (ggml's 36 bytes)
//   Q8_K (kind 2): 73 words per 256 elements: d f32, qs[256] i8, bsums[16] i16 (ggml's 292 bytes)
// The f16 conversions are done in integer code (round to nearest even), so they do not depend
// on the device's f32 -> f16 rounding mode.

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

layout(push_constant) uniform Push {
    uint cols;     // elements per row (a multiple of 32; of 256 for Q8_K)
    uint n_tok;    // rows
    uint x_offset; // first float of x
    uint kind;     // 0 Q8_0, 1 Q8_1, 2 Q8_K
} p;

layout(std430, binding = 0) readonly buffer Act { float x[]; };
layout(std430, binding = 1) writeonly buffer Quant { uint q[]; };

#include "../ops/f16.glsl"

uint pack_i8(int a, int b, int c, int d) {
    return uint(a & 0xFF) | (uint(b & 0xFF) << 8) | (uint(c & 0xFF) << 16) | (uint(d & 0xFF) << 24);
}

// One 32-element block at float xb -> 9 words at word o: d = amax / 127, q = round_even(x *
// 127 / amax) (the multiplier, not 1 / d, as llama.cpp's x86 quantizer and ours).
void quantize_q8_0_1(uint xb, uint o, bool with_sum) {
    float amax = 0.0;
    for (uint i = 0u; i < 32u; ++i) {
        amax = max(amax, abs(x[xb + i]));
    }
    precise float d = amax / 127.0;
    precise float id = amax != 0.0 ? 127.0 / amax : 0.0;
    int sum = 0;
    for (uint k = 0u; k < 8u; ++k) {
        int v[4];
        for (uint i = 0u; i < 4u; ++i) {
            precise float s = x[xb + 4u * k + i] * id;
            v[i] = clamp(int(roundEven(s)), -128, 127);
            sum += v[i];
        }
        q[o + 1u + k] = pack_i8(v[0], v[1], v[2], v[3]);
    }
    uint dh = f16_bits(d);
    // s = fp16(sum * d) with d the f32 scale (before its own f16 rounding), as the CPU.
    precise float sd = float(sum) * d;
    q[o] = with_sum ? dh | (f16_bits(sd) << 16) : dh;
}

// One 256-element super-block at float xb -> 73 words at word o: iscale = -127 / max (the
// signed value of largest magnitude, the first one on ties), q = min(round_even(iscale * x),
// 127), d = 1 / iscale in f32, bsums of 16.
void quantize_q8_k(uint xb, uint o) {
    float amax = 0.0;
    float mx = 0.0;
    for (uint i = 0u; i < 256u; ++i) {
        float v = x[xb + i];
        if (abs(v) > amax) {
            amax = abs(v);
            mx = v;
        }
    }
    if (amax == 0.0) {
        for (uint i = 0u; i < 73u; ++i) {
            q[o + i] = 0u;
        }
        return;
    }
    precise float iscale = -127.0 / mx;
    int even_sum = 0;
    for (uint g = 0u; g < 16u; ++g) {
        int bsum = 0;
        for (uint k = 0u; k < 4u; ++k) {
            int v[4];
            for (uint i = 0u; i < 4u; ++i) {
                precise float s = iscale * x[xb + 16u * g + 4u * k + i];
                v[i] = min(int(roundEven(s)), 127);
                bsum += v[i];
            }
            q[o + 1u + 4u * g + k] = pack_i8(v[0], v[1], v[2], v[3]);
        }
        // Two i16 bsums per word, written when the odd one is known.
        if ((g & 1u) == 0u) {
            even_sum = bsum;
        } else {
            q[o + 65u + g / 2u] = (uint(even_sum) & 0xFFFFu) | (uint(bsum) << 16);
        }
    }
    precise float d = 1.0 / iscale;
    q[o] = floatBitsToUint(d);
}

void main() {
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.n_tok) {
        return;
    }
    uint xr = p.x_offset + row * p.cols;
    if (p.kind == 2u) {
        uint nb = p.cols / 256u;
        for (uint b = gl_LocalInvocationID.x; b < nb; b += WG) {
            quantize_q8_k(xr + 256u * b, (row * nb + b) * 73u);
        }
    } else {
        uint nb = p.cols / 32u;
        for (uint b = gl_LocalInvocationID.x; b < nb; b += WG) {
            quantize_q8_0_1(xr + 32u * b, (row * nb + b) * 9u, p.kind == 1u);
        }
    }
}
