#version 450
#extension GL_GOOGLE_include_directive : require
// Gated activation of the feed-forward block, in place on gate (n,):
// gate = act(gate) * up, act = SiLU (kind 0) or GELU-tanh (kind 1), with the CPU's formulas
// (x / (1 + exp(-x)); 0.5 x (1 + tanh(sqrt(2/pi) x (1 + 0.044715 x^2)))). GELU as the CPU
// (ggml's f16 table, ops::gelu_f16_table): 0 for x <= -10, x for x >= 10, otherwise
// f16(gelu(f16(x))), so both round the same argument and mostly land on the same f16 value.
//
// Memory access: one invocation per element, two coalesced reads and one write; purely
// bandwidth-bound.

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

layout(push_constant) uniform Push {
    uint n;
    uint kind;
} p;

layout(std430, binding = 0) buffer Gate { float g[]; };
layout(std430, binding = 1) readonly buffer Up { float u[]; };

#include "f16.glsl"

const float SQRT_2_OVER_PI = 0.7978845608;
const float GELU_COEF_A = 0.044715;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
    if (i >= p.n) {
        return;
    }
    float x = g[i];
    float a;
    if (p.kind == 0u) {
        a = x / (1.0 + exp(-x));
    } else {
        if (x <= -10.0) {
            a = 0.0;
        } else if (x >= 10.0) {
            a = x;
        } else {
            float h = round_f16(x);
            // tanh(z) = 1 - 2 / (exp(2z) + 1): no overflow to NaN for large |z|
            float z = SQRT_2_OVER_PI * h * fma(GELU_COEF_A * h, h, 1.0);
            float t = 1.0 - 2.0 / (exp(2.0 * z) + 1.0);
            a = round_f16(0.5 * h * (1.0 + t));
        }
    }
    g[i] = a * u[i];
}
